"""Benchmark data-parallel training on MPI: what the allreduce costs, and tokens/s.

The model is train_gpt.py's default (n_layer=4, n_head=4, n_embd=128,
block_size=64, global batch 16, the built-in corpus's characters). Three runs,
each a fresh process (or two), the same number of timed steps:

  1 process, BLAS threads as the machine gives them (all cores)
  1 process x 1 BLAS thread
  2 ranks x 1 BLAS thread (mpirun -n 2 on this machine: loopback / shared memory)

For the 2 ranks it prints, per step, the time inside the allreduce as the step
sees it (which includes waiting for the slower rank) and the bare transfer of
the same buffer (after a barrier, so both ranks arrive together), each with
its share of the step. Target: communication at most 5% of a step.

    python benchmarks/bench_distributed.py --steps 20
    python benchmarks/bench_distributed.py --worker ...   # what the runs above start

Needs mpi4py and mpirun (pip install -e ".[dist]"). As root, Open MPI needs
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; this script sets
them for its own mpirun when it runs as root, and says so.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

import minigrad as mg  # noqa: E402
from minigrad import distributed  # noqa: E402
from models import training  # noqa: E402
from models.gpt import GPT, GPTConfig  # noqa: E402
from models.tokenizers import CharTokenizer  # noqa: E402

BATCH_SIZE, WARMUP_STEPS = 16, 2
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class TimedGroup(distributed.ProcessGroup):
    """A process group that adds up the seconds its allreduces take."""

    def __init__(self, group):
        self.group, self.rank, self.world_size = group, group.rank, group.world_size
        self.seconds = self.cpu_seconds = 0.0

    def allreduce_(self, array):
        began, began_cpu = time.perf_counter(), time.process_time()
        self.group.allreduce_(array)
        self.seconds += time.perf_counter() - began
        self.cpu_seconds += time.process_time() - began_cpu
        return array

    def broadcast_(self, array, root=0):
        return self.group.broadcast_(array, root)

    def barrier(self):
        self.group.barrier()


def main_job_model():
    text = training.read_text()
    vocab_size = CharTokenizer.from_text(text).vocab_size
    return GPTConfig(vocab_size=vocab_size, n_layer=4, n_head=4, n_embd=128, block_size=64,
                     dropout=0.0)


def worker(args):
    """One rank's measurement; rank 0 prints one JSON line."""
    group = distributed.process_group(args.world_size > 1)
    timed = TimedGroup(group)
    config = main_job_model()
    mg.manual_seed(0)
    model = GPT(config)
    optimizer = model.configure_optimizers(0.1, 1e-3, betas=(0.9, 0.95))
    replica = distributed.DataParallel(model, timed)
    rows = distributed.rank_slice(BATCH_SIZE, group)
    tokens = np.random.default_rng(0).integers(0, config.vocab_size, size=100_000)
    step_seconds, comm_seconds, step_cpu, comm_cpu = [], [], [], []
    for step in range(WARMUP_STEPS + args.steps):
        x, y = training.get_batch(tokens, config.block_size, BATCH_SIZE, training.batch_rng(0, step))
        x, y = x[rows], y[rows]
        timed.seconds = timed.cpu_seconds = 0.0
        began, began_cpu = time.perf_counter(), time.process_time()
        _, loss = model(mg.tensor(x), mg.tensor(y))
        replica.zero_grad()
        replica.backward(loss, distributed.count_targets(y))
        replica.clip_grad_norm_(1.0)
        optimizer.step()
        if step >= WARMUP_STEPS:
            step_seconds.append(time.perf_counter() - began)
            comm_seconds.append(timed.seconds)
            step_cpu.append(time.process_time() - began_cpu)
            comm_cpu.append(timed.cpu_seconds)
    bare = bare_allreduce_seconds(group, replica._buffer.copy()) if group.world_size > 1 else [0.0]
    if group.rank == 0:
        step = statistics.median(step_seconds)
        print(json.dumps({
            "world_size": group.world_size, "step_s": step,
            "allreduce_in_step_s": statistics.median(comm_seconds),
            "bare_allreduce_s": statistics.median(bare), "bare_allreduce_min_s": min(bare),
            "step_min_s": min(step_seconds),
            "step_cpu_s": statistics.median(step_cpu), "allreduce_cpu_s": statistics.median(comm_cpu),
            "tokens_per_s": BATCH_SIZE * config.block_size / step,
            "buffer_mb": replica._buffer.nbytes / 2**20, "parameters": model.num_parameters(),
        }), flush=True)


def bare_allreduce_seconds(group, buffer, repeats=30):
    """Times of one allreduce of `buffer` when both ranks start it together."""
    times = []
    for _ in range(repeats):
        group.barrier()
        began = time.perf_counter()
        group.allreduce_(buffer)
        times.append(time.perf_counter() - began)
    return times


def run_worker(launcher, env_extra, steps):
    env = {**os.environ, **env_extra, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    world_size = 2 if launcher else 1
    command = [*launcher, sys.executable, __file__, "--worker", "--world-size", str(world_size),
               "--steps", str(steps)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_seconds_of_children():
    times = os.times()
    return times.children_user + times.children_system


def launch(args):
    mpirun = shutil.which("mpirun")
    if mpirun is None or distributed.launched_by_mpirun():
        sys.exit("needs mpirun (pip install -e \".[dist]\"); run this script itself without it")
    version = subprocess.run([mpirun, "--version"], capture_output=True, text=True).stdout
    launcher = [mpirun, "-n", "2"] + (["--oversubscribe"] if "Open MPI" in version else [])
    mpi_env = dict(ONE_THREAD)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        mpi_env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        print("(running as root: OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 set "
              "for mpirun)")
    config = main_job_model()
    print(f"model: train_gpt.py's default, n_layer {config.n_layer}, n_embd {config.n_embd}, "
          f"block {config.block_size}, vocab {config.vocab_size}; global batch {BATCH_SIZE}; "
          f"{args.steps} timed steps after {WARMUP_STEPS}; {os.cpu_count()} cores")
    runs = [("1 process, BLAS default threads", [], {}),
            ("1 process x 1 BLAS thread", [], ONE_THREAD),
            ("2 ranks x 1 BLAS thread (mpirun)", launcher, mpi_env)]
    results = []
    for label, command, env in runs:
        before_load, before_cpu = load_average(), cpu_seconds_of_children()
        result = run_worker(command, env, args.steps)
        cpu = cpu_seconds_of_children() - before_cpu
        results.append(result)
        print(f"{label:<34} step {result['step_s'] * 1e3:7.1f} ms "
              f"(rank 0 CPU {result['step_cpu_s'] * 1e3:6.1f} ms) "
              f"{result['tokens_per_s']:8,.0f} tokens/s   (CPU {cpu:5.1f} s; load average "
              f"{before_load} before, {load_average()} after)")
    two = results[-1]
    step = two["step_s"]
    print(f"2 ranks: allreduce of {two['buffer_mb']:.2f} MB ({two['parameters']:,} parameters) "
          f"per step:")
    print(f"  inside the step (incl. waiting for the other rank): "
          f"{two['allreduce_in_step_s'] * 1e3:6.2f} ms = {100 * two['allreduce_in_step_s'] / step:4.1f}% "
          f"of a step")
    print(f"  bare transfer (both ranks ready), median:          "
          f"{two['bare_allreduce_s'] * 1e3:6.2f} ms = {100 * two['bare_allreduce_s'] / step:4.1f}% "
          f"of a step (target: at most 5%)")
    print(f"  bare transfer, fastest of 30:                      "
          f"{two['bare_allreduce_min_s'] * 1e3:6.2f} ms = "
          f"{100 * two['bare_allreduce_min_s'] / two['step_cpu_s']:4.1f}% of rank 0's "
          f"{two['step_cpu_s'] * 1e3:.0f} ms CPU per step (least disturbed by other load)")
    print(f"  rank 0's CPU time in the allreduce: {two['allreduce_cpu_s'] * 1e3:6.2f} ms of "
          f"{two['step_cpu_s'] * 1e3:.1f} ms CPU per step = "
          f"{100 * two['allreduce_cpu_s'] / two['step_cpu_s']:4.1f}% (Open MPI polls while it "
          "waits, so this counts waiting too)")
    print(f"  2 ranks vs 1 process: {two['tokens_per_s'] / results[0]['tokens_per_s']:.2f}x "
          f"tokens/s (vs 1 process x 1 thread: "
          f"{two['tokens_per_s'] / results[1]['tokens_per_s']:.2f}x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run (after warm-up)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--world-size", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.worker:
        worker(args)
    else:
        launch(args)


if __name__ == "__main__":
    main()
