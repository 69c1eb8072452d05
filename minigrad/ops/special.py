"""The error function on arrays, with NumPy or CuPy alike (xp comes from the data).

NumPy has no erf, and calling math.erf once per element is about 90x slower than
GELU's tanh form. Here erf is three polynomials, each accurate to float64 rounding
(a few units in the last place against math.erf; tests/test_special.py checks it):

  |x| < 0.75:      erf(x) = 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1)), Taylor, 16 terms
  0.75 <= |x| < 6: erf(x) = sign(x) (1 - exp(-x^2) g(|x|)), g(x) = erfc(x) exp(x^2), a smooth
                   function, as Chebyshev series on [0.75, 2] and [2, 6]
  |x| >= 6:        erf(x) = sign(x) (erfc(6) < 2.2e-17 is below float64's resolution at 1)

The Chebyshev coefficients of g were computed once with 40-digit arithmetic (mpmath,
2N-point Chebyshev-Gauss quadrature at N = 40) and cut where they fall below 1e-18.
"""
import math

from .. import backend

_TAYLOR = [(-1) ** n * 2.0 / math.sqrt(math.pi) / (math.factorial(n) * (2 * n + 1))
           for n in range(16)]  # erf(x) / x as a polynomial in x^2

_G_NEAR = (0.75, 2.0, [  # g on [0.75, 2]
    0.36187482333873555, -0.12303893675474277, 0.018930087199575823, -0.0026868535733607438,
    0.00035638775573375243, -4.458831501664329e-05, 5.298825434531266e-06,
    -6.014156181022185e-07, 6.548103137122657e-08, -6.863889955602926e-09,
    6.947857207171413e-10, -6.80880857942812e-11, 6.474243350892908e-12, -5.98463257515318e-13,
    5.387007651113075e-14, -4.728966781818148e-15, 4.053873476569091e-16,
    -3.397635239934667e-17, 2.7871016340267776e-18])
_G_FAR = (2.0, 6.0, [  # g on [2, 6]
    0.15454893254411423, -0.07674006034821483, 0.01849487416970198, -0.004337233595514166,
    0.0009916839077238056, -0.00022144890703087983, 4.836760032122529e-05,
    -1.034609832664543e-05, 2.1698719431920526e-06, -4.4664937548784355e-07,
    9.031674382673662e-08, -1.7955339488870227e-08, 3.5120800624763815e-09,
    -6.763532420163472e-10, 1.2831846446281688e-10, -2.3997023709710498e-11,
    4.425938010116817e-12, -8.054583827182102e-13, 1.446990739131772e-13,
    -2.5671711791155715e-14, 4.4996611900036674e-15, -7.794698095368683e-16,
    1.3349408666512418e-16, -2.261037766442396e-17, 3.7885091975244464e-18,
    -6.281565255937608e-19])


def _horner(coefficients, t):
    """sum_k c_k t^k."""
    total = t * coefficients[-1]
    for c in reversed(coefficients[1:-1]):
        total += c
        total *= t
    total += coefficients[0]
    return total


def _chebyshev(piece, x):
    """sum_k c_k T_k(u) for u = x mapped from [low, high] to [-1, 1] (Clenshaw's recurrence:
    b_k = 2 u b_(k+1) - b_(k+2) + c_k), with in-place temporaries."""
    low, high, coefficients = piece
    u = x * (2.0 / (high - low))
    u -= (low + high) / (high - low)
    two_u = 2.0 * u
    b1, b2 = u * 0.0, u * 0.0
    for c in reversed(coefficients[1:]):
        b2 *= -1.0
        b2 += c
        b2 += two_u * b1
        b1, b2 = b2, b1
    b1 *= u
    b1 -= b2
    b1 += coefficients[0]
    return b1


def _enough(coefficients, dtype, scale):
    """The leading coefficients that matter in this dtype (float32 needs about half)."""
    eps = backend.numpy.finfo(dtype).eps * 0.01 * scale
    last = max(i for i, c in enumerate(coefficients) if i == 0 or abs(c) > eps)
    return coefficients[:last + 1]


def _erf_flat(x):
    """erf of a 1-D array: each element goes through the one polynomial of its piece.
    (For |x| >= 6, 1 - erfc rounds to 1: erfc(6) < 2.2e-17 is under half a unit at 1.)"""
    xp = backend.get_array_module(x)
    taylor = _enough(_TAYLOR, x.dtype, 0.75 ** -30)  # term n is at most c_n 0.75^(2n+1)
    a = xp.abs(x)
    out = xp.empty_like(x)
    near = a < 0.75
    xs = x[near]
    out[near] = xs * _horner(taylor, xs * xs)
    for (low, high, coefficients), chosen in ((_G_NEAR, ~near & (a < 2.0)), (_G_FAR, a >= 2.0)):
        ax = xp.minimum(a[chosen], 6.0)
        erfc = _chebyshev((low, high, _enough(coefficients, x.dtype, 1.0)), ax)
        ax *= ax
        erfc *= xp.exp(-ax, out=ax)
        erfc -= 1.0
        erfc *= -xp.sign(x[chosen])
        out[chosen] = erfc
    return out


def erf(x):
    """erf of a float array, in its dtype (float16 is computed in float32)."""
    xp = backend.get_array_module(x)
    work = x.astype(xp.float32) if x.dtype.itemsize < 4 else x
    flat = xp.ascontiguousarray(work).reshape(-1)
    return backend.blockwise(_erf_flat, flat).reshape(x.shape).astype(x.dtype, copy=False)


__all__ = ["erf"]
