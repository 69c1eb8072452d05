"""Looking inside a run: anomaly detection and a per-op profiler.

    with minigrad.detect_anomaly():     # the first NaN/Inf raises, naming the op
        loss = model(x, y)[1]           # and the line of your code that created it
        loss.backward()

    with minigrad.profile() as prof:    # time and calls per op, forward and backward
        train_step()
    print(prof.table())
"""
import time

from . import autograd


class detect_anomaly:
    """Check every op's output and every gradient for NaN or Inf while active.

    Slow (one extra pass over each array, and a stack capture per op): for debugging.
    """

    def __enter__(self):
        self.previous = autograd._set_anomaly(True)
        return self

    def __exit__(self, *exc):
        autograd._set_anomaly(self.previous)


class Profiler:
    """Accumulates seconds and call counts per (op, phase)."""

    def __init__(self):
        self.seconds, self.calls = {}, {}
        self.wall = 0.0

    def record(self, name, phase, seconds):
        key = (name, phase)
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds
        self.calls[key] = self.calls.get(key, 0) + 1

    def table(self, limit=25):
        """A text table, slowest first, with each row's share of the profiled wall time.

        A backward row's time includes the ops its backward runs (they appear as
        their own rows too), so rows can add up to more than the total.
        """
        rows = sorted(self.seconds.items(), key=lambda item: -item[1])[:limit]
        lines = [f"{'op':<18}{'phase':<10}{'calls':>8}{'total ms':>11}{'per call us':>13}{'share':>8}"]
        for (name, phase), seconds in rows:
            calls = self.calls[(name, phase)]
            share = seconds / self.wall if self.wall else 0.0
            lines.append(f"{name:<18}{phase:<10}{calls:>8}{seconds * 1e3:>11.2f}"
                         f"{seconds / calls * 1e6:>13.1f}{share:>8.1%}")
        lines.append(f"profiled wall time: {self.wall * 1e3:.1f} ms")
        return "\n".join(lines)


class profile:
    """Context manager: `with profile() as p: ...` then `print(p.table())`.

    Note: on a GPU, ops run asynchronously; the times are then launch times
    unless the code synchronizes.
    """

    def __init__(self):
        self.profiler = Profiler()

    def __enter__(self):
        self.previous = autograd._set_profiler(self.profiler)
        self.started = time.perf_counter()
        return self.profiler

    def __exit__(self, *exc):
        self.profiler.wall += time.perf_counter() - self.started
        autograd._set_profiler(self.previous)


__all__ = ["detect_anomaly", "Profiler", "profile"]
