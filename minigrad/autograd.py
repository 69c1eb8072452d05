"""The autograd engine: Function (one op, forward and backward side by side),
the grad modes, and the backward pass that walks the graph in reverse.

A Tensor made by an op remembers the Function that made it (`tensor.creator`);
the Function remembers its input tensors. That chain is the graph.
`backward()` orders the Functions so that every consumer comes before what it
consumes, then hands each Function the gradient of its outputs and collects
the gradients of its inputs. It never recurses, so a 10,000-op chain is fine.
"""
import os
import time
import traceback
import weakref

from . import backend
from . import tensor as tensor_module  # Tensor is used at call time only

# --- modes (each a context manager that restores the old state in `finally`) ---------

_grad_enabled = True
_anomaly_enabled = False
_profiler = None  # a minigrad.debug.Profiler while `with minigrad.profile()` is active
_inside_backward = False  # anomaly checks inside a backward pass blame the op being differentiated
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def is_grad_enabled():
    return _grad_enabled


def _swap_grad_mode(mode):
    """Set the grad mode; returns the one it replaces."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, mode
    return previous


class set_grad_enabled:
    """Turn graph recording on or off, as a context manager or decorator.

    As in torch it takes effect when it is made, so set_grad_enabled(False) on its own
    line switches recording off (until set_grad_enabled(True)); `with` restores the old
    mode at the end of the block, and as a decorator it changes nothing until the call.
    """

    def __init__(self, mode):
        self.mode = bool(mode)
        self.previous = None
        if type(self) is set_grad_enabled:  # no_grad() and enable_grad() wait for `with`
            self.previous = _swap_grad_mode(self.mode)

    def __enter__(self):
        if self.previous is None:
            self.previous = _swap_grad_mode(self.mode)

    def __exit__(self, *exc):
        _swap_grad_mode(self.previous)
        self.previous = None

    def __call__(self, fn):
        if self.previous is not None:  # used as a decorator: undo the switch made by __init__
            _swap_grad_mode(self.previous)
            self.previous = None
        mode = self.mode

        def wrapper(*args, **kwargs):
            with _GradMode(mode):  # a fresh one per call, so recursion is safe
                return fn(*args, **kwargs)

        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        wrapper.__wrapped__ = fn
        return wrapper


class _GradMode(set_grad_enabled):
    """The grad mode for one `with` block (what the decorators use)."""


class no_grad(set_grad_enabled):
    """Record no graph: for evaluation, sampling and optimizer updates.
    `with no_grad():`, `@no_grad()` and `@no_grad` all work."""

    def __new__(cls, fn=None):
        if fn is not None:  # @no_grad without parentheses
            return _GradMode(False)(fn)
        return super().__new__(cls)

    def __init__(self, fn=None):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    def __new__(cls, fn=None):
        if fn is not None:
            return _GradMode(True)(fn)
        return super().__new__(cls)

    def __init__(self, fn=None):
        super().__init__(True)


def _set_anomaly(enabled):
    global _anomaly_enabled
    previous, _anomaly_enabled = _anomaly_enabled, enabled
    return previous


def _set_profiler(profiler):
    global _profiler
    previous, _profiler = _profiler, profiler
    return previous


class GraphFreedError(RuntimeError):
    """The graph behind a tensor was freed by an earlier backward(); `op_name` says where."""

    def __init__(self, message, op_name):
        super().__init__(message)
        self.op_name = op_name


class AnomalyError(FloatingPointError):
    """Raised in detect_anomaly mode when an op produces a NaN or an Inf."""


# --- Function -----------------------------------------------------------------------

class Function:
    """One differentiable op.

    Subclasses write two methods side by side:
      forward(*arrays) -> array or tuple of arrays, computed with `self.xp`
                          (numpy or cupy, whichever holds the inputs);
      backward(*gys)   -> the gradient of each input (Tensor or None), given the
                          gradient of each output, written with minigrad ops so
                          that the backward pass is itself differentiable.
    Gradients may come back in the broadcast shape of the output: the engine
    sums them down to each input's shape (`sum_to`), once, for every op.
    """

    needs_inputs = True   # backward reads the inputs' values (so editing them in place is an error)
    needs_output = False  # backward reads the output's value through `self.output`
    returns_view = False  # outputs share memory with inputs[0] (reshape, slicing, ...)

    def __call__(self, *inputs):
        arrays = [x.data for x in inputs]
        _check_same_device(self, inputs)
        self.xp = backend.get_array_module(*arrays)
        started = time.perf_counter() if _profiler is not None else None
        outputs = self.forward(*arrays)
        if started is not None:
            _profiler.record(self.name, "forward", time.perf_counter() - started)
        single = not isinstance(outputs, tuple)
        if single:
            outputs = (outputs,)

        record = _grad_enabled and any(x.requires_grad for x in inputs)
        # integer and boolean outputs (indices, masks) never carry gradients
        results = tuple(tensor_module.Tensor(y, requires_grad=record and y.dtype.kind == "f")
                        for y in outputs)
        if self.returns_view:  # an in-place edit through a view edits the input too
            for t in results:
                t._version_cell = inputs[0]._version_cell
        if _anomaly_enabled and not _inside_backward:
            self.created_at = _user_frame()
            _check_finite(self, inputs, outputs, "forward")
        if record:
            self.inputs = inputs
            self.input_versions = [x._version for x in inputs]
            self.outputs = [weakref.ref(t) for t in results]
            self.output_specs = [(y.shape, y.dtype) for y in outputs]
            if self.needs_output:
                self.output_data, self.output_version = outputs[0], results[0]._version
            for index, t in enumerate(results):
                if t.requires_grad:
                    t.creator, t.output_index = self, index
        return results[0] if single else results

    @property
    def name(self):
        return type(self).__name__

    @property
    def output(self):
        """The (first) output as a Tensor; part of the graph when it is still alive."""
        alive = self.outputs[0]()
        if alive is not None:
            return alive
        return tensor_module.Tensor(self.output_data)

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, *gys):
        raise NotImplementedError

    def check_unchanged(self):
        """Refuse to compute a gradient from values edited in place since forward."""
        changed = [i for i, (x, v) in enumerate(zip(self.inputs, self.input_versions))
                   if x._version != v]
        if self.needs_inputs and changed:
            raise RuntimeError(
                f"{self.name}: input {changed[0]} (shape {self.inputs[changed[0]].shape}) was "
                "modified in place after the forward pass, but backward needs its old value. "
                "Use an out-of-place op (x = x + y), or edit a copy (minigrad.tensor(x) copies).")
        out = self.outputs[0]()
        if self.needs_output and out is not None and out._version != self.output_version:
            raise RuntimeError(
                f"{self.name}: its output (shape {out.shape}) was modified in place after the "
                "forward pass, but backward needs its value. Use an out-of-place op instead.")

    def release(self):
        """Drop the inputs and saved arrays: the graph behind this op is freed."""
        name = self.name
        self.__dict__.clear()
        self.released_name = name


class FusedFunction(Function):
    """An op whose forward and backward run as a few array passes, for speed.

    backward_arrays(*gys) computes the input gradients on raw arrays from values
    the forward saved. `composite(*inputs)` builds the same value from primitive
    minigrad ops; it is the readable definition, the reference the tests compare
    with, and what gets differentiated when a graph of the backward pass is
    wanted (create_graph=True), so gradients of gradients still work.
    """

    def backward(self, *gys):
        if _grad_enabled:  # recording the backward pass: differentiate the composite
            with enable_grad():
                value = self.composite(*self.inputs)
            wrt = [x for x in self.inputs if x.requires_grad]
            found = iter(grad(value, wrt, gys[0], create_graph=True, allow_unused=True))
            return tuple(next(found) if x.requires_grad else None for x in self.inputs)
        gxs = self.backward_arrays(*[g.data for g in gys])
        if not isinstance(gxs, tuple):
            gxs = (gxs,)
        return tuple(None if g is None else tensor_module.Tensor(g) for g in gxs)

    def backward_arrays(self, *gys):
        raise NotImplementedError

    def composite(self, *inputs):
        raise NotImplementedError


def _check_same_device(function, inputs):
    devices = {x.device for x in inputs}
    if len(devices) > 1:
        shown = ", ".join(f"{x.shape} on {x.device}" for x in inputs)
        raise RuntimeError(
            f"{function.name}: inputs are on different devices ({shown}); "
            "move them to one device with .to('cpu') or .to('cuda') first.")


def _user_frame():
    """The innermost stack frame outside minigrad: the user's line that made the op."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return frame
    return None


def _check_finite(function, inputs, arrays, phase):
    for array in arrays:
        if array is None or array.dtype.kind not in "fc":
            continue
        if not bool(function.xp.isfinite(array).all()):
            shapes = ", ".join(str(x.shape) for x in inputs)
            where = ""
            frame = getattr(function, "created_at", None)
            if frame is not None:
                where = f"\nThe op was created at {frame.filename}:{frame.lineno}: {frame.line}"
            raise AnomalyError(
                f"{function.name} produced NaN or Inf in its {phase} pass "
                f"(input shapes: {shapes}).{where}")


# --- the backward pass --------------------------------------------------------------

def topological_order(roots):
    """The Functions behind `roots`, each before every Function it consumes from.

    Iterative depth-first search: a Function is appended after all of its
    inputs' creators, and the reversed list puts consumers first.
    """
    order, visited = [], set()
    stack = [(t.creator, False) for t in roots if t.creator is not None]
    while stack:
        function, inputs_done = stack.pop()
        if inputs_done:
            order.append(function)
            continue
        if function in visited:
            continue
        visited.add(function)
        if not hasattr(function, "inputs"):
            raise GraphFreedError(
                f"backward through {function.released_name} a second time: its graph was "
                "freed after the first backward(). Pass retain_graph=True to the first call "
                "if you need to backpropagate through it again.", function.released_name)
        stack.append((function, True))
        for x in function.inputs:
            if x.creator is not None and x.creator not in visited:
                stack.append((x.creator, False))
    order.reverse()
    return order


def run_backward(roots, root_grads, retain_graph=False, create_graph=False, wrt=None):
    """Backpropagate from `roots` (seeded with `root_grads`).

    With `wrt` (a list of tensors) the gradients are returned for those tensors
    and no .grad is touched (that is `minigrad.grad`); without it they are
    accumulated into the .grad of the leaves (that is `Tensor.backward`).
    """
    order = topological_order(roots)
    needed = None if wrt is None else _leading_to(order, {id(t) for t in wrt})
    pending = {}       # Function -> list with the gradient of each of its outputs
    leaf_grads = {}    # id(leaf) -> [leaf, gradient]; the leaf is held so its id stays valid
    wanted = {} if wrt is None else {id(t): None for t in wrt}

    def deliver(t, g):
        if t.creator is None:
            slot = leaf_grads.setdefault(id(t), [t, None])
            slot[1] = g if slot[1] is None else slot[1] + g
            return
        slots = pending.setdefault(t.creator, [None] * len(t.creator.outputs))
        i = t.output_index
        slots[i] = g if slots[i] is None else slots[i] + g

    for root, g in zip(roots, root_grads):
        deliver(root, g)

    with set_grad_enabled(create_graph):
        for function in order:
            gys = pending.pop(function, None)
            if gys is None:
                continue  # no gradient reaches this op
            _finish_output_grads(function, gys, wanted, wrt is None)
            if needed is not None and function not in needed:
                if not retain_graph:
                    function.release()
                continue  # nothing wanted lies behind this op
            function.check_unchanged()
            gxs = _call_backward(function, gys)
            for x, gx in zip(function.inputs, gxs):
                if gx is None or not x.requires_grad:
                    continue
                if gx.shape != x.shape:
                    gx = gx.sum_to(x.shape)  # undo broadcasting, once, for every op
                deliver(x, gx)
            if not retain_graph:
                function.release()

        for leaf, g in leaf_grads.values():
            if wrt is not None and id(leaf) not in wanted:
                continue
            g = leaf._run_hooks(g)
            if id(leaf) in wanted:
                wanted[id(leaf)] = g
            elif wrt is None:
                leaf._accumulate_grad(g, keep_graph=create_graph)
    return None if wrt is None else [wanted[id(t)] for t in wrt]


def _leading_to(order, wanted_ids):
    """The ops in `order` through which a gradient reaches one of the wanted tensors."""
    needed = set()
    for function in reversed(order):  # inputs' creators come before their consumers here
        if any(id(x) in wanted_ids or x.creator in needed for x in function.inputs):
            needed.add(function)
    return needed


def _finish_output_grads(function, gys, wanted, accumulate):
    """An op's output gradients are complete: run hooks, retain_grad, fill gaps."""
    for i, ref in enumerate(function.outputs):
        t = ref()
        if t is None and gys[i] is not None and i in getattr(function, "output_hooks", {}):
            # the user dropped the tensor, not its hooks: the op kept them (Tensor._set_hooks)
            gys[i] = tensor_module.run_hooks(function.output_hooks[i], gys[i])
        if t is not None and gys[i] is not None:
            gys[i] = t._run_hooks(gys[i])
            if id(t) in wanted:
                wanted[id(t)] = gys[i]
            if accumulate and t._retains_grad:
                t._accumulate_grad(gys[i], keep_graph=_grad_enabled)
        if gys[i] is None:  # an output that nothing used: its gradient is zero
            shape, dtype = function.output_specs[i]
            gys[i] = tensor_module.Tensor(function.xp.zeros(shape, dtype))


def _call_backward(function, gys):
    global _inside_backward
    started = time.perf_counter() if _profiler is not None else None
    _inside_backward, outer = True, _inside_backward
    try:
        gxs = function.backward(*gys)
    finally:
        _inside_backward = outer
    if not isinstance(gxs, tuple):
        gxs = (gxs,)
    if started is not None:
        _profiler.record(function.name, "backward", time.perf_counter() - started)
    if _anomaly_enabled:
        _check_finite(function, function.inputs,
                      [None if g is None else g.data for g in gxs], "backward")
    return gxs


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """The gradients of `outputs` with respect to `inputs`, returned, not stored in .grad.

    outputs: a Tensor or list of Tensors; grad_outputs: their seed gradients
    (needed unless each output is a scalar). create_graph=True records the
    backward pass, so the result can be differentiated again.
    """
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    seeds = [_seed_gradient(y, g) for y, g in zip(outputs, grad_outputs)]
    if retain_graph is None:
        retain_graph = create_graph
    found = run_backward(outputs, seeds, retain_graph, create_graph, wrt=inputs)
    for x, g in zip(inputs, found):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"an input of shape {x.shape} was not used to compute the outputs; "
                "pass allow_unused=True to get None for it.")
    return found


def _seed_gradient(output, given):
    if not output.requires_grad:
        raise RuntimeError(
            "this tensor does not require grad and has no graph: did you compute it under "
            "no_grad(), or from tensors made without requires_grad=True?")
    if given is None:
        if output.numel() != 1:
            raise RuntimeError(
                f"backward() on a tensor of shape {output.shape} needs a gradient argument; "
                "an implicit gradient exists only for a single-element (scalar) output, "
                "e.g. call loss.sum().backward() or pass grad=ones_like(output).")
        return tensor_module.Tensor(output.xp.ones(output.shape, output.dtype))
    given = tensor_module.as_tensor(given, like=output)
    if given.shape != output.shape:
        raise ValueError(f"gradient shape {given.shape} does not match output shape {output.shape}")
    return given



def as_tensor(value, like=None):
    """A Tensor from a Tensor, array or Python number (numbers take `like`'s dtype and device)."""
    return tensor_module.as_tensor(value, like=like)


__all__ = ["is_grad_enabled", "set_grad_enabled", "no_grad", "enable_grad", "GraphFreedError",
           "AnomalyError", "Function", "FusedFunction", "topological_order",
           "run_backward", "grad"]
