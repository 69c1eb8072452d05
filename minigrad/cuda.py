"""torch.cuda's questions, answered for CuPy: is_available(), device_count(), manual_seed()."""
from . import backend
from . import random as mg_random

__all__ = ["is_available", "device_count", "manual_seed", "manual_seed_all"]


def is_available():
    """True when CuPy imports and sees at least one GPU."""
    return backend.cuda_available()


def device_count():
    return backend.cupy.cuda.runtime.getDeviceCount() if is_available() else 0


def manual_seed(seed):
    """Reseed the random generators (minigrad keeps one seed for every device)."""
    mg_random.manual_seed(seed)


manual_seed_all = manual_seed
