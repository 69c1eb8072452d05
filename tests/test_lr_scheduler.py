"""torch.optim's conventions: lr positional, editable param_groups, and the schedulers of
minigrad.optim.lr_scheduler checked against their formulas, step by step, and across a
state_dict round trip."""
import math

import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import Parameter
from minigrad.optim import SGD, Adam, AdamW, lr_scheduler


def params():
    return [Parameter(mg.ones(3))]


def lrs(optimizer, scheduler, steps):
    seen = [optimizer.param_groups[0]["lr"]]
    for _ in range(steps - 1):
        optimizer.step()
        scheduler.step()
        seen.append(optimizer.param_groups[0]["lr"])
    assert scheduler.get_last_lr()[0] == seen[-1]
    return seen


def test_lr_is_positional_and_param_groups_are_editable():
    p = params()
    optimizer = SGD(p, 0.5)
    assert optimizer.param_groups[0]["lr"] == 0.5
    p[0].grad = mg.ones(3)
    optimizer.param_groups[0]["lr"] = 0.25  # the next step uses it
    optimizer.step()
    np.testing.assert_allclose(p[0].numpy(), 0.75)
    extra = Parameter(mg.ones(2))
    optimizer.add_param_group({"params": [extra], "lr": 1.0})
    extra.grad = mg.ones(2)
    optimizer.step()
    np.testing.assert_allclose(extra.numpy(), 0.0)
    with pytest.raises(TypeError, match=r"unknown hyperparameters \['amsgrad'\]"):
        Adam(params(), 1e-3, amsgrad=True)


@pytest.mark.parametrize("make, formula", [
    (lambda o: lr_scheduler.LambdaLR(o, lambda t: 1 / (t + 1)), lambda t: 0.1 / (t + 1)),
    (lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.5), lambda t: 0.1 * 0.5 ** (t // 3)),
    (lambda o: lr_scheduler.MultiStepLR(o, [2, 5], gamma=0.1),
     lambda t: 0.1 * 0.1 ** ((t >= 2) + (t >= 5))),
    (lambda o: lr_scheduler.ExponentialLR(o, 0.9), lambda t: 0.1 * 0.9 ** t),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=6, eta_min=0.01),
     lambda t: 0.01 + (0.1 - 0.01) * (1 + math.cos(math.pi * t / 6)) / 2),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0.25, total_iters=4),
     lambda t: 0.1 * (0.25 + 0.75 * min(t, 4) / 4)),
    (lambda o: lr_scheduler.ConstantLR(o, factor=0.5, total_iters=3),
     lambda t: 0.1 * (0.5 if t < 3 else 1.0)),
], ids=["LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
        "ConstantLR"])
def test_schedulers_follow_their_formulas(make, formula):
    optimizer = SGD(params(), lr=0.1)
    got = lrs(optimizer, make(optimizer), 12)
    np.testing.assert_allclose(got, [formula(t) for t in range(12)], rtol=1e-12)


def test_sequential_lr_warms_up_then_decays_from_its_own_start():
    optimizer = AdamW(params(), lr=1.0)
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=3)
    decay = lr_scheduler.CosineAnnealingLR(optimizer, T_max=5)
    scheduler = lr_scheduler.SequentialLR(optimizer, [warmup, decay], milestones=[3])
    want = [0.1 + 0.9 * t / 3 for t in range(3)] + [
        (1 + math.cos(math.pi * s / 5)) / 2 for s in range(6)]
    np.testing.assert_allclose(lrs(optimizer, scheduler, 9), want, rtol=1e-12)


def test_one_cycle_lr_follows_the_1cycle_formula_and_cycles_beta1():
    optimizer = AdamW(params(), lr=0.5)
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=10)
    start, low = 1.0 / 25, 1.0 / 25 / 1e4
    up_end = 0.3 * 10 - 1

    def cos(a, b, pct):
        return b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)

    want = [cos(start, 1.0, t / up_end) if t <= up_end else
            cos(1.0, low, (t - up_end) / (9 - up_end)) for t in range(10)]
    np.testing.assert_allclose(lrs(optimizer, scheduler, 10), want, rtol=1e-12)
    assert optimizer.param_groups[0]["betas"][0] == pytest.approx(0.95)  # back at max momentum
    with pytest.raises(ValueError, match="total_steps is 10"):
        scheduler.step()


def test_a_restored_scheduler_continues_exactly():
    first = SGD(params(), lr=0.1)
    scheduler = lr_scheduler.CosineAnnealingLR(first, T_max=10)
    for _ in range(4):
        scheduler.step()
    second = SGD(params(), lr=0.1)
    restored = lr_scheduler.CosineAnnealingLR(second, T_max=10)
    restored.load_state_dict(scheduler.state_dict())
    for _ in range(3):
        scheduler.step()
        restored.step()
        assert restored.get_last_lr() == scheduler.get_last_lr()
    assert second.param_groups[0]["lr"] == first.param_groups[0]["lr"]
