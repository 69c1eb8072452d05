"""Bad input is refused up front with an error that names it; edge cases behave as in
PyTorch (issue 11): GPTConfig, generate, tensor(), float16 internals, empty and 0-d inputs,
pow at base 0, cross_entropy with every target ignored, hooks, NumPy errors wrapped."""
import math

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from models.gpt import GPT, GPTConfig, _pick_next

# --- GPTConfig -----------------------------------------------------------------------------

GOOD = dict(block_size=8, vocab_size=10, n_layer=1, n_head=2, n_embd=8)


@pytest.mark.parametrize("change, message", [
    (dict(block_size=0), "block_size must be a positive integer, got 0"),
    (dict(vocab_size=-1), "vocab_size must be a positive integer, got -1"),
    (dict(n_layer=0), "n_layer must be a positive integer"),
    (dict(n_head=0), "n_head must be a positive integer"),
    (dict(n_embd=2.5), "n_embd must be a positive integer, got 2.5"),
    (dict(n_embd=10, n_head=4), "n_embd 10 is not divisible by n_head 4"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
    (dict(dropout=float("nan")), r"dropout must be in \[0, 1\), got nan"),
    (dict(bias="yes"), "bias must be True or False"),
])
def test_gpt_config_validates_itself(change, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**{**GOOD, **change})


# --- generate ------------------------------------------------------------------------------

class AlmostOne:
    """A generator whose every uniform draw is the largest value below 1 in the asked dtype."""

    def random(self, shape, dtype="float32"):
        return np.full(shape, np.nextafter(np.array(1, dtype), np.array(0, dtype)), dtype=dtype)


def test_top_k_never_returns_a_token_outside_the_top_k():
    rng = np.random.default_rng(0)
    logits = mg.tensor((rng.normal(size=(300, 50)) * 3).astype(np.float32))
    picked = _pick_next(logits, 1.0, 5, AlmostOne()).numpy()[:, 0]
    top5 = np.argsort(logits.numpy(), axis=-1)[:, -5:]
    outside = [row for row in range(300) if picked[row] not in top5[row]]
    assert outside == []


def tiny_gpt():
    return GPT(GPTConfig(**GOOD), generator=mg.Generator(0)).eval()


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(temperature=float("nan")), ValueError, "temperature must be a finite number >= 0, got nan"),
    (dict(temperature=float("inf")), ValueError, "temperature must be a finite number >= 0"),
    (dict(temperature=-1), ValueError, "temperature must be a finite number >= 0"),
    (dict(top_k=0), ValueError, "top_k must be a positive integer or None, got 0"),
    (dict(top_k=2.5), ValueError, "top_k must be a positive integer or None, got 2.5"),
    (dict(max_new_tokens=-1), ValueError, "max_new_tokens must be an integer >= 0, got -1"),
    (dict(max_new_tokens=1.5), ValueError, "max_new_tokens must be an integer >= 0"),
    (dict(idx=[[]]), ValueError, r"prompt must be a non-empty \(B, T\) tensor"),
    (dict(idx=[1, 2]), ValueError, r"prompt must be a non-empty \(B, T\) tensor"),
    (dict(idx=[[1.0, 2.0]]), TypeError, "prompt must hold integer token ids"),
])
def test_generate_refuses_bad_arguments(kwargs, error, message):
    args = {"idx": [[1, 2]], "max_new_tokens": 2, **kwargs}
    idx = args.pop("idx")
    idx = mg.tensor(np.zeros((1, 0), np.int64)) if idx == [[]] else mg.tensor(idx)
    with pytest.raises(error, match=message):
        tiny_gpt().generate(idx, **args)


def test_generate_zero_new_tokens_returns_the_prompt():
    out = tiny_gpt().generate(mg.tensor([[1, 2]]), 0)
    np.testing.assert_array_equal(out.numpy(), [[1, 2]])


# --- tensor() ------------------------------------------------------------------------------

@pytest.mark.parametrize("data, error, message", [
    (None, TypeError, "tensor.. accepts only numeric and bool data, got None"),
    ({"a": 1}, TypeError, "got dict"),
    ("abc", TypeError, "got str 'abc'"),
    ([object()], TypeError, "got list"),
    (np.array(["x"]), TypeError, "dtype <U1"),
    (2**70, OverflowError, "1180591620717411303424 does not fit in int64"),
    ([1, 2**64], OverflowError, "18446744073709551616 does not fit in int64"),
])
def test_tensor_accepts_only_numeric_and_bool_data(data, error, message):
    with pytest.raises(error, match=message):
        mg.tensor(data)


def test_complex_tensors_cannot_require_grad():
    assert mg.tensor([1 + 2j]).dtype == np.complex128
    with pytest.raises(TypeError, match="complex128 .* cannot require gradients"):
        mg.tensor([1 + 2j], requires_grad=True)


def test_uint64_indices_beyond_int64_are_refused_not_wrapped():
    x = mg.tensor([1.0, 2.0, 3.0])
    for index in (np.array([2**64 - 1], dtype=np.uint64), mg.tensor(np.array([2**63 + 1], np.uint64))):
        with pytest.raises(IndexError, match="beyond int64"):
            x[index]
    np.testing.assert_array_equal(x[np.array([2], dtype=np.uint64)].numpy(), [3.0])


# --- float16 and extreme float32 -----------------------------------------------------------

def reference_layer_norm(x):
    x = np.asarray(x, np.float64)
    centered = x - x.mean(-1, keepdims=True)
    return centered / np.sqrt((centered ** 2).mean(-1, keepdims=True) + 1e-5)


def test_layer_norm_in_float16_computes_its_statistics_in_float32():
    x = mg.tensor(np.array([0, 200, 400, 600], np.float16), requires_grad=True)
    y = F.layer_norm(x)
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.numpy(), reference_layer_norm([0, 200, 400, 600]), rtol=2e-3)
    y.sum().backward()
    assert x.grad.dtype == np.float16 and np.isfinite(x.grad.numpy()).all()


def test_layer_norm_of_huge_float32_values_is_right():
    x = mg.tensor(np.array([[1e30, 0, -1e30], [1.0, 2.0, 3.0]], np.float32), requires_grad=True)
    y = F.layer_norm(x)
    np.testing.assert_allclose(y.numpy(), reference_layer_norm(x.numpy()), rtol=1e-5)
    y.backward(mg.tensor(np.array([[1.0, 2.0, 0.5], [1.0, 0.0, 0.0]], np.float32)))
    assert np.isfinite(x.grad.numpy()).all()


def test_softmax_and_cross_entropy_in_float16_match_float32():
    rng = np.random.default_rng(0)
    logits32 = (rng.normal(size=(4, 3000)) * 4).astype(np.float32)
    logits16 = logits32.astype(np.float16)
    expected = F.softmax(mg.tensor(logits16.astype(np.float32)), axis=-1).numpy()
    got = F.softmax(mg.tensor(logits16), axis=-1)
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.numpy().astype(np.float32).sum(-1), 1.0, atol=2e-3)
    np.testing.assert_allclose(got.numpy(), expected, rtol=2e-3, atol=1e-7)
    targets = mg.tensor(rng.integers(0, 3000, size=4))
    loss16 = F.cross_entropy(mg.tensor(logits16), targets)
    loss32 = F.cross_entropy(mg.tensor(logits16.astype(np.float32)), targets)
    assert loss16.dtype == np.float16
    assert abs(float(loss16.item()) - float(loss32.item())) <= 2e-3 * abs(float(loss32.item()))


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("approximate", ["tanh", "none"])
def test_gelu_gradient_is_finite_for_every_finite_input(dtype, approximate):
    info = np.finfo(dtype)
    values = np.array([info.max, -info.max, 1e4, -1e4, 300, -300, 20, -20, 3, -3, 0.5, 0],
                      dtype=dtype)
    if dtype == np.float32:
        values = np.concatenate([values, np.array([1e19, -1e19, 1e20, -1e20, 1e30], dtype)])
    x = mg.tensor(values, requires_grad=True)
    y = F.gelu(x, approximate=approximate)
    assert y.dtype == dtype and np.isfinite(y.numpy()).all()
    y.sum().backward()
    g = x.grad.numpy()
    assert g.dtype == dtype and np.isfinite(g).all(), g
    big = np.abs(values.astype(np.float64)) >= 20
    np.testing.assert_array_equal(g[big], (values[big] > 0).astype(dtype))


# --- empty and 0-d inputs ------------------------------------------------------------------

def test_softmax_and_log_softmax_of_a_0d_tensor_are_as_in_pytorch():
    x = mg.tensor(3.0, requires_grad=True)
    assert F.softmax(x, axis=-1).item() == 1.0 and F.softmax(x, axis=0).item() == 1.0
    assert F.log_softmax(x, axis=0).item() == 0.0
    F.softmax(x, axis=-1).backward()
    assert x.grad.item() == 0.0


@pytest.mark.parametrize("shape", [(0, 3), (2, 0), (0,)])
def test_softmax_log_softmax_and_layer_norm_of_empty_tensors_are_empty(shape):
    x = mg.zeros(*shape, requires_grad=True)
    for y in (F.softmax(x, axis=-1), F.log_softmax(x, axis=-1), F.layer_norm(x)):
        assert y.shape == shape
        y.sum().backward()
    assert x.grad.shape == shape


def test_layer_norm_and_cross_entropy_of_0d_tensors_are_clear_errors():
    with pytest.raises(ValueError, match="layer_norm needs at least one dimension"):
        F.layer_norm(mg.tensor(1.0))
    with pytest.raises(ValueError, match=r"cross_entropy needs logits of shape \(..., classes\)"):
        F.cross_entropy(mg.tensor(1.0), mg.tensor(0))


def test_cross_entropy_of_no_rows_is_nan_as_in_pytorch():
    loss = F.cross_entropy(mg.zeros(0, 3, requires_grad=True), mg.tensor(np.zeros(0, np.int64)))
    assert math.isnan(loss.item())


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_and_min_of_an_empty_axis_are_clear_errors(op):
    x = mg.zeros(0, 3)
    with pytest.raises(ValueError, match=f"{op} of an empty axis: axis 0 has size 0"):
        getattr(x, op)(axis=0)
    with pytest.raises(ValueError, match=f"{op} of an empty tensor"):
        getattr(x, op)()
    assert getattr(x, op)(axis=1).shape == (0,)


@pytest.mark.parametrize("axis", [0, -1, (0,), (-1,)])
def test_an_explicit_axis_0_or_minus_1_on_a_0d_tensor_works(axis):
    x = mg.tensor(2.0, requires_grad=True)
    for op in ("sum", "mean", "max", "min"):
        assert getattr(x, op)(axis=axis).item() == 2.0
    with pytest.raises(ValueError, match="out of range"):
        x.sum(axis=1)


# --- pow at base 0, all-ignored cross_entropy, hooks ---------------------------------------

def test_pow_gradients_at_base_0_match_pytorch():
    x = mg.tensor([0.0, 0.0, 0.0, 2.0], requires_grad=True)
    y = mg.tensor([2.0, 1.0, 0.0, 3.0], requires_grad=True)
    (x ** y).sum().backward()
    # PyTorch: d/dy 0^y = 0 for y >= 0; d/dx 0^2 = 0, 0^1 -> 1, 0^0 -> 0
    np.testing.assert_allclose(y.grad.numpy(), [0.0, 0.0, 0.0, 8 * math.log(2)], rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 1.0, 0.0, 12.0], rtol=1e-6)


def test_relu_to_a_learned_power_trains():
    h = mg.tensor([-1.0, 0.0, 0.5, 2.0], requires_grad=True)
    p = mg.tensor(2.0, requires_grad=True)
    (F.relu(h) ** p).sum().backward()
    assert np.isfinite(p.grad.numpy()).all() and np.isfinite(h.grad.numpy()).all()


def test_pow_second_derivative_at_base_0_is_finite():
    x = mg.tensor([0.0, 1.5], dtype=np.float64, requires_grad=True)
    y = mg.tensor([2.0, 2.0], dtype=np.float64, requires_grad=True)
    assert mg.gradcheck(lambda a, b: a ** b, [mg.tensor([0.5, 1.5], dtype=np.float64,
                                                         requires_grad=True), y])
    gy, = mg.grad((x ** y).sum(), [y], create_graph=True)
    assert np.isfinite(gy.numpy()).all()


@pytest.mark.parametrize("create_graph", [False, True])
def test_cross_entropy_with_every_target_ignored_gives_zero_gradients(create_graph):
    x = mg.randn(2, 3, requires_grad=True)
    loss = F.cross_entropy(x, mg.tensor([-100, -100]))
    assert math.isnan(loss.item())
    g, = mg.grad(loss, [x], create_graph=create_graph)
    np.testing.assert_array_equal(g.numpy(), np.zeros((2, 3)))


def test_a_hook_on_an_intermediate_the_user_drops_still_fires():
    seen = []

    def forward(x):
        h = x * 2
        h.register_hook(lambda g: seen.append(g.numpy().copy()))
        return (h * 3).sum()  # h goes out of scope here

    x = mg.tensor([1.0, 2.0], requires_grad=True)
    forward(x).backward()
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])


def test_a_removed_hook_on_a_dropped_intermediate_does_not_fire():
    seen = []

    def forward(x):
        h = x * 2
        handle = h.register_hook(lambda g: seen.append(1))
        handle.remove()
        return (h * 3).sum()

    forward(mg.tensor([1.0], requires_grad=True)).backward()
    assert seen == []


# --- NumPy's errors reach the user wrapped, with the op's name and the shapes --------------

@pytest.mark.parametrize("make, error, message", [
    (lambda: mg.randn(2, 3, 4) @ mg.randn(3, 4, 5), ValueError,
     r"matmul: batch dimensions \(2,\) and \(3,\) of \(2, 3, 4\) @ \(3, 4, 5\) do not broadcast"),
    (lambda: F.softmax(mg.randn(2, 3), axis=-1, mask=mg.tensor(np.ones((3, 2), bool))), ValueError,
     r"softmax: a mask of shape \(3, 2\) does not broadcast to x of shape \(2, 3\)"),
    (lambda: mg.randn(2, 3).sum(axis=1.0), TypeError, "axis must be None, an int or a tuple"),
    (lambda: F.split(mg.randn(4), 0), ValueError, "split: split_size must be a positive int"),
    (lambda: mg.arange(0, 1, 0), ValueError, "arange: step must not be zero"),
    (lambda: mg.randn(2).to("mps"), ValueError, "unknown device or dtype 'mps'"),
])
def test_numpy_errors_are_wrapped_with_the_op_and_shapes(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_a_preset_grad_of_the_wrong_shape_is_named():
    x = mg.randn(3, requires_grad=True)
    x.grad = mg.zeros(4)
    with pytest.raises(ValueError, match=r"\.grad of shape \(4,\).*tensor of shape \(3,\)"):
        (x * 2).sum().backward()
