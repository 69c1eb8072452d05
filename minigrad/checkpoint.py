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


__all__ = ["CheckpointError", "save_arrays", "load_arrays"]
