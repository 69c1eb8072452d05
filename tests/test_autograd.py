"""The engine: graph traversal, accumulation, freeing, modes, higher-order gradients."""
import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd import Function


def leaf(values, dtype="float64"):
    return mg.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


def test_chain_of_ten_thousand_ops_needs_no_recursion():
    x = leaf(1.0)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 10_000, rel=1e-9)


def test_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3.0 + 2 * np.array([1.0, 2.0]))


def test_a_tensor_used_twice_gets_both_gradients():
    x = leaf(3.0)
    y = x * x + x  # dy/dx = 2x + 1
    y.backward()
    assert x.grad.item() == 7.0


def test_shared_gradient_is_not_aliased_between_leaves():
    a, b = leaf([1.0]), leaf([2.0])
    (a + b).sum().backward()  # Add hands the same gradient to both inputs
    a.grad.data *= 10  # e.g. gradient clipping in place
    assert b.grad.item() == 1.0


def test_graph_is_freed_and_second_backward_is_a_clear_error():
    x = leaf([1.0, 2.0])
    y = (x.exp() * 2).sum()
    y.backward()
    assert y.creator.__dict__.get("inputs") is None  # nothing of the graph is held any more
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (2 * x.numpy()))


def test_backward_on_non_scalar_needs_a_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"shape \(2,\) needs a gradient"):
        (x * 2).backward()
    (x * 2).backward(mg.tensor([1.0, 1.0], dtype="float64"))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_backward_without_graph_is_a_clear_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).sum().backward()


def test_no_grad_records_nothing_and_restores_state_after_errors():
    x = leaf([1.0])
    with mg.no_grad():
        y = x * 2
    assert not y.requires_grad and y.creator is None
    with pytest.raises(ZeroDivisionError):
        with mg.no_grad():
            raise ZeroDivisionError
    assert mg.is_grad_enabled()

    @mg.no_grad()
    def doubled(t):
        return t * 2

    assert not doubled(x).requires_grad and mg.is_grad_enabled()


def test_requires_grad_propagates_and_detach_cuts():
    x, c = leaf([1.0]), mg.tensor([2.0])
    assert (x * c).requires_grad and not (c * c).requires_grad
    assert not x.detach().requires_grad


def test_in_place_change_of_a_saved_input_is_caught_at_backward():
    w, a = leaf([1.0, 2.0]), mg.tensor([3.0, 4.0], dtype="float64")
    y = (w * a).sum()  # Mul saves a for w's gradient
    a.add_(1.0)
    with pytest.raises(RuntimeError, match="Mul: input 1 .* modified in place"):
        y.backward()


def test_in_place_change_of_a_saved_output_is_caught():
    x = leaf([0.5])
    e = x.exp()
    with mg.no_grad():
        e.mul_(2.0)
    with pytest.raises(RuntimeError, match="Exp: its output .* modified in place"):
        e.sum().backward()


def test_in_place_change_of_an_unsaved_input_is_fine():
    x, b = leaf([1.0]), mg.tensor([2.0], dtype="float64")
    y = (x + b).sum()  # Add needs neither input's value
    b.add_(1.0)
    y.backward()
    assert x.grad.item() == 1.0


def test_in_place_on_a_tensor_requiring_grad_is_refused():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="in-place change of a tensor that requires grad"):
        x += 1
    with mg.no_grad():
        x += 1
    assert x.item() == 2.0


def test_create_graph_gives_second_derivatives():
    x = leaf(2.0)
    y = x ** 3
    (gx,) = mg.grad(y, [x], create_graph=True)  # 3x^2
    (gxx,) = mg.grad(gx, [x])  # 6x
    assert gx.item() == pytest.approx(12.0) and gxx.item() == pytest.approx(12.0)


def test_hessian_vector_product_matches_the_hessian():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    hessian = a + a.T
    x, v = leaf(rng.normal(size=3)), mg.tensor(rng.normal(size=3))
    f = (x @ mg.tensor(a) @ x)  # x^T A x, Hessian A + A^T
    (g,) = mg.grad(f, [x], create_graph=True)
    (hv,) = mg.grad((g * v).sum(), [x])
    np.testing.assert_allclose(hv.numpy(), hessian @ v.numpy(), rtol=1e-10)


def test_newton_step_finds_the_minimum_of_a_scalar_function():
    x = leaf(3.0)  # f(x) = x^4 - 3x^2 + x: Newton converges to the local minimum near 1.13
    for _ in range(20):
        f = x ** 4 - 3 * x ** 2 + x
        (g,) = mg.grad(f, [x], create_graph=True)
        (h,) = mg.grad(g, [x])
        x = leaf(x.item() - g.item() / h.item())
    assert 4 * x.item() ** 3 - 6 * x.item() + 1 == pytest.approx(0.0, abs=1e-10)


def test_backward_without_create_graph_records_no_graph_in_gradients():
    x = leaf([1.0, 2.0])
    (x.tanh() * x).sum().backward()
    assert x.grad.creator is None and not x.grad.requires_grad


def test_grad_does_not_touch_dot_grad():
    x = leaf([1.0])
    (g,) = mg.grad((x * 5).sum(), [x])
    assert g.item() == 5.0 and x.grad is None


def test_unused_input_is_an_error_unless_allowed():
    x, unused = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match="not used"):
        mg.grad((x * 2).sum(), [x, unused])
    assert mg.grad((x * 2).sum(), [x, unused], allow_unused=True)[1] is None


def test_hook_sees_and_can_replace_the_gradient():
    x = leaf([1.0, 2.0])
    y = x * 3
    seen = []
    y.register_hook(lambda g: seen.append(g.numpy()))
    y.register_hook(lambda g: g * 0.5)  # halve what flows back to x
    y.sum().backward()
    np.testing.assert_allclose(seen[0], [1.0, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), [1.5, 1.5])


def test_hook_handle_removes_the_hook():
    x = leaf([1.0])
    handle = x.register_hook(lambda g: g * 0)
    handle.remove()
    (x * 2).sum().backward()
    assert x.grad.item() == 2.0


def test_retain_grad_keeps_an_intermediate_gradient():
    x = leaf([1.0, 2.0])
    y = (x * 2).retain_grad()
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), 2 * y.numpy())
    assert (x * 2).grad is None


def test_multi_output_op_with_an_unused_output():
    x = leaf(np.arange(6.0))
    first, _ = mg.split(x, [2, 4])
    (first * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 2, 0, 0, 0, 0])


def test_float32_stays_float32_through_forward_and_backward():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (2 * x + 1.5) ** 2 / 3 - x.exp()
    y.sum().backward()
    assert y.dtype == mg.float32 and x.grad.dtype == mg.float32


def test_mixed_precision_gradient_comes_back_in_the_input_dtype():
    x32 = mg.tensor([1.0], requires_grad=True)
    x64 = leaf([2.0])
    (x32 * x64).sum().backward()
    assert x32.grad.dtype == mg.float32 and x32.grad.item() == 2.0


def test_an_op_whose_backward_is_missing_says_so():
    class NoBackward(Function):
        def forward(self, x):
            return x * 1

    x = leaf([1.0])
    with pytest.raises(NotImplementedError):
        NoBackward()(x).sum().backward()


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        mg.tensor([1, 2], requires_grad=True)


def test_tensor_defaults_and_conversions():
    assert mg.tensor([1.0, 2.0]).dtype == mg.float32
    assert mg.tensor([1, 2]).dtype == mg.int64
    assert mg.tensor(np.zeros(2)).dtype == mg.float64  # arrays keep their dtype
    assert mg.tensor([1.0], dtype="float64").dtype == mg.float64
    x = mg.tensor([[1.0, 2.0]])
    assert x.T.shape == (2, 1) and x.numpy().shape == (1, 2) and x.sum().item() == 3.0
    assert isinstance(np.ones(2) * mg.tensor([1.0, 2.0]), mg.Tensor)


def test_numpy_returns_a_copy():
    x = mg.tensor([1.0])
    x.numpy()[0] = 5.0
    assert x.item() == 1.0


def test_device_moves_and_mixing_devices(device):
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    assert x.device == device
    y = x.to("cpu") * 2
    y.sum().backward()
    assert x.grad.device == device
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_cuda_without_a_gpu_explains_how_to_fix_it():
    if mg.cuda_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CuPy"):
        mg.tensor([1.0], device="cuda")


def test_unknown_device_is_named():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        mg.tensor([1.0], device="tpu")


def test_manual_seed_repeats_random_tensors():
    mg.manual_seed(123)
    a = mg.randn(3, 4)
    mg.manual_seed(123)
    b = mg.randn(3, 4)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), mg.randn(3, 4).numpy())


def test_in_place_edit_through_a_view_is_caught():
    x = leaf([1.0, 2.0, 3.0])
    y = (x * 2.0).reshape(3, 1)
    z = (y * y).sum()  # Mul saves y
    with mg.no_grad():
        (x * 2.0).reshape(-1)  # an unrelated view: nothing happens
        y.reshape(-1).mul_(10.0)  # edits y through a view
    with pytest.raises(RuntimeError, match="modified in place"):
        z.backward()


def test_slices_share_the_version_but_fancy_indexing_copies():
    x = mg.tensor([1.0, 2.0, 3.0])
    x[1:].add_(1.0)
    assert x._version == 1
    x[[0, 1]].add_(1.0)  # a copy: x is untouched
    assert x._version == 1 and x.numpy().tolist() == [1.0, 3.0, 4.0]


def test_grad_stops_at_the_requested_inputs():
    x = leaf([1.0, 2.0])
    hidden = x * 3.0
    calls = []
    x.register_hook(lambda g: calls.append("x"))
    (g,) = mg.grad((hidden * hidden).sum(), [hidden])
    np.testing.assert_allclose(g.numpy(), 2 * hidden.numpy())
    assert calls == []  # nothing flowed past `hidden` to x


def test_numpy_scalars_keep_their_dtype():
    assert mg.tensor(np.float64(1.5)).dtype == mg.float64
    assert mg.tensor(np.float32(1.5)).dtype == mg.float32


def test_in_place_change_of_a_fused_softmax_output_is_caught():
    x = leaf([0.5, 1.0])
    s = mg.softmax(x)
    loss = s[1:].sum()  # slicing and summing keep no copy of s: only Softmax reads it
    with mg.no_grad():
        s.mul_(2.0)
    with pytest.raises(RuntimeError, match="Softmax: its output .* modified in place"):
        loss.backward()
