"""Elementwise math: each output element depends on one input element, so each
backward is the incoming gradient times the derivative at that point."""
import math

from .. import backend
from ..autograd import Function, FusedFunction, as_tensor
from .conversion import astype


class Exp(Function):
    needs_inputs, needs_output = False, True

    def forward(self, x):
        return self.xp.exp(x)

    def backward(self, gy):  # d exp(x) = exp(x) dx
        return gy * self.output


class Log(Function):
    def forward(self, x):
        return self.xp.log(x)

    def backward(self, gy):  # d log(x) = dx / x
        return gy / self.inputs[0]


class Sqrt(Function):
    needs_inputs, needs_output = False, True

    def forward(self, x):
        return self.xp.sqrt(x)

    def backward(self, gy):  # d sqrt(x) = dx / (2 sqrt(x))
        return gy / (2.0 * self.output)


class Tanh(Function):
    needs_inputs, needs_output = False, True

    def forward(self, x):
        return self.xp.tanh(x)

    def backward(self, gy):  # d tanh(x) = (1 - tanh(x)^2) dx
        y = self.output
        return gy * (1.0 - y * y)


class Sigmoid(Function):
    needs_inputs, needs_output = False, True

    def forward(self, x):
        # 1 / (1 + e^-x) written with tanh: no overflow for large |x|
        return 0.5 * (self.xp.tanh(0.5 * x) + 1.0)

    def backward(self, gy):  # d sigmoid(x) = s (1 - s) dx
        s = self.output
        return gy * s * (1.0 - s)


class ReLU(Function):
    def forward(self, x):
        return self.xp.maximum(x, 0)

    def backward(self, gy):  # d relu(x) = [x > 0] dx
        x = self.inputs[0].data
        return gy * as_tensor((x > 0).astype(x.dtype))


class Abs(Function):
    def forward(self, x):
        return self.xp.abs(x)

    def backward(self, gy):  # d |x| = sign(x) dx
        return gy * as_tensor(self.xp.sign(self.inputs[0].data))


class Clip(Function):
    def __init__(self, low, high):
        self.low, self.high = low, high

    def forward(self, x):
        return self.xp.clip(x, self.low, self.high)

    def backward(self, gy):  # d clip(x) = [low <= x <= high] dx
        x = self.inputs[0].data
        inside = self.xp.ones(x.shape, dtype=bool)
        if self.low is not None:
            inside &= x >= self.low
        if self.high is not None:
            inside &= x <= self.high
        return gy * as_tensor(inside.astype(x.dtype))


class Erf(Function):
    def forward(self, x):
        return backend.erf(x)

    def backward(self, gy):  # d erf(x) = 2/sqrt(pi) exp(-x^2) dx
        x = self.inputs[0]
        return gy * (2.0 / math.sqrt(math.pi)) * (-(x * x)).exp()


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715
_GELU_C2 = _SQRT_2_OVER_PI * _GELU_CUBIC  # tanh's argument is x (c1 + c2 x^2), c1 = sqrt(2/pi)
_GELU_SATURATED = 10.0  # tanh(x (c1 + c2 x^2)) is +-1 exactly, even in float64, beyond this


class GELU(FusedFunction):
    """x * Phi(x), Phi the standard normal CDF; approximate='tanh' uses GPT-2's formula
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""

    def __init__(self, approximate="tanh"):
        if approximate not in ("tanh", "none"):
            raise ValueError(f"gelu approximate must be 'tanh' or 'none', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        if self.approximate == "tanh":
            y, self.t = backend.blockwise(_gelu_tanh, x)  # t is kept for backward
            return y
        self.cdf = 0.5 * (1.0 + backend.erf(x * (1.0 / math.sqrt(2.0))))
        return x * self.cdf

    def backward_arrays(self, gy):
        x = self.inputs[0].data
        if self.approximate == "tanh":
            return backend.blockwise(_gelu_tanh_grad, x, self.t, gy)
        # d/dx: Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
        pdf = self.xp.exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))
        return gy * (self.cdf + x * pdf)

    def composite(self, x):
        if self.approximate == "tanh":
            return 0.5 * x * (1.0 + (_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x ** 3)).tanh())
        return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))


def _gelu_tanh(x):
    """(y, t): y = 0.5 x (1 + t), t = tanh(x (c1 + c2 x^2)), with in-place temporaries."""
    t = x * x
    t *= _GELU_C2
    t += _SQRT_2_OVER_PI
    t *= x
    t = backend.get_array_module(x).tanh(t)
    y = t + 1.0
    y *= 0.5  # before x: 2 * x would overflow at float32's largest value
    y *= x
    return y, t


def _gelu_tanh_grad(x, t, gy):
    """gy * d gelu/dx = gy * 0.5 (1 + t + x (1 - t^2) (c1 + 3 c2 x^2))."""
    # beyond |x| = 10, t is +-1 to the last bit and 1 - t^2 is 0: clipping x there keeps
    # x^3 finite (it overflows past ~1e12 in float32), so the product is 0, not 0 * inf = NaN
    x = backend.get_array_module(x).clip(x, -_GELU_SATURATED, _GELU_SATURATED)
    du = x * x
    du *= 3.0 * _GELU_C2
    du += _SQRT_2_OVER_PI
    g = 1.0 - t * t
    g *= du
    g *= x
    g += t
    g += 1.0
    g *= 0.5
    g *= gy
    return g


def exp(x):
    return Exp()(as_tensor(x))


def log(x):
    return Log()(as_tensor(x))


def sqrt(x):
    return Sqrt()(as_tensor(x))


def tanh(x):
    return Tanh()(as_tensor(x))


def sigmoid(x):
    return Sigmoid()(as_tensor(x))


def relu(x):
    return ReLU()(as_tensor(x))


def abs(x):  # noqa: A001 - lives in the ops namespace, not the builtins
    return Abs()(as_tensor(x))


def clip(x, low=None, high=None):
    if low is None and high is None:
        raise ValueError("clip needs at least one of low, high")
    return Clip(low, high)(as_tensor(x))


def erf(x):
    return Erf()(as_tensor(x))


def gelu(x, approximate="tanh"):
    x = as_tensor(x)
    if x.dtype == backend.numpy.float16:  # x^3 overflows float16 past 40: work in float32
        return astype(GELU(approximate)(astype(x, backend.numpy.float32)), backend.numpy.float16)
    return GELU(approximate)(x)
