"""The differentiable ops, one small Function class each, grouped by kind:

  arithmetic   + - * / ** neg, matmul
  elementwise  exp log sqrt tanh sigmoid relu gelu erf abs clip
  reductions   sum mean max min var, and sum_to (the engine's un-broadcast)
  shape        reshape permute transpose broadcast_to squeeze unsqueeze concatenate stack
               split chunk tensor_split
  indexing     getitem (and its scatter-add backward), where, masked_fill, embedding, comparisons
  nn           softmax log_softmax cross_entropy layer_norm dropout
  conversion   astype, to_device
  attention    scaled_dot_product_attention, sliding_window_attention (and their fused ops)
"""
from . import arithmetic, conversion, elementwise, indexing, nn, reductions, shape  # noqa: F401
from . import attention  # noqa: F401
