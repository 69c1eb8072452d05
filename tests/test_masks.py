"""The mask builders: their printed docstrings, each against its definition element by
element, and fed to scaled_dot_product_attention."""
import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from models import masks


def test_docstring_masks_are_what_the_builders_print():
    result = doctest.testmod(masks)
    assert result.attempted >= 6 and result.failed == 0


def brute(T, rule):
    return np.array([[rule(i, j) for j in range(T)] for i in range(T)])


@settings(max_examples=40, deadline=None)
@given(T=st.integers(1, 17), size=st.integers(1, 6), summary=st.integers(1, 6))
def test_each_builder_follows_its_definition(T, size, summary):
    np.testing.assert_array_equal(masks.sliding_window_mask(T, size),
                                  brute(T, lambda i, j: i - size < j <= i))
    np.testing.assert_array_equal(masks.sliding_window_mask(T, size, causal=False),
                                  brute(T, lambda i, j: abs(i - j) < size))
    np.testing.assert_array_equal(masks.strided_mask(T, size), brute(
        T, lambda i, j: j <= i and (i - j < size or (i - j) % size == 0)))
    summary = min(summary, size)
    np.testing.assert_array_equal(masks.fixed_mask(T, size, summary), brute(
        T, lambda i, j: j <= i and (j // size == i // size or j % size >= size - summary)))
    g = [0, T - 1]
    np.testing.assert_array_equal(masks.global_tokens_mask(T, g, size), brute(
        T, lambda i, j: abs(i - j) < size or i in g or j in g))
    assert masks.strided_mask(T, size).diagonal().all()  # every query sees itself
    assert masks.fixed_mask(T, size, summary).diagonal().all()


def test_sliding_window_mask_feeds_sdpa_like_sliding_window_attention():
    rng = np.random.default_rng(0)
    q, k, v = (mg.tensor(rng.normal(size=(2, 13, 4))) for _ in range(3))
    via_mask = F.scaled_dot_product_attention(q, k, v, attn_mask=masks.sliding_window_mask(13, 4))
    np.testing.assert_allclose(via_mask.numpy(), F.sliding_window_attention(q, k, v, 4).numpy(),
                               rtol=1e-10, atol=1e-12)
    causal = F.scaled_dot_product_attention(q, k, v, attn_mask=masks.sliding_window_mask(13, 13))
    np.testing.assert_allclose(causal.numpy(),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy(),
                               rtol=1e-10, atol=1e-12)


def test_builders_refuse_bad_sizes():
    with pytest.raises(ValueError, match="window must be an int >= 1, got 0"):
        masks.sliding_window_mask(4, 0)
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        masks.strided_mask(4, -1)
    with pytest.raises(ValueError, match="summary must be in 1..stride=2, got 3"):
        masks.fixed_mask(4, 2, 3)
    with pytest.raises(ValueError, match="must lie in 0..3"):
        masks.global_tokens_mask(4, [4])
    with pytest.raises(ValueError, match="mask length T"):
        masks.sliding_window_mask(0, 1)
