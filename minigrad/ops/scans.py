"""Products, running sums and products, and sorting (PyTorch's names; dim= or axis=).

prod and cumprod are built from multiplications arranged as a tree (log2(n) rounds), so
their gradients, of any order, are exact where elements are zero (dividing the product
by each element would not be); sort and topk pick values with gather, whose gradient
goes back to the places picked.
"""
from ..autograd import Function, as_tensor
from .indexing import gather
from .names import torch_names
from .reductions import ValuesIndices, _count, kept_shape, normalize_axes
from .shape import concatenate


def _to_last(x, axes):
    """x with `axes` moved to the end and merged into one: (..kept.., n)."""
    kept = [i for i in range(x.ndim) if i not in axes]
    moved = x.permute(*kept, *axes) if axes else x
    return moved.reshape(*[x.shape[i] for i in kept], _count(x, axes))


@torch_names
def prod(x, axis=None, keepdims=False):
    """Product over axes, as a tree of pairwise products: log2(n) multiplications, and
    gradients (of any order) exact even where elements are zero."""
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim)
    y = _to_last(x, axes)
    while y.shape[-1] > 1:
        if y.shape[-1] % 2:  # an odd one out waits for the next round
            y = _concat_last([y[..., :-1:2] * y[..., 1::2], y[..., -1:]])
        else:
            y = y[..., ::2] * y[..., 1::2]
    if y.shape[-1] == 0:  # the empty product
        y = as_tensor(x.xp.ones(y.shape[:-1] + (1,), x.dtype))
    shape = kept_shape(x.shape, axes) if keepdims else [n for i, n in enumerate(x.shape)
                                                         if i not in axes]
    return y.reshape(tuple(shape))


def _concat_last(pieces):
    return concatenate(pieces, axis=-1)


class Cumsum(Function):
    needs_inputs = False

    def __init__(self, axis, reverse=False):
        self.axis, self.reverse = axis, reverse

    def forward(self, x):
        if self.reverse:  # sums from the end: y[i] = x[i] + x[i+1] + ...
            flipped = self.xp.flip(x, self.axis)
            return self.xp.flip(self.xp.cumsum(flipped, axis=self.axis), self.axis)
        return self.xp.cumsum(x, axis=self.axis)

    def backward(self, gy):  # d cumsum: each x[i] feeds every y[j], j >= i: a reversed cumsum
        return Cumsum(self.axis, not self.reverse)(gy)


def _one_axis(x, axis, op):
    if not isinstance(axis, int) or not -x.ndim <= axis < (x.ndim or 1):
        raise ValueError(f"{op}: dim {axis!r} is out of range for a tensor with {x.ndim} "
                         "dimensions")
    return axis % (x.ndim or 1)


@torch_names
def cumsum(x, axis):
    x = as_tensor(x)
    if x.ndim == 0:
        return x * 1.0
    return Cumsum(_one_axis(x, axis, "cumsum"))(x)


@torch_names
def cumprod(x, axis):
    """Running products, by log2(n) rounds of shifted products (Hillis and Steele's scan):
    gradients exact even where elements are zero."""
    x = as_tensor(x)
    if x.ndim == 0:
        return x * 1.0
    axis = _one_axis(x, axis, "cumprod")
    y = x.swapaxes(axis, -1) if axis != x.ndim - 1 else x
    n, shift = y.shape[-1], 1
    while shift < n:
        ones = as_tensor(x.xp.ones(y.shape[:-1] + (shift,), x.dtype))
        y = y * _concat_last([ones, y[..., :n - shift]])
        shift *= 2
    return y.swapaxes(axis, -1) if axis != x.ndim - 1 else y


@torch_names
def argsort(x, axis=-1, descending=False, stable=False):
    """Indices that sort x along axis (stable order of ties, both directions)."""
    x = as_tensor(x)
    axis = _one_axis(x, axis, "argsort")
    data = -x.data if descending and x.dtype.kind in "fi" else x.data
    order = x.xp.argsort(data, axis=axis, kind="stable")
    if descending and x.dtype.kind not in "fi":
        order = x.xp.flip(x.xp.argsort(data, axis=axis, kind="stable"), axis)
    return as_tensor(order.astype("int64"))


@torch_names
def sort(x, axis=-1, descending=False, stable=False):
    """(values, indices) along axis, as torch.sort; values carry the gradient back."""
    x = as_tensor(x)
    if x.ndim == 0:
        return ValuesIndices(x * 1.0, as_tensor(x.xp.zeros((), "int64")))
    indices = argsort(x, axis, descending)
    return ValuesIndices(gather(x, axis, indices), indices)


@torch_names
def topk(x, k, axis=-1, largest=True, sorted=True):  # noqa: A002 - torch's argument name
    """The k largest (or smallest) values along axis and their indices, as torch.topk."""
    x = as_tensor(x)
    axis = _one_axis(x, axis, "topk")
    if not 0 <= k <= x.shape[axis]:
        raise ValueError(f"topk: k={k} is out of range for dim {axis} of size {x.shape[axis]}")
    order = argsort(x, axis, descending=largest).data
    indices = as_tensor(order.take(x.xp.arange(k), axis=axis))
    return ValuesIndices(gather(x, axis, indices), indices)


__all__ = ["prod", "cumsum", "cumprod", "argsort", "sort", "topk"]
