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


# --- more of torch's creation functions ------------------------------------------------

def empty(*size, dtype=None, device=None, requires_grad=False):
    """An uninitialized tensor (its values are whatever memory held)."""
    return _new(lambda xp, s, d: xp.empty(s, d), size, dtype, device, requires_grad)


def empty_like(x, dtype=None, requires_grad=False):
    return empty(x.shape, dtype=dtype or x.dtype, device=x.device, requires_grad=requires_grad)


def full_like(x, value, dtype=None, requires_grad=False):
    return full(x.shape, value, dtype=dtype or x.dtype, device=x.device,
                requires_grad=requires_grad)


def randn_like(x, dtype=None, requires_grad=False, generator=None):
    return randn(x.shape, dtype=dtype or x.dtype, device=x.device, requires_grad=requires_grad,
                 generator=generator)


def rand_like(x, dtype=None, requires_grad=False, generator=None):
    return rand(x.shape, dtype=dtype or x.dtype, device=x.device, requires_grad=requires_grad,
                generator=generator)


def randint_like(x, low, high=None, generator=None):
    if high is None:
        low, high = 0, low
    return randint(low, high, x.shape, device=x.device, generator=generator)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    """The n x m identity matrix (m defaults to n)."""
    m = n if m is None else m
    return _new(lambda xp, s, d: xp.eye(n, m, dtype=d), (), dtype, device, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """`steps` evenly spaced values from start to end, both included."""
    if steps < 0:
        raise ValueError(f"linspace: steps must be non-negative, got {steps}")
    return _new(lambda xp, s, d: xp.linspace(start, end, steps, dtype=d), (), dtype, device,
                requires_grad)


def logspace(start, end, steps, base=10.0, dtype=None, device=None, requires_grad=False):
    """base ** linspace(start, end, steps)."""
    return _new(lambda xp, s, d: xp.logspace(start, end, steps, base=base, dtype=d), (), dtype,
                device, requires_grad)


def randperm(n, device=None, generator=None):
    """A random permutation of 0..n-1 (int64), for shuffling a dataset."""
    device = backend.normalize_device(device)
    generator = generator or mg_random.default_generator(device)
    keys = generator.random((n,), dtype="float64")
    return Tensor(backend.get_array_module(keys).argsort(keys).astype("int64"))


def from_numpy(array):
    """A tensor sharing the NumPy array's memory and dtype (torch.from_numpy)."""
    if not isinstance(array, backend.numpy.ndarray):
        raise TypeError(f"from_numpy needs a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def multinomial(probs, num_samples, replacement=False, generator=None):
    """Draw category indices from the (unnormalized, non-negative) weights in the last axis
    of probs (1-D or 2-D), as torch.multinomial; int64 of shape (..., num_samples)."""
    weights = backend.to_numpy(probs.data if isinstance(probs, Tensor)
                               else backend.numpy.asarray(probs))
    if (weights.ndim not in (1, 2) or (weights < 0).any()
            or not backend.numpy.isfinite(weights).all()):
        raise ValueError("multinomial needs finite, non-negative weights of 1 or 2 dimensions, "
                         f"got shape {weights.shape}")
    rows = weights.reshape(-1, weights.shape[-1]).astype(backend.numpy.float64)
    if (rows.sum(axis=1) <= 0).any():
        raise ValueError("multinomial: a row of weights sums to zero")
    if not replacement and num_samples > (rows > 0).sum(axis=1).min():
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement "
                         f"from {int((rows > 0).sum(axis=1).min())} non-zero weights")
    generator = generator or mg_random.default_generator("cpu")
    picks = []
    for row in rows:
        p = row / row.sum()
        if replacement:  # inverse CDF of uniform draws
            u = generator.random((num_samples,), dtype="float64")
            picks.append(backend.numpy.searchsorted(backend.numpy.cumsum(p), u, side="right")
                         .clip(0, len(p) - 1))
        else:  # Gumbel top-k: the k largest log p + Gumbel noise are a draw without replacement
            u = generator.random(p.shape, dtype="float64")
            with backend.numpy.errstate(divide="ignore"):
                keys = backend.numpy.log(p) - backend.numpy.log(-backend.numpy.log1p(-u))
            picks.append(backend.numpy.argsort(-keys, kind="stable")[:num_samples])
    out = backend.numpy.stack(picks).astype(backend.numpy.int64)
    out = out.reshape(weights.shape[:-1] + (num_samples,))
    device = probs.device if isinstance(probs, Tensor) else "cpu"
    return Tensor(backend.to_device(out, device))


__all__ = ["float16", "float32", "float64", "int32", "int64", "bool_", "tensor",
           "zeros", "ones", "full", "zeros_like", "ones_like", "arange", "randn", "rand", "randint",
           "empty", "empty_like", "full_like", "randn_like", "rand_like", "randint_like", "eye",
           "linspace", "logspace", "from_numpy", "multinomial", "randperm"]
