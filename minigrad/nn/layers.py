"""torch.nn's layers: Linear, Embedding, LayerNorm, Dropout, the activations, Identity,
Flatten, and the losses as modules.

Each layer is a small Module: __init__ makes its Parameters, forward() shows
the math, and the heavy lifting is done by minigrad's fused ops
(minigrad.functional). Random initialization draws from minigrad's generators,
so `minigrad.manual_seed(n)` (or an explicit `generator=`) makes it repeat.

`softmax_composite` sits here too: softmax spelled out from primitive ops, for
reading next to the fused `minigrad.functional.softmax`.
"""
import math

from .. import creation
from .. import functional as F
from .module import Module, Parameter


class Linear(Module):
    """y = x @ W.T + b, with W stored as (out_features, in_features) like PyTorch.

    Init: W ~ normal with std 1/sqrt(in_features) (keeps unit-variance inputs
    at unit variance), b = 0. PyTorch draws both from a uniform distribution instead;
    GPT overrides either with its own init, so the choice rarely matters.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, generator=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        std = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(creation.randn(out_features, in_features, device=device,
                                               generator=generator) * std)
        self.bias = Parameter(creation.zeros(out_features, device=device)) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)  # x @ W.T + b: (..., in) -> (..., out)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Embedding(Module):
    """A lookup table: integer ids (any shape) -> rows of weight (num_embeddings, dim)."""

    def __init__(self, num_embeddings, embedding_dim, device=None, generator=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(creation.randn(num_embeddings, embedding_dim, device=device,
                                               generator=generator))

    def forward(self, idx):
        return F.embedding(self.weight, idx)  # (...) -> (..., dim)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    """Normalize the last axis to zero mean and unit variance, then scale and shift.

    bias=False leaves out the shift (nanoGPT's option; slightly faster, no worse).
    """

    def __init__(self, dim, eps=1e-5, bias=True, device=None):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = Parameter(creation.ones(dim, device=device))
        self.bias = Parameter(creation.zeros(dim, device=device)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight, self.bias, self.eps)  # (..., dim)

    def extra_repr(self):
        return f"{self.dim}, eps={self.eps}, bias={self.bias is not None}"


class Dropout(Module):
    """Zero each element with probability p while training; identity in eval mode."""

    def __init__(self, p=0.5, generator=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p, self.generator = p, generator

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.generator)

    def extra_repr(self):
        return f"p={self.p}"


class GELU(Module):
    """x * Phi(x); approximate='tanh' is the formula GPT-2 was trained with."""

    def __init__(self, approximate="tanh"):
        super().__init__()
        if approximate not in ("tanh", "none"):
            raise ValueError(f"GELU approximate must be 'tanh' or 'none', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


def softmax_composite(x, axis=-1):
    """softmax(x) = exp(x) / sum(exp(x)), written with primitive ops.

    Use it to read or step through softmax's math: autograd differentiates the
    four ops below on its own, no hand-written backward needed. Use the fused
    `minigrad.functional.softmax` everywhere else: it computes the same values
    in one pass, keeps only its output for backward, and has a one-line
    gradient (s * (g - sum(g * s))), so it is faster and uses less memory.
    Tests check that the two agree in value and gradient.
    """
    # Subtracting the row maximum changes nothing mathematically (it cancels in
    # the ratio) but keeps exp() from overflowing. The shift is a constant as
    # far as the gradient is concerned, so it is detached from the graph.
    shift = x.max(axis=axis, keepdims=True).detach()
    e = (x - shift).exp()
    return e / e.sum(axis=axis, keepdims=True)


# --- activations as modules -----------------------------------------------------------------

class Identity(Module):
    """Returns its input (a placeholder, e.g. for a layer switched off)."""

    def __init__(self, *args, **kwargs):  # torch's Identity ignores its arguments too
        super().__init__()

    def forward(self, x):
        return x


class ReLU(Module):
    def __init__(self, inplace=False):  # inplace is accepted and ignored: no in-place graph
        super().__init__()

    def forward(self, x):
        return F.relu(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class SiLU(Module):
    def forward(self, x):
        return F.silu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Softplus(Module):
    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, x):
        return F.log_softmax(x, self.dim)


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


# --- losses as modules ------------------------------------------------------------------------

class CrossEntropyLoss(Module):
    def __init__(self, ignore_index=-100, reduction="mean"):
        super().__init__()
        self.ignore_index, self.reduction = ignore_index, reduction

    def forward(self, logits, targets):
        return F.cross_entropy(logits, targets, ignore_index=self.ignore_index,
                               reduction=self.reduction)


class NLLLoss(CrossEntropyLoss):
    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(ignore_index, reduction)
        self.weight = weight

    def forward(self, log_probs, targets):
        return F.nll_loss(log_probs, targets, self.weight, self.ignore_index, self.reduction)


class _Loss(Module):
    function = None

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):  # noqa: A002 - torch's argument name
        return type(self).function(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    function = staticmethod(F.mse_loss)


class L1Loss(_Loss):
    function = staticmethod(F.l1_loss)


class SmoothL1Loss(_Loss):
    function = staticmethod(F.smooth_l1_loss)


class BCELoss(_Loss):
    function = staticmethod(F.binary_cross_entropy)


class BCEWithLogitsLoss(_Loss):
    function = staticmethod(F.binary_cross_entropy_with_logits)


class KLDivLoss(_Loss):
    function = staticmethod(F.kl_div)


__all__ = ["Linear", "Embedding", "LayerNorm", "Dropout", "GELU", "softmax_composite", "Identity",
           "ReLU", "Tanh", "Sigmoid", "SiLU", "LeakyReLU", "Softplus", "Softmax",
           "LogSoftmax", "Flatten", "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss",
           "SmoothL1Loss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss"]
