"""Looking inside a run: detect_anomaly names the op and YOUR line, the profiler counts
calls per op and phase, and gradient hooks change what flows back through attention."""
import numpy as np
import pytest
from model_helpers import to_float64

import minigrad as mg
from minigrad import autograd
from models.attention import SelfAttention


def line_of(marker):
    """The line number in this file of the line that contains `marker`."""
    with open(__file__, encoding="utf-8") as source:
        for number, line in enumerate(source, start=1):
            if marker in line and "line_of(" not in line:
                return number
    raise LookupError(marker)


# --- detect_anomaly -----------------------------------------------------------------------

def test_anomaly_in_forward_names_the_op_and_the_users_line():
    x = mg.tensor([1.0, -2.0], dtype=np.float64, requires_grad=True)
    with np.errstate(invalid="ignore"), pytest.raises(mg.autograd.AnomalyError) as caught:
        with mg.detect_anomaly():
            y = x.log()  # marker: log of a negative number
            y.sum().backward()
    message = str(caught.value)
    assert message.startswith("Log produced NaN or Inf in its forward pass")
    assert f"{__file__}:{line_of('marker: log of a negative')}" in message
    assert "y = x.log()" in message  # the source line itself


def test_anomaly_in_backward_names_the_op_being_differentiated_and_where_it_was_made():
    x = mg.tensor([0.0, 4.0], dtype=np.float64, requires_grad=True)
    with np.errstate(divide="ignore"), pytest.raises(mg.autograd.AnomalyError) as caught:
        with mg.detect_anomaly():
            y = x.sqrt()  # marker: sqrt at 0, fine forward, infinite slope
            y.sum().backward()
    message = str(caught.value)
    # the Div inside Sqrt's backward made the Inf, but the op to blame is Sqrt
    assert message.startswith("Sqrt produced NaN or Inf in its backward pass")
    assert f"{__file__}:{line_of('marker: sqrt at 0')}" in message


def test_without_anomaly_mode_a_nan_passes_silently():
    x = mg.tensor([-1.0], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        assert np.isnan(x.log().item())


def test_anomaly_mode_is_switched_off_again_after_an_error():
    with pytest.raises(RuntimeError):
        with mg.detect_anomaly():
            raise RuntimeError("boom")
    assert autograd._anomaly_enabled is False


# --- profile ------------------------------------------------------------------------------

def table_row(table, name, phase):
    """The calls column of the (name, phase) row of Profiler.table(), or None."""
    for line in table.splitlines():
        fields = line.split()
        if fields[:2] == [name, phase]:
            return int(fields[2])
    return None


def test_profiler_counts_calls_per_op_and_phase():
    a = mg.randn(4, 4, requires_grad=True)
    with mg.profile() as forward_profile:
        y = ((a @ a) @ a) @ a  # 3 matmuls
    assert forward_profile.calls[("MatMul", "forward")] == 3
    assert ("MatMul", "backward") not in forward_profile.calls
    with mg.profile() as backward_profile:
        y.sum().backward()
    assert backward_profile.calls[("MatMul", "backward")] == 3
    # a backward is written with minigrad ops: each MatMul's backward runs two
    # matmuls of its own (dA = dC @ B.T, dB = A.T @ dC), counted as forward calls
    assert backward_profile.calls[("MatMul", "forward")] == 6


def test_profiler_table_lists_each_op_and_phase_with_its_calls():
    a = mg.randn(4, 4, requires_grad=True)
    with mg.profile() as profile:
        ((a @ a) @ a).tanh().sum().backward()
    table = profile.table()
    assert table.splitlines()[0].split()[:3] == ["op", "phase", "calls"]
    assert table_row(table, "MatMul", "backward") == 2
    assert table_row(table, "Tanh", "forward") == 1
    assert table_row(table, "Tanh", "backward") == 1
    assert table.splitlines()[-1].startswith("profiled wall time:")


def test_profiler_stops_counting_when_the_block_ends():
    a = mg.randn(2, 2)
    with mg.profile() as profile:
        a @ a
    a @ a
    assert profile.calls[("MatMul", "forward")] == 1
    assert autograd._profiler is None


# --- hooks through an attention layer -------------------------------------------------------

def attention_gradients(hook=None):
    """Gradients of one float64 SelfAttention head, with `hook` on its attention weights."""
    mg.manual_seed(0)
    head = to_float64(SelfAttention(6, 3))
    x = mg.randn(1, 4, 6).double().requires_grad_()
    out, weights = head(x, return_weights=True)
    if hook is not None:
        weights.register_hook(hook)
    (out * mg.arange(12).reshape(4, 3).double()).sum().backward()
    grads = {name: p.grad.numpy() for name, p in head.named_parameters()}
    return grads, x.grad.numpy()


def test_a_hook_on_the_attention_weights_changes_the_gradient_upstream_of_them():
    plain, plain_x = attention_gradients()
    doubled, doubled_x = attention_gradients(lambda g: g * 2.0)
    # query and key reach the loss only through the weights: their gradients double
    for name in ("query.weight", "query.bias", "key.weight"):
        np.testing.assert_allclose(doubled[name], 2.0 * plain[name], rtol=1e-12, atol=1e-15)
    # value reaches it through weights @ v's other operand: untouched
    np.testing.assert_array_equal(doubled["value.weight"], plain["value.weight"])
    assert not np.allclose(doubled_x, plain_x)


def test_a_hook_that_zeroes_the_attention_weights_gradient_stops_query_and_key_learning():
    blocked, _ = attention_gradients(lambda g: g * 0.0)
    assert not blocked["query.weight"].any() and not blocked["key.weight"].any()
    assert blocked["value.weight"].any()


def test_a_hook_sees_the_gradient_of_the_attention_weights():
    seen = []
    attention_gradients(lambda g: seen.append(g.numpy()))  # returns None: gradient unchanged
    assert len(seen) == 1 and seen[0].shape == (1, 4, 4)
