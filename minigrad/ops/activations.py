"""Activation functions by PyTorch's names (torch.nn.functional).

Most are composites of other ops and need no backward of their own; the ones with
a Function (softplus) are those whose composite would lose accuracy or overflow.
GELU, ReLU, sigmoid and tanh live in elementwise.py; softmax in nn.py.
"""
from ..autograd import Function, as_tensor
from .elementwise import abs, clip, expm1, sigmoid, tanh  # noqa: A004
from .indexing import where
from .names import torch_names
from .nn import softmax


class Softplus(Function):
    """log(1 + exp(beta x)) / beta, linear where beta x > threshold (as torch)."""

    def __init__(self, beta, threshold):
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        xp, z = self.xp, x * self.beta
        # log(1 + e^z) = max(z, 0) + log1p(e^-|z|): no overflow
        smooth = (xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))) / self.beta
        return xp.where(z > self.threshold, x, smooth)

    def backward(self, gy):  # d softplus = sigmoid(beta x) dx (1 past the threshold)
        x = self.inputs[0]
        z = x * self.beta
        return gy * where(z > self.threshold, 1.0, sigmoid(z))


def _negative_part(x):
    """min(x, 0): the branch of elu-like ops for x <= 0, safe to exponentiate."""
    return clip(x, high=0.0)


def silu(x):
    """x * sigmoid(x) (also called swish)."""
    x = as_tensor(x)
    return x * sigmoid(x)


def softplus(x, beta=1.0, threshold=20.0):
    return Softplus(beta, threshold)(as_tensor(x))


def elu(x, alpha=1.0):
    """x for x > 0, alpha (e^x - 1) otherwise."""
    x = as_tensor(x)
    return where(x > 0, x, alpha * expm1(_negative_part(x)))


def selu(x):
    """scale * elu(x, alpha) with the self-normalizing constants of Klambauer et al."""
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    return scale * elu(x, alpha)


def celu(x, alpha=1.0):
    """x for x > 0, alpha (e^(x / alpha) - 1) otherwise."""
    x = as_tensor(x)
    return where(x > 0, x, alpha * expm1(_negative_part(x) * (1.0 / alpha)))


def leaky_relu(x, negative_slope=0.01):
    x = as_tensor(x)
    return where(x > 0, x, x * negative_slope)


def hardtanh(x, min_val=-1.0, max_val=1.0):
    return clip(x, min_val, max_val)


def relu6(x):
    return clip(x, 0.0, 6.0)


def hardsigmoid(x):
    """clip(x / 6 + 1/2, 0, 1)."""
    return clip(as_tensor(x) * (1.0 / 6.0) + 0.5, 0.0, 1.0)


def hardswish(x):
    x = as_tensor(x)
    return x * hardsigmoid(x)


def mish(x):
    """x * tanh(softplus(x))."""
    x = as_tensor(x)
    return x * tanh(softplus(x))


def softsign(x):
    """x / (1 + |x|)."""
    x = as_tensor(x)
    return x / (1.0 + abs(x))


def logsigmoid(x):
    """log(sigmoid(x)) = -softplus(-x), without overflow."""
    return -softplus(-as_tensor(x))


def tanhshrink(x):
    x = as_tensor(x)
    return x - tanh(x)


@torch_names
def softmin(x, axis=-1):
    """softmax(-x)."""
    return softmax(-as_tensor(x), axis)


__all__ = ["silu", "softplus", "elu", "selu", "celu", "leaky_relu", "hardtanh", "relu6",
           "hardsigmoid", "hardswish", "mish", "softsign", "logsigmoid", "tanhshrink",
           "softmin"]
