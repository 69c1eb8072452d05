"""The neural-network ops a transformer needs, numerically stable and fused:
softmax, log_softmax, cross_entropy, layer_norm, dropout.

Softmax-like ops subtract the row maximum before exp (exp of anything <= 0
cannot overflow) and work in log space where they can (log-sum-exp).
"""
import math
from functools import partial

from .. import backend, threads
from .. import random as mg_random
from ..autograd import Function, FusedFunction, as_tensor
from .conversion import astype
from .indexing import getitem, masked_fill
from .names import torch_names
from .shape import split


class Softmax(FusedFunction):
    """exp(x) / sum(exp(x)) over `axis`. With a boolean `mask` (broadcastable to x, True =
    excluded), masked places act as the dtype's lowest number: their weight is 0 (an
    all-masked row spreads evenly instead of giving NaN) and they get no gradient."""

    needs_output = True  # backward reads the output: editing it in place is an error

    def __init__(self, axis, mask=None):
        self.axis, self.mask = axis, mask

    def _run(self, fn, *arrays):
        """fn over whole arrays, or a cache-sized block of rows at a time for the last axis."""
        x = arrays[0]
        if self.mask is not None:
            arrays += (self.xp.broadcast_to(self.mask, x.shape),)
        if self.axis in (-1, x.ndim - 1):
            return backend.blockwise(partial(fn, axis=-1), *arrays, row_length=x.shape[-1])
        return fn(*arrays, axis=self.axis)

    def forward(self, x):
        self.y = self._run(_softmax, x)  # kept for backward
        return self.y

    def backward_arrays(self, gy):  # d softmax: s * (g - sum(g * s))
        return self._run(_softmax_grad, self.y, gy)

    def composite(self, x):
        if self.mask is not None:
            x = masked_fill(x, as_tensor(self.mask), float(self.xp.finfo(x.dtype).min))
        shifted = x - x.max(axis=self.axis, keepdims=True).detach()  # softmax ignores the shift
        e = shifted.exp()
        return e / e.sum(axis=self.axis, keepdims=True)


def _softmax(x, mask=None, axis=-1):
    xp = backend.get_array_module(x)
    if mask is not None:
        x = xp.where(mask, xp.finfo(x.dtype).min, x)
    e = x - x.max(axis=axis, keepdims=True)  # shift: exp never overflows
    xp.exp(e, out=e)
    e /= e.sum(axis=axis, keepdims=True)
    return e


def _softmax_grad(s, gy, mask=None, axis=-1):
    g = gy * s
    g = gy - g.sum(axis=axis, keepdims=True)
    g *= s                                   # s * (gy - sum(gy * s))
    if mask is not None:
        g[mask] = 0                          # masked places had a constant, not x
    return g


PARALLEL_SCORES = 1 << 16  # attention with fewer scores than this runs in one thread


def _batch_parts(q):
    """Index tuples splitting q's batch axes (all but the last two) into one share per
    thread (threads.workers()); [()], the whole, when there is one thread, too little
    work to share (fewer than 2^16 scores), or a GPU array."""
    scores = q.size // max(q.shape[-1], 1) * q.shape[-2]
    count = threads.workers() if scores >= PARALLEL_SCORES else 1
    axes = [a for a in range(q.ndim - 2) if q.shape[a] > 1]
    if count == 1 or not axes or backend.device_of(q) == "cuda":
        return [()]
    axis = axes[0]
    return [(slice(None),) * axis + (slice(a, b),)
            for a, b in threads.split_ranges(q.shape[axis], count)]


def _run_parts(parts, fn):
    """fn(i, part) for every part (an index tuple from _batch_parts), all at once."""
    threads.run_in_parallel([partial(fn, i, part) for i, part in enumerate(parts)])


class CausalAttention(FusedFunction):
    """softmax(q k^T / sqrt(hs), future keys masked) @ v for q, k, v of shape (..., T, hs).

    `composite` is the definition. The fused form gets the same value a chunk of
    query rows at a time: queries r0..r1 may only see keys 0..r1, so the scores of
    later keys, which the mask would zero anyway, are never computed (with T = 256
    and chunks of 64, 5/8 of the products and of the softmax work).
    """

    def __init__(self, chunk=64):
        self.chunk = chunk

    def _chunks(self, T):
        return [(r0, min(r0 + self.chunk, T)) for r0 in range(0, T, self.chunk)]

    def forward(self, q, k, v):
        y = self.xp.empty(q.shape[:-1] + v.shape[-1:], dtype=q.dtype)
        self._attend(q, k, v, y)
        return y

    def _attend(self, q, k, v, y):
        """Fill y (..., T, hs) with the attention of q, k, v, keeping the weights."""
        self.scale = 1.0 / math.sqrt(q.shape[-1])
        self.parts = _batch_parts(q)  # a share of the batch for each thread
        self.weights = [None] * len(self.parts)  # per part, each chunk's softmax

        def attend(i, part):
            self.weights[i] = self._forward_part(q[part], k[part], v[part], y[part])
        _run_parts(self.parts, attend)

    def _forward_part(self, q, k, v, y):
        """Fill y with the attention of q, k, v; return each chunk's weights."""
        xp, weights = self.xp, []
        for r0, r1 in self._chunks(q.shape[-2]):
            scores = q[..., r0:r1, :] @ k[..., :r1, :].swapaxes(-1, -2)  # (..., n, r1)
            scores *= self.scale
            # the last n keys face these n queries: mask above the diagonal. -inf is safe
            # here: the diagonal is never masked, so no row is all -inf (no 0/0)
            n = r1 - r0
            scores[..., r0:] += xp.triu(xp.full((n, n), -xp.inf, dtype=q.dtype), k=1)
            weights.append(backend.blockwise(partial(_softmax, axis=-1), scores, row_length=r1))
            y[..., r0:r1, :] = weights[-1] @ v[..., :r1, :]
        return weights

    def backward_arrays(self, gy):  # d attention: gv = w^T g, gw = g v^T, gs = d softmax(gw)
        q, k, v = (x.data for x in self.inputs)
        xp = self.xp
        gq, gk, gv = xp.empty_like(q), xp.zeros_like(k), xp.zeros_like(v)
        self._attend_backward(q, k, v, gy, gq, gk, gv)
        return gq, gk, gv

    def _attend_backward(self, q, k, v, gy, gq, gk, gv):
        """Fill gq and add into gk, gv (zeros) the gradients, given gy, the output's."""
        def backward_part(i, p):
            self._backward_part(q[p], k[p], v[p], gy[p], self.weights[i], gq[p], gk[p], gv[p])
        _run_parts(self.parts, backward_part)

    def _backward_part(self, q, k, v, gy, weights, gq, gk, gv):
        for (r0, r1), w in zip(self._chunks(q.shape[-2]), weights):
            g = gy[..., r0:r1, :]                                       # (..., n, hs)
            gv[..., :r1, :] += w.swapaxes(-1, -2) @ g
            gw = g @ v[..., :r1, :].swapaxes(-1, -2)                    # (..., n, r1)
            gs = backend.blockwise(partial(_softmax_grad, axis=-1), w, gw, row_length=r1)
            gs *= self.scale                                            # d scores, scaled
            gq[..., r0:r1, :] = gs @ k[..., :r1, :]
            gk[..., :r1, :] += gs.swapaxes(-1, -2) @ q[..., r0:r1, :]

    def composite(self, q, k, v):
        T = q.shape[-2]
        scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.swapaxes(-1, -2)  # (..., T, T)
        future = self.xp.triu(self.xp.ones((T, T), dtype=bool), k=1)
        return softmax(scores, axis=-1, mask=future) @ v


class PackedCausalAttention(CausalAttention):
    """Causal self-attention of the heads packed as one Linear makes them: qkv (..., T, 3C)
    holds q, k, v side by side, each C = n_head * hs channels with head h at channels
    h*hs:(h+1)*hs; the output (..., T, C) holds the heads' outputs side by side the same way.

    The same values and gradients as splitting qkv, moving the heads to a batch axis,
    CausalAttention, and moving them back (`composite`), in one op: one copy of qkv with
    the heads moved, and the three gradients written into one array like qkv (no split,
    no concatenation of three gradients, no graph of reshapes and transposes).
    """

    def __init__(self, n_head, chunk=64):
        super().__init__(chunk)
        self.n_head = n_head

    def _heads(self, packed, parts):
        """Views (..., nh, T, hs) of the `parts` blocks of C channels of packed (..., T, parts*C)."""
        *lead, T, width = packed.shape
        hs = width // (parts * self.n_head)
        split = packed.reshape(*lead, T, parts, self.n_head, hs)
        L = len(lead)  # axes: lead..., T, part, head, hs -> part, lead..., head, T, hs
        return split.transpose(L + 1, *range(L), L + 2, L, L + 3)

    def forward(self, qkv):
        # one copy puts each head's rows side by side: the many small products then read
        # contiguous matrices (1.3x faster than reading the strided views at T = 64)
        self.heads = self.xp.ascontiguousarray(self._heads(qkv, 3))   # (3, ..., nh, T, hs)
        q, k, v = self.heads
        y = self.xp.empty_like(q)                                     # (..., nh, T, hs)
        self._attend(q, k, v, y)
        out = self.xp.empty(qkv.shape[:-1] + (qkv.shape[-1] // 3,), dtype=qkv.dtype)
        self._heads(out, 1)[0][...] = y                               # (..., T, C)
        return out

    def backward_arrays(self, gy):  # as CausalAttention's, then back into the packed layout
        q, k, v = self.heads
        grads = self.xp.empty_like(self.heads)                        # (3, ..., nh, T, hs)
        gq, gk, gv = grads
        gk[...], gv[...] = 0, 0
        gy_heads = self.xp.ascontiguousarray(self._heads(gy, 1)[0])   # (..., nh, T, hs)
        self._attend_backward(q, k, v, gy_heads, gq, gk, gv)
        g_qkv = self.xp.empty_like(self.inputs[0].data)               # (..., T, 3C)
        self._heads(g_qkv, 3)[...] = grads
        return g_qkv

    def composite(self, qkv):
        *lead, T, width = qkv.shape
        nh, C = self.n_head, width // 3
        q, k, v = (t.reshape(*lead, T, nh, C // nh).swapaxes(-2, -3)  # (..., nh, T, hs)
                   for t in split(qkv, C, axis=-1))
        y = super().composite(q, k, v)                                # (..., nh, T, hs)
        return y.swapaxes(-2, -3).reshape(*lead, T, C)


class LogSoftmax(Function):
    needs_inputs, needs_output = False, True

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        shifted = x - x.max(axis=self.axis, keepdims=True)
        log_sum = self.xp.log(self.xp.exp(shifted).sum(axis=self.axis, keepdims=True))
        shifted -= log_sum  # x - logsumexp(x)
        return shifted

    def backward(self, gy):  # d log_softmax: g - softmax(x) * sum(g)
        return gy - self.output.exp() * gy.sum(axis=self.axis, keepdims=True)


class CrossEntropy(FusedFunction):
    """Mean of -log softmax(logits)[target] over the targets that are not ignore_index.

    With label_smoothing eps (PyTorch's definition) the target is the distribution
    q = (1 - eps) * onehot(target) + eps / classes, and each row's loss is
    -sum(q * log softmax(logits)) = (1 - eps) * nll + eps * mean over classes of -log p.
    """

    def __init__(self, ignore_index, label_smoothing=0.0):
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, logits, targets):
        xp = self.xp
        classes = logits.shape[-1]
        flat = logits.reshape(-1, classes)
        self.rows = xp.arange(flat.shape[0])
        self.valid = (targets.reshape(-1) != self.ignore_index)
        self.picked = xp.where(self.valid, targets.reshape(-1), 0)
        self.count = int(self.valid.sum())
        shifted = flat - flat.max(axis=1, keepdims=True)
        probs = xp.exp(shifted)
        total = probs.sum(axis=1, keepdims=True)
        probs /= total
        self.probs = probs  # softmax, reused by backward
        log_total = xp.log(total[:, 0])
        row_loss = log_total - shifted[self.rows, self.picked]  # -log p[target]
        if self.label_smoothing:
            eps = self.label_smoothing
            mean_nll = log_total - shifted.mean(axis=1)          # mean over classes of -log p
            row_loss = (1.0 - eps) * row_loss + eps * mean_nll
        loss = (row_loss * self.valid).sum() / self.count if self.count else xp.nan
        return xp.asarray(loss, dtype=logits.dtype)

    def backward_arrays(self, gy):  # d cross_entropy: (softmax(x) - q) / count, q smoothed onehot
        g = self.probs.copy()
        eps = self.label_smoothing
        if eps:
            g -= eps / g.shape[1]
        g[self.rows, self.picked] -= 1.0 - eps
        g *= (self.valid * (gy / max(self.count, 1)))[:, None].astype(g.dtype)
        return g.reshape(self.inputs[0].shape), None

    def composite(self, logits, targets):
        classes = logits.shape[-1]
        log_p = log_softmax(logits.reshape(-1, classes), axis=-1)
        row_loss = -getitem(log_p, (self.rows, self.picked))
        if self.label_smoothing:
            eps = self.label_smoothing
            row_loss = (1.0 - eps) * row_loss - eps * log_p.mean(axis=-1)
        # every target ignored: the loss is NaN but its gradient is 0, as backward_arrays gives
        return (row_loss * as_tensor(self.valid.astype(logits.dtype))).sum() / max(self.count, 1)


class LayerNorm(FusedFunction):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis.

    Runs a cache-sized block of rows at a time (backend.blockwise): each row is
    normalized on its own, and the chain of passes then stays in cache.
    """

    def __init__(self, eps):
        self.eps = eps

    def forward(self, x, weight, bias):
        normalize = partial(_layer_norm, weight=weight, bias=bias, eps=self.eps)
        y, self.xhat, self.rstd = backend.blockwise(normalize, x, row_length=x.shape[-1])
        return y  # xhat (the normalized x) and rstd = 1 / std are kept for backward

    def backward_arrays(self, gy):  # d layer_norm: dx below; dweight = sum gy xhat, dbias = sum gy
        xhat, weight = self.xhat, self.inputs[1].data
        gx = backend.blockwise(partial(_layer_norm_grad, weight=weight),
                               xhat, self.rstd, gy, row_length=gy.shape[-1])
        xhat_rows, gy_rows = xhat.reshape(-1, xhat.shape[-1]), gy.reshape(-1, gy.shape[-1])
        gweight = self.xp.einsum("nc,nc->c", gy_rows, xhat_rows)  # sum of gy * xhat, no temporary
        gbias = self.xp.ones(gy_rows.shape[0], dtype=gy.dtype) @ gy_rows  # BLAS sums rows fastest
        return gx, gweight, gbias

    def composite(self, x, weight, bias):
        centered = x - x.mean(axis=-1, keepdims=True)
        variance = (centered * centered).mean(axis=-1, keepdims=True)
        return centered / (variance + self.eps).sqrt() * weight + bias


def _row_mean(x):
    """x.mean(axis=-1, keepdims=True) as a matrix-vector product: BLAS sums short rows
    about 4x faster than a reduction along the last axis."""
    xp = backend.get_array_module(x)
    total = x @ xp.ones(x.shape[-1], dtype=x.dtype)  # sum, then divide: one rounding, not C
    total /= x.shape[-1]
    return total[..., None]


def _layer_norm(x, weight, bias, eps):
    """(y, xhat, rstd) for rows x: xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps)."""
    xp = backend.get_array_module(x)
    xhat = x - _row_mean(x)
    variance = xp.einsum("...c,...c->...", xhat, xhat)[..., None]
    if x.dtype == xp.float32 and not bool(xp.isfinite(variance).all()) \
            and bool(xp.isfinite(x).all()):  # squares past 3e38: this block again in float64
        y, xhat, rstd = _layer_norm(x.astype(xp.float64), weight, bias, eps)
        return y.astype(x.dtype), xhat.astype(x.dtype), rstd.astype(x.dtype)
    variance /= x.shape[-1]
    variance += eps
    rstd = xp.sqrt(variance, out=variance)
    xp.divide(1.0, rstd, out=rstd)
    xhat *= rstd
    y = xhat * weight
    y += bias
    return y, xhat, rstd


def _layer_norm_grad(xhat, rstd, gy, weight):
    """dx = rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)), gxhat = gy * weight."""
    xp = backend.get_array_module(xhat)
    gxhat = gy * weight
    projection = xp.einsum("...c,...c->...", gxhat, xhat)[..., None]
    projection /= xhat.shape[-1]
    gx = gxhat - _row_mean(gxhat)
    gx -= xhat * projection
    gx *= rstd
    return gx


class Dropout(Function):
    needs_inputs = False

    def __init__(self, p, generator):
        self.p, self.generator = p, generator

    def forward(self, x):
        keep = self.generator.random(x.shape, x.dtype) >= self.p
        self.mask = keep.astype(x.dtype) * (1.0 / (1.0 - self.p))  # scaled so E[y] = x
        return x * self.mask

    def backward(self, gy):  # d dropout: the same mask
        return gy * as_tensor(self.mask)


@torch_names
def softmax(x, axis=-1, mask=None):
    """Softmax over `axis`; `mask` (bool, broadcastable, True = excluded) leaves places out."""
    x = as_tensor(x)
    if mask is not None:
        mask = as_tensor(mask).data
        if mask.dtype != bool:
            raise TypeError(f"softmax mask must be boolean, got dtype {mask.dtype}")
        try:
            if backend.numpy.broadcast_shapes(mask.shape, x.shape) != x.shape:
                raise ValueError
        except ValueError:
            raise ValueError(f"softmax: a mask of shape {mask.shape} does not broadcast to x of "
                             f"shape {x.shape}") from None
    if x.dtype == backend.numpy.float16:
        return in_float32(partial(softmax, axis=axis, mask=mask), x)
    special = _zero_d_or_empty(softmax, x, axis)
    if special is not None:
        return special
    return Softmax(axis, mask)(x)


def _zero_d_or_empty(fn, x, axis):
    """fn over `axis` of a 0-d tensor (as a 1-element vector) or of an empty one (empty),
    as PyTorch does; None for every other tensor."""
    if not -(x.ndim or 1) <= axis < (x.ndim or 1):
        raise ValueError(f"{fn.__name__}: axis {axis} is out of range for a tensor with "
                         f"{x.ndim} dimensions")
    if x.ndim == 0:
        return fn(x.reshape(1), axis=0).reshape(())
    if x.numel() == 0:
        return x * 0.0
    return None


def in_float32(fn, x, *others):
    """fn run on float32 copies of float16 tensors, its result cast back to float16.

    Sums of squares and of exponentials overflow float16 (its largest value is 65504)
    or lose digits, so statistics are taken in float32; gradients flow through the casts.
    """
    def up(t):
        return astype(t, backend.numpy.float32) if t.dtype == backend.numpy.float16 else t
    return astype(fn(up(x), *(up(as_tensor(o)) for o in others)), backend.numpy.float16)


def packed_causal_attention(qkv, n_head, chunk=64):
    """Causal self-attention of the n_head heads packed in qkv (..., T, 3C), q, k and v
    side by side as one Linear(C, 3C) makes them; returns (..., T, C), the heads side by
    side (see PackedCausalAttention). The same as splitting, causal_attention, merging."""
    qkv = as_tensor(qkv)
    if isinstance(n_head, bool) or not isinstance(n_head, int) or n_head < 1:
        raise ValueError(f"packed_causal_attention: n_head must be a positive int, got {n_head!r}")
    if qkv.ndim < 2 or qkv.shape[-1] % (3 * n_head):
        raise ValueError(f"packed_causal_attention needs qkv of shape (..., T, 3 * C) with C a "
                         f"multiple of n_head={n_head}; got {qkv.shape}")
    if qkv.dtype.kind != "f":
        raise TypeError(f"packed_causal_attention needs a floating qkv, got {qkv.dtype}")
    if chunk < 1:
        raise ValueError(f"packed_causal_attention: chunk must be at least 1, got {chunk}")
    return PackedCausalAttention(n_head, chunk)(qkv)


def causal_attention(q, k, v, chunk=64):
    """Causal self-attention of q, k, v (..., T, head_size): each query sees its own and
    earlier positions. The value and gradients of softmax(q k^T / sqrt(hs), masked) @ v,
    computed without the scores of future keys (see CausalAttention)."""
    q, k, v = as_tensor(q), as_tensor(k), as_tensor(v)
    if q.ndim < 2 or q.shape != k.shape or q.shape[:-1] != v.shape[:-1]:
        raise ValueError(f"causal_attention needs q and k of one shape (..., T, head_size) and "
                         f"v of shape (..., T, any); got q {q.shape}, k {k.shape}, v {v.shape}")
    if len({q.dtype, k.dtype, v.dtype}) > 1 or q.dtype.kind != "f":
        raise TypeError(f"causal_attention needs q, k, v of one floating dtype, got "
                        f"{q.dtype}, {k.dtype}, {v.dtype}")
    if chunk < 1:
        raise ValueError(f"causal_attention: chunk must be at least 1, got {chunk}")
    return CausalAttention(chunk)(q, k, v)


@torch_names
def log_softmax(x, axis=-1):
    x = as_tensor(x)
    if x.dtype == backend.numpy.float16:
        return in_float32(partial(log_softmax, axis=axis), x)
    special = _zero_d_or_empty(log_softmax, x, axis)
    if special is not None:
        return special
    return LogSoftmax(axis)(x)


def cross_entropy(logits, targets, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Mean cross-entropy of logits (..., classes) against integer targets (...).

    Targets equal to ignore_index count for nothing; if all are ignored the loss is NaN.
    reduction 'sum' or 'none' (one loss per target, 0 where ignored) as in torch; float
    targets of logits' shape are class probabilities (torch's soft targets).
    label_smoothing eps in [0, 1] spreads eps of each target's probability evenly over
    all classes, as torch.nn.functional.cross_entropy does (see CrossEntropy); for now only
    with integer targets and reduction 'mean' (other combinations are refused).
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    logits, targets = as_tensor(logits), as_tensor(targets)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', "
                         f"got {reduction!r}")
    if targets.dtype.kind == "f" and targets.shape == logits.shape:
        if label_smoothing:
            raise ValueError("cross_entropy: label_smoothing with probability targets is not "
                             "implemented; smooth the probabilities instead")
        return _soft_cross_entropy(logits, targets, reduction)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy targets must be integer class ids, got dtype {targets.dtype}")
    if logits.ndim == 0:
        raise ValueError("cross_entropy needs logits of shape (..., classes), got a 0-d tensor")
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"cross_entropy: logits of shape {logits.shape} need targets of shape "
                         f"{logits.shape[:-1]}, got {targets.shape}")
    classes = logits.shape[-1]
    used = targets.data[targets.data != ignore_index]
    if used.size and (int(used.min()) < 0 or int(used.max()) >= classes):
        bad = int(used.min()) if int(used.min()) < 0 else int(used.max())
        raise IndexError(f"cross_entropy: target {bad} is out of range for {classes} classes")
    smoothing = float(label_smoothing)
    if reduction != "mean":
        if smoothing:
            raise ValueError("cross_entropy: label_smoothing is implemented for reduction "
                             f"'mean' only, got reduction {reduction!r}")
        return _per_target_cross_entropy(logits, targets, ignore_index, reduction)
    if logits.dtype == backend.numpy.float16:
        return in_float32(lambda x: CrossEntropy(ignore_index, smoothing)(x, targets), logits)
    return CrossEntropy(ignore_index, smoothing)(logits, targets)


def _per_target_cross_entropy(logits, targets, ignore_index, reduction):
    """-log softmax(logits)[target] for each target (0 where ignored), or their sum."""
    valid = targets.data != ignore_index
    picked = as_tensor(logits.xp.where(valid, targets.data, 0)[..., None])
    loss = -log_softmax(logits, axis=-1).gather(-1, picked).squeeze(-1)
    loss = loss * as_tensor(valid.astype(logits.dtype))
    return loss if reduction == "none" else loss.sum()


def _soft_cross_entropy(logits, probabilities, reduction):
    """-sum_c p_c log softmax(logits)_c per row; 'mean' averages over the rows."""
    loss = -(probabilities * log_softmax(logits, axis=-1)).sum(axis=-1)
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()


def layer_norm(x, weight=None, bias=None, eps=1e-5):
    """Normalize over the last axis, then scale by weight and shift by bias (both optional)."""
    x = as_tensor(x)
    if x.ndim == 0:
        raise ValueError("layer_norm needs at least one dimension to normalize over, got a 0-d "
                         "tensor")
    size = x.shape[-1]
    weight = as_tensor(x.xp.ones(size, x.dtype)) if weight is None else weight
    bias = as_tensor(x.xp.zeros(size, x.dtype)) if bias is None else bias
    if weight.shape != (size,) or bias.shape != (size,):
        raise ValueError(f"layer_norm over a last axis of {size} needs weight and bias of shape "
                         f"({size},), got {weight.shape} and {bias.shape}")
    if x.dtype == backend.numpy.float16:
        return in_float32(partial(layer_norm, eps=eps), x, weight, bias)
    if x.numel() == 0:  # nothing to normalize: an empty result, as in PyTorch
        return x * weight + bias
    return LayerNorm(eps)(x, weight, bias)


def dropout(x, p=0.5, training=True, generator=None):
    """Zero each element with probability p and scale the rest by 1/(1-p) (only when training)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return Dropout(p, generator or mg_random.default_generator(x.device))(x)
