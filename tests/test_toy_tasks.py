"""A GPT learns two algorithms from examples (slow: trains for real)."""
import numpy as np
import pytest

from models import toy_tasks


def test_held_out_problems_never_appear_in_training():
    task = toy_tasks.AdditionTask(digits=2)
    rng = np.random.default_rng(0)
    train, _ = toy_tasks.problems(task, rng, 5000, held_out=False)
    test, _ = toy_tasks.problems(task, rng, 500, held_out=True)
    assert not {tuple(p) for p in train} & {tuple(p) for p in test}


def test_addition_answers_are_the_reversed_sum():
    task = toy_tasks.AdditionTask(digits=2)
    prompt, answer, _ = task.sample(np.random.default_rng(0), 50)
    def number(digits):
        return int("".join(map(str, digits)))

    for p, a in zip(prompt, answer):
        assert number(a[::-1]) == number(p[:2]) + number(p[2:])


def test_only_answer_positions_are_scored():
    task = toy_tasks.SortTask(length=4)
    x, y = toy_tasks.training_batch(task, np.random.default_rng(0), 3)
    assert x.shape == y.shape == (3, 7)
    assert (y[:, :3] == toy_tasks.IGNORE).all() and (y[:, 3:] >= 0).all()


@pytest.mark.slow
@pytest.mark.parametrize("task, steps", [(toy_tasks.SortTask(), 1000), (toy_tasks.AdditionTask(), 2000)])
def test_a_small_gpt_learns_the_task(task, steps):
    model = toy_tasks.train(task, toy_tasks.model_config(task), steps=steps)
    assert toy_tasks.accuracy(model, task) >= 0.99
