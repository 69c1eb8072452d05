"""How many threads minigrad uses, set at run time, and how its ops share work among them.

    minigrad.set_num_threads(2)     # like torch.set_num_threads
    minigrad.get_num_threads()
    minigrad.threads.choose_num_threads()   # 1 when other work already fills the cores

minigrad holds the BLAS library behind NumPy's matmul at one thread and splits its own
work instead: a large matrix product into blocks of rows (backend.matmul), GELU and layer
norm into blocks of elements or rows (backend.blockwise), attention into shares of the
batch (ops.nn.CausalAttention, ops.attention.MaskedAttention), each piece on its own Python thread (NumPy releases the
GIL inside its loops). Why not BLAS's own threads: an OpenBLAS thread spin-waits for about
0.1 s after each product, so it holds a core that the next GELU or softmax could have
used, and when other processes hold the cores a descheduled BLAS thread stalls all the
rest (on a busy 2-core machine 200 training steps ran 3x slower with OpenBLAS's default
two threads than with one). The pool's idle threads sleep instead.

threadpoolctl (an optional dependency, `pip install threadpoolctl`) knows every BLAS
NumPy may be built with; without it, NumPy's bundled OpenBLAS is found and called through
ctypes. Where neither works, setting the count raises a RuntimeError that says how to set
OPENBLAS_NUM_THREADS before Python starts instead, and ops run in one piece.
"""
import ctypes
import functools
import glob
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy

__all__ = ["set_num_threads", "get_num_threads", "choose_num_threads", "use_threads",
           "blas_info", "blas_threads", "machine_load", "workers", "run_in_parallel"]


def _threadpoolctl():
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl


@functools.lru_cache(maxsize=None)
def _bundled_openblas():
    """NumPy's bundled OpenBLAS as (ctypes library, symbol prefix, suffix), or None."""
    folder = Path(numpy.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(glob.glob(str(folder / "*openblas*"))):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                if hasattr(library, f"{prefix}_get_num_threads{suffix}"):
                    return library, prefix, suffix
    return None


def _openblas_call(name, *args, restype=ctypes.c_int):
    found = _bundled_openblas()
    if found is None:
        return None
    library, prefix, suffix = found
    function = getattr(library, f"{prefix}_{name}{suffix}", None)
    if function is None:
        return None
    function.restype = restype
    return function(*args)


def _blas_pools():
    """threadpoolctl's descriptions of the BLAS libraries loaded in this process."""
    controller = _threadpoolctl()
    if controller is None:
        return []
    return [pool for pool in controller.threadpool_info() if pool.get("user_api") == "blas"]


def blas_threads():
    """The thread count of the BLAS library behind NumPy's matmul itself."""
    pools = _blas_pools()
    if pools:
        return int(pools[0]["num_threads"])
    count = _openblas_call("get_num_threads")
    if count is None:
        raise RuntimeError("get_num_threads: NumPy's BLAS library was not found; "
                           "pip install threadpoolctl to query it")
    return int(count)


def _set_blas_threads(count):
    if _blas_pools():
        _threadpoolctl().threadpool_limits(limits=count, user_api="blas")
    elif _bundled_openblas() is None:
        raise RuntimeError("set_num_threads: NumPy's BLAS library was not found; pip install "
                           "threadpoolctl, or set OPENBLAS_NUM_THREADS before Python starts")
    else:
        _openblas_call("set_num_threads", ctypes.c_int(count), restype=None)


def get_num_threads():
    """How many threads minigrad's ops use (set_num_threads)."""
    return workers()


def set_num_threads(count):
    """Use `count` threads from now on (at run time), like torch.set_num_threads.

    minigrad holds BLAS itself at one thread and splits its own work (large matrix
    products, GELU, layer norm, attention) into `count` pieces that run at once. A BLAS
    thread spin-waits for ~0.1 s after each product, so it would take a core from every
    other piece of work (and, on a busy machine, stall its product when descheduled).
    """
    global _workers
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"set_num_threads: count must be a positive int, got {count!r}")
    _set_blas_threads(1)
    _workers = count


# --- splitting an op's work across threads ----------------------------------------------
#
# NumPy releases the GIL inside its loops and BLAS calls, so two Python threads each
# multiplying, or running the passes of a GELU or a softmax on, half of the rows really
# run at once (torch does the same with its intra-op threads). BLAS stays at one thread,
# so each piece's products stay on its core; the pool's idle threads sleep, never spin.

_workers = None               # the count last set; at first use, BLAS's own count
_pool, _pool_size = None, 0   # one ThreadPoolExecutor, grown on demand
_pool_lock = threading.Lock()
_inside = threading.local()   # .piece is True in a task of run_in_parallel: no nesting


def workers():
    """How many threads an op may split its work into (1: do it in one piece, as inside a
    piece already running in parallel). The first call takes BLAS's own thread count and
    holds BLAS at one thread; where BLAS cannot be controlled it is 1 (BLAS then keeps
    its own threads)."""
    global _workers
    if getattr(_inside, "piece", False):
        return 1
    if _workers is None:
        try:
            count = blas_threads()
            _set_blas_threads(1)
            _workers = count
        except RuntimeError:
            _workers = 1
    return _workers


def run_in_parallel(tasks):
    """Run the zero-argument callables `tasks` at once (the first in this thread, the rest
    in worker threads); their results, in order. An exception in any task is raised here
    after every task has finished."""
    global _pool, _pool_size
    if len(tasks) == 1:
        return [tasks[0]()]
    with _pool_lock:
        if _pool_size < len(tasks) - 1:
            _pool, _pool_size = ThreadPoolExecutor(len(tasks) - 1, "minigrad"), len(tasks) - 1
        pool = _pool
    futures = [pool.submit(_as_piece, task) for task in tasks[1:]]
    try:
        first = _as_piece(tasks[0])
    finally:
        rest = [f.exception() or f.result() for f in futures]  # wait for every piece
    for result in rest:
        if isinstance(result, BaseException):
            raise result
    return [first] + rest


def _as_piece(task):
    _inside.piece = True
    try:
        return task()
    finally:
        _inside.piece = False


def split_ranges(count, pieces):
    """`pieces` contiguous (start, stop) ranges covering range(count), sizes within one."""
    pieces = max(1, min(pieces, count))
    bounds = [count * i // pieces for i in range(pieces + 1)]
    return list(zip(bounds, bounds[1:]))


def blas_info():
    """One line: which BLAS, which kernels it chose for this CPU, its own thread count,
    and how many threads minigrad splits its work into."""
    count = workers()  # first: at first use this holds BLAS at one thread
    pools = _blas_pools()
    if pools:
        pool = pools[0]
        blas = (f"{pool.get('internal_api')} {pool.get('version')} "
                f"({pool.get('architecture')} kernels, {pool['num_threads']} BLAS threads)")
    else:
        core = _openblas_call("get_corename", restype=ctypes.c_char_p)
        if core is None:
            return "unknown BLAS (numpy.show_config() shows it)"
        blas = f"OpenBLAS ({core.decode()} kernels, {blas_threads()} BLAS threads)"
    return f"{blas}; minigrad splits its work into {count} threads"


def machine_load():
    """(load average over the last minute, CPU count); load is None where unknown."""
    cpus = os.cpu_count() or 1
    if not hasattr(os, "getloadavg"):
        return None, cpus
    return os.getloadavg()[0], cpus


def choose_num_threads(own_threads=1):
    """How many BLAS threads to use now: all cores on a quiet machine, one when the other
    processes already keep the cores busy (a spinning BLAS thread then only stalls).

    `own_threads` is how much of the load average this process itself accounts for.
    Returns (count, reason): reason is a line to print when the machine is oversubscribed,
    else None.
    """
    load, cpus = machine_load()
    if load is None or cpus == 1:
        return cpus, None
    others = max(0.0, load - own_threads)
    if others >= 0.5 * cpus:  # other work keeps at least half the cores busy
        return 1, (f"the machine is busy (load {load:.1f} on {cpus} CPUs): using 1 BLAS thread "
                   "so a descheduled BLAS thread cannot stall the others (--threads N overrides)")
    return cpus, None


def use_threads(setting="auto"):
    """Apply a --threads setting: a positive count, or "auto" (choose_num_threads).

    Returns the line to print when the machine is oversubscribed, else None; a setting that
    is neither is a ValueError naming it. Without a BLAS to control, "auto" does nothing.
    """
    if str(setting) == "auto":
        count, reason = choose_num_threads()
        try:
            set_num_threads(count)
        except RuntimeError:
            return None
        return reason
    try:
        count = int(setting)
    except (TypeError, ValueError):
        count = 0
    if count < 1:
        raise ValueError(f"--threads must be a positive number or 'auto', got {setting!r}")
    set_num_threads(count)
    return None
