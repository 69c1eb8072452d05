"""Reductions over axes (NumPy-style `axis`: None, an int, or a tuple; `keepdims`).

PyTorch's names work too (dim=, keepdim=; see names.py). max and min follow torch:
with a dim (positional or dim=) they return (values, indices); with NumPy's axis= they
return the values only (axis may then be a tuple), as amax/amin do.

This module defines ops named sum, max and min: inside it, those names are the
ops, never Python's builtins.
"""
import builtins
from collections import namedtuple

from ..autograd import Function, as_tensor
from .elementwise import maximum, minimum
from .indexing import gather
from .names import torch_names

# what torch.max(x, dim) returns: a named pair (torch.return_types.max)
ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def normalize_axes(axis, ndim):
    """axis (None, int or tuple, negatives allowed) -> a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else axis
    if not isinstance(axes, (tuple, list)) or not builtins.all(
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


@torch_names
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


@torch_names
def mean(x, axis=None, keepdims=False):
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim)
    count = _count(x, axes)
    return sum(x, axes, keepdims) * (1.0 / count if count else float("nan"))


@torch_names
def var(x, axis=None, keepdims=False, ddof=0, *, correction=None, unbiased=None):
    """Variance. ddof=0 divides by n (NumPy's default); PyTorch's correction= (default 1 in
    torch.var) and unbiased= are the same argument by their torch names."""
    x = as_tensor(x)
    ddof = _ddof(ddof, correction, unbiased)
    axes = normalize_axes(axis, x.ndim)
    centered = x - mean(x, axes, keepdims=True)
    dof = _count(x, axes) - ddof
    return sum(centered * centered, axes, keepdims) * (1.0 / dof if dof > 0 else float("nan"))


def _ddof(ddof, correction, unbiased):
    if correction is not None:
        return correction
    if unbiased is not None:
        return 1 if unbiased else 0
    return ddof


@torch_names
def amax(x, axis=None, keepdims=False):
    """The largest values over axes (an int or a tuple); ties share the gradient."""
    x = as_tensor(x)
    return Max(_nonempty_axes("max", x, axis), keepdims)(x)


@torch_names
def amin(x, axis=None, keepdims=False):
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


@torch_names
def argmax(x, axis=None, keepdims=False):
    """Index of the largest value (over the flattened tensor when axis is None), int64."""
    return _arg_extreme(as_tensor(x), axis, keepdims, "argmax")


@torch_names
def argmin(x, axis=None, keepdims=False):
    return _arg_extreme(as_tensor(x), axis, keepdims, "argmin")


def _arg_extreme(x, axis, keepdims, name):
    pick = getattr(x.xp, name)
    if axis is None:
        index = pick(x.data.reshape(-1))
        return as_tensor(x.xp.asarray(index).reshape((1,) * x.ndim if keepdims else ()))
    (axis,) = normalize_axes(axis, x.ndim)
    return as_tensor(pick(x.data, axis=axis, keepdims=keepdims))


def _max_or_min(x, dim, keepdim, axis, keepdims, smallest):
    x = as_tensor(x)
    if hasattr(dim, "creator"):  # torch.max(x, other): the elementwise maximum
        return (minimum if smallest else maximum)(x, dim)
    if axis is not None or keepdims is not None or not isinstance(dim, int):
        if axis is None:
            axis = dim
        keep = keepdim if keepdims is None else keepdims
        return Max(_nonempty_axes("min" if smallest else "max", x, axis), keep, smallest)(x)
    # torch.max(x, dim): values and indices; the gradient goes to the index picked
    indices = _arg_extreme(x, dim, True, "argmin" if smallest else "argmax")
    values = gather(x, dim, indices)
    if not keepdim:
        values, indices = values.squeeze(dim), indices.squeeze(dim)
    return ValuesIndices(values, indices)


def max(x, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001 - ops namespace
    """The largest element (no dim); max(x, dim) -> (values, indices) as torch.max;
    max(x, axis=...) -> values only, as numpy.max; max(x, other_tensor) -> maximum."""
    return _max_or_min(x, dim, keepdim, axis, keepdims, smallest=False)


def min(x, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001 - ops namespace
    """The smallest element; see max for the ways to call it."""
    return _max_or_min(x, dim, keepdim, axis, keepdims, smallest=True)


# --- more reductions and scans (PyTorch's names) ------------------------------------------

@torch_names
def std(x, axis=None, keepdims=False, ddof=0, *, correction=None, unbiased=None):
    """sqrt(var): ddof=0 divides by n as NumPy does (torch.std's default is correction=1)."""
    return var(x, axis, keepdims, ddof, correction=correction, unbiased=unbiased) ** 0.5


@torch_names
def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) over axes, shifted by the maximum so exp never overflows."""
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim)
    shift = x.xp.max(x.data, axis=axes, keepdims=True) if x.numel() else x.xp.zeros(())
    shift = x.xp.where(x.xp.isfinite(shift), shift, 0).astype(x.dtype)  # all -inf: no shift
    total = sum((x - as_tensor(shift)).exp(), axes, keepdims=True).log() + as_tensor(shift)
    return total if keepdims else total.reshape(tuple(n for i, n in enumerate(x.shape)
                                                      if i not in axes))


@torch_names
def any(x, axis=None, keepdims=False):  # noqa: A001 - ops namespace
    """True where some element is non-zero (a boolean tensor, no gradient)."""
    x = as_tensor(x)
    return as_tensor(x.xp.asarray(x.xp.any(x.data, axis=normalize_axes(axis, x.ndim),
                                            keepdims=keepdims)))


@torch_names
def all(x, axis=None, keepdims=False):  # noqa: A001 - ops namespace
    x = as_tensor(x)
    return as_tensor(x.xp.asarray(x.xp.all(x.data, axis=normalize_axes(axis, x.ndim),
                                            keepdims=keepdims)))
