"""Training and sampling scripts never lose a run or save garbage, and refuse bad flags
up front (issue 11): signals, pre-flight, locks, flag validation, non-finite stops,
resume and file hygiene."""
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minigrad.checkpoint import load_arrays
from models import run_safety

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_training import TINY, corpus, model_arrays, run_training, sample, train_gpt  # noqa: E402,F401


def script(out_dir, corpus, *extra):
    return [sys.executable, "-u", str(ROOT / "examples" / "train_gpt.py"), "--data", str(corpus),
            "--out-dir", str(out_dir), *TINY, *extra]


def start_and_wait_for(command, marker):
    """Start a script and read its output until a line starting with `marker`."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith(marker):
            return process, seen
    process.wait()
    raise AssertionError("the script ended before " + repr(marker) + ":\n" + "".join(seen))


# --- signals ------------------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_save_a_checkpoint_and_exit_128_plus_the_signal(corpus, tmp_path, signum):
    out_dir = tmp_path / "run"
    process, _ = start_and_wait_for(script(out_dir, corpus, "--steps", "100000",
                                           "--eval-interval", "100000"), "step")
    process.send_signal(signum)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, output
    assert "checkpoint saved at step" in output and "Traceback" not in output
    _, metadata = load_arrays(out_dir / "ckpt.npz")
    assert metadata["step"] > 0


def test_ctrl_c_during_the_final_sampling_keeps_the_final_state_and_exits_130(corpus, tmp_path):
    out_dir = tmp_path / "run"
    # a long sample at the end: the run is interrupted while it samples
    process, _ = start_and_wait_for(script(out_dir, corpus, "--steps", "3", "--eval-interval", "100",
                                           "--sample-tokens", "100000"), "done:")
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "Traceback" not in output
    _, metadata = load_arrays(out_dir / "ckpt.npz")
    assert metadata["step"] == 3


def test_ctrl_c_during_the_final_evaluation_saves_the_state_and_exits_130(corpus, tmp_path):
    out_dir = tmp_path / "run"
    process, _ = start_and_wait_for(script(out_dir, corpus, "--steps", "2", "--eval-interval", "100",
                                           "--eval-iters", "100000"), "step     2/2")
    time.sleep(0.5)  # the last step is done: the run is in its final evaluation
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "Traceback" not in output
    _, metadata = load_arrays(out_dir / "ckpt.npz")
    assert metadata["step"] == 2


# --- pre-flight, fresh runs and locks -----------------------------------------------------

def test_an_impossible_out_dir_fails_before_training(corpus, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    started = time.perf_counter()
    assert run_training(corpus, blocker / "run", "--steps", "60", "--checkpoint-interval", "50") == 2
    assert time.perf_counter() - started < 30
    err = capsys.readouterr().err
    assert "error: cannot write to --out-dir" in err and str(blocker / "run") in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_out_dir_fails_before_training(corpus, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert run_training(corpus, folder, "--steps", "100000") == 2
    finally:
        folder.chmod(0o700)
    assert "cannot write to --out-dir" in capsys.readouterr().err


def test_preflight_leaves_no_probe_file(tmp_path):
    run_safety.check_out_dir(tmp_path / "new" / "run")
    assert list((tmp_path / "new" / "run").iterdir()) == []


def test_a_fresh_run_into_a_folder_with_a_checkpoint_refuses(corpus, tmp_path, capsys):
    out_dir = tmp_path / "run"
    assert run_training(corpus, out_dir, "--steps", "2", "--samples", "0") == 0
    before = (out_dir / "ckpt.npz").read_bytes()
    capsys.readouterr()
    assert run_training(corpus, out_dir, "--steps", "2", "--samples", "0") == 2
    err = capsys.readouterr().err
    assert "already holds a checkpoint" in err and "--resume" in err and "--overwrite" in err
    assert (out_dir / "ckpt.npz").read_bytes() == before
    assert run_training(corpus, out_dir, "--steps", "2", "--samples", "0", "--overwrite") == 0


def test_a_second_run_on_the_same_folder_refuses(corpus, tmp_path):
    out_dir = tmp_path / "run"
    first, _ = start_and_wait_for(script(out_dir, corpus, "--steps", "100000",
                                         "--eval-interval", "100000"), "step")
    try:
        second = subprocess.run(script(out_dir, corpus, "--steps", "2", "--resume"),
                                capture_output=True, text=True, timeout=120,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert second.returncode == 2
        assert f"pid {first.pid}" in second.stderr and "already using" in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert first.returncode == 130
    assert not (out_dir / run_safety.LOCK_NAME).exists()  # released at exit


def test_a_stale_lock_is_taken_over(corpus, tmp_path, capsys):
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (out_dir / run_safety.LOCK_NAME).write_text(dead + "\n")
    assert run_training(corpus, out_dir, "--steps", "2", "--samples", "0") == 0
    assert "stale lock" in capsys.readouterr().out
    assert not (out_dir / run_safety.LOCK_NAME).exists()


# --- flags --------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, message", [
    (["--steps", "0"], "--steps: must be a positive integer, got 0"),
    (["--batch-size", "-1"], "--batch-size: must be a positive integer"),
    (["--block-size", "0"], "--block-size: must be a positive integer"),
    (["--n-layer", "0"], "--n-layer: must be a positive integer"),
    (["--n-head", "0"], "--n-head: must be a positive integer"),
    (["--n-embd", "15"], "--n-embd 15 is not divisible by --n-head 2"),
    (["--eval-interval", "0"], "--eval-interval: must be a positive integer"),
    (["--eval-iters", "0"], "--eval-iters: must be a positive integer"),
    (["--checkpoint-interval", "0"], "--checkpoint-interval: must be a positive integer"),
    (["--lr", "nan"], "--lr: must be a finite number > 0, got nan"),
    (["--lr", "0"], "--lr: must be a finite number > 0"),
    (["--weight-decay", "-0.1"], "--weight-decay: must be a finite number >= 0"),
    (["--dropout", "1.0"], "--dropout: must be in [0, 1)"),
    (["--grad-clip", "inf"], "--grad-clip: must be a finite number > 0"),
    (["--temperature", "-1"], "--temperature: must be a finite number >= 0"),
    (["--top-k", "0"], "--top-k: must be a positive integer"),
    (["--warmup-steps", "-1"], "--warmup-steps: must be an integer >= 0"),
    (["--seed", "-1"], "--seed: must be an integer >= 0"),
    (["--samples", "-1"], "--samples: must be an integer >= 0"),
    (["--device", "gpu"], "--device: unknown device 'gpu'"),
    (["--bpe-vocab-size", "10"], "--bpe-vocab-size: must be at least"),
])
def test_bad_training_flags_are_refused_up_front(corpus, tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as stopped:  # (a short run, should a bad flag get through)
        run_training(corpus, tmp_path / "run", "--steps", "3", "--samples", "0", *flags)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument " + message in err or "error: " + message in err, err
    assert not (tmp_path / "run").exists()


def test_flags_that_cannot_change_on_resume_are_refused(corpus, tmp_path, capsys):
    out_dir = tmp_path / "run"
    assert run_training(corpus, out_dir, "--steps", "2", "--samples", "0") == 0
    capsys.readouterr()
    assert run_training(corpus, out_dir, "--steps", "4", "--resume", "--tokenizer", "bpe") == 2
    assert "--tokenizer bpe" in capsys.readouterr().err
    assert run_training(corpus, out_dir, "--steps", "4", "--resume", "--tokenizer", "char") != 2


@pytest.mark.parametrize("flags, message", [
    (["--temperature", "nan"], "--temperature: must be a finite number >= 0"),
    (["--top-k", "-3"], "--top-k: must be a positive integer"),
    (["--tokens", "-1"], "--tokens: must be an integer >= 0"),
    (["--samples", "0"], "--samples: must be a positive integer"),
    (["--seed", "-5"], "--seed: must be an integer >= 0"),
    (["--device", "cuda:x"], "--device: unknown device 'cuda:x'"),
])
def test_bad_sampling_flags_are_refused_up_front(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as stopped:
        sample.main(["--checkpoint", str(tmp_path / "none.npz"), *flags])
    assert stopped.value.code == 2
    assert "error: argument " + message in capsys.readouterr().err


# --- non-finite losses --------------------------------------------------------------------

def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(corpus, tmp_path,
                                                                           capsys, monkeypatch):
    out_dir = tmp_path / "run"
    assert run_training(corpus, out_dir, "--steps", "2", "--samples", "0") == 0
    good = model_arrays(out_dir / "ckpt.npz")
    # a learning rate so large that the weights blow up within a few steps
    from minigrad import distributed  # the training step clips through DataParallel
    original = distributed.clip_grad_norm_
    calls = []

    def poisoned(parameters, max_norm):
        calls.append(1)
        if len(calls) == 2:  # the second step's gradient is NaN
            for p in parameters:
                p.grad.data[...] = np.nan
        return original(parameters, max_norm)

    monkeypatch.setattr(distributed, "clip_grad_norm_", poisoned)
    capsys.readouterr()
    code = run_training(corpus, out_dir, "--steps", "6", "--resume", "--checkpoint-interval", "1",
                        "--samples", "0")
    assert code == 1
    err = capsys.readouterr().err
    assert "non-finite gradient norm (nan) at step 4" in err
    assert "checkpoint at step 3 is kept" in err
    _, metadata = load_arrays(out_dir / "ckpt.npz")
    assert metadata["step"] == 3
    for name, array in model_arrays(out_dir / "ckpt.npz").items():
        assert np.isfinite(array).all(), name
    assert set(good) == set(model_arrays(out_dir / "ckpt.npz"))


def test_a_non_finite_loss_is_named(corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run_safety, "_value_of", lambda loss: float("inf"))
    assert run_training(corpus, tmp_path / "run", "--steps", "4", "--samples", "0") == 1
    err = capsys.readouterr().err
    assert "non-finite loss (inf) at step 1" in err and "no checkpoint was written" in err
    assert not (tmp_path / "run" / "ckpt.npz").exists()


# --- resume and file hygiene --------------------------------------------------------------

def test_resuming_a_finished_run_does_not_duplicate_history(corpus, tmp_path):
    out_dir = tmp_path / "run"
    assert run_training(corpus, out_dir, "--steps", "4", "--eval-interval", "2", "--samples", "0") == 0
    _, first = load_arrays(out_dir / "ckpt.npz")
    assert run_training(corpus, out_dir, "--steps", "4", "--eval-interval", "2", "--samples", "0",
                        "--resume") == 0
    _, again = load_arrays(out_dir / "ckpt.npz")
    steps = [entry[0] for entry in again["history"]]
    assert steps == [entry[0] for entry in first["history"]] == [0, 2, 4]  # step 0: the start


def test_a_full_disk_while_training_is_a_clear_error_with_the_old_checkpoint_intact(
        corpus, tmp_path, capsys, monkeypatch):
    out_dir = tmp_path / "run"
    assert run_training(corpus, out_dir, "--steps", "2", "--samples", "0") == 0
    before = (out_dir / "ckpt.npz").read_bytes()
    import minigrad.checkpoint as checkpoint

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "_write_archive", full)
    capsys.readouterr()
    assert run_training(corpus, out_dir, "--steps", "4", "--resume", "--samples", "0") == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "ckpt.npz" in err and "Traceback" not in err
    assert (out_dir / "ckpt.npz").read_bytes() == before
    assert [p.name for p in out_dir.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("name, flags, message", [
    ("sort_digits", ["--length", "0"], "--length: must be a positive integer, got 0"),
    ("sort_digits", ["--steps", "-5"], "--steps: must be a positive integer"),
    ("addition", ["--digits", "0"], "--digits: must be a positive integer"),
    ("addition", ["--seed", "-1"], "--seed: must be an integer >= 0"),
    ("plot_attention", ["--seed", "-1"], "--seed: must be an integer >= 0"),
])
def test_every_script_refuses_bad_flags_the_same_way(name, flags, message, capsys):
    from test_training import load_example
    with pytest.raises(SystemExit) as stopped:
        load_example(name).main(flags)
    assert stopped.value.code == 2
    assert "error: argument " + message in capsys.readouterr().err


def test_resuming_from_tampered_optimizer_state_is_a_clear_error(corpus, tmp_path, capsys):
    from minigrad.checkpoint import save_arrays
    out_dir = tmp_path / "run"
    assert run_training(corpus, out_dir, "--steps", "2", "--samples", "0") == 0
    arrays, metadata = load_arrays(out_dir / "ckpt.npz")
    arrays["optimizer.0.exp_avg"] = np.zeros(3, np.float32)
    save_arrays(out_dir / "ckpt.npz", arrays, metadata)
    capsys.readouterr()
    assert run_training(corpus, out_dir, "--steps", "4", "--resume", "--samples", "0") == 2
    err = capsys.readouterr().err
    assert "optimizer state 0.exp_avg: shape (3,)" in err and "Traceback" not in err
