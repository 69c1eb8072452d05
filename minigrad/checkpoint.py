"""Checkpoints as .npz files: named arrays plus a JSON header, never pickle.

Writes are atomic: the file is written beside the target under a temporary
name, flushed to disk, then renamed over it, so a crash mid-write leaves the
old checkpoint (or none), never half of a new one. A temporary file left by a
killed writer is removed by the next save or load of that checkpoint.

Reads check before they build: the archive's members (no encryption, no exotic
compression, sizes within limits), then the header, then each array's .npy
header against the bytes it really has. Anything odd is a CheckpointError
naming the file and the problem.
"""
import json
import math
import os
import stat
import tempfile
import zipfile
import zlib

import numpy

FORMAT = "minigrad-checkpoint"
VERSION = 1
_HEADER_KEY = "__minigrad_header__"
MAX_HEADER_BYTES = 64 * 2**20        # the JSON header: config, tokenizer, optimizer groups
MAX_TOTAL_BYTES = 64 * 2**30         # all arrays together, once decompressed
MAX_COMPRESSION_RATIO = 1000         # a compressed member may expand this much, no more
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


class CheckpointError(ValueError):
    """The file is missing, truncated, corrupt, or not a minigrad checkpoint."""


# --- writing ---------------------------------------------------------------------------

def save_arrays(path, arrays, metadata=None):
    """Write {name: array} and a JSON-serializable `metadata` dict to `path` atomically.

    Saving through a symbolic link writes the file it points to. A new file gets the
    mode the umask gives; a replaced file keeps its mode.
    """
    header = {"format": FORMAT, "version": VERSION, "metadata": metadata or {}}
    payload = {_HEADER_KEY: numpy.frombuffer(json.dumps(header).encode("utf-8"), dtype=numpy.uint8)}
    for name, array in arrays.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"array names must be non-empty strings, got {name!r}")
        if name == _HEADER_KEY:
            raise ValueError(f"{_HEADER_KEY!r} is reserved for the checkpoint header")
        array = numpy.asarray(array)
        if array.dtype.hasobject:
            raise ValueError(f"array {name!r} has dtype {array.dtype}: checkpoints hold only "
                             "numeric, bool and string arrays (an object array would need pickle)")
        payload[name] = array
    atomic_write(path, lambda f: _write_archive(f, payload))


def atomic_write(path, write):
    """Call write(binary file) on a temporary file beside `path`, fsync, rename it over `path`."""
    target = os.path.realpath(path)          # through a symlink: replace what it points to
    folder, name = os.path.split(target)
    os.makedirs(folder, exist_ok=True)
    _remove_stale_temporaries(target)
    mode = _mode_for(target)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.tmp-{os.getpid()}-")
    try:
        with os.fdopen(handle, "wb") as f:
            os.fchmod(f.fileno(), mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)  # atomic on POSIX and Windows
    except BaseException as error:
        if os.path.exists(temporary):
            os.remove(temporary)
        if isinstance(error, OSError):
            raise OSError(error.errno, f"cannot write {path}: {error.strerror or error} "
                                       "(the previous file, if any, is unchanged)") from error
        raise
    _fsync_folder(folder)


def _write_archive(f, payload):
    """An uncompressed zip of .npy members, the header first (what numpy.savez writes)."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in payload.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                numpy.lib.format.write_array(member, array, allow_pickle=False)


def _mode_for(target):
    if os.path.exists(target):
        return stat.S_IMODE(os.stat(target).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_folder(folder):
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _remove_stale_temporaries(target):
    """Delete `.NAME.tmp-PID-*` files beside target whose writer process is gone."""
    folder, name = os.path.split(os.path.realpath(target))
    prefix = f".{name}.tmp-"
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if not entry.startswith(prefix):
            continue
        pid = entry[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            try:
                os.remove(os.path.join(folder, entry))
            except OSError:
                pass


def process_alive(pid):
    """True unless no process `pid` exists (one owned by another user counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


# --- reading ---------------------------------------------------------------------------

def load_arrays(path, max_bytes=MAX_TOTAL_BYTES):
    """Read a checkpoint: returns ({name: numpy array}, metadata dict).

    max_bytes bounds the arrays' total size once decompressed, checked before any is read.
    """
    with _open_checkpoint(path, max_bytes) as (archive, members):
        metadata = _read_header(path, archive, members)
        arrays = {}
        for member, info in members.items():
            if member != _HEADER_KEY + ".npy":
                arrays[member[:-len(".npy")]] = _read_array(path, archive, info)
    return arrays, metadata


def read_metadata(path):
    """Only the metadata of a checkpoint (no array is read)."""
    with _open_checkpoint(path, MAX_TOTAL_BYTES) as (archive, members):
        return _read_header(path, archive, members)


class _open_checkpoint:
    """Open `path` as a zip archive and check its members; yields (archive, {name: info})."""

    def __init__(self, path, max_bytes):
        self.path, self.max_bytes = path, max_bytes

    def __enter__(self):
        path = self.path
        if not os.path.exists(path):
            raise CheckpointError(f"{path}: no such checkpoint file")
        _remove_stale_temporaries(path)
        foreign = identify_foreign_file(path)  # a pickle, a .npy, PyTorch, safetensors, ...
        if foreign is not None:
            raise CheckpointError(f"{path}: not a minigrad checkpoint: it is {foreign}")
        with open(path, "rb") as f:
            start = f.read(8)
        if not start.startswith(_ZIP_MAGIC):
            if len(start) == 0:
                raise CheckpointError(f"{path}: an empty file, not a checkpoint "
                                      "(truncated or corrupt?)")
            raise CheckpointError(f"{path}: not a zip (.npz) archive (a text file?); "
                                  "not a readable checkpoint (truncated or corrupt?)")
        try:
            self.archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
            raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt?): "
                                  f"{error}") from None
        try:
            members = self._check_members()
        except BaseException:
            self.archive.close()
            raise
        return self.archive, members

    def _check_members(self):
        path, members, total = self.path, {}, 0
        for info in self.archive.infolist():
            name = info.filename
            if info.flag_bits & 0x1:
                raise CheckpointError(f"{path}: member {name!r} is encrypted; checkpoints never are")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise CheckpointError(f"{path}: member {name!r} uses unsupported compression "
                                      f"method {info.compress_type} (only stored or deflated)")
            if not name.endswith(".npy"):
                raise CheckpointError(f"{path}: member {name!r} is not a .npy array; "
                                      "not a minigrad checkpoint")
            if name in members:
                raise CheckpointError(f"{path}: member {name!r} appears twice")
            if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
                raise CheckpointError(f"{path}: member {name!r} is corrupt (stored size "
                                      f"{info.compress_size} bytes, claimed {info.file_size})")
            if info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1) + 2**20:
                raise CheckpointError(f"{path}: member {name!r} would expand from "
                                      f"{info.compress_size:,} to {info.file_size:,} bytes; "
                                      "refused (a zip bomb?)")
            total += info.file_size
            members[name] = info
        if total > self.max_bytes:
            raise CheckpointError(f"{path}: the arrays would take {total:,} bytes, over the "
                                  f"limit of {self.max_bytes:,} (load_arrays(max_bytes=...))")
        return members

    def __exit__(self, *exc):
        self.archive.close()


def _read_header(path, archive, members):
    info = members.get(_HEADER_KEY + ".npy")
    if info is None:
        raise CheckpointError(f"{path}: an .npz file, but not a minigrad checkpoint (no header)")
    if info.file_size > MAX_HEADER_BYTES:
        raise CheckpointError(f"{path}: the checkpoint header is {info.file_size:,} bytes, over "
                              f"the limit of {MAX_HEADER_BYTES:,}")
    raw = _read_array(path, archive, info)
    if raw.dtype != numpy.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{path}: the checkpoint header is corrupt (dtype {raw.dtype})")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise CheckpointError(f"{path}: the checkpoint header is corrupt: "
                              f"{type(error).__name__}: {str(error)[:200]}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: the checkpoint header is corrupt (not a JSON object)")
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise CheckpointError(f"{path}: unsupported checkpoint format {header.get('format')!r} "
                              f"version {header.get('version')!r} (expected {FORMAT} {VERSION})")
    if not isinstance(header.get("metadata"), dict):
        raise CheckpointError(f"{path}: the checkpoint header's metadata is not a JSON object")
    return header["metadata"]


def _read_array(path, archive, info):
    """One .npy member, its header checked against the bytes the member really holds."""
    name = info.filename[:-len(".npy")]
    try:
        with archive.open(info) as f:
            version = numpy.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran_order, dtype = numpy.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran_order, dtype = numpy.lib.format.read_array_header_2_0(f)
            else:
                raise CheckpointError(f"{path}: array {name!r} has unsupported .npy version "
                                      f"{version}")
            if dtype.hasobject:
                raise CheckpointError(f"{path}: array {name!r} holds Python objects (dtype "
                                      f"{dtype}), which would need pickle; refused")
            expected = math.prod(shape) * dtype.itemsize
            available = info.file_size - f.tell()
            if expected != available:
                raise CheckpointError(f"{path}: array {name!r} claims shape {shape} of {dtype} "
                                      f"({expected:,} bytes), but its file holds {available:,}; "
                                      "truncated or corrupt")
            data = f.read(expected)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as error:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt?): "
                              f"array {name!r}: {error}") from None
    array = numpy.frombuffer(data, dtype=dtype)
    return array.reshape(shape, order="F" if fortran_order else "C").copy()


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


__all__ = ["CheckpointError", "save_arrays", "load_arrays", "read_metadata", "atomic_write",
           "process_alive", "identify_foreign_file"]
