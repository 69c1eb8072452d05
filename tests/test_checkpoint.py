"""Checkpoint files (issue 11): limits, anomalies refused with CheckpointError naming the
problem, awkward names, file hygiene (temporaries, symlinks, modes), tokenizer saves,
load_state_dict validation and tampered training checkpoints."""
import io
import json
import os
import pickle
import stat
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import minigrad as mg
from minigrad import checkpoint
from minigrad.checkpoint import CheckpointError, load_arrays, read_metadata, save_arrays
from minigrad.nn import Module, Parameter
from models import training
from models.gpt import GPT, GPTConfig
from models.tokenizers import BPETokenizer, CharTokenizer

HEADER = checkpoint._HEADER_KEY + ".npy"


def npy_bytes(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def header_bytes(metadata=None):
    header = {"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "metadata": metadata or {}}
    return npy_bytes(np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


# --- limits and anomalies ------------------------------------------------------------------

def test_a_tiny_file_that_would_expand_to_gigabytes_is_refused_before_reading(tmp_path):
    path = tmp_path / "bomb.npz"
    zeros = np.zeros(2**27, dtype=np.uint8)  # 128 MiB of zeros deflate to ~130 kB
    write_zip(path, {HEADER: header_bytes(), "a.npy": npy_bytes(zeros)}, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2**20
    with pytest.raises(CheckpointError, match="would expand from .* refused"):
        load_arrays(path)


def test_the_total_size_limit_is_checked_before_any_array(tmp_path):
    path = tmp_path / "big.npz"
    save_arrays(path, {"a": np.zeros(1000)})
    with pytest.raises(CheckpointError, match="over the limit of 100"):
        load_arrays(path, max_bytes=100)


def test_a_huge_header_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save_arrays(path, {"a": np.zeros(1)}, {"tokenizer": "x" * 5000})
    monkeypatch.setattr(checkpoint, "MAX_HEADER_BYTES", 1000)
    with pytest.raises(CheckpointError, match="header is .* bytes, over the limit"):
        load_arrays(path)


def test_a_deeply_nested_header_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "deep.npz"
    text = '{"format": "minigrad-checkpoint", "version": 1, "metadata": {"t": ' + "[" * 100000 \
        + "]" * 100000 + "}}"
    write_zip(path, {HEADER: npy_bytes(np.frombuffer(text.encode(), dtype=np.uint8))})
    with pytest.raises(CheckpointError, match="header is corrupt"):
        load_arrays(path)


def test_the_header_is_read_before_any_array(tmp_path):
    path = tmp_path / "foreign.npz"
    bad = npy_bytes(np.zeros(4))[:-8]  # an array whose data is short
    write_zip(path, {"a.npy": bad, HEADER: header_bytes({"kind": "other"})})
    assert read_metadata(path) == {"kind": "other"}


@pytest.mark.parametrize("make, message", [
    (lambda p: np.save(p, np.ones(3)) or p.with_suffix(".npy"),
     "a single NumPy .npy array, not an .npz"),
    (lambda p: (p.write_bytes(pickle.dumps({"a": 1})), p)[1], "a Python pickle"),
    (lambda p: (p.write_text("hello, world"), p)[1], "not a zip"),
    (lambda p: (p.write_bytes(b""), p)[1], "an empty file"),
])
def test_files_that_are_not_npz_archives_are_named(tmp_path, make, message):
    path = make(tmp_path / "thing")
    with pytest.raises(CheckpointError, match=message) as error:
        load_arrays(path)
    assert str(path) in str(error.value) and "allow_pickle" not in str(error.value)


def test_an_object_array_inside_an_archive_is_refused_without_numpys_advice(tmp_path):
    path = tmp_path / "objects.npz"
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    write_zip(path, {HEADER: header_bytes(), "a.npy": buffer.getvalue()})
    with pytest.raises(CheckpointError, match="'a' holds Python objects") as error:
        load_arrays(path)
    assert "allow_pickle" not in str(error.value)


def test_encrypted_and_oddly_compressed_members_are_refused(tmp_path):
    good = tmp_path / "good.npz"
    save_arrays(good, {"a": np.ones(3)})
    data = bytearray(good.read_bytes())
    # set the "encrypted" flag in every local and central header
    encrypted = bytes(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (start := encrypted.find(signature, start)) != -1:
            flags = int.from_bytes(encrypted[start + offset:start + offset + 2], "little") | 1
            encrypted = encrypted[:start + offset] + flags.to_bytes(2, "little") \
                + encrypted[start + offset + 2:]
            start += 4
    (tmp_path / "enc.npz").write_bytes(encrypted)
    with pytest.raises(CheckpointError, match="is encrypted"):
        load_arrays(tmp_path / "enc.npz")
    if zipfile.ZIP_BZIP2 is not None:
        write_zip(tmp_path / "bz.npz", {HEADER: header_bytes(), "a.npy": npy_bytes(np.ones(3))},
                  zipfile.ZIP_BZIP2)
        with pytest.raises(CheckpointError, match="unsupported compression method 12"):
            load_arrays(tmp_path / "bz.npz")


def test_an_npy_header_claiming_more_elements_than_the_file_holds_is_refused(tmp_path):
    path = tmp_path / "short.npz"
    full = npy_bytes(np.zeros((10, 10)))
    write_zip(path, {HEADER: header_bytes(), "a.npy": full[:-80]})
    with pytest.raises(CheckpointError, match=r"'a' claims shape \(10, 10\).*800 bytes.*holds 720"):
        load_arrays(path)


def test_array_names_that_collide_with_savez_arguments_round_trip(tmp_path):
    arrays = {"file": np.ones(2), "allow_pickle": np.arange(3), "w.npy": np.zeros(1),
              "w": np.full(2, 7.0)}
    save_arrays(tmp_path / "m.npz", arrays)
    loaded, _ = load_arrays(tmp_path / "m.npz")
    assert set(loaded) == set(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded[name], array, err_msg=name)


def test_saving_an_object_array_is_refused_at_save_time(tmp_path):
    with pytest.raises(ValueError, match="array 'bad' has dtype object"):
        save_arrays(tmp_path / "m.npz", {"good": np.ones(2), "bad": np.array([None, 1])})
    assert not (tmp_path / "m.npz").exists()


# --- file hygiene --------------------------------------------------------------------------

def test_temporaries_left_by_a_killed_save_are_removed_on_the_next_save_or_load(tmp_path):
    path = tmp_path / "m.npz"
    save_arrays(path, {"a": np.ones(2)})
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)
    leftover = tmp_path / f".m.npz.tmp-{dead}-abc123"
    leftover.write_bytes(b"half a checkpoint")
    load_arrays(path)
    assert not leftover.exists()
    leftover.write_bytes(b"half a checkpoint")
    save_arrays(path, {"a": np.ones(2)})
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_saving_through_a_symlink_writes_the_target(tmp_path):
    target = tmp_path / "real.npz"
    save_arrays(target, {"a": np.ones(2)})
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    save_arrays(link, {"a": np.zeros(2)})
    assert link.is_symlink()
    np.testing.assert_array_equal(load_arrays(target)[0]["a"], np.zeros(2))


def test_a_new_checkpoint_gets_the_umask_mode_and_a_replaced_one_keeps_its_mode(tmp_path):
    old = os.umask(0o022)
    try:
        save_arrays(tmp_path / "new.npz", {"a": np.ones(2)})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.npz").stat().st_mode) == 0o644
    (tmp_path / "new.npz").chmod(0o640)
    save_arrays(tmp_path / "new.npz", {"a": np.zeros(2)})
    assert stat.S_IMODE((tmp_path / "new.npz").stat().st_mode) == 0o640


# --- tokenizers ----------------------------------------------------------------------------

def test_tokenizer_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "tok.json"
    CharTokenizer.from_text("abc").save(path)
    before = path.read_text()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        CharTokenizer.from_text("abcdef").save(path)
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["tok.json"]


def test_special_tokens_given_as_one_string_are_refused():
    with pytest.raises(TypeError, match="special_tokens must be a list .* not a str"):
        BPETokenizer().train("hello world", 300, special_tokens="EOT")
    with pytest.raises(TypeError, match="not a str"):
        BPETokenizer(special_tokens="EOT")


def test_a_huge_or_deeply_nested_tokenizer_json_is_refused(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ValueError, match="deep.json"):
        BPETokenizer.load(deep)


# --- load_state_dict -----------------------------------------------------------------------

class Small(Module):
    def __init__(self):
        super().__init__()
        self.w = Parameter(mg.randn(2, 3))
        self.b = Parameter(mg.zeros(3))


@pytest.mark.parametrize("value, message", [
    (np.array([["a", "b", "c"]] * 2), "w: dtype <U1 .* float parameter"),
    (np.array([[object()] * 3] * 2, dtype=object), "w: dtype object"),
    (np.zeros((2, 3), dtype="datetime64[s]"), "w: dtype datetime64"),
    (np.zeros((2, 3), dtype=np.complex64), "w: dtype complex64"),
    (np.zeros((2, 3), dtype=[("x", "f4")]), "w: dtype"),
    ([[1.0, 2.0, 3.0]] * 2, "w: expected an array, got list"),
    ("hello", "w: expected an array, got str"),
])
def test_load_state_dict_refuses_wrong_kinds_and_changes_nothing(value, message):
    model = Small()
    before = model.state_dict()
    state = dict(before, w=value)
    with pytest.raises((TypeError, ValueError), match=message):
        model.load_state_dict(state)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


def test_load_state_dict_refuses_a_non_dict():
    with pytest.raises(TypeError, match="expects a dict of arrays, got list"):
        Small().load_state_dict([np.zeros((2, 3)), np.zeros(3)])


def test_a_failed_gpt_load_leaves_the_model_unchanged(tmp_path):
    config = GPTConfig(block_size=4, vocab_size=5, n_layer=1, n_head=1, n_embd=4)
    model = GPT(config, generator=mg.Generator(0))
    path = tmp_path / "gpt.npz"
    model.save(path)
    arrays, metadata = load_arrays(path)
    arrays["lm_head.weight"] = arrays["lm_head.weight"].astype(np.complex64)
    save_arrays(path, arrays, metadata)
    other = GPT(config, generator=mg.Generator(1))
    before = other.state_dict()
    with pytest.raises(CheckpointError, match="lm_head.weight: dtype complex64"):
        other.load(path)
    for name, array in other.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


# --- training checkpoints ------------------------------------------------------------------

def training_checkpoint(tmp_path, tokenizer_text="abcd"):
    tokenizer = CharTokenizer.from_text(tokenizer_text)
    config = GPTConfig(block_size=4, vocab_size=4, n_layer=1, n_head=1, n_embd=4)
    model = GPT(config, generator=mg.Generator(0))
    optimizer = model.configure_optimizers(0.1, 1e-3)
    _, loss = model(mg.tensor([[0, 1, 2]]), mg.tensor([[1, 2, 3]]))
    loss.backward()
    optimizer.step()
    path = tmp_path / "ckpt.npz"
    training.save_checkpoint(path, model, optimizer, tokenizer, step=1)
    return path


def tamper(path, change):
    arrays, metadata = load_arrays(path)
    change(arrays, metadata)
    save_arrays(path, arrays, metadata)


@pytest.mark.parametrize("change, message", [
    (lambda a, m: m.update(tokenizer=CharTokenizer.from_text("ab").to_dict()),
     "tokenizer has 2 tokens, but the model's vocabulary has 4"),
    (lambda a, m: m.update(step=-3), "step must be an integer >= 0"),
    (lambda a, m: m.update(step="7"), "step must be an integer >= 0"),
    (lambda a, m: m.update(model_config={"block_size": 4}), "model config"),
    (lambda a, m: m.update(model_config=dict(m["model_config"], n_head=3)), "model config"),
    (lambda a, m: m.update(optimizer_groups="x"), "optimizer groups"),
    (lambda a, m: m.update(history=[[1, "a"]]), "history"),
    (lambda a, m: a.update({"optimizer.bogus": np.zeros(7)}), "optimizer state 'bogus'"),
    (lambda a, m: a.update({"optimizer.0.exp_avg": np.array(["x"])}), "optimizer state '0.exp_avg'"),
])
def test_tampered_training_checkpoints_are_refused_before_anything_is_built(tmp_path, change,
                                                                           message):
    path = training_checkpoint(tmp_path)
    tamper(path, change)
    with pytest.raises(CheckpointError, match=message):
        training.load_checkpoint(path)


@pytest.mark.parametrize("key, value, message", [
    ("0.exp_avg", np.zeros(7), r"optimizer state 0.exp_avg: shape \(7,\), parameter \(4, 4\)"),
    ("99.exp_avg", np.zeros(7), "optimizer state for parameter 99, which does not exist"),
    ("0.step", np.zeros(3), "optimizer state 0.step"),
])
def test_tampered_optimizer_state_is_refused_and_changes_nothing(tmp_path, key, value, message):
    path = training_checkpoint(tmp_path)
    model_arrays, optimizer_arrays, metadata = training.load_checkpoint(path)
    optimizer_arrays[key] = value
    model = GPT(GPTConfig(**metadata["model_config"]))
    optimizer = model.configure_optimizers(0.1, 1e-3)
    with pytest.raises(ValueError, match=message):
        optimizer.load_state_dict({"param_groups": metadata["optimizer_groups"],
                                   "state": optimizer_arrays})
    assert optimizer.state == {}
