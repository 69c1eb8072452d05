"""torch.nn.utils' place: clip_grad_norm_ (it lives with the optimizers)."""
from ..optim import clip_grad_norm_  # noqa: F401

__all__ = ["clip_grad_norm_"]
