"""Attention patterns as boolean masks: True = query i (row) may attend to key j (column).

They feed F.scaled_dot_product_attention(q, k, v, attn_mask=mask) or
MultiHeadAttention(..., causal=False)(x, attn_mask=mask) directly. mask_text draws one:
'x' attends, '.' does not.

    causal             sliding_window_mask(T, T)     every earlier token (GPT)
    sliding window     sliding_window_mask(T, w)     the last w tokens (Longformer, Mistral)
    strided            strided_mask(T, l)            Sparse Transformer (Child et al. 2019)
    fixed              fixed_mask(T, l, c)           Sparse Transformer (Child et al. 2019)
    global tokens      global_tokens_mask(T, g, w)   Longformer / BigBird

A dense mask is still T x T: these say which scores count, for learning and for short
sequences. F.sliding_window_attention computes the sliding window without one.
"""
import numpy


def mask_text(mask):
    """The mask as text, one row per query: 'x' attends, '.' does not.

    >>> print(mask_text(numpy.array([[True, False], [True, True]])))
    x .
    x x
    """
    return "\n".join(" ".join("x" if a else "." for a in row) for row in numpy.asarray(mask))


def _positions(xp, T):
    return xp.arange(T)[:, None], xp.arange(T)[None, :]   # query i (T, 1), key j (1, T)


def sliding_window_mask(T, window, causal=True, xp=numpy):
    """Query i attends keys j with i - window < j <= i (causal), or |i - j| < window.

    >>> print(mask_text(sliding_window_mask(6, 3)))
    x . . . . .
    x x . . . .
    x x x . . .
    . x x x . .
    . . x x x .
    . . . x x x
    >>> print(mask_text(sliding_window_mask(5, 2, causal=False)))
    x x . . .
    x x x . .
    . x x x .
    . . x x x
    . . . x x
    """
    _check(T, window, "window")
    i, j = _positions(xp, T)
    if causal:
        return (j <= i) & (j > i - window)
    return abs(i - j) < window


def strided_mask(T, stride, xp=numpy):
    """The Sparse Transformer's strided pattern (causal): the previous `stride` tokens
    (i - stride < j <= i) and every stride-th token before them ((i - j) % stride == 0).
    Two hops reach any earlier token, with about 2 * sqrt(T) keys per query when
    stride ~ sqrt(T). Good for data with a period (image rows).

    >>> print(mask_text(strided_mask(8, 3)))
    x . . . . . . .
    x x . . . . . .
    x x x . . . . .
    x x x x . . . .
    . x x x x . . .
    . . x x x x . .
    x . . x x x x .
    . x . . x x x x
    """
    _check(T, stride, "stride")
    i, j = _positions(xp, T)
    local = (j <= i) & (j > i - stride)
    return local | ((j <= i) & ((i - j) % stride == 0))


def fixed_mask(T, stride, summary=1, xp=numpy):
    """The Sparse Transformer's fixed pattern (causal): every earlier token of the query's
    own block of `stride` (j // stride == i // stride), and the last `summary` tokens of
    every block (j % stride >= stride - summary), which carry each block's summary onward.
    Good for text, which has no period.

    >>> print(mask_text(fixed_mask(8, 3)))
    x . . . . . . .
    x x . . . . . .
    x x x . . . . .
    . . x x . . . .
    . . x x x . . .
    . . x x x x . .
    . . x . . x x .
    . . x . . x x x
    """
    _check(T, stride, "stride")
    if not 1 <= summary <= stride:
        raise ValueError(f"fixed_mask: summary must be in 1..stride={stride}, got {summary}")
    i, j = _positions(xp, T)
    same_block = (j // stride) == (i // stride)
    summaries = (j % stride) >= stride - summary
    return (j <= i) & (same_block | summaries)


def global_tokens_mask(T, global_tokens, window=1, xp=numpy):
    """Longformer / BigBird: a bidirectional sliding window (|i - j| < window; window 1 =
    each token sees itself), plus global tokens (e.g. [CLS]) that attend to every token and
    that every token attends to.

    >>> print(mask_text(global_tokens_mask(6, [0], window=2)))
    x x x x x x
    x x x . . .
    x x x x . .
    x . x x x .
    x . . x x x
    x . . . x x
    """
    _check(T, window, "window")
    tokens = numpy.asarray(list(global_tokens), dtype=int)
    if tokens.size and (tokens.min() < -T or tokens.max() >= T):
        raise ValueError(f"global_tokens_mask: global tokens {tokens.tolist()} must lie in "
                         f"0..{T - 1}")
    mask = sliding_window_mask(T, window, causal=False, xp=xp).copy()
    mask[tokens, :] = True   # global tokens see everything
    mask[:, tokens] = True   # and everything sees them
    return mask


def _check(T, size, name):
    if not isinstance(T, (int, numpy.integer)) or T < 1:
        raise ValueError(f"mask length T must be an int >= 1, got {T!r}")
    if not isinstance(size, (int, numpy.integer)) or size < 1:
        raise ValueError(f"{name} must be an int >= 1, got {size!r}")
