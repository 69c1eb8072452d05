"""Indexing and selection: x[key], where, masked_fill, embedding, comparisons."""
import operator

from .. import backend
from ..autograd import Function, as_tensor


def normalize_key(key):
    """Turn Tensors and lists inside an index key into backend arrays."""
    if not isinstance(key, tuple):
        key = (key,)
    parts = []
    for part in key:
        if hasattr(part, "creator"):  # a Tensor
            part = part.data
        elif isinstance(part, list):
            part = backend.numpy.asarray(part)
        if hasattr(part, "dtype") and part.dtype.kind == "u" and part.dtype.itemsize == 8 \
                and part.size and int(part.max()) > 2**63 - 1:
            raise IndexError(f"index {int(part.max())} (uint64) is beyond int64; it would wrap "
                             "around to a negative index")
        parts.append(part)
    return tuple(parts)


def _is_integer_array(part):
    return hasattr(part, "dtype") and part.dtype.kind in "iu"


class GetItem(Function):
    needs_inputs = False

    def __init__(self, key):
        self.key = key

    def forward(self, x):
        self.x_shape, self.x_dtype = x.shape, x.dtype
        self.key = tuple(self.xp.asarray(p) if hasattr(p, "dtype") else p for p in self.key)
        self.returns_view = not any(hasattr(p, "dtype") for p in self.key)  # basic indexing
        return x[self.key]

    def backward(self, gy):  # d x[key]: the gradient goes back to the picked places
        return ScatterAdd(self.key, self.x_shape)(gy)


class ScatterAdd(Function):
    """zeros(shape) with `values` added at `key`; repeated indices add up."""
    needs_inputs = False

    def __init__(self, key, shape):
        self.key, self.shape = key, shape

    def forward(self, values):
        out = self.xp.zeros(self.shape, dtype=values.dtype)
        if any(_is_integer_array(p) for p in self.key):
            backend.scatter_add(out, self.key, values)  # an index may repeat
        else:
            out[self.key] = values  # slices and masks pick each place at most once
        return out

    def backward(self, gy):  # d scatter_add: read the gradient back at the same places
        return GetItem(self.key)(gy)


class Where(Function):
    needs_inputs = False

    def __init__(self, condition):
        self.condition = condition

    def forward(self, x, y):
        return self.xp.where(self.condition, x, y)

    def backward(self, gy):  # d where(c, x, y) = where(c, dx, 0) + where(c, 0, dy)
        x, y = self.inputs
        zero = as_tensor(0.0, like=gy)
        gx = Where(self.condition)(gy, zero) if x.requires_grad else None
        gy_other = Where(self.condition)(zero, gy) if y.requires_grad else None
        return gx, gy_other


def getitem(x, key):
    return GetItem(normalize_key(key))(as_tensor(x))


def where(condition, x, y):
    """Elementwise x where condition is true, else y; x and y may be numbers."""
    condition = as_tensor(condition)
    if condition.dtype != bool:
        raise TypeError(f"where needs a boolean condition, got dtype {condition.dtype}")
    x = as_tensor(x, like=y if hasattr(y, "creator") else None)
    y = as_tensor(y, like=x)
    return Where(condition.data)(x, y)


def masked_fill(x, mask, value):
    """x with `value` wherever mask (broadcastable to x) is true."""
    return where(mask, as_tensor(value, like=x), x)


def embedding(weight, indices):
    """Rows of `weight` (num_embeddings, dim) picked by integer `indices` of any shape."""
    indices = as_tensor(indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding indices must be integers, got dtype {indices.dtype}")
    rows = weight.shape[0]
    if indices.size:
        low, high = int(indices.data.min()), int(indices.data.max())
        if low < 0 or high >= rows:
            bad = low if low < 0 else high
            raise IndexError(f"index {bad} is out of range for an embedding with {rows} rows "
                             f"(valid ids are 0..{rows - 1})")
    return GetItem((indices.data,))(weight)


def _compare(x, y, op):
    """Comparison results are boolean tensors with no gradient."""
    x, y = as_tensor(x, like=y if hasattr(y, "creator") else None), as_tensor(y, like=x)
    return as_tensor(op(x.data, y.data))


def equal(x, y):
    return _compare(x, y, operator.eq)


def not_equal(x, y):
    return _compare(x, y, operator.ne)


def less(x, y):
    return _compare(x, y, operator.lt)


def less_equal(x, y):
    return _compare(x, y, operator.le)


def greater(x, y):
    return _compare(x, y, operator.gt)


def greater_equal(x, y):
    return _compare(x, y, operator.ge)
