"""How many threads the BLAS library behind NumPy's matmul uses, set at run time.

    minigrad.set_num_threads(1)     # like torch.set_num_threads
    minigrad.get_num_threads()
    minigrad.threads.choose_num_threads()   # 1 when other work already fills the cores

Why it matters: OpenBLAS splits a large product across its threads, and each thread
spin-waits for the others at the end. When other processes hold the cores, a
descheduled BLAS thread stalls all the rest: on a busy 2-core machine 200 training steps
ran 3x slower with OpenBLAS's default two threads than with one.

threadpoolctl (an optional dependency, `pip install threadpoolctl`) knows every BLAS
NumPy may be built with; without it, NumPy's bundled OpenBLAS is found and called through
ctypes. Where neither works, setting the count raises a RuntimeError that says how to set
OPENBLAS_NUM_THREADS before Python starts instead.
"""
import ctypes
import glob
import os
from pathlib import Path

import numpy

__all__ = ["set_num_threads", "get_num_threads", "choose_num_threads", "use_threads",
           "blas_info", "machine_load"]


def _threadpoolctl():
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl


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


def get_num_threads():
    """The BLAS thread count NumPy's matrix products use now."""
    pools = _blas_pools()
    if pools:
        return int(pools[0]["num_threads"])
    count = _openblas_call("get_num_threads")
    if count is None:
        raise RuntimeError("get_num_threads: NumPy's BLAS library was not found; "
                           "pip install threadpoolctl to query it")
    return int(count)


def set_num_threads(count):
    """Use `count` BLAS threads for NumPy's matrix products from now on (at run time)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"set_num_threads: count must be a positive int, got {count!r}")
    if _blas_pools():
        _threadpoolctl().threadpool_limits(limits=count, user_api="blas")
        return
    if _bundled_openblas() is None:
        raise RuntimeError("set_num_threads: NumPy's BLAS library was not found; pip install "
                           "threadpoolctl, or set OPENBLAS_NUM_THREADS before Python starts")
    _openblas_call("set_num_threads", ctypes.c_int(count), restype=None)


def blas_info():
    """One line: which BLAS, which kernels it chose for this CPU, and its thread count."""
    pools = _blas_pools()
    if pools:
        pool = pools[0]
        return (f"{pool.get('internal_api')} {pool.get('version')} "
                f"({pool.get('architecture')} kernels, {pool['num_threads']} threads)")
    core = _openblas_call("get_corename", restype=ctypes.c_char_p)
    if core is None:
        return "unknown BLAS (numpy.show_config() shows it)"
    return f"OpenBLAS ({core.decode()} kernels, {get_num_threads()} threads)"


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
