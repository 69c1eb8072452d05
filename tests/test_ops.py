"""Every op, checked against NumPy and against finite differences.

The table OPS below is the list of what is covered: one OpCase per op (or per
way of calling it). Each case says
  fn      what to compute, from minigrad tensors (and drawn parameters),
  ref     the same computation in NumPy,
  draws   a hypothesis strategy for the input shapes and the parameters
          (axis, keepdims, index keys, ...),
  inputs  how to fill those shapes with values, from a NumPy generator whose
          seed hypothesis draws; domains keep away from kinks and poles
          (relu/abs/clip/max away from 0, the bounds and ties; log, sqrt and
          fractional powers on positive numbers).
Four parametrized tests run over the table:
  test_forward_matches_numpy            each backend x float32/float64; the output
                                        keeps the input dtype (no float64 upcast);
  test_gradcheck                        float64 central differences, each backend;
  test_gradgradcheck                    the backward of the backward (gradgrad cases);
  test_gradients_keep_the_input_dtype   no float64 upcast inside any backward either.
The tests further down cover what does not fit a table: comparisons, fused
ops against their composites, numerical stability, dropout statistics and
error messages.
"""
import math
import operator
from typing import Callable, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg

# The device fixture is function-scoped, and each example builds its own inputs
# from a drawn seed, so sharing the fixture between examples is safe.
checks = settings(suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])
seeds = st.integers(0, 2**32 - 1)
DTYPES = [np.float32, np.float64]
# Results are compared with the NumPy reference computed in float64 from the same
# (rounded) inputs. float64 must agree to rounding error. float32 gets a few units
# of its own rounding, plus what float32 itself loses to cancellation (layer_norm and
# var subtract a row's mean from values close to it): FLOAT32_SLACK times the largest
# error of NumPy evaluating the same reference in float32, so minigrad's float32 must
# be about as accurate as NumPy's.
FORWARD_TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-6),
                     np.float64: dict(rtol=1e-10, atol=1e-12)}
FLOAT32_SLACK = 4.0


# --- how inputs are drawn ---------------------------------------------------------------

class Draw(NamedTuple):
    shapes: tuple   # one shape per input
    params: dict    # keyword arguments for fn and ref


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=3):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims,
                            min_side=min_side, max_side=max_side)


def unary(min_dims=0, max_dims=3, min_side=1):
    return shapes(min_dims, max_dims, min_side).map(lambda s: Draw((s,), {}))


def broadcasting(num_shapes=2):
    """Shapes that broadcast together, with size-1 axes and 0-d among them."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=0, max_dims=3, min_side=1, max_side=3,
    ).map(lambda r: Draw(r.input_shapes, {}))


def fixed(*input_shapes, **params):
    return st.just(Draw(tuple(input_shapes), params))


def axes_for(ndim):
    """axis=None, an int (negative too), or a tuple of axes (negative too, maybe empty)."""
    choices = [st.none(), hnp.valid_tuple_axes(ndim)]
    if ndim:
        choices.append(st.integers(-ndim, ndim - 1))
    return st.one_of(choices)


def reduced_count(shape, axis):
    if axis is None:
        return math.prod(shape)
    axes = (axis,) if isinstance(axis, int) else axis
    return math.prod(shape[a] for a in axes)


@st.composite
def reduction(draw, min_dims=0, min_side=1, ddof=None):
    shape = draw(shapes(min_dims=min_dims, min_side=min_side))
    axis = draw(axes_for(len(shape)))
    params = dict(axis=axis, keepdims=draw(st.booleans()))
    if ddof is not None:
        if reduced_count(shape, axis) <= ddof:
            params["axis"] = None  # var needs more elements than ddof
        params["ddof"] = ddof
    return Draw((shape,), params)


@st.composite
def matmul_shapes(draw):
    """(..., m, k) @ (..., k, n) with broadcast batch dims; either side may be 1-D."""
    m, k, n = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3))
    a, b = batch.input_shapes[0] + (m, k), batch.input_shapes[1] + (k, n)
    if draw(st.booleans()) and draw(st.booleans()):
        a = (k,)
    if draw(st.booleans()) and draw(st.booleans()):
        b = (k,)
    return Draw((a, b), {})


@st.composite
def softmax_axis(draw):
    shape = draw(shapes(min_dims=1))
    return Draw((shape,), dict(axis=draw(st.integers(-len(shape), len(shape) - 1))))


@st.composite
def reshape_target(draw):
    shape = draw(shapes())
    target = list(draw(st.permutations(shape)))
    for _ in range(draw(st.integers(0, 2))):
        target.insert(draw(st.integers(0, len(target))), 1)
    if target and draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return Draw((shape,), dict(target=tuple(target)))


@st.composite
def permutation(draw):
    shape = draw(shapes())
    axes = draw(st.permutations(range(len(shape))))
    axes = tuple(a - len(shape) if draw(st.booleans()) else a for a in axes)  # negatives too
    return Draw((shape,), dict(axes=axes))


@st.composite
def two_axes(draw):
    shape = draw(shapes(min_dims=1))
    axis = st.integers(-len(shape), len(shape) - 1)
    return Draw((shape,), dict(a=draw(axis), b=draw(axis)))


@st.composite
def broadcast_target(draw, with_minus_one=False):
    """A shape and a target it broadcasts to (new leading axes, size-1 axes grown)."""
    shape = draw(shapes(max_dims=2))
    grown = [draw(st.integers(1, 3)) if n == 1 else n for n in shape]
    if with_minus_one:  # expand: -1 keeps an existing axis as it is
        grown = [-1 if draw(st.booleans()) else g for g in grown]
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    return Draw((shape,), dict(target=tuple(lead + grown)))


@st.composite
def squeezable(draw):
    shape = draw(shapes(max_side=2))  # plenty of size-1 axes
    ones = [i for i, n in enumerate(shape) if n == 1]
    chosen = draw(st.lists(st.sampled_from(ones), unique=True)) if ones else []
    chosen = [a - len(shape) if draw(st.booleans()) else a for a in chosen]
    if not chosen or draw(st.booleans()):
        axis = None
    elif len(chosen) == 1 and draw(st.booleans()):
        axis = chosen[0]
    else:
        axis = tuple(chosen)
    return Draw((shape,), dict(axis=axis))


@st.composite
def unsqueeze_axis(draw):
    shape = draw(shapes())
    return Draw((shape,), dict(axis=draw(st.integers(-len(shape) - 1, len(shape)))))


@st.composite
def basic_index(draw):
    """Ints, slices (negative steps too), None and Ellipsis."""
    shape = draw(shapes(min_dims=1))
    key = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    return Draw((shape,), dict(key=key))


@st.composite
def integer_array_index(draw):
    """A tuple of integer arrays (repeated and negative indices included)."""
    shape = draw(shapes(min_dims=1))
    key = draw(hnp.integer_array_indices(shape, result_shape=shapes(min_dims=1, max_dims=2)))
    return Draw((shape,), dict(key=key))


@st.composite
def concat_pieces(draw):
    shape = list(draw(shapes(min_dims=1)))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    sizes = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))  # empty pieces too
    pieces = []
    for size in sizes:
        shape[axis] = size
        pieces.append(tuple(shape))
    return Draw(tuple(pieces), dict(axis=axis))


@st.composite
def stack_pieces(draw):
    shape = draw(shapes())
    count = draw(st.integers(1, 3))
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    return Draw((shape,) * count, dict(axis=axis))


@st.composite
def split_sections(draw, as_indices):
    shape = list(draw(shapes(min_dims=1)))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    if as_indices:  # unequal pieces, cut at sorted indices (empty pieces allowed)
        sections = sorted(draw(st.lists(st.integers(0, shape[axis]), min_size=1, max_size=3)))
    else:           # equal pieces
        sections = draw(st.integers(1, 3))
        shape[axis] = sections * draw(st.integers(1, 2))
    return Draw((tuple(shape),), dict(indices_or_sections=sections, axis=axis))


@st.composite
def split_sizes(draw, as_list):
    """PyTorch's split: one chunk size (the last chunk may be shorter), or a list of sizes."""
    shape = list(draw(shapes(min_dims=1)))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    if as_list:
        sizes = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
        shape[axis] = sum(sizes)
        return Draw((tuple(shape),), dict(split_size_or_sections=sizes, axis=axis))
    shape[axis] = max(shape[axis], 1)
    size = draw(st.integers(1, 3))
    return Draw((tuple(shape),), dict(split_size_or_sections=size, axis=axis))


@st.composite
def mask_for(draw):
    """x's shape and a mask shape that broadcasts to it."""
    shape = draw(shapes())
    mask = [1 if draw(st.booleans()) else n for n in shape][draw(st.integers(0, len(shape))):]
    return Draw((shape, tuple(mask)), {})


@st.composite
def cross_entropy_shapes(draw, lead_dims, ignore_index=-100):
    lead = draw(shapes(min_dims=lead_dims, max_dims=lead_dims))
    classes = draw(st.integers(1, 4))
    return Draw((lead + (classes,), lead), dict(ignore_index=ignore_index))


@st.composite
def layer_norm_shapes(draw, affine):
    lead = draw(shapes(max_dims=2))
    size = draw(st.integers(2, 4))
    return Draw((lead + (size,),) + ((size,),) * affine, {})


@st.composite
def attention_shapes(draw):
    """q, k, v (..., T, head_size) and a chunk size: T from 1 (a single query) past a few chunks."""
    lead = draw(shapes(max_dims=2))
    T, head_size, value_size = draw(st.integers(1, 7)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    qk = lead + (T, head_size)
    return Draw((qk, qk, lead + (T, value_size)), dict(chunk=draw(st.integers(1, 4))))


@st.composite
def packed_attention_shapes(draw):
    """qkv (..., T, 3 * n_head * hs) with 0-2 leading axes, n_head and a chunk size."""
    lead = draw(shapes(max_dims=2))
    T, n_head, head_size = draw(st.integers(1, 7)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    return Draw((lead + (T, 3 * n_head * head_size),),
                dict(n_head=n_head, chunk=draw(st.integers(1, 4))))


@st.composite
def sdpa_shapes(draw):
    """query (..., L, E), key (..., S, E), value (..., S, Ev) with L != S allowed, and a bool
    attn_mask (some rows may have no key) or is_causal, or neither; a scale or None."""
    lead = draw(shapes(max_dims=2))
    L, S, E, Ev = (draw(st.integers(1, 6)) for _ in range(4))
    kind = draw(st.sampled_from(["none", "mask", "causal"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    mask = rng.random(draw(st.sampled_from([(L, S), (1, S), lead + (L, S)]))) < 0.6 \
        if kind == "mask" else None
    params = dict(attn_mask=mask, is_causal=kind == "causal",
                  scale=draw(st.sampled_from([None, 0.5])))
    return Draw((lead + (L, E), lead + (S, E), lead + (S, Ev)), params)


@st.composite
def sliding_window_shapes(draw):
    """q, k (..., T, E), v (..., T, Ev), a window and a block: T a multiple of neither."""
    lead = draw(shapes(max_dims=2))
    T, E, Ev = draw(st.integers(1, 9)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    params = dict(window=draw(st.integers(1, 10)), block=draw(st.integers(1, 4)))
    return Draw((lead + (T, E), lead + (T, E), lead + (T, Ev)), params)


@st.composite
def embedding_shapes(draw):
    rows, dim = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return Draw(((rows, dim), draw(shapes(min_dims=1, max_dims=2))), {})


# --- value domains: sampler(rng, shape) -> float64 (or bool/int) array -----------------

def normal(rng, shape):
    return rng.normal(size=shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, size=shape)


def away_from_zero(rng, shape):
    return rng.uniform(0.2, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def away_from_half(rng, shape):
    """Values at least 0.1 away from -0.5 and 0.5, the bounds of the clip cases."""
    centers = rng.choice([-1.0, 0.0, 1.0], size=shape)
    return centers + rng.uniform(-0.4, 0.4, size=shape)


def distinct(rng, shape):
    """No ties anywhere (max/min): neighbouring values are at least 0.2 apart."""
    n = math.prod(shape)
    values = rng.permutation(n) * 0.25 - 0.125 * n + rng.uniform(0.0, 0.05, size=n)
    return values.reshape(shape)


def boolean(rng, shape):
    return rng.random(shape) < 0.5


def each(*samplers):
    """inputs: the i-th input from the i-th sampler (the last one repeats)."""
    def make(rng, draw):
        return [samplers[min(i, len(samplers) - 1)](rng, s) for i, s in enumerate(draw.shapes)]
    return make


def cross_entropy_inputs(rng, draw):
    logits_shape, targets_shape = draw.shapes
    ignore = draw.params["ignore_index"]
    targets = rng.integers(0, logits_shape[-1], size=targets_shape)
    if ignore != -100 or rng.random() < 0.5:
        targets[rng.random(targets_shape) < 0.3] = ignore
        targets.reshape(-1)[0] = rng.integers(0, logits_shape[-1])  # at least one counts
    return [rng.normal(size=logits_shape), targets]


def embedding_inputs(rng, draw):
    weight_shape, ids_shape = draw.shapes
    return [rng.normal(size=weight_shape), rng.integers(0, weight_shape[0], size=ids_shape)]


# --- NumPy references -------------------------------------------------------------------

np_erf = np.vectorize(math.erf, otypes=[np.float64])


def const_like(x, low=0.5, high=1.5):
    """A fixed array shaped and typed like x (a Tensor or an ndarray), on x's device."""
    values = np.linspace(low, high, int(np.prod(x.shape))).reshape(x.shape).astype(x.dtype)
    return x.xp.asarray(values) if isinstance(x, mg.Tensor) else values


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def np_gelu_erf(x):
    return 0.5 * x * (1.0 + np_erf(x / math.sqrt(2.0)))


def np_log_softmax(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def np_softmax(x, axis=-1):
    return np.exp(np_log_softmax(x, axis))


def np_cross_entropy(logits, targets, ignore_index=-100):
    log_p = np_log_softmax(logits.reshape(-1, logits.shape[-1]))
    targets = targets.reshape(-1)
    valid = targets != ignore_index
    picked = log_p[np.arange(len(targets)), np.where(valid, targets, 0)]
    return -(picked * valid).sum() / valid.sum()


def np_layer_norm(x, weight=None, bias=None, eps=1e-5):
    centered = x - x.mean(axis=-1, keepdims=True)
    y = centered / np.sqrt((centered**2).mean(axis=-1, keepdims=True) + eps)
    return y * (1.0 if weight is None else weight) + (0.0 if bias is None else bias)


def np_causal_attention(q, k, v, chunk):
    T = q.shape[-2]
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1])
    scores = np.where(np.triu(np.ones((T, T), dtype=bool), k=1), -np.inf, scores)
    return np_softmax(scores) @ v


def np_packed_causal_attention(qkv, n_head, chunk):
    *lead, T, width = qkv.shape
    C = width // 3
    q, k, v = (np.swapaxes(part.reshape(*lead, T, n_head, C // n_head), -2, -3)
               for part in np.split(qkv, 3, axis=-1))
    y = np_causal_attention(q, k, v, chunk)                  # (..., nh, T, hs)
    return np.swapaxes(y, -2, -3).reshape(*lead, T, C)


def np_sdpa(q, k, v, attn_mask=None, is_causal=False, scale=None):
    """PyTorch's math for scaled_dot_product_attention; a row with no key gives 0."""
    L, S = q.shape[-2], k.shape[-2]
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    allowed = np.tril(np.ones((L, S), bool)) if is_causal else np.ones((L, S), bool)
    allowed = allowed if attn_mask is None else allowed & attn_mask
    scores = np.where(allowed, q @ k.swapaxes(-1, -2) * scale, -np.inf)
    top = scores.max(axis=-1, keepdims=True)
    e = np.exp(scores - np.where(np.isfinite(top), top, 0))
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0) @ v


def np_sliding_window_attention(q, k, v, window, block):
    i, j = np.arange(q.shape[-2])[:, None], np.arange(q.shape[-2])[None, :]
    return np_sdpa(q, k, v, attn_mask=(j <= i) & (j > i - window))


def np_attention_weights(q, k, attn_mask=None, is_causal=False, scale=None):
    return np_sdpa(q, k, np.eye(k.shape[-2]), attn_mask, is_causal, scale)


def np_expand(x, target):
    lead = len(target) - x.ndim
    return np.broadcast_to(x, [x.shape[i - lead] if n == -1 else n for i, n in enumerate(target)])


def np_unsqueeze(x, axis):
    return np.expand_dims(x, axis)


def np_split(x, indices_or_sections, axis):
    return tuple(np.array_split(x, indices_or_sections, axis=axis))


def np_split_sizes(x, split_size_or_sections, axis):
    sizes = split_size_or_sections
    if isinstance(sizes, int):
        return tuple(np.split(x, range(sizes, x.shape[axis], sizes), axis=axis))
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


def np_chunk(x, chunks, axis):
    size = -(-x.shape[axis] // chunks)
    return tuple(np.split(x, range(size, x.shape[axis], size), axis=axis))


# --- the table ----------------------------------------------------------------------------

def _allowed(q, k, attn_mask, is_causal):
    """attention_weights' `allowed` for sdpa_shapes' params."""
    if is_causal:
        return np.tril(np.ones((q.shape[-2], k.shape[-2]), bool))
    return attn_mask


class OpCase(NamedTuple):
    name: str
    fn: Callable                  # (*tensors, **params) -> Tensor or tuple of Tensors
    ref: Callable                 # (*arrays, **params) -> the same in NumPy; None: no reference
    draws: st.SearchStrategy      # -> Draw(shapes, params)
    inputs: Callable = each(normal)  # (rng, Draw) -> list of arrays
    gradgrad: bool = False        # also run gradgradcheck

    def __repr__(self):
        return self.name


def elementwise(name, fn, ref, domain=normal):
    return OpCase(name, fn, ref, unary(), each(domain), gradgrad=True)


def binary(name, fn, ref, *domains):
    return OpCase(name, fn, ref, broadcasting(), each(*(domains or (normal,))), gradgrad=True)


DIVISOR = (normal, away_from_zero)

OPS = [
    # arithmetic, with broadcasting (size-1 axes and 0-d included)
    binary("x + y", lambda x, y: x + y, np.add),
    binary("x - y", lambda x, y: x - y, np.subtract),
    binary("x * y", lambda x, y: x * y, np.multiply),
    binary("x / y", lambda x, y: x / y, np.divide, *DIVISOR),
    binary("x ** y", lambda x, y: x ** y, np.power, positive, normal),
    elementwise("-x", lambda x: -x, np.negative),
    elementwise("neg(x)", mg.neg, np.negative),
    # tensor ** number, number ** tensor, and Python numbers on either side
    elementwise("x ** 2", lambda x: x ** 2, lambda x: x ** 2),
    elementwise("x ** 3", lambda x: x ** 3, lambda x: x ** 3),
    elementwise("x ** 0.5", lambda x: x ** 0.5, np.sqrt, positive),
    elementwise("x ** -1.5", lambda x: x ** -1.5, lambda x: x ** -1.5, positive),
    elementwise("2.0 ** x", lambda x: 2.0 ** x, lambda x: 2.0 ** x),
    elementwise("0.5 ** x", lambda x: 0.5 ** x, lambda x: 0.5 ** x),
    elementwise("x * 2.0", lambda x: x * 2.0, lambda x: x * 2.0),
    elementwise("2.0 * x", lambda x: 2.0 * x, lambda x: 2.0 * x),
    elementwise("x + 3", lambda x: x + 3, lambda x: x + 3),
    elementwise("1 - x", lambda x: 1 - x, lambda x: 1 - x),
    elementwise("x - 0.25", lambda x: x - 0.25, lambda x: x - 0.25),
    elementwise("x / 4.0", lambda x: x / 4.0, lambda x: x / 4.0),
    elementwise("2.0 / x", lambda x: 2.0 / x, lambda x: 2.0 / x, away_from_zero),
    # NumPy arrays on the left give Tensors (Tensor.__array_ufunc__ = None)
    elementwise("ndarray + x", lambda x: const_like(x) + x, lambda x: const_like(x) + x),
    elementwise("ndarray - x", lambda x: const_like(x) - x, lambda x: const_like(x) - x),
    elementwise("ndarray * x", lambda x: const_like(x) * x, lambda x: const_like(x) * x),
    elementwise("ndarray / x", lambda x: const_like(x) / x, lambda x: const_like(x) / x,
                away_from_zero),
    elementwise("ndarray ** x", lambda x: const_like(x) ** x, lambda x: const_like(x) ** x),
    OpCase("ndarray @ x", lambda x: const_like(x.T) @ x, lambda x: const_like(x.T) @ x,
           fixed((3, 2)), gradgrad=True),
    # matmul: every rank combination NumPy allows, batch dims broadcast
    OpCase("x @ y", lambda a, b: a @ b, np.matmul, matmul_shapes(), gradgrad=True),
    OpCase("matmul 1-D @ 1-D", mg.matmul, np.matmul, fixed((3,), (3,)), gradgrad=True),
    OpCase("matmul 1-D @ 2-D", mg.matmul, np.matmul, fixed((3,), (3, 2)), gradgrad=True),
    OpCase("matmul 2-D @ 1-D", mg.matmul, np.matmul, fixed((2, 3), (3,)), gradgrad=True),
    OpCase("matmul 2-D @ 2-D", mg.matmul, np.matmul, fixed((2, 3), (3, 4)), gradgrad=True),
    OpCase("matmul 1-D @ 3-D", mg.matmul, np.matmul, fixed((3,), (2, 3, 2))),
    OpCase("matmul 3-D @ 1-D", mg.matmul, np.matmul, fixed((2, 2, 3), (3,))),
    OpCase("matmul 3-D @ 3-D", mg.matmul, np.matmul, fixed((2, 2, 3), (2, 3, 2)),
           gradgrad=True),
    OpCase("matmul 4-D @ 4-D", mg.matmul, np.matmul, fixed((2, 1, 2, 3), (1, 2, 3, 2))),
    OpCase("matmul (2,1,3,4) @ (5,4,2)", mg.matmul, np.matmul, fixed((2, 1, 3, 4), (5, 4, 2))),
    OpCase("matmul (B,T,C) @ (C,D)", mg.matmul, np.matmul, fixed((2, 3, 4), (4, 2)),
           gradgrad=True),
    OpCase("matmul 2-D @ 3-D", mg.matmul, np.matmul, fixed((2, 3), (2, 3, 2))),
    # linear: x @ W.T + b with W stored (out, in), as nn.Linear
    OpCase("linear (B,T,in)", mg.linear, lambda x, w, b: x @ w.T + b,
           fixed((2, 3, 4), (5, 4), (5,)), gradgrad=True),
    OpCase("linear 1-D, no bias", mg.linear, lambda x, w: x @ w.T, fixed((4,), (3, 4)),
           gradgrad=True),
    # elementwise math
    elementwise("exp", mg.exp, np.exp),
    elementwise("log", mg.log, np.log, positive),
    elementwise("sqrt", mg.sqrt, np.sqrt, positive),
    elementwise("tanh", mg.tanh, np.tanh),
    elementwise("sigmoid", mg.sigmoid, np_sigmoid),
    elementwise("relu", mg.relu, lambda x: np.maximum(x, 0.0), away_from_zero),
    elementwise("gelu tanh", lambda x: mg.gelu(x, approximate="tanh"), np_gelu_tanh),
    elementwise("gelu none", lambda x: mg.gelu(x, approximate="none"), np_gelu_erf),
    elementwise("erf", mg.erf, np_erf),
    elementwise("abs", mg.abs, np.abs, away_from_zero),
    elementwise("clip(-0.5, 0.5)", lambda x: x.clip(-0.5, 0.5),
                lambda x: np.clip(x, -0.5, 0.5), away_from_half),
    elementwise("clip(low=-0.5)", lambda x: mg.clip(x, low=-0.5),
                lambda x: np.maximum(x, -0.5), away_from_half),
    elementwise("clip(high=0.5)", lambda x: mg.clip(x, high=0.5),
                lambda x: np.minimum(x, 0.5), away_from_half),
    # reductions over axis None / int / negative int / tuple, keepdims True and False
    OpCase("sum", lambda x, **p: x.sum(**p), lambda x, **p: x.sum(**p),
           reduction(min_side=0), gradgrad=True),  # size-0 axes too: zeros, zero gradient
    OpCase("mean", lambda x, **p: x.mean(**p), lambda x, **p: x.mean(**p),
           reduction(), gradgrad=True),
    OpCase("max", lambda x, **p: x.max(**p), lambda x, **p: x.max(**p),
           reduction(), each(distinct), gradgrad=True),
    OpCase("min", lambda x, **p: mg.min(x, **p), lambda x, **p: x.min(**p),
           reduction(), each(distinct), gradgrad=True),
    OpCase("var ddof=0", lambda x, **p: x.var(**p), lambda x, **p: x.var(**p),
           reduction(ddof=0), gradgrad=True),
    OpCase("var ddof=1", lambda x, **p: x.var(**p), lambda x, **p: x.var(**p),
           reduction(min_dims=1, min_side=2, ddof=1), gradgrad=True),
    # shape ops
    OpCase("reshape", lambda x, target: x.reshape(target),
           lambda x, target: x.reshape(target), reshape_target()),
    OpCase("reshape(*sizes)", lambda x: x.reshape(-1, 2), lambda x: x.reshape(-1, 2),
           fixed((3, 2, 2))),
    OpCase("flatten", lambda x: x.flatten(), np.ravel, unary()),
    OpCase("permute(*axes)", lambda x, axes: x.permute(*axes),
           lambda x, axes: x.transpose(axes), permutation()),
    OpCase("permute(axes)", lambda x, axes: x.permute(axes),
           lambda x, axes: x.transpose(axes), permutation()),
    OpCase("permute()", lambda x: x.permute(), np.transpose, unary()),
    OpCase("transpose(d0, d1) swaps two axes", lambda x, a, b: x.transpose(a, b),
           lambda x, a, b: np.swapaxes(x, a, b), two_axes()),
    OpCase(".T", lambda x: x.T, lambda x: x.T, unary()),
    OpCase("swapaxes", lambda x, a, b: x.swapaxes(a, b),
           lambda x, a, b: np.swapaxes(x, a, b), two_axes()),
    OpCase("broadcast_to", lambda x, target: x.broadcast_to(target),
           lambda x, target: np.broadcast_to(x, target), broadcast_target()),
    OpCase("expand", lambda x, target: x.expand(*target), np_expand,
           broadcast_target(with_minus_one=True)),
    OpCase("squeeze", lambda x, axis: x.squeeze(axis),
           lambda x, axis: np.squeeze(x, axis), squeezable()),
    OpCase("unsqueeze", lambda x, axis: x.unsqueeze(axis), np_unsqueeze, unsqueeze_axis()),
    # indexing
    OpCase("x[basic key]", lambda x, key: x[key], lambda x, key: x[key], basic_index()),
    OpCase("x[integer arrays]", lambda x, key: x[key], lambda x, key: x[key],
           integer_array_index()),
    OpCase("x[1]", lambda x: x[1], lambda x: x[1], fixed((4, 3, 2))),
    OpCase("x[-1, 2]", lambda x: x[-1, 2], lambda x: x[-1, 2], fixed((4, 3, 2))),
    OpCase("x[1:3]", lambda x: x[1:3], lambda x: x[1:3], fixed((4, 3, 2))),
    OpCase("x[::-1, ::-2]", lambda x: x[::-1, ::-2], lambda x: x[::-1, ::-2], fixed((4, 3, 2))),
    OpCase("x[3:0:-2, 1]", lambda x: x[3:0:-2, 1], lambda x: x[3:0:-2, 1], fixed((4, 3, 2))),
    OpCase("x[None, :, None]", lambda x: x[None, :, None], lambda x: x[None, :, None],
           fixed((4, 3, 2))),
    OpCase("x[..., 1]", lambda x: x[..., 1], lambda x: x[..., 1], fixed((4, 3, 2))),
    OpCase("x[1, ..., None]", lambda x: x[1, ..., None], lambda x: x[1, ..., None],
           fixed((4, 3, 2))),
    OpCase("x[[0, 0, 3, 0]] repeats", lambda x: x[[0, 0, 3, 0]], lambda x: x[[0, 0, 3, 0]],
           fixed((4, 3, 2))),
    OpCase("x[[[0, 1], [1, 1]]]", lambda x: x[[[0, 1], [1, 1]]], lambda x: x[[[0, 1], [1, 1]]],
           fixed((4, 3, 2))),
    OpCase("x[[1, 1], [2, 2]] same element", lambda x: x[[1, 1], [2, 2]],
           lambda x: x[[1, 1], [2, 2]], fixed((4, 3, 2))),
    OpCase("x[:, [2, 0, 2]]", lambda x: x[:, [2, 0, 2]], lambda x: x[:, [2, 0, 2]],
           fixed((4, 3, 2))),
    OpCase("x[idx, 1:]", lambda x: x[np.array([2, 2, 0]), 1:],
           lambda x: x[np.array([2, 2, 0]), 1:], fixed((4, 3, 2))),
    OpCase("x[-1, [1, -1, 1]]", lambda x: x[-1, [1, -1, 1]], lambda x: x[-1, [1, -1, 1]],
           fixed((4, 3, 2))),
    OpCase("x[bool mask, same shape]", lambda x, m: x[m], lambda x, m: x[m],
           fixed((4, 3, 2), (4, 3, 2)), each(normal, boolean)),
    OpCase("x[bool mask on axis 0]", lambda x, m: x[m], lambda x, m: x[m],
           fixed((4, 3, 2), (4,)), each(normal, boolean)),
    OpCase("x[bool mask, 1:]", lambda x, m: x[m, 1:], lambda x, m: x[m, 1:],
           fixed((4, 3, 2), (4,)), each(normal, boolean)),
    # joining and splitting
    OpCase("concatenate", lambda *xs, axis: mg.concatenate(xs, axis=axis),
           lambda *xs, axis: np.concatenate(xs, axis=axis), concat_pieces()),
    OpCase("stack", lambda *xs, axis: mg.stack(xs, axis=axis),
           lambda *xs, axis: np.stack(xs, axis=axis), stack_pieces()),
    OpCase("split into chunks of a size", lambda x, **p: mg.split(x, **p), np_split_sizes,
           split_sizes(as_list=False)),
    OpCase("split into listed sizes", lambda x, **p: mg.split(x, **p), np_split_sizes,
           split_sizes(as_list=True)),
    OpCase("chunk", lambda x: mg.chunk(x, 3, axis=-1), lambda x: np_chunk(x, 3, axis=-1),
           fixed((2, 7))),
    OpCase("tensor_split into nearly equal parts", lambda x, **p: mg.tensor_split(x, **p),
           np_split, split_sections(as_indices=False)),
    OpCase("tensor_split at indices", lambda x, **p: mg.tensor_split(x, **p), np_split,
           split_sections(as_indices=True)),
    OpCase("split, some outputs unused", lambda x: mg.split(x, [1, 2, 1], axis=1)[::2],
           lambda x: np.split(x, [1, 3], axis=1)[::2], fixed((2, 4))),
    OpCase("split, one output used", lambda x: mg.split(x, 2, axis=-1)[1],
           lambda x: np.split(x, 3, axis=-1)[1], fixed((2, 6))),
    # selection
    OpCase("where(c, x, y)", mg.where, np.where, broadcasting(3), each(boolean, normal)),
    OpCase("where(c, 0.5, y)", lambda c, y: mg.where(c, 0.5, y),
           lambda c, y: np.where(c, 0.5, y), broadcasting(2), each(boolean, normal)),
    OpCase("where(c, x, -2)", lambda c, x: mg.where(c, x, -2),
           lambda c, x: np.where(c, x, -2.0), broadcasting(2), each(boolean, normal)),
    OpCase("masked_fill", lambda x, m: x.masked_fill(m, -1.5),
           lambda x, m: np.where(m, -1.5, x), mask_for(), each(normal, boolean)),
    # neural-network ops
    OpCase("softmax", lambda x, axis: x.softmax(axis), np_softmax, softmax_axis(),
           gradgrad=True),
    OpCase("log_softmax", lambda x, axis: mg.log_softmax(x, axis), np_log_softmax,
           softmax_axis(), gradgrad=True),
    OpCase("cross_entropy (N, C)", mg.cross_entropy, np_cross_entropy,
           cross_entropy_shapes(1), cross_entropy_inputs, gradgrad=True),
    OpCase("cross_entropy (B, T, C)", mg.cross_entropy, np_cross_entropy,
           cross_entropy_shapes(2), cross_entropy_inputs, gradgrad=True),
    OpCase("cross_entropy ignore_index=-1", mg.cross_entropy, np_cross_entropy,
           cross_entropy_shapes(2, ignore_index=-1), cross_entropy_inputs),
    OpCase("layer_norm", mg.layer_norm, np_layer_norm, layer_norm_shapes(affine=0),
           gradgrad=True),
    OpCase("layer_norm(weight)", mg.layer_norm, np_layer_norm, layer_norm_shapes(affine=1)),
    OpCase("layer_norm(weight, bias)", mg.layer_norm, np_layer_norm,
           layer_norm_shapes(affine=2), gradgrad=True),
    OpCase("causal_attention", mg.causal_attention, np_causal_attention, attention_shapes(),
           gradgrad=True),
    OpCase("packed_causal_attention", mg.packed_causal_attention, np_packed_causal_attention,
           packed_attention_shapes(), gradgrad=True),
    OpCase("scaled_dot_product_attention", mg.scaled_dot_product_attention, np_sdpa,
           sdpa_shapes(), gradgrad=True),
    OpCase("sliding_window_attention", mg.sliding_window_attention,
           np_sliding_window_attention, sliding_window_shapes(), gradgrad=True),
    OpCase("attention_weights",
           lambda q, k, v, attn_mask, is_causal, scale: mg.attention_weights(
               q, k, _allowed(q, k, attn_mask, is_causal), None, scale),
           lambda q, k, v, **params: np_attention_weights(q, k, **params), sdpa_shapes(),
           gradgrad=True),
    OpCase("embedding (repeated ids)", mg.embedding, lambda w, ids: w[ids],
           embedding_shapes(), embedding_inputs, gradgrad=True),
    OpCase("embedding fixed ids", mg.embedding, lambda w, ids: w[ids],
           fixed((3, 2), (2, 3)),
           lambda rng, d: [rng.normal(size=(3, 2)), np.array([[0, 2, 0], [0, 0, 1]])]),
    OpCase("dropout p=0", lambda x: mg.dropout(x, 0.0), lambda x: x, unary()),
    OpCase("dropout eval", lambda x: mg.dropout(x, 0.5, training=False), lambda x: x, unary()),
    OpCase("dropout p=1", lambda x: mg.dropout(x, 1.0), np.zeros_like, unary()),
    # a generator built inside fn draws the same mask at every evaluation
    OpCase("dropout p=0.3, fixed generator",
           lambda x: mg.dropout(x, 0.3, generator=mg.Generator(7, device=x.device)),
           None, unary(), gradgrad=True),
]

# --- PyTorch's names (issue 12) --------------------------------------------------------------

def inside_unit(rng, shape):
    return rng.uniform(-0.9, 0.9, size=shape)


def above_one(rng, shape):
    return rng.uniform(1.2, 3.0, size=shape)


def above_minus_half(rng, shape):
    return rng.uniform(-0.5, 2.0, size=shape)


KINKS = np.array([-3.0, -1.0, 0.0, 1.0, 3.0, 6.0])  # where hardtanh, relu6, hardsigmoid... bend


def away_from_kinks(rng, shape):
    """Wide values (past +-3 and 6 too), none within 0.1 of a kink."""
    values = rng.uniform(-4.5, 7.0, size=shape)
    near = np.abs(values[..., None] - KINKS).min(axis=-1) < 0.1
    return np.where(near, values + 0.25, values)


def off_integers(rng, shape):
    """Values at least 0.1 from an integer and a half-integer (floor, round: steps there)."""
    return rng.integers(-3, 3, size=shape) + rng.choice([0.15, 0.3, 0.65, 0.85], size=shape)


@st.composite
def dim_keepdim(draw, min_dims=1):
    """One axis as torch's dim=, keepdim= (a draw of the int or the keyword spelling)."""
    shape = draw(shapes(min_dims=min_dims))
    return Draw((shape,), dict(dim=draw(st.integers(-len(shape), len(shape) - 1)),
                               keepdim=draw(st.booleans())))


def np_softplus(x, beta=1.0):
    return np.logaddexp(0.0, beta * x) / beta


def np_elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def np_hardsigmoid(x):
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)


def np_max_values(x, dim, keepdim):
    return np.take_along_axis(x, np.expand_dims(x.argmax(axis=dim), dim), dim).squeeze(
        axis=() if keepdim else dim)


def np_min_values(x, dim, keepdim):
    return np.min(x, axis=dim, keepdims=keepdim)


SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

OPS += [
    # dim= / keepdim= spellings
    OpCase("sum(dim=, keepdim=)", lambda x, **p: x.sum(**p),
           lambda x, dim, keepdim: x.sum(axis=dim, keepdims=keepdim), dim_keepdim(),
           gradgrad=True),
    OpCase("mean(x, dim=, keepdim=)", lambda x, **p: mg.mean(x, **p),
           lambda x, dim, keepdim: x.mean(axis=dim, keepdims=keepdim), dim_keepdim()),
    OpCase("var(dim=, correction=1)", lambda x, **p: x.var(**p, correction=1),
           lambda x, dim, keepdim: x.var(axis=dim, keepdims=keepdim, ddof=1),
           dim_keepdim().filter(lambda d: d.shapes[0][d.params["dim"]] > 1)),
    OpCase("softmax(dim=)", lambda x, axis: mg.softmax(x, dim=axis), np_softmax, softmax_axis()),
    OpCase("max(x, dim) values", lambda x, dim, keepdim: x.max(dim, keepdim).values,
           np_max_values, dim_keepdim(), each(distinct), gradgrad=True),
    OpCase("min(x, dim=, keepdim=) values", lambda x, **p: mg.min(x, **p)[0], np_min_values,
           dim_keepdim(), each(distinct)),
    OpCase("max(x, y) is maximum", lambda x, y: mg.max(x, y), np.maximum, broadcasting()),
    OpCase("amax", lambda x, **p: mg.amax(x, **p), lambda x, **p: x.max(**p), reduction(),
           each(distinct)),
    OpCase("amin", lambda x, **p: x.amin(**p), lambda x, **p: x.min(**p), reduction(),
           each(distinct)),
    # elementwise math
    binary("maximum", mg.maximum, np.maximum),
    binary("minimum", lambda x, y: x.minimum(y), np.minimum),
    elementwise("sin", mg.sin, np.sin),
    elementwise("cos", lambda x: x.cos(), np.cos),
    elementwise("tan", mg.tan, np.tan, inside_unit),
    elementwise("asin", mg.asin, np.arcsin, inside_unit),
    elementwise("acos", lambda x: x.acos(), np.arccos, inside_unit),
    elementwise("atan", mg.atan, np.arctan),
    elementwise("sinh", mg.sinh, np.sinh),
    elementwise("cosh", mg.cosh, np.cosh),
    elementwise("asinh", mg.asinh, np.arcsinh),
    elementwise("acosh", mg.acosh, np.arccosh, above_one),
    elementwise("atanh", mg.atanh, np.arctanh, inside_unit),
    elementwise("exp2", mg.exp2, np.exp2),
    elementwise("log2", mg.log2, np.log2, positive),
    elementwise("log10", lambda x: x.log10(), np.log10, positive),
    elementwise("log1p", mg.log1p, np.log1p, above_minus_half),
    elementwise("expm1", mg.expm1, np.expm1),
    elementwise("rsqrt", mg.rsqrt, lambda x: 1.0 / np.sqrt(x), positive),
    elementwise("square", mg.square, np.square),
    elementwise("sign", mg.sign, np.sign, away_from_zero),
    elementwise("floor", mg.floor, np.floor, off_integers),
    elementwise("ceil", lambda x: x.ceil(), np.ceil, off_integers),
    elementwise("round", mg.round, np.round, off_integers),
    elementwise("trunc", mg.trunc, np.trunc, off_integers),
    binary("x // y floor_divide", lambda x, y: x // y, np.floor_divide, off_integers,
           away_from_zero),
    binary("x % y remainder", lambda x, y: x % y, np.remainder, off_integers, away_from_zero),
    binary("fmod", mg.fmod, np.fmod, off_integers, away_from_zero),
    binary("div rounding_mode='trunc'", lambda x, y: x.div(y, rounding_mode="trunc"),
           lambda x, y: np.trunc(x / y), off_integers, away_from_zero),
    OpCase("lerp", mg.lerp, lambda a, b, w: a + w * (b - a), broadcasting(3), gradgrad=True),
    binary("logaddexp", mg.logaddexp, np.logaddexp),
    binary("logaddexp2", mg.logaddexp2, np.logaddexp2),
    # activations
    elementwise("silu", mg.silu, lambda x: x * np_sigmoid(x)),
    elementwise("softplus", mg.softplus, np_softplus),
    elementwise("softplus(beta=2)", lambda x: mg.softplus(x, beta=2.0),
                lambda x: np_softplus(x, 2.0)),
    elementwise("elu", mg.elu, np_elu, away_from_kinks),
    elementwise("selu", mg.selu, lambda x: SELU_SCALE * np_elu(x, SELU_ALPHA), away_from_kinks),
    elementwise("celu(alpha=0.5)", lambda x: mg.celu(x, 0.5),
                lambda x: np.where(x > 0, x, 0.5 * np.expm1(np.minimum(x, 0) / 0.5)),
                away_from_kinks),
    elementwise("leaky_relu", lambda x: mg.leaky_relu(x, 0.1),
                lambda x: np.where(x > 0, x, 0.1 * x), away_from_kinks),
    elementwise("relu6", mg.relu6, lambda x: np.clip(x, 0, 6), away_from_kinks),
    elementwise("hardtanh", mg.hardtanh, lambda x: np.clip(x, -1, 1), away_from_kinks),
    elementwise("hardsigmoid", mg.hardsigmoid, np_hardsigmoid, away_from_kinks),
    elementwise("hardswish", mg.hardswish, lambda x: x * np_hardsigmoid(x), away_from_kinks),
    elementwise("mish", mg.mish, lambda x: x * np.tanh(np_softplus(x))),
    elementwise("softsign", mg.softsign, lambda x: x / (1 + np.abs(x)), away_from_zero),
    elementwise("logsigmoid", mg.logsigmoid, lambda x: -np_softplus(-x)),
    elementwise("tanhshrink", mg.tanhshrink, lambda x: x - np.tanh(x)),
    OpCase("softmin", lambda x, axis: mg.softmin(x, dim=axis), lambda x, axis: np_softmax(-x, axis),
           softmax_axis(), gradgrad=True),
]


@st.composite
def along_index(draw, smaller=True):
    """x's shape, a dim, and an index shape no larger than x off that dim (torch.gather)."""
    shape = draw(shapes(min_dims=1))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    index = [draw(st.integers(1, n)) if smaller else n for n in shape]
    index[dim] = draw(st.integers(1, 4))
    return Draw((shape, tuple(index)), dict(dim=dim))


def along_inputs(distinct_src=False, src=False):
    def make(rng, draw):
        shape, index_shape = draw.shapes[:2]
        dim = draw.params["dim"]
        arrays = [rng.normal(size=shape), rng.integers(0, shape[dim], size=index_shape)]
        if src:
            draw_src = distinct if distinct_src else normal
            arrays.append(draw_src(rng, index_shape))
        return arrays
    return make


@st.composite
def along_with_src(draw, unique=False):
    """x, index, src for scatter: index of rank x; unique: no place is written twice."""
    shape = draw(shapes(min_dims=1))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    index = list(shape)
    if unique:  # a permutation of positions along dim is drawn in the inputs
        index[dim] = draw(st.integers(1, shape[dim]))
    else:
        index[dim] = draw(st.integers(1, 4))
    return Draw((shape, tuple(index), tuple(index)), dict(dim=dim))


def unique_along_inputs(rng, draw):
    shape, index_shape, _ = draw.shapes
    dim = draw.params["dim"] % len(shape)
    picks = np.stack([rng.permutation(shape[dim])[:index_shape[dim]]
                      for _ in range(math.prod(index_shape) // index_shape[dim])])
    index = np.moveaxis(picks.reshape(np.delete(index_shape, dim).tolist() + [index_shape[dim]]),
                        -1, dim)
    return [rng.normal(size=shape), index, rng.normal(size=index_shape)]


def np_gather(x, index, dim):
    key = list(np.indices(index.shape, sparse=True))
    key[dim] = index
    return x[tuple(key)]


def np_scatter(x, index, src, dim, add=False):
    out = x.copy()
    key = list(np.indices(index.shape, sparse=True))
    key[dim] = index
    if add:
        np.add.at(out, tuple(key), src)
    else:
        out[tuple(key)] = src
    return out


def np_scatter_amax(x, index, src, dim):
    out = x.copy()
    key = list(np.indices(index.shape, sparse=True))
    key[dim] = index
    np.maximum.at(out, tuple(key), src)
    return out


def np_scatter_mean(x, index, src, dim):
    total = np_scatter(x, index, src, dim, add=True)
    count = np_scatter(np.ones_like(x), index, np.ones_like(src), dim, add=True)
    return total / count


@st.composite
def one_axis(draw, min_side=1):
    shape = draw(shapes(min_dims=1, min_side=min_side))
    return Draw((shape,), dict(dim=draw(st.integers(-len(shape), len(shape) - 1))))


@st.composite
def pad_widths(draw, mode):
    shape = draw(shapes(min_dims=1, min_side=2 if mode == "reflect" else 1))
    pairs = draw(st.integers(1, len(shape)))
    pad = []
    for k in range(pairs):
        limit = shape[len(shape) - 1 - k] - 1 if mode == "reflect" else 3
        pad += [draw(st.integers(0, limit)), draw(st.integers(0, limit))]
    return Draw((shape,), dict(pad=tuple(pad)))


def np_pad(x, pad, mode="constant"):
    widths = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        widths[x.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    return np.pad(x, widths, mode={"replicate": "edge"}.get(mode, mode))


@st.composite
def matrix_batch(draw):
    shape = draw(shapes(min_dims=2))
    return Draw((shape,), dict(diagonal=draw(st.integers(-3, 3))))


@st.composite
def einsum_case(draw):
    """A random contraction of two operands over letters drawn from 'abcd'."""
    letters = "abcd"
    a = "".join(draw(st.permutations(letters))[:draw(st.integers(1, 3))])
    b = "".join(draw(st.permutations(letters))[:draw(st.integers(1, 3))])
    sizes = {c: draw(st.integers(1, 3)) for c in letters}
    pool = sorted(set(a + b))
    out = "".join(draw(st.permutations(pool))[:draw(st.integers(0, len(pool)))])
    return Draw((tuple(sizes[c] for c in a), tuple(sizes[c] for c in b)),
                dict(equation=f"{a},{b}->{out}"))


def np_sort_values(x, dim, descending=False):
    order = np.argsort(-x if descending else x, axis=dim, kind="stable")
    return np.take_along_axis(x, order, dim)


def np_topk(x, dim, k, largest):
    return np.take_along_axis(x, np.argsort(-x if largest else x, axis=dim, kind="stable"),
                              dim).take(np.arange(k), axis=dim)


@st.composite
def topk_case(draw):
    shape = draw(shapes(min_dims=1))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    return Draw((shape,), dict(dim=dim, k=draw(st.integers(0, shape[dim])),
                               largest=draw(st.booleans())))


def with_zeros(rng, shape):
    """Normal values with about a third of them exactly zero (prod's hard case)."""
    values = rng.normal(size=shape)
    return np.where(rng.random(shape) < 0.3, 0.0, values)


OPS += [
    # reductions and scans
    # ddof=1 draws reduce over at least 2 elements: sqrt's gradient at a zero variance is inf
    OpCase("std correction=1", lambda x, ddof, **p: x.std(**p, correction=ddof),
           lambda x, **p: x.std(**p), reduction(min_dims=1, min_side=2, ddof=1), gradgrad=True),
    OpCase("prod", lambda x, **p: x.prod(**p), lambda x, **p: x.prod(**p), reduction(),
           gradgrad=True),
    OpCase("prod with zeros", lambda x, **p: mg.prod(x, **p), lambda x, **p: x.prod(**p),
           reduction(), each(with_zeros), gradgrad=True),
    OpCase("logsumexp", lambda x, **p: mg.logsumexp(x, **p),
           lambda x, axis, keepdims: np.log(np.exp(x).sum(axis=axis, keepdims=keepdims)),
           reduction(), gradgrad=True),
    OpCase("cumsum", lambda x, dim: x.cumsum(dim), lambda x, dim: np.cumsum(x, axis=dim),
           one_axis(), gradgrad=True),
    OpCase("cumprod", lambda x, dim: mg.cumprod(x, dim=dim), lambda x, dim: np.cumprod(x, axis=dim),
           one_axis(), each(with_zeros), gradgrad=True),
    OpCase("sort values", lambda x, dim: x.sort(dim).values, np_sort_values, one_axis(),
           each(distinct)),
    OpCase("sort descending values", lambda x, dim: mg.sort(x, dim=dim, descending=True)[0],
           lambda x, dim: np_sort_values(x, dim, True), one_axis(), each(distinct)),
    OpCase("topk values", lambda x, **p: mg.topk(x, p["k"], dim=p["dim"], largest=p["largest"])[0],
           np_topk, topk_case(), each(distinct)),
    # picks along an axis
    OpCase("gather", lambda x, i, dim: x.gather(dim, i), lambda x, i, dim: np_gather(x, i, dim),
           along_index(), along_inputs(), gradgrad=True),
    OpCase("scatter (no place written twice)", lambda x, i, s, dim: mg.scatter(x, dim, i, s),
           lambda x, i, s, dim: np_scatter(x, i, s, dim), along_with_src(unique=True),
           unique_along_inputs, gradgrad=True),
    OpCase("scatter_add", lambda x, i, s, dim: x.scatter_add(dim, i, s),
           lambda x, i, s, dim: np_scatter(x, i, s, dim, add=True), along_with_src(),
           along_inputs(src=True), gradgrad=True),
    OpCase("scatter_reduce sum", lambda x, i, s, dim: mg.scatter_reduce(x, dim, i, s, "sum"),
           lambda x, i, s, dim: np_scatter(x, i, s, dim, add=True), along_with_src(),
           along_inputs(src=True)),
    OpCase("scatter_reduce mean", lambda x, i, s, dim: mg.scatter_reduce(x, dim, i, s, "mean"),
           np_scatter_mean, along_with_src(), along_inputs(src=True), gradgrad=True),
    OpCase("scatter_reduce amax", lambda x, i, s, dim: mg.scatter_reduce(x, dim, i, s, "amax"),
           np_scatter_amax, along_with_src(), along_inputs(distinct_src=True, src=True)),
    OpCase("index_select", lambda x: mg.index_select(x, 1, mg.tensor([2, 0, 2])),
           lambda x: x[:, [2, 0, 2]], fixed((2, 3, 2)), gradgrad=True),
    OpCase("masked_select", mg.masked_select, lambda x, m: np.broadcast_to(x, m.shape)[m],
           fixed((3, 1), (3, 4)), each(normal, boolean)),
    # layout
    OpCase("flip", lambda x, dim: x.flip(dim), lambda x, dim: np.flip(x, dim), one_axis()),
    OpCase("flip two dims", lambda x: mg.flip(x, (0, -1)), lambda x: np.flip(x, (0, -1)),
           fixed((2, 3, 2))),
    OpCase("roll", lambda x, dim: mg.roll(x, 2, dim), lambda x, dim: np.roll(x, 2, dim),
           one_axis()),
    OpCase("roll flat", lambda x: x.roll(-1), lambda x: np.roll(x, -1), unary(min_dims=1)),
    OpCase("repeat", lambda x: x.repeat(2, 1, 3), lambda x: np.tile(x, (2, 1, 3)),
           fixed((2, 3)), gradgrad=True),
    OpCase("tile", lambda x: mg.tile(x, (2,)), lambda x: np.tile(x, (2,)), unary(min_dims=1)),
    OpCase("repeat_interleave", lambda x, dim: mg.repeat_interleave(x, 2, dim),
           lambda x, dim: np.repeat(x, 2, dim), one_axis()),
    OpCase("repeat_interleave counts", lambda x: x.repeat_interleave(mg.tensor([1, 0, 3]), 0),
           lambda x: np.repeat(x, [1, 0, 3], 0), fixed((3, 2))),
    OpCase("pad constant", lambda x, pad: mg.pad(x, pad, value=0.0), np_pad,
           pad_widths("constant")),
    OpCase("pad reflect", lambda x, pad: mg.pad(x, pad, "reflect"),
           lambda x, pad: np_pad(x, pad, "reflect"), pad_widths("reflect")),
    OpCase("pad replicate", lambda x, pad: mg.pad(x, pad, "replicate"),
           lambda x, pad: np_pad(x, pad, "replicate"), pad_widths("replicate")),
    OpCase("tril", lambda x, diagonal: x.tril(diagonal), lambda x, diagonal: np.tril(x, diagonal),
           matrix_batch()),
    OpCase("triu", lambda x, diagonal: mg.triu(x, diagonal),
           lambda x, diagonal: np.triu(x, diagonal), matrix_batch()),
    OpCase("diagonal", lambda x: mg.diagonal(x, 1, 0, 2),
           lambda x: np.diagonal(x, 1, 0, 2), fixed((3, 2, 4))),
    OpCase("diag of a vector", lambda x: mg.diag(x, -1), lambda x: np.diag(x, -1), fixed((3,)),
           gradgrad=True),
    OpCase("diag of a matrix", lambda x: x.diag(1), lambda x: np.diag(x, 1), fixed((3, 4))),
    OpCase("flatten(start_dim, end_dim)", lambda x: mg.flatten(x, 1, 2),
           lambda x: x.reshape(2, 12, 5), fixed((2, 3, 4, 5))),
    OpCase("unflatten", lambda x: x.unflatten(1, (2, -1)), lambda x: x.reshape(3, 2, 2),
           fixed((3, 4))),
    OpCase("movedim", lambda x: mg.movedim(x, (0, 1), (2, 0)),
           lambda x: np.moveaxis(x, (0, 1), (2, 0)), fixed((2, 3, 4))),
    OpCase("meshgrid", lambda x, y: mg.meshgrid(x, y, indexing="xy"),
           lambda x, y: tuple(np.meshgrid(x, y, indexing="xy")), fixed((2,), (3,))),
    OpCase("clone", mg.clone, lambda x: x.copy(), unary()),
    OpCase("contiguous", lambda x: x.T.contiguous(), lambda x: x.T, unary()),
    OpCase("einsum", lambda a, b, equation: mg.einsum(equation, a, b),
           lambda a, b, equation: np.einsum(equation, a, b), einsum_case(), gradgrad=True),
    OpCase("einsum batched matmul", lambda a, b: mg.einsum("bij,bjk->bik", a, b), np.matmul,
           fixed((2, 2, 3), (2, 3, 2)), gradgrad=True),
]


@st.composite
def loss_shapes(draw, reductions=("mean", "sum", "none")):
    shape = draw(shapes())
    return Draw((shape, shape), dict(reduction=draw(st.sampled_from(reductions))))


def np_reduce(loss, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](loss)


@st.composite
def classes_rows(draw, reductions=("mean", "sum", "none")):
    n, classes = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return Draw(((n, classes), (n,)), dict(reduction=draw(st.sampled_from(reductions))))


def class_inputs(rng, draw):
    (n, classes), _ = draw.shapes
    targets = rng.integers(0, classes, size=n)
    return [rng.normal(size=(n, classes)), targets]


def soft_inputs(rng, draw):
    (n, classes), _ = draw.shapes
    p = rng.uniform(0.1, 1.0, size=(n, classes))
    return [rng.normal(size=(n, classes)), p / p.sum(axis=1, keepdims=True)]


def np_ce_per_row(logits, targets, reduction):
    loss = -np_log_softmax(logits)[np.arange(len(targets)), targets]
    return np_reduce(loss, reduction)


def np_nll(log_p, targets, reduction):
    return np_reduce(-log_p[np.arange(len(targets)), targets], reduction)


def probabilities_and_labels(rng, draw):
    shape = draw.shapes[0]
    return [rng.uniform(0.05, 0.95, size=shape), rng.uniform(0.0, 1.0, size=shape)]


def np_bce(p, y, reduction):
    return np_reduce(-(y * np.log(p) + (1 - y) * np.log(1 - p)), reduction)


def np_bce_logits(x, y, reduction, pos_weight=1.0):
    p = np_sigmoid(x)
    return np_reduce(-(pos_weight * y * np.log(p) + (1 - y) * np.log(1 - p)), reduction)


def np_smooth_l1(x, y, reduction, beta=1.0):
    d = np.abs(x - y)
    return np_reduce(np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction)


def log_p_and_p(rng, draw):
    shape = draw.shapes[0]
    p = rng.uniform(0.05, 1.0, size=shape)
    q = rng.uniform(0.05, 1.0, size=shape)
    return [np.log(q / q.sum()), p / max(p.sum(), 1e-3)]


def np_kl(log_q, p, reduction):
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - log_q), 0.0)
    if reduction == "batchmean":
        return loss.sum() / (log_q.shape[0] if log_q.ndim else 1)
    return np_reduce(loss, reduction)


def spread_pairs(rng, draw):
    """Differences of either sign, none within 0.1 of 0 or of +-beta (kinks at 0 and beta)."""
    shape = draw.shapes[0]
    y = rng.normal(size=shape)
    d = rng.choice([-1.0, 1.0], size=shape) * rng.choice([0.3, 0.6, 1.4, 2.5], size=shape)
    return [y + d + rng.uniform(-0.05, 0.05, size=shape), y]


OPS += [
    OpCase("mse_loss", lambda x, y, reduction: mg.mse_loss(x, y, reduction=reduction),
           lambda x, y, reduction: np_reduce((x - y) ** 2, reduction), loss_shapes(),
           gradgrad=True),
    OpCase("l1_loss", lambda x, y, reduction: mg.l1_loss(x, y, reduction=reduction),
           lambda x, y, reduction: np_reduce(np.abs(x - y), reduction), loss_shapes(),
           spread_pairs),
    OpCase("smooth_l1_loss", lambda x, y, reduction: mg.smooth_l1_loss(x, y, reduction),
           np_smooth_l1, loss_shapes(), spread_pairs, gradgrad=True),
    OpCase("huber_loss delta=2", lambda x, y, reduction: mg.huber_loss(x, y, reduction, 2.0),
           lambda x, y, reduction: 2.0 * np_smooth_l1(x, y, reduction, 2.0), loss_shapes(),
           spread_pairs),
    OpCase("cross_entropy reduction", lambda x, t, reduction: mg.cross_entropy(
        x, t, reduction=reduction), np_ce_per_row, classes_rows(), class_inputs, gradgrad=True),
    OpCase("cross_entropy probability targets", lambda x, p, reduction: mg.cross_entropy(
        x, p, reduction=reduction),
        lambda x, p, reduction: np_reduce(-(p * np_log_softmax(x)).sum(-1), reduction),
        classes_rows(), soft_inputs, gradgrad=True),
    OpCase("nll_loss", lambda x, t, reduction: mg.nll_loss(x, t, reduction=reduction), np_nll,
           classes_rows(), class_inputs, gradgrad=True),
    OpCase("binary_cross_entropy", lambda p, y, reduction: mg.binary_cross_entropy(
        p, y, reduction=reduction), np_bce, loss_shapes(), probabilities_and_labels,
        gradgrad=True),
    OpCase("binary_cross_entropy_with_logits", lambda x, y, reduction:
           mg.binary_cross_entropy_with_logits(x, y, reduction=reduction), np_bce_logits,
           loss_shapes(), gradgrad=True),
    OpCase("binary_cross_entropy_with_logits pos_weight=3", lambda x, y, reduction:
           mg.binary_cross_entropy_with_logits(x, y, reduction=reduction, pos_weight=3.0),
           lambda x, y, reduction: np_bce_logits(x, y, reduction, 3.0), loss_shapes()),
    OpCase("kl_div", lambda q, p, reduction: mg.kl_div(q, p, reduction=reduction), np_kl,
           loss_shapes(("mean", "sum", "none", "batchmean")), log_p_and_p, gradgrad=True),
]


def make_inputs(case, draw, seed, dtype, device):
    """Tensors for one example (floating inputs in `dtype`), and the arrays they hold."""
    arrays = case.inputs(np.random.default_rng(seed), draw)
    # np.asarray: NumPy arithmetic on 0-d arrays gives scalars, which mg.tensor reads as
    # Python numbers (float32); the test wants arrays of exactly `dtype`
    arrays = [np.asarray(a, dtype if a.dtype.kind == "f" else None) for a in arrays]
    return [mg.tensor(a, device=device) for a in arrays], arrays


def as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


# --- the table-driven tests -------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", [c for c in OPS if c.ref is not None], ids=repr)
@checks
@given(data=st.data(), seed=seeds)
def test_forward_matches_numpy(case, dtype, device, data, seed):
    draw = data.draw(case.draws, label="shapes and params")
    tensors, arrays = make_inputs(case, draw, seed, dtype, device)
    outputs = as_tuple(case.fn(*tensors, **draw.params))
    reference = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]
    expected = as_tuple(case.ref(*reference, **draw.params))
    in_dtype = as_tuple(case.ref(*arrays, **draw.params))  # NumPy's own float32 error
    assert len(outputs) == len(expected)
    for out, want, numpy_result in zip(outputs, expected, in_dtype):
        assert isinstance(out, mg.Tensor), f"{case.name} returned {type(out).__name__}"
        assert out.dtype == dtype, f"{case.name}: {dtype.__name__} inputs gave {out.dtype}"
        assert out.device == device
        assert out.shape == np.shape(want)
        tolerance = dict(FORWARD_TOLERANCE[dtype])
        if dtype == np.float32 and np.size(want):
            tolerance["atol"] += FLOAT32_SLACK * np.max(np.abs(numpy_result - want))
        np.testing.assert_allclose(out.numpy(), want, **tolerance)


@pytest.mark.parametrize("case", OPS, ids=repr)
@checks
@given(data=st.data(), seed=seeds)
def test_gradcheck(case, device, data, seed):
    draw = data.draw(case.draws, label="shapes and params")
    tensors, _ = make_inputs(case, draw, seed, np.float64, device)
    mg.gradcheck(lambda *xs: case.fn(*xs, **draw.params), tensors, name=case.name)


@pytest.mark.parametrize("case", [c for c in OPS if c.gradgrad], ids=repr)
@settings(checks, max_examples=max(5, checks.max_examples // 3))  # each differentiates twice
@given(data=st.data(), seed=seeds)
def test_gradgradcheck(case, device, data, seed):
    draw = data.draw(case.draws, label="shapes and params")
    tensors, _ = make_inputs(case, draw, seed, np.float64, device)
    mg.gradgradcheck(lambda *xs: case.fn(*xs, **draw.params), tensors, name=case.name)


def test_table_covers_every_op():
    """Every op function in minigrad.functional has a case in OPS or a test below."""
    import minigrad.functional as F
    ops = {name for name in dir(F) if not name.startswith("_") and callable(getattr(F, name))}
    through_operators = {"add", "sub", "mul", "div", "pow"}  # the "x + y" ... cases
    in_tests_below = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
                      "argmax", "argmin", "isnan", "isinf", "isfinite", "isclose", "allclose",
                      "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and",
                      "bitwise_or", "bitwise_xor", "bitwise_not", "nonzero", "arcsin", "arccos",
                      "arctan", "arcsinh", "arccosh", "arctanh", "concat",  # aliases
                      "any", "all", "argsort", "one_hot"}
    not_in_this_suite = {"astype", "to_device", "sum_to"}  # sum_to: every broadcast gradient
    names = " ".join(case.name for case in OPS)
    missing = sorted(name for name in ops - through_operators - in_tests_below - not_in_this_suite
                     if name not in names)
    assert not missing, f"ops without a case in OPS: {missing}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", [c for c in OPS if c.ref is not None], ids=repr)
@checks
@given(data=st.data(), seed=seeds)
def test_gradients_keep_the_input_dtype(case, dtype, device, data, seed):
    """mg.grad hands back gradients as the backward computed them (no cast to the
    input's dtype, as .grad does), so a float64 upcast inside a backward shows here."""
    draw = data.draw(case.draws, label="shapes and params")
    tensors, _ = make_inputs(case, draw, seed, dtype, device)
    wrt = [t.requires_grad_() for t in tensors if t.dtype.kind == "f"]
    outputs = as_tuple(case.fn(*tensors, **draw.params))
    assert all(o.requires_grad for o in outputs), f"{case.name} lost requires_grad"
    total = sum((o * 1.5).sum() for o in outputs)
    for x, g in zip(wrt, mg.grad(total, wrt, allow_unused=True)):
        if g is not None:
            assert g.dtype == dtype, f"{case.name}: {dtype.__name__} input, {g.dtype} gradient"
            assert g.shape == x.shape


# --- comparisons: boolean results, no gradient ------------------------------------------

COMPARISONS = [("==", operator.eq), ("!=", operator.ne), ("<", operator.lt),
               ("<=", operator.le), (">", operator.gt), (">=", operator.ge)]


@pytest.mark.parametrize("symbol, compare", COMPARISONS, ids=[c[0] for c in COMPARISONS])
@checks
@given(draw=broadcasting(), seed=seeds)
def test_comparisons_give_bool_tensors_without_grad(symbol, compare, device, draw, seed):
    rng = np.random.default_rng(seed)
    a, b = (rng.integers(-1, 2, size=s).astype(np.float32) for s in draw.shapes)  # ties happen
    x = mg.tensor(a, device=device, requires_grad=True)
    y = mg.tensor(b, device=device)
    for result, want in [(compare(x, y), compare(a, b)),
                         (compare(x, 0.0), compare(a, 0.0)),   # Python number on the right
                         (compare(x.xp.asarray(b), x), compare(b, a))]:  # ndarray on the left
        assert isinstance(result, mg.Tensor)
        assert result.dtype == np.bool_
        assert not result.requires_grad and result.creator is None
        np.testing.assert_array_equal(result.numpy(), want)


# --- explicit checks the hypothesis examples might not hit --------------------------------

def test_sum_over_an_empty_axis_gives_zeros_and_a_zero_gradient(device):
    x = mg.zeros(3, 0, dtype=mg.float64, device=device, requires_grad=True)
    y = x.sum(axis=1)
    np.testing.assert_array_equal(y.numpy(), np.zeros(3))
    y.backward(mg.ones(3, dtype=mg.float64, device=device))
    assert x.grad.shape == (3, 0)
    z = mg.zeros(0, 2, 3, dtype=mg.float64, device=device, requires_grad=True)
    w = z.sum(axis=(0, -1), keepdims=True)
    np.testing.assert_array_equal(w.numpy(), np.zeros((1, 2, 1)))
    (w * 2.0).sum().backward()
    assert z.grad.shape == (0, 2, 3)


def test_repeated_indices_accumulate(device):
    x = mg.zeros(4, 2, dtype=mg.float64, device=device, requires_grad=True)
    x[[0, 0, 3, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[3, 3], [0, 0], [0, 0], [1, 1]])
    weight = mg.zeros(3, 2, dtype=mg.float64, device=device, requires_grad=True)
    mg.embedding(weight, mg.tensor([[2, 0], [2, 2]], device=device)).sum().backward()
    np.testing.assert_array_equal(weight.grad.numpy(), [[1, 1], [0, 0], [3, 3]])


@pytest.mark.parametrize("power, slope", [(0, [0, 0]), (1, [1, 1]), (2, [0, 4]), (3, [0, 12]),
                                          (0.0, [0, 0]), (2.0, [0, 4])])
def test_power_gradient_at_zero_base(power, slope, device):
    """d x^c = c x^(c-1): finite at x = 0 for c = 0 and c >= 1 (0 ** -1 is inf)."""
    x = mg.tensor([0.0, 2.0], dtype=mg.float64, device=device, requires_grad=True)
    (x ** power).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), slope)


def test_unused_split_outputs_get_zero_gradient(device):
    x = mg.tensor(np.arange(6.0), device=device, requires_grad=True)
    first, _, third = mg.split(x, [1, 3, 2])
    (first * 2.0 + third.sum()).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2, 0, 0, 0, 1, 1])


# --- dropout: the random case ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_dropout_zeroes_a_fraction_p_and_preserves_the_mean(dtype, device):
    p, n = 0.25, 40_000
    x = mg.ones(n, dtype=dtype, device=device, requires_grad=True)
    y = mg.dropout(x, p, generator=mg.Generator(3, device=device))
    values = y.numpy()
    assert y.dtype == dtype
    kept = values != 0
    np.testing.assert_allclose(values[kept], 1.0 / (1.0 - p), rtol=1e-6)  # survivors scaled
    # fixed seed; the bounds are 6 standard deviations wide
    assert abs((~kept).mean() - p) < 6 * math.sqrt(p * (1 - p) / n)
    assert abs(values.mean() - 1.0) < 6 * math.sqrt(p / (1 - p) / n)


def test_dropout_backward_uses_the_forward_mask(device):
    rng = np.random.default_rng(0)
    x = mg.tensor(positive(rng, (50, 40)), device=device, requires_grad=True)
    w = rng.uniform(0.5, 1.5, size=(50, 40))
    y = mg.dropout(x, 0.5)
    (y * mg.tensor(w, dtype=x.dtype, device=device)).sum().backward()
    mask = y.numpy() / x.numpy()  # 0 or 2 where the forward dropped or kept
    assert set(np.unique(mask.round(5))) == {0.0, 2.0}
    np.testing.assert_allclose(x.grad.numpy(), w * mask, rtol=1e-6)


def test_dropout_with_equal_seeds_draws_equal_masks(device):
    x = mg.ones(100, device=device)
    first = mg.dropout(x, 0.5, generator=mg.Generator(11, device=device)).numpy()
    again = mg.dropout(x, 0.5, generator=mg.Generator(11, device=device)).numpy()
    other = mg.dropout(x, 0.5, generator=mg.Generator(12, device=device)).numpy()
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()


# --- errors name what went wrong ------------------------------------------------------------

def zeros(*shape, device):
    return mg.zeros(*shape, device=device)


ERRORS = [  # (what, call on a device, exception, regex the message must contain)
    ("matmul shape mismatch", lambda d: zeros(2, 3, device=d) @ zeros(4, 5, device=d),
     ValueError, r"\(2, 3\) @ \(4, 5\)"),
    ("matmul 1-D mismatch", lambda d: zeros(3, device=d) @ zeros(4, device=d),
     ValueError, r"\(3,\) @ \(4,\)"),
    ("matmul batched mismatch", lambda d: zeros(2, 2, 3, device=d) @ zeros(3, 4, device=d).T,
     ValueError, r"\(2, 2, 3\) @ \(4, 3\)"),
    ("matmul of a 0-d tensor", lambda d: zeros(device=d) @ zeros(3, device=d),
     ValueError, r"at least 1-D.*\(\) and \(3,\)"),
    ("broadcasting mismatch", lambda d: zeros(2, 3, device=d) + zeros(4, device=d),
     ValueError, r"broadcast.*\(2, ?3\).*\(4,\)"),
    ("broadcast_to mismatch", lambda d: zeros(2, 3, device=d).broadcast_to((4, 3)),
     ValueError, r"broadcast.*\(2, ?3\).*\(4, ?3\)"),
    ("cross_entropy target too large",
     lambda d: mg.cross_entropy(zeros(2, 3, device=d), mg.tensor([0, 3], device=d)),
     IndexError, r"target 3 is out of range for 3 classes"),
    ("cross_entropy negative target",
     lambda d: mg.cross_entropy(zeros(2, 3, device=d), mg.tensor([-2, 0], device=d)),
     IndexError, r"target -2 is out of range for 3 classes"),
    ("cross_entropy target shape",
     lambda d: mg.cross_entropy(zeros(2, 3, device=d), mg.tensor([0, 1, 2], device=d)),
     ValueError, r"\(2, 3\) need targets of shape \(2,\), got \(3,\)"),
    ("cross_entropy float targets",
     lambda d: mg.cross_entropy(zeros(2, 3, device=d), zeros(2, device=d)),
     TypeError, r"integer class ids"),
    ("embedding id out of range",
     lambda d: mg.embedding(zeros(4, 2, device=d), mg.tensor([1, 4], device=d)),
     IndexError, r"index 4 is out of range for an embedding with 4 rows"),
    ("embedding negative id",
     lambda d: mg.embedding(zeros(4, 2, device=d), mg.tensor([-1], device=d)),
     IndexError, r"index -1 is out of range"),
    ("where with a float condition",
     lambda d: mg.where(zeros(2, device=d), 1.0, 2.0), TypeError, r"boolean condition.*float32"),
    ("squeeze of a non-1 axis", lambda d: zeros(2, 3, device=d).squeeze(1),
     ValueError, r"cannot squeeze axis 1 of shape \(2, 3\)"),
    ("permute with a repeated axis", lambda d: zeros(2, 3, device=d).permute(0, 0),
     ValueError, r"not a permutation of 2 dimensions"),
    ("permute with too few axes", lambda d: zeros(2, 3, 4, device=d).permute(1, 0),
     ValueError, r"not a permutation of 3 dimensions"),
    ("permute with an axis out of range", lambda d: zeros(2, 3, device=d).permute(1, 2),
     ValueError, r"not a permutation of 2 dimensions"),
    ("transpose with an axis out of range", lambda d: zeros(2, 3, device=d).transpose(1, 2),
     ValueError, r"transpose: axis 2 is out of range for a tensor with 2 dimensions"),
    ("split with sizes that do not add up", lambda d: mg.split(zeros(5, device=d), [2, 2]),
     ValueError, r"split: sizes \[2, 2\] must .* add up to the length 5"),
    ("split with a zero size", lambda d: mg.split(zeros(5, device=d), 0),
     ValueError, r"split: split_size must be a positive int, got 0"),
    ("squeeze axis out of range", lambda d: zeros(3, 1, device=d).squeeze(3),
     ValueError, r"squeeze: axis 3 is out of range for a tensor with 2 dimensions"),
    ("unsqueeze axis out of range", lambda d: zeros(3, 1, device=d).unsqueeze(5),
     ValueError, r"unsqueeze: axis 5 is out of range for a tensor with 3 dimensions"),
    ("swapaxes axis out of range", lambda d: zeros(3, 1, device=d).swapaxes(0, 2),
     ValueError, r"swapaxes: axis 2 is out of range for a tensor with 2 dimensions"),
    ("concatenate axis out of range",
     lambda d: mg.concatenate([zeros(3, 1, device=d)] * 2, axis=2),
     ValueError, r"concatenate: axis 2 is out of range for a tensor with 2 dimensions"),
    ("stack axis out of range", lambda d: mg.stack([zeros(3, 1, device=d)] * 2, axis=-4),
     ValueError, r"stack: axis -4 is out of range for a tensor with 3 dimensions"),
    ("split axis out of range", lambda d: mg.split(zeros(3, 1, device=d), 1, axis=2),
     ValueError, r"split: axis 2 is out of range for a tensor with 2 dimensions"),
    ("expand with -1 for a new axis", lambda d: zeros(3, 1, device=d).expand(-1, 3, -1),
     ValueError, r"expand: -1 .* new leading axis 0"),
    ("reduction axis out of range", lambda d: zeros(2, 3, device=d).sum(axis=2),
     ValueError, r"axis 2 is out of range for a tensor with 2 dimensions"),
    ("layer_norm weight shape",
     lambda d: mg.layer_norm(zeros(2, 3, device=d), zeros(2, device=d)),
     ValueError, r"needs weight and bias of shape \(3,\)"),
    ("causal_attention shapes",
     lambda d: mg.causal_attention(zeros(2, 4, 3, device=d), zeros(2, 5, 3, device=d),
                                   zeros(2, 5, 3, device=d)),
     ValueError, r"causal_attention needs q and k of one shape .* got q \(2, 4, 3\), k \(2, 5, 3\)"),
    ("causal_attention dtypes",
     lambda d: mg.causal_attention(zeros(2, 3, device=d), zeros(2, 3, device=d),
                                   zeros(2, 3, device=d).astype("float64")),
     TypeError, r"causal_attention needs q, k, v of one floating dtype, got float32, float32, "
                r"float64"),
    ("packed_causal_attention width",
     lambda d: mg.packed_causal_attention(zeros(2, 4, 12, device=d), 3),
     ValueError, r"needs qkv of shape \(\.\.\., T, 3 \* C\) with C a multiple of n_head=3; "
                 r"got \(2, 4, 12\)"),
    ("packed_causal_attention n_head",
     lambda d: mg.packed_causal_attention(zeros(2, 4, 12, device=d), 0),
     ValueError, r"n_head must be a positive int, got 0"),
    ("dropout probability", lambda d: mg.dropout(zeros(2, device=d), 1.5),
     ValueError, r"dropout probability must be in \[0, 1\], got 1.5"),
    ("gelu approximation", lambda d: mg.gelu(zeros(2, device=d), approximate="fast"),
     ValueError, r"'tanh' or 'none', got 'fast'"),
    ("clip without bounds", lambda d: mg.clip(zeros(2, device=d)),
     ValueError, r"at least one of low, high"),
]


@pytest.mark.parametrize("what, call, error, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_say_what_is_wrong(what, call, error, message, device):
    with pytest.raises(error, match=message):
        call(device)
