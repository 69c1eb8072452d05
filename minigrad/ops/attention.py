"""Attention as functions: scaled_dot_product_attention with PyTorch's meaning, the fused
op it runs on (MaskedAttention), and sliding_window_attention (SlidingWindowAttention).

    attention(q, k, v) = softmax(q k^T * scale + bias, masked keys left out) @ v

q (..., L, E) queries, k (..., S, E) keys, v (..., S, Ev) values; scale = 1/sqrt(E).

A query row that may attend to no key at all (every key masked) gets all-zero
weights, so its output is 0 and no gradient flows through it: finite, never the
0/0 = NaN a plain softmax over only -inf gives (PyTorch's math path does the same).

Each fused op keeps its `composite`, the definition written with minigrad ops
(attention_weights below), which the tests compare it with.
"""
import math
from functools import partial

from .. import backend
from ..autograd import FusedFunction, as_tensor
from .nn import CausalAttention, _batch_parts, _run_parts, _softmax, _softmax_grad, dropout, softmax
from .shape import broadcast_to


# --- the definition ---------------------------------------------------------------------

def attention_weights(q, k, allowed=None, bias=None, scale=None):
    """softmax(q k^T * scale + bias) over the keys, with keys where `allowed` is False left
    out (weight exactly 0); a row with no allowed key gets weights 0. (..., L, S).

    allowed: bool array broadcastable to (..., L, S), True = the key takes part, or None.
    bias: float array broadcastable to (..., L, S), added to the scores, or None.
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q * scale) @ k.swapaxes(-1, -2)                 # (..., L, S)
    if bias is not None:
        scores = scores + as_tensor(bias)
    if allowed is None:
        return softmax(scores, axis=-1)
    allowed = scores.xp.asarray(allowed)                       # on the scores' device
    weights = softmax(scores, axis=-1, mask=~allowed)          # masked keys: weight 0
    some = allowed.any(axis=-1, keepdims=True)                 # (..., L, 1)
    if not bool(some.all()):                                   # rows with no key: weights 0
        weights = weights * as_tensor(some.astype(weights.dtype))
    return weights


def _explicit(q, k, v, allowed, bias, scale):
    return attention_weights(q, k, allowed, bias, scale) @ v


# --- the fused ops ------------------------------------------------------------------------

class MaskedAttention(FusedFunction):
    """attention_weights(q, k, allowed, bias, scale) @ v, a chunk of query rows at a time.

    q, k, v share their batch axes (..., L|S, E|Ev); `allowed` and `bias` are constants
    (no gradient) broadcastable to (..., L, S). Only a chunk's scores and weights,
    (..., chunk, S), exist at once in the forward; the weights are kept for backward.
    """

    def __init__(self, allowed=None, bias=None, scale=None, chunk=64):
        self.allowed, self.bias, self.scale, self.chunk = allowed, bias, scale, chunk

    def _rows(self, L):
        return [(r0, min(r0 + self.chunk, L)) for r0 in range(0, L, self.chunk)]

    def forward(self, q, k, v):
        xp = self.xp
        # the constants on the inputs' device (a mask built with NumPy may meet CuPy inputs)
        self.allowed = None if self.allowed is None else xp.asarray(self.allowed)
        self.bias = None if self.bias is None else xp.asarray(self.bias, dtype=q.dtype)
        scale = 1.0 / math.sqrt(q.shape[-1]) if self.scale is None else self.scale
        self.used_scale = scale
        shape = q.shape[:-1] + k.shape[-2:-1]                         # (..., L, S)
        allowed, bias = (None if c is None else xp.broadcast_to(c, shape)  # views
                         for c in (self.allowed, self.bias))
        y = xp.empty(q.shape[:-1] + v.shape[-1:], dtype=q.dtype)
        # a share of the batch for each thread (where q, k, v have the same batch axes)
        same_batch = q.shape[:-2] == k.shape[:-2] == v.shape[:-2]
        self.parts = _batch_parts(q) if same_batch else [()]
        self.weights = [None] * len(self.parts)                       # per part, per chunk

        def attend(i, p):
            self.weights[i] = self._forward_part(q[p], k[p], v[p], y[p],
                                                 None if allowed is None else allowed[p],
                                                 None if bias is None else bias[p])
        _run_parts(self.parts, attend)
        return y

    def _forward_part(self, q, k, v, y, allowed, bias):
        """Fill y; return each chunk's weights. allowed, bias: (..., L, S) views or None."""
        S, weights = k.shape[-2], []
        for r0, r1 in self._rows(q.shape[-2]):
            scores = q[..., r0:r1, :] @ k.swapaxes(-1, -2)            # (..., n, S)
            scores *= self.used_scale
            if bias is not None:
                scores += bias[..., r0:r1, :]
            if allowed is None:
                w = backend.blockwise(partial(_softmax, axis=-1), scores, row_length=S)
            else:
                excluded = ~allowed[..., r0:r1, :]
                w = backend.blockwise(partial(_softmax, axis=-1), scores, excluded,
                                      row_length=S)
                w *= excluded.all(axis=-1, keepdims=True) == 0        # no key: weights 0
            weights.append(w)
            y[..., r0:r1, :] = w @ v
        return weights

    def backward_arrays(self, gy):  # gv = w^T g, gw = g v^T, gs = d softmax(gw), gq = gs k s
        q, k, v = (x.data for x in self.inputs)
        xp = self.xp
        gq, gk, gv = xp.empty_like(q), xp.zeros_like(k), xp.zeros_like(v)

        def backward_part(i, p):
            self._backward_part(q[p], k[p], v[p], gy[p], self.weights[i], gq[p], gk[p], gv[p])
        _run_parts(self.parts, backward_part)
        return gq, gk, gv

    def _backward_part(self, q, k, v, gy, weights, gq, gk, gv):
        S = k.shape[-2]
        for (r0, r1), w in zip(self._rows(q.shape[-2]), weights):
            g = gy[..., r0:r1, :]                                     # (..., n, Ev)
            gv += w.swapaxes(-1, -2) @ g
            gw = g @ v.swapaxes(-1, -2)                               # (..., n, S)
            # masked keys and empty rows have weight 0, so their gradient is 0 here
            gs = backend.blockwise(partial(_softmax_grad, axis=-1), w, gw, row_length=S)
            gs *= self.used_scale
            gq[..., r0:r1, :] = gs @ k
            gk += gs.swapaxes(-1, -2) @ q[..., r0:r1, :]

    def composite(self, q, k, v):
        xp = backend.get_array_module(q.data)
        allowed = None if self.allowed is None else xp.asarray(self.allowed)
        bias = None if self.bias is None else xp.asarray(self.bias, dtype=q.dtype)
        return _explicit(q, k, v, allowed, bias, self.scale)


class SlidingWindowAttention(FusedFunction):
    """Causal local attention: query i attends keys j with i - window < j <= i.

    Computed a block of `block` queries at a time against the band of keys they may
    see (at most window + block - 1 of them), so time and memory grow as T * window;
    no T x T array is made (except by `composite`, the definition).
    """

    def __init__(self, window, block=64):
        self.window, self.block = window, block

    def _blocks(self, T):
        """(r0, r1, c0): queries r0:r1 see keys c0:r1."""
        return [(r0, min(r0 + self.block, T), max(0, r0 - self.window + 1))
                for r0 in range(0, T, self.block)]

    def _band_bias(self, r0, r1, c0, dtype):
        """(n, r1 - c0): 0 where query r0 + a may see key c0 + b, else -inf. It depends only
        on the block's offsets, so every full block past the first window shares one."""
        key = (r0 - c0, r1 - r0, r1 - c0)
        if key not in self._biases:
            xp = self.xp
            i = xp.arange(r0, r1)[:, None] - c0                        # query positions
            j = xp.arange(r1 - c0)[None, :]                            # key positions
            allowed = (j <= i) & (j > i - self.window)
            self._biases[key] = xp.where(allowed, 0.0, -xp.inf).astype(dtype)
        return self._biases[key]

    def forward(self, q, k, v):
        xp = self.xp
        self.scale = scale = 1.0 / math.sqrt(q.shape[-1])
        y = xp.empty(q.shape[:-1] + v.shape[-1:], dtype=q.dtype)
        self.weights, self._biases = [], {}
        for r0, r1, c0 in self._blocks(q.shape[-2]):
            scores = q[..., r0:r1, :] @ k[..., c0:r1, :].swapaxes(-1, -2)  # (..., n, band)
            scores *= scale
            # every query sees itself, so no row is all -inf: -inf is safe here
            scores += self._band_bias(r0, r1, c0, q.dtype)
            weights = backend.blockwise(partial(_softmax, axis=-1), scores,
                                        row_length=r1 - c0)
            self.weights.append(weights)
            y[..., r0:r1, :] = weights @ v[..., c0:r1, :]
        return y

    def backward_arrays(self, gy):  # as CausalAttention, on each block's band of keys
        q, k, v = (x.data for x in self.inputs)
        xp, scale = self.xp, self.scale
        gq, gk, gv = xp.empty_like(q), xp.zeros_like(k), xp.zeros_like(v)
        for (r0, r1, c0), weights in zip(self._blocks(q.shape[-2]), self.weights):
            g = gy[..., r0:r1, :]
            gv[..., c0:r1, :] += weights.swapaxes(-1, -2) @ g
            gw = g @ v[..., c0:r1, :].swapaxes(-1, -2)
            gs = backend.blockwise(partial(_softmax_grad, axis=-1), weights, gw,
                                   row_length=r1 - c0)
            gs *= scale
            gq[..., r0:r1, :] = gs @ k[..., c0:r1, :]
            gk[..., c0:r1, :] += gs.swapaxes(-1, -2) @ q[..., r0:r1, :]
        return gq, gk, gv

    def composite(self, q, k, v):
        xp, T = self.xp, q.shape[-2]
        i, j = xp.arange(T)[:, None], xp.arange(T)[None, :]
        return _explicit(q, k, v, (j <= i) & (j > i - self.window), None, None)


# --- checking the arguments ---------------------------------------------------------------

def _broadcast_shapes(xp, name, *shapes):
    try:
        return tuple(xp.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(f"{name}: shapes {' and '.join(map(str, shapes))} do not broadcast") \
            from None


def _check_qkv(name, q, k, v):
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"{name} needs query (..., L, E), key (..., S, E) and value "
                         f"(..., S, Ev); got {q.shape}, {k.shape}, {v.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"{name}: query and key need the same last axis E, got query "
                         f"{q.shape} and key {k.shape}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{name}: key and value need the same number of positions S, got "
                         f"key {k.shape} and value {v.shape}")
    if len({q.dtype, k.dtype, v.dtype}) > 1 or q.dtype.kind != "f":
        raise TypeError(f"{name} needs query, key and value of one floating dtype, got "
                        f"{q.dtype}, {k.dtype}, {v.dtype}")


def split_attn_mask(attn_mask, dtype, scores_shape, xp, name="attn_mask"):
    """(allowed, bias) from a PyTorch-style attn_mask, checked against the scores' shape.

    bool: True = the key takes part -> allowed. float (of the queries' dtype): added to the
    scores -> bias, where -inf entries become allowed=False (so a row of -inf stays finite).
    """
    if attn_mask is None:
        return None, None
    mask = xp.asarray(as_tensor(attn_mask).data)
    if mask.dtype != bool and mask.dtype != dtype:
        raise TypeError(f"{name} must be bool (True = attend) or of the query's dtype "
                        f"{dtype} (added to the scores), got dtype {mask.dtype}")
    try:
        fits = tuple(xp.broadcast_shapes(mask.shape, scores_shape)) == tuple(scores_shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name} of shape {mask.shape} does not broadcast to the scores' "
                         f"shape {tuple(scores_shape)} (..., L, S)")
    if mask.dtype == bool:
        return mask, None
    blocked = xp.isneginf(mask)
    if bool(blocked.any()):
        return ~blocked, xp.where(blocked, 0, mask).astype(dtype)
    return None, mask


def and_masks(*masks):
    """The elementwise AND of bool masks (None = all True), broadcast; None if all are."""
    result = None
    for mask in masks:
        if mask is not None:
            result = mask if result is None else (result & mask)
    return result


# --- the functions ------------------------------------------------------------------------

def masked_attention(q, k, v, allowed=None, bias=None, scale=None, chunk=64):
    """attention_weights(q, k, allowed, bias, scale) @ v as one fused op (MaskedAttention);
    q, k, v are broadcast over their batch axes first. Inputs are not checked: use
    scaled_dot_product_attention."""
    batch = tuple(backend.get_array_module(q.data).broadcast_shapes(
        q.shape[:-2], k.shape[:-2], v.shape[:-2]))
    q = q if q.shape[:-2] == batch else broadcast_to(q, batch + q.shape[-2:])
    k = k if k.shape[:-2] == batch else broadcast_to(k, batch + k.shape[-2:])
    v = v if v.shape[:-2] == batch else broadcast_to(v, batch + v.shape[-2:])
    return MaskedAttention(allowed, bias, scale, chunk)(q, k, v)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, generator=None):
    """softmax(query key^T * scale + mask) @ value, with torch.nn.functional's meaning.

    query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev); the batch
    axes broadcast. attn_mask, broadcastable to the weights' shape (..., L, S) (the batch
    axes of query and key): bool (True = the key takes
    part) or float of the query's dtype (added to the scores; -inf excludes a key).
    is_causal: query i sees keys j <= i (top-left aligned, torch.ones(L, S).tril()); not
    together with attn_mask. scale: defaults to 1 / sqrt(E). dropout_p: dropout on the
    weights (from `generator`, or the default one). A query with no key to attend to gets
    output 0 and no gradient. A float attn_mask that requires grad gets its gradient.

    Without dropout it runs as one fused op: causal_attention when is_causal with L == S
    and one batch shape, MaskedAttention otherwise; both equal the explicit composite
    attention_weights(...) @ value.
    """
    query, key, value = as_tensor(query), as_tensor(key), as_tensor(value)
    name = "scaled_dot_product_attention"
    _check_qkv(name, query, key, value)
    xp = query.xp
    _broadcast_shapes(xp, f"{name} batch axes", query.shape[:-2], key.shape[:-2],
                      value.shape[:-2])
    L, S = query.shape[-2], key.shape[-2]
    if is_causal and attn_mask is not None:
        raise ValueError(f"{name}: pass either is_causal=True or an attn_mask, not both "
                         "(fold the causal part into the mask)")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{name}: dropout_p must be in [0, 1], got {dropout_p}")
    weights_batch = tuple(xp.broadcast_shapes(query.shape[:-2], key.shape[:-2]))
    allowed, bias = split_attn_mask(attn_mask, query.dtype, weights_batch + (L, S), xp)
    if is_causal:
        allowed = xp.tril(xp.ones((L, S), dtype=bool))
    mask_grad = attn_mask is not None and getattr(attn_mask, "requires_grad", False)
    if dropout_p > 0 or mask_grad:  # the explicit ops (a learned bias gets its gradient)
        if mask_grad and bias is not None:
            bias = attn_mask if allowed is None else attn_mask.masked_fill(~allowed, 0.0)
        weights = attention_weights(query, key, allowed, bias, scale)
        weights = dropout(weights, dropout_p, True, generator)
        return weights @ value
    plain_scale = scale is None or scale == 1.0 / math.sqrt(query.shape[-1])
    if is_causal and L == S and plain_scale and query.shape[:-2] == key.shape[:-2] \
            == value.shape[:-2]:
        return CausalAttention()(query, key, value)
    return masked_attention(query, key, value, allowed, bias, scale)


def sliding_window_attention(q, k, v, window, block=64):
    """Causal local attention of q, k, v (..., T, E): query i attends keys j with
    i - window < j <= i (window 1: itself only; window >= T: causal attention).
    Blocks of `block` queries against their band of keys: O(T * window) time and memory."""
    q, k, v = as_tensor(q), as_tensor(k), as_tensor(v)
    _check_qkv("sliding_window_attention", q, k, v)
    if q.shape[:-1] != k.shape[:-1]:
        raise ValueError(f"sliding_window_attention is self-attention: query and key need "
                         f"one shape (..., T, E), got {q.shape} and {k.shape}")
    if k.shape[:-1] != v.shape[:-1]:
        raise ValueError(f"sliding_window_attention: value needs shape (..., T, Ev) like key "
                         f"{k.shape}, got {v.shape}")
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"sliding_window_attention: window must be an int >= 1, got {window!r}")
    if block < 1:
        raise ValueError(f"sliding_window_attention: block must be at least 1, got {block}")
    return SlidingWindowAttention(window, block)(q, k, v)


__all__ = ["attention_weights", "masked_attention", "scaled_dot_product_attention",
           "sliding_window_attention", "split_attn_mask"]
