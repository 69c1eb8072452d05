"""Arithmetic: + - * / ** and matrix multiplication.

Inputs may broadcast against each other; each backward returns gradients in
the output's shape and the engine sums them back to each input's shape.
"""
from .. import backend
from ..autograd import Function, FusedFunction, as_tensor
from .conversion import astype
from .indexing import where


def _pair(x, y, true_division=False):
    """Both operands as Tensors of one result dtype, by PyTorch's promotion rule:
    a Python number takes the other's dtype (a float next to an integer tensor gives
    float32, the default float); a floating tensor's dtype wins over an integer tensor's
    (float32 op int64 stays float32, where NumPy would give float64); two floating or two
    integer dtypes promote as NumPy does; true division of integers gives float32."""
    x, y = as_tensor(x, like=y), as_tensor(y, like=x)
    x_float, y_float = x.dtype.kind in "fc", y.dtype.kind in "fc"
    if x_float and not y_float:
        y = astype(y, x.dtype)
    elif y_float and not x_float:
        x = astype(x, y.dtype)
    elif true_division and not x_float:
        x, y = astype(x, backend.numpy.float32), astype(y, backend.numpy.float32)
    return x, y


class Add(Function):
    needs_inputs = False

    def forward(self, x, y):
        return x + y

    def backward(self, gy):  # d(x + y) = dx + dy
        return gy, gy


class Sub(Function):
    needs_inputs = False

    def forward(self, x, y):
        return x - y

    def backward(self, gy):  # d(x - y) = dx - dy
        return gy, -gy


class Mul(Function):
    def forward(self, x, y):
        return x * y

    def backward(self, gy):  # d(x * y) = y dx + x dy
        x, y = self.inputs  # (x * 0.125: no pass over gy for the constant's gradient)
        return (gy * y if x.requires_grad else None), (gy * x if y.requires_grad else None)


class Div(Function):
    def forward(self, x, y):
        return x / y

    def backward(self, gy):  # d(x / y) = dx / y - x dy / y^2
        x, y = self.inputs
        gx = gy / y if x.requires_grad else None
        return gx, (-gy * x / (y * y) if y.requires_grad else None)


class Neg(Function):
    needs_inputs = False

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class PowConstant(Function):
    """x ** c for a fixed number c."""

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x ** self.c

    def backward(self, gy):  # d x^c = c x^(c-1) dx
        (x,) = self.inputs
        if self.c == 0:  # d x^0 = 0 (c x^(c-1) would be 0 * inf = nan at x = 0)
            return gy * 0.0
        return gy * self.c * x ** (self.c - 1)


class Pow(Function):
    """x ** y for two tensors."""
    needs_output = True

    def forward(self, x, y):
        return x ** y

    def backward(self, gy):  # d x^y = y x^(y-1) dx + x^y log(x) dy
        x, y = self.inputs
        # as PyTorch: at y = 0 the x-gradient is 0 (not 0 * inf); at x = 0 with y >= 0 the
        # y-gradient is 0 (0^y is flat in y there; x^y log x -> 0), not 0 * -inf = NaN
        gx = gy * where(y.data == 0, 0.0, y * x ** (y - 1)) if x.requires_grad else None
        if y.requires_grad:
            base_zero = (x.data == 0) & (y.data >= 0)
            safe_x = where(base_zero, 1.0, x)          # log(1) = 0 where the answer is 0
            gexp = gy * where(base_zero, 0.0, self.output * safe_x.log())
        else:
            gexp = None
        return gx, gexp


class MatMul(Function):
    """a @ b for a, b with at least 2 dims; batch dims broadcast like NumPy's matmul."""

    def forward(self, a, b):
        if b.ndim == 2 and a.ndim > 2:  # (..., k) @ (k, n): one big matmul, not one per batch
            folded = backend.matmul(a.reshape(-1, a.shape[-1]), b)
            return folded.reshape(*a.shape[:-1], b.shape[-1])
        return backend.matmul(a, b) if a.ndim == 2 and b.ndim == 2 else a @ b

    def backward(self, gy):  # d(a @ b) = da @ b + a @ db
        a, b = self.inputs
        ga = gy @ b.swapaxes(-1, -2) if a.requires_grad else None
        gb = None
        if b.requires_grad:
            if b.ndim == 2 and a.ndim > 2:  # sum over the batch inside one matmul
                k, n = b.shape
                gb = a.reshape(-1, k).swapaxes(0, 1) @ gy.reshape(-1, n)
            else:
                gb = a.swapaxes(-1, -2) @ gy
        return ga, gb


class Linear(FusedFunction):
    """x @ W^T + b, with W stored (out_features, in_features) as in PyTorch.

    One op instead of transpose, matmul and a broadcast add: the bias is added
    in place, the batch dims fold into one big matmul each way, and the backward
    runs on arrays (three BLAS calls), not as a graph of ops. `composite` is the
    definition, differentiated when a graph of the backward pass is wanted.
    """

    def forward(self, x, weight, bias=None):
        y = backend.matmul(x.reshape(-1, x.shape[-1]), weight.T)  # (N, in) @ (in, out)
        if bias is not None:
            y += bias
        return y.reshape(*x.shape[:-1], weight.shape[0])  # (..., out)

    def backward_arrays(self, gy):  # d(x W^T + b): dx = g W, dW = g^T x, db = sum of g over rows
        x, weight = self.inputs[0].data, self.inputs[1].data
        wants = [t.requires_grad for t in self.inputs]
        n_out, n_in = weight.shape
        g = gy.reshape(-1, n_out)                         # (N, out)
        gx = backend.matmul(g, weight).reshape(x.shape) if wants[0] else None
        gw = backend.matmul(g.T, x.reshape(-1, n_in)) if wants[1] else None
        if len(self.inputs) == 2:
            return gx, gw
        # the bias gradient as a matrix-vector product: BLAS sums the rows ~2x faster
        gb = self.xp.ones(g.shape[0], dtype=g.dtype) @ g if wants[2] else None
        return gx, gw, gb

    def composite(self, x, weight, bias=None):
        y = matmul(x, weight.swapaxes(0, 1))
        return y if bias is None else y + bias


def add(x, y):
    return Add()(*_pair(x, y))


def sub(x, y):
    return Sub()(*_pair(x, y))


def mul(x, y):
    return Mul()(*_pair(x, y))


def div(x, y, rounding_mode=None):
    """x / y; rounding_mode 'floor' rounds down (x // y), 'trunc' toward zero (torch.div)."""
    if rounding_mode not in (None, "floor", "trunc"):
        raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', "
                         f"got {rounding_mode!r}")
    if rounding_mode is not None:  # a step: its gradient is zero, as floor's
        quotient = Div()(*_pair(x, y, true_division=True))
        return quotient.floor() if rounding_mode == "floor" else quotient.trunc()
    return Div()(*_pair(x, y, true_division=True))


def neg(x):
    return Neg()(x)


def pow(x, y):  # noqa: A001 - module-level name inside the ops namespace, like math.pow
    if isinstance(y, (int, float)) and not isinstance(y, bool):
        return PowConstant(y)(as_tensor(x))
    return Pow()(*_pair(x, y))


def matmul(a, b):
    """Matrix product with NumPy's rules: 1-D operands are promoted, then squeezed."""
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul needs at least 1-D operands, got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(
            f"matmul shape mismatch: {a.shape} @ {b.shape} "
            f"(inner sizes {a.shape[-1]} and {b.shape[-2 if b.ndim > 1 else 0]} differ)")
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    try:
        backend.numpy.broadcast_shapes(batch_a, batch_b)
    except ValueError:
        raise ValueError(f"matmul: batch dimensions {batch_a} and {batch_b} of {a.shape} @ "
                         f"{b.shape} do not broadcast") from None
    if a.ndim == 1 and b.ndim == 1:
        return (a * b).sum()
    if a.ndim == 1:  # (k,) @ (..., k, n) -> (..., n)
        return MatMul()(a.reshape(1, -1), b).squeeze(-2)
    if b.ndim == 1:  # (..., m, k) @ (k,) -> (..., m)
        return MatMul()(a, b.reshape(-1, 1)).squeeze(-1)
    return MatMul()(a, b)


def linear(x, weight, bias=None):
    """x @ weight.T + bias over the last axis of x (weight: (out, in), bias: (out,))."""
    x, weight = as_tensor(x), as_tensor(weight)
    if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} needs a weight of shape "
                         f"(out_features, {x.shape[-1] if x.ndim else '?'}), got {weight.shape}")
    if bias is None:
        return Linear()(x, weight)
    bias = as_tensor(bias)
    if bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    return Linear()(x, weight, bias)
