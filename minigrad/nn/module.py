"""Module and Parameter: the building blocks models are made of.

A Module finds its parameters and submodules by looking at its attributes, so
a model is just a class whose __init__ assigns Parameters and Modules:

    class Linear(Module):
        def __init__(self, n_in, n_out):
            super().__init__()
            self.weight = Parameter(randn(n_out, n_in) * 0.02)
        def forward(self, x):
            return x @ self.weight.T
"""
from .. import backend
from ..checkpoint import CheckpointError, load_arrays, save_arrays
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that is a learnable weight of a Module (requires_grad by default)."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class for layers and models: override forward(); call the module like a function."""

    training = True

    def __init__(self):
        self.training = True

    def __call__(self, *args, **kwargs):
        hooks = vars(self).get("_forward_hooks")
        if not hooks:  # the usual case: nothing registered, nothing extra to do
            return self.forward(*args, **kwargs)
        for hook in list(hooks["pre"].values()):
            replaced = hook(self, args)
            if replaced is not None:  # a hook may hand forward new positional arguments
                args = replaced if isinstance(replaced, tuple) else (replaced,)
        output = self.forward(*args, **kwargs)
        for hook in list(hooks["post"].values()):
            replaced = hook(self, args, output)
            if replaced is not None:  # ... or replace the output
                output = replaced
        return output

    # --- forward hooks -----------------------------------------------------------------

    def register_forward_pre_hook(self, hook):
        """Call hook(module, args) before each forward; args is the tuple of positional
        arguments (keywords go to forward unchanged). A non-None return replaces args
        (a tuple, or one value for a single argument). Returns a handle: handle.remove()."""
        return self._add_forward_hook("pre", hook)

    def register_forward_hook(self, hook):
        """Call hook(module, args, output) after each forward; a non-None return replaces
        the output. Use it to look inside a model without copying its forward:

            seen = {}
            handle = model.transformer.h[0].register_forward_hook(
                lambda module, args, out: seen.update(block0=out.detach()))
            model(idx); handle.remove()
        """
        return self._add_forward_hook("post", hook)

    def _add_forward_hook(self, kind, hook):
        if not callable(hook):
            raise TypeError(f"a forward hook must be callable, got {type(hook).__name__}")
        hooks = vars(self).setdefault("_forward_hooks", {"pre": {}, "post": {}})
        key = object()  # identifies this registration, even for the same function twice
        hooks[kind][key] = hook
        return ForwardHookHandle(hooks[kind], key)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    # --- finding parameters ----------------------------------------------------------

    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self):
        return [m for _, m in self.named_children()]

    def modules(self):
        return [m for _, m in self.named_modules()]

    def apply(self, fn):
        """Call fn(module) on every submodule, children first, then on self (as torch)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def register_buffer(self, name, tensor, persistent=True):
        """Keep a tensor that is state but not a parameter (a running mean, a mask): it moves
        with to(), is saved in state_dict (unless persistent=False), and is never trained."""
        if "." in name or not name:
            raise KeyError(f"buffer name must be a non-empty name without dots, got {name!r}")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer({name!r}) needs a Tensor or None, "
                            f"got {type(tensor).__name__}")
        buffers = self.__dict__.setdefault("_buffers", {})
        buffers[name] = persistent
        setattr(self, name, tensor)

    def named_buffers(self, prefix="", persistent_only=False):
        for module_name, module in self.named_modules(prefix):
            for name, persistent in vars(module).get("_buffers", {}).items():
                value = vars(module).get(name)
                if value is not None and (persistent or not persistent_only):
                    yield (f"{module_name}.{name}" if module_name else name), value

    def buffers(self):
        return [b for _, b in self.named_buffers()]

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze every parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def named_modules(self, prefix=""):
        """This module and every submodule, depth first, with dotted names."""
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            yield name, module
            children = [(f"{name}.{child}" if name else child, m)
                        for child, m in module.named_children()]
            stack.extend(reversed(children))

    def named_parameters(self, prefix="", remove_duplicate=True):
        """(dotted name, Parameter) pairs; a shared (tied) parameter is listed once."""
        seen = set()
        for module_name, module in self.named_modules(prefix):
            for name, value in vars(module).items():
                if isinstance(value, Parameter):
                    if remove_duplicate and id(value) in seen:
                        continue
                    seen.add(id(value))
                    yield (f"{module_name}.{name}" if module_name else name), value

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def num_parameters(self):
        return sum(p.numel() for p in self.parameters())

    def zero_grad(self, set_to_none=True):
        """Drop every gradient (set_to_none=False fills them with zeros instead)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = Tensor(p.xp.zeros_like(p.grad.data))

    # --- modes and devices -------------------------------------------------------------

    def train(self, mode=True):
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self):
        return self.train(False)

    def to(self, *args, device=None, dtype=None):
        """Move every parameter and buffer to 'cpu' or 'cuda' and/or cast the floating ones
        to a dtype, in place: to('cuda'), to(minigrad.float64), to('cpu', minigrad.float16)."""
        for arg in args:
            if isinstance(arg, str) or arg is None:
                device = arg
            else:
                dtype = arg
        for t in self.parameters() + self.buffers():
            array = t.data if device is None else backend.to_device(t.data, device)
            if dtype is not None and array.dtype.kind == "f":
                array = array.astype(dtype)
            t._data = array  # our own tensors: replacing them is not an in-place edit of values
            t._version_cell[0] += 1
            if t.grad is not None:
                grad = t.grad.data if device is None else backend.to_device(t.grad.data, device)
                t.grad = Tensor(grad.astype(array.dtype) if dtype is not None else grad)
        return self

    def half(self):
        return self.to(backend.numpy.float16)

    def float(self):
        return self.to(backend.numpy.float32)

    def double(self):
        return self.to(backend.numpy.float64)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    # --- state and checkpoints ---------------------------------------------------------

    def state_dict(self):
        """{dotted name: NumPy copy} of parameters and persistent buffers; tied parameters
        appear under each of their names."""
        state = {name: p.numpy() for name, p in self.named_parameters(remove_duplicate=False)}
        state.update((name, b.numpy()) for name, b in self.named_buffers(persistent_only=True))
        return state

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters, checking names and shapes first.

        Nothing is changed unless every check passes. With strict=False, missing
        and unexpected names are allowed (shapes must still match).
        """
        if not isinstance(state, dict):
            raise TypeError(f"load_state_dict expects a dict of arrays, got {type(state).__name__}")
        own = dict(self.named_parameters(remove_duplicate=False))
        own.update(self.named_buffers(persistent_only=True))
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        problems = []
        if strict and missing:
            problems.append(f"missing: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected: {', '.join(unexpected)}")
        for name in sorted(set(own) & set(state)):
            kind_problem = _kind_problem(name, state[name], own[name])
            if kind_problem:
                problems.append(kind_problem)
            elif tuple(state[name].shape) != own[name].shape:
                problems.append(f"shape of {name}: checkpoint {tuple(state[name].shape)}, "
                                f"model {own[name].shape}")
        if problems:
            raise ValueError(f"cannot load state into {type(self).__name__}: " + "; ".join(problems))
        for name in sorted(set(own) & set(state)):
            p = own[name]
            with_dtype = backend.numpy.asarray(state[name]).astype(p.dtype)
            p.data = backend.to_device(with_dtype, p.device)

    def save(self, path, metadata=None):
        """Write the parameters to an .npz checkpoint (atomically)."""
        save_arrays(path, self.state_dict(), {"module": type(self).__name__, **(metadata or {})})

    def load(self, path, strict=True):
        """Read parameters saved by save(); returns the checkpoint's metadata."""
        arrays, metadata = load_arrays(path)
        try:
            self.load_state_dict(arrays, strict=strict)
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{path}: {error}") from error
        return metadata

    # --- printing --------------------------------------------------------------------

    def extra_repr(self):
        return ""

    def __repr__(self):
        children = list(self.named_children())
        extra = self.extra_repr()
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = [f"{type(self).__name__}("] + ([f"  {extra}"] if extra else [])
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)


def _kind_problem(name, value, parameter):
    """What makes `value` unfit to load into `parameter` (not an array, wrong dtype kind), or None."""
    if not hasattr(value, "dtype") or not hasattr(value, "shape"):
        return f"{name}: expected an array, got {type(value).__name__}"
    kind, wanted = value.dtype.kind, parameter.dtype.kind
    if value.dtype.fields is not None:
        return f"{name}: dtype {value.dtype} is a structured array, not numbers"
    allowed = {"f": "fiu", "i": "iu", "u": "iu", "b": "b", "c": "fiuc"}.get(wanted, wanted)
    if kind not in allowed:
        noun = {"f": "float", "i": "integer", "u": "integer", "b": "bool", "c": "complex"}.get(wanted, wanted)
        return f"{name}: dtype {value.dtype} cannot be loaded into a {noun} parameter ({parameter.dtype})"
    return None


class ForwardHookHandle:
    """Returned by register_forward_hook / register_forward_pre_hook: remove() unregisters
    the hook (twice is harmless); as a context manager it removes the hook on exit."""

    def __init__(self, hooks, key):
        self._hooks, self._key = hooks, key

    def remove(self):
        self._hooks.pop(self._key, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class ModuleList(Module):
    """A list of modules whose parameters are named by position: h.0, h.1, ..."""

    def __init__(self, modules=()):
        super().__init__()
        self._modules = list(modules)

    def named_children(self):
        return ((str(i), m) for i, m in enumerate(self._modules))

    def __getitem__(self, index):
        return self._modules[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def append(self, module):
        self._modules.append(module)
        return self

    def extend(self, modules):
        self._modules.extend(modules)
        return self

    def insert(self, index, module):
        self._modules.insert(index, module)

    def __setitem__(self, index, module):
        self._modules[index] = module


class Sequential(ModuleList):
    """Modules applied one after the other: Sequential(Linear(4, 8), ReLU(), Linear(8, 2)).
    Their parameters are named by position (0.weight, 2.bias), as in torch."""

    def __init__(self, *modules):
        if len(modules) == 1 and isinstance(modules[0], dict):
            super().__init__()
            self._modules, self._names = list(modules[0].values()), list(modules[0])
            return
        super().__init__(modules)

    def named_children(self):
        names = vars(self).get("_names") or [str(i) for i in range(len(self._modules))]
        return iter(zip(names, self._modules))

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(*self._modules[index])
        return self._modules[index]

    def forward(self, x):
        for module in self._modules:
            x = module(x)
        return x


class ModuleDict(Module):
    """Named submodules, as nanoGPT's `transformer = ModuleDict(wte=..., h=...)`."""

    def __init__(self, modules=None, **named):
        super().__init__()
        self._modules = {**dict(modules or {}), **named}

    def named_children(self):
        return iter(self._modules.items())

    def __getattr__(self, name):
        modules = self.__dict__.get("_modules", {})
        if name in modules:
            return modules[name]
        raise AttributeError(f"ModuleDict has no module {name!r}")

    def __getitem__(self, name):
        return self._modules[name]

    def __setitem__(self, name, module):
        self._modules[name] = module

    def __contains__(self, name):
        return name in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def update(self, modules):
        self._modules.update(modules)


__all__ = ["Parameter", "Module", "ModuleList", "Sequential", "ModuleDict"]
