"""A GPT learns to sort: given 6 digits, it writes them in ascending order.

    python examples/sort_digits.py             # under a minute on a laptop CPU
    python examples/sort_digits.py --steps 300 # a quick look
    python examples/sort_digits.py --quick     # 100 steps, for CI
    python examples/sort_digits.py --plot sort_digits.png   # and save its attention (matplotlib)

Prints the loss as it trains, then the exact-match accuracy on held-out
sequences the model never saw, a few examples, and how much attention goes to
the position of the digit being written.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too
sys.path.insert(0, str(Path(__file__).resolve().parent))      # plot_attention.py

from models import run_safety, toy_tasks  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--length", type=int, default=6)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--quick", action="store_true", help="100 steps: a few seconds, for CI")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="PNG", help="save the trained model's attention on one "
                   "held-out problem (needs matplotlib)")
    args = p.parse_args(argv)
    run_safety.check_flags(p, args, {"length": run_safety.positive_int, "steps": run_safety.positive_int,
                                     "seed": run_safety.non_negative_int})
    if args.quick and args.steps == p.get_default("steps"):
        args.steps = 100

    task = toy_tasks.SortTask(length=args.length)
    model, score = toy_tasks.demo(task, args.steps, args.seed, lambda prompt, answer: (
        " ".join(map(str, prompt)) + " -> " + " ".join(map(str, answer))))
    print("\nwhile writing each sorted digit, attention on where that digit sits in the input:")
    toy_tasks.print_attention_share(model, task)
    if args.plot:
        from plot_attention import plot_task_attention
        plot_task_attention(model, task, args.plot, "sorting: the digits, then them in order")
    return score


if __name__ == "__main__":
    main()
