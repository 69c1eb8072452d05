"""The learning examples run end to end, as a user would run them (in a subprocess, in
their quick modes): attention_tour.py, computation_graph.py, plot_attention.py, ladder.py,
bpe_steps.py, train_gpt.py, addition.py, sort_digits.py, attention_masks.py and translate.py."""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dot_helpers import parse_dot

import minigrad as mg

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run(*args, env=None):
    """Run `python *args` from the repository root; the CompletedProcess, text output."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def run_example_with(setup, script, *args):
    """Run an example in a fresh interpreter after the Python statements in `setup`
    (to break or hide something first); its sys.exit status becomes ours."""
    program = (f"import runpy, sys\n{setup}\n"
               f"sys.argv = [{str(script)!r}, *{list(args)!r}]\n"
               f"runpy.run_path({str(script)!r}, run_name='__main__')\n")
    return run("-c", program)


# --- attention_tour.py --------------------------------------------------------------------

def test_attention_tour_quick_agrees_three_ways():
    done = run(EXAMPLES / "attention_tour.py", "--quick")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    out = done.stdout
    assert "PART 1: one causal self-attention head, T=3 tokens" in out
    assert "d scores = d scaled / sqrt(hs)" in out
    assert "d x = d q @ Wq + d k @ Wk + d v @ Wv" in out
    assert "PART 2: multi-head attention, 2 heads" in out
    assert "THE FUSED OP: F.causal_attention" in out and "d k by hand vs the fused op" in out
    assert "PART 3: a whole pre-LayerNorm block" in out and "d mlp.c_fc.weight" in out
    assert "PART 4: why the scores are divided by sqrt(hs)" in out
    assert "DISAGREE" not in out
    assert out.rstrip().endswith("comparisons agree to within 1e-06.")


def test_attention_tour_prints_each_derivation_before_its_numbers():
    out = run(EXAMPLES / "attention_tour.py", "--quick").stdout
    for words, numbers in [
        ("dA = dC @ B.T     (n, m) @ (m, k) -> (n, k)", "\nd weights = d out @ v.T"),
        ("ds_j = sum_i dw_i w_i (delta_ij - w_j)", "\nd scaled = weights *"),
        ("Row 0 of d scaled is all zeros", "\nd scaled = weights *"),
        ("so three gradients add up", "\nd x = d q @ Wq"),
        ("d logits = (p - onehot) / T (the mean over T tokens)", "\nd logits = (p - onehot)"),
        ("d x = (d x_hat - mean(d x_hat) - x_hat * mean(d x_hat * x_hat)) / s", "d ln_1.weight"),
        ("the predicted change is\n-lr * |g|^2", "predicted -lr|g|^2"),
    ]:
        assert words in out and out.index(words) < out.index(numbers), words


def load_example(name):
    """An example script imported as a module (its main() not run)."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_tour():
    return load_example("attention_tour")


def grade(tour, rules):
    check = tour.Comparisons(tour.TOLERANCE, None)
    tour.grade(rules, check, np.random.default_rng(0))
    return check


def test_exercise_grader_passes_the_reference_answers_and_fails_the_blanks(capsys):
    tour = load_tour()
    reference = grade(tour, tour.REFERENCE)
    assert reference.failures == [] and reference.count == 10
    blanks = grade(tour, tour.load_rules(EXAMPLES / "tour_exercises.py"))
    assert blanks.failures == list(tour.RULE_NAMES)
    assert "softmax_backward: not written yet (NotImplementedError" in capsys.readouterr().out


def test_exercise_grader_names_the_wrong_gradient_and_by_how_much(capsys):
    tour = load_tour()
    rules = vars(tour.REFERENCE) | {"layernorm_backward": lambda x, gamma, d_y, eps=1e-5: (
        tour.layernorm_backward(x, gamma, d_y, eps)[0], (d_y * x).sum(axis=0), d_y.sum(axis=0))}
    check = grade(tour, tour.SimpleNamespace(**rules))  # dgamma with x instead of x_hat
    assert check.failures == ["layernorm_backward dgamma"]
    assert "layernorm_backward dgamma is wrong by up to " in capsys.readouterr().out


def test_attention_tour_exercise_mode_exits_1_on_blanks_and_runs_the_tour_when_all_pass():
    blanks = run(EXAMPLES / "attention_tour.py", "--quick", "--exercise")
    assert blanks.returncode == 1
    assert "NOT YET: 7 of 7 gradients are missing or wrong" in blanks.stdout
    answers = run(EXAMPLES / "attention_tour.py", "--quick", "--exercise",
                  EXAMPLES / "attention_tour.py")  # the reference answers, as a student's file
    assert answers.returncode == 0, answers.stdout[-2000:]
    assert "All 10 gradients of your rules are right" in answers.stdout
    assert answers.stdout.rstrip().endswith("comparisons agree to within 1e-06.")


def test_sqrt_d_table_shows_softmax_saturating_without_the_scale():
    tour = load_tour()
    rows = tour.sqrt_d_rows((16, 512), T=16, trials=4, rng=np.random.default_rng(0))
    (_, top16, raw_top16, grad16, raw_grad16), (_, top512, raw_top512, grad512, raw_grad512) = rows
    assert abs(top512 - top16) < 0.05 and abs(grad512 - grad16) < 0.2 * grad16  # scaled: flat
    assert raw_top512 > 0.85 and raw_top512 > raw_top16 + 0.1                   # unscaled: peaks
    assert raw_grad512 < 0.5 * raw_grad16                                       # and vanishes


def test_attention_tour_heatmaps(tmp_path):
    pytest.importorskip("matplotlib")
    done = run(EXAMPLES / "attention_tour.py", "--quick", "--plot", tmp_path / "tour.png")
    assert done.returncode == 0, done.stderr
    assert_png(tmp_path / "tour.png")


def test_attention_tour_without_matplotlib_still_prints_everything(tmp_path):
    hide_matplotlib = "sys.modules['matplotlib'] = None  # import matplotlib now fails"
    done = run_example_with(hide_matplotlib, EXAMPLES / "attention_tour.py", "--quick",
                            "--plot", str(tmp_path / "never.png"))
    assert done.returncode == 0
    assert "no picture: matplotlib is not installed" in done.stdout
    assert not (tmp_path / "never.png").exists()


def test_attention_tour_exits_non_zero_when_a_backward_rule_is_wrong():
    # Softmax's backward with the row sum left out: a plausible slip
    broken = ("import minigrad.ops.nn as ops\n"
              "ops.Softmax.backward = lambda self, gy: self.output * gy")
    done = run_example_with(broken, EXAMPLES / "attention_tour.py", "--quick")
    assert done.returncode == 1
    assert "DISAGREE" in done.stdout
    assert "FAILED:" in done.stdout and "d scaled" in done.stdout.splitlines()[-1]


# --- computation_graph.py -----------------------------------------------------------------

def test_computation_graph_writes_dot_and_says_how_to_draw_without_graphviz(tmp_path):
    no_graphviz = dict(os.environ, PATH=str(tmp_path / "empty"))  # `dot` cannot be found
    done = run(EXAMPLES / "computation_graph.py", "--out-dir", tmp_path, env=no_graphviz)
    assert done.returncode == 0, done.stderr
    assert "h: Tanh -> (3, 1) float32" in done.stdout           # the text tree
    assert "w: (3, 4) float32, parameter" in done.stdout
    assert "apt-get install graphviz" in done.stdout
    for stem in ("tiny", "tiny_grads", "block"):
        nodes, _ = parse_dot((tmp_path / f"{stem}.dot").read_text())
        assert nodes
    block_labels = parse_dot((tmp_path / "block.dot").read_text())[0].values()
    assert "Softmax" in block_labels and "LayerNorm" in block_labels
    assert any(label.startswith("attn.c_attn.weight\n") for label in block_labels)
    assert any("|grad|" in label for label in parse_dot((tmp_path / "tiny_grads.dot")
                                                         .read_text())[0].values())


def test_computation_graph_draws_pictures_with_graphviz(tmp_path):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    done = run(EXAMPLES / "computation_graph.py", "--out-dir", tmp_path, "--format", "svg")
    assert done.returncode == 0, done.stderr
    assert "<svg" in (tmp_path / "block.svg").read_text()


# --- plot_attention.py --------------------------------------------------------------------

def assert_png(path):
    assert path.is_file() and path.stat().st_size > 0
    assert path.read_bytes().startswith(b"\x89PNG")


def test_plot_attention_of_a_random_model(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "attention.png"
    done = run(EXAMPLES / "plot_attention.py", "--random-model", "--prompt", "hello there",
               "--out", out)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}: 2 layers x 4 heads, 11 tokens" in done.stdout
    assert_png(out)


def test_plot_attention_of_a_training_checkpoint(tmp_path):
    pytest.importorskip("matplotlib")
    import minigrad as mg
    from models import training
    from models.gpt import GPT, GPTConfig
    from models.tokenizers import CharTokenizer

    tokenizer = CharTokenizer.from_text("abc ")
    model = GPT(GPTConfig(block_size=6, vocab_size=4, n_layer=1, n_head=2, n_embd=8),
                generator=mg.Generator(0))
    checkpoint = tmp_path / "ckpt.npz"
    training.save_checkpoint(checkpoint, model, model.configure_optimizers(0.1, 1e-3),
                             tokenizer, step=0)
    out = tmp_path / "attention.png"
    done = run(EXAMPLES / "plot_attention.py", "--checkpoint", checkpoint,
               "--prompt", "abc abc abc", "--out", out)
    assert done.returncode == 0, done.stderr
    assert "plotting its last 6 (block_size)" in done.stdout
    assert f"wrote {out}: 1 layers x 2 heads, 6 tokens" in done.stdout
    assert_png(out)


def test_plot_attention_without_matplotlib_says_how_to_get_it_and_exits_2(tmp_path):
    hide_matplotlib = "sys.modules['matplotlib'] = None  # import matplotlib now fails"
    done = run_example_with(hide_matplotlib, EXAMPLES / "plot_attention.py", "--random-model",
                            "--out", str(tmp_path / "never.png"))
    assert done.returncode == 2
    assert 'pip install -e ".[viz]"' in done.stderr
    assert not (tmp_path / "never.png").exists()


def test_plot_attention_with_a_missing_checkpoint_is_a_clear_error(tmp_path):
    pytest.importorskip("matplotlib")
    done = run(EXAMPLES / "plot_attention.py", "--checkpoint", tmp_path / "none.npz")
    assert done.returncode == 2
    assert "--random-model" in done.stderr


# --- attention_masks.py -------------------------------------------------------------------

def test_attention_masks_quick_draws_every_mask_and_the_growing_field(tmp_path):
    out = tmp_path / "masks.png"
    done = run(EXAMPLES / "attention_masks.py", "--quick", "--png", out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    text = done.stdout
    for title in ("causal", "padding", "sliding window 3", "strided 3", "fixed 3",
                  "global [0] + window 2"):
        assert title in text
    assert "x x x . . . . . ." in text  # a row of the causal grid
    assert "after layer 1: .........xxx  inputs 9..11 (3 tokens" in text
    assert "after layer 3: .....xxxxxxx  inputs 5..11 (7 tokens" in text
    assert "UNEXPECTED" not in text
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in text
    else:
        assert_png(out)


# --- train_gpt.py -------------------------------------------------------------------------

def test_train_gpt_quick_evaluates_at_step_0_and_prints_both_baselines(tmp_path):
    done = run(EXAMPLES / "train_gpt.py", "--quick", "--out-dir", tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    out = done.stdout
    assert "model: 16,576 parameters (1 layers, 2 heads, n_embd 32, block 16)" in out
    unigram = float(out.split("unigram baseline (no context): val loss ")[1][:5])
    bigram = float(out.split("bigram baseline (the token before, counted): val loss ")[1][:5])
    assert bigram < unigram
    assert "step 0: train loss" in out and "step 10: train loss" in out
    assert "done: 20 steps" in out and "--- sample 1 ---" in out
    assert (tmp_path / "ckpt.npz").exists()


# --- bpe_steps.py -------------------------------------------------------------------------

def test_bpe_steps_quick_prints_each_lesson():
    done = run(EXAMPLES / "bpe_steps.py", "--quick", "--top-k", "3")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "expect: 14 distinct adjacent pairs; the most frequent:" in out      # the toy table
    assert "maximize: skip 's' + 't': an earlier merge of this step used it up" in out
    assert "10 merges in 5 expect steps (top-k = 3)" in out
    assert "lowest   -> low | est</w>" in out                                  # unseen word
    assert "the same merges: True" in out                                      # naive == indexed
    assert "' the'       -> ·the" in out and "round trip exact: True" in out
    in_domain, out_of_domain = (float(line.rsplit("= ", 1)[1]) for line in out.splitlines()
                                if " tokens / " in line)
    assert out_of_domain > in_domain


def test_bpe_steps_refuses_a_top_k_below_1():
    done = run(EXAMPLES / "bpe_steps.py", "--top-k", "0")
    assert done.returncode == 2 and "--top-k and --merges must be at least 1" in done.stderr


# --- addition.py, sort_digits.py ----------------------------------------------------------

@pytest.mark.parametrize("script", ["addition.py", "sort_digits.py"])
def test_toy_task_quick_prints_the_share_of_attention_on_the_digits_that_matter(script, tmp_path):
    out_png = tmp_path / "attention.png"
    done = run(EXAMPLES / script, "--quick", "--plot", out_png)
    assert done.returncode == 0, done.stderr
    assert "step   100  loss" in done.stdout and "held-out exact-match accuracy" in done.stdout
    assert "share of attention on the digits that matter" in done.stdout
    assert "  layer 1: " in done.stdout and "(uniform attention would give" in done.stdout
    if importlib.util.find_spec("matplotlib") is None:
        assert "no picture: matplotlib is not installed" in done.stdout
    else:
        assert "wrote " in done.stdout and "2 layers x 4 heads" in done.stdout
        assert_png(out_png)


# --- ladder.py ----------------------------------------------------------------------------

def test_ladder_quick_prints_the_table_and_both_experiments():
    done = run(EXAMPLES / "ladder.py", "--quick")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    out = done.stdout
    rows = [line for line in out.splitlines() if line.startswith("| ") and "rung" not in line]
    assert [row.split("|")[1].strip() for row in rows] == [
        "unigram counts", "bigram counts", "bigram, neural", "one head", "multi-head",
        "+ MLP", "+ residual", "+ LayerNorm", "+ positions"]
    unigram, bigram = (float(row.split("|")[4]) for row in rows[:2])
    assert bigram < unigram
    assert "Permutation test" in out and "Gradient reaching back" in out


def test_a_model_without_positions_is_exactly_permutation_equivariant():
    ladder = load_example("ladder")
    rng = np.random.default_rng(0)
    idx, permutation = rng.integers(0, 11, size=12), rng.permutation(12)
    everything = dict(attention="multi", mlp=True, residual=True, layernorm=True)
    for seed in range(3):
        mg.manual_seed(seed)
        blind = ladder.float64(ladder.Rung(11, 12, 8, 2, causal=False, **everything))
        assert ladder.permutation_gap(blind, idx, permutation) < 1e-12   # float64 rounding
        mg.manual_seed(seed)
        seeing = ladder.float64(ladder.Rung(11, 12, 8, 2, causal=False, positions=True,
                                            **everything))
        assert ladder.permutation_gap(seeing, idx, permutation) > 1e-2


def test_a_causal_model_without_positions_cannot_see_the_order_of_its_context():
    ladder = load_example("ladder")
    mg.manual_seed(0)
    model = ladder.float64(ladder.Rung(11, 10, 8, 2, attention="multi", mlp=True,
                                       residual=True, layernorm=True))
    idx = np.random.default_rng(1).integers(0, 11, size=10)
    shuffled = np.concatenate([np.random.default_rng(2).permutation(idx[:-1]), idx[-1:]])
    with mg.no_grad():
        last, last_shuffled = (model(mg.tensor(i[None])).numpy()[0, -1] for i in (idx, shuffled))
    np.testing.assert_allclose(last_shuffled, last, rtol=0, atol=1e-12)


def test_the_rnn_gradient_vanishes_over_32_positions_and_attention_does_not():
    ladder = load_example("ladder")
    rnn, attention = ladder.gradient_reach(33, 32, seed=0)
    assert rnn[0] / rnn[-1] < 1e-3          # 32 positions back vs the last input
    assert attention[0] / attention[-1] > 1e-2


# --- translate.py -------------------------------------------------------------------------

def check_translate_output(out):
    assert "held-out exact match, 50 numbers never trained on:" in out
    for line in ("encoder-decoder, greedy:", "encoder-decoder, beam 2:",
                 "decoder-only GPT, greedy:"):
        assert line in out
    assert "share of cross-attention on the aligned source word (layer x head):" in out
    rows = re.findall(r"^  layer (\d): (.*)$", out, flags=re.M)
    assert [layer for layer, _ in rows] == ["0", "1"]
    for _, row in rows:
        shares = [float(x) for x in re.findall(r"head \d (\d\.\d{3})", row)]
        assert len(shares) == 4 and all(0.0 <= x <= 1.0 for x in shares)
    assert re.search(r"^  best: layer \d head \d, \d\.\d{3}$", out, flags=re.M)


def test_translate_quick_trains_both_models_and_saves_png_maps(tmp_path):
    pytest.importorskip("matplotlib")
    done = run(EXAMPLES / "translate.py", "--quick", "--plot", tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    check_translate_output(done.stdout)
    pictures = sorted(tmp_path.glob("cross_attention_*.png"))
    assert len(pictures) == 3
    for path in pictures:
        assert_png(path)


def test_translate_without_matplotlib_saves_text_maps(tmp_path):
    hide_matplotlib = "sys.modules['matplotlib'] = None  # import matplotlib now fails"
    done = run_example_with(hide_matplotlib, EXAMPLES / "translate.py", "--quick",
                            "--no-gpt", "--plot", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    texts = sorted(tmp_path.glob("cross_attention_*.txt"))
    assert len(texts) == 3 and not list(tmp_path.glob("*.png"))
    table = texts[0].read_text()
    assert "layer 0 head 0: rows = target, columns = source" in table
    assert "<eos>" in table


# --- the encoder: train_mlm.py, embed.py, contextual_vs_static.py, layer_probes.py --------

TINY_MLM = ["--steps", "4", "--contrastive-steps", "2", "--n-layer", "1", "--n-head", "2",
            "--n-embd", "16", "--bpe-vocab-size", "300", "--eval-windows", "8",
            "--batch-size", "4", "--contrastive-batch", "4", "--eval-interval", "2"]


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """The first 40 KB of the built-in corpus (about 20 sections): quicker to tokenize."""
    from models.data import default_corpus
    path = tmp_path_factory.mktemp("corpus") / "small.txt"
    path.write_text(default_corpus()[:40_000], encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def mlm_run(tmp_path_factory, small_corpus):
    out = tmp_path_factory.mktemp("mlm")
    done = run(EXAMPLES / "train_mlm.py", *TINY_MLM, "--data", small_corpus, "--out-dir", out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    return out / "ckpt.npz", done.stdout


@pytest.fixture(scope="module")
def gpt_checkpoint(tmp_path_factory, small_corpus):
    out = tmp_path_factory.mktemp("gpt")
    done = run(EXAMPLES / "train_gpt.py", "--data", small_corpus, "--steps", "3", "--n-layer", "2", "--n-head", "2",
               "--n-embd", "16", "--samples", "0", "--eval-iters", "1", "--out-dir", out)
    assert done.returncode == 0, done.stderr
    return out / "ckpt.npz"


def test_train_mlm_prints_baselines_and_retrieval_and_writes_a_checkpoint(mlm_run):
    checkpoint, out = mlm_run
    assert checkpoint.is_file()
    assert "baseline    unigram: val loss" in out and "baseline neighbours: val loss" in out
    assert "(end of masked LM): val MLM loss" in out and "[MASK] accuracy" in out
    for name in ("encoder", "tf-idf", "random"):
        assert out.count(f"{name:>8}: precision@1") == 2       # after each stage
    assert "after the contrastive stage" in out and "CPU" in out


def progress_losses(out):
    """(step, loss) of train_mlm.py's progress lines ('step 5/6 | mlm loss 5.7 | ...')."""
    return [tuple(line.split(" | ")[:2]) for line in out.splitlines()
            if line.startswith("step ") and " | " in line]


def test_train_mlm_resumes_in_either_stage(tmp_path, small_corpus):
    import numpy as np
    tiny = [*TINY_MLM, "--data", small_corpus]
    whole = run(EXAMPLES / "train_mlm.py", *tiny, "--out-dir", tmp_path / "a")
    assert whole.returncode == 0, whole.stderr
    a = np.load(tmp_path / "a" / "ckpt.npz")
    weights = [k for k in a.files if k.startswith("model.")]
    assert weights
    for stop in ("3", "4"):        # inside the masked-LM stage; at its last step
        out = tmp_path / f"stop{stop}"
        first = run(EXAMPLES / "train_mlm.py", *tiny, "--out-dir", out, "--stop-after", stop)
        assert first.returncode == 130, first.stderr
        second = run(EXAMPLES / "train_mlm.py", *tiny, "--out-dir", out, "--resume")
        assert second.returncode == 0, second.stderr
        assert f"resuming from {out / 'ckpt.npz'} at step {stop}" in second.stdout
        # the steps after the resume print the losses of the uninterrupted run
        resumed = progress_losses(second.stdout)
        assert resumed and resumed == progress_losses(whole.stdout)[-len(resumed):]
        b = np.load(out / "ckpt.npz")
        for k in weights:
            if stop == "3":
                np.testing.assert_array_equal(a[k], b[k], err_msg=k)
            else:
                # after a resume at the boundary the contrastive stage runs in a process
                # with a different memory layout; NumPy's SIMD sums then round a few
                # weights differently in the last bit (seen: 4e-9); the same step, not a
                # different one, is what this checks
                np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6, err_msg=k)


def test_contrastive_stage_trains_the_mlm_head_only_with_the_mlm_loss_mixed_in(tmp_path,
                                                                               small_corpus):
    tiny = [*TINY_MLM, "--data", small_corpus]
    boundary = tmp_path / "boundary"      # stopped at the end of the masked-LM stage
    first = run(EXAMPLES / "train_mlm.py", *tiny, "--out-dir", boundary, "--stop-after", "4")
    assert first.returncode == 130, first.stderr
    before = np.load(boundary / "ckpt.npz")
    # the head's own weights (model.mlm.weight is the token embedding matrix, tied)
    head = [k for k in before.files if k.startswith("model.mlm.") and k != "model.mlm.weight"]
    encoder = [k for k in before.files if k.startswith("model.encoder.")]
    assert head and encoder
    for weight, head_trains in (("0", False), ("1", True)):
        out = tmp_path / f"weight{weight}"
        shutil.copytree(boundary, out)
        done = run(EXAMPLES / "train_mlm.py", *tiny, "--out-dir", out, "--resume",
                   "--contrastive-mlm-weight", weight)
        assert done.returncode == 0, done.stderr
        after = np.load(out / "ckpt.npz")
        assert any(not np.array_equal(before[k], after[k]) for k in encoder)
        assert any(not np.array_equal(before[k], after[k]) for k in head) == head_trains
    # inside (here: at the end of) a contrastive stage the setting cannot change
    switched = run(EXAMPLES / "train_mlm.py", *tiny, "--out-dir", tmp_path / "weight1",
                   "--resume", "--contrastive-mlm-weight", "0")
    assert switched.returncode == 2 and "different --contrastive-mlm-weight" in switched.stderr
    refused = run(EXAMPLES / "train_mlm.py", "--contrastive-mlm-weight", "-1")
    assert refused.returncode == 2 and "--contrastive-mlm-weight must be >= 0" in refused.stderr


def test_embed_writes_normalized_float32_rows_at_the_exact_path(mlm_run, tmp_path):
    import json

    import numpy as np
    checkpoint, _ = mlm_run
    docs = tmp_path / "docs.jsonl"
    texts = ["def f(x): return x", "", "never seen: 東京 🦉 \u00e9 [MASK] [PAD]", "word " * 400]
    docs.write_text("\n".join(json.dumps({"text": t, "id": i}) for i, t in enumerate(texts))
                    + "\n", encoding="utf-8")
    out = tmp_path / "emb.out"                       # no .npy suffix: written as given
    done = run(EXAMPLES / "embed.py", "--checkpoint", checkpoint, "--input", docs,
               "--output", out)
    assert done.returncode == 0, done.stderr
    vectors = np.load(out)
    assert vectors.dtype == np.float32 and vectors.shape == (4, 16)
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cls_out = tmp_path / "cls.npy"
    done = run(EXAMPLES / "embed.py", "--checkpoint", checkpoint, "--input", docs,
               "--output", cls_out, "--pooling", "cls")
    assert done.returncode == 0, done.stderr
    assert not np.allclose(np.load(cls_out), vectors)


def test_embed_long_document_is_the_weighted_mean_of_its_windows(mlm_run):
    import numpy as np

    from models import mlm_training as mt
    checkpoint, _ = mlm_run
    model, tokenizer, _ = mt.restore_model(checkpoint)
    specials = mt.Specials(tokenizer)
    block = model.config.block_size
    ids = mt.encode_text(tokenizer, "The assert statement is a debugging aid. " * 30)
    assert len(ids) > 2 * block
    whole = mt.embed_ids(model.encoder, [ids], specials, block).numpy()[0]
    pieces = mt.document_windows(ids, block)
    each = mt.embed_ids(model.encoder, pieces, specials, block).numpy()
    # each window's own vector is normalized; undo that with its unnormalized mean pool
    import minigrad as mg
    from models.bert import mean_pool
    raw = []
    for piece in pieces:
        idx = mt.wrap([piece], specials, len(piece) + 2)
        raw.append(mean_pool(model.encoder(mg.tensor(idx))).numpy()[0])
    weights = np.array([len(p) + 2.0 for p in pieces])
    expected = (weights[:, None] * np.stack(raw)).sum(0) / weights.sum()
    np.testing.assert_allclose(whole, expected / np.linalg.norm(expected), atol=1e-5)
    assert each.shape == (len(pieces), model.config.n_embd)


@pytest.mark.parametrize("content, message", [
    ('{"txt": "a"}\n', 'no "text" field'),
    ("", "is empty"),
    ('{"text": "a"}\nnot json\n', "line 2: not valid JSON"),
    ('{"text": 3}\n', '"text" must be a string'),
])
def test_embed_refuses_bad_input_naming_the_problem(mlm_run, tmp_path, content, message):
    checkpoint, _ = mlm_run
    docs = tmp_path / "docs.jsonl"
    docs.write_text(content, encoding="utf-8")
    done = run(EXAMPLES / "embed.py", "--checkpoint", checkpoint, "--input", docs,
               "--output", tmp_path / "e.npy")
    assert done.returncode == 2 and message in done.stderr
    assert not (tmp_path / "e.npy").exists()


def test_embed_refuses_a_checkpoint_of_another_kind(gpt_checkpoint, tmp_path):
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"text": "a"}\n', encoding="utf-8")
    done = run(EXAMPLES / "embed.py", "--checkpoint", gpt_checkpoint, "--input", docs,
               "--output", tmp_path / "e.npy")
    assert done.returncode == 2
    assert "not an encoder (train_mlm.py) checkpoint" in done.stderr
    assert "minigrad-gpt-training" in done.stderr


def test_contextual_vs_static_quick(mlm_run, small_corpus):
    checkpoint, _ = mlm_run
    done = run(EXAMPLES / "contextual_vs_static.py", "--quick", "--checkpoint", checkpoint,
               "--data", small_corpus)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    out = done.stdout
    assert "1. nearest neighbours" in out and "word2vec:" in out and "encoder:" in out
    assert "word2vec cosine: 1.000" in out and "encoder cosine:" in out
    assert "word2vec purity:" in out and "encoder purity:" in out


def test_layer_probes_quick(mlm_run, gpt_checkpoint, small_corpus):
    checkpoint, _ = mlm_run
    done = run(EXAMPLES / "layer_probes.py", "--quick", "--gpt", gpt_checkpoint,
               "--encoder", checkpoint, "--data", small_corpus)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    out = done.stdout
    assert out.count("layer  self-sim  token   prev   next") == 2
    assert "GPT: self-sim" in out and "encoder: self-sim" in out
