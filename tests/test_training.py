"""The training pipeline: bad input is refused clearly, checkpoints resume exactly."""
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad.checkpoint import load_arrays
from models import training

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
        "--batch-size", "4", "--eval-iters", "1", "--samples", "1", "--sample-tokens", "5",
        "--warmup-steps", "2"]


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_gpt = load_example("train_gpt")
sample = load_example("sample")


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    rng = np.random.default_rng(0)
    words = ["minigrad", "tensor", "gradient", "attention", "softmax", "layer", "norm"]
    path.write_text(" ".join(rng.choice(words, size=600)) + "\n", encoding="utf-8")
    return path


def run_training(corpus, out_dir, *extra):
    return train_gpt.main(["--data", str(corpus), "--out-dir", str(out_dir), *TINY, *extra])


def model_arrays(path):
    arrays, _ = load_arrays(path)
    return {k: v for k, v in arrays.items() if k.startswith("model.")}


def test_training_writes_a_checkpoint_and_samples(corpus, tmp_path, capsys):
    assert run_training(corpus, tmp_path / "run", "--steps", "4", "--eval-interval", "2") == 0
    output = capsys.readouterr().out
    assert "unigram baseline" in output and "--- sample 1 ---" in output
    assert (tmp_path / "run" / "ckpt.npz").exists()


def test_resume_continues_exactly(corpus, tmp_path):
    straight, partial = tmp_path / "straight", tmp_path / "partial"
    assert run_training(corpus, straight, "--steps", "6", "--eval-interval", "3") == 0
    # the same run, stopped after 3 steps as if by Ctrl-C, then resumed
    assert run_training(corpus, partial, "--steps", "6", "--eval-interval", "3",
                        "--stop-after", "3") == 130
    assert run_training(corpus, partial, "--steps", "6", "--eval-interval", "3", "--resume") == 0
    expected = model_arrays(straight / "ckpt.npz")
    for name, array in model_arrays(partial / "ckpt.npz").items():
        np.testing.assert_array_equal(array, expected[name], err_msg=name)


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(corpus, tmp_path):
    out_dir = tmp_path / "run"
    command = [sys.executable, "-u", str(ROOT / "examples" / "train_gpt.py"), "--data", str(corpus),
               "--out-dir", str(out_dir), *TINY, "--steps", "100000", "--eval-interval", "100000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    for line in process.stdout:  # wait until training is under way
        if line.startswith("step"):
            break
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "checkpoint saved at step" in output
    _, metadata = load_arrays(out_dir / "ckpt.npz")
    assert metadata["step"] > 0


@pytest.mark.parametrize("make_data, message", [
    (lambda p: p / "absent.txt", "does not exist"),
    (lambda p: (p / "latin1.txt").write_bytes("caf\xe9".encode("latin-1")) and p / "latin1.txt",
     "not UTF-8 text: byte 3 is 0xe9"),
    (lambda p: (p / "short.txt").write_text("too short") and p / "short.txt", "corpus is too short"),
])
def test_bad_data_gives_a_clear_error(tmp_path, capsys, make_data, message):
    path = make_data(tmp_path)
    assert train_gpt.main(["--data", str(path), "--out-dir", str(tmp_path / "run"), *TINY]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "ckpt.npz").exists()


def test_cuda_without_a_gpu_is_a_clear_error(corpus, tmp_path, capsys):
    if mg.cuda_available():
        pytest.skip("a GPU is present")
    assert run_training(corpus, tmp_path / "run", "--device", "cuda") == 2
    assert "needs CuPy and an NVIDIA GPU" in capsys.readouterr().err


def test_resume_with_another_config_or_a_corrupt_checkpoint_is_refused(corpus, tmp_path, capsys):
    out_dir = tmp_path / "run"
    assert run_training(corpus, out_dir, "--steps", "2", "--samples", "0") == 0
    capsys.readouterr()
    assert run_training(corpus, out_dir, "--steps", "4", "--resume", "--n-embd", "32") == 2
    assert "n_embd: checkpoint 16, now 32" in capsys.readouterr().err
    (out_dir / "ckpt.npz").write_bytes((out_dir / "ckpt.npz").read_bytes()[:300])
    assert run_training(corpus, out_dir, "--steps", "4", "--resume") == 2
    assert "truncated or corrupt" in capsys.readouterr().err


def test_resume_on_text_with_new_characters_is_refused(corpus, tmp_path, capsys):
    out_dir = tmp_path / "run"
    assert run_training(corpus, out_dir, "--steps", "2", "--samples", "0") == 0
    corpus.write_text(corpus.read_text() + " naïve", encoding="utf-8")
    capsys.readouterr()
    assert run_training(corpus, out_dir, "--steps", "4", "--resume") == 2
    assert "'ï'" in capsys.readouterr().err


def test_sample_script_generates_and_refuses_unknown_characters(corpus, tmp_path, capsys):
    out_dir = tmp_path / "run"
    assert run_training(corpus, out_dir, "--steps", "2", "--samples", "0") == 0
    capsys.readouterr()
    checkpoint = str(out_dir / "ckpt.npz")
    assert sample.main(["--checkpoint", checkpoint, "--prompt", "soft", "--tokens", "8"]) == 0
    assert capsys.readouterr().out.startswith("soft")
    assert sample.main(["--checkpoint", checkpoint, "--prompt", "Z!"]) == 2
    assert "characters not in the vocabulary: 'Z' at position 0" in capsys.readouterr().err
    assert sample.main(["--checkpoint", str(tmp_path / "none.npz")]) == 2


def test_bpe_tokenizer_trains_end_to_end(corpus, tmp_path):
    assert run_training(corpus, tmp_path / "run", "--steps", "2", "--tokenizer", "bpe",
                        "--bpe-vocab-size", "300", "--samples", "0") == 0
    model, tokenizer, _ = training.restore_model(tmp_path / "run" / "ckpt.npz")
    assert tokenizer.vocab_size == model.config.vocab_size <= 300


def test_unigram_baseline_is_the_entropy_of_token_frequencies():
    train = np.array([0, 0, 0, 1])
    val = np.array([0, 1])
    p = np.array([4, 2]) / 6  # add-one smoothed counts
    assert training.unigram_loss(train, val, 2) == pytest.approx(-np.log(p).mean())


def test_bigram_baseline_is_add_one_smoothed_pair_counts():
    train = np.array([0, 1, 0, 1, 0, 2])       # pairs 01 01 10 10 02
    val = np.array([0, 1, 2, 0])               # pairs 01 12 20
    # p(b | a) = (count(a b) + 1) / (count(a) + 3): p(1|0) = 3/6, p(2|1) = 1/5, p(0|2) = 1/3
    expected = -np.log([3 / 6, 1 / 5, 1 / 3]).mean()
    assert training.bigram_loss(train, val, 3) == pytest.approx(expected)


@pytest.mark.parametrize("vocab_size", [1, 5, 40])
def test_bigram_baseline_matches_a_dense_count_table(vocab_size):
    rng = np.random.default_rng(vocab_size)
    train, val = rng.integers(0, vocab_size, 500), rng.integers(0, vocab_size, 200)
    counts = np.ones((vocab_size, vocab_size))
    np.add.at(counts, (train[:-1], train[1:]), 1)
    log_p = np.log(counts / counts.sum(axis=1, keepdims=True))
    assert training.bigram_loss(train, val, vocab_size) == pytest.approx(
        -log_p[val[:-1], val[1:]].mean())


def test_bigram_baseline_beats_unigram_when_the_next_token_follows_from_the_last():
    tokens = np.tile(np.arange(10), 50)        # 0 1 2 ... 9 0 1 ...: bigrams say it all
    train, val = tokens[:401], tokens[401:]     # each token followed 40 times in train
    # bigram: p(next | last) = (40 + 1) / (40 + 10) everywhere; unigram: about 1/10 each
    assert training.bigram_loss(train, val, 10) == pytest.approx(-np.log(41 / 50))
    assert training.unigram_loss(train, val, 10) > np.log(10) - 0.01


def test_batches_are_the_next_token_shifted_by_one():
    tokens = np.arange(100)
    x, y = training.get_batch(tokens, 8, 4, training.batch_rng(0, 0))
    np.testing.assert_array_equal(y, x + 1)
    x2, _ = training.get_batch(tokens, 8, 4, training.batch_rng(0, 0))
    np.testing.assert_array_equal(x, x2)  # the same (seed, step) draws the same batch
