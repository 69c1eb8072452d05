"""Attention: one head against a NumPy reference, multi-head against separate
heads, masks, gradients (float64) and the KV cache."""
import math

import numpy as np
import pytest
from model_helpers import gradcheck_module, to_float64

import minigrad
import minigrad.functional as F
from minigrad.autograd import topological_order
from models import KVCache, MultiHeadAttention, SelfAttention

B, T, C, NH = 2, 4, 8, 2


def float64_input(*shape, seed=0, requires_grad=True):
    values = np.random.default_rng(seed).normal(size=shape)
    return minigrad.tensor(values, dtype=np.float64, requires_grad=requires_grad)


def randomize_biases(module, seed=1):
    """Biases start at zero; give them values so their gradients and roles are tested."""
    rng = np.random.default_rng(seed)
    for name, p in module.named_parameters():
        if name.endswith("bias"):
            p.data = rng.normal(size=p.shape).astype(p.dtype)
    return module


def self_attention_reference(x, head, causal):
    """One head in plain NumPy, from the textbook formula."""
    def project(linear):
        return x @ linear.weight.numpy().T + linear.bias.numpy()
    q, k, v = project(head.query), project(head.key), project(head.value)
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        scores = np.where(np.triu(np.ones(scores.shape[-2:], bool), 1), -np.inf, scores)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v, weights


# --- one head ---------------------------------------------------------------------

@pytest.mark.parametrize("causal", [True, False])
def test_self_attention_matches_numpy_reference(causal):
    head = randomize_biases(to_float64(SelfAttention(C, 5, causal=causal)))
    x = float64_input(B, T, C)
    out, weights = head(x, return_weights=True)
    expected_out, expected_weights = self_attention_reference(x.numpy(), head, causal)
    assert out.shape == (B, T, 5) and weights.shape == (B, T, T)
    np.testing.assert_allclose(out.numpy(), expected_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weights.numpy(), expected_weights, rtol=1e-12, atol=1e-14)


def test_self_attention_weights_sum_to_one_and_ignore_the_future():
    head = SelfAttention(C, 4, causal=True)
    _, weights = head(minigrad.randn(3, 6, C) * 3.0, return_weights=True)
    w = weights.numpy()
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-6)
    above = np.triu(np.ones((6, 6), bool), 1)
    assert (w[:, above] == 0.0).all()  # exactly zero, not just small
    assert (w[:, ~above] > 0.0).all()


def test_causal_self_attention_output_does_not_depend_on_later_tokens():
    head = SelfAttention(C, 4, causal=True)
    x = minigrad.randn(1, 5, C).numpy()
    changed = x.copy()
    changed[:, 3:] += 10.0
    a, b = head(minigrad.tensor(x)).numpy(), head(minigrad.tensor(changed)).numpy()
    np.testing.assert_array_equal(a[:, :3], b[:, :3])
    assert not np.allclose(a[:, 3:], b[:, 3:])


def test_non_causal_self_attention_sees_every_token():
    _, weights = SelfAttention(C, 4, causal=False)(minigrad.randn(1, 5, C), return_weights=True)
    assert (weights.numpy() > 0).all()


@pytest.mark.parametrize("causal", [True, False])
def test_self_attention_gradcheck(causal):
    head = randomize_biases(to_float64(SelfAttention(C, 3, causal=causal)))
    gradcheck_module(head, head, [float64_input(B, T, C)])


# --- many heads -------------------------------------------------------------------

def heads_from_c_attn(mha):
    """n_head SelfAttention heads whose q/k/v weights are the matching slices of c_attn."""
    hs = mha.head_size
    weight, bias = mha.c_attn.weight.numpy(), mha.c_attn.bias.numpy()
    heads = []
    for h in range(mha.n_head):
        head = SelfAttention(mha.n_embd, hs, causal=mha.causal)
        for part, linear in enumerate([head.query, head.key, head.value]):
            rows = slice(part * mha.n_embd + h * hs, part * mha.n_embd + (h + 1) * hs)
            linear.weight.data = weight[rows].copy()
            linear.bias.data = bias[rows].copy()
        heads.append(head)
    return heads


@pytest.mark.parametrize("causal", [True, False])
def test_multi_head_equals_separate_heads_concatenated_then_projected(causal):
    mha = randomize_biases(to_float64(MultiHeadAttention(12, 3, causal=causal)))
    x = float64_input(B, 5, 12)
    heads = heads_from_c_attn(mha)
    per_head = [head(x, return_weights=True) for head in heads]
    concatenated = F.concatenate([out for out, _ in per_head], axis=-1)  # (B, T, C)
    expected = mha.c_proj(concatenated)
    got, weights = mha(x, return_weights=True)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-12, atol=1e-13)
    assert weights.shape == (B, 3, 5, 5)
    for h, (_, head_weights) in enumerate(per_head):
        np.testing.assert_allclose(weights.numpy()[:, h], head_weights.numpy(), atol=1e-14)


def test_multi_head_fused_causal_path_equals_the_explicit_one():
    # a plain causal forward takes F.causal_attention; T = 70 spans two of its 64-query
    # chunks. fused_causal = False takes the explicit ops.
    mha = randomize_biases(to_float64(MultiHeadAttention(12, 3)))
    results = []
    for fused in (True, False):
        mha.fused_causal = fused
        x = float64_input(B, 70, 12)
        y = mha(x)
        ops = {function.name for function in topological_order([y])}
        assert ("CausalAttention" in ops, "Softmax" in ops) == (fused, not fused)
        mha.zero_grad()
        (y * y).sum().backward()
        results.append([y.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in mha.parameters()])
    mha.fused_causal = True
    for fast, explicit in zip(*results):
        np.testing.assert_allclose(fast, explicit, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("causal", [True, False])
def test_multi_head_gradcheck(causal):
    mha = randomize_biases(to_float64(MultiHeadAttention(C, NH, causal=causal)))
    gradcheck_module(mha, mha, [float64_input(B, T, C)])


@pytest.mark.parametrize("causal", [True, False])
def test_multi_head_gradcheck_with_padding_mask(causal):
    mha = randomize_biases(to_float64(MultiHeadAttention(C, NH, causal=causal)))
    padding = np.array([[False, False, False, True], [False, False, True, True]])
    gradcheck_module(mha, lambda x: mha(x, key_padding_mask=padding), [float64_input(B, T, C)])


def test_multi_head_without_bias():
    mha = MultiHeadAttention(C, NH, bias=False)
    assert sorted(name for name, _ in mha.named_parameters()) == ["c_attn.weight", "c_proj.weight"]
    assert mha(minigrad.randn(B, T, C)).shape == (B, T, C)


@pytest.mark.parametrize("causal", [True, False])
def test_padding_keys_get_zero_weight_and_do_not_matter(causal):
    mha = randomize_biases(MultiHeadAttention(C, NH, causal=causal))
    padding = np.array([[False, False, True, True], [False, False, False, False]])
    x = minigrad.randn(B, T, C).numpy()
    out, weights = mha(minigrad.tensor(x), key_padding_mask=padding, return_weights=True)
    assert (weights.numpy()[0, :, :, 2:] == 0.0).all()
    np.testing.assert_allclose(weights.numpy().sum(axis=-1), 1.0, rtol=1e-6)
    changed = x.copy()
    changed[0, 2:] = 100.0  # whatever sits in the padding
    out_changed = mha(minigrad.tensor(changed), key_padding_mask=padding).numpy()
    np.testing.assert_allclose(out_changed[0, :2], out.numpy()[0, :2], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out_changed[1], out.numpy()[1])  # no padding in row 1


def test_query_with_every_key_masked_stays_finite():
    # left padding with a causal mask: the first query can see only itself, a padding key
    mha = MultiHeadAttention(C, NH, causal=True)
    x = minigrad.randn(1, T, C, requires_grad=True)
    padding = np.array([[True, False, False, False]])
    out = mha(x, key_padding_mask=padding)
    out[:, 1:].sum().backward()
    assert np.isfinite(out.numpy()).all()
    assert all(np.isfinite(p.grad.numpy()).all() for p in mha.parameters())
    assert np.isfinite(x.grad.numpy()).all()


def test_padding_mask_must_be_boolean_of_shape_batch_by_keys():
    mha = MultiHeadAttention(C, NH)
    with pytest.raises(ValueError, match="key_padding_mask must be a bool array of shape"):
        mha(minigrad.randn(B, T, C), key_padding_mask=np.zeros((B, T - 1), bool))
    with pytest.raises(ValueError, match="key_padding_mask"):
        mha(minigrad.randn(B, T, C), key_padding_mask=np.zeros((B, T)))


def test_n_embd_must_divide_into_heads():
    with pytest.raises(ValueError, match="multiple of n_head"):
        MultiHeadAttention(10, 3)


# --- KV cache ---------------------------------------------------------------------

def test_kv_cache_step_by_step_equals_full_causal_forward():
    mha = randomize_biases(to_float64(MultiHeadAttention(C, NH)))
    x = float64_input(B, 6, C, requires_grad=False)
    full = mha(x).numpy()
    cache = KVCache(max_length=8)
    with minigrad.no_grad():
        first = mha(x[:, :3], kv_cache=cache)          # a prompt of 3 tokens at once
        steps = [mha(x[:, t:t + 1], kv_cache=cache) for t in range(3, 6)]  # then one at a time
    assert cache.length == 6
    cached = np.concatenate([first.numpy()] + [s.numpy() for s in steps], axis=1)
    np.testing.assert_allclose(cached, full, rtol=1e-12, atol=1e-13)


def test_kv_cache_refuses_overflow_and_graphs():
    mha = MultiHeadAttention(C, NH)
    cache = KVCache(max_length=3)
    with pytest.raises(RuntimeError, match="no_grad"):
        mha(minigrad.randn(1, 2, C), kv_cache=cache)
    with minigrad.no_grad():
        mha(minigrad.randn(1, 2, C), kv_cache=cache)
        with pytest.raises(ValueError, match="KVCache is full"):
            mha(minigrad.randn(1, 2, C), kv_cache=cache)
