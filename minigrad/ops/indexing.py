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


def where(condition, x=None, y=None):
    """Elementwise x where condition is true, else y; x and y may be numbers.
    where(condition) alone is nonzero(condition, as_tuple=True), as in torch and NumPy."""
    condition = as_tensor(condition)
    if x is None and y is None:
        return nonzero(condition, as_tuple=True)
    if x is None or y is None:
        raise TypeError("where takes a condition alone, or a condition, x and y")
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


# --- torch's gather and scatter family: picks along one axis -------------------------------
# gather(x, dim, index)[i, j, k] = x[index[i, j, k], j, k] for dim = 0 (and so on for other
# dims). It is getitem with a full integer key (index along dim, positions elsewhere), so
# its gradient is GetItem's scatter-add.

def _along_key(index, dim, xp):
    """The integer key that picks x[..., index[...], ...] along `dim`, index's shape."""
    ndim = index.ndim
    key = []
    for d in range(ndim):
        if d == dim:
            key.append(index)
        else:
            shape = [1] * ndim
            shape[d] = index.shape[d]
            key.append(xp.arange(index.shape[d]).reshape(shape))
    return tuple(key)


def _check_along(x, dim, index, op, src=None):
    """dim made non-negative; index must be integer, of x's rank, fit x off dim, in range."""
    index = as_tensor(index)
    if index.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got dtype {index.dtype}")
    if index.ndim != x.ndim:
        raise ValueError(f"{op}: index has {index.ndim} dimensions, the input {x.ndim}")
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"{op}: dim {dim} is out of range for a tensor with {x.ndim} dimensions")
    dim %= x.ndim
    for d, (n, m) in enumerate(zip(index.shape, x.shape)):
        if d != dim and n > m:
            raise ValueError(f"{op}: index of shape {index.shape} is larger than the input "
                             f"{x.shape} along dim {d}")
    if src is not None and any(n > m for n, m in zip(index.shape, src.shape)):
        raise ValueError(f"{op}: index of shape {index.shape} is larger than src {src.shape}")
    if index.numel():
        low, high = int(index.data.min()), int(index.data.max())
        if low < -x.shape[dim] or high >= x.shape[dim]:
            raise IndexError(f"{op}: index {low if low < 0 else high} is out of range for "
                             f"dim {dim} of size {x.shape[dim]}")
    return dim, index


def gather(x, dim, index):
    """Values of x picked along `dim` by an integer `index` of x's rank (torch.gather)."""
    x = as_tensor(x)
    dim, index = _check_along(x, dim, index, "gather")
    return GetItem(_along_key(index.data, dim, x.xp))(x)


def _src_like(src, index, x):
    """src as a tensor (a number fills index's shape), cut to index's shape."""
    src = as_tensor(src, like=x)
    if src.ndim == 0:
        return src.broadcast_to(index.shape)
    return src[tuple(slice(0, n) for n in index.shape)]


class Scatter(Function):
    """x with src written at the places index picks along dim (torch.scatter)."""
    needs_inputs = False

    def __init__(self, key):
        self.key = key

    def forward(self, x, src):
        out = x.copy()
        out[self.key] = src
        self.hit = self.xp.zeros(x.shape, dtype=bool)
        self.hit[self.key] = True
        return out

    def backward(self, gy):  # d scatter: dx where nothing was written, dsrc read back
        zero = as_tensor(0.0, like=gy)
        return Where(self.hit)(zero, gy), GetItem(self.key)(gy)


def scatter(x, dim, index, src):
    """x with src (a tensor or a number) written at index along dim; out of place."""
    x = as_tensor(x)
    dim, index = _check_along(x, dim, index, "scatter",
                              src if hasattr(src, "creator") else None)
    return Scatter(_along_key(index.data, dim, x.xp))(x, _src_like(src, index, x))


def scatter_add(x, dim, index, src):
    """x plus src added at index along dim; repeated indices add up (torch.scatter_add)."""
    x = as_tensor(x)
    dim, index = _check_along(x, dim, index, "scatter_add", src)
    key = _along_key(index.data, dim, x.xp)
    return x + ScatterAdd(key, x.shape)(_src_like(src, index, x))


class ScatterExtreme(Function):
    """x with the largest (or smallest) of itself and the values sent to each place
    (scatter_reduce 'amax'/'amin'); the gradient is shared equally between ties."""
    needs_inputs = False

    def __init__(self, key, smallest, include_self):
        self.key, self.smallest, self.include_self = key, smallest, include_self

    def forward(self, x, src):
        xp = self.xp
        hit = xp.zeros(x.shape, dtype=bool)
        hit[self.key] = True
        start = x.copy()
        if not self.include_self:  # places that receive values forget x
            start[hit] = xp.inf if self.smallest else -xp.inf
        backend.scatter_extreme(start, self.key, src, self.smallest)
        out = start
        # how many contenders equal each place's result: x itself, then each src value
        self.self_wins = (x == out) & (~hit | self.include_self)
        self.src_wins = src == out[self.key]
        count = self.self_wins.astype(x.dtype)
        backend.scatter_add(count, self.key, self.src_wins.astype(x.dtype))
        self.count = count
        return out

    def backward(self, gy):  # d max: split between the values equal to the result
        share = gy * as_tensor(1.0 / self.xp.maximum(self.count, 1))
        gx = share * as_tensor(self.self_wins.astype(self.count.dtype))
        gsrc = GetItem(self.key)(share) * as_tensor(self.src_wins.astype(self.count.dtype))
        return gx, gsrc


def scatter_reduce(x, dim, index, src, reduce, include_self=True):
    """Combine the src values sent to each place with reduce 'sum', 'mean', 'amax' or 'amin'
    (torch.scatter_reduce); include_self=False leaves x's own value out where values arrive."""
    x = as_tensor(x)
    if reduce not in ("sum", "mean", "amax", "amin"):
        raise ValueError(f"scatter_reduce: reduce must be 'sum', 'mean', 'amax' or 'amin', "
                         f"got {reduce!r}")
    dim, index = _check_along(x, dim, index, "scatter_reduce", src)
    key = _along_key(index.data, dim, x.xp)
    src = _src_like(src, index, x)
    if reduce in ("amax", "amin"):
        return ScatterExtreme(key, reduce == "amin", include_self)(x, src)
    hits = x.xp.zeros(x.shape, dtype=x.dtype)
    backend.scatter_add(hits, key, x.xp.ones(index.shape, x.dtype))
    base = x if include_self else where(as_tensor(hits > 0), 0.0, x)
    total = base + ScatterAdd(key, x.shape)(src)
    if reduce == "sum":
        return total
    count = hits + (1 if include_self else (hits == 0))  # places nothing reaches keep x
    return total / as_tensor(count)


def index_select(x, dim, index):
    """The slices of x at the 1-D integer `index` along dim (torch.index_select)."""
    x, index = as_tensor(x), as_tensor(index)
    if index.ndim != 1 or index.dtype.kind not in "iu":
        raise ValueError(f"index_select: index must be a 1-D integer tensor, got shape "
                         f"{index.shape} and dtype {index.dtype}")
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"index_select: dim {dim} is out of range for {x.ndim} dimensions")
    return getitem(x, (slice(None),) * (dim % x.ndim) + (index.data,))


def masked_select(x, mask):
    """The elements of x where the boolean mask (broadcast to x) is true, as a 1-D tensor."""
    x, mask = as_tensor(x), as_tensor(mask)
    if mask.dtype != bool:
        raise TypeError(f"masked_select needs a boolean mask, got dtype {mask.dtype}")
    shape = backend.numpy.broadcast_shapes(x.shape, mask.shape)
    return getitem(x.broadcast_to(shape), x.xp.broadcast_to(mask.data, shape))


def nonzero(x, as_tuple=False):
    """Indices of the non-zero elements: (count, ndim) int64, or a tuple of 1-D index tensors."""
    x = as_tensor(x)
    found = x.xp.nonzero(x.data)
    if as_tuple:
        return tuple(as_tensor(i.astype("int64")) for i in found)
    return as_tensor(x.xp.stack(found, axis=1).astype("int64") if found else
                     x.xp.zeros((int(x.data != 0), 0), dtype="int64"))
