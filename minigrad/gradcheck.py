"""Check analytic gradients against central finite differences, in float64.

gradcheck(fn, inputs) reduces fn's output(s) to a scalar L = sum(out * w) with
fixed random weights w, backpropagates once for the analytic dL/dx, and
nudges every element of every input by +-eps for the numeric one:

    dL/dx[j] ~ (L(x + eps e_j) - L(x - eps e_j)) / (2 eps)

On a mismatch it raises GradcheckError naming the op, the input, the worst
element, both values and the tolerance. Inputs are copied, never modified.
"""
import sys
import types

import numpy

from . import autograd, backend
from .tensor import Tensor


__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, name=None, seed=0):
    """Return True, or raise GradcheckError with the worst mismatching element.

    fn: takes the inputs (Tensors) and returns a Tensor or a tuple of Tensors.
    inputs: Tensors; those with requires_grad=True are checked (all floating
    ones if none is marked). They are copied to float64 for the check.
    """
    name = name or getattr(fn, "__qualname__", repr(fn))
    xs, wrt = _float64_copies(inputs)
    if not wrt:
        raise ValueError(f"gradcheck({name}): no floating-point input to differentiate")
    weights = None

    def scalar(*args):
        nonlocal weights
        outputs = fn(*args)
        outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
        if weights is None:  # drawn once, so every evaluation sums with the same weights
            rng = numpy.random.default_rng(seed)
            weights = [rng.uniform(0.5, 1.5, o.shape) for o in outputs]
        total = 0.0
        for o, w in zip(outputs, weights):
            if o is not None:
                total = total + (o.astype(numpy.float64) * Tensor(_like(o.data, w))).sum()
        return total

    loss = scalar(*xs)
    analytic = _analytic(loss, [xs[i] for i in wrt])
    for slot, i in enumerate(wrt):
        numeric = _numeric(scalar, xs, i, eps)
        _compare(name, i, analytic[slot], numeric, atol, rtol)
    return True


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, name=None, seed=0):
    """gradcheck of the first derivative: checks the backward of the backward.

    The first derivative is g(x) = d/dx sum(fn(x) * w), computed with
    create_graph=True; gradcheck then compares d/dx sum(g(x) * u) with finite
    differences of g.
    """
    name = name or getattr(fn, "__qualname__", repr(fn))
    _, wrt = _float64_copies(inputs)
    rng = numpy.random.default_rng(seed + 1)
    weights = {}

    def first_derivative(*args):
        outputs = fn(*args)
        outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
        total = 0.0
        for k, o in enumerate(outputs):
            w = weights.setdefault(k, rng.uniform(0.5, 1.5, o.shape))
            total = total + (o * Tensor(_like(o.data, w))).sum()
        found = autograd.grad(total, [args[i] for i in wrt], create_graph=True, allow_unused=True)
        return tuple(g if g is not None else args[i] * 0.0 for g, i in zip(found, wrt))

    return gradcheck(first_derivative, inputs, eps, atol, rtol, name=f"second derivative of {name}",
                     seed=seed)


def _float64_copies(inputs):
    """float64 copies of the inputs, and the positions of those to differentiate."""
    marked = [i for i, x in enumerate(inputs) if x.requires_grad]
    floating = [i for i, x in enumerate(inputs) if x.dtype.kind == "f"]
    wrt = marked or floating
    copies = []
    for i, x in enumerate(inputs):
        data = x.data.astype(numpy.float64) if x.dtype.kind == "f" else x.data.copy()
        copies.append(Tensor(data, requires_grad=i in wrt))
    return copies, wrt


def _like(array, values):
    """A float64 array of `values` on the device of `array`."""
    return backend.to_device(numpy.asarray(values, dtype=numpy.float64), backend.device_of(array))


def _analytic(loss, wrt):
    if not isinstance(loss, Tensor) or not loss.requires_grad:  # output does not depend on inputs
        return [numpy.zeros(x.shape) for x in wrt]
    grads = autograd.grad(loss, wrt, allow_unused=True)
    return [numpy.zeros(x.shape) if g is None else backend.to_numpy(g.data).astype(numpy.float64)
            for x, g in zip(wrt, grads)]


def _numeric(scalar, xs, i, eps):
    data = xs[i].data  # perturbed in place, then restored: these are our own copies
    numeric = numpy.zeros(data.shape)
    for j in numpy.ndindex(data.shape):
        original = float(data[j])
        data[j] = original + eps
        plus = _evaluate(scalar, xs)
        data[j] = original - eps
        minus = _evaluate(scalar, xs)
        data[j] = original
        numeric[j] = (plus - minus) / (2 * eps)
    return numeric


def _evaluate(scalar, xs):
    value = scalar(*xs)
    return float(value.item()) if isinstance(value, Tensor) else float(value)


def _compare(name, index, analytic, numeric, atol, rtol):
    excess = numpy.abs(analytic - numeric) - (atol + rtol * numpy.abs(numeric))
    if not numpy.isfinite(analytic).all() or not numpy.isfinite(numeric).all():
        bad = numpy.argwhere(~(numpy.isfinite(analytic) & numpy.isfinite(numeric)))[0]
        raise GradcheckError(f"gradcheck({name}): non-finite gradient for input {index} at "
                             f"{tuple(bad)}: analytic {analytic[tuple(bad)]}, "
                             f"numeric {numeric[tuple(bad)]}")
    if excess.size and excess.max() > 0:
        worst = numpy.unravel_index(int(numpy.argmax(excess)), excess.shape)
        a, n = analytic[worst], numeric[worst]
        raise GradcheckError(
            f"gradcheck({name}): gradient of input {index} (shape {analytic.shape}) is wrong; "
            f"worst element {tuple(int(k) for k in worst)}: analytic {a:.8g}, numeric {n:.8g}, "
            f"|difference| {abs(a - n):.3g} > tolerance {atol + rtol * abs(n):.3g} "
            f"(atol={atol}, rtol={rtol}); {int((excess > 0).sum())} of {excess.size} elements off")


class _CallableModule(types.ModuleType):
    """minigrad.gradcheck is this module (from minigrad.gradcheck import gradgradcheck works)
    and, called, its gradcheck function: minigrad.gradcheck(fn, inputs)."""

    def __call__(self, *args, **kwargs):
        return gradcheck(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

