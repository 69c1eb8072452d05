"""Layers: values against NumPy, gradients against finite differences (float64),
reproducible init, modes, and softmax_composite against the fused softmax."""
import math

import numpy as np
import pytest
from model_helpers import gradcheck_module, to_float64

import minigrad
import minigrad.functional as F
from models import GELU, Dropout, Embedding, LayerNorm, Linear, softmax_composite


def float64_input(*shape, seed=0, requires_grad=True):
    values = np.random.default_rng(seed).normal(size=shape)
    return minigrad.tensor(values, dtype=np.float64, requires_grad=requires_grad)


# --- Linear -------------------------------------------------------------------------

def test_linear_matches_numpy_and_stores_weight_out_by_in():
    layer = Linear(5, 3)
    assert layer.weight.shape == (3, 5) and layer.bias.shape == (3,)
    layer.bias.data = np.arange(3, dtype=np.float32)
    x = minigrad.randn(2, 4, 5)
    expected = x.numpy() @ layer.weight.numpy().T + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert layer(x).dtype == np.float32


def test_linear_without_bias_has_no_bias_parameter():
    layer = Linear(4, 2, bias=False)
    assert layer.bias is None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    x = minigrad.randn(3, 4)
    np.testing.assert_allclose(layer(x).numpy(), x.numpy() @ layer.weight.numpy().T, rtol=1e-6)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck_inputs_and_parameters(bias):
    layer = to_float64(Linear(4, 3, bias=bias))
    if bias:
        layer.bias.data = np.random.default_rng(1).normal(size=3)
    gradcheck_module(layer, layer, [float64_input(2, 3, 4)])


def test_linear_init_is_seeded_and_scaled():
    minigrad.manual_seed(7)
    a = Linear(256, 64)
    minigrad.manual_seed(7)
    b = Linear(256, 64)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    c = Linear(256, 64)  # the stream moved on
    assert not np.array_equal(a.weight.numpy(), c.weight.numpy())
    assert abs(a.weight.numpy().std() * math.sqrt(256) - 1.0) < 0.05
    np.testing.assert_array_equal(a.bias.numpy(), 0.0)


def test_linear_init_from_an_explicit_generator():
    a = Linear(8, 8, generator=minigrad.Generator(3))
    minigrad.manual_seed(123)  # the global seed does not matter with a generator
    b = Linear(8, 8, generator=minigrad.Generator(3))
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())


# --- Embedding ----------------------------------------------------------------------

def test_embedding_picks_rows():
    table = Embedding(10, 4)
    idx = minigrad.tensor([[1, 2, 2], [9, 0, 1]])
    np.testing.assert_array_equal(table(idx).numpy(), table.weight.numpy()[idx.numpy()])
    assert table(idx).shape == (2, 3, 4)


def test_embedding_gradcheck_with_repeated_ids():
    table = to_float64(Embedding(5, 3))
    idx = minigrad.tensor([[0, 2, 2], [4, 2, 0]])  # repeated ids must add up
    gradcheck_module(table, lambda: table(idx))


def test_embedding_gradient_counts_repeats():
    table = Embedding(4, 2)
    table(minigrad.tensor([1, 1, 3, 1])).sum().backward()
    np.testing.assert_array_equal(table.weight.grad.numpy(), [[0, 0], [3, 3], [0, 0], [1, 1]])


def test_embedding_rejects_out_of_range_ids():
    with pytest.raises(IndexError, match="index 5 is out of range"):
        Embedding(5, 2)(minigrad.tensor([0, 5]))


# --- LayerNorm ----------------------------------------------------------------------

def layer_norm_reference(x, weight, bias, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + (0.0 if bias is None else bias)


@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm_matches_numpy(bias):
    norm = LayerNorm(6, bias=bias)
    rng = np.random.default_rng(0)
    norm.weight.data = rng.normal(size=6).astype(np.float32)
    if bias:
        norm.bias.data = rng.normal(size=6).astype(np.float32)
    x = minigrad.randn(2, 3, 6) * 3.0 + 1.0
    expected = layer_norm_reference(x.numpy(), norm.weight.numpy(),
                                    None if norm.bias is None else norm.bias.numpy(), 1e-5)
    np.testing.assert_allclose(norm(x).numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm_gradcheck_inputs_and_parameters(bias):
    norm = to_float64(LayerNorm(5, bias=bias))
    rng = np.random.default_rng(2)
    norm.weight.data = rng.normal(size=5)
    if bias:
        norm.bias.data = rng.normal(size=5)
    gradcheck_module(norm, norm, [float64_input(2, 3, 5)])


def test_layer_norm_without_bias_has_only_a_weight():
    assert [name for name, _ in LayerNorm(4, bias=False).named_parameters()] == ["weight"]


# --- Dropout and GELU ---------------------------------------------------------------

def test_dropout_zeroes_and_rescales_only_in_training():
    drop = Dropout(0.25)
    x = minigrad.ones(200, 200)
    y = drop(x).numpy()
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.01
    drop.eval()
    assert drop(x) is x  # identity in eval mode


def test_dropout_is_reproducible_with_a_seed():
    x = minigrad.ones(50)
    minigrad.manual_seed(5)
    first = Dropout(0.5)(x).numpy()
    minigrad.manual_seed(5)
    np.testing.assert_array_equal(Dropout(0.5)(x).numpy(), first)


def test_dropout_rejects_bad_probability():
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        Dropout(1.5)


@pytest.mark.parametrize("approximate", ["tanh", "none"])
def test_gelu_matches_formula(approximate):
    x = np.linspace(-5, 5, 41)
    if approximate == "tanh":
        expected = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    else:
        expected = x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    got = GELU(approximate)(minigrad.tensor(x, dtype=np.float64)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="approximate"):
        GELU("sigmoid")


def test_extra_repr():
    assert repr(Linear(3, 2, bias=False)) == "Linear(in_features=3, out_features=2, bias=False)"
    assert repr(Embedding(7, 4)) == "Embedding(7, 4)"
    assert repr(LayerNorm(4)) == "LayerNorm(4, eps=1e-05, bias=True)"
    assert repr(Dropout(0.1)) == "Dropout(p=0.1)"
    assert repr(GELU()) == "GELU(approximate='tanh')"


# --- softmax: composite and fused ---------------------------------------------------

@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_composite_agrees_with_fused_in_value_and_gradient(axis):
    x = float64_input(3, 4, 5, seed=3)
    g = np.random.default_rng(4).normal(size=(3, 4, 5))
    composite = softmax_composite(x, axis=axis)
    (gx_composite,) = minigrad.grad(composite, [x], minigrad.tensor(g, dtype=np.float64))
    fused = F.softmax(x, axis=axis)
    (gx_fused,) = minigrad.grad(fused, [x], minigrad.tensor(g, dtype=np.float64))
    np.testing.assert_allclose(composite.numpy(), fused.numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(gx_composite.numpy(), gx_fused.numpy(), rtol=1e-12, atol=1e-14)


def test_softmax_composite_gradients():
    x = float64_input(2, 5, seed=5)
    minigrad.gradcheck(softmax_composite, [x])
    minigrad.gradgradcheck(softmax_composite, [x])


def test_softmax_composite_does_not_overflow():
    x = minigrad.tensor([[1000.0, 1000.0, -1000.0], [0.0, 1.0, 2.0]])
    y = softmax_composite(x).numpy()
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(y[0], [0.5, 0.5, 0.0])
