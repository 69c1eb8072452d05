"""A GPT learns to sort: given 6 digits, it writes them in ascending order.

    python examples/sort_digits.py             # under a minute on a laptop CPU
    python examples/sort_digits.py --steps 300 # a quick look

Prints the loss as it trains, then the exact-match accuracy on held-out
sequences the model never saw, and a few examples.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

from models import run_safety, toy_tasks  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--length", type=int, default=6)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    run_safety.check_flags(p, args, {"length": run_safety.positive_int, "steps": run_safety.positive_int,
                                     "seed": run_safety.non_negative_int})

    task = toy_tasks.SortTask(length=args.length)
    return toy_tasks.demo(task, args.steps, args.seed, lambda prompt, answer: (
        " ".join(map(str, prompt)) + " -> " + " ".join(map(str, answer))))


if __name__ == "__main__":
    main()
