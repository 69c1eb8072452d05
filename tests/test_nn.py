"""Module bookkeeping and checkpoints."""
import os

import numpy as np
import pytest

import minigrad as mg
from minigrad import checkpoint
from minigrad.checkpoint import CheckpointError, load_arrays, save_arrays
from minigrad.nn import Module, ModuleDict, ModuleList, Parameter


class Affine(Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = Parameter(mg.randn(n_out, n_in))
        self.bias = Parameter(mg.zeros(n_out))

    def forward(self, x):
        return x @ self.weight.T + self.bias


class Stack(Module):
    def __init__(self, tie=False):
        super().__init__()
        self.body = ModuleDict(inp=Affine(3, 4), h=ModuleList([Affine(4, 4), Affine(4, 4)]))
        self.head = Affine(4, 4)
        if tie:
            self.head.weight = self.body.h[0].weight

    def forward(self, x):
        x = self.body.inp(x)
        for layer in self.body.h:
            x = layer(x).tanh()
        return self.head(x)


def test_parameters_are_found_by_attribute_with_dotted_names():
    names = [name for name, _ in Stack().named_parameters()]
    assert names == ["body.inp.weight", "body.inp.bias", "body.h.0.weight", "body.h.0.bias",
                     "body.h.1.weight", "body.h.1.bias", "head.weight", "head.bias"]


def test_tied_parameter_is_listed_once_but_saved_under_both_names():
    model = Stack(tie=True)
    assert len(model.parameters()) == 7
    state = model.state_dict()
    assert "head.weight" in state and "body.h.0.weight" in state


def test_train_eval_reach_every_submodule():
    model = Stack().eval()
    assert all(not m.training for _, m in model.named_modules())
    model.train()
    assert all(m.training for _, m in model.named_modules())


def test_zero_grad_and_gradients_flow_to_every_parameter():
    model = Stack()
    model(mg.randn(2, 3)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_load_state_dict_reports_names_and_changes_nothing_on_error():
    model, other = Stack(), Stack()
    before = model.state_dict()
    state = other.state_dict()
    state.pop("head.bias")
    state["extra.weight"] = np.zeros(1)
    state["body.inp.weight"] = np.zeros((9, 9))
    with pytest.raises(ValueError) as error:
        model.load_state_dict(state)
    message = str(error.value)
    assert "missing: head.bias" in message and "unexpected: extra.weight" in message
    assert "shape of body.inp.weight: checkpoint (9, 9), model (4, 3)" in message
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


def test_save_and_load_round_trip(tmp_path):
    model, copy = Stack(), Stack()
    model.save(tmp_path / "m.npz", metadata={"note": "hi"})
    metadata = copy.load(tmp_path / "m.npz")
    assert metadata["note"] == "hi" and metadata["module"] == "Stack"
    x = mg.randn(2, 3)
    np.testing.assert_array_equal(model(x).numpy(), copy(x).numpy())


def test_a_crash_while_saving_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save_arrays(path, {"a": np.ones(3)})

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "_write_archive", crash)
    with pytest.raises(KeyboardInterrupt):
        save_arrays(path, {"a": np.zeros(3)})
    arrays, _ = load_arrays(path)
    np.testing.assert_array_equal(arrays["a"], np.ones(3))
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left behind


def test_truncated_foreign_and_missing_files_are_clear_errors(tmp_path):
    good = tmp_path / "good.npz"
    save_arrays(good, {"a": np.ones(1000)})
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_arrays(truncated)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.ones(2))
    with pytest.raises(CheckpointError, match="not a minigrad checkpoint"):
        load_arrays(foreign)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_arrays(tmp_path / "absent.npz")
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(CheckpointError):
        load_arrays(text)


def test_loading_a_checkpoint_of_another_model_names_the_problem(tmp_path):
    Affine(3, 4).save(tmp_path / "a.npz")
    with pytest.raises(CheckpointError, match="shape of weight"):
        Affine(5, 4).load(tmp_path / "a.npz")


def test_repr_shows_the_tree():
    text = repr(Stack())
    assert "(body): ModuleDict(" in text and "(0): Affine" in text


# --- forward hooks ------------------------------------------------------------------------

def test_forward_hook_sees_each_layers_output_and_can_be_removed():
    model = Stack()
    x = mg.randn(2, 3)
    seen = []
    handles = [layer.register_forward_hook(lambda m, args, out: seen.append((m, args, out)))
               for layer in model.body.h]
    y = model(x)
    assert [m for m, _, _ in seen] == list(model.body.h)
    first_in = model.body.inp(x)
    np.testing.assert_allclose(seen[0][1][0].numpy(), first_in.numpy(), rtol=1e-6)
    np.testing.assert_allclose(seen[0][2].numpy(), model.body.h[0](first_in).numpy(), rtol=1e-6)
    for handle in handles:
        handle.remove()
    handles[0].remove()  # a second remove is harmless
    seen.clear()
    np.testing.assert_allclose(model(x).numpy(), y.numpy(), rtol=1e-6)
    assert seen == []


def test_forward_hook_return_replaces_output_and_gradients_follow():
    layer = Affine(3, 2)
    x = mg.randn(4, 3, requires_grad=True)
    with layer.register_forward_hook(lambda m, args, out: out * 3.0):
        y = layer(x)
    plain = layer(x)
    np.testing.assert_allclose(y.numpy(), 3.0 * plain.numpy(), rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3.0 * np.ones((4, 2)) @ layer.weight.numpy(),
                               rtol=1e-5)


def test_forward_pre_hook_replaces_arguments_and_runs_before_the_forward_hook():
    layer = Affine(3, 3)
    order = []
    layer.register_forward_pre_hook(lambda m, args: order.append("pre") or (args[0] * 0.0,))
    layer.register_forward_hook(lambda m, args, out: order.append(("post", args[0].numpy().sum())))
    y = layer(mg.ones(2, 3))
    assert order == ["pre", ("post", 0.0)]
    np.testing.assert_allclose(y.numpy(), np.broadcast_to(layer.bias.numpy(), (2, 3)))


def test_forward_hook_must_be_callable_and_does_not_change_the_state_dict():
    layer = Affine(2, 2)
    with pytest.raises(TypeError, match="callable"):
        layer.register_forward_hook("not a function")
    before = sorted(layer.state_dict())
    layer.register_forward_hook(lambda m, a, o: None)
    assert sorted(layer.state_dict()) == before and list(layer.named_children()) == []
