"""The benchmark scripts run, and the matmul floor lists the model's products."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_gpt  # noqa: E402


def run_bench(*args):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_gpt.py"), *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    return done.stdout


def test_training_benchmark_prints_step_times_and_memory():
    out = run_bench("--config", "small", "--steps", "1")
    assert "== small:" in out and "minigrad  step median" in out
    assert "NumPy arrays allocated during a step peak at" in out
    assert "BLAS:" in out and "load average:" in out


def test_growth_benchmark_prints_rss_and_objects_at_each_checkpoint():
    out = run_bench("--growth", "4")
    lines = [line for line in out.splitlines() if "Python objects" in line]
    assert [line.split(":")[0].split()[-1] for line in lines] == ["2", "4"]  # 4 // 10 = 0: skipped


def test_matmul_floor_has_every_product_of_a_training_step():
    config, batch = bench_gpt.CONFIGS["small"]
    pairs = bench_gpt.step_matmuls(config, batch)
    # per block: 4 linears and 2 attention products, each forward + 2 backward; then lm_head
    assert len(pairs) == config.n_layer * 6 * 3 + 3
    flops = sum(2 * a.shape[-1] * (a @ b).size for a, b in pairs)  # every pair multiplies
    C, N, T = config.n_embd, batch * config.block_size, config.block_size
    weights_per_token = 12 * C * C * config.n_layer + C * config.vocab_size  # every Linear
    attention = 2 * (2 * N * T * C) * config.n_layer  # q k^T and weights @ v, all heads
    assert flops == 3 * (2 * N * weights_per_token + attention)  # forward + 2x in backward
    assert all(a.dtype == np.float32 and b.dtype == np.float32 for a, b in pairs)


def test_attention_benchmark_prints_the_table_and_the_generation_speed_up():
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_attention.py"), "--quick"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    out = done.stdout
    assert "causal ms" in out and "window ms" in out and "x/doubling" in out
    rows = [line.split("|") for line in out.splitlines() if line.strip()[:3] in ("256", "512")]
    assert [int(r[0]) for r in rows] == [256, 512] and all(len(r) == 4 for r in rows)
    assert "at T=512: sliding window takes" in out
    assert "rolling KV cache" in out and "recompute" in out and "same tokens: True" in out


NANOGPT = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "nanogpt" / "model.py"


def test_nanogpt_comparison_refuses_a_missing_file(tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_gpt.py"),
                           "--nanogpt", str(tmp_path / "none.py")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "--nanogpt: no file at" in done.stderr


def test_nanogpt_comparison_prints_both_thread_counts():
    pytest.importorskip("torch")
    if not NANOGPT.is_file():
        pytest.skip(f"nanoGPT's model.py is not at {NANOGPT}")
    out = run_bench("--config", "small", "--steps", "1", "--nanogpt", str(NANOGPT))
    for count in ("1 thread", "2 threads"):
        assert f"minigrad / nanoGPT, {count}:" in out
    words = out.split("loss at warm-up step 2: minigrad ")[1].split()
    ours, theirs = float(words[0].rstrip(",")), float(words[2])
    assert abs(ours - theirs) < 1e-3  # the same weights and batch (GELU forms differ slightly)


def test_gelu_benchmark_prints_both_forms_and_erf_accuracy():
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_gelu.py"), "--size", "20000",
                           "--repeats", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "approximate='none'" in done.stdout and "x tanh" in done.stdout
    assert "ulp on" in done.stdout and "load average:" in done.stdout


def test_threads_benchmark_times_every_setting_quiet_and_under_load():
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_threads.py"), "--steps", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    for when in ("quiet:", "busy loops beside it:"):
        part = done.stdout.split(when, 1)[1]
        for setting in ("minigrad, 1 thread", "minigrad, 2 threads", "OpenBLAS's own 2 threads"):
            assert setting in part and "median" in part, (when, setting)
