"""Loss functions by torch.nn.functional's names, each a composite of other ops.

Every loss takes reduction='mean' (the default), 'sum' or 'none' (one value per element
or per sample). cross_entropy lives in nn.py, fused with its softmax.
"""
from ..autograd import as_tensor
from .activations import softplus
from .elementwise import abs, clip, log  # noqa: A004
from .indexing import where
from .shape import squeeze, unsqueeze

REDUCTIONS = ("mean", "sum", "none")


def reduce(loss, reduction, op="loss"):
    """loss.mean(), loss.sum(), or loss itself ('none')."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()


def _same_shape(x, y, op):
    x, y = as_tensor(x), as_tensor(y, like=x)
    if x.shape != y.shape:
        raise ValueError(f"{op}: input of shape {x.shape} and target of shape {y.shape} differ "
                         "(broadcasting them is usually a bug; reshape one)")
    return x, y


def mse_loss(input, target, reduction="mean"):  # noqa: A002 - torch's argument name
    """(input - target)^2."""
    x, y = _same_shape(input, target, "mse_loss")
    d = x - y
    return reduce(d * d, reduction, "mse_loss")


def l1_loss(input, target, reduction="mean"):  # noqa: A002
    """|input - target|."""
    x, y = _same_shape(input, target, "l1_loss")
    return reduce(abs(x - y), reduction, "l1_loss")


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):  # noqa: A002
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (d = input - target)."""
    if beta <= 0:
        raise ValueError(f"smooth_l1_loss: beta must be positive, got {beta}")
    x, y = _same_shape(input, target, "smooth_l1_loss")
    d = abs(x - y)
    return reduce(where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta), reduction,
                  "smooth_l1_loss")


def huber_loss(input, target, reduction="mean", delta=1.0):  # noqa: A002
    """beta * smooth_l1 with beta = delta: 0.5 d^2 inside delta, delta (|d| - delta / 2) out."""
    return reduce(smooth_l1_loss(input, target, "none", delta) * delta, reduction, "huber_loss")


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):  # noqa: A002
    """-input[n, target[n]] for log-probabilities input (N, C) or (C,), integer target;
    weighted per class, ignore_index left out; 'mean' divides by the total weight."""
    x, target = as_tensor(input), as_tensor(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"nll_loss target must be integer class ids, got dtype {target.dtype}")
    if x.ndim == 1:
        x, target = unsqueeze(x, 0), target.reshape(1)
    if x.ndim != 2 or target.shape != x.shape[:1]:
        raise ValueError(f"nll_loss: input of shape {x.shape} needs a target of shape "
                         f"{x.shape[:1]}, got {target.shape}")
    classes = x.shape[1]
    valid = target.data != ignore_index
    picked = x.xp.where(valid, target.data, 0)
    if valid.any() and (int(picked.min()) < 0 or int(picked.max()) >= classes):
        raise IndexError(f"nll_loss: target {int(picked.max())} is out of range for "
                         f"{classes} classes")
    w = x.xp.ones(classes, x.dtype) if weight is None else as_tensor(weight).data.astype(x.dtype)
    per_sample = x.xp.where(valid, w[picked], 0).astype(x.dtype)
    chosen = squeeze(x.gather(1, as_tensor(picked[:, None])), 1)
    loss = -chosen * as_tensor(per_sample)
    if reduction == "mean":
        return loss.sum() / float(per_sample.sum())
    return reduce(loss, reduction, "nll_loss")


def binary_cross_entropy(input, target, weight=None, reduction="mean"):  # noqa: A002
    """-(y log p + (1 - y) log(1 - p)) for probabilities p; logs are clamped at -100 as in
    torch, so p = 0 or 1 gives a large finite loss, not inf."""
    p, y = _same_shape(input, target, "binary_cross_entropy")
    if p.numel() and (float(p.data.min()) < 0 or float(p.data.max()) > 1):
        raise ValueError("binary_cross_entropy: input must be probabilities in [0, 1]; "
                         "for logits use binary_cross_entropy_with_logits")
    loss = -(y * clip(log(p), low=-100.0) + (1.0 - y) * clip(log(1.0 - p), low=-100.0))
    if weight is not None:
        loss = loss * as_tensor(weight, like=p)
    return reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",  # noqa: A002
                                     pos_weight=None):
    """binary_cross_entropy(sigmoid(x), y) computed stably from logits x:
    (1 - y) x + (1 + (pos_weight - 1) y) softplus(-x)."""
    x, y = _same_shape(input, target, "binary_cross_entropy_with_logits")
    scale = 1.0 if pos_weight is None else 1.0 + (as_tensor(pos_weight, like=x) - 1.0) * y
    loss = (1.0 - y) * x + scale * softplus(-x)
    if weight is not None:
        loss = loss * as_tensor(weight, like=x)
    return reduce(loss, reduction, "binary_cross_entropy_with_logits")


def kl_div(input, target, reduction="mean", log_target=False):  # noqa: A002
    """target (log target - input) for log-probabilities input (torch's argument order);
    0 where target is 0. reduction='batchmean' divides the sum by the batch size, the true KL."""
    x, t = _same_shape(input, target, "kl_div")
    if log_target:
        loss = t.exp() * (t - x)
    else:
        positive = as_tensor(t.data > 0)
        safe = where(positive, t, 1.0)  # log(1) = 0 where t = 0: no nan in the gradient
        loss = where(positive, t * (log(safe) - x), 0.0)
    if reduction == "batchmean":
        return loss.sum() / (x.shape[0] if x.ndim else 1)
    return reduce(loss, reduction, "kl_div")


__all__ = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "nll_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"]
