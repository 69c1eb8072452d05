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

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
from models import toy_tasks  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--length", type=int, default=6)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    task = toy_tasks.SortTask(length=args.length)
    model = toy_tasks.train(task, toy_tasks.model_config(task), steps=args.steps, seed=args.seed,
                            report=lambda step, loss: print(f"step {step:>5}  loss {loss:.4f}"))
    score = toy_tasks.accuracy(model, task)
    print(f"held-out exact-match accuracy: {score:.1%}")
    prompt, _ = toy_tasks.problems(task, np.random.default_rng(7), 3, held_out=True)
    out = model.generate(mg.tensor(prompt), task.answer_length, temperature=0).numpy()
    for row in out:
        print(" ".join(map(str, row[:task.prompt_length])), "->", " ".join(map(str, row[task.prompt_length:])))
    return score


if __name__ == "__main__":
    main()
