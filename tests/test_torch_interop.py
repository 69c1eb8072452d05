"""minigrad.save / minigrad.load (torch.save's job, pickle-free), minigrad.cuda,
Generator.manual_seed, __all__ everywhere, and minigrad.gradcheck as module and function."""
import importlib
import pkgutil

import numpy as np
import pytest

import minigrad as mg
from minigrad.checkpoint import CheckpointError
from minigrad.nn import Parameter


def test_save_and_load_nested_structures(tmp_path):
    path = tmp_path / "ckpt.npz"
    weight = Parameter(mg.randn(2, 3))
    obj = {"model": {"w": weight, "b": mg.zeros(3, dtype=mg.float64)},
           "optim": {"param_groups": [{"lr": 0.1, "betas": (0.9, 0.99), "nesterov": False}],
                     "state": {0: {"step": np.asarray(7), "exp_avg": np.ones(3)}}},
           "history": [1.5, None, "text", float("inf")], "epoch": np.int64(4)}
    mg.save(obj, path)
    back = mg.load(path)
    assert isinstance(back["model"]["w"], Parameter) and back["model"]["w"].requires_grad
    np.testing.assert_array_equal(back["model"]["w"].numpy(), weight.numpy())
    assert back["model"]["b"].dtype == np.float64
    assert back["optim"]["param_groups"] == [{"lr": 0.1, "betas": (0.9, 0.99), "nesterov": False}]
    assert back["optim"]["state"][0]["step"] == 7  # an int key stays an int
    np.testing.assert_array_equal(back["optim"]["state"][0]["exp_avg"], np.ones(3))
    assert back["history"] == [1.5, None, "text", float("inf")] and back["epoch"] == 4


def test_save_refuses_what_it_cannot_store_and_writes_nothing(tmp_path):
    path = tmp_path / "bad.npz"
    with pytest.raises(TypeError, match=r"obj\['model'\] is a Sequential.*state_dict"):
        mg.save({"model": mg.nn.Sequential()}, path)
    assert not path.exists()


def test_load_refuses_other_checkpoints(tmp_path):
    path = tmp_path / "module.npz"
    mg.nn.Linear(2, 2).save(path)
    with pytest.raises(CheckpointError, match="not one written by minigrad.save"):
        mg.load(path)


def test_a_model_and_optimizer_round_trip_through_save_and_load(tmp_path):
    model = mg.nn.Sequential(mg.nn.Linear(3, 4), mg.nn.ReLU(), mg.nn.Linear(4, 2))
    optimizer = mg.optim.AdamW(model.parameters(), 1e-2)
    x, y = mg.randn(8, 3), mg.tensor([0, 1] * 4)
    for _ in range(2):
        optimizer.zero_grad()
        mg.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    mg.save({"model": model.state_dict(), "optim": optimizer.state_dict()}, tmp_path / "c.npz")
    saved = mg.load(tmp_path / "c.npz")
    twin = mg.nn.Sequential(mg.nn.Linear(3, 4), mg.nn.ReLU(), mg.nn.Linear(4, 2))
    twin.load_state_dict(saved["model"])
    twin_optimizer = mg.optim.AdamW(twin.parameters(), 1e-2)
    twin_optimizer.load_state_dict(saved["optim"])
    for m, o in ((model, optimizer), (twin, twin_optimizer)):
        o.zero_grad()
        mg.functional.cross_entropy(m(x), y).backward()
        o.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_cuda_namespace_and_generator_manual_seed():
    assert mg.cuda.is_available() == mg.cuda_available()
    assert mg.cuda.device_count() >= 0
    g = mg.Generator()
    first = g.manual_seed(5).random((4,))
    assert g.initial_seed() == 5
    np.testing.assert_array_equal(g.manual_seed(5).random((4,)), first)


def test_gradcheck_is_a_function_and_its_module():
    import minigrad.gradcheck as module
    assert module is mg.gradcheck and callable(mg.gradcheck)
    assert mg.gradcheck(lambda x: x * x, [mg.tensor([1.0, 2.0], dtype=mg.float64)])
    assert module.gradgradcheck is mg.gradgradcheck


def public_modules():
    names = ["minigrad"]
    for info in pkgutil.walk_packages(mg.__path__, "minigrad."):
        private = info.name.split(".")[-1].startswith("_")
        if not private and not info.name.startswith("minigrad.ops"):
            names.append(info.name)
    return names + ["minigrad.ops.activations", "minigrad.ops.layout", "minigrad.ops.losses",
                    "minigrad.ops.scans", "minigrad.ops.special"]


@pytest.mark.parametrize("name", public_modules())
def test_every_public_module_lists_its_names(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it lacks: {missing}"
