"""Attention, twice: one head spelled out for learning, then the batched
multi-head version a GPT uses.

Shapes: B batch, T time (sequence length), C = n_embd channels, nh heads,
hs = C / nh head size. Tokens attend only to earlier tokens when causal.

Masking: masked scores are set to the most negative finite number of the
dtype, not -inf. exp() of it underflows to exactly 0, so masked keys get
exactly zero weight just as with -inf; but a query whose keys are ALL masked
(possible with padding) gets an even spread over them instead of 0/0 = NaN,
and a NaN there would spread into every gradient even if the loss ignores
that position.
"""
import math

import numpy

import minigrad
import minigrad.functional as F
from minigrad.nn import Module

from .layers import Dropout, Linear


def masked_value(dtype):
    """The fill value for masked scores (see the module docstring for why not -inf)."""
    return float(numpy.finfo(dtype).min)


def causal_mask(xp, query_count, key_count):
    """(query_count, key_count) bool, True where a query may NOT look: keys in its future.

    The queries are the last `query_count` of the `key_count` positions (with a KV
    cache the earlier keys come from previous steps), so query i sits at position
    key_count - query_count + i and may see keys 0 .. that position.
    """
    first_query = key_count - query_count
    return xp.triu(xp.ones((query_count, key_count), dtype=bool), k=first_query + 1)


class SelfAttention(Module):
    """One head of self-attention, every step written out.

    forward(x) for x (B, T, n_embd) returns (B, T, head_size); with
    return_weights=True also the attention weights (B, T, T), whose row t says
    how much token t takes from each token.
    """

    def __init__(self, n_embd, head_size, causal=True, bias=True, device=None, generator=None):
        super().__init__()
        self.n_embd, self.head_size, self.causal = n_embd, head_size, causal
        self.query = Linear(n_embd, head_size, bias, device, generator)  # what am I looking for?
        self.key = Linear(n_embd, head_size, bias, device, generator)    # what do I contain?
        self.value = Linear(n_embd, head_size, bias, device, generator)  # what do I hand over?

    def forward(self, x, return_weights=False):
        T = x.shape[1]                                     # x: (B, T, C)
        q = self.query(x)                                  # (B, T, hs)
        k = self.key(x)                                    # (B, T, hs)
        v = self.value(x)                                  # (B, T, hs)
        # how well each query matches each key; dividing by sqrt(hs) keeps the
        # scores' variance near 1 so softmax does not saturate at init
        scores = q @ k.swapaxes(-1, -2) / math.sqrt(self.head_size)  # (B, T, T)
        if self.causal:
            future = causal_mask(x.xp, T, T)               # (T, T), True above the diagonal
            scores = scores.masked_fill(future, masked_value(scores.dtype))  # (B, T, T)
        weights = F.softmax(scores, axis=-1)               # (B, T, T), each row sums to 1
        out = weights @ v                                  # (B, T, hs): weighted mix of values
        return (out, weights) if return_weights else out

    def extra_repr(self):
        return f"n_embd={self.n_embd}, head_size={self.head_size}, causal={self.causal}"


class KVCache:
    """The keys and values one attention layer has seen so far, for generation.

    Space for `max_length` positions is allocated once; each step writes only
    the new tokens' keys and values and reads back views of everything so far,
    so nothing is copied again. It holds values, not a graph: use it under
    minigrad.no_grad(), as GPT.generate does.
    """

    def __init__(self, max_length):
        self.max_length = max_length
        self.length = 0  # positions filled so far
        self.keys = self.values = None  # arrays (B, nh, max_length, hs), made on first use

    def append(self, k, v):
        """Store k, v (B, nh, T, hs); return all keys and values so far, (B, nh, length, hs)."""
        if minigrad.is_grad_enabled() and (k.requires_grad or v.requires_grad):
            raise RuntimeError("KVCache stores values without their graph; "
                               "use it under minigrad.no_grad()")
        B, nh, T, hs = k.shape
        if self.length + T > self.max_length:
            raise ValueError(f"KVCache is full: {self.length} + {T} positions > "
                             f"max_length {self.max_length}")
        if self.keys is None:
            shape = (B, nh, self.max_length, hs)
            self.keys = k.xp.empty(shape, dtype=k.dtype)
            self.values = k.xp.empty(shape, dtype=v.dtype)
        end = self.length + T
        self.keys[:, :, self.length:end] = k.data
        self.values[:, :, self.length:end] = v.data
        self.length = end
        return minigrad.Tensor(self.keys[:, :, :end]), minigrad.Tensor(self.values[:, :, :end])


class MultiHeadAttention(Module):
    """n_head heads of self-attention computed together, as in nanoGPT.

    One Linear (c_attn) makes the queries, keys and values of every head at
    once; the heads become a batch axis, so there is no Python loop over them.
    Head h uses channels h*hs:(h+1)*hs of each of q, k and v; its output fills
    the same channels before the output projection c_proj mixes the heads.

    forward(x, key_padding_mask=None, kv_cache=None, return_weights=False):
      x (B, T, n_embd) -> (B, T, n_embd)
      key_padding_mask: (B, T_keys) bool, True marks padding that no query attends to
      kv_cache: a KVCache; x then holds only the new tokens, which attend to
                the cached ones too
      return_weights: also return the attention weights (B, nh, T, T_keys)

    Set `keep_weights = True` on an instance to keep the weights of its latest
    forward call in `last_weights` (detached: values, no graph), for looking
    at attention inside a model whose forward does not return them
    (examples/plot_attention.py does this for every layer of a GPT).
    """

    keep_weights = False  # see the docstring; off by default, so nothing extra is kept
    last_weights = None
    # Plain causal attention (no padding, cached keys, dropout or weights wanted) runs as one
    # F.causal_attention op, which skips the future keys' scores. False: always the explicit
    # ops below (softmax and all, e.g. to see each of them in a graph); the same values.
    fused_causal = True

    def __init__(self, n_embd, n_head, causal=True, dropout=0.0, bias=True, device=None,
                 generator=None):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
        self.n_embd, self.n_head, self.causal = n_embd, n_head, causal
        self.head_size = n_embd // n_head
        self.c_attn = Linear(n_embd, 3 * n_embd, bias, device, generator)  # q, k, v of all heads
        self.c_proj = Linear(n_embd, n_embd, bias, device, generator)      # mixes the heads
        self.attn_dropout = Dropout(dropout)
        self.resid_dropout = Dropout(dropout)

    def forward(self, x, key_padding_mask=None, kv_cache=None, return_weights=False):
        B, T, C = x.shape
        nh, hs = self.n_head, self.head_size
        q, k, v = F.split(self.c_attn(x), C, axis=2)       # 3 x (B, T, C)
        q = q.reshape(B, T, nh, hs).permute(0, 2, 1, 3)  # (B, nh, T, hs)
        k = k.reshape(B, T, nh, hs).permute(0, 2, 1, 3)  # (B, nh, T, hs)
        v = v.reshape(B, T, nh, hs).permute(0, 2, 1, 3)  # (B, nh, T, hs)
        if kv_cache is not None:
            k, v = kv_cache.append(k, v)                   # (B, nh, Tk, hs), Tk = cached + T
        weights = None
        if self._only_causal(key_padding_mask, k.shape[2] > T, return_weights):
            # the else branch's math in one op, which skips the scores of future keys
            y = F.causal_attention(q, k, v)                 # (B, nh, T, hs)
        else:
            weights = self._weights(q, k, key_padding_mask)  # (B, nh, T, Tk)
            y = self.attn_dropout(weights) @ v              # (B, nh, T, hs)
        y = y.permute(0, 2, 1, 3).reshape(B, T, C)        # (B, T, C): heads side by side
        y = self.resid_dropout(self.c_proj(y))              # (B, T, C)
        return (y, weights) if return_weights else y

    def _weights(self, q, k, key_padding_mask):
        B, nh, T, hs = q.shape
        Tk = k.shape[2]
        # scaling q by 1/sqrt(hs) equals scaling the scores, on T*hs numbers instead of T*Tk
        scores = (q * (1.0 / math.sqrt(hs))) @ k.swapaxes(-1, -2)  # (B, nh, T, Tk)
        mask = self._mask(q.xp, B, T, Tk, key_padding_mask)        # broadcasts to (B, nh, T, Tk)
        # the fused form of masked_fill(mask, masked_value) then softmax (see SelfAttention)
        weights = F.softmax(scores, axis=-1, mask=mask)     # (B, nh, T, Tk)
        if self.keep_weights:
            self.last_weights = weights.detach()            # (B, nh, T, Tk), values only
        return weights

    def _only_causal(self, key_padding_mask, earlier_keys, return_weights):
        """Plain causal self-attention (no cached keys from earlier steps, no padding, no
        dropout), with no weights wanted: F.causal_attention can do it."""
        dropout_on = self.attn_dropout.training and self.attn_dropout.p > 0
        return (self.fused_causal and self.causal and key_padding_mask is None
                and not (earlier_keys or return_weights or self.keep_weights or dropout_on))

    def _mask(self, xp, B, T, Tk, key_padding_mask):
        """True where a query must not attend: future keys (causal) and padding keys."""
        mask = causal_mask(xp, T, Tk) if self.causal else None  # (T, Tk)
        if key_padding_mask is not None:
            padding = xp.asarray(minigrad.as_tensor(key_padding_mask).data)
            if padding.dtype != bool or padding.shape != (B, Tk):
                raise ValueError(f"key_padding_mask must be a bool array of shape {(B, Tk)} "
                                 f"(True = padding), got {padding.dtype} {padding.shape}")
            padding = padding[:, None, None, :]                   # (B, 1, 1, Tk)
            mask = padding if mask is None else (mask | padding)  # (B, 1, T, Tk)
        return mask

    def extra_repr(self):
        return f"n_embd={self.n_embd}, n_head={self.n_head}, causal={self.causal}"
