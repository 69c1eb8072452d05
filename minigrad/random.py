"""Seedable random numbers on either backend.

`manual_seed(n)` reseeds the default generator of every device, so weight
initialization and dropout repeat exactly. Pass a `Generator` of your own to
keep a stream independent of the global one (as sampling does).
"""
from . import backend

_DEFAULT_SEED = 0


class Generator:
    """A seeded random stream that makes arrays on one device."""

    def __init__(self, seed=None, device="cpu"):
        self.device = backend.normalize_device(device)
        self.seed = seed
        self._rng = backend.new_generator(seed, self.device)

    def manual_seed(self, seed):
        """Restart this stream from `seed` (torch's Generator.manual_seed); returns self."""
        self.seed = int(seed)
        self._rng = backend.new_generator(self.seed, self.device)
        return self

    def initial_seed(self):
        return self.seed

    def random(self, shape, dtype="float32"):
        """Uniform numbers in [0, 1)."""
        return self._rng.random(shape, dtype=dtype)

    def normal(self, shape, std=1.0, mean=0.0, dtype="float32"):
        values = self._rng.standard_normal(shape, dtype=dtype)
        if std != 1.0:
            values *= std
        if mean != 0.0:
            values += mean
        return values

    def integers(self, low, high, shape):
        """Integers in [low, high), as int64."""
        return self._rng.integers(low, high, size=shape, dtype="int64")


_default_generators = {}


def manual_seed(seed):
    """Reseed the default generators (CPU and, when used, CUDA)."""
    global _DEFAULT_SEED
    _DEFAULT_SEED = int(seed)
    _default_generators.clear()


def default_generator(device="cpu"):
    device = backend.normalize_device(device)
    if device not in _default_generators:
        _default_generators[device] = Generator(_DEFAULT_SEED, device)
    return _default_generators[device]


__all__ = ["Generator", "manual_seed", "default_generator"]
