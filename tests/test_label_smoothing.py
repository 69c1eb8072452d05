"""cross_entropy(..., label_smoothing=eps), PyTorch's definition, against its formula.

PyTorch: the target of each counted row becomes q = (1 - eps) * onehot(t) + eps / C,
the row's loss is -sum_c q_c log softmax(x)_c, and the mean runs over the rows whose
target is not ignore_index. The reference below writes that out in NumPy (float64),
independently of minigrad's rearranged form (1 - eps) * nll + eps * mean(-log p).
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_ops import checks, cross_entropy_shapes, seeds

import minigrad as mg
from minigrad.ops.nn import CrossEntropy


def np_smoothed_cross_entropy(logits, targets, eps, ignore_index=-100):
    classes = logits.shape[-1]
    x = logits.reshape(-1, classes)
    log_p = x - x.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    t = targets.reshape(-1)
    valid = t != ignore_index
    q = np.full(x.shape, eps / classes)
    q[np.arange(len(t)), np.where(valid, t, 0)] += 1.0 - eps
    row_loss = -(q * log_p).sum(axis=1)
    return (row_loss * valid).sum() / valid.sum()


def np_smoothed_grad(logits, targets, eps, ignore_index=-100):  # (softmax - q) / count
    classes = logits.shape[-1]
    x = logits.reshape(-1, classes)
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    t = targets.reshape(-1)
    valid = t != ignore_index
    q = np.full(x.shape, eps / classes)
    q[np.arange(len(t)), np.where(valid, t, 0)] += 1.0 - eps
    return ((p - q) * valid[:, None] / valid.sum()).reshape(logits.shape)


def smoothing_inputs(rng, logits_shape, targets_shape, ignore_index=-100):
    targets = rng.integers(0, logits_shape[-1], size=targets_shape)
    targets[rng.random(targets_shape) < 0.3] = ignore_index
    targets.reshape(-1)[0] = rng.integers(0, logits_shape[-1])  # at least one row counts
    return rng.normal(size=logits_shape), targets


eps_values = st.sampled_from([0.0, 0.1, 0.5, 1.0]) | st.floats(0.0, 1.0)


@checks
@given(draw=cross_entropy_shapes(2, -1), eps=eps_values, seed=seeds)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_label_smoothing_matches_the_formula(draw, eps, seed, dtype):
    x, t = smoothing_inputs(np.random.default_rng(seed), *draw.shapes, ignore_index=-1)
    logits = mg.tensor(x.astype(dtype), requires_grad=True)
    loss = mg.cross_entropy(logits, mg.tensor(t), ignore_index=-1, label_smoothing=eps)
    loss.backward()
    tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    x = x.astype(dtype).astype(np.float64)
    assert loss.dtype == dtype and logits.grad.dtype == dtype
    np.testing.assert_allclose(loss.item(), np_smoothed_cross_entropy(x, t, eps, -1), **tolerance)
    np.testing.assert_allclose(logits.grad.numpy(), np_smoothed_grad(x, t, eps, -1), **tolerance)


@checks
@given(draw=cross_entropy_shapes(2), eps=eps_values, seed=seeds)
def test_label_smoothing_gradcheck_and_gradgradcheck(draw, eps, seed):
    x, t = smoothing_inputs(np.random.default_rng(seed), *draw.shapes)
    targets = mg.tensor(t)

    def loss(logits):
        return mg.cross_entropy(logits, targets, label_smoothing=eps)

    mg.gradcheck(loss, [mg.tensor(x, requires_grad=True)])
    mg.gradgradcheck(loss, [mg.tensor(x, requires_grad=True)])


@checks
@given(draw=cross_entropy_shapes(2), eps=eps_values, seed=seeds)
def test_label_smoothing_fused_equals_its_composite(draw, eps, seed):
    x, t = smoothing_inputs(np.random.default_rng(seed), *draw.shapes)
    fused_in = mg.tensor(x, requires_grad=True)
    op = CrossEntropy(-100, eps)
    fused = op(fused_in, mg.tensor(t))  # backward: backward_arrays on raw arrays
    composite_in = mg.tensor(x, requires_grad=True)
    composite = op.composite(composite_in, mg.tensor(t))  # reads what forward saved
    fused.backward()
    composite.backward()
    np.testing.assert_allclose(fused.item(), composite.item(), rtol=1e-12)
    np.testing.assert_allclose(fused_in.grad.numpy(), composite_in.grad.numpy(), rtol=1e-10,
                               atol=1e-14)


def test_label_smoothing_by_hand():
    # two classes, logits (0, 0): log p = log 1/2 for both; eps only moves weight between
    # equal terms, so the loss stays log 2; with logits (log 3, 0) p = (3/4, 1/4)
    assert mg.cross_entropy(mg.tensor([[0.0, 0.0]]), mg.tensor([0]),
                            label_smoothing=0.3).item() == pytest.approx(np.log(2))
    loss = mg.cross_entropy(mg.tensor([[np.log(3.0), 0.0]]), mg.tensor([0]), label_smoothing=0.2)
    # q = (0.9, 0.1): -(0.9 log 3/4 + 0.1 log 1/4)
    assert loss.item() == pytest.approx(-(0.9 * np.log(0.75) + 0.1 * np.log(0.25)), rel=1e-6)


def test_zero_smoothing_is_the_plain_loss():
    rng = np.random.default_rng(0)
    x, t = smoothing_inputs(rng, (3, 4, 5), (3, 4))
    plain = mg.cross_entropy(mg.tensor(x), mg.tensor(t)).item()
    assert mg.cross_entropy(mg.tensor(x), mg.tensor(t), label_smoothing=0.0).item() == plain


@pytest.mark.parametrize("eps", [-0.1, 1.5, float("nan")])
def test_label_smoothing_outside_0_1_is_refused(eps):
    with pytest.raises(ValueError, match="label_smoothing must be in \\[0, 1\\]"):
        mg.cross_entropy(mg.tensor([[0.0, 1.0]]), mg.tensor([1]), label_smoothing=eps)
