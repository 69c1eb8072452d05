"""Exercises for examples/attention_tour.py: write the seven backward rules yourself.

    python examples/attention_tour.py --exercise               # grades this file
    cp examples/tour_exercises.py mine.py                      # or work on a copy:
    python examples/attention_tour.py --exercise mine.py

Each function gets what its op saw in the forward pass and the gradient of the op's
output (d_y = dL/dy, an array of y's shape), and returns the gradients of its inputs,
each of its input's shape. Use NumPy only (`np`). The grader checks each rule on its
own against minigrad's autograd and against finite differences, and says which
gradient is wrong and by how much. The tour prints the derivation of every rule:
run `python examples/attention_tour.py --quick` to read it.
"""
import math  # noqa: F401  (gelu_backward needs sqrt(2 / pi))

import numpy as np  # noqa: F401

EPS = 1e-5  # LayerNorm's epsilon


def matmul_backward(a, b, d_c):
    """C = A @ B, A (n, k), B (k, m) -> (dA (n, k), dB (k, m)).

    Hint: C[i,j] = sum_k A[i,k] B[k,j]; only one product of d_c with b (or a) has A's
    (or B's) shape."""
    raise NotImplementedError("matmul_backward: return dA, dB")


def softmax_backward(w, d_w):
    """w = softmax(s) along the last axis (w given) -> ds.

    Hint: dw_i/ds_j = w_i (delta_ij - w_j); multiply by d_w without building the matrix."""
    raise NotImplementedError("softmax_backward: return ds")


def mask_backward(d_masked, mask):
    """masked = where(mask, constant, x) -> dx.

    Hint: where the constant was written, x did not matter."""
    raise NotImplementedError("mask_backward: return dx")


def scale_backward(d_scaled, factor):
    """scaled = x * factor, factor a constant number -> dx."""
    raise NotImplementedError("scale_backward: return dx")


def layernorm_backward(x, gamma, d_y, eps=EPS):
    """y = (x - mean) / sqrt(var + eps) * gamma + beta over the last axis, x and d_y (T, C),
    gamma (C,) -> (dx (T, C), dgamma (C,), dbeta (C,)).

    Hint: the mean and the variance depend on every entry of the row."""
    raise NotImplementedError("layernorm_backward: return dx, dgamma, dbeta")


def gelu_backward(u, d_g):
    """g = 0.5 u (1 + tanh(a (u + 0.044715 u^3))), a = sqrt(2 / pi), entry by entry -> du."""
    raise NotImplementedError("gelu_backward: return du")


def cross_entropy_backward(logits, targets):
    """L = mean over the rows t of -log softmax(logits[t])[targets[t]];
    logits (T, V), targets (T,) integers -> d logits (T, V)."""
    raise NotImplementedError("cross_entropy_backward: return d logits")
