"""The array backend: NumPy on the CPU, CuPy on a CUDA GPU.

This is the only module that imports CuPy. Ops never ask "am I on the GPU?";
they take the array module `xp` from their inputs (`get_array_module`), and
the few places where NumPy and CuPy differ (scatter-add, scatter-max, random numbers)
are the named helpers below.
"""
import ctypes
import ctypes.util
import os
from functools import partial

import numpy

from . import threads

try:  # CuPy is optional: `pip install -e ".[cuda]"`
    import cupy
    import cupyx
except ImportError:  # no CuPy, or CuPy without a working CUDA
    cupy = None

_HOW_TO_GET_CUDA = (
    "Install CuPy for your CUDA version (pip install -e \".[cuda]\") on a machine "
    "with an NVIDIA GPU, or use device='cpu'."
)


def cuda_available():
    """True when CuPy imports and sees at least one GPU."""
    if cupy is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # CuPy installed but no driver or no device
        return False


def normalize_device(device):
    """'cpu', 'cuda' or 'cuda:N' -> 'cpu' or 'cuda'; anything else is an error."""
    if device is None:
        return get_default_device()
    name = str(device)
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        return "cuda"
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")


_default_device = "cpu"


def get_default_device():
    return _default_device


def set_default_device(device):
    """Where new tensors live when no device is given ('cpu' or 'cuda')."""
    global _default_device
    device = normalize_device(device)
    if device == "cuda":
        require_cuda()
    _default_device = device


def require_cuda():
    if not cuda_available():
        reason = "CuPy is not installed" if cupy is None else "CuPy found no CUDA GPU"
        raise RuntimeError(f"device='cuda' was requested but {reason}. {_HOW_TO_GET_CUDA}")


def array_module_for(device):
    """numpy for 'cpu', cupy for 'cuda'."""
    if normalize_device(device) == "cuda":
        require_cuda()
        return cupy
    return numpy


def get_array_module(*arrays):
    """The module (numpy or cupy) that owns these arrays, as cupy.get_array_module does."""
    if cupy is not None:
        return cupy.get_array_module(*arrays)
    return numpy


def is_array(value):
    """True for a NumPy or CuPy ndarray."""
    return isinstance(value, numpy.ndarray) or (cupy is not None and isinstance(value, cupy.ndarray))


def device_of(array):
    if cupy is not None and isinstance(array, cupy.ndarray):
        return "cuda"
    return "cpu"


def to_device(array, device):
    """Copy an array to 'cpu' or 'cuda' (no copy when it is already there)."""
    device = normalize_device(device)
    if device == device_of(array):
        return array
    if device == "cuda":
        require_cuda()
        return cupy.asarray(array)
    return cupy.asnumpy(array)


def to_numpy(array):
    """A host (NumPy) copy of the array."""
    if device_of(array) == "cuda":
        return cupy.asnumpy(array)
    return numpy.array(array, copy=True)


# --- where NumPy and CuPy differ -----------------------------------------------------

def scatter_add(target, index, values):
    """target[index] += values, adding up repeated indices (in place)."""
    if device_of(target) == "cuda":
        cupyx.scatter_add(target, index, values)
    elif len(index) == 1 and hasattr(index[0], "dtype") and index[0].dtype.kind in "iu":
        # one integer array picking rows, as in an embedding's gradient
        _add_rows(target, index[0], values)
    else:
        numpy.add.at(target, index, values)


def _add_rows(target, rows, values):
    """target[rows] += values for integer `rows` along axis 0, repeats adding up. Sorting
    makes each distinct row one run of picks; each run is summed and added once
    (several times faster than numpy.add.at, which adds one pick at a time)."""
    rows = rows.reshape(-1)
    if rows.size == 0:
        return
    rows = numpy.where(rows < 0, rows + target.shape[0], rows)  # -1 and n - 1: the same row
    values = values.reshape(rows.shape + target.shape[1:])
    order = numpy.argsort(rows, kind="stable")
    ordered = rows[order]
    starts = numpy.flatnonzero(numpy.concatenate(([True], ordered[1:] != ordered[:-1])))
    target[ordered[starts]] += numpy.add.reduceat(values[order], starts, axis=0)


BLOCK = 1 << 16  # elements per block: a few 256 KiB temporaries fit in a CPU core's L2 cache
# Arrays smaller than this go in one pass: they stay in the last-level cache anyway, and
# there the blocks' extra calls and copies cost more than they save (measured on a 2-core
# AMD EPYC: a layer norm of 768 x 128 rows took 2x as long blocked, GELU's backward on
# 2048 x 1536 half as long).
BLOCKWISE_FROM = 1 << 20
# Arrays from this size are split across threads when minigrad.set_num_threads allows more
# than one (below it, the ~40 us of handing work to a thread costs more than it saves).
PARALLEL_FROM = 1 << 18
PARALLEL_MATMUL_FROM = 1 << 23  # multiply-adds (~0.1 ms on one core) before a product is split


def matmul(a, b):
    """a @ b for 2-D a (m, k) and b (k, n). On the CPU with more than one thread
    (minigrad.set_num_threads) a large product is cut into one block of rows of a per
    thread (columns of b when a has fewer rows than b has columns); each block is a
    one-thread BLAS call, and the threads run at once."""
    m, n = a.shape[0], b.shape[1]
    pieces = threads.workers() if m * n * a.shape[1] >= PARALLEL_MATMUL_FROM else 1
    if pieces == 1 or device_of(a) == "cuda":
        return a @ b
    out = numpy.empty((m, n), dtype=numpy.result_type(a.dtype, b.dtype))
    if m >= n:
        def block(r0, r1):
            numpy.matmul(a[r0:r1], b, out=out[r0:r1])
    else:
        def block(c0, c1):
            out[:, c0:c1] = a @ b[:, c0:c1]
    ranges = threads.split_ranges(m if m >= n else n, pieces)
    threads.run_in_parallel([partial(block, *r) for r in ranges])
    return out


def blockwise(fn, *arrays, row_length=None):
    """fn(*arrays), an array or a tuple of them, computed a piece at a time.

    fn must be elementwise, or, given `row_length`, work on each row of the last
    axis alone (a softmax, a layer norm): its pieces are then whole rows,
    (rows, width). With rows, every array and result shares the leading axes and
    may have its own last axis (a per-row statistic has width 1).

    On the CPU, a large array runs one cache-sized block at a time: a chain of
    NumPy ops then keeps its temporaries in cache instead of streaming every pass
    through memory (2x faster for GELU's backward). With more than one thread
    (minigrad.set_num_threads) the blocks are shared among the threads, which NumPy
    lets run at once. Small arrays, and GPU arrays, go in one call.
    """
    size = arrays[0].size
    if device_of(arrays[0]) == "cuda":
        return fn(*arrays)
    pieces = threads.workers() if size >= PARALLEL_FROM else 1
    blocked = size >= max(BLOCKWISE_FROM, BLOCK + 1)
    if not blocked and pieces == 1:
        return fn(*arrays)
    if row_length is None:  # elements
        units, width = size, 1
        flats = [numpy.ascontiguousarray(a).reshape(-1) for a in arrays]
    else:  # whole rows
        units, width = size // row_length, row_length
        flats = [numpy.ascontiguousarray(a).reshape(units, -1) for a in arrays]
    per_block = max(1, BLOCK // width) if blocked else -(-units // pieces)
    blocks = [(b, min(b + per_block, units)) for b in range(0, units, per_block)]
    probe = fn(*(f[:0] for f in flats))  # no rows: the results' dtypes and trailing shapes
    single = not isinstance(probe, tuple)
    outs = [numpy.empty((units,) + p.shape[1:], dtype=p.dtype)
            for p in ((probe,) if single else probe)]

    def run(group):  # one thread's blocks, written into their places in outs
        for b0, b1 in group:
            results = fn(*(f[b0:b1] for f in flats))
            for out, result in zip(outs, (results,) if single else results):
                out[b0:b1] = result

    groups = [blocks[g0:g1] for g0, g1 in threads.split_ranges(len(blocks), pieces)]
    threads.run_in_parallel([partial(run, group) for group in groups])
    lead = arrays[0].shape if row_length is None else arrays[0].shape[:-1]
    outs = [out.reshape(lead + out.shape[1:]) for out in outs]
    return outs[0] if single else tuple(outs)


def blocks_of(*arrays):
    """Same-place, cache-sized views of same-shaped arrays, for updating them in place a
    block at a time (an optimizer step: one trip through memory instead of one per op).

    Yields the whole arrays at once on a GPU, for small arrays, and when one is not
    C-contiguous (its flat "view" would be a copy, and writes to it would be lost).
    """
    first = arrays[0]
    if (device_of(first) == "cuda" or first.size <= BLOCK
            or not all(a.flags.c_contiguous for a in arrays)):
        yield arrays
        return
    flats = [a.reshape(-1) for a in arrays]
    for start in range(0, first.size, BLOCK):
        yield tuple(f[start:start + BLOCK] for f in flats)


def scatter_extreme(target, index, values, smallest):
    """target[index] = max(target[index], values) (min with `smallest`), in place,
    taking every repeat of an index into account."""
    if device_of(target) == "cuda":
        (cupyx.scatter_min if smallest else cupyx.scatter_max)(target, index, values)
    else:
        (numpy.minimum if smallest else numpy.maximum).at(target, index, values)


def new_generator(seed, device):
    """A random generator for one device: numpy's or cupy's, seeded."""
    if normalize_device(device) == "cuda":
        require_cuda()
        return cupy.random.default_rng(seed)
    return numpy.random.default_rng(seed)


# --- memory: keep freed blocks for reuse ----------------------------------------------

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers in glibc's malloc.h


def keep_freed_memory():
    """Ask glibc's malloc to keep freed memory instead of returning it to the OS.

    A training step frees and reallocates the same large temporaries every
    step; by default glibc gives blocks above 128 KiB back to the OS (munmap,
    trim) and then takes page faults to get them again. Raising the mmap and
    trim thresholds keeps them in the heap. Returns True when applied; does
    nothing without glibc or with MINIGRAD_KEEP_FREED_MEMORY=0 in the environment.
    """
    if os.environ.get("MINIGRAD_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl without mallopt)
        return False
    mmap_ok = mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)  # glibc's largest allowed value
    trim_ok = mallopt(_M_TRIM_THRESHOLD, 1024 * 1024 * 1024)
    return bool(mmap_ok and trim_ok)


KEPT_FREED_MEMORY = keep_freed_memory()


# --- NCCL (GPU collectives) for minigrad.distributed ----------------------------------

def cupy_nccl():
    """(cupy, cupy.cuda.nccl) for NCCLGroup, or an error saying what is missing."""
    require_cuda()
    try:
        from cupy.cuda import nccl
    except ImportError as error:
        raise RuntimeError(f"NCCL is not available to CuPy ({error}): install NCCL for your "
                           "CUDA version (pip install nvidia-nccl-cu12), or train on the CPU "
                           "with MPI (--device cpu)") from None
    if not getattr(nccl, "available", True):
        raise RuntimeError("this CuPy was built without NCCL: install NCCL for your CUDA "
                           "version (pip install nvidia-nccl-cu12), or train on the CPU with MPI")
    return cupy, nccl


__all__ = ["cuda_available", "normalize_device", "get_default_device", "set_default_device",
           "require_cuda", "array_module_for", "get_array_module", "is_array",
           "device_of", "to_device", "to_numpy", "scatter_add", "scatter_extreme",
           "blockwise", "blocks_of", "new_generator", "keep_freed_memory", "cupy_nccl"]
