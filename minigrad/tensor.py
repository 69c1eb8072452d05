"""Tensor: an array (NumPy or CuPy), its gradient, and a link to the op that made it.

The methods here are thin: each one calls the op in `minigrad.ops` where its
forward and backward live.
"""
import numbers

from . import autograd, backend
from . import random as mg_random
from .ops import arithmetic, conversion, elementwise, indexing, nn, reductions, shape
from .ops import layout, scans
from .ops.names import torch_names


class Tensor:
    """A multi-dimensional array that can record the ops applied to it."""

    __slots__ = ("_data", "grad", "requires_grad", "creator", "output_index", "name",
                 "_version_cell", "_hooks", "_retains_grad", "__weakref__")
    __array_ufunc__ = None  # NumPy arrays defer to our reflected operators (ndarray * Tensor)
    __hash__ = object.__hash__  # == builds a tensor, so hash by identity

    def __init__(self, data, requires_grad=False):
        if isinstance(data, backend.numpy.generic):  # what NumPy returns for 0-d results
            data = backend.numpy.asarray(data)
        elif not backend.is_array(data):
            data = tensor(data).data
        self._data = data
        self.grad = None
        self.creator = None  # the Function that made this tensor; None for a leaf
        self.output_index = 0
        self.name = None
        self._version_cell = [0]  # bumped by in-place edits; shared with detach()
        self._hooks = None
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # --- the array and what it is ---------------------------------------------------

    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, array):  # replacing the values is an in-place edit
        self._data = array if backend.is_array(array) else tensor(array).data
        self._version_cell[0] += 1

    @property
    def _version(self):
        return self._version_cell[0]

    shape = property(lambda self: self._data.shape)
    ndim = property(lambda self: self._data.ndim)
    dtype = property(lambda self: self._data.dtype)
    device = property(lambda self: backend.device_of(self._data))
    xp = property(lambda self: backend.get_array_module(self._data), doc="numpy or cupy")
    is_leaf = property(lambda self: self.creator is None)
    grad_fn = property(lambda self: self.creator, doc="the Function that made this tensor "
                       "(None for a leaf), torch's name for creator")
    is_cuda = property(lambda self: self.device == "cuda")
    mT = property(lambda self: shape.swapaxes(self, -1, -2), doc="the last two axes swapped")

    def dim(self):
        return self._data.ndim

    ndimension = dim

    @property
    def T(self):
        return shape.permute(self)

    def size(self, dim=None):
        """The shape, as PyTorch's size() gives it (size(d): one axis); numel() counts elements."""
        return self.shape if dim is None else self.shape[dim]

    def numel(self):
        return self._data.size

    def numpy(self):
        """A NumPy copy of the values (copied to the host from a GPU)."""
        return backend.to_numpy(self._data)

    def __array__(self, dtype=None, copy=None):
        array = backend.to_numpy(self._data)
        return array if dtype is None else array.astype(dtype)

    def item(self):
        if self._data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self._data.item()

    def tolist(self):
        return self.numpy().tolist()

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        if self._data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                             "use .any() style reductions or compare a single element")
        return bool(self._data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __repr__(self):
        body = backend.numpy.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extras = []
        if self.dtype not in (backend.numpy.float32, backend.numpy.int64, backend.numpy.bool_):
            extras.append(f"dtype={self.dtype}")
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.creator is not None:
            extras.append(f"grad_fn=<{self.creator.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    # --- autograd -------------------------------------------------------------------

    def requires_grad_(self, flag=True):
        if flag and self.dtype.kind == "c":
            raise TypeError(f"a {self.dtype} tensor cannot require gradients: minigrad "
                            "differentiates real floating-point tensors only")
        if flag and self.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    def backward(self, grad=None, retain_graph=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's .grad.

        grad: the gradient of some scalar with respect to self (needed unless self
        has one element). retain_graph keeps the graph for another backward (it
        defaults to create_graph); create_graph records the backward pass so that
        the gradients can be differentiated again.
        """
        seed = autograd._seed_gradient(self, grad)
        if retain_graph is None:
            retain_graph = create_graph
        autograd.run_backward([self], [seed], retain_graph, create_graph)

    def detach(self):
        """The same values, cut off from the graph (shares memory and the version counter)."""
        out = Tensor(self._data)
        out._version_cell = self._version_cell
        return out

    def zero_grad(self):
        self.grad = None

    def retain_grad(self):
        """Keep .grad on this intermediate (non-leaf) tensor after backward."""
        if self.creator is not None:
            self._retains_grad = True
        return self

    def register_hook(self, hook):
        """Call hook(grad) when this tensor's gradient is computed; a returned tensor replaces it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook on a tensor that does not require grad")
        self._set_hooks((self._hooks or []) + [hook])
        return _HookHandle(self, hook)

    def _set_hooks(self, hooks):
        self._hooks = hooks
        if self.creator is not None:  # ops hold their outputs weakly: the op keeps the hooks,
            self.creator.output_hooks = {**getattr(self.creator, "output_hooks", {}),
                                         self.output_index: hooks}  # so they fire if self is gone

    def _run_hooks(self, grad):
        return run_hooks(self._hooks, grad)

    def _accumulate_grad(self, grad, keep_graph):
        if self.grad is not None and self.grad.shape != self.shape:
            raise ValueError(f"cannot accumulate into .grad of shape {self.grad.shape}: it was "
                             f"set by hand for a tensor of shape {self.shape}")
        if grad.dtype != self.dtype:
            grad = conversion.astype(grad, self.dtype)
        if keep_graph or (self.grad is not None and self.grad.creator is not None):
            self.grad = grad if self.grad is None else self.grad + grad
        elif self.grad is None:
            # a private copy: the same gradient array may also be handed to other tensors
            self.grad = Tensor(self.xp.array(grad.data, copy=True))
        else:
            self.grad.data += grad.data  # accumulate in place, into our own array

    # --- in-place edits (no graph is recorded; backward refuses stale values) --------

    def _check_inplace(self):
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError(
                "in-place change of a tensor that requires grad: minigrad does not record "
                "in-place ops. Write x = x + y instead, or make the change under no_grad().")

    def _inplace(self, update):
        self._check_inplace()
        update(self._data)
        self._version_cell[0] += 1
        return self

    def add_(self, other, alpha=1):
        return self._inplace(lambda a: a.__iadd__(_raw(other) if alpha == 1 else
                                                  _raw(other) * alpha))

    def sub_(self, other, alpha=1):
        return self._inplace(lambda a: a.__isub__(_raw(other) if alpha == 1 else
                                                  _raw(other) * alpha))

    def mul_(self, other):
        return self._inplace(lambda a: a.__imul__(_raw(other)))

    def div_(self, other):
        return self._inplace(lambda a: a.__itruediv__(_raw(other)))

    def fill_(self, value):
        return self._inplace(lambda a: a.fill(value))

    def zero_(self):
        return self.fill_(0)

    def copy_(self, source):
        return self._inplace(lambda a: a.__setitem__(Ellipsis, _raw(source)))

    def clamp_(self, min=None, max=None):  # noqa: A002 - torch's argument names
        return self._inplace(lambda a: self.xp.clip(a, min, max, out=a))

    clip_ = clamp_

    def neg_(self):
        return self._inplace(lambda a: self.xp.negative(a, out=a))

    def masked_fill_(self, mask, value):
        return self._inplace(lambda a: a.__setitem__(self.xp.broadcast_to(_raw(mask), a.shape),
                                                     value))

    def normal_(self, mean=0.0, std=1.0, generator=None):
        """Fill with normal samples (from minigrad's seedable generators)."""
        source = generator or mg_random.default_generator(self.device)
        return self._inplace(lambda a: a.__setitem__(Ellipsis, source.normal(a.shape, std, mean,
                                                                             dtype=a.dtype)))

    def uniform_(self, a=0.0, b=1.0, generator=None):
        source = generator or mg_random.default_generator(self.device)
        return self._inplace(lambda x: x.__setitem__(
            Ellipsis, source.random(x.shape, dtype=x.dtype) * (b - a) + a))

    __iadd__, __isub__, __imul__, __itruediv__ = add_, sub_, mul_, div_

    def __setitem__(self, key, value):
        self._inplace(lambda a: a.__setitem__(indexing.normalize_key(key), _raw(value)))

    # --- operators --------------------------------------------------------------------

    def __add__(self, other):
        return arithmetic.add(self, other)

    def __radd__(self, other):
        return arithmetic.add(other, self)

    def __sub__(self, other):
        return arithmetic.sub(self, other)

    def __rsub__(self, other):
        return arithmetic.sub(other, self)

    def __mul__(self, other):
        return arithmetic.mul(self, other)

    def __rmul__(self, other):
        return arithmetic.mul(other, self)

    def __truediv__(self, other):
        return arithmetic.div(self, other)

    def __rtruediv__(self, other):
        return arithmetic.div(other, self)

    def __pow__(self, other):
        return arithmetic.pow(self, other)

    def __rpow__(self, other):
        return arithmetic.pow(as_tensor(other, like=self), self)

    def __neg__(self):
        return arithmetic.neg(self)

    def __matmul__(self, other):
        return arithmetic.matmul(self, other)

    def __rmatmul__(self, other):
        return arithmetic.matmul(other, self)

    def __getitem__(self, key):
        return indexing.getitem(self, key)

    def __eq__(self, other):
        return indexing.equal(self, other)

    def __ne__(self, other):
        return indexing.not_equal(self, other)

    def __lt__(self, other):
        return indexing.less(self, other)

    def __le__(self, other):
        return indexing.less_equal(self, other)

    def __gt__(self, other):
        return indexing.greater(self, other)

    def __ge__(self, other):
        return indexing.greater_equal(self, other)

    # --- ops as methods -----------------------------------------------------------------

    def exp(self):
        return elementwise.exp(self)

    def log(self):
        return elementwise.log(self)

    def sqrt(self):
        return elementwise.sqrt(self)

    def tanh(self):
        return elementwise.tanh(self)

    def sigmoid(self):
        return elementwise.sigmoid(self)

    def relu(self):
        return elementwise.relu(self)

    def gelu(self, approximate="tanh"):
        return elementwise.gelu(self, approximate)

    def abs(self):
        return elementwise.abs(self)

    def clip(self, low=None, high=None):
        return elementwise.clip(self, low, high)

    @torch_names
    def sum(self, axis=None, keepdims=False):
        return reductions.sum(self, axis, keepdims)

    @torch_names
    def mean(self, axis=None, keepdims=False):
        return reductions.mean(self, axis, keepdims)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """x.max(): the largest element; x.max(dim) -> (values, indices) as in torch;
        x.max(axis=...) -> values only, as in NumPy; x.max(other) -> maximum."""
        return reductions.max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return reductions.min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    @torch_names
    def var(self, axis=None, keepdims=False, ddof=0, **torch_style):
        return reductions.var(self, axis, keepdims, ddof, **torch_style)

    def sum_to(self, target_shape):
        return reductions.sum_to(self, target_shape)

    def reshape(self, *new_shape):
        return shape.reshape(self, *new_shape)

    def view(self, *new_shape):
        """reshape (torch's view; here a copy when NumPy cannot make a view, never an error)."""
        return shape.reshape(self, *new_shape)

    def view_as(self, other):
        return shape.reshape(self, other.shape)

    reshape_as = view_as

    def expand_as(self, other):
        return shape.broadcast_to(self, other.shape)

    def new_zeros(self, *size):
        return Tensor(self.xp.zeros(_sizes(size), self.dtype))

    def new_ones(self, *size):
        return Tensor(self.xp.ones(_sizes(size), self.dtype))

    def new_full(self, size, value):
        return Tensor(self.xp.full(tuple(size), value, self.dtype))

    def new_tensor(self, data):
        return tensor(data, dtype=self.dtype, device=self.device)

    def clamp(self, min=None, max=None):  # noqa: A002 - torch's argument names
        return elementwise.clip(self, min, max)

    def flatten(self, start_dim=0, end_dim=-1):
        return layout.flatten(self, start_dim, end_dim)

    def permute(self, *axes):
        return shape.permute(self, *axes)

    def transpose(self, dim0, dim1):
        """Swap two axes (PyTorch's meaning; NumPy's reordering is permute, reversal is .T)."""
        return shape.transpose(self, dim0, dim1)

    def swapaxes(self, a, b):
        return shape.swapaxes(self, a, b)

    def broadcast_to(self, target_shape):
        return shape.broadcast_to(self, target_shape)

    def expand(self, *sizes):
        return shape.expand(self, *sizes)

    @torch_names
    def squeeze(self, axis=None):
        return shape.squeeze(self, axis)

    @torch_names
    def unsqueeze(self, axis):
        return shape.unsqueeze(self, axis)

    @torch_names
    def softmax(self, axis=-1):
        return nn.softmax(self, axis)

    @torch_names
    def log_softmax(self, axis=-1):
        return nn.log_softmax(self, axis)

    def masked_fill(self, mask, value):
        return indexing.masked_fill(self, mask, value)

    def astype(self, dtype):
        return conversion.astype(self, dtype)

    def float(self):
        return conversion.astype(self, backend.numpy.float32)

    def double(self):
        return conversion.astype(self, backend.numpy.float64)

    def to(self, *args, device=None, dtype=None):
        """Move to 'cpu' / 'cuda' and/or cast: to('cuda'), to(float64), to('cpu', float16),
        to(dtype=...), to(other_tensor) (other's device and dtype)."""
        for arg in args:
            if isinstance(arg, Tensor):
                device, dtype = arg.device, arg.dtype
            elif isinstance(arg, str) and arg.split(":")[0] in ("cpu", "cuda"):
                device = arg
            elif arg is not None:
                dtype = _dtype_or_error(arg)
        out = self if device is None else conversion.to_device(self, device)
        return out if dtype is None else conversion.astype(out, dtype)

    def half(self):
        return conversion.astype(self, backend.numpy.float16)

    def long(self):
        return conversion.astype(self, backend.numpy.int64)

    def int(self):
        return conversion.astype(self, backend.numpy.int32)

    def bool(self):
        return conversion.astype(self, backend.numpy.bool_)

    def type_as(self, other):
        return conversion.astype(self, other.dtype)

    def type(self, dtype=None):
        """The dtype's name with no argument, else a cast (torch's Tensor.type)."""
        return str(self.dtype) if dtype is None else conversion.astype(self, dtype)

    def cpu(self):
        return conversion.to_device(self, "cpu")

    def cuda(self):
        return conversion.to_device(self, "cuda")


    # --- PyTorch's elementwise methods and operators (minigrad.ops.elementwise) ---------

    def __floordiv__(self, other):
        return elementwise.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return elementwise.floor_divide(other, self)

    def __mod__(self, other):
        return elementwise.remainder(self, other)

    def __rmod__(self, other):
        return elementwise.remainder(other, self)

    def __and__(self, other):
        return elementwise.bitwise_and(self, other)

    __rand__ = __and__

    def __or__(self, other):
        return elementwise.bitwise_or(self, other)

    __ror__ = __or__

    def __xor__(self, other):
        return elementwise.bitwise_xor(self, other)

    __rxor__ = __xor__

    def __invert__(self):
        return elementwise.bitwise_not(self)

    def __abs__(self):
        return elementwise.abs(self)

    def maximum(self, other):
        return elementwise.maximum(self, other)

    def minimum(self, other):
        return elementwise.minimum(self, other)

    def sin(self):
        return elementwise.sin(self)

    def cos(self):
        return elementwise.cos(self)

    def tan(self):
        return elementwise.tan(self)

    def asin(self):
        return elementwise.asin(self)

    def acos(self):
        return elementwise.acos(self)

    def atan(self):
        return elementwise.atan(self)

    def sinh(self):
        return elementwise.sinh(self)

    def cosh(self):
        return elementwise.cosh(self)

    def asinh(self):
        return elementwise.asinh(self)

    def acosh(self):
        return elementwise.acosh(self)

    def atanh(self):
        return elementwise.atanh(self)

    def exp2(self):
        return elementwise.exp2(self)

    def log2(self):
        return elementwise.log2(self)

    def log10(self):
        return elementwise.log10(self)

    def log1p(self):
        return elementwise.log1p(self)

    def expm1(self):
        return elementwise.expm1(self)

    def rsqrt(self):
        return elementwise.rsqrt(self)

    def square(self):
        return elementwise.square(self)

    def sign(self):
        return elementwise.sign(self)

    def floor(self):
        return elementwise.floor(self)

    def ceil(self):
        return elementwise.ceil(self)

    def round(self):
        return elementwise.round(self)

    def trunc(self):
        return elementwise.trunc(self)

    def remainder(self, other):
        return elementwise.remainder(self, other)

    def floor_divide(self, other):
        return elementwise.floor_divide(self, other)

    def div(self, other, rounding_mode=None):
        return arithmetic.div(self, other, rounding_mode=rounding_mode)

    def lerp(self, end, weight):
        return elementwise.lerp(self, end, weight)

    def logaddexp(self, other):
        return elementwise.logaddexp(self, other)

    def isnan(self):
        return elementwise.isnan(self)

    def isinf(self):
        return elementwise.isinf(self)

    def isfinite(self):
        return elementwise.isfinite(self)

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return elementwise.isclose(self, other, rtol, atol, equal_nan)

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return elementwise.allclose(self, other, rtol, atol, equal_nan)

    def logical_and(self, other):
        return elementwise.logical_and(self, other)

    def logical_or(self, other):
        return elementwise.logical_or(self, other)

    def logical_xor(self, other):
        return elementwise.logical_xor(self, other)

    def logical_not(self):
        return elementwise.logical_not(self)

    # --- PyTorch's reductions (minigrad.ops.reductions) ----------------------------------

    @torch_names
    def amax(self, axis=None, keepdims=False):
        return reductions.amax(self, axis, keepdims)

    @torch_names
    def amin(self, axis=None, keepdims=False):
        return reductions.amin(self, axis, keepdims)

    @torch_names
    def argmax(self, axis=None, keepdims=False):
        return reductions.argmax(self, axis, keepdims)

    @torch_names
    def argmin(self, axis=None, keepdims=False):
        return reductions.argmin(self, axis, keepdims)

    # --- PyTorch's indexing (minigrad.ops.indexing) ---------------------------------------

    def gather(self, dim, index):
        return indexing.gather(self, dim, index)

    def scatter(self, dim, index, src):
        return indexing.scatter(self, dim, index, src)

    def scatter_add(self, dim, index, src):
        return indexing.scatter_add(self, dim, index, src)

    def scatter_reduce(self, dim, index, src, reduce, include_self=True):
        return indexing.scatter_reduce(self, dim, index, src, reduce, include_self)

    def index_select(self, dim, index):
        return indexing.index_select(self, dim, index)

    def masked_select(self, mask):
        return indexing.masked_select(self, mask)

    def nonzero(self, as_tuple=False):
        return indexing.nonzero(self, as_tuple)

    # --- more reductions, scans and sorting -----------------------------------------------

    @torch_names
    def std(self, axis=None, keepdims=False, ddof=0, **torch_style):
        return reductions.std(self, axis, keepdims, ddof, **torch_style)

    @torch_names
    def logsumexp(self, axis=None, keepdims=False):
        return reductions.logsumexp(self, axis, keepdims)

    @torch_names
    def any(self, axis=None, keepdims=False):
        return reductions.any(self, axis, keepdims)

    @torch_names
    def all(self, axis=None, keepdims=False):
        return reductions.all(self, axis, keepdims)

    @torch_names
    def prod(self, axis=None, keepdims=False):
        return scans.prod(self, axis, keepdims)

    @torch_names
    def cumsum(self, axis):
        return scans.cumsum(self, axis)

    @torch_names
    def cumprod(self, axis):
        return scans.cumprod(self, axis)

    @torch_names
    def sort(self, axis=-1, descending=False, stable=False):
        return scans.sort(self, axis, descending, stable)

    @torch_names
    def argsort(self, axis=-1, descending=False, stable=False):
        return scans.argsort(self, axis, descending, stable)

    @torch_names
    def topk(self, k, axis=-1, largest=True, sorted=True):  # noqa: A002 - torch's name
        return scans.topk(self, k, axis, largest, sorted)

    # --- torch's layout ops ----------------------------------------------------------------

    def flip(self, *dims):
        return layout.flip(self, dims[0] if len(dims) == 1 else dims)

    def roll(self, shifts, dims=None):
        return layout.roll(self, shifts, dims)

    def repeat(self, *sizes):
        return layout.repeat(self, *sizes)

    def tile(self, reps):
        return layout.tile(self, reps)

    def repeat_interleave(self, repeats, dim=None):
        return layout.repeat_interleave(self, repeats, dim)

    def tril(self, diagonal=0):
        return layout.tril(self, diagonal)

    def triu(self, diagonal=0):
        return layout.triu(self, diagonal)

    def diagonal(self, offset=0, dim1=0, dim2=1):
        return layout.diagonal(self, offset, dim1, dim2)

    def diag(self, diagonal=0):
        return layout.diag(self, diagonal)

    def unflatten(self, dim, sizes):
        return layout.unflatten(self, dim, sizes)

    def movedim(self, source, destination):
        return layout.movedim(self, source, destination)

    def clone(self):
        return layout.clone(self)

    def contiguous(self):
        return layout.contiguous(self)

    def chunk(self, chunks, dim=0):
        return shape.chunk(self, chunks, dim)

    def split(self, split_size_or_sections, dim=0):
        return shape.split(self, split_size_or_sections, dim)


def run_hooks(hooks, grad):
    """Call each hook(grad) in turn; a returned tensor replaces the gradient."""
    for hook in hooks or ():
        replaced = hook(grad)
        if replaced is not None:
            replaced = as_tensor(replaced, like=grad)
            if replaced.shape != grad.shape:
                raise ValueError(f"a hook returned a gradient of shape {replaced.shape} "
                                 f"for a tensor of shape {grad.shape}")
            grad = replaced
    return grad


def _dtype_or_error(value):
    """A NumPy dtype for `value`, or a ValueError saying it is neither a device nor a dtype."""
    try:
        return backend.numpy.dtype(value)
    except TypeError:
        raise ValueError(f"unknown device or dtype {value!r}: expected 'cpu', 'cuda', 'cuda:N' "
                         "or a NumPy dtype") from None


class _HookHandle:
    def __init__(self, tensor, hook):
        self.tensor, self.hook = tensor, hook

    def remove(self):
        self.tensor._set_hooks([h for h in self.tensor._hooks or () if h is not self.hook])


def _raw(value):
    return value.data if isinstance(value, Tensor) else value


def _sizes(size):
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size


# --- making tensors ---------------------------------------------------------------------

def tensor(data, dtype=None, requires_grad=False, device=None):
    """A new tensor (always a copy) from a number, nested list, array or tensor.

    Python floats become float32 and ints int64 unless `dtype` says otherwise;
    arrays keep their dtype. `device` is 'cpu' or 'cuda' (default: the default device).
    """
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, backend.numpy.generic):  # a NumPy scalar keeps its dtype, like an array
        data = backend.numpy.asarray(data)
    target = backend.normalize_device(device)
    if backend.is_array(data):
        _check_numeric(data, data)
        array = backend.to_device(data, target)
        array = array.astype(dtype) if dtype is not None else array.copy()
    else:
        host = backend.numpy.asarray(data, dtype=dtype)
        _check_numeric(data, host)
        if dtype is None and host.dtype == backend.numpy.float64:
            host = host.astype(backend.numpy.float32)  # Python floats -> float32 by default
        array = backend.to_device(host, target)
    return Tensor(array, requires_grad=requires_grad)


def _check_numeric(data, array):
    """TypeError (or OverflowError for a too-large integer) unless `array` holds numbers or bools."""
    if array.dtype.kind in "biufc":
        return
    if array.dtype.kind == "O":
        flat = array.ravel().tolist() if array.ndim else [array.item()]
        for value in flat:
            if isinstance(value, int) and not -2**63 <= value < 2**63:
                raise OverflowError(f"tensor(): the integer {value} does not fit in int64")
    shown = f"{type(data).__name__} {data!r:.60}" if data is not None else "None"
    raise TypeError(f"tensor() accepts only numeric and bool data, got {shown} "
                    f"(dtype {array.dtype})")


def as_tensor(value, like=None):
    """Wrap without copying when possible. A Python number next to a tensor (`like`)
    takes that tensor's dtype and device, so 2 * x stays float32 for float32 x."""
    if isinstance(value, Tensor):
        return value
    if backend.is_array(value):
        return Tensor(value)
    if like is not None and isinstance(value, numbers.Number):
        dtype = like.dtype
        if isinstance(value, float) and dtype.kind not in "fc":
            dtype = backend.numpy.float32
        return Tensor(like.xp.asarray(value, dtype=dtype))
    return tensor(value)


__all__ = ["Tensor", "tensor", "as_tensor"]
