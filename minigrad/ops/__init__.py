"""The differentiable ops, one small Function class each, grouped by kind:

  arithmetic   + - * / ** neg, matmul
  elementwise  exp log sqrt tanh sigmoid relu gelu erf abs clip
  reductions   sum mean max min var, and sum_to (the engine's un-broadcast)
  shape        reshape permute transpose broadcast_to squeeze unsqueeze concatenate stack
               split chunk tensor_split
  indexing     getitem (and its scatter-add backward), where, masked_fill, embedding, comparisons
  nn           softmax log_softmax cross_entropy layer_norm dropout
  conversion   astype, to_device
  activations  silu softplus elu ... (torch.nn.functional's activations)
  scans        prod cumsum cumprod sort argsort topk
  layout       flip roll repeat tile pad tril triu diagonal einsum ... (torch's shape ops)
  losses       mse_loss l1_loss smooth_l1_loss nll_loss binary_cross_entropy kl_div ...
  attention    scaled_dot_product_attention, sliding_window_attention (and their fused ops)
"""
from . import arithmetic, conversion, elementwise, indexing, nn, reductions, shape  # noqa: F401
from . import activations, layout, losses, scans  # noqa: F401 - PyTorch's names (issue 12)
from . import attention  # noqa: F401
