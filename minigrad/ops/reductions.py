"""Reductions over axes (NumPy-style `axis`: None, an int, or a tuple; `keepdims`).

This module defines ops named sum, max and min: inside it, those names are the
ops, never Python's builtins.
"""
from ..autograd import Function, as_tensor


def normalize_axes(axis, ndim):
    """axis (None, int or tuple, negatives allowed) -> a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else axis
    if not isinstance(axes, (tuple, list)) or not all(
            isinstance(a, int) and not isinstance(a, bool) for a in axes):
        raise TypeError(f"axis must be None, an int or a tuple of ints, got {axis!r} "
                        f"({type(axis).__name__})")
    for a in axes:
        if not -(ndim or 1) <= a < (ndim or 1):  # a 0-d tensor takes axis 0 or -1, as in NumPy
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
    if ndim == 0:
        return ()
    normalized = tuple(sorted(a % ndim for a in axes))
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"axis {axis!r} repeats an axis")
    return normalized


def kept_shape(shape, axes):
    """The shape a reduction over `axes` has with keepdims=True."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    needs_inputs = False

    def __init__(self, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x):
        self.x_shape = x.shape
        return self.xp.sum(x, axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):  # d sum(x): every reduced element gets the same gradient
        if not self.keepdims:
            gy = gy.reshape(kept_shape(self.x_shape, self.axes))
        return gy.broadcast_to(self.x_shape)


class SumTo(Function):
    """Sum a broadcast array back down to `shape`: the adjoint of broadcast_to."""
    needs_inputs = False

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.x_shape = x.shape
        lead = x.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(self.shape) if n == 1 and x.shape[lead + i] != 1)
        y = self.xp.sum(x, axis=axes, keepdims=True) if axes else x
        return y.reshape(self.shape) if lead else y

    def backward(self, gy):  # d sum_to: copy the gradient back out along the summed axes
        return gy.broadcast_to(self.x_shape)


class Max(Function):
    """max (or min) over axes; ties share the gradient equally, as in PyTorch's amax."""

    def __init__(self, axes, keepdims, smallest=False):
        self.axes, self.keepdims, self.smallest = axes, keepdims, smallest

    def forward(self, x):
        reduce = self.xp.min if self.smallest else self.xp.max
        y = reduce(x, axis=self.axes, keepdims=True)
        hits = (x == y).astype(x.dtype)
        self.share = hits / hits.sum(axis=self.axes, keepdims=True)
        return y if self.keepdims else y.reshape([n for i, n in enumerate(y.shape)
                                                  if i not in self.axes])

    def backward(self, gy):  # d max(x) = dx at the arg-max (split between ties)
        x = self.inputs[0]
        if not self.keepdims:
            gy = gy.reshape(kept_shape(x.shape, self.axes))
        return gy * as_tensor(self.share)


def sum(x, axis=None, keepdims=False):  # noqa: A001 - ops namespace
    x = as_tensor(x)
    return Sum(normalize_axes(axis, x.ndim), keepdims)(x)


def sum_to(x, shape):
    shape = tuple(shape)
    return x if x.shape == shape else SumTo(shape)(x)


def _count(x, axes):
    count = 1
    for a in axes:
        count *= x.shape[a]
    return count


def mean(x, axis=None, keepdims=False):
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim)
    count = _count(x, axes)
    return sum(x, axes, keepdims) * (1.0 / count if count else float("nan"))


def var(x, axis=None, keepdims=False, ddof=0):
    """Variance, NumPy-style: ddof=0 divides by n (PyTorch's default is ddof=1)."""
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim)
    centered = x - mean(x, axes, keepdims=True)
    dof = _count(x, axes) - ddof
    return sum(centered * centered, axes, keepdims) * (1.0 / dof if dof > 0 else float("nan"))


def max(x, axis=None, keepdims=False):  # noqa: A001 - ops namespace
    x = as_tensor(x)
    return Max(_nonempty_axes("max", x, axis), keepdims)(x)


def min(x, axis=None, keepdims=False):  # noqa: A001 - ops namespace
    x = as_tensor(x)
    return Max(_nonempty_axes("min", x, axis), keepdims, smallest=True)(x)


def _nonempty_axes(name, x, axis):
    """The normalized axes of a max or min; ValueError if one is empty (no identity)."""
    axes = normalize_axes(axis, x.ndim)
    if x.numel() == 0 and axis is None:
        raise ValueError(f"{name} of an empty tensor (shape {x.shape}): there is no {name}imum")
    for a in axes:
        if x.shape[a] == 0:
            raise ValueError(f"{name} of an empty axis: axis {a} has size 0 in shape {x.shape}")
    return axes
