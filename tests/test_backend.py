"""Backend helpers: the blockwise evaluator behind the fused CPU ops."""
import threading

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend


@pytest.fixture
def always_blockwise(monkeypatch):
    """Blocks from the first element past one BLOCK (normally only past BLOCKWISE_FROM)."""
    monkeypatch.setattr(backend, "BLOCKWISE_FROM", 0)


def test_blockwise_runs_one_pass_below_its_threshold_and_blocks_above(monkeypatch):
    calls = []

    def fn(a):
        calls.append(a.size)
        return a + 1.0

    x = np.zeros(backend.BLOCK * 2 + 3, dtype=np.float32)
    monkeypatch.setattr(backend, "BLOCKWISE_FROM", x.size + 1)
    np.testing.assert_array_equal(backend.blockwise(fn, x), x + 1.0)
    assert calls == [x.size]
    calls.clear()
    monkeypatch.setattr(backend, "BLOCKWISE_FROM", x.size)
    np.testing.assert_array_equal(backend.blockwise(fn, x), x + 1.0)
    assert calls == [0, backend.BLOCK, backend.BLOCK, 3]  # 0: learns the result's dtype


@pytest.mark.parametrize("rows", [None, 7])
def test_blockwise_shared_among_threads_equals_one_pass(monkeypatch, rows):
    # two threads, each a share of the blocks (elements, or whole rows of 7)
    monkeypatch.setattr(mg.threads, "_workers", 2)
    monkeypatch.setattr(backend, "PARALLEL_FROM", 0)
    monkeypatch.setattr(backend, "BLOCKWISE_FROM", 1 << 40)  # not blocked: one piece each
    names = set()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3, 7), dtype=np.float32)

    def fn(a):
        names.add(threading.current_thread().name)
        return a * 2.0, a.sum(axis=-1, keepdims=True) if rows else np.tanh(a)

    got = backend.blockwise(fn, x, row_length=rows)
    want = (x * 2.0, x.sum(axis=-1, keepdims=True) if rows else np.tanh(x))
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    assert len(names) == 2  # this thread and a worker


def test_an_error_in_a_parallel_piece_is_raised_after_every_piece_ends(monkeypatch):
    monkeypatch.setattr(mg.threads, "_workers", 2)
    finished = []

    def slow():
        threading.Event().wait(0.05)
        finished.append("slow")

    def fails():
        raise ValueError("piece failed")

    with pytest.raises(ValueError, match="piece failed"):
        mg.threads.run_in_parallel([fails, slow])
    assert finished == ["slow"]
    assert mg.threads.run_in_parallel([lambda: 1, lambda: 2, lambda: 3]) == [1, 2, 3]


def test_blockwise_equals_one_pass_on_arrays_larger_than_a_block(always_blockwise):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, backend.BLOCK + 7), dtype=np.float32).T  # not contiguous
    y = rng.standard_normal(x.shape, dtype=np.float32)

    def fn(a, b):
        return a * b + 1.0, np.tanh(a)

    got = backend.blockwise(fn, x, y)
    want = fn(x, y)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("layout", ["C", "F"])
def test_blocks_of_updates_the_arrays_themselves(layout):
    # C order: block views; F order: no flat view exists, so the whole arrays come back
    a = np.asarray(np.arange(3.0 * (backend.BLOCK + 5)).reshape(3, -1), order=layout)
    b = np.ones_like(a)
    want = a * 2 + 1
    blocks = list(backend.blocks_of(a, b))
    assert len(blocks) == (4 if layout == "C" else 1)
    for x, y in blocks:
        x *= 2
        x += y
    np.testing.assert_array_equal(a, want)


@pytest.mark.parametrize("rows_shape", [(7,), (3, 4), (0,)])
def test_scatter_add_of_rows_matches_add_at(rows_shape):
    # repeated rows add up; -1 and 4 name the same row; rows may be any shape or empty
    rng = np.random.default_rng(0)
    rows = rng.choice([0, 2, 2, 4, -1, -3], size=rows_shape)
    values = rng.standard_normal(rows_shape + (2, 3))
    got, want = np.ones((5, 2, 3)), np.ones((5, 2, 3))
    backend.scatter_add(got, (rows,), values)
    np.add.at(want, (rows,), values)
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-15)


def test_gelu_on_a_large_tensor_matches_its_composite(always_blockwise):
    x = mg.tensor(np.random.default_rng(1).standard_normal(backend.BLOCK * 2 + 3), requires_grad=True)
    fused = mg.gelu(x)
    fused.sum().backward()
    y = mg.tensor(x.numpy(), requires_grad=True)
    composite = 0.5 * y * (1.0 + ((2 / np.pi) ** 0.5 * (y + 0.044715 * y ** 3)).tanh())
    composite.sum().backward()
    np.testing.assert_allclose(fused.numpy(), composite.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-10, atol=1e-12)
