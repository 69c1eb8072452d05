"""Ops that move elements around without changing them: reshape, permute/transpose,
broadcast, concatenate, split. Each backward moves the gradient back.

Names follow PyTorch where it and NumPy disagree: transpose(x, d0, d1) swaps two axes
(permute reorders all of them; Tensor.T reverses them, as in NumPy), split takes chunk
sizes, chunk takes a number of chunks, and tensor_split cuts at indices as numpy.split does."""
from ..autograd import Function, as_tensor
from .names import torch_names
from .reductions import SumTo, sum_to  # noqa: F401 - sum_to lives with the reductions


class Reshape(Function):
    needs_inputs, returns_view = False, True

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):  # d reshape: reshape the gradient back
        return gy.reshape(self.x_shape)


class Permute(Function):
    needs_inputs, returns_view = False, True

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):  # d permute: permute back with the inverse permutation
        inverse = sorted(range(len(self.axes)), key=self.axes.__getitem__)
        return gy.permute(inverse)


class BroadcastTo(Function):
    needs_inputs, returns_view = False, True

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.x_shape = x.shape
        return self.xp.broadcast_to(x, self.shape)

    def backward(self, gy):  # d broadcast: sum the copies (SumTo is its adjoint)
        return SumTo(self.x_shape)(gy)


class Concatenate(Function):
    needs_inputs = False

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return self.xp.concatenate(xs, axis=self.axis)

    def backward(self, gy):  # d concatenate: cut the gradient into the same pieces
        ends = [sum(self.sizes[:i + 1]) for i in range(len(self.sizes) - 1)]
        return Split(ends, self.axis)(gy)


class Split(Function):
    """Cut x along `axis` at the given indices (like numpy.split with a list)."""
    needs_inputs, returns_view = False, True

    def __init__(self, indices, axis):
        self.indices, self.axis = list(indices), axis

    def forward(self, x):
        return tuple(self.xp.split(x, self.indices, axis=self.axis))

    def backward(self, *gys):  # d split: glue the gradients back together
        return Concatenate(self.axis)(*gys)


def _axis(axis, ndim, op):
    """A non-negative axis; negatives count from the end, out of range is an error (not wrapped)."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor with {ndim} dimensions")
    return axis % ndim


def reshape(x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return Reshape(shape)(as_tensor(x))


def permute(x, *axes):
    """Reorder the axes: output axis i is input axis axes[i] (all reversed when none are
    given, like numpy.transpose with no arguments)."""
    x = as_tensor(x)
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    if not axes:
        axes = tuple(reversed(range(x.ndim)))
    elif all(-x.ndim <= a < x.ndim for a in axes):  # out of range: not wrapped, fails below
        axes = tuple(a % x.ndim for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"permute axes {axes} are not a permutation of {x.ndim} dimensions")
    return Permute(axes)(x)


def swapaxes(x, a, b, op="swapaxes"):
    """Exchange axes a and b (NumPy's swapaxes; PyTorch calls it transpose)."""
    x = as_tensor(x)
    a, b = _axis(a, x.ndim, op), _axis(b, x.ndim, op)
    axes = list(range(x.ndim))
    axes[a], axes[b] = axes[b], axes[a]
    return Permute(tuple(axes))(x)


def transpose(x, dim0, dim1):
    """Swap two axes, as torch.transpose does (numpy.transpose's reordering is permute)."""
    return swapaxes(x, dim0, dim1, op="transpose")


def broadcast_to(x, shape):
    x = as_tensor(x)
    shape = tuple(shape)
    return x if x.shape == shape else BroadcastTo(shape)(x)


def expand(x, *sizes):
    """broadcast_to where -1 keeps that dimension's size (PyTorch's expand)."""
    x = as_tensor(x)
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    lead = len(sizes) - x.ndim
    if -1 in sizes[:lead]:
        raise ValueError(f"expand: -1 keeps an existing axis's size, but expand{tuple(sizes)} of "
                         f"shape {x.shape} puts it at new leading axis {sizes.index(-1)}")
    shape = [x.shape[i - lead] if n == -1 else n for i, n in enumerate(sizes)]
    return broadcast_to(x, shape)


@torch_names
def squeeze(x, axis=None):
    """Drop size-1 axes (all of them, or the given ones, which must have size 1)."""
    x = as_tensor(x)
    if axis is None:
        axes = {i for i, n in enumerate(x.shape) if n == 1}
    else:
        axes = {_axis(a, x.ndim, "squeeze") for a in ((axis,) if isinstance(axis, int) else axis)}
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"cannot squeeze axis {a} of shape {x.shape}: its size is not 1")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


@torch_names
def unsqueeze(x, axis):
    """Insert a size-1 axis at position `axis` (negative counts from the end of the result)."""
    x = as_tensor(x)
    axis = _axis(axis, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


@torch_names
def concatenate(tensors, axis=0):
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concatenate needs at least one tensor")
    return Concatenate(_axis(axis, tensors[0].ndim, "concatenate"))(*tensors)


@torch_names
def stack(tensors, axis=0):
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    axis = _axis(axis, tensors[0].ndim + 1, "stack")
    return concatenate([unsqueeze(t, axis) for t in tensors], axis=axis)


def _cuts(sizes):
    """The indices between consecutive pieces of the given sizes: [2, 3, 1] -> [2, 5]."""
    ends, total = [], 0
    for size in sizes[:-1]:
        total += size
        ends.append(total)
    return ends


@torch_names
def split(x, split_size_or_sections, axis=0):
    """PyTorch's split: pieces of `split_size` along `axis` (the last one may be shorter), or
    pieces of the listed sizes, which must add up to the axis's length."""
    x = as_tensor(x)
    axis = _axis(axis, x.ndim, "split")
    length = x.shape[axis]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0:
            raise ValueError(f"split: split_size must be a positive int, got {size}")
        sizes = [min(size, length - start) for start in range(0, length, size)] or [0]
    else:
        sizes = [int(n) for n in split_size_or_sections]
        if sum(sizes) != length or any(n < 0 for n in sizes):
            raise ValueError(f"split: sizes {sizes} must be non-negative and add up to the "
                             f"length {length} of axis {axis}")
    return Split(_cuts(sizes), axis)(x)


@torch_names
def chunk(x, chunks, axis=0):
    """PyTorch's chunk: `chunks` pieces of ceil(length / chunks) each (the last may be shorter,
    and there may be fewer pieces when the axis is short)."""
    x = as_tensor(x)
    if not isinstance(chunks, int) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    length = x.shape[_axis(axis, x.ndim, "chunk")]
    return split(x, max(1, -(-length // chunks)), axis)


@torch_names
def tensor_split(x, indices_or_sections, axis=0):
    """numpy.split's meaning (PyTorch's tensor_split): an int n gives n nearly equal pieces
    (the first length % n one longer), a list gives the indices to cut at."""
    x = as_tensor(x)
    axis = _axis(axis, x.ndim, "tensor_split")
    if isinstance(indices_or_sections, int):
        n = indices_or_sections
        if n <= 0:
            raise ValueError(f"tensor_split: the number of sections must be positive, got {n}")
        base, extra = divmod(x.shape[axis], n)
        return Split(_cuts([base + (i < extra) for i in range(n)]), axis)(x)
    return Split(list(indices_or_sections), axis)(x)

