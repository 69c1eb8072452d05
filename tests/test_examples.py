"""The learning examples run end to end, as a user would run them (in a subprocess):
attention_tour.py, computation_graph.py and plot_attention.py."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dot_helpers import parse_dot

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run(*args, env=None):
    """Run `python *args` from the repository root; the CompletedProcess, text output."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


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
    assert "DISAGREE" not in out
    assert out.rstrip().endswith("comparisons agree to within 1e-06.")


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
