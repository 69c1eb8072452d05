"""Exact GELU (erf) against GELU's tanh form, forward and backward, on one array.

    python benchmarks/bench_gelu.py [--size 1000000] [--repeats 5]

Prints the median time of each and their ratio, the time of the old erf (math.erf one
element at a time) for reference, the largest error of minigrad's erf against math.erf in
units in the last place, and the load average (timings on a shared machine drift).
"""
import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's minigrad

import minigrad as mg  # noqa: E402
from minigrad.ops import special  # noqa: E402


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x32 = rng.standard_normal(args.size).astype(np.float32)

    def step(approximate):
        x = mg.tensor(x32, requires_grad=True)
        mg.gelu(x, approximate=approximate).sum().backward()

    tanh = median_time(lambda: step("tanh"), args.repeats)
    exact = median_time(lambda: step("none"), args.repeats)
    per_element = np.vectorize(math.erf, otypes=[np.float64])
    old = median_time(lambda: per_element(x32), max(1, args.repeats // 2))
    new = median_time(lambda: special.erf(x32), args.repeats)
    print(f"GELU forward + backward, {args.size:,} float32 elements (median of {args.repeats}):")
    print(f"  approximate='tanh' {tanh * 1e3:8.1f} ms")
    print(f"  approximate='none' {exact * 1e3:8.1f} ms   ({exact / tanh:.1f}x tanh)")
    print(f"erf alone: polynomial {new * 1e3:.1f} ms, math.erf per element {old * 1e3:.1f} ms "
          f"({old / new:.0f}x slower)")
    grid = np.concatenate([np.linspace(-7, 7, 200_001), np.logspace(-300, 1, 2000)])
    want = np.array([math.erf(v) for v in grid])
    units = np.abs(special.erf(grid) - want) / np.spacing(np.abs(want) + 1e-320)
    print(f"float64 erf vs math.erf: at most {units.max():.1f} ulp on {grid.size:,} points")
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
