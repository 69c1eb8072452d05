"""Checkpoints as .npz files: named arrays plus a JSON header, never pickle.

Writes are atomic: the file is written beside the target under a temporary
name, flushed to disk, then renamed over it, so a crash mid-write leaves the
old checkpoint (or none), never half of a new one.
"""
import json
import os
import tempfile
import zipfile

import numpy

FORMAT = "minigrad-checkpoint"
VERSION = 1
_HEADER_KEY = "__minigrad_header__"


class CheckpointError(ValueError):
    """The file is missing, truncated, corrupt, or not a minigrad checkpoint."""


def save_arrays(path, arrays, metadata=None):
    """Write {name: array} and a JSON-serializable `metadata` dict to `path` atomically."""
    header = {"format": FORMAT, "version": VERSION, "metadata": metadata or {}}
    payload = {name: numpy.asarray(a) for name, a in arrays.items()}
    if _HEADER_KEY in payload:
        raise ValueError(f"{_HEADER_KEY!r} is reserved for the checkpoint header")
    payload[_HEADER_KEY] = numpy.frombuffer(json.dumps(header).encode("utf-8"), dtype=numpy.uint8)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(handle, "wb") as f:
            numpy.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)  # atomic on POSIX and Windows
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def load_arrays(path):
    """Read a checkpoint: returns ({name: numpy array}, metadata dict)."""
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    foreign = identify_foreign_file(path)
    if foreign is not None:
        raise CheckpointError(f"{path}: not a minigrad checkpoint: it is {foreign}")
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as error:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt?): "
                              f"{error}") from error
    header = arrays.pop(_HEADER_KEY, None)
    if header is None:
        raise CheckpointError(f"{path}: an .npz file, but not a minigrad checkpoint (no header)")
    try:
        header = json.loads(header.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: the checkpoint header is corrupt: {error}") from error
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise CheckpointError(f"{path}: unsupported checkpoint format {header.get('format')!r} "
                              f"version {header.get('version')!r} (expected {FORMAT} {VERSION})")
    return arrays, header["metadata"]


# --- files that are not minigrad checkpoints ---------------------------------------

def identify_foreign_file(path):
    """Say in words what `path` is when it is plainly another format, else None.

    Only the first bytes (or a zip's member names) are read; nothing is unpickled.
    """
    if os.path.isdir(path):
        return ("a directory (a Hugging Face model directory loads with "
                "models.GPT.from_pretrained)")
    with open(path, "rb") as f:
        head = f.read(16)
    size = os.path.getsize(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if any(name.endswith("data.pkl") for name in names):
            return ("a PyTorch checkpoint (a torch.save zip archive; a nanoGPT ckpt.pt loads with "
                    "models.GPT.from_nanogpt)")
        if names and not all(name.endswith(".npy") for name in names):
            return "a zip archive that is not a NumPy .npz file"
        return None  # an .npz: load_arrays looks for the header
    if head.startswith(b"\x80") and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        if head[2:4] == b"\x8a\x0a":  # a pickled long: the magic number of torch.save before 1.6
            return "a legacy PyTorch checkpoint (pickle); it is not read, since unpickling runs code"
        return "a Python pickle; it is not read, since unpickling runs code"
    if head.startswith(b"\x93NUMPY"):
        return "a single NumPy .npy array, not an .npz checkpoint"
    if head.startswith(b"GGUF"):
        return "a GGUF file (llama.cpp)"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < size:
        return ("a safetensors file (a Hugging Face model directory loads with "
                "models.GPT.from_pretrained)")
    return None
