"""Elementwise math: each output element depends on one input element, so each
backward is the incoming gradient times the derivative at that point."""
import math

from .. import backend
from . import special
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
        return special.erf(x)

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
            y, self.s = backend.blockwise(_gelu_tanh, x)  # s is kept for backward
            return y
        self.cdf = 0.5 * (1.0 + special.erf(x * (1.0 / math.sqrt(2.0))))
        return x * self.cdf

    def backward_arrays(self, gy):
        x = self.inputs[0].data
        if self.approximate == "tanh":
            return backend.blockwise(_gelu_tanh_grad, x, self.s, gy)
        # d/dx: Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
        pdf = self.xp.exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))
        return gy * (self.cdf + x * pdf)

    def composite(self, x):
        if self.approximate == "tanh":
            return 0.5 * x * (1.0 + (_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x ** 3)).tanh())
        return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))


def _gelu_tanh(x):
    """(y, s): y = x s, s = sigmoid(2u), u = x (c1 + c2 x^2); the same as 0.5 x (1 + tanh u),
    as 0.5 (1 + tanh u) = 1 / (1 + exp(-2u)), and NumPy's exp is 1.6x faster than its tanh."""
    xp = backend.get_array_module(x)
    s = xp.multiply(x, x, out=xp.empty_like(x))  # an array even for 0-d x, for the out= below
    s *= -2.0 * _GELU_C2
    s -= 2.0 * _SQRT_2_OVER_PI
    s *= x                                    # -2u
    with backend.numpy.errstate(over="ignore"):  # exp(-2u) = inf far left: s = 1 / inf = 0
        xp.exp(s, out=s)
    s += 1.0
    xp.reciprocal(s, out=s)                   # sigmoid(2u)
    return x * s, s


def _gelu_tanh_grad(x, s, gy):
    """gy * d gelu/dx = gy * (s + x s (1 - s) 2 (c1 + 3 c2 x^2)), s = sigmoid(2u)."""
    # beyond |x| = 10, s is 0 or 1 to the last bit and s (1 - s) is 0: clipping x there
    # keeps x^3 finite (it overflows past ~1e12 in float32), so the product is 0, not 0 * inf
    x = backend.get_array_module(x).clip(x, -_GELU_SATURATED, _GELU_SATURATED)
    du = x * x
    du *= 6.0 * _GELU_C2
    du += 2.0 * _SQRT_2_OVER_PI
    du *= x                                   # x du/dx, times 2
    g = 1.0 - s
    g *= s
    g *= du
    g += s
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


# --- more elementwise math (PyTorch's names) -------------------------------------------
# A primitive has its own Function; an op that is a composite of others (tan, exp2, log10,
# rsqrt, lerp, logaddexp, ...) is defined as that composite and needs no backward.

class Maximum(Function):
    def forward(self, x, y):
        return self.xp.maximum(x, y)

    def backward(self, gy):  # d max(x, y) = [x > y] dx + [y > x] dy, ties split in half
        x, y = self.inputs[0].data, self.inputs[1].data
        share = ((x > y) + 0.5 * (x == y)).astype(gy.dtype)
        return gy * as_tensor(share), gy * as_tensor(1.0 - share)


class Sin(Function):
    def forward(self, x):
        return self.xp.sin(x)

    def backward(self, gy):  # d sin(x) = cos(x) dx
        return gy * cos(self.inputs[0])


class Cos(Function):
    def forward(self, x):
        return self.xp.cos(x)

    def backward(self, gy):  # d cos(x) = -sin(x) dx
        return -gy * sin(self.inputs[0])


class Arcsin(Function):
    def forward(self, x):
        return self.xp.arcsin(x)

    def backward(self, gy):  # d asin(x) = dx / sqrt(1 - x^2)
        x = self.inputs[0]
        return gy * (1.0 - x * x) ** -0.5


class Arctan(Function):
    def forward(self, x):
        return self.xp.arctan(x)

    def backward(self, gy):  # d atan(x) = dx / (1 + x^2)
        x = self.inputs[0]
        return gy / (1.0 + x * x)


class Sinh(Function):
    def forward(self, x):
        return self.xp.sinh(x)

    def backward(self, gy):  # d sinh(x) = cosh(x) dx
        return gy * cosh(self.inputs[0])


class Cosh(Function):
    def forward(self, x):
        return self.xp.cosh(x)

    def backward(self, gy):  # d cosh(x) = sinh(x) dx
        return gy * sinh(self.inputs[0])


class Arcsinh(Function):
    def forward(self, x):
        return self.xp.arcsinh(x)

    def backward(self, gy):  # d asinh(x) = dx / sqrt(x^2 + 1)
        x = self.inputs[0]
        return gy * (x * x + 1.0) ** -0.5


class Arccosh(Function):
    def forward(self, x):
        return self.xp.arccosh(x)

    def backward(self, gy):  # d acosh(x) = dx / sqrt(x^2 - 1)
        x = self.inputs[0]
        return gy * (x * x - 1.0) ** -0.5


class Arctanh(Function):
    def forward(self, x):
        return self.xp.arctanh(x)

    def backward(self, gy):  # d atanh(x) = dx / (1 - x^2)
        x = self.inputs[0]
        return gy / (1.0 - x * x)


class Log1p(Function):
    def forward(self, x):
        return self.xp.log1p(x)

    def backward(self, gy):  # d log(1 + x) = dx / (1 + x)
        return gy / (1.0 + self.inputs[0])


class Expm1(Function):
    needs_inputs, needs_output = False, True

    def forward(self, x):
        return self.xp.expm1(x)

    def backward(self, gy):  # d (e^x - 1) = e^x dx
        return gy * (self.output + 1.0)


class Rounding(Function):
    """floor, ceil, round (half to even), trunc, sign: steps, so the gradient is zero
    (as in PyTorch) everywhere it exists."""
    needs_inputs = False

    def __init__(self, how):
        self.how = how

    @property
    def name(self):
        return self.how.capitalize()

    def forward(self, x):
        return getattr(self.xp, self.how)(x)

    def backward(self, gy):  # d floor(x) = 0
        return gy * 0.0


def _unary(function, x):
    return function(as_tensor(x))


def maximum(x, y):
    """Elementwise larger of x and y (broadcasting); at ties each gets half the gradient."""
    x, y = as_tensor(x, like=y if hasattr(y, "creator") else None), as_tensor(y, like=x)
    return Maximum()(x, y)


def minimum(x, y):
    return -maximum(-as_tensor(x, like=y if hasattr(y, "creator") else None), -as_tensor(y, like=x))


def sin(x):
    return _unary(Sin(), x)


def cos(x):
    return _unary(Cos(), x)


def tan(x):
    return sin(x) / cos(x)


def asin(x):
    return _unary(Arcsin(), x)


def acos(x):
    return math.pi / 2 - asin(x)


def atan(x):
    return _unary(Arctan(), x)


def sinh(x):
    return _unary(Sinh(), x)


def cosh(x):
    return _unary(Cosh(), x)


def asinh(x):
    return _unary(Arcsinh(), x)


def acosh(x):
    return _unary(Arccosh(), x)


def atanh(x):
    return _unary(Arctanh(), x)


arcsin, arccos, arctan = asin, acos, atan  # NumPy's names
arcsinh, arccosh, arctanh = asinh, acosh, atanh


def exp2(x):
    return exp(as_tensor(x) * math.log(2.0))


def log2(x):
    return log(x) * (1.0 / math.log(2.0))


def log10(x):
    return log(x) * (1.0 / math.log(10.0))


def log1p(x):
    return _unary(Log1p(), x)


def expm1(x):
    return _unary(Expm1(), x)


def rsqrt(x):
    return as_tensor(x) ** -0.5


def square(x):
    return as_tensor(x) * as_tensor(x)


def sign(x):
    return _unary(Rounding("sign"), x)


def floor(x):
    return _unary(Rounding("floor"), x)


def ceil(x):
    return _unary(Rounding("ceil"), x)


def round(x):  # noqa: A001 - ops namespace
    """Round to the nearest integer, halves to even (as torch.round and numpy.round)."""
    return _unary(Rounding("round"), x)


def trunc(x):
    return _unary(Rounding("trunc"), x)


class FloorDivide(Function):
    needs_inputs = False

    def forward(self, x, y):
        return self.xp.floor_divide(x, y)

    def backward(self, gy):  # a step in x and y: zero gradient
        return gy * 0.0, gy * 0.0


def _pair(x, y):
    return as_tensor(x, like=y if hasattr(y, "creator") else None), as_tensor(y, like=x)


def floor_divide(x, y):
    """floor(x / y) (Python's //, torch.floor_divide): rounds toward minus infinity."""
    return FloorDivide()(*_pair(x, y))


def remainder(x, y):
    """x - floor(x / y) * y (Python's %, torch.remainder): the result has the sign of y."""
    x, y = _pair(x, y)
    return x - floor_divide(x, y) * y


def fmod(x, y):
    """x - trunc(x / y) * y (C's fmod, torch.fmod): the result has the sign of x."""
    x, y = _pair(x, y)
    return x - trunc(x / y) * y


def lerp(start, end, weight):
    """start + weight * (end - start)."""
    start, end = _pair(start, end)
    return start + as_tensor(weight, like=start) * (end - start)


def logaddexp(x, y):
    """log(exp(x) + exp(y)) without overflow: max(x, y) + log1p(exp(-|x - y|))."""
    x, y = _pair(x, y)
    return maximum(x, y) + log1p(exp(-abs(x - y)))


def logaddexp2(x, y):
    """log2(2^x + 2^y)."""
    x, y = _pair(x, y)
    return logaddexp(x * math.log(2.0), y * math.log(2.0)) * (1.0 / math.log(2.0))


# --- tests on values and logic: boolean results, no gradient -----------------------------

def _logical(result):
    return as_tensor(result)


def isnan(x):
    x = as_tensor(x)
    return _logical(x.xp.isnan(x.data))


def isinf(x):
    x = as_tensor(x)
    return _logical(x.xp.isinf(x.data))


def isfinite(x):
    x = as_tensor(x)
    return _logical(x.xp.isfinite(x.data))


def isclose(x, y, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|x - y| <= atol + rtol |y| elementwise (torch's and NumPy's defaults)."""
    x, y = _pair(x, y)
    return _logical(x.xp.isclose(x.data, y.data, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(x, y, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(isclose(x, y, rtol, atol, equal_nan).data.all())


def logical_and(x, y):
    x, y = _pair(x, y)
    return _logical(x.xp.logical_and(x.data, y.data))


def logical_or(x, y):
    x, y = _pair(x, y)
    return _logical(x.xp.logical_or(x.data, y.data))


def logical_xor(x, y):
    x, y = _pair(x, y)
    return _logical(x.xp.logical_xor(x.data, y.data))


def logical_not(x):
    x = as_tensor(x)
    return _logical(x.xp.logical_not(x.data))


def _bitwise(name, x, y=None):
    """& | ^ ~ on boolean or integer tensors (as in PyTorch; floats are refused)."""
    operands = (as_tensor(x),) if y is None else _pair(x, y)
    for t in operands:
        if t.dtype.kind not in "biu":
            raise TypeError(f"{name} needs boolean or integer tensors, got dtype {t.dtype}")
    return _logical(getattr(operands[0].xp, name)(*(t.data for t in operands)))


def bitwise_and(x, y):
    return _bitwise("bitwise_and", x, y)


def bitwise_or(x, y):
    return _bitwise("bitwise_or", x, y)


def bitwise_xor(x, y):
    return _bitwise("bitwise_xor", x, y)


def bitwise_not(x):
    return _bitwise("invert", x)
