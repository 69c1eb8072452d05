"""Optimizers (SGD, Adam, AdamW), gradient clipping and a warmup + cosine schedule;
torch's learning-rate schedulers are in minigrad.optim.lr_scheduler.

The update rules follow PyTorch's exactly, so results can be compared with it.
Updates change parameters in place (their arrays are reused, no new graph),
and the optimizer state saves and restores with the model so training resumes
exactly where it stopped.
"""
import math
from functools import partial

from .. import backend, threads
from ..autograd import no_grad
from . import lr_scheduler  # noqa: F401 - torch.optim.lr_scheduler's place


class Optimizer:
    """Holds parameter groups (dicts with 'params' and hyperparameters) and per-parameter state."""

    defaults = {}

    def __init__(self, params, lr=None, **hyperparameters):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if lr is not None:  # positional, as torch.optim.SGD(model.parameters(), 0.1)
            hyperparameters["lr"] = lr
        unknown = sorted(set(hyperparameters) - set(self.defaults))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown hyperparameters {unknown}; "
                            f"it takes {sorted(self.defaults)}")
        self.hyperparameters = hyperparameters
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        for group in groups:
            self.add_param_group(group)
        self.state = {}  # parameter index (over all groups, in order) -> {name: array or number}

    def add_param_group(self, group):
        """A group of parameters with its own hyperparameters (the others from the optimizer's).
        Groups are plain dicts: change group['lr'] and the next step uses it."""
        filled = {**self.defaults, **self.hyperparameters, **group, "params": list(group["params"])}
        filled.setdefault("initial_lr", filled["lr"])
        self.param_groups.append(filled)

    def _indexed_params(self):
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                yield index, group, p
                index += 1

    def zero_grad(self, set_to_none=True):
        for _, _, p in self._indexed_params():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data[...] = 0

    # True where update() touches only its own parameter and state: step() may then update
    # the parameters in as many shares as minigrad has threads, at once, for models of at
    # least parallel_from elements (below that, e.g. 0.8M, the shares' Python work held on
    # to the GIL and the shared step was slower than one thread's)
    independent_updates = False
    parallel_from = 1 << 22

    @no_grad()
    def step(self):
        work = [(index, group, p) for index, group, p in self._indexed_params()
                if p.grad is not None]
        if work:
            threads.run_in_parallel([partial(self._update_all, s) for s in self._shares(work)])
        for _, _, p in work:
            p._version_cell[0] += 1  # p changed in place

    def _update_all(self, work):
        for index, group, p in work:
            self.update(p.data, p.grad.data, self.state.setdefault(index, {}), group)

    def _shares(self, work):
        """The work in one share per thread, of about equal sizes (the largest first, each
        to the smallest share so far); one share for small models or a dependent update."""
        total = sum(p.numel() for _, _, p in work)
        count = threads.workers() if self.independent_updates else 1
        on_gpu = backend.device_of(work[0][2].data) == "cuda"
        if count == 1 or total < self.parallel_from or on_gpu:
            return [work]
        shares, sizes = [[] for _ in range(count)], [0] * count
        for item in sorted(work, key=lambda item: -item[2].numel()):
            smallest = sizes.index(min(sizes))
            shares[smallest].append(item)
            sizes[smallest] += item[2].numel()
        return [share for share in shares if share]

    def update(self, param, grad, state, group):
        """Change the array `param` in place from `grad`."""
        raise NotImplementedError

    # --- saving and restoring -------------------------------------------------------

    def state_dict(self):
        """{'param_groups': [hyperparameters], 'state': {'<index>.<name>': numpy array}}."""
        groups = [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]
        arrays = {}
        for index, slots in self.state.items():
            for name, value in slots.items():  # arrays, and the step count as a 0-d array
                arrays[f"{index}.{name}"] = (backend.to_numpy(value) if backend.is_array(value)
                                             else backend.numpy.asarray(value))
        return {"param_groups": groups, "state": arrays}

    def load_state_dict(self, saved):
        groups = saved["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"optimizer state has {len(groups)} parameter groups, "
                             f"this optimizer has {len(self.param_groups)}")
        for own, loaded in zip(self.param_groups, groups):
            if not isinstance(loaded, dict):
                raise ValueError(f"optimizer parameter group: expected a dict, got {loaded!r:.80}")
            for k, v in loaded.items():
                number = isinstance(own.get(k), (int, float)) and not isinstance(own.get(k), bool)
                if number and not (isinstance(v, (int, float)) and not isinstance(v, bool)):
                    raise ValueError(f"optimizer parameter group: {k} must be a number, got {v!r:.80}")
        params = {index: p for index, _, p in self._indexed_params()}
        state = {}
        for key, array in saved["state"].items():
            index, _, name = str(key).partition(".")
            if not (index.isdigit() and name):
                raise ValueError(f"optimizer state {key!r}: expected '<parameter index>.<name>'")
            p = params.get(int(index))
            if p is None:
                raise ValueError(f"optimizer state for parameter {index}, which does not exist")
            if not hasattr(array, "dtype") or array.dtype.kind not in "fiub":
                raise ValueError(f"optimizer state {key}: expected a numeric array, got "
                                 f"{getattr(array, 'dtype', type(array).__name__)}")
            if array.ndim != 0 and tuple(array.shape) != p.shape:
                raise ValueError(f"optimizer state {key}: shape {tuple(array.shape)}, "
                                 f"parameter {p.shape}")
            if array.ndim == 0 and p.ndim != 0 and name != "step":
                raise ValueError(f"optimizer state {key}: a scalar, but parameter {p.shape} "
                                 "needs an array")
            value = array.item() if array.ndim == 0 else backend.to_device(array, p.device)
            state.setdefault(int(index), {})[name] = value
        for own, loaded in zip(self.param_groups, groups):
            own.update({k: v for k, v in loaded.items() if k != "params"})
        self.state = state


class SGD(Optimizer):
    """p -= lr * g, with optional momentum (PyTorch's form), Nesterov and L2 weight decay."""

    defaults = {"lr": 1e-2, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0,
                "nesterov": False}

    def update(self, param, grad, state, group):
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * param
        momentum = group["momentum"]
        if momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.copy()
            else:
                buffer = state["momentum_buffer"]
                buffer *= momentum
                buffer += (1 - group["dampening"]) * grad
            buffer = state["momentum_buffer"]
            grad = grad + momentum * buffer if group["nesterov"] else buffer
        param -= group["lr"] * grad


class Adam(Optimizer):
    """Adam; weight_decay here is L2 (added to the gradient), as in torch.optim.Adam."""

    independent_updates = True

    defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}
    decoupled = False

    def update(self, param, grad, state, group):
        xp = backend.get_array_module(param)
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_avg_sq"] = xp.zeros_like(param)
        state["step"] += 1
        arrays = param, xp.ascontiguousarray(grad), state["exp_avg"], state["exp_avg_sq"]
        for p, g, m, v in backend.blocks_of(*arrays):  # each block stays in cache
            self._update_block(p, g, m, v, group, state["step"])

    def _update_block(self, param, grad, m, v, group, step):
        xp = backend.get_array_module(param)
        beta1, beta2 = group["betas"]
        if group["weight_decay"]:
            if self.decoupled:  # AdamW: shrink the weights directly
                param *= 1 - group["lr"] * group["weight_decay"]
            else:
                grad = grad + group["weight_decay"] * param
        scratch = xp.multiply(grad, 1 - beta1, out=xp.empty_like(param))  # reused below
        m *= beta1
        m += scratch                               # m = b1 m + (1 - b1) g
        xp.multiply(grad, grad, out=scratch)
        scratch *= 1 - beta2
        v *= beta2
        v += scratch                               # v = b2 v + (1 - b2) g^2
        correction1, correction2 = 1 - beta1 ** step, 1 - beta2 ** step
        xp.sqrt(v, out=scratch)
        scratch *= 1 / math.sqrt(correction2)
        scratch += group["eps"]                    # sqrt(v_hat) + eps
        xp.divide(m, scratch, out=scratch)
        scratch *= group["lr"] / correction1
        param -= scratch                           # p -= lr m_hat / (sqrt(v_hat) + eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (p *= 1 - lr * wd before the Adam step)."""

    defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2}
    decoupled = True


def clip_grad_norm_(parameters, max_norm):
    """Scale all gradients together so their global L2 norm is at most max_norm.

    Returns the norm before clipping (as a float).
    """
    grads = [p.grad.data for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    # one dot product per gradient: no squared copy of every gradient each step
    total = math.sqrt(sum(float(g.ravel() @ g.ravel()) for g in grads))
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for g in grads:
            g *= scale
    return total


def warmup_cosine(step, warmup_steps, total_steps, min_ratio=0.1):
    """A learning-rate multiplier: linear warmup to 1, then cosine decay to min_ratio."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if step >= total_steps:
        return min_ratio
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class WarmupCosine:
    """Sets each group's lr to initial_lr * warmup_cosine(step); call step() once per update."""

    def __init__(self, optimizer, warmup_steps, total_steps, min_ratio=0.1):
        self.optimizer = optimizer
        self.warmup_steps, self.total_steps, self.min_ratio = warmup_steps, total_steps, min_ratio
        self.last_step = 0
        self._apply()

    def _apply(self):
        factor = warmup_cosine(self.last_step, self.warmup_steps, self.total_steps, self.min_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor

    def step(self):
        self.last_step += 1
        self._apply()

    def get_last_lr(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        return {"last_step": self.last_step}

    def load_state_dict(self, state):
        self.last_step = int(state["last_step"])
        self._apply()


def decay_groups(params, weight_decay):
    """Parameter groups with weight decay on matrices (ndim >= 2: Linear weights, embeddings)
    and none on vectors (biases, LayerNorm weights), as nanoGPT configures AdamW."""
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm_", "warmup_cosine", "WarmupCosine",
           "lr_scheduler", "decay_groups"]
