"""PyTorch's names and meanings that do not fit the op table in test_ops.py: boolean and
integer results (argmax, isnan, logical ops), the (values, indices) pairs, the
dim=/keepdim= aliases, and erf's accuracy against math.erf."""
import math

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad.ops import special


def test_erf_is_within_two_units_in_the_last_place_of_math_erf():
    x = np.concatenate([np.linspace(-7, 7, 20001), np.logspace(-300, 1, 500),
                        -np.logspace(-300, 1, 500), [0.0, 0.75, -0.75, 2.0, -2.0, 6.0, 6.5]])
    want = np.array([math.erf(v) for v in x])
    got = special.erf(x)
    units = np.abs(got - want) / np.spacing(np.abs(want) + 1e-320)
    assert units.max() <= 2.0, f"erf off by {units.max()} ulp at x = {x[units.argmax()]}"
    x32 = x.astype(np.float32)
    want32 = np.array([math.erf(v) for v in x32.astype(np.float64)])
    got32 = special.erf(x32)
    assert got32.dtype == np.float32
    units32 = np.abs(got32 - want32) / np.spacing(np.abs(want32).astype(np.float32) + 1e-38)
    assert units32.max() <= 3


def test_erf_keeps_shape_and_handles_0d():
    np.testing.assert_allclose(special.erf(np.array(0.3)), math.erf(0.3), rtol=1e-15)
    assert special.erf(np.zeros((2, 0, 3))).shape == (2, 0, 3)


def test_max_with_a_dim_returns_values_and_indices_like_torch():
    x = mg.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]], requires_grad=True)
    values, indices = x.max(1)
    np.testing.assert_array_equal(values.numpy(), [5, 6])
    np.testing.assert_array_equal(indices.numpy(), [1, 2])
    assert indices.dtype == np.int64
    result = mg.min(x, dim=0, keepdim=True)
    np.testing.assert_array_equal(result.values.numpy(), [[1, 2, 3]])
    np.testing.assert_array_equal(result.indices.numpy(), [[0, 1, 0]])
    values.sum().backward()  # the gradient goes to the index picked
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [0, 0, 1]])


def test_max_without_dim_or_with_numpy_axis_returns_values():
    x = mg.tensor([[1.0, 5.0], [7.0, 2.0]])
    assert x.max().item() == 7.0
    np.testing.assert_array_equal(x.max(axis=1).numpy(), [5, 7])
    np.testing.assert_array_equal(x.max(axis=(0, 1), keepdims=True).numpy(), [[7]])
    np.testing.assert_array_equal(mg.max(x, mg.tensor(3.0)).numpy(), [[3, 5], [7, 3]])


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin_match_numpy(name, device):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 4, 2))
    x = mg.tensor(a, device=device)
    pick = getattr(np, name)
    assert getattr(x, name)().item() == pick(a)
    for dim in (0, 1, -1):
        np.testing.assert_array_equal(getattr(mg, name)(x, dim=dim).numpy(), pick(a, axis=dim))
        kept = getattr(x, name)(dim, keepdim=True)
        np.testing.assert_array_equal(kept.numpy(), pick(a, axis=dim, keepdims=True))
    assert getattr(x, name)(keepdim=True).shape == (1, 1, 1)


def test_dim_and_axis_together_is_an_error():
    with pytest.raises(TypeError, match="both dim= and axis="):
        mg.zeros(2, 3).sum(dim=0, axis=0)


def test_value_tests_and_logic_give_bool_tensors():
    x = mg.tensor([1.0, float("nan"), float("inf"), -2.0])
    np.testing.assert_array_equal(x.isnan().numpy(), [False, True, False, False])
    np.testing.assert_array_equal(mg.isinf(x).numpy(), [False, False, True, False])
    np.testing.assert_array_equal(mg.isfinite(x).numpy(), [True, False, False, True])
    np.testing.assert_array_equal(mg.isclose(mg.tensor([1.0, 1.1]), 1.0).numpy(), [True, False])
    assert mg.allclose(mg.tensor([1.0, 2.0]), mg.tensor([1.0, 2.0 + 1e-9]))
    a, b = mg.tensor([True, True, False, False]), mg.tensor([True, False, True, False])
    for symbol, got, want in [("&", a & b, [1, 0, 0, 0]), ("|", a | b, [1, 1, 1, 0]),
                              ("^", a ^ b, [0, 1, 1, 0]), ("~", ~a, [0, 0, 1, 1]),
                              ("and", mg.logical_and(a, b), [1, 0, 0, 0]),
                              ("or", mg.logical_or(a, b), [1, 1, 1, 0]),
                              ("xor", mg.logical_xor(a, b), [0, 1, 1, 0]),
                              ("not", mg.logical_not(a), [0, 0, 1, 1])]:
        assert got.dtype == np.bool_, symbol
        np.testing.assert_array_equal(got.numpy(), np.array(want, dtype=bool), err_msg=symbol)
    np.testing.assert_array_equal((mg.tensor([6, 5]) & 3).numpy(), [2, 1])  # ints: bitwise
    with pytest.raises(TypeError, match="boolean or integer tensors, got dtype float32"):
        mg.tensor([1.0]) & mg.tensor([1.0])


def test_floor_divide_and_remainder_follow_python_signs():
    x, y = mg.tensor([7.0, -7.0, 7.0, -7.0]), mg.tensor([2.0, 2.0, -2.0, -2.0])
    np.testing.assert_array_equal((x // y).numpy(), [3, -4, -4, 3])
    np.testing.assert_array_equal((x % y).numpy(), [1, 1, -1, -1])
    np.testing.assert_array_equal(mg.div(x, y, rounding_mode="trunc").numpy(), [3, -3, -3, 3])
    np.testing.assert_array_equal((mg.tensor([7, -7]) // 2).numpy(), [3, -4])
    assert (mg.tensor([7, -7]) // 2).dtype == np.int64
    with pytest.raises(ValueError, match="rounding_mode must be None, 'floor' or 'trunc'"):
        mg.div(x, y, rounding_mode="round")


def test_activations_do_not_overflow():
    big = mg.tensor([-1000.0, 1000.0], dtype=mg.float64, requires_grad=True)
    for fn in (F.softplus, F.logsigmoid, F.mish, F.elu, F.selu, F.silu):
        y = fn(big)
        y.sum().backward()
        assert np.isfinite(y.numpy()).all() and np.isfinite(big.grad.numpy()).all(), fn.__name__
        big.grad = None
    np.testing.assert_allclose(F.logsigmoid(big).numpy(), [-1000.0, 0.0])


def test_sort_argsort_topk_indices_and_boolean_reductions(device):
    a = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    x = mg.tensor(a, device=device)
    np.testing.assert_array_equal(x.argsort(dim=1).numpy(), np.argsort(a, axis=1))
    np.testing.assert_array_equal(x.sort(0, descending=True).indices.numpy(),
                                  [[0, 1, 1], [1, 0, 0]])
    np.testing.assert_array_equal(mg.topk(x, 2).indices.numpy(), [[0, 2], [1, 2]])
    assert mg.any(x > 4).item() and not mg.all(x > 0).item()
    np.testing.assert_array_equal(mg.all(x >= 1, dim=1).numpy(), [True, False])
    np.testing.assert_array_equal(x.any(dim=0, keepdim=True).numpy(), [[True, True, True]])


def test_one_hot_nonzero_and_where_with_one_argument():
    np.testing.assert_array_equal(mg.one_hot(mg.tensor([0, 2]), 3).numpy(), [[1, 0, 0], [0, 0, 1]])
    assert mg.one_hot(mg.tensor([[1]])).shape == (1, 1, 2)
    with pytest.raises(IndexError, match=r"indices must lie in \[0, 2\)"):
        mg.one_hot(mg.tensor([2]), 2)
    m = mg.tensor([[True, False], [False, True]])
    np.testing.assert_array_equal(mg.nonzero(m).numpy(), [[0, 0], [1, 1]])
    rows, cols = mg.where(m)
    np.testing.assert_array_equal(rows.numpy(), [0, 1])
    np.testing.assert_array_equal(cols.numpy(), [0, 1])


def test_prod_gradient_is_exact_with_zeros():
    x = mg.tensor([2.0, 0.0, 3.0, 0.5, 4.0], dtype=mg.float64, requires_grad=True)
    x.prod().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 12, 0, 0, 0])


def test_gather_and_scatter_refuse_bad_indices():
    x = mg.zeros(2, 3)
    with pytest.raises(IndexError, match="index 3 is out of range for dim 1 of size 3"):
        mg.gather(x, 1, mg.tensor([[3]]))
    with pytest.raises(TypeError, match="index must be an integer tensor"):
        mg.gather(x, 1, mg.zeros(2, 1))
    with pytest.raises(ValueError, match="reduce must be 'sum', 'mean', 'amax' or 'amin'"):
        mg.scatter_reduce(x, 0, mg.tensor([[0]]), mg.ones(1, 1), "prod")
    with pytest.raises(ValueError, match="repeated subscript"):
        mg.einsum("ii->i", mg.zeros(2, 2))
    with pytest.raises(ValueError, match="reflect padding of 3 needs an axis longer"):
        mg.pad(mg.zeros(3), (3, 0), "reflect")


def test_losses_refuse_bad_input():
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        mg.mse_loss(mg.zeros(2), mg.zeros(2), reduction="avg")
    with pytest.raises(ValueError, match=r"input of shape \(2,\) and target of shape \(2, 1\)"):
        mg.l1_loss(mg.zeros(2), mg.zeros(2, 1))
    with pytest.raises(ValueError, match="probabilities in"):
        mg.binary_cross_entropy(mg.tensor([1.5]), mg.tensor([1.0]))
    with pytest.raises(ValueError, match="cross_entropy: reduction must be"):
        mg.cross_entropy(mg.zeros(2, 3), mg.tensor([0, 1]), reduction="avg")


def test_losses_stay_finite_at_the_extremes():
    x = mg.tensor([-200.0, 200.0], dtype=mg.float64, requires_grad=True)
    loss = mg.binary_cross_entropy_with_logits(x, mg.tensor([1.0, 0.0], dtype=mg.float64))
    loss.backward()
    np.testing.assert_allclose(loss.item(), 200.0)
    np.testing.assert_allclose(x.grad.numpy(), [-0.5, 0.5])
    p = mg.tensor([0.0, 1.0], dtype=mg.float64)
    assert mg.binary_cross_entropy(p, mg.tensor([1.0, 0.0], dtype=mg.float64)).item() == 100.0


def test_nll_loss_weights_and_ignore_index():
    log_p = mg.tensor(np.log([[0.5, 0.5], [0.25, 0.75], [0.9, 0.1]]))
    loss = mg.nll_loss(log_p, mg.tensor([0, 1, -100]), weight=mg.tensor([1.0, 3.0]))
    want = -(np.log(0.5) * 1 + np.log(0.75) * 3) / 4
    np.testing.assert_allclose(loss.item(), want, rtol=1e-6)


def test_creation_functions(device):
    np.testing.assert_array_equal(mg.eye(2, 3, device=device).numpy(), np.eye(2, 3))
    np.testing.assert_allclose(mg.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5))
    np.testing.assert_allclose(mg.logspace(0, 2, 3, base=2.0).numpy(), [1, 2, 4])
    x = mg.zeros(2, 3, dtype=mg.float64, device=device)
    for made in (mg.full_like(x, 7.0), mg.empty_like(x), mg.randn_like(x), mg.rand_like(x)):
        assert made.shape == x.shape and made.dtype == x.dtype and made.device == device
    assert (mg.full_like(x, 7.0).numpy() == 7).all()
    assert mg.empty(2, 3).shape == (2, 3)
    a = np.arange(3.0)
    t = mg.from_numpy(a)
    a[0] = 5.0
    assert t.dtype == np.float64 and t[0].item() == 5.0  # shares memory
    assert mg.float is np.float32 and mg.long is np.int64 and mg.double is np.float64


def test_multinomial_frequencies_follow_the_weights():
    gen = mg.Generator(3)
    draws = mg.multinomial(mg.tensor([1.0, 0.0, 3.0]), 4000, replacement=True, generator=gen)
    counts = np.bincount(draws.numpy(), minlength=3) / 4000
    assert counts[1] == 0 and abs(counts[2] - 0.75) < 6 * math.sqrt(0.75 * 0.25 / 4000)
    rows = mg.multinomial(mg.tensor([[1.0, 1.0, 1.0, 0.0]] * 5), 3, generator=gen).numpy()
    assert rows.shape == (5, 3) and all(sorted(r) == [0, 1, 2] for r in rows)  # no repeats
    with pytest.raises(ValueError, match="cannot draw 4 samples without replacement"):
        mg.multinomial(mg.tensor([1.0, 1.0, 0.0]), 4)


def test_kl_div_counts_zero_targets_as_zero():
    log_q = mg.tensor(np.log([0.5, 0.25, 0.25]), dtype=mg.float64, requires_grad=True)
    p = mg.tensor([0.0, 0.5, 0.5], dtype=mg.float64)
    loss = mg.kl_div(log_q, p, reduction="sum")
    loss.backward()
    np.testing.assert_allclose(loss.item(), 2 * 0.5 * np.log(0.5 / 0.25))
    np.testing.assert_allclose(log_q.grad.numpy(), [0.0, -0.5, -0.5])
    same = mg.kl_div(log_q, p.clip(low=1e-300).log(), reduction="sum", log_target=True)
    np.testing.assert_allclose(same.item(), loss.item())


# --- the Tensor API a PyTorch user types -----------------------------------------------------

def test_tensor_methods_by_torch_names():
    x = mg.randn(2, 3)
    assert x.dim() == 2 and x.mT.shape == (3, 2) and x.view(3, 2).shape == (3, 2)
    assert x.view(-1).shape == (6,) and x.view_as(mg.zeros(6)).shape == (6,)
    np.testing.assert_array_equal(x.clamp(min=-0.1, max=0.1).numpy(), np.clip(x.numpy(), -0.1, 0.1))
    assert mg.cat([x, x], dim=1).shape == (2, 6)
    for method, dtype in [("float", np.float32), ("double", np.float64), ("half", np.float16),
                          ("long", np.int64), ("int", np.int32), ("bool", np.bool_)]:
        assert getattr(x, method)().dtype == dtype, method
    assert x.to(mg.float64).dtype == np.float64
    assert x.to("cpu", mg.float16).dtype == np.float16
    assert x.to(dtype=mg.float64, device="cpu").dtype == np.float64
    assert x.type_as(mg.zeros(1, dtype=mg.int64)).dtype == np.int64
    assert x.tolist() == x.numpy().tolist()
    assert x.new_zeros(2, 2).dtype == x.dtype and x.new_ones((3,)).shape == (3,)


def test_grad_fn_and_is_leaf():
    leaf = mg.randn(2, requires_grad=True)
    y = leaf * 2.0
    assert leaf.is_leaf and leaf.grad_fn is None
    assert not y.is_leaf and y.grad_fn.name == "Mul"
    assert leaf.requires_grad_(False) is leaf and not leaf.requires_grad


def test_no_grad_with_and_without_parentheses_and_set_grad_enabled_as_a_call():
    w = mg.randn(2, requires_grad=True)

    @mg.no_grad
    def bare():
        return (w * 2).requires_grad

    @mg.no_grad()
    def called():
        return (w * 2).requires_grad

    assert not bare() and not called() and mg.is_grad_enabled()
    mg.set_grad_enabled(False)
    try:
        assert not mg.is_grad_enabled() and not (w * 2).requires_grad
    finally:
        mg.set_grad_enabled(True)
    assert mg.is_grad_enabled()

    @mg.set_grad_enabled(False)
    def decorated():
        return mg.is_grad_enabled()

    assert mg.is_grad_enabled() and not decorated() and mg.is_grad_enabled()
    with mg.set_grad_enabled(False):
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()


def test_in_place_ops_bump_the_version_and_are_refused_on_tensors_that_require_grad():
    x = mg.zeros(3)
    start = x._version
    x.add_(1.0, alpha=2.0).mul_(3.0).clamp_(max=5.0).sub_(1.0)
    np.testing.assert_array_equal(x.numpy(), [4, 4, 4])
    assert x._version == start + 4
    x.zero_().fill_(2.0).copy_(mg.tensor([1.0, 2.0, 3.0]))
    x.masked_fill_(x > 1.5, 0.0)
    np.testing.assert_array_equal(x.numpy(), [1, 0, 0])
    x.normal_(generator=mg.Generator(1))
    x.uniform_(2.0, 3.0)
    assert ((x.numpy() >= 2) & (x.numpy() < 3)).all()
    w = mg.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place change of a tensor that requires grad"):
        w.add_(1.0)
    with mg.no_grad():
        w.add_(1.0)  # an update, as an optimizer does
    assert w.numpy().tolist() == [1, 1, 1]


def test_dtype_promotion_follows_pytorch():
    ints, floats = mg.tensor([1, 2]), mg.tensor([1.0, 2.0])
    assert (ints + 1.5).dtype == np.float32            # int tensor + Python float
    assert (ints / ints).dtype == np.float32           # true division of ints
    assert (ints / 2).dtype == np.float32
    assert (floats * mg.tensor([1, 2], dtype=mg.int32)).dtype == np.float32  # NumPy: float64
    assert (floats - ints).dtype == np.float32
    assert (ints * 2).dtype == np.int64 and (ints // 2).dtype == np.int64
    assert (floats + mg.tensor([1.0], dtype=mg.float64)).dtype == np.float64
    assert (floats.half() + floats).dtype == np.float32
