"""F.scaled_dot_product_attention (PyTorch's meaning) and F.sliding_window_attention:
every path against a NumPy reference and the explicit composite, in float64, with
hypothesis shapes (L != S, T not a multiple of the chunk or window), masks of every
kind, rows with no key, gradcheck / gradgradcheck, and the errors."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad.autograd import topological_order
from minigrad.ops.attention import MaskedAttention, SlidingWindowAttention, attention_weights

TIGHT = dict(rtol=1e-10, atol=1e-12)


def reference(q, k, v, attn_mask=None, is_causal=False, scale=None):
    """PyTorch's documented math for scaled_dot_product_attention, in NumPy; rows with
    no allowed key give 0."""
    L, S = q.shape[-2], k.shape[-2]
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ np.swapaxes(k, -1, -2) * scale
    allowed = np.ones((L, S), bool)
    if is_causal:
        allowed = np.tril(np.ones((L, S), bool))
    if attn_mask is not None and attn_mask.dtype == bool:
        allowed = allowed & attn_mask
    elif attn_mask is not None:
        scores = scores + attn_mask
    scores = np.where(allowed, scores, -np.inf)
    top = scores.max(axis=-1, keepdims=True)
    e = np.exp(scores - np.where(np.isfinite(top), top, 0))
    total = e.sum(axis=-1, keepdims=True)
    weights = np.divide(e, total, out=np.zeros_like(e), where=total > 0)
    return weights @ v


def tensors(rng, *shapes, requires_grad=True):
    return [mg.tensor(rng.normal(size=s), requires_grad=requires_grad) for s in shapes]


def ops_of(y):
    return {function.name for function in topological_order([y])}


@st.composite
def sdpa_case(draw):
    """Batch shapes that broadcast (size-1 axes), L != S allowed, and a mask kind."""
    batch = draw(st.sampled_from([(), (1,), (2,), (2, 3)]))
    def maybe_one(shape):
        return tuple(1 if draw(st.booleans()) else d for d in shape)
    L, S = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    E, Ev = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["none", "bool", "float", "float -inf", "causal"]))
    qs, ks, vs = maybe_one(batch) + (L, E), maybe_one(batch) + (S, E), maybe_one(batch) + (S, Ev)
    scores_batch = np.broadcast_shapes(qs[:-2], ks[:-2])  # a mask broadcasts TO the weights
    mask_shape = draw(st.sampled_from([(L, S), (1, S), (L, 1), maybe_one(scores_batch) + (L, S)]))
    scale = draw(st.sampled_from([None, 0.3]))
    return dict(qs=qs, ks=ks, vs=vs, kind=kind, mask_shape=mask_shape, scale=scale)


def make_mask(rng, kind, shape, dtype=np.float64):
    if kind == "bool":
        return rng.random(shape) < 0.6
    if kind == "float":
        return rng.normal(size=shape).astype(dtype)
    if kind == "float -inf":
        return np.where(rng.random(shape) < 0.6, rng.normal(size=shape), -np.inf).astype(dtype)
    return None


@settings(max_examples=60, deadline=None)
@given(case=sdpa_case(), seed=st.integers(0, 2**16))
def test_sdpa_matches_pytorch_math_and_its_composite(case, seed):
    rng = np.random.default_rng(seed)
    q, k, v = tensors(rng, case["qs"], case["ks"], case["vs"])
    mask = make_mask(rng, case["kind"], case["mask_shape"])
    causal = case["kind"] == "causal"
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                       scale=case["scale"])
    want = reference(q.numpy(), k.numpy(), v.numpy(), mask, causal, case["scale"])
    np.testing.assert_allclose(y.numpy(), want, **TIGHT)
    # gradients of the fused path equal those of the explicit composite
    allowed = None if mask is None or mask.dtype != bool else mask
    if causal:
        allowed = np.tril(np.ones((q.shape[-2], k.shape[-2]), bool))
    bias = None
    if mask is not None and mask.dtype != bool:
        blocked = np.isneginf(mask)
        allowed = ~blocked if blocked.any() else None
        bias = np.where(blocked, 0.0, mask)
    explicit = attention_weights(q, k, allowed, bias, case["scale"]) @ v
    w = mg.tensor(rng.uniform(0.5, 1.5, y.shape))
    got = mg.grad((y * w).sum(), [q, k, v])
    expected = mg.grad((explicit * w).sum(), [q, k, v])
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g.numpy(), e.numpy(), **TIGHT)
    assert np.isfinite(y.numpy()).all()


@pytest.mark.parametrize("L, S", [(5, 5), (3, 7), (7, 3)])
def test_is_causal_is_top_left_tril(L, S):
    rng = np.random.default_rng(0)
    q, k, v = tensors(rng, (2, L, 4), (2, S, 4), (2, S, 3))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    tril = np.tril(np.ones((L, S), bool))
    np.testing.assert_allclose(y.numpy(), reference(q.numpy(), k.numpy(), v.numpy(), tril),
                               **TIGHT)
    assert ("CausalAttention" in ops_of(y)) == (L == S)  # the chunked causal op when square


def test_each_path_is_a_fused_op():
    rng = np.random.default_rng(1)
    q, k, v = tensors(rng, (2, 70, 4), (2, 70, 4), (2, 70, 3))
    mask = rng.random((70, 70)) < 0.5
    assert "CausalAttention" in ops_of(F.scaled_dot_product_attention(q, k, v, is_causal=True))
    for m in (None, mask, mask.astype(np.float64)):
        names = ops_of(F.scaled_dot_product_attention(q, k, v, attn_mask=m))
        assert "MaskedAttention" in names and "Softmax" not in names
    assert "SlidingWindowAttention" in ops_of(F.sliding_window_attention(q, k, v, 5))


def test_a_row_with_no_key_gives_zero_and_finite_gradients():
    rng = np.random.default_rng(2)
    q, k, v = tensors(rng, (1, 4, 3), (1, 6, 3), (1, 6, 2))
    for mask in (np.ones((4, 6), bool), np.zeros((4, 6))):
        mask[1] = False if mask.dtype == bool else -np.inf
        for dropout_p in (0.0, 0.5):
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
            np.testing.assert_array_equal(y.numpy()[0, 1], 0.0)
            gq, gk, gv = mg.grad(y.sum(), [q, k, v])
            assert all(np.isfinite(g.numpy()).all() for g in (gq, gk, gv))
            np.testing.assert_array_equal(gq.numpy()[0, 1], 0.0)  # nothing flows through it


def test_sdpa_dropout_keeps_the_expectation_and_zero_is_identity():
    rng = np.random.default_rng(3)
    q, k, v = tensors(rng, (1, 3, 2), (1, 4, 2), (1, 4, 2), requires_grad=False)
    plain = F.scaled_dot_product_attention(q, k, v).numpy()
    gen = mg.Generator(0)
    mean = np.mean([F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=gen).numpy()
                    for _ in range(2000)], axis=0)
    np.testing.assert_allclose(mean, plain, atol=0.06)
    dropped = F.scaled_dot_product_attention(q, k, v, dropout_p=1.0).numpy()
    np.testing.assert_array_equal(dropped, 0.0)


def test_a_float_mask_that_requires_grad_gets_its_gradient():
    rng = np.random.default_rng(4)
    q, k, v = tensors(rng, (2, 3, 4), (2, 5, 4), (2, 5, 2))
    bias = mg.tensor(rng.normal(size=(3, 5)), requires_grad=True)
    mg.gradcheck(lambda q, k, v, b: F.scaled_dot_product_attention(q, k, v, attn_mask=b),
                 [q, k, v, bias])


@pytest.mark.parametrize("kind", ["none", "bool", "float", "causal"])
def test_sdpa_gradcheck_and_gradgradcheck(kind):
    rng = np.random.default_rng(5)
    q, k, v = tensors(rng, (2, 5, 3), (2, 5 if kind == "causal" else 4, 3),
                      (2, 5 if kind == "causal" else 4, 2))
    mask = make_mask(rng, kind, (5, k.shape[-2]))
    if kind == "bool":
        mask[2] = False  # a row with no key

    def fn(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=kind == "causal")
    mg.gradcheck(fn, [q, k, v])
    mg.gradgradcheck(fn, [q, k, v])


def test_sdpa_refuses_bad_input_naming_it():
    rng = np.random.default_rng(6)
    q, k, v = tensors(rng, (2, 3, 4), (2, 5, 4), (2, 5, 2))
    sdpa = F.scaled_dot_product_attention
    with pytest.raises(ValueError, match=r"same last axis E.*\(2, 3, 4\).*\(2, 5, 3\)"):
        sdpa(q, mg.randn(2, 5, 3), v)
    with pytest.raises(ValueError, match="same number of positions S"):
        sdpa(q, k, mg.randn(2, 4, 2))
    with pytest.raises(ValueError, match=r"\(4, 5\) does not broadcast.*\(2, 3, 5\)"):
        sdpa(q, k, v, attn_mask=np.ones((4, 5), bool))
    with pytest.raises(ValueError, match="either is_causal=True or an attn_mask"):
        sdpa(q, k, v, attn_mask=np.ones((3, 5), bool), is_causal=True)
    with pytest.raises(TypeError, match="must be bool.*float64.*int64"):
        sdpa(q, k, v, attn_mask=np.ones((3, 5), np.int64))
    with pytest.raises(TypeError, match="must be bool.*float64.*float32"):
        sdpa(q, k, v, attn_mask=np.ones((3, 5), np.float32))
    with pytest.raises(TypeError, match="one floating dtype"):
        sdpa(q, k.astype(np.float32), v)
    with pytest.raises(ValueError, match="batch axes.*do not broadcast"):
        sdpa(mg.randn(2, 3, 4), mg.randn(3, 5, 4), mg.randn(3, 5, 2))
    with pytest.raises(ValueError, match="dropout_p"):
        sdpa(q, k, v, dropout_p=1.5)


def test_masked_attention_beyond_one_chunk_matches_its_composite():
    # 150 queries: three chunks of 64, the last partial; a broadcast (1, L, S) mask
    rng = np.random.default_rng(7)
    q, k, v = tensors(rng, (2, 150, 4), (2, 90, 4), (2, 90, 3))
    allowed = rng.random((1, 150, 90)) < 0.3
    allowed[0, 100] = False
    bias = rng.normal(size=(150, 1))
    op = MaskedAttention(allowed, bias)
    fused, composite = op(q, k, v), op.composite(q, k, v)
    w = mg.tensor(rng.uniform(0.5, 1.5, fused.shape))
    np.testing.assert_allclose(fused.numpy(), composite.numpy(), **TIGHT)
    got = mg.grad((fused * w).sum(), [q, k, v])
    for g, e in zip(got, mg.grad((composite * w).sum(), [q, k, v])):
        np.testing.assert_allclose(g.numpy(), e.numpy(), **TIGHT)


# --- sliding_window_attention -------------------------------------------------------------

def band(T, window):
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    return (j <= i) & (j > i - window)


@settings(max_examples=40, deadline=None)
@given(lead=st.sampled_from([(), (1,), (2, 3)]), T=st.integers(1, 20), E=st.integers(1, 4),
       window=st.integers(1, 24), block=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_sliding_window_matches_the_masked_formula(lead, T, E, window, block, seed):
    # T need not be a multiple of the window or the block
    rng = np.random.default_rng(seed)
    q, k, v = tensors(rng, lead + (T, E), lead + (T, E), lead + (T, 2))
    y = F.sliding_window_attention(q, k, v, window, block=block)
    np.testing.assert_allclose(y.numpy(), reference(q.numpy(), k.numpy(), v.numpy(),
                                                     band(T, window)), **TIGHT)
    explicit = attention_weights(q, k, band(T, window)) @ v
    w = mg.tensor(rng.uniform(0.5, 1.5, y.shape))
    for g, e in zip(mg.grad((y * w).sum(), [q, k, v]), mg.grad((explicit * w).sum(), [q, k, v])):
        np.testing.assert_allclose(g.numpy(), e.numpy(), **TIGHT)


def test_sliding_window_edge_cases():
    rng = np.random.default_rng(8)
    q, k, v = tensors(rng, (2, 11, 3), (2, 11, 3), (2, 11, 2))
    causal = F.causal_attention(q, k, v).numpy()
    for window in (11, 12, 100):  # the window covers everything: causal attention
        np.testing.assert_allclose(F.sliding_window_attention(q, k, v, window).numpy(), causal,
                                   **TIGHT)
    np.testing.assert_allclose(F.sliding_window_attention(q, k, v, 1).numpy(), v.numpy(),
                               **TIGHT)  # window 1: each query takes its own value
    # output 7 depends on inputs 5..7 only with window 3
    (g,) = mg.grad(F.sliding_window_attention(q, k, v, 3)[:, 7].sum(), [k])
    touched = np.flatnonzero(np.abs(g.numpy()).sum(axis=(0, 2)))
    assert list(touched) == [5, 6, 7]


@pytest.mark.parametrize("window, block", [(1, 2), (3, 2), (4, 3), (8, 64)])
def test_sliding_window_gradcheck_and_gradgradcheck(window, block):
    rng = np.random.default_rng(9)
    q, k, v = tensors(rng, (2, 7, 3), (2, 7, 3), (2, 7, 2))

    def fn(q, k, v):
        return F.sliding_window_attention(q, k, v, window, block=block)
    mg.gradcheck(fn, [q, k, v])
    mg.gradgradcheck(fn, [q, k, v])


def test_sliding_window_never_makes_a_t_by_t_array():
    # the saved weights of T = 600, window 16, blocks of 64: each (.., 64, <= 79), not (.., 600)
    rng = np.random.default_rng(10)
    q, k, v = tensors(rng, (1, 600, 4), (1, 600, 4), (1, 600, 4))
    op = SlidingWindowAttention(16, 64)
    op(q, k, v)
    assert max(w.shape[-1] for w in op.weights) == 64 + 16 - 1
    assert sum(w.size for w in op.weights) < 600 * 80


def test_sliding_window_refuses_bad_input():
    q = mg.randn(2, 5, 3)
    with pytest.raises(ValueError, match="window must be an int >= 1, got 0"):
        F.sliding_window_attention(q, q, q, 0)
    with pytest.raises(ValueError, match="is self-attention"):
        F.sliding_window_attention(q, mg.randn(2, 6, 3), mg.randn(2, 6, 3), 2)
    with pytest.raises(ValueError, match="same last axis E"):
        F.sliding_window_attention(q, mg.randn(2, 5, 4), q, 2)
