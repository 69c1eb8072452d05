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

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
from models import toy_tasks  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--digits", type=int, default=2)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    task = toy_tasks.AdditionTask(digits=args.digits)
    model = toy_tasks.train(task, toy_tasks.model_config(task), steps=args.steps, seed=args.seed,
                            report=lambda step, loss: print(f"step {step:>5}  loss {loss:.4f}"))
    score = toy_tasks.accuracy(model, task)
    print(f"held-out exact-match accuracy: {score:.1%}")
    prompt, _ = toy_tasks.problems(task, np.random.default_rng(7), 3, held_out=True)
    out = model.generate(mg.tensor(prompt), task.answer_length, temperature=0).numpy()
    n = args.digits
    for row in out:
        a, b = (int("".join(map(str, row[i * n:(i + 1) * n]))) for i in range(2))
        total = int("".join(map(str, row[2 * n:][::-1])))
        print(f"{a} + {b} = {total}  ({'right' if a + b == total else 'wrong'})")
    return score


if __name__ == "__main__":
    main()
