"""Fused ops against their definitions, and numerical stability.

Two tables:
  FUSED         every FusedFunction in minigrad.ops against its own `composite`
                (the readable definition its backward falls back on);
  COMPOSITIONS  softmax, log_softmax, cross_entropy and layer_norm against the
                same formula written here from primitive minigrad ops.
Both compare value and gradient in float64 to rounding error. Then softmax,
log_softmax and cross_entropy get logits of magnitude 1e4 in float32 and float64.
"""
from typing import Callable, NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_ops import Draw, sliding_window_shapes
from test_ops import shapes as array_shapes
from test_ops import (DTYPES, attention_shapes, packed_attention_shapes, checks, cross_entropy_inputs,
                      cross_entropy_shapes, each, layer_norm_shapes, normal, np_cross_entropy, np_log_softmax, np_softmax,
                      seeds, softmax_axis, unary)

import minigrad as mg
import minigrad.ops
from minigrad.autograd import FusedFunction
from minigrad.ops.arithmetic import Linear
from minigrad.ops.elementwise import GELU
from minigrad import backend
from minigrad.ops.attention import MaskedAttention, SlidingWindowAttention
import minigrad.ops.nn as nn_ops
from minigrad.ops.nn import CausalAttention, PackedCausalAttention, CrossEntropy, LayerNorm, Softmax

TIGHT = dict(rtol=1e-10, atol=1e-12)  # float64, the same math in a different order


@st.composite
def masked_attention_shapes(draw):
    """q (..., L, E), k (..., S, E), v (..., S, Ev), L != S allowed, with a drawn bool mask
    (some rows may have no key) and float bias, each broadcastable to (..., L, S)."""
    lead = draw(array_shapes(max_dims=2))
    L, S = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    E, Ev = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    mask_shape = draw(st.sampled_from([(L, S), (1, S), (L, 1), lead + (L, S)]))
    allowed = None if draw(st.booleans()) else rng.random(mask_shape) < 0.6
    bias = None if draw(st.booleans()) else rng.normal(size=draw(st.sampled_from([(L, S), (1, S)])))
    scale = draw(st.sampled_from([None, 0.7]))
    params = dict(allowed=allowed, bias=bias, scale=scale, chunk=draw(st.integers(1, 4)))
    return Draw((lead + (L, E), lead + (S, E), lead + (S, Ev)), params)



@st.composite
def linear_shapes(draw, bias):
    """x (..., in) with 0-2 leading axes (a 1-D x too), weight (out, in), bias (out,)."""
    lead = draw(array_shapes(min_dims=0, max_dims=2))
    n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return Draw((lead + (n_in,), (n_out, n_in)) + (((n_out,),) if bias else ()), {})


class FusedCase(NamedTuple):
    name: str
    function: type               # the FusedFunction subclass
    args: tuple                  # its constructor's arguments (drawn params are added)
    draws: st.SearchStrategy     # -> Draw(shapes, params)
    inputs: Callable = each(normal)

    def __repr__(self):
        return self.name


FUSED = [
    FusedCase("Linear", Linear, (), linear_shapes(bias=True)),
    FusedCase("Linear, no bias", Linear, (), linear_shapes(bias=False)),
    FusedCase("GELU tanh", GELU, ("tanh",), unary()),
    FusedCase("GELU none", GELU, ("none",), unary()),
    FusedCase("CrossEntropy (N, C)", CrossEntropy, (), cross_entropy_shapes(1),
              cross_entropy_inputs),
    FusedCase("CrossEntropy (B, T, C)", CrossEntropy, (), cross_entropy_shapes(2),
              cross_entropy_inputs),
    FusedCase("CrossEntropy ignore_index=-1", CrossEntropy, (), cross_entropy_shapes(2, -1),
              cross_entropy_inputs),
    FusedCase("LayerNorm", LayerNorm, (1e-5,), layer_norm_shapes(affine=2)),
    FusedCase("Softmax", Softmax, (), softmax_axis()),
    FusedCase("CausalAttention", CausalAttention, (), attention_shapes()),
    FusedCase("PackedCausalAttention", PackedCausalAttention, (), packed_attention_shapes()),
    FusedCase("MaskedAttention", MaskedAttention, (), masked_attention_shapes()),
    FusedCase("SlidingWindowAttention", SlidingWindowAttention, (), sliding_window_shapes()),
]


def test_every_fused_function_has_a_case():
    assert minigrad.ops  # all op modules are imported, so every subclass is defined
    found, todo = set(), [FusedFunction]
    while todo:
        for subclass in todo.pop().__subclasses__():
            found.add(subclass)
            todo.append(subclass)
    missing = found - {case.function for case in FUSED}
    assert not missing, f"FusedFunctions with no case in FUSED: {[c.__name__ for c in missing]}"


def leaves(case, draw, seed, device):
    """float64 tensors for one example; the floating ones require grad."""
    arrays = case.inputs(np.random.default_rng(seed), draw)
    return [mg.tensor(np.asarray(a), device=device, requires_grad=a.dtype.kind == "f")
            for a in arrays]


def value_and_gradients(y, wrt, seed):
    """y, and the gradient of sum(y * w) (w fixed random weights) for each of wrt."""
    w = np.random.default_rng(seed + 1).uniform(0.5, 1.5, y.shape)
    g = mg.grad((y * mg.tensor(w, dtype=y.dtype, device=y.device)).sum(), wrt)
    return [y.numpy()] + [gi.numpy() for gi in g]


@pytest.mark.parametrize("case", FUSED, ids=repr)
@checks
@given(data=st.data(), seed=seeds)
def test_fused_matches_its_composite(case, device, data, seed):
    draw = data.draw(case.draws, label="shapes and params")
    inputs = leaves(case, draw, seed, device)
    wrt = [x for x in inputs if x.requires_grad]
    op = case.function(*case.args, **draw.params)
    fused = op(*inputs)                 # backward: backward_arrays on raw arrays
    composite = op.composite(*inputs)   # after forward: CrossEntropy's reads what it saved
    for got, want in zip(value_and_gradients(fused, wrt, seed),
                         value_and_gradients(composite, wrt, seed)):
        np.testing.assert_allclose(got, want, **TIGHT)


# --- the nn ops against formulas written here from primitive ops --------------------------

def softmax_from_primitives(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True).detach()  # softmax ignores the shift
    e = shifted.exp()
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax_from_primitives(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True).detach()
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()


def cross_entropy_from_primitives(logits, targets, ignore_index=-100):
    log_p = log_softmax_from_primitives(logits.reshape(-1, logits.shape[-1]))
    ids = targets.numpy().reshape(-1)
    rows = np.flatnonzero(ids != ignore_index)
    return -log_p[rows, ids[rows]].mean()


def layer_norm_from_primitives(x, weight=None, bias=None, eps=1e-5):
    centered = x - x.mean(axis=-1, keepdims=True)
    y = centered / ((centered * centered).mean(axis=-1, keepdims=True) + eps).sqrt()
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


class Composition(NamedTuple):
    name: str
    op: Callable
    primitive: Callable
    draws: st.SearchStrategy
    inputs: Callable = each(normal)

    def __repr__(self):
        return self.name


COMPOSITIONS = [
    Composition("softmax", mg.softmax, softmax_from_primitives, softmax_axis()),
    Composition("log_softmax", mg.log_softmax, log_softmax_from_primitives, softmax_axis()),
    Composition("cross_entropy (N, C)", mg.cross_entropy, cross_entropy_from_primitives,
                cross_entropy_shapes(1), cross_entropy_inputs),
    Composition("cross_entropy (B, T, C), ignore_index=-1", mg.cross_entropy,
                cross_entropy_from_primitives, cross_entropy_shapes(2, -1), cross_entropy_inputs),
    Composition("layer_norm", mg.layer_norm, layer_norm_from_primitives,
                layer_norm_shapes(affine=0)),
    Composition("layer_norm(weight, bias)", mg.layer_norm, layer_norm_from_primitives,
                layer_norm_shapes(affine=2)),
]


@pytest.mark.parametrize("case", COMPOSITIONS, ids=repr)
@checks
@given(data=st.data(), seed=seeds)
def test_nn_op_matches_primitive_composition(case, device, data, seed):
    draw = data.draw(case.draws, label="shapes and params")
    inputs = leaves(case, draw, seed, device)
    wrt = [x for x in inputs if x.requires_grad]
    for got, want in zip(value_and_gradients(case.op(*inputs, **draw.params), wrt, seed),
                         value_and_gradients(case.primitive(*inputs, **draw.params), wrt, seed)):
        np.testing.assert_allclose(got, want, **TIGHT)


# --- stability: logits of magnitude 1e4 ---------------------------------------------------

def np_softmax_grad(x, w, targets):      # d sum(softmax(x) * w) / dx
    s = np_softmax(x)
    return s * (w - (w * s).sum(axis=-1, keepdims=True))


def np_log_softmax_grad(x, w, targets):  # d sum(log_softmax(x) * w) / dx
    return w - np_softmax(x) * w.sum(axis=-1, keepdims=True)


def np_cross_entropy_grad(x, targets):  # (softmax(x) - onehot(targets)) / N
    g = np_softmax(x)
    g[np.arange(len(targets)), targets] -= 1.0
    return g / len(targets)


STABILITY = {
    "softmax": (lambda x, t: x.softmax(-1), lambda x, t: np_softmax(x), np_softmax_grad),
    "log_softmax": (lambda x, t: x.log_softmax(-1), lambda x, t: np_log_softmax(x),
                    np_log_softmax_grad),
    "cross_entropy": (mg.cross_entropy, np_cross_entropy,
                      lambda x, w, t: w * np_cross_entropy_grad(x, t)),
}
LOGITS = {
    "all near +1e4": lambda rng: 1e4 + rng.normal(size=(4, 5)),
    "all near -1e4": lambda rng: -1e4 + rng.normal(size=(4, 5)),
    "spread over +-1e4": lambda rng: 1e4 * rng.uniform(-1.0, 1.0, size=(4, 5)),
}
STABLE_TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: TIGHT}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("logits", LOGITS, ids=str)
@pytest.mark.parametrize("op", STABILITY, ids=str)
def test_large_logits_stay_finite_and_correct(op, logits, dtype, device):
    fn, np_fn, np_grad = STABILITY[op]
    rng = np.random.default_rng(0)
    data = LOGITS[logits](rng).astype(dtype)
    targets = rng.integers(0, 5, size=4)
    x = mg.tensor(data, device=device, requires_grad=True)
    y = fn(x, mg.tensor(targets, device=device))
    w = np.asarray(rng.uniform(0.5, 1.5, size=y.shape))
    (y * mg.tensor(w, dtype=dtype, device=device)).sum().backward()
    exact = data.astype(np.float64)  # the reference sees the same rounded logits
    assert y.dtype == dtype and x.grad.dtype == dtype
    assert np.isfinite(y.numpy()).all() and np.isfinite(x.grad.numpy()).all()
    np.testing.assert_allclose(y.numpy(), np_fn(exact, targets), **STABLE_TOLERANCE[dtype])
    np.testing.assert_allclose(x.grad.numpy(), np_grad(exact, w, targets),
                               **STABLE_TOLERANCE[dtype])


@pytest.mark.parametrize("axis", [-1, 1])
def test_masked_softmax_beyond_one_block_matches_its_composite(axis, monkeypatch):
    monkeypatch.setattr(backend, "BLOCKWISE_FROM", 0)  # blocks past one BLOCK
    # larger than backend.BLOCK, so the CPU path really runs block by block over rows
    rows, width = 4 * backend.BLOCK // 64 + 3, 64
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((2, rows // 2 + 1, width)), requires_grad=True)
    mask = rng.random((rows // 2 + 1, width)) < 0.3
    mask[5] = True  # a row with every key masked: even weights, and no gradient at all
    op = Softmax(axis, mask)
    fused, composite = op(x), op.composite(x)
    value, gradient = value_and_gradients(fused, [x], 0)
    for got, want in zip((value, gradient), value_and_gradients(composite, [x], 0)):
        np.testing.assert_allclose(got, want, **TIGHT)
    masked = np.broadcast_to(mask, x.shape)
    assert (gradient[masked] == 0).all()  # masked places are constants, not x
    if axis == -1:
        np.testing.assert_allclose(value[:, 5], 1 / width)  # all masked: even weights, not NaN
        assert (value[:, :5][masked[:, :5]] == 0).all()


def test_layer_norm_beyond_one_block_matches_its_composite(monkeypatch):
    monkeypatch.setattr(backend, "BLOCKWISE_FROM", 0)  # blocks past one BLOCK
    # larger than backend.BLOCK, with a row count that is not a multiple of the
    # rows per block, so the CPU path runs block by block and ends on a partial block
    width = 48
    rows = 3 * (backend.BLOCK // width) + 5
    rng = np.random.default_rng(2)
    x = mg.tensor(rng.standard_normal((rows, width)) * 3.0 + 1.0, requires_grad=True)
    weight = mg.tensor(rng.standard_normal(width), requires_grad=True)
    bias = mg.tensor(rng.standard_normal(width), requires_grad=True)
    op = LayerNorm(1e-5)
    fused, composite = op(x, weight, bias), op.composite(x, weight, bias)
    got = value_and_gradients(fused, [x, weight, bias], 0)
    want = value_and_gradients(composite, [x, weight, bias], 0)
    for g, w in zip(got, want):  # the value, then the gradients of x, weight and bias
        np.testing.assert_allclose(g, w, **TIGHT)


@pytest.mark.parametrize("shape", [(3, 2, 5, 4), (1, 3, 6, 2), (7, 3)])
def test_causal_attention_shared_among_threads_equals_one_thread(monkeypatch, pieces, shape):
    # two threads, each a share of the batch (axis 0, or the heads when B = 1); a 2-D
    # input has no batch to share and runs whole
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(shape) for _ in range(3)]
    results = []
    for count in (1, 2):
        monkeypatch.setattr(mg.threads, "_workers", count)
        monkeypatch.setattr(nn_ops, "PARALLEL_SCORES", 0)
        q, k, v = (mg.tensor(a, requires_grad=True) for a in arrays)
        y = mg.functional.causal_attention(q, k, v, chunk=2)
        results.append(value_and_gradients(y, [q, k, v], 0))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)
    assert pieces == [1, 1] + ([1, 1] if len(shape) == 2 else [2, 2])  # forward, backward


def test_masked_attention_shared_among_threads_equals_one_thread(monkeypatch, pieces):
    # a bool mask and a float bias, each broadcast over the batch
    rng = np.random.default_rng(8)
    q, k, v = (rng.standard_normal((3, 2) + s) for s in ((5, 4), (6, 4), (6, 3)))
    allowed = rng.random((2, 5, 6)) < 0.6
    bias = rng.standard_normal((5, 6))
    results = []
    monkeypatch.setattr(nn_ops, "PARALLEL_SCORES", 0)
    for count in (1, 2):
        monkeypatch.setattr(mg.threads, "_workers", count)
        inputs = [mg.tensor(a, requires_grad=True) for a in (q, k, v)]
        y = MaskedAttention(allowed, bias, chunk=2)(*inputs)
        results.append(value_and_gradients(y, inputs, 0))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)
    assert pieces == [1, 1, 2, 2]  # forward, backward at 1 and then 2 threads
