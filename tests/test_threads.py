"""BLAS threads at run time: set and read back (through threadpoolctl and without it), the
busy-machine choice, and the --threads flag of the main job."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import threads


@pytest.fixture(autouse=True)
def restore_thread_count():
    before = mg.get_num_threads()
    yield
    mg.set_num_threads(before)


@pytest.fixture(params=["threadpoolctl", "ctypes"])
def blas_control(request, monkeypatch):
    """Run each test through threadpoolctl (where installed) and through the ctypes fallback."""
    if request.param == "threadpoolctl":
        if threads._threadpoolctl() is None:
            pytest.skip("threadpoolctl is not installed")
    else:
        monkeypatch.setattr(threads, "_threadpoolctl", lambda: None)
    return request.param


@pytest.mark.parametrize("count", [1, 2])
def test_set_num_threads_is_read_back_and_products_still_agree(blas_control, count):
    a = np.random.default_rng(0).standard_normal((300, 200))
    expected = a @ a.T
    mg.set_num_threads(count)
    assert mg.get_num_threads() == count
    np.testing.assert_allclose(a @ a.T, expected, rtol=1e-12, atol=1e-10)
    assert f"{count} threads" in threads.blas_info()


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_set_num_threads_refuses_anything_but_a_positive_int(bad):
    before = mg.get_num_threads()
    with pytest.raises(ValueError, match="count must be a positive int"):
        mg.set_num_threads(bad)
    assert mg.get_num_threads() == before


@pytest.mark.parametrize("load, expected", [(0.3, 2), (1.2, 2), (2.1, 1), (5.0, 1), (None, 2)])
def test_choose_num_threads_backs_off_when_other_work_fills_the_cores(monkeypatch, load, expected):
    monkeypatch.setattr(threads, "machine_load", lambda: (load, 2))
    count, reason = threads.choose_num_threads()
    assert count == expected
    assert (reason is not None) == (expected == 1)
    if reason:
        assert "busy" in reason and f"load {load:.1f} on 2 CPUs" in reason


def test_use_threads_applies_a_count_or_auto(monkeypatch):
    assert threads.use_threads("1") is None and mg.get_num_threads() == 1
    monkeypatch.setattr(threads, "machine_load", lambda: (6.0, 2))
    assert "busy" in threads.use_threads("auto") and mg.get_num_threads() == 1
    monkeypatch.setattr(threads, "machine_load", lambda: (0.0, 2))
    assert threads.use_threads("auto") is None and mg.get_num_threads() == 2


@pytest.mark.parametrize("bad", ["0", "-3", "two", ""])
def test_use_threads_refuses_a_bad_setting(bad):
    with pytest.raises(ValueError, match="--threads must be a positive number or 'auto'"):
        threads.use_threads(bad)


@pytest.mark.parametrize("script", ["train_gpt", "train_mlm"])
def test_training_scripts_refuse_a_bad_threads_flag_before_any_work(tmp_path, capsys, script):
    from tests.test_training import load_example
    out_dir = tmp_path / "run"
    assert load_example(script).main(["--threads", "many", "--out-dir", str(out_dir)]) == 2
    assert "--threads must be a positive number or 'auto', got 'many'" in capsys.readouterr().err
    assert not out_dir.exists()


@pytest.mark.parametrize("count", [1, 2, 3])
def test_minigrad_splits_its_own_work_with_blas_held_at_one_thread(blas_control, count):
    mg.set_num_threads(count)
    assert threads.workers() == count and threads.blas_threads() == 1
    assert f"splits its work into {count} threads" in threads.blas_info()


@pytest.mark.parametrize("shape", [(301, 7, 40), (5, 30, 301), (1, 1, 1)])
def test_a_product_split_across_threads_equals_one_product(monkeypatch, pieces, shape):
    # rows of a when a has at least as many rows as b has columns, else columns of b
    from minigrad import backend
    m, k, n = shape
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    monkeypatch.setattr(backend, "PARALLEL_MATMUL_FROM", 0)
    mg.set_num_threads(3)
    np.testing.assert_allclose(backend.matmul(a, b), a @ b, rtol=1e-13, atol=1e-13)
    assert pieces == [1 if shape == (1, 1, 1) else 3]
