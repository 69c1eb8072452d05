"""Ops that move elements around without changing them: reshape, transpose,
broadcast, concatenate, split. Each backward moves the gradient back."""
from ..autograd import Function, as_tensor
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


class Transpose(Function):
    needs_inputs, returns_view = False, True

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):  # d transpose: transpose back with the inverse permutation
        inverse = sorted(range(len(self.axes)), key=self.axes.__getitem__)
        return gy.transpose(inverse)


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


def transpose(x, *axes):
    """Permute axes (all of them reversed when none are given), like numpy.transpose."""
    x = as_tensor(x)
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    if not axes:
        axes = tuple(reversed(range(x.ndim)))
    elif all(-x.ndim <= a < x.ndim for a in axes):  # out of range: not wrapped, fails below
        axes = tuple(a % x.ndim for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"transpose axes {axes} are not a permutation of {x.ndim} dimensions")
    return Transpose(axes)(x)


def swapaxes(x, a, b):
    x = as_tensor(x)
    a, b = _axis(a, x.ndim, "swapaxes"), _axis(b, x.ndim, "swapaxes")
    axes = list(range(x.ndim))
    axes[a], axes[b] = axes[b], axes[a]
    return Transpose(tuple(axes))(x)


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


def unsqueeze(x, axis):
    """Insert a size-1 axis at position `axis` (negative counts from the end of the result)."""
    x = as_tensor(x)
    axis = _axis(axis, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def concatenate(tensors, axis=0):
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concatenate needs at least one tensor")
    return Concatenate(_axis(axis, tensors[0].ndim, "concatenate"))(*tensors)


def stack(tensors, axis=0):
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    axis = _axis(axis, tensors[0].ndim + 1, "stack")
    return concatenate([unsqueeze(t, axis) for t in tensors], axis=axis)


def split(x, sections, axis=0):
    """Split into `sections` equal parts (an int) or at the given indices (a list)."""
    x = as_tensor(x)
    axis = _axis(axis, x.ndim, "split")
    if isinstance(sections, int):
        size, extra = divmod(x.shape[axis], sections)
        if extra:
            raise ValueError(f"cannot split an axis of size {x.shape[axis]} into {sections} equal parts")
        indices = [size * i for i in range(1, sections)]
    else:
        indices = list(sections)
    return Split(indices, axis)(x)

