"""Benchmark full causal attention against sliding-window attention, and rolling-cache
generation.

1. Forward + backward of F.causal_attention and F.sliding_window_attention (window 128)
   on q, k, v of shape (B=1, 4 heads, T, head size 32), float32, for T = 256 .. 4096:
   the fastest of --repeats runs (at least 2048 / T of them; after one warm-up; the
   fastest is the least disturbed by other work on the machine), the peak bytes of NumPy arrays
   allocated during one run (tracemalloc, a separate traced run), and how much the time
   grows each time T doubles. Full attention's grows ~4x (T^2); a window's ~2x (T * w).
2. Generation of 256 new tokens past block_size by a sliding-window GPT
   (GPTConfig(attn_window=...)): with the rolling KV cache (each step runs one token
   against the last `window` keys) against recomputing the whole sequence at every step
   (use_cache=False; the same tokens).

Timings on a shared machine are inflated by other work: the load average and the CPU
time of this process are printed too.

Run from the repository root:
  python benchmarks/bench_attention.py
  python benchmarks/bench_attention.py --threads 1 --clock cpu   (on a busy machine)
  python benchmarks/bench_attention.py --quick        (T = 256, 512; 16 tokens)
"""
import argparse
import math
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_gpt  # noqa: E402  (its BLAS thread helpers)
import minigrad  # noqa: E402
import minigrad.functional as F  # noqa: E402
from models import GPT, GPTConfig  # noqa: E402

HEADS, HEAD_SIZE, WINDOW = 4, 32, 128
MB = 1024 * 1024


def attention_inputs(T, seed=0):
    rng = numpy.random.default_rng(seed)
    return [minigrad.tensor(rng.standard_normal((1, HEADS, T, HEAD_SIZE)).astype(numpy.float32),
                            requires_grad=True) for _ in range(3)]


def forward_backward(fn, q, k, v):
    for x in (q, k, v):
        x.grad = None
    y = fn(q, k, v)                       # (1, HEADS, T, HEAD_SIZE)
    y.sum().backward()


CLOCK = time.perf_counter  # --clock cpu: time.process_time, steadier on a busy machine


def time_and_memory(fn, T, repeats):
    """(fastest seconds, peak MB of arrays allocated) of one forward + backward."""
    q, k, v = attention_inputs(T)
    forward_backward(fn, q, k, v)         # warm-up
    times = []
    for _ in range(max(repeats, 2048 // T)):
        start = CLOCK()
        forward_backward(fn, q, k, v)
        times.append(CLOCK() - start)
    for x in (q, k, v):
        x.grad = None
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    forward_backward(fn, q, k, v)
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return min(times), peak / MB


def attention_table(lengths, repeats):
    full = F.causal_attention

    def window(q, k, v):
        return F.sliding_window_attention(q, k, v, WINDOW)
    print(f"== forward + backward, B=1, {HEADS} heads, head size {HEAD_SIZE}, float32; "
          f"sliding window {WINDOW}; fastest of >= {repeats} runs")
    print(f"{'T':>6} | {'causal ms':>10} {'MB':>8} {'x/doubling':>10} | "
          f"{'window ms':>10} {'MB':>8} {'x/doubling':>10} | {'time ratio':>10}")
    rows, previous = [], None
    for T in lengths:
        causal_s, causal_mb = time_and_memory(full, T, repeats)
        window_s, window_mb = time_and_memory(window, T, repeats)
        growth = ("", "") if previous is None else \
            (f"{causal_s / previous[0]:.2f}", f"{window_s / previous[1]:.2f}")
        print(f"{T:>6} | {causal_s * 1e3:>10.1f} {causal_mb:>8.1f} {growth[0]:>10} | "
              f"{window_s * 1e3:>10.1f} {window_mb:>8.1f} {growth[1]:>10} | "
              f"{window_s / causal_s:>10.2f}")
        rows.append((T, causal_s, causal_mb, window_s, window_mb))
        previous = (causal_s, window_s)
    return rows


def generation(new_tokens, repeats):
    config = GPTConfig(block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=128,
                       attn_window=32)
    model = GPT(config, generator=minigrad.Generator(0))
    model.eval()
    # a prompt of a full block: every new token lies past block_size
    prompt = minigrad.tensor(numpy.random.default_rng(0).integers(0, 65, size=(1, 64)))
    print(f"\n== generating {new_tokens} tokens after a 64-token prompt (all past block_size), "
          f"GPT n_layer=4 n_head=4 n_embd=128 block_size=64 attn_window=32, greedy")
    seconds, outputs = {}, {}
    for use_cache in (True, False):
        times = []
        for _ in range(repeats):
            start = CLOCK()
            outputs[use_cache] = model.generate(prompt, new_tokens, temperature=0,
                                                use_cache=use_cache).numpy()
            times.append(CLOCK() - start)
        seconds[use_cache] = min(times)
    same = numpy.array_equal(outputs[True], outputs[False])
    for label, use_cache in (("rolling KV cache", True), ("recompute", False)):
        rate = new_tokens / seconds[use_cache]
        print(f"{label:<18} {seconds[use_cache]:8.3f} s  ({rate:7.1f} tokens/s)")
    print(f"speed-up {seconds[False] / seconds[True]:.1f}x; same tokens: {same}")
    return seconds, same


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T = 256, 512 and 16 tokens")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int,
                        help="BLAS threads for NumPy (1 is steadier on a busy machine)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: this process's CPU time (with --threads 1, what the work "
                             "costs however busy the machine is)")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        bench_gpt.set_openblas_threads(args.threads)
    lengths = [256, 512] if args.quick else [256, 512, 1024, 2048, 4096]
    repeats = 1 if args.quick else args.repeats
    cpu_start = os.times()
    print("\n".join(bench_gpt.environment_lines()))
    print(f"clock: {args.clock}")
    rows = attention_table(lengths, repeats)
    T, causal_s, causal_mb, window_s, window_mb = rows[-1]
    print(f"at T={T}: sliding window takes {window_s / causal_s:.2f} of causal attention's "
          f"time and {window_mb / causal_mb:.2f} of its memory")
    doublings = math.log2(T / rows[0][0])
    if doublings:
        print(f"growth per doubling from T={rows[0][0]} to {T} (geometric mean): causal "
              f"{(causal_s / rows[0][1]) ** (1 / doublings):.2f}x, sliding window "
              f"{(window_s / rows[0][3]) ** (1 / doublings):.2f}x")
    generation(16 if args.quick else 256, 1 if args.quick else 2)
    cpu = os.times()
    used = (cpu.user - cpu_start.user) + (cpu.system - cpu_start.system)
    print(f"\nCPU time of this process {used:.1f} s; at the end {bench_gpt.load_line()}")


if __name__ == "__main__":
    main()
