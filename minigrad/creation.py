"""Functions that make new tensors: zeros, ones, full, arange, and random ones."""
from . import backend
from . import random as mg_random
from .tensor import Tensor, tensor

float16, float32, float64 = backend.numpy.float16, backend.numpy.float32, backend.numpy.float64
int32, int64, bool_ = backend.numpy.int32, backend.numpy.int64, backend.numpy.bool_


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def _new(make, size, dtype, device, requires_grad):
    xp = backend.array_module_for(device)
    return Tensor(make(xp, _shape(size), dtype or float32), requires_grad=requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _new(lambda xp, s, d: xp.zeros(s, d), size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _new(lambda xp, s, d: xp.ones(s, d), size, dtype, device, requires_grad)


def full(size, value, dtype=None, device=None, requires_grad=False):
    return _new(lambda xp, s, d: xp.full(s, value, d), (size,), dtype, device, requires_grad)


def zeros_like(x, dtype=None, requires_grad=False):
    return zeros(x.shape, dtype=dtype or x.dtype, device=x.device, requires_grad=requires_grad)


def ones_like(x, dtype=None, requires_grad=False):
    return ones(x.shape, dtype=dtype or x.dtype, device=x.device, requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None, device=None):
    """Like numpy.arange; int64 for integer arguments, float32 otherwise."""
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError(f"arange: step must not be zero (start {start}, stop {stop})")
    if dtype is None:
        integral = all(isinstance(v, int) for v in (start, stop, step))
        dtype = int64 if integral else float32
    xp = backend.array_module_for(device)
    return Tensor(xp.arange(start, stop, step, dtype=dtype))


def randn(*size, dtype=None, device=None, requires_grad=False, generator=None):
    """Standard normal samples from the (seedable) default or given generator."""
    device = backend.normalize_device(device)
    generator = generator or mg_random.default_generator(device)
    data = generator.normal(_shape(size), dtype=dtype or float32)
    return Tensor(data, requires_grad=requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False, generator=None):
    """Uniform samples in [0, 1)."""
    device = backend.normalize_device(device)
    generator = generator or mg_random.default_generator(device)
    return Tensor(generator.random(_shape(size), dtype=dtype or float32), requires_grad=requires_grad)


def randint(low, high, size, device=None, generator=None):
    device = backend.normalize_device(device)
    generator = generator or mg_random.default_generator(device)
    return Tensor(generator.integers(low, high, tuple(size)))


__all__ = ["float16", "float32", "float64", "int32", "int64", "bool_", "tensor",
           "zeros", "ones", "full", "zeros_like", "ones_like", "arange", "randn", "rand", "randint"]
