"""Learning-rate schedules, as torch.optim.lr_scheduler: make one after the optimizer and
call scheduler.step() once per optimizer.step().

Each scheduler computes the learning rate of step t in closed form (`lr_at`) from each
group's initial_lr, so the formulas are readable in one place, the tests check them
directly, and a scheduler restored with load_state_dict continues exactly.
"""
import bisect
import math

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR",
           "CosineAnnealingLR", "LinearLR", "ConstantLR", "SequentialLR", "OneCycleLR"]


class LRScheduler:
    """Sets each group's lr to lr_at(initial_lr, t) at step t = last_epoch (0 when made)."""

    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, base_lr, t):
        raise NotImplementedError

    def step(self):
        self.last_epoch += 1
        self._apply()

    def _apply(self):
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(base, self.last_epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        return list(self._last_lr)

    def state_dict(self):
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state):
        self.last_epoch = int(state["last_epoch"])
        self.base_lrs = [float(lr) for lr in state["base_lrs"]]
        self._apply()


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(t); one function for all groups, or one per group."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        groups = len(optimizer.param_groups)
        many = isinstance(lr_lambda, (list, tuple))
        self.lr_lambdas = list(lr_lambda) if many else [lr_lambda] * groups
        if len(self.lr_lambdas) != groups:
            raise ValueError(f"LambdaLR: {len(self.lr_lambdas)} functions for {groups} groups")
        super().__init__(optimizer, last_epoch)

    def _apply(self):
        for group, base, fn in zip(self.optimizer.param_groups, self.base_lrs, self.lr_lambdas):
            group["lr"] = base * fn(self.last_epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


class StepLR(LRScheduler):
    """lr = initial_lr * gamma ** (t // step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be at least 1, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        return base_lr * self.gamma ** (t // self.step_size)


class MultiStepLR(LRScheduler):
    """lr = initial_lr * gamma ** (number of milestones <= t)."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, t)


class ExponentialLR(LRScheduler):
    """lr = initial_lr * gamma ** t."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        return base_lr * self.gamma ** t


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial_lr - eta_min) (1 + cos(pi t / T_max)) / 2 (periodic past T_max,
    as torch's)."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):  # noqa: N803 - torch's name
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be at least 1, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        cosine = (1 + math.cos(math.pi * t / self.T_max)) / 2
        return self.eta_min + (base_lr - self.eta_min) * cosine


class LinearLR(LRScheduler):
    """lr = initial_lr * factor, factor going linearly from start_factor to end_factor over
    total_iters steps, then staying at end_factor."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: factors must lie in (0, 1] and [0, 1], got "
                             f"{start_factor} and {end_factor}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        done = min(t, self.total_iters) / self.total_iters if self.total_iters else 1.0
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * done)


class ConstantLR(LRScheduler):
    """lr = initial_lr * factor for t < total_iters, then initial_lr."""

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        return base_lr * (self.factor if t < self.total_iters else 1.0)


class SequentialLR(LRScheduler):
    """schedulers[i] from milestones[i - 1] on, each counting its steps from 0 at its start
    (warmup with LinearLR, then CosineAnnealingLR, for example)."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: {len(schedulers)} schedulers need "
                             f"{len(schedulers) - 1} milestones, got {len(milestones)}")
        if any(s.optimizer is not optimizer for s in schedulers):
            raise ValueError("SequentialLR: every scheduler must drive the same optimizer")
        self.schedulers, self.milestones = list(schedulers), list(milestones)
        super().__init__(optimizer, last_epoch)

    def _apply(self):
        i = bisect.bisect_right(self.milestones, self.last_epoch)
        start = self.milestones[i - 1] if i else 0
        active = self.schedulers[i]
        active.last_epoch = self.last_epoch - start
        active.base_lrs = self.base_lrs
        active._apply()
        self._last_lr = active.get_last_lr()


class OneCycleLR(LRScheduler):
    """Smith's 1cycle policy, as torch's: lr rises from max_lr / div_factor to max_lr over the
    first pct_start of total_steps, then falls to that / final_div_factor (cosine or linear
    anneal); momentum (SGD's momentum or Adam's beta1) cycles the other way between
    max_momentum and base_momentum. Stepping past total_steps is an error."""

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True,
                 base_momentum=0.85, max_momentum=0.95, div_factor=25.0,
                 final_div_factor=1e4, three_phase=False, last_epoch=-1):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR needs total_steps, or epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if total_steps < 2 or not 0 < pct_start < 1:
            raise ValueError(f"OneCycleLR: total_steps must be at least 2 and pct_start in "
                             f"(0, 1), got {total_steps} and {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', "
                             f"got {anneal_strategy!r}")
        self.total_steps, self.anneal_strategy = total_steps, anneal_strategy
        self.cycle_momentum = cycle_momentum
        groups = optimizer.param_groups
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(groups)
        for group, peak in zip(groups, max_lrs):
            group["initial_lr"] = peak / div_factor
            group["max_lr"], group["min_lr"] = peak, peak / div_factor / final_div_factor
        up = float(pct_start * total_steps) - 1
        if three_phase:
            self.phases = [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                           (2 * up, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                           (total_steps - 1, "initial_lr", "min_lr", "max_momentum",
                            "max_momentum")]
        else:
            self.phases = [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                           (total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        self.momenta = {"base_momentum": base_momentum, "max_momentum": max_momentum}
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _apply(self):
        t = self.last_epoch
        if t >= self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {t + 1} times, but total_steps is "
                             f"{self.total_steps}")
        for group in self.optimizer.param_groups:
            begin = 0.0
            for end, lr_from, lr_to, m_from, m_to in self.phases:
                if t <= end or end == self.phases[-1][0]:
                    pct = (t - begin) / (end - begin) if end > begin else 1.0
                    group["lr"] = self._anneal(group[lr_from], group[lr_to], pct)
                    momentum = self._anneal(self.momenta[m_from], self.momenta[m_to], pct)
                    break
                begin = end
            if self.cycle_momentum:
                if "betas" in group:
                    group["betas"] = (momentum, group["betas"][1])
                elif "momentum" in group:
                    group["momentum"] = momentum
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
