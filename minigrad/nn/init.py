"""Weight initialization in place, as torch.nn.init: each function fills a tensor under
no_grad from minigrad's generators (minigrad.manual_seed repeats it) and returns it.

fan_in / fan_out of a weight (out_features, in_features, *kernel) are in_features x
kernel size and out_features x kernel size.
"""
import math

from .. import random as mg_random
from ..autograd import no_grad

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "eye_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
           "trunc_normal_"]


def calculate_gain(nonlinearity, param=None):
    """The recommended std scale for a nonlinearity (torch's table)."""
    gains = {"linear": 1.0, "conv1d": 1.0, "conv2d": 1.0, "sigmoid": 1.0, "identity": 1.0,
             "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 3.0 / 4}
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity not in gains:
        raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")
    return gains[nonlinearity]


def _fans(tensor):
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor of at least 2 dimensions, "
                         f"got shape {tensor.shape}")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _generator(tensor, generator):
    return generator or mg_random.default_generator(tensor.device)


@no_grad()
def uniform_(tensor, a=0.0, b=1.0, generator=None):
    values = _generator(tensor, generator).random(tensor.shape, dtype=tensor.dtype)
    return tensor.copy_(values * (b - a) + a)


@no_grad()
def normal_(tensor, mean=0.0, std=1.0, generator=None):
    return tensor.copy_(_generator(tensor, generator).normal(tensor.shape, std, mean,
                                                             dtype=tensor.dtype))


@no_grad()
def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """normal(mean, std) redrawn where it falls outside [a, b]."""
    gen = _generator(tensor, generator)
    values = gen.normal(tensor.shape, std, mean, dtype=tensor.dtype)
    outside = (values < a) | (values > b)
    while outside.any():
        values[outside] = gen.normal((int(outside.sum()),), std, mean, dtype=tensor.dtype)
        outside = (values < a) | (values > b)
    return tensor.copy_(values)


@no_grad()
def constant_(tensor, value):
    return tensor.fill_(value)


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


@no_grad()
def eye_(tensor):
    if tensor.ndim != 2:
        raise ValueError(f"eye_ needs a 2-D tensor, got shape {tensor.shape}")
    return tensor.copy_(tensor.xp.eye(*tensor.shape, dtype=tensor.dtype))


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """U(-a, a), a = gain sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio, 2010)."""
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """N(0, std^2), std = gain sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(tensor, a, mode, nonlinearity):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(tensor)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """U(-b, b), b = sqrt(3) gain / sqrt(fan) (He et al., 2015)."""
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """N(0, std^2), std = gain / sqrt(fan)."""
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)
