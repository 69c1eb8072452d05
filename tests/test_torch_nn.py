"""minigrad.nn as torch.nn: Sequential, the activation and loss modules, Module's torch
methods (apply, modules, children, requires_grad_, to(dtype), buffers, zero_grad), the
repr, and minigrad.nn.init's distributions."""
import math

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
import minigrad.nn.init as init
from models import Linear as ModelsLinear


def mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_sequential_runs_its_modules_in_order_with_torch_names():
    model = mlp()
    assert [name for name, _ in model.named_parameters()] == [
        "0.weight", "0.bias", "2.weight", "2.bias"]
    x = mg.randn(5, 4)
    manual = model[2](model[1](model[0](x)))
    np.testing.assert_array_equal(model(x).numpy(), manual.numpy())
    assert len(model) == 3 and isinstance(model[1:], nn.Sequential)
    named = nn.Sequential({"first": nn.Linear(2, 2), "act": nn.Tanh()})
    assert [n for n, _ in named.named_parameters()] == ["first.weight", "first.bias"]


def test_models_keeps_its_layer_names():
    assert ModelsLinear is nn.Linear


def test_activation_modules_match_the_functions():
    x = mg.randn(3, 4)
    for module, fn in [(nn.ReLU(), F.relu), (nn.Tanh(), F.tanh), (nn.Sigmoid(), F.sigmoid),
                       (nn.SiLU(), F.silu), (nn.Softmax(dim=0), lambda t: F.softmax(t, 0)),
                       (nn.LeakyReLU(0.2), lambda t: F.leaky_relu(t, 0.2)),
                       (nn.Identity(7), lambda t: t), (nn.GELU(), F.gelu),
                       (nn.Flatten(), lambda t: t.reshape(3, 4))]:
        np.testing.assert_array_equal(module(x).numpy(), fn(x).numpy(), err_msg=repr(module))


def test_loss_modules_match_the_functions():
    logits, targets = mg.randn(4, 3), mg.tensor([0, 2, 1, 2])
    assert nn.CrossEntropyLoss()(logits, targets).item() == F.cross_entropy(logits, targets).item()
    x, y = mg.randn(4), mg.rand(4)
    assert nn.MSELoss(reduction="sum")(x, y).item() == F.mse_loss(x, y, reduction="sum").item()
    assert nn.BCEWithLogitsLoss()(x, y).item() == F.binary_cross_entropy_with_logits(x, y).item()


def test_apply_modules_children_and_requires_grad():
    model = mlp()
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "ReLU", "Linear", "Sequential"]  # children first, as torch
    assert len(model.modules()) == 4 and len(model.children()) == 3
    assert [name for name, _ in model.named_children()] == ["0", "1", "2"]
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())


def test_to_dtype_and_half_float_double():
    model = mlp()
    assert model.double()[0].weight.dtype == np.float64
    assert model.to(mg.float16)[2].bias.dtype == np.float16
    assert model.float()[0].weight.dtype == np.float32
    assert model.to("cpu", mg.float64)[0].weight.dtype == np.float64


def test_zero_grad_sets_to_none_or_zeros():
    model = mlp()
    model(mg.randn(2, 4)).sum().backward()
    model.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


class Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 2)
        self.register_buffer("calls", mg.zeros(1))
        self.register_buffer("scratch", mg.zeros(3), persistent=False)

    def forward(self, x):
        with mg.no_grad():
            self.calls += 1
        return self.linear(x)


def test_buffers_are_saved_moved_and_never_trained(tmp_path):
    model = Counter()
    model(mg.randn(1, 2))
    state = model.state_dict()
    assert set(state) == {"linear.weight", "linear.bias", "calls"}  # not the scratch
    assert state["calls"][0] == 1
    assert len(model.parameters()) == 2 and len(model.buffers()) == 2
    other = Counter()
    other.load_state_dict(state)
    assert other.calls.item() == 1
    assert model.double().calls.dtype == np.float64
    with pytest.raises(TypeError, match="needs a Tensor or None"):
        model.register_buffer("bad", [1, 2])


def test_repr_shows_extra_repr_of_every_module():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(2, 3, bias=False)

        def extra_repr(self):
            return "scale=2"

    text = repr(Scaled())
    assert text.splitlines()[:3] == ["Scaled(", "  scale=2",
                                     "  (inner): Linear(in_features=2, out_features=3, bias=False)"]


def test_module_dict_and_list_behave_like_containers():
    blocks = nn.ModuleDict({"a": nn.Linear(1, 1)}, b=nn.ReLU())
    blocks["c"] = nn.Tanh()
    assert list(blocks.keys()) == ["a", "b", "c"] and "b" in blocks and len(blocks) == 3
    layers = nn.ModuleList([nn.ReLU()])
    layers.extend([nn.Tanh()])
    layers.insert(0, nn.Linear(1, 1))
    assert [type(m).__name__ for m in layers] == ["Linear", "ReLU", "Tanh"]


@pytest.mark.parametrize("fill, bound_or_std", [
    (lambda w: init.xavier_uniform_(w), ("uniform", math.sqrt(6 / (200 + 300)))),
    (lambda w: init.xavier_normal_(w), ("normal", math.sqrt(2 / (200 + 300)))),
    (lambda w: init.kaiming_uniform_(w, nonlinearity="relu"),
     ("uniform", math.sqrt(3) * math.sqrt(2) / math.sqrt(200))),
    (lambda w: init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"),
     ("normal", math.sqrt(2) / math.sqrt(300))),
])
def test_init_draws_from_the_stated_distribution(fill, bound_or_std):
    w = nn.Parameter(mg.zeros(300, 200))
    fill(w)
    values = w.numpy().ravel()
    kind, scale = bound_or_std
    if kind == "uniform":  # bound b: |w| <= b, std b / sqrt(3)
        assert np.abs(values).max() <= scale and np.abs(values).max() > 0.99 * scale
        expected_std = scale / math.sqrt(3)
    else:
        expected_std = scale
    n = values.size  # the std of a sample std is about std / sqrt(2n); 6 of those wide
    assert abs(values.std() - expected_std) < 6 * expected_std / math.sqrt(2 * n)
    assert abs(values.mean()) < 6 * expected_std / math.sqrt(n)


def test_init_helpers_and_gain():
    w = mg.zeros(2, 3)
    assert (init.ones_(w).numpy() == 1).all() and (init.constant_(w, 0.5).numpy() == 0.5).all()
    np.testing.assert_array_equal(init.eye_(w).numpy(), np.eye(2, 3))
    assert init.calculate_gain("tanh") == 5.0 / 3
    assert np.abs(init.trunc_normal_(mg.zeros(1000), std=1.0, a=-0.5, b=0.5).numpy()).max() <= 0.5
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform_(mg.zeros(3))
