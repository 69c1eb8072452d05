"""A GPT learns to add two 2-digit numbers (it writes the sum lowest digit first).

    python examples/addition.py               # under a minute on a laptop CPU
    python examples/addition.py --digits 3 --steps 6000

Prints the loss as it trains, then the exact-match accuracy on held-out
problems the model never saw, and a few worked examples.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

from models import run_safety, toy_tasks  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--digits", type=int, default=2)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    run_safety.check_flags(p, args, {"digits": run_safety.positive_int, "steps": run_safety.positive_int,
                                     "seed": run_safety.non_negative_int})

    task = toy_tasks.AdditionTask(digits=args.digits)

    def describe(prompt, answer):
        a, b = (int("".join(map(str, half))) for half in (prompt[:args.digits], prompt[args.digits:]))
        total = int("".join(map(str, answer[::-1])))  # the answer is written lowest digit first
        return f"{a} + {b} = {total}  ({'right' if a + b == total else 'wrong'})"

    return toy_tasks.demo(task, args.steps, args.seed, describe)


if __name__ == "__main__":
    main()
