"""The number-translation task (models/translation.py): deterministic, correct, a real
reordering, and a held-out set that training never touches and that is not biased."""
import numpy as np
import pytest

from models import translation as task


def test_examples_by_hand():
    source, target, alignment = task.translate(305_020)
    assert task.spell(source, task.ARDIC) == "tricen pen mil dota"
    assert task.spell(target, task.BELIC) == "diru tau gusho ke"
    assert alignment == [3, 2, 0, 1]
    source, target, alignment = task.translate(7)
    assert (task.spell(source, task.ARDIC), task.spell(target, task.BELIC)) == ("sep", "mi")
    assert alignment == [0]
    # the word for "5 hundred" twice: only its group says which source word it translates
    source, target, alignment = task.translate(505_505)
    assert task.spell(target, task.BELIC) == "kesho ke tau kesho ke"
    assert alignment == [3, 4, 2, 0, 1]


def test_every_target_word_translates_its_aligned_source_word():
    for n in np.random.default_rng(0).integers(1, task.MAX_NUMBER + 1, 5000):
        source, target, alignment = task.translate(n)
        assert sorted(alignment) == list(range(len(source)))   # a permutation of the source
        assert [source[i] for i in alignment] == target        # same concept, same id
        assert task.read_target(target + [task.EOS]) == n      # and it says the number


def test_the_order_depends_on_the_number_not_only_on_the_length():
    orders = {}
    for n in np.random.default_rng(1).integers(1, task.MAX_NUMBER + 1, 5000):
        source, _, alignment = task.translate(n)
        orders.setdefault(len(source), set()).add(tuple(alignment))
    # with 3..6 words several orders occur (which words are left out decides); all 7
    # words (no zero digit) have one order, and it is not the identity
    assert all(len(orders[length]) > 1 for length in range(3, 7))
    assert orders[7] == {(4, 6, 5, 3, 0, 2, 1)}


def test_generation_is_deterministic():
    a = task.training_numbers(np.random.default_rng(5), 300)
    b = task.training_numbers(np.random.default_rng(5), 300)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(task.test_numbers(200), task.test_numbers(200))
    for x, y in zip(task.batch(a[:50]), task.batch(b[:50])):
        np.testing.assert_array_equal(x, y)
    # the held-out choice is a fixed function of the number, pinned here
    assert list(np.flatnonzero(task.is_held_out(np.arange(1, 200))) + 1) == \
        [int(n) for n in np.arange(1, 200) if task.is_held_out([n])[0]]


def test_training_and_test_numbers_are_disjoint():
    train = task.training_numbers(np.random.default_rng(0), 20_000)
    test = task.test_numbers(5_000)
    assert not task.is_held_out(train).any()
    assert task.is_held_out(test).all()
    assert len(np.unique(test)) == len(test)
    assert not set(train.tolist()) & set(test.tolist())


def test_the_held_out_tenth_is_spread_over_every_digit_in_every_place():
    n = np.arange(1, task.MAX_NUMBER + 1)
    held = task.is_held_out(n)
    assert held.mean() == pytest.approx(0.1, abs=0.002)
    for place in range(6):
        digit = n // 10 ** place % 10
        share = np.bincount(digit[held], minlength=10) / np.bincount(digit, minlength=10)
        np.testing.assert_allclose(share, 0.1, atol=0.005)


def test_batch_pads_and_shifts():
    source, decoder_input, decoder_target, alignment = task.batch([305_020, 7])
    assert source.shape == (2, task.MAX_SOURCE) and decoder_input.shape == (2, task.MAX_TARGET + 1)
    assert list(source[1]) == [task.UNITS + 6] + [task.PAD] * 6
    assert list(decoder_input[1][:3]) == [task.BOS, task.UNITS + 6, task.PAD]
    assert list(decoder_target[1][:3]) == [task.UNITS + 6, task.EOS, task.IGNORE]
    assert list(alignment[0]) == [3, 2, 0, 1, -1, -1, -1]


def test_out_of_range_numbers_are_refused():
    with pytest.raises(ValueError, match="numbers must be in 1..999999"):
        task.translate(0)
    with pytest.raises(ValueError, match="numbers must be in 1..999999"):
        task.translate(1_000_000)


def test_read_target_refuses_malformed_sequences():
    assert task.read_target([task.UNITS, task.UNITS, task.EOS]) is None   # two unit words
    assert task.read_target([task.PAD]) is None
