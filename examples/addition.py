"""A GPT learns to add two 2-digit numbers (it writes the sum lowest digit first).

    python examples/addition.py               # under a minute on a laptop CPU
    python examples/addition.py --digits 3 --steps 6000
    python examples/addition.py --quick          # 100 steps, for CI
    python examples/addition.py --plot addition.png   # and save its attention (matplotlib)

Prints the loss as it trains, then the exact-match accuracy on held-out
problems the model never saw, a few worked examples, and how much attention
goes to the digits the task says matter (digit i of both numbers).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too
sys.path.insert(0, str(Path(__file__).resolve().parent))      # plot_attention.py

from models import run_safety, toy_tasks  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--digits", type=int, default=2)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--quick", action="store_true", help="100 steps: a few seconds, for CI")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="PNG", help="save the trained model's attention on one "
                   "held-out problem (needs matplotlib)")
    args = p.parse_args(argv)
    run_safety.check_flags(p, args, {"digits": run_safety.positive_int, "steps": run_safety.positive_int,
                                     "seed": run_safety.non_negative_int})
    if args.quick and args.steps == p.get_default("steps"):
        args.steps = 100

    task = toy_tasks.AdditionTask(digits=args.digits)

    def describe(prompt, answer):
        a, b = (int("".join(map(str, half))) for half in (prompt[:args.digits], prompt[args.digits:]))
        total = int("".join(map(str, answer[::-1])))  # the answer is written lowest digit first
        return f"{a} + {b} = {total}  ({'right' if a + b == total else 'wrong'})"

    model, score = toy_tasks.demo(task, args.steps, args.seed, describe)
    print("\nwhile writing answer digit i, attention on digit i of both numbers (a head that reads\n"
          "only one of the two, fully, gets 50%):")
    toy_tasks.print_attention_share(model, task)
    if args.plot:
        from plot_attention import plot_task_attention
        plot_task_attention(model, task, args.plot, "addition: a then b (highest digit first), "
                            "then the sum (lowest digit first)")
    return score


if __name__ == "__main__":
    main()
