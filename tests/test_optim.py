"""Optimizers against the update rules computed by hand in float64, and exact resume."""
import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend
from minigrad.nn import Module, Parameter
from minigrad.optim import SGD, Adam, AdamW, WarmupCosine, clip_grad_norm_, warmup_cosine

START = np.array([1.0, -2.0, 0.5])


COEFFICIENTS = np.array([1.0, 2.0, 3.0])


def quadratic_grad(p, coefficients=COEFFICIENTS):
    """Gradient of sum(p^2 * coefficients) (what the tests differentiate)."""
    return 2 * p * coefficients


def run(optimizer_class, steps, start=START, coefficients=COEFFICIENTS, **settings):
    p = Parameter(mg.tensor(start.copy()))
    opt = optimizer_class([p], **settings)
    for _ in range(steps):
        opt.zero_grad()
        (p * p * mg.tensor(coefficients)).sum().backward()
        opt.step()
    return p.numpy()


def reference_sgd(steps, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    p, buffer = START.copy(), None
    for _ in range(steps):
        g = quadratic_grad(p) + weight_decay * p
        if momentum:
            buffer = g.copy() if buffer is None else momentum * buffer + g
            g = g + momentum * buffer if nesterov else buffer
        p = p - lr * g
    return p


def reference_adam(steps, lr, betas, eps, weight_decay, decoupled, start=START,
                   coefficients=COEFFICIENTS):
    p, m, v = start.copy(), np.zeros_like(start), np.zeros_like(start)
    for t in range(1, steps + 1):
        g = quadratic_grad(p, coefficients)
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("settings", [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.5, weight_decay=0.01),
])
def test_sgd_matches_the_update_rule(settings):
    np.testing.assert_allclose(run(SGD, 4, **settings), reference_sgd(4, **settings), rtol=1e-12)


@pytest.mark.parametrize("optimizer_class, decoupled", [(Adam, False), (AdamW, True)])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_family_matches_the_update_rule(optimizer_class, decoupled, weight_decay):
    settings = dict(lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=weight_decay)
    np.testing.assert_allclose(run(optimizer_class, 5, **settings),
                               reference_adam(5, decoupled=decoupled, **settings), rtol=1e-12)


def test_adamw_on_a_parameter_larger_than_a_block():
    # on the CPU the update runs block by block, ending on a partial block
    rng = np.random.default_rng(0)
    start = rng.standard_normal((3, backend.BLOCK // 2 + 5))
    coefficients = rng.uniform(0.5, 3.0, start.shape)
    settings = dict(lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    got = run(AdamW, 3, start=start, coefficients=coefficients, **settings)
    want = reference_adam(3, decoupled=True, start=start, coefficients=coefficients, **settings)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_adamw_first_step_by_hand():
    # step 1: m_hat = g and v_hat = g^2, so the step is lr * sign(g); decay first shrinks p
    p = run(AdamW, 1, lr=0.1, weight_decay=0.5, eps=0.0)
    np.testing.assert_allclose(p, START * (1 - 0.05) - 0.1 * np.sign(START), rtol=1e-12)


def test_parameter_groups_skip_weight_decay():
    decayed, plain = Parameter(mg.tensor([1.0])), Parameter(mg.tensor([1.0]))
    opt = AdamW([{"params": [decayed], "weight_decay": 0.5},
                 {"params": [plain], "weight_decay": 0.0}], lr=0.1)
    decayed.grad = mg.zeros(1)
    plain.grad = mg.zeros(1)
    opt.step()  # zero gradient: only the decay moves anything
    assert decayed.item() == pytest.approx(0.95) and plain.item() == 1.0


def test_clip_grad_norm_scales_all_gradients_together():
    a, b = Parameter(mg.tensor([3.0])), Parameter(mg.tensor([4.0]))
    a.grad, b.grad = mg.tensor([3.0]), mg.tensor([4.0])
    norm = clip_grad_norm_([a, b], max_norm=1.0)
    assert norm == pytest.approx(5.0)
    assert a.grad.item() == pytest.approx(0.6, rel=1e-5) and b.grad.item() == pytest.approx(0.8, rel=1e-5)
    assert clip_grad_norm_([a, b], max_norm=10.0) == pytest.approx(1.0, rel=1e-5)
    assert a.grad.item() == pytest.approx(0.6, rel=1e-5)  # under the limit: unchanged


def test_warmup_then_cosine():
    assert warmup_cosine(0, 10, 110) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 110) == pytest.approx(1.0)
    assert warmup_cosine(60, 10, 110, min_ratio=0.0) == pytest.approx(0.5)
    assert warmup_cosine(110, 10, 110, min_ratio=0.1) == pytest.approx(0.1)
    p = Parameter(mg.tensor([1.0]))
    schedule = WarmupCosine(SGD([p], lr=2.0), warmup_steps=4, total_steps=8)
    assert schedule.get_last_lr() == [pytest.approx(0.5)]
    for _ in range(3):
        schedule.step()
    assert schedule.get_last_lr() == [pytest.approx(2.0)]


class TinyNet(Module):
    def __init__(self):
        super().__init__()
        self.w = Parameter(mg.randn(4, 3) * 0.5)
        self.b = Parameter(mg.zeros(3))

    def forward(self, x):
        return ((x @ self.w + self.b).tanh() ** 2).mean()


def train_steps(model, opt, schedule, batches):
    for x in batches:
        opt.zero_grad()
        model(x).backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()


def test_save_load_resume_is_bit_identical(tmp_path):
    mg.manual_seed(0)
    batches = [mg.randn(5, 4) for _ in range(6)]
    model = TinyNet()
    opt = AdamW(model.parameters(), lr=0.05)
    schedule = WarmupCosine(opt, 2, 6)
    train_steps(model, opt, schedule, batches[:3])
    state = opt.state_dict()
    model.save(tmp_path / "model.npz")
    train_steps(model, opt, schedule, batches[3:])  # the uninterrupted run

    resumed = TinyNet()
    resumed.load(tmp_path / "model.npz")
    resumed_opt = AdamW(resumed.parameters(), lr=0.05)
    resumed_opt.load_state_dict(state)
    resumed_schedule = WarmupCosine(resumed_opt, 2, 6)
    resumed_schedule.load_state_dict({"last_step": 3})
    train_steps(resumed, resumed_opt, resumed_schedule, batches[3:])
    for (name, p), q in zip(model.named_parameters(), resumed.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)


def test_optimizer_state_for_another_model_is_refused():
    opt = SGD([Parameter(mg.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match="parameter groups"):
        opt.load_state_dict({"param_groups": [{}, {}], "state": {}})
    with pytest.raises(ValueError, match="parameter 5"):
        opt.load_state_dict({"param_groups": [{"lr": 0.1}], "state": {"5.momentum_buffer": np.zeros(2)}})


def test_empty_parameter_list_is_an_error():
    with pytest.raises(ValueError, match="empty parameter list"):
        AdamW([])


def test_step_size_is_independent_of_gradient_scale():
    # Adam's first step is lr * sign(g) whatever |g| is: a property, not a number
    small, large = run(Adam, 1, lr=0.1, eps=0.0), None
    p = Parameter(mg.tensor(START.copy()))
    opt = Adam([p], lr=0.1, eps=0.0)
    p.grad = mg.tensor(quadratic_grad(START) * 1000.0)
    opt.step()
    large = p.numpy()
    np.testing.assert_allclose(small, large, rtol=1e-12)
    assert math.isclose(abs(small[0] - START[0]), 0.1, rel_tol=1e-9)


def test_adamw_updating_in_shares_across_threads_equals_one_thread(monkeypatch, pieces):
    # parameters of several sizes, split into two shares of about equal size
    from minigrad import threads
    shapes = [(300, 200), (7,), (150, 100), (1,), (90, 90)]
    results = []
    monkeypatch.setattr(AdamW, "parallel_from", 0)  # share even this small a model
    for count in (1, 2):
        monkeypatch.setattr(threads, "_workers", count)
        rng = np.random.default_rng(6)  # the same parameters at each count
        params = [mg.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]
        opt = mg.optim.AdamW(params, lr=0.01)
        grads = np.random.default_rng(7)
        for _ in range(3):
            for p in params:
                p.grad = mg.tensor(grads.standard_normal(p.shape))
            opt.step()
        results.append([p.numpy() for p in params])
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)
    assert pieces == [1, 1, 1, 2, 2, 2]
