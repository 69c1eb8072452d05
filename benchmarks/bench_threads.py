"""A small-config GPT training step under three thread settings, quiet and under load.

    python benchmarks/bench_threads.py [--steps 10] [--config small|medium]

The settings, alternated step by step in one process:
  minigrad, 1 thread            minigrad.set_num_threads(1)
  minigrad, 2 threads           minigrad.set_num_threads(2): BLAS at one thread, minigrad's
                                own work split across two Python threads
  OpenBLAS's own 2 threads      the old default: BLAS at two threads, minigrad's work whole
Each is timed on a quiet machine and then with one busy-loop process per CPU running
beside it (other work filling the cores), median and min of --steps steps. A spinning
BLAS thread that loses its core stalls the product it belongs to; the three medians
under load show whether a setting collapses.
"""
import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import minigrad  # noqa: E402
from bench_gpt import CONFIGS, MinigradTrainer, environment_lines, make_batch  # noqa: E402

SETTINGS = {  # name: (minigrad's threads, BLAS's threads)
    "minigrad, 1 thread": (1, 1),
    "minigrad, 2 threads": (2, 1),
    "OpenBLAS's own 2 threads": (1, 2),
}


def busy_loop():
    while True:
        pass


def time_settings(trainer, steps):
    times = {name: [] for name in SETTINGS}
    for _ in range(steps):
        for name, (workers, blas) in SETTINGS.items():
            minigrad.set_num_threads(workers)
            minigrad.threads._set_blas_threads(blas)
            started = time.perf_counter()
            trainer.step()
            times[name].append(time.perf_counter() - started)
    minigrad.set_num_threads(1)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--config", choices=list(CONFIGS), default="small")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    print("\n".join(environment_lines()))
    config, batch_size = CONFIGS[args.config]
    trainer = MinigradTrainer(config, *make_batch(config, batch_size), "cpu", clip=1.0)
    trainer.step()
    results = {"quiet": time_settings(trainer, args.steps)}
    hogs = [multiprocessing.Process(target=busy_loop, daemon=True)
            for _ in range(os.cpu_count() or 1)]
    for hog in hogs:
        hog.start()
    try:
        time.sleep(1.0)
        results[f"{len(hogs)} busy loops beside it"] = time_settings(trainer, args.steps)
    finally:
        for hog in hogs:
            hog.terminate()
    print(f"\n{args.config} config, one training step (forward, backward, clip, AdamW):")
    for when, times in results.items():
        print(f" {when}:")
        for name, seconds in times.items():
            print(f"  {name:26s} median {statistics.median(seconds) * 1e3:8.1f} ms   "
                  f"min {min(seconds) * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
