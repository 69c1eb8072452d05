"""Attention, twice: one head spelled out for learning, then the batched
multi-head version a GPT uses.

Shapes: B batch, T time (sequence length), C = n_embd channels, nh heads,
hs = C / nh head size. Tokens attend only to earlier tokens when causal.

Masks follow torch.nn.functional.scaled_dot_product_attention: an `attn_mask`
is bool (True = the key takes part) or float (added to the scores), and
broadcasts to the scores (B, [nh,] T, S). `key_padding_mask` (B, S) is the
other way round: True marks padding, which no query attends to.

Masking: masked scores are set to the most negative finite number of the
dtype, not -inf. exp() of it underflows to exactly 0, so masked keys get
exactly zero weight just as with -inf. A query whose keys are ALL masked
(possible with padding) gets weights 0, so its output is 0 (before c_proj's
bias) and no gradient flows through it: never 0/0 = NaN, which would spread
into every gradient even if the loss ignores that position.
"""
import math

import numpy

import minigrad
import minigrad.functional as F
from minigrad.nn import Module
from minigrad.ops.attention import and_masks, masked_attention, split_attn_mask

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
    how much token t takes from each token. attn_mask, broadcastable to
    (B, T, T): bool (True = may attend) or float (added to the scores).
    """

    def __init__(self, n_embd, head_size, causal=True, bias=True, device=None, generator=None):
        super().__init__()
        self.n_embd, self.head_size, self.causal = n_embd, head_size, causal
        self.query = Linear(n_embd, head_size, bias, device, generator)  # what am I looking for?
        self.key = Linear(n_embd, head_size, bias, device, generator)    # what do I contain?
        self.value = Linear(n_embd, head_size, bias, device, generator)  # what do I hand over?

    def forward(self, x, attn_mask=None, return_weights=False):
        B, T, _ = x.shape                                  # x: (B, T, C)
        q = self.query(x)                                  # (B, T, hs)
        k = self.key(x)                                    # (B, T, hs)
        v = self.value(x)                                  # (B, T, hs)
        # how well each query matches each key; dividing by sqrt(hs) keeps the
        # scores' variance near 1 so softmax does not saturate at init
        scores = q @ k.swapaxes(-1, -2) / math.sqrt(self.head_size)  # (B, T, T)
        allowed, bias = split_attn_mask(attn_mask, scores.dtype, (B, T, T), x.xp)
        if bias is not None:
            scores = scores + bias                         # (B, T, T): a float mask adds
        if self.causal:
            future = causal_mask(x.xp, T, T)               # (T, T), True above the diagonal
            allowed = and_masks(allowed, ~future)
        if allowed is not None:                            # leave out what may not be seen
            scores = scores.masked_fill(~allowed, masked_value(scores.dtype))  # (B, T, T)
        weights = F.softmax(scores, axis=-1)               # (B, T, T), each row sums to 1
        has_key = True if allowed is None else x.xp.broadcast_to(allowed, (B, T, T)).any(
            axis=-1, keepdims=True)                        # (B, T, 1)
        if not bool(x.xp.all(has_key)):                    # a query with no key: weights 0
            weights = weights * minigrad.Tensor(has_key.astype(weights.dtype))  # (B, T, T)
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

    For cross-attention (MultiHeadAttention(cross=True)) the cache holds the
    context's keys and values: the first call computes them from `context` and
    stores all S of them (max_length >= S); later calls reuse them and ignore
    `context` (which may then be None). An encoder-decoder thus projects the
    encoder output once per sequence, not once per generated token.
    """

    def __init__(self, max_length):
        self.max_length = max_length
        self.length = 0  # positions filled so far
        self.keys = self.values = None  # arrays (B, nh, max_length, hs), made on first use

    def append(self, k, v):
        """Store k, v (B, nh, T, hs); return all keys and values so far, (B, nh, length, hs)."""
        _check_no_graph(k, v)
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
        return self.cached()

    def cached(self):
        """All keys and values so far, (B, nh, length, hs) each."""
        end = self.length
        return minigrad.Tensor(self.keys[:, :, :end]), minigrad.Tensor(self.values[:, :, :end])

    def update(self, k, v):
        """append(k, v), and the position of every key returned, (length,) ints."""
        keys, values = self.append(k, v)
        return keys, values, k.xp.arange(self.length)


class RollingKVCache:
    """The keys and values of the last `window` positions only, for sliding-window
    attention: a fixed buffer of `window` slots, position p written to slot p % window.

    Memory stays (B, nh, window, hs) however long generation runs. Attention does not
    care about the order of its keys (the softmax sums over them), so the slots are
    never reordered; each slot's position is kept to build the window mask.
    `length` counts every position seen, as KVCache's does.
    """

    def __init__(self, window):
        if window < 1:
            raise ValueError(f"RollingKVCache window must be at least 1, got {window}")
        self.window = window
        self.length = 0
        self.keys = self.values = self.positions = None  # made on first use

    def update(self, k, v):
        """Store k, v (B, nh, T, hs) of positions length .. length + T - 1. Return the keys
        and values the new queries may need (the cached window, then the new ones) and
        the position of each, (n,) ints."""
        _check_no_graph(k, v)
        xp = k.xp
        B, nh, T, hs = k.shape
        if self.keys is None:
            self.keys = xp.empty((B, nh, self.window, hs), dtype=k.dtype)
            self.values = xp.empty((B, nh, self.window, hs), dtype=v.dtype)
            self.positions = xp.full(self.window, -1)  # -1: an empty slot
        new_positions = self.length + xp.arange(T)
        if T == 1:  # one step: its key replaces the one that just left the window
            slot = self.length % self.window
            self.keys[:, :, slot], self.values[:, :, slot] = k.data[:, :, 0], v.data[:, :, 0]
            self.positions[slot] = self.length
            self.length += 1
            n = min(self.length, self.window)          # slots fill in order: a prefix
            return (minigrad.Tensor(self.keys[:, :, :n]), minigrad.Tensor(self.values[:, :, :n]),
                    self.positions[:n])
        # several queries: the cached window, then the new keys (an early query may need a
        # key that a later one's would overwrite)
        filled = xp.flatnonzero(self.positions >= 0)
        keys = xp.concatenate([self.keys[:, :, filled], k.data], axis=2)      # (B, nh, n, hs)
        values = xp.concatenate([self.values[:, :, filled], v.data], axis=2)  # (B, nh, n, hs)
        positions = xp.concatenate([self.positions[filled], new_positions])
        last = slice(max(0, T - self.window), T)       # only the last window are kept
        slots = new_positions[last] % self.window
        self.keys[:, :, slots] = k.data[:, :, last]
        self.values[:, :, slots] = v.data[:, :, last]
        self.positions[slots] = new_positions[last]
        self.length += T
        return minigrad.Tensor(keys), minigrad.Tensor(values), positions


def _check_no_graph(k, v):
    if minigrad.is_grad_enabled() and (k.requires_grad or v.requires_grad):
        raise RuntimeError("KVCache stores values without their graph; "
                           "use it under minigrad.no_grad()")


class MultiHeadAttention(Module):
    """n_head heads of attention computed together, as in nanoGPT.

    Self-attention (the default): one Linear (c_attn) makes the queries, keys and
    values of every head at once, so nanoGPT's parameter names still apply.
    Cross-attention (cross=True, an encoder-decoder's decoder): q_proj makes the
    queries from x and kv_proj the keys and values from `context`. The heads
    become a batch axis, so there is no Python loop over them. Head h uses
    channels h*hs:(h+1)*hs of each of q, k and v; its output fills the same
    channels before the output projection c_proj mixes the heads.

    MultiHeadAttention(n_embd, n_head, causal=None, dropout=0.0, bias=True,
                       device=None, generator=None, cross=False, window=None)
      causal: queries see only their own and earlier positions; None means True for
              self-attention and False for cross-attention (which has no order).
              causal=False is bidirectional (an encoder).
      window: sliding-window attention, query i sees keys j with i - window < j <= i
              (bidirectional: |i - j| < window); generation then fits a RollingKVCache.

    forward(x, context=None, attn_mask=None, key_padding_mask=None, kv_cache=None,
            return_weights=False):
      x (B, T, n_embd) -> (B, T, n_embd)
      context: (B, S, n_embd), the keys' and values' source (cross=True only)
      attn_mask: as in F.scaled_dot_product_attention, broadcastable to (B, nh, T, S):
                 bool (True = may attend) or float (added to the scores)
      key_padding_mask: (B, S) bool, True marks padding that no query attends to
      kv_cache: a KVCache (or RollingKVCache): for self-attention x holds only the new
                tokens, which attend to the cached ones too (S = cached + T; attn_mask
                then broadcasts to (B, nh, T, S)); for cross-attention see KVCache.
      return_weights: also return the attention weights (B, nh, T, S)
    Every mask given is applied on every path (the tests check each combination).

    Set `keep_weights = True` on an instance to keep the weights of its latest
    forward call in `last_weights` (detached: values, no graph), for looking
    at attention inside a model whose forward does not return them
    (examples/plot_attention.py does this for every layer of a GPT).
    """

    keep_weights = False  # see the docstring; off by default, so nothing extra is kept
    last_weights = None
    # Without weights or dropout, attention runs as one fused op: F.causal_attention for
    # plain causal self-attention (it skips the future keys' scores), sliding_window_attention
    # for a plain window, MaskedAttention for every other mask. False: always the explicit
    # ops (softmax and all, e.g. to see each of them in a graph); the same values.
    fused = True

    def __init__(self, n_embd, n_head, causal=None, dropout=0.0, bias=True, device=None,
                 generator=None, cross=False, window=None):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
        causal = (not cross) if causal is None else causal
        if cross and causal:
            raise ValueError("cross-attention has no order between queries and context: "
                             "build it with causal=False (or leave causal unset)")
        if window is not None and (cross or not isinstance(window, int) or window < 1):
            raise ValueError(f"window must be an int >= 1 for self-attention, got {window!r}"
                             f"{' with cross=True' if cross else ''}")
        self.n_embd, self.n_head, self.causal = n_embd, n_head, causal
        self.cross, self.window = cross, window
        self.head_size = n_embd // n_head
        if cross:
            self.q_proj = Linear(n_embd, n_embd, bias, device, generator)       # queries from x
            self.kv_proj = Linear(n_embd, 2 * n_embd, bias, device, generator)  # k, v: context
        else:
            self.c_attn = Linear(n_embd, 3 * n_embd, bias, device, generator)  # q, k, v of x
        self.c_proj = Linear(n_embd, n_embd, bias, device, generator)      # mixes the heads
        self.attn_dropout = Dropout(dropout)
        self.resid_dropout = Dropout(dropout)

    def forward(self, x, context=None, attn_mask=None, key_padding_mask=None, kv_cache=None,
                return_weights=False):
        B, T, C = x.shape
        if self.cross:
            q, k, v = self._cross_qkv(x, context, kv_cache)   # (B, nh, T|S, hs)
            structure, earlier = None, False
        else:
            if context is not None:
                raise ValueError("context is for cross-attention: build the module with "
                                 "MultiHeadAttention(..., cross=True)")
            if self._plain_causal(T, attn_mask, key_padding_mask, kv_cache, return_weights):
                # one op from c_attn's packed output: no split, no graph of head reshapes
                y = F.packed_causal_attention(self.c_attn(x), self.n_head)  # (B, T, C)
                return self.resid_dropout(self.c_proj(y))             # (B, T, C)
            q, k, v = self._heads(self.c_attn(x), 3)          # 3 x (B, nh, T, hs)
            start = 0 if kv_cache is None else kv_cache.length
            key_positions = None
            if kv_cache is not None:
                k, v, key_positions = kv_cache.update(k, v)   # (B, nh, S, hs), S = cached + T
            earlier = k.shape[2] != T or start > 0
            structure = self._structure_mask(x.xp, start, T, key_positions)  # (T, S) or None
            if earlier and structure is not None and bool(structure.all()):
                structure = None  # e.g. one new token against a rolling window: sees them all
        S = k.shape[2]
        allowed, bias = split_attn_mask(attn_mask, q.dtype, (B, self.n_head, T, S), x.xp)
        allowed = and_masks(structure, allowed, self._not_padding(x.xp, B, S, key_padding_mask))
        weights = None
        if self._explicit(return_weights):
            weights = self._weights(q, k, allowed, bias)      # (B, nh, T, S)
            y = self.attn_dropout(weights) @ v                # (B, nh, T, hs)
        elif self.causal and not (earlier or attn_mask is not None
                                  or key_padding_mask is not None):
            if self.window is None or self.window >= T:       # plain causal
                y = F.causal_attention(q, k, v)               # (B, nh, T, hs)
            else:
                y = F.sliding_window_attention(q, k, v, self.window)  # (B, nh, T, hs)
        else:
            y = masked_attention(q, k, v, allowed, bias)      # (B, nh, T, hs)
        y = y.permute(0, 2, 1, 3).reshape(B, T, C)            # (B, T, C): heads side by side
        y = self.resid_dropout(self.c_proj(y))                # (B, T, C)
        return (y, weights) if return_weights else y

    def _heads(self, projected, parts):
        """(B, T, parts * C) -> parts tensors (B, nh, T, hs)."""
        B, T, _ = projected.shape
        pieces = F.split(projected, self.n_embd, axis=2)      # parts x (B, T, C)
        return [p.reshape(B, T, self.n_head, self.head_size).permute(0, 2, 1, 3)
                for p in pieces]

    def _cross_qkv(self, x, context, kv_cache):
        (q,) = self._heads(self.q_proj(x), 1)                 # (B, nh, T, hs)
        if kv_cache is not None and kv_cache.length > 0:      # computed on an earlier call
            k, v = kv_cache.cached()                          # (B, nh, S, hs)
            return q, k, v
        if context is None:
            raise ValueError("cross-attention needs context (B, S, n_embd) "
                             "(or a kv_cache already holding its keys and values)")
        context = minigrad.as_tensor(context)
        if context.ndim != 3 or context.shape[0] != x.shape[0] or context.shape[2] != self.n_embd:
            raise ValueError(f"context must have shape (B={x.shape[0]}, S, {self.n_embd}), "
                             f"got {context.shape}")
        k, v = self._heads(self.kv_proj(context), 2)          # 2 x (B, nh, S, hs)
        if kv_cache is not None:
            k, v = kv_cache.append(k, v)
        return q, k, v

    def _structure_mask(self, xp, start, T, key_positions):
        """(T, S) bool, True where query (at start + i) may see the key: the causal and the
        window parts; None when every key may be seen."""
        if not self.causal and self.window is None:
            return None
        query = (start + xp.arange(T))[:, None]               # (T, 1) positions
        key = (xp.arange(T) if key_positions is None else key_positions)[None, :]  # (1, S)
        allowed = key <= query if self.causal else None
        if self.window is not None:
            near = key > query - self.window if self.causal else abs(key - query) < self.window
            allowed = and_masks(allowed, near)
        return allowed

    def _not_padding(self, xp, B, S, key_padding_mask):
        if key_padding_mask is None:
            return None
        padding = xp.asarray(minigrad.as_tensor(key_padding_mask).data)
        if padding.dtype != bool or padding.shape != (B, S):
            raise ValueError(f"key_padding_mask must be a bool array of shape {(B, S)} "
                             f"(True = padding), got {padding.dtype} {padding.shape}")
        return ~padding[:, None, None, :]                     # (B, 1, 1, S)

    def _weights(self, q, k, allowed, bias):
        weights = F.attention_weights(q, k, allowed, bias)    # (B, nh, T, S)
        if self.keep_weights:
            self.last_weights = weights.detach()              # (B, nh, T, S), values only
        return weights

    def _plain_causal(self, T, attn_mask, key_padding_mask, kv_cache, return_weights):
        """Causal self-attention with no mask, cache, window, weights or dropout to honour."""
        return (self.causal and attn_mask is None and key_padding_mask is None
                and kv_cache is None and (self.window is None or self.window >= T)
                and not self._explicit(return_weights))

    def _explicit(self, return_weights):
        """The explicit ops are needed: weights wanted or kept, dropout on them, or fused off."""
        dropout_on = self.attn_dropout.training and self.attn_dropout.p > 0
        return not self.fused or return_weights or self.keep_weights or dropout_on

    def extra_repr(self):
        extra = (", cross=True" if self.cross else "") + \
            (f", window={self.window}" if self.window is not None else "")
        return f"n_embd={self.n_embd}, n_head={self.n_head}, causal={self.causal}{extra}"
