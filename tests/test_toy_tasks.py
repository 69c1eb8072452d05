"""A GPT learns two algorithms from examples (slow: trains for real)."""
import numpy as np
import pytest

import minigrad as mg
from models import toy_tasks


def test_held_out_problems_never_appear_in_training():
    task = toy_tasks.AdditionTask(digits=2)
    rng = np.random.default_rng(0)
    train, _ = toy_tasks.problems(task, rng, 5000, held_out=False)
    test, _ = toy_tasks.problems(task, rng, 500, held_out=True)
    assert not {tuple(p) for p in train} & {tuple(p) for p in test}


def test_the_held_out_tenth_is_spread_over_both_parities_and_every_first_digit():
    codes = np.arange(100_000)
    held = toy_tasks._held_out(codes)
    assert abs(held.mean() - 0.1) < 0.002
    # a sort problem's code is its digits in base 10, first digit lowest: every first digit
    # (and so both parities) must be held out about equally often
    for digit in range(10):
        assert abs(held[codes % 10 == digit].mean() - 0.1) < 0.01, digit


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


def test_addition_relevant_keys_are_digit_i_of_both_numbers():
    task = toy_tasks.AdditionTask(digits=3)
    keys = task.relevant_keys(np.zeros((1, 6), int), np.zeros((1, 4), int))[0]  # (A, P)
    # answer digit 0 (units) needs a's and b's last digits, at positions 2 and 5
    assert [np.flatnonzero(row).tolist() for row in keys] == [[2, 5], [1, 4], [0, 3], []]


def test_sort_relevant_keys_are_where_the_written_digit_sits():
    task = toy_tasks.SortTask(length=4)
    prompt = np.array([[3, 1, 3, 0]])
    keys = task.relevant_keys(prompt, np.sort(prompt, axis=1))[0]
    assert [np.flatnonzero(row).tolist() for row in keys] == [[3], [1], [0, 2], [0, 2]]


def test_attention_share_is_the_weight_on_the_relevant_keys():
    task = toy_tasks.AdditionTask(digits=2)
    mg.manual_seed(0)
    model = toy_tasks.GPT(toy_tasks.model_config(task, n_layer=2, n_head=2, n_embd=16))
    share, chance = toy_tasks.attention_share(model, task, count=20, seed=3)
    prompt, answer = toy_tasks.problems(task, np.random.default_rng(3), 20, held_out=True)
    x = np.concatenate([prompt, answer], axis=1)[:, :-1]
    weights = toy_tasks.attention_weights(model, x)           # (L, B, nh, T, T)
    # by hand: answer digit 0 is predicted at position 3 and needs keys 1 and 3;
    # digit 1 at position 4 needs keys 0 and 2; the final carry digit is not scored
    by_hand = (weights[:, :, :, 3, [1, 3]].sum(-1) + weights[:, :, :, 4, [0, 2]].sum(-1)) / 2
    np.testing.assert_allclose(share, by_hand.mean(axis=1), rtol=1e-6)
    assert chance == pytest.approx((2 / 4 + 2 / 5) / 2)
    assert not model.transformer.h[0].attn.keep_weights       # put back as it was
