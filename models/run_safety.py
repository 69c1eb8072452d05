"""What keeps a training run from losing work or saving garbage.

    check_flags(parser, args, TRAINING_FLAGS)   # argparse-style "error:" and exit 2
    check_out_dir(out_dir)                      # before the first step, not after the run
    refuse_to_replace(checkpoint_path)          # a fresh run never overwrites a checkpoint
    with StopSignals() as stop, RunLock(out_dir):
        with stop.deferred():                   # Ctrl-C, SIGTERM, SIGHUP: stop after this step
            ... check_finite(loss, grad_norm, step) ...
        with stop.protected():                  # a signal never interrupts a save
            save(...)

Scripts share the flag rules here, so train_gpt.py, sample.py and any later
script refuse the same bad values with the same words.
"""
import math
import os
import signal
from contextlib import contextmanager
from pathlib import Path

from minigrad.checkpoint import CheckpointError, process_alive, read_metadata

LOCK_NAME = "run.lock"


class RunError(ValueError):
    """The run cannot start or go on (a folder it cannot write, another run in it, ...)."""


class NonFiniteError(RunError):
    """The loss, the gradient norm or the weights stopped being finite numbers."""


class Interrupted(BaseException):
    """A stop signal that must end the run now (outside the training loop, or a second one)."""

    def __init__(self, signum, forced=False):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.forced = signum, forced

    @property
    def exit_code(self):
        return 128 + self.signum


# --- flags ---------------------------------------------------------------------------------
# Each check takes a parsed value and returns what is wrong with it, or None.

def positive_int(value):
    return None if value > 0 else f"must be a positive integer, got {value}"


def non_negative_int(value):
    return None if value >= 0 else f"must be an integer >= 0, got {value}"


def at_least(minimum, why=""):
    def check(value):
        return None if value >= minimum else f"must be at least {minimum}{why}, got {value}"
    return check


def positive_number(value):
    return None if math.isfinite(value) and value > 0 else f"must be a finite number > 0, got {value}"


def non_negative_number(value):
    return (None if math.isfinite(value) and value >= 0
            else f"must be a finite number >= 0, got {value}")


def unit_fraction(value):
    """A probability that is not certainty: dropout."""
    return None if 0 <= value < 1 else f"must be in [0, 1), got {value}"


def device_name(value):
    name = str(value)
    if name == "cpu" or name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        return None
    return f"unknown device {name!r}: use cpu, cuda or cuda:N"


SAMPLING_FLAGS = {
    "temperature": non_negative_number,
    "top_k": positive_int,
    "seed": non_negative_int,
    "device": device_name,
}

TRAINING_FLAGS = {
    "steps": positive_int,
    "batch_size": positive_int,
    "block_size": positive_int,
    "n_layer": positive_int,
    "n_head": positive_int,
    "n_embd": positive_int,
    "dropout": unit_fraction,
    "eval_interval": positive_int,
    "eval_iters": positive_int,
    "checkpoint_interval": positive_int,
    "warmup_steps": non_negative_int,
    "stop_after": positive_int,
    "lr": positive_number,
    "weight_decay": non_negative_number,
    "grad_clip": positive_number,
    "samples": non_negative_int,
    "sample_tokens": non_negative_int,
    **SAMPLING_FLAGS,
}


def check_flags(parser, args, rules):
    """Refuse the first flag whose value breaks its rule, as argparse does (exit 2).

    rules: {dest: check}; flags left at None (not given, no default) are skipped.
    """
    for dest, check in rules.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        problem = check(value)
        if problem:
            parser.error(f"argument --{dest.replace('_', '-')}: {problem}")


def check_divisible(parser, args, dest, by, defaults):
    """Refuse --dest not divisible by --by (either may fall back to `defaults`)."""
    value = getattr(args, dest) if getattr(args, dest) is not None else defaults[dest]
    divisor = getattr(args, by) if getattr(args, by) is not None else defaults[by]
    if value % divisor:
        flag, by_flag = "--" + dest.replace("_", "-"), "--" + by.replace("_", "-")
        parser.error(f"{flag} {value} is not divisible by {by_flag} {divisor}")


def refuse_changed_on_resume(flag, given, saved):
    """A flag that cannot change on --resume, given with another value than the checkpoint's."""
    if given is not None and given != saved:
        raise RunError(f"{flag} {given} was given, but the checkpoint was trained with {flag} "
                       f"{saved}, which cannot change on --resume; leave the flag out, or start "
                       "a new run in another --out-dir")


# --- the output folder ------------------------------------------------------------------------

def check_out_dir(out_dir, flag="--out-dir"):
    """Create the folder and write and remove a probe file: fail now, not after the run."""
    out_dir = Path(out_dir)
    probe = out_dir / f".write-probe-{os.getpid()}"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"minigrad")
        probe.unlink()
    except OSError as error:
        raise RunError(f"cannot write to {flag} {out_dir}: {error.strerror or error}") from None


def refuse_to_replace(checkpoint_path):
    """A fresh run never replaces an existing checkpoint unless told to (--overwrite)."""
    path = Path(checkpoint_path)
    if not path.exists():
        return
    try:
        what = f"a checkpoint at step {read_metadata(path).get('step')}"
    except CheckpointError:
        what = "a checkpoint (unreadable)"
    raise RunError(f"{path.parent} already holds a checkpoint ({path.name}: {what}); continue it "
                   "with --resume, replace it with --overwrite, or choose another --out-dir")


class RunLock:
    """OUT_DIR/run.lock holds the owner's pid while a run uses the folder.

    A second run refuses; a lock whose process is gone (killed with -9) is stale and taken over.
    """

    def __init__(self, folder):
        self.path = Path(folder) / LOCK_NAME

    def __enter__(self):
        for _ in range(2):
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = _lock_owner(self.path)
                if owner is not None and process_alive(owner):
                    raise RunError(f"another run (pid {owner}) is already using {self.path.parent} "
                                   f"(lock file {self.path}); wait for it to end, or choose "
                                   "another --out-dir") from None
                print(f"removing a stale lock {self.path} (pid {owner} is no longer running)")
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(handle, "w") as f:
                f.write(f"{os.getpid()}\n")
            return self
        raise RunError(f"could not take the lock {self.path}: another run keeps creating it")

    def __exit__(self, *exc):
        if _lock_owner(self.path) == os.getpid():
            self.path.unlink(missing_ok=True)


def _lock_owner(path):
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# --- signals ----------------------------------------------------------------------------------

class StopSignals:
    """Ctrl-C (SIGINT), SIGTERM and SIGHUP end a run with its latest state saved.

    Inside deferred() (the training loop) the first signal asks the loop to stop after
    the current step; a second one forces Interrupted(forced=True) (nothing is saved).
    Inside protected() (a save) a signal waits until the save is done. Anywhere else,
    Interrupted is raised at once. Exit with `exit_code` (128 + the signal).
    """

    SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None))
                    if s is not None)

    def __init__(self):
        self.signum = None
        self._mode = "now"      # "now", "deferred" or "protected"
        self._previous = {}

    @property
    def requested(self):
        return self.signum is not None

    @property
    def exit_code(self):
        return 128 + (self.signum or signal.SIGINT)

    def request(self, signum=signal.SIGINT):
        """Stop as if `signum` had arrived (--stop-after)."""
        self.signum = signum

    def _handle(self, signum, frame):
        if self._mode == "protected":
            self.signum = self.signum or signum
            self._pending = True
            return
        if self._mode == "deferred":
            if self.signum is None:
                self.signum = signum
                print(f"\n{signal.Signals(signum).name}: stopping after this step "
                      "(once more to abort without saving)...", flush=True)
                return
            raise Interrupted(signum, forced=True)
        self.signum = signum
        raise Interrupted(signum)

    @contextmanager
    def _in(self, mode):
        before, self._mode = self._mode, mode
        try:
            yield self
        finally:
            self._mode = before

    def deferred(self):
        return self._in("deferred")

    @contextmanager
    def protected(self):
        self._pending = False
        with self._in("protected"):
            yield self
        if self._pending and self._mode == "now":
            raise Interrupted(self.signum)

    def __enter__(self):
        for s in self.SIGNALS:
            self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)


# --- numbers that went bad ----------------------------------------------------------------------

def _value_of(loss):
    return float(loss.item() if hasattr(loss, "item") else loss)


def check_finite(loss, grad_norm, step):
    """The loss as a float; NonFiniteError naming the step if it or the gradient norm is not finite."""
    value = _value_of(loss)
    if not math.isfinite(value):
        raise NonFiniteError(f"non-finite loss ({value}) at step {step}")
    if not math.isfinite(grad_norm):
        raise NonFiniteError(f"non-finite gradient norm ({grad_norm}) at step {step}")
    return value


def check_finite_parameters(model, step):
    """NonFiniteError naming the first parameter holding a NaN or an infinity."""
    for name, p in model.named_parameters():
        if not bool(p.xp.isfinite(p.data).all()):
            raise NonFiniteError(f"non-finite weights in {name} at step {step}")


def record_evaluation(history, step, train_loss, val_loss):
    """Append [step, train, val] to history, replacing an entry for the same step (a resumed
    finished run evaluates its last step again)."""
    entry = [step, train_loss, val_loss]
    if history and history[-1][0] == step:
        history[-1] = entry
    else:
        history.append(entry)
