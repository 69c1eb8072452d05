"""Attention: one head against a NumPy reference, multi-head against separate
heads, masks, gradients (float64) and the KV cache."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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
    # a plain causal forward takes F.packed_causal_attention; T = 70 spans two of its
    # 64-query chunks. fused = False takes the explicit ops.
    mha = randomize_biases(to_float64(MultiHeadAttention(12, 3)))
    results = []
    for fused in (True, False):
        mha.fused = fused
        x = float64_input(B, 70, 12)
        y = mha(x)
        ops = {function.name for function in topological_order([y])}
        assert ("PackedCausalAttention" in ops, "Softmax" in ops) == (fused, not fused)
        mha.zero_grad()
        (y * y).sum().backward()
        results.append([y.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in mha.parameters()])
    mha.fused = True
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


# --- general attention: cross-attention, attn_mask, windows, every path -----------------

def mha_reference(mha, x, context=None, allowed=None, bias=None):
    """MultiHeadAttention in NumPy from the formula: allowed (bool, True = attend) and bias
    (float) broadcast to (B, nh, T, S); a query with no key gets weights 0."""
    def linear(layer, a):
        return a @ layer.weight.numpy().T + layer.bias.numpy()
    B, T, C = x.shape
    nh, hs = mha.n_head, mha.head_size
    if mha.cross:
        q = linear(mha.q_proj, x)
        k, v = np.split(linear(mha.kv_proj, context), 2, axis=-1)
    else:
        q, k, v = np.split(linear(mha.c_attn, x), 3, axis=-1)
    def heads(a):
        return a.reshape(B, -1, nh, hs).transpose(0, 2, 1, 3)
    q, k, v = heads(q), heads(k), heads(v)
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(hs) + (0 if bias is None else bias)
    allowed = np.broadcast_to(True if allowed is None else allowed, scores.shape)
    scores = np.where(allowed, scores, -np.inf)
    top = scores.max(axis=-1, keepdims=True)
    e = np.exp(scores - np.where(np.isfinite(top), top, 0))
    total = e.sum(axis=-1, keepdims=True)
    weights = np.divide(e, total, out=np.zeros_like(e), where=total > 0)
    y = (weights @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
    return linear(mha.c_proj, y)


def window_allowed(T, window, causal=True, start=0, S=None):
    i = start + np.arange(T)[:, None]
    j = np.arange(T if S is None else S)[None, :]
    if causal:
        return (j <= i) & (j > i - window)
    return abs(i - j) < window


def run_paths(mha, *args, **kwargs):
    """The output of mha on its fused path and on its explicit path (fused = False), with
    the gradient of x; the op names of the fused graph."""
    results, names = [], None
    for fused in (True, False):
        mha.fused = fused
        y = mha(*args, **kwargs)
        if fused:
            names = {function.name for function in topological_order([y])}
        x = args[0]
        results.append((y.numpy(), mg_grad_or_none(y, x)))
    mha.fused = True
    return results, names


def mg_grad_or_none(y, x):
    if not x.requires_grad:
        return None
    (g,) = minigrad.grad((y * y).sum(), [x])
    return g.numpy()


L_Q, S_KV = 5, 7  # queries and keys differ in number


def mask_cases():
    """(name, mha kwargs, forward kwargs builder, allowed, bias, the fused op expected)."""
    rng = np.random.default_rng(11)
    bool_mask = rng.random((B, 1, L_Q, L_Q)) < 0.6
    float_mask = rng.normal(size=(L_Q, L_Q))
    padding = np.array([[False] * (L_Q - 2) + [True] * 2, [False] * L_Q])
    causal = np.tril(np.ones((L_Q, L_Q), bool))
    return [
        ("causal", {}, {}, causal, None, "PackedCausalAttention"),
        ("bidirectional", dict(causal=False), {}, None, None, "MaskedAttention"),
        ("causal + bool attn_mask", {}, dict(attn_mask=bool_mask), causal & bool_mask, None,
         "MaskedAttention"),
        ("bidirectional + float attn_mask", dict(causal=False), dict(attn_mask=float_mask),
         None, float_mask, "MaskedAttention"),
        ("causal + key_padding_mask", {}, dict(key_padding_mask=padding),
         causal & ~padding[:, None, None, :], None, "MaskedAttention"),
        ("window 2", dict(window=2), {}, window_allowed(L_Q, 2), None,
         "SlidingWindowAttention"),
        ("window 2 + bool attn_mask", dict(window=2), dict(attn_mask=bool_mask),
         window_allowed(L_Q, 2) & bool_mask, None, "MaskedAttention"),
        ("window 2 bidirectional + padding", dict(window=2, causal=False),
         dict(key_padding_mask=padding),
         window_allowed(L_Q, 2, causal=False) & ~padding[:, None, None, :], None,
         "MaskedAttention"),
    ]


@pytest.mark.parametrize("case", mask_cases(), ids=lambda c: c[0])
def test_every_mask_is_honoured_on_every_path(case):
    # each mask against the NumPy formula, on the fused path and the explicit one
    _, init, forward, allowed, bias, fused_op = case
    mha = randomize_biases(to_float64(MultiHeadAttention(C, NH, **init)))
    x = float64_input(B, L_Q, C)
    want = mha_reference(mha, x.numpy(), allowed=allowed, bias=bias)
    (fused, fused_grad), (explicit, explicit_grad) = run_paths(mha, x, **forward)[0]
    names = run_paths(mha, x, **forward)[1]
    assert fused_op in names and "Softmax" not in names
    np.testing.assert_allclose(fused, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(explicit, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fused_grad, explicit_grad, rtol=1e-10, atol=1e-12)
    _, weights = mha(x, return_weights=True, **forward)
    if allowed is not None:  # a masked key has weight exactly 0
        assert (weights.numpy()[~np.broadcast_to(allowed, weights.shape)] == 0).all()


@pytest.mark.parametrize("mask", ["none", "bool", "float", "padding"])
def test_cross_attention_matches_the_formula_on_every_path(mask):
    mha = randomize_biases(to_float64(MultiHeadAttention(C, NH, cross=True)))
    assert mha.causal is False
    assert sorted(n for n, _ in mha.named_parameters()) == [
        "c_proj.bias", "c_proj.weight", "kv_proj.bias", "kv_proj.weight", "q_proj.bias",
        "q_proj.weight"]
    x, context = float64_input(B, L_Q, C), float64_input(B, S_KV, C, seed=3)
    rng = np.random.default_rng(5)
    forward, allowed, bias = {}, None, None
    if mask == "bool":
        allowed = rng.random((L_Q, S_KV)) < 0.5
        allowed[1] = False  # a query with nothing to attend to: output 0 before c_proj
        forward = dict(attn_mask=allowed)
    elif mask == "float":
        bias = rng.normal(size=(B, NH, L_Q, S_KV))
        forward = dict(attn_mask=bias)
    elif mask == "padding":
        padding = np.array([[False] * 4 + [True] * 3, [False] * 7])
        allowed = ~padding[:, None, None, :]
        forward = dict(key_padding_mask=padding)
    want = mha_reference(mha, x.numpy(), context.numpy(), allowed, bias)
    results, names = run_paths(mha, x, context, **forward)
    assert "MaskedAttention" in names
    for got, _ in results:
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10, atol=1e-12)
    gradcheck_module(mha, lambda x, c: mha(x, c, **forward), [x, context])


def test_cross_attention_cache_computes_the_context_once():
    mha = randomize_biases(to_float64(MultiHeadAttention(C, NH, cross=True)))
    x, context = float64_input(B, 4, C, requires_grad=False), float64_input(B, S_KV, C, seed=2)
    full = mha(x, context).numpy()
    calls = []
    original = mha.kv_proj.forward
    mha.kv_proj.forward = lambda a: calls.append(a.shape) or original(a)
    cache = KVCache(max_length=S_KV)
    with minigrad.no_grad():
        steps = [mha(x[:, :2], context, kv_cache=cache)]           # first call: projects
        steps += [mha(x[:, t:t + 1], None, kv_cache=cache) for t in (2, 3)]  # reused
    assert calls == [(B, S_KV, C)] and cache.length == S_KV
    np.testing.assert_allclose(np.concatenate([s.numpy() for s in steps], axis=1), full,
                               rtol=1e-12, atol=1e-13)


def test_cached_self_attention_honours_attn_mask_and_padding():
    # with a KVCache the new queries sit at the end: masks broadcast to (B, nh, T, cached + T)
    mha = randomize_biases(to_float64(MultiHeadAttention(C, NH)))
    x = float64_input(B, 6, C, requires_grad=False)
    rng = np.random.default_rng(9)
    mask = rng.random((B, 1, 6, 6)) < 0.7
    padding = np.array([[False] * 6, [True, False, False, False, True, False]])
    full = mha(x, attn_mask=mask, key_padding_mask=padding).numpy()
    cache = KVCache(max_length=6)
    with minigrad.no_grad():
        parts = [mha(x[:, :3], attn_mask=mask[:, :, :3, :3], key_padding_mask=padding[:, :3],
                     kv_cache=cache)]
        for t in range(3, 6):
            parts.append(mha(x[:, t:t + 1], attn_mask=mask[:, :, t:t + 1, :t + 1],
                             key_padding_mask=padding[:, :t + 1], kv_cache=cache))
    np.testing.assert_allclose(np.concatenate([p.numpy() for p in parts], axis=1), full,
                               rtol=1e-12, atol=1e-13)


def test_multi_head_attention_refuses_misused_context_and_masks():
    with pytest.raises(ValueError, match="cross=True"):
        MultiHeadAttention(C, NH)(minigrad.randn(B, T, C), minigrad.randn(B, 3, C))
    with pytest.raises(ValueError, match="causal=False"):
        MultiHeadAttention(C, NH, cross=True, causal=True)
    cross = MultiHeadAttention(C, NH, cross=True)
    with pytest.raises(ValueError, match="needs context"):
        cross(minigrad.randn(B, T, C))
    with pytest.raises(ValueError, match=r"context must have shape \(B=2, S, 8\)"):
        cross(minigrad.randn(B, T, C), minigrad.randn(B, 3, 5))
    with pytest.raises(ValueError, match=r"\(3, 3\) does not broadcast.*\(2, 2, 4, 4\)"):
        MultiHeadAttention(C, NH)(minigrad.randn(B, T, C), attn_mask=np.ones((3, 3), bool))
    with pytest.raises(TypeError, match="attn_mask must be bool"):
        MultiHeadAttention(C, NH)(minigrad.randn(B, T, C), attn_mask=np.ones((T, T), int))
    with pytest.raises(ValueError, match="window must be an int >= 1"):
        MultiHeadAttention(C, NH, window=0)


@pytest.mark.parametrize("causal", [True, False])
def test_self_attention_head_takes_attn_mask(causal):
    head = randomize_biases(to_float64(SelfAttention(C, 5, causal=causal)))
    x = float64_input(B, T, C)
    rng = np.random.default_rng(4)
    mask = rng.random((B, T, T)) < 0.6
    mask[0, 1] = False  # nothing to attend to: weights 0
    out, weights = head(x, attn_mask=mask, return_weights=True)
    allowed = mask & (np.tril(np.ones((T, T), bool)) if causal else True)
    q, k, v = (x.numpy() @ lin.weight.numpy().T + lin.bias.numpy()
               for lin in (head.query, head.key, head.value))
    want = F.scaled_dot_product_attention(minigrad.tensor(q), minigrad.tensor(k),
                                          minigrad.tensor(v), attn_mask=allowed)
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-12, atol=1e-13)
    assert (weights.numpy()[~allowed] == 0).all()
    float_mask = rng.normal(size=(T, T))
    got = head(x, attn_mask=float_mask).numpy()
    want = F.scaled_dot_product_attention(
        minigrad.tensor(q), minigrad.tensor(k), minigrad.tensor(v),
        attn_mask=float_mask if not causal else np.where(np.tril(np.ones((T, T))), float_mask,
                                                         -np.inf))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-13)
    gradcheck_module(head, lambda x: head(x, attn_mask=mask), [x])


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 11), window=st.sampled_from([None, 1, 2, 3, 5]), causal=st.booleans(),
       mask=st.sampled_from(["none", "bool", "float", "padding"]), seed=st.integers(0, 2**16))
def test_multi_head_paths_agree_with_the_formula_on_drawn_shapes(T, window, causal, mask, seed):
    # T need not be a multiple of the window; every combination of window, causal and mask
    mha = randomize_biases(to_float64(MultiHeadAttention(C, NH, causal=causal, window=window)),
                           seed=seed)
    rng = np.random.default_rng(seed)
    x = minigrad.tensor(rng.normal(size=(B, T, C)), requires_grad=True)
    allowed = np.ones((T, T), bool)
    if causal:
        allowed &= np.tril(allowed)
    if window is not None:
        allowed &= window_allowed(T, window, causal)
    forward, bias = {}, None
    if mask == "bool":
        m = rng.random((B, 1, T, T)) < 0.7
        forward, allowed = dict(attn_mask=m), allowed & m
    elif mask == "float":
        bias = rng.normal(size=(NH, T, T))
        forward = dict(attn_mask=bias)
    elif mask == "padding":
        padding = rng.random((B, T)) < 0.3
        forward, allowed = dict(key_padding_mask=padding), allowed & ~padding[:, None, None, :]
    want = mha_reference(mha, x.numpy(), allowed=allowed, bias=bias)
    (fused, fused_grad), (explicit, explicit_grad) = run_paths(mha, x, **forward)[0]
    np.testing.assert_allclose(fused, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(explicit, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fused_grad, explicit_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("how", ["attn_mask", "window"])
def test_output_7_depends_on_inputs_5_to_7_under_a_window_of_3(how):
    # the example: a window mask passed to causal attention must not be dropped
    from models.masks import sliding_window_mask
    mha = MultiHeadAttention(C, NH, window=3 if how == "window" else None)
    x = minigrad.randn(1, 8, C, requires_grad=True)
    y = mha(x, attn_mask=sliding_window_mask(8, 3)) if how == "attn_mask" else mha(x)
    (g,) = minigrad.grad(y[0, 7].sum(), [x])
    assert list(np.flatnonzero(np.abs(g.numpy()[0]).sum(axis=-1))) == [5, 6, 7]
