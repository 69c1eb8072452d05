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
