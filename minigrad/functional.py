"""Every op as a plain function, for `import minigrad.functional as F`.

Each name points at the module in minigrad/ops/ where its forward and backward live.
"""
from .ops.arithmetic import add, div, linear, matmul, mul, neg, pow, sub  # noqa: F401, A004
from .ops.conversion import astype, to_device  # noqa: F401
from .ops.elementwise import abs, clip, erf, exp, gelu, log, relu, sigmoid, sqrt, tanh  # noqa: F401, A004
from .ops.indexing import (embedding, equal, greater, greater_equal, less, less_equal,  # noqa: F401
                           masked_fill, not_equal, where)
from .ops.nn import (causal_attention, cross_entropy, dropout, layer_norm,  # noqa: F401
                     log_softmax, softmax)
from .ops.reductions import max, mean, min, sum, sum_to, var  # noqa: F401, A004
from .ops.shape import (broadcast_to, chunk, concatenate, expand, permute, reshape,  # noqa: F401
                        split, squeeze, stack, swapaxes, tensor_split, transpose, unsqueeze)
from .ops.attention import (attention_weights, scaled_dot_product_attention,  # noqa: F401
                            sliding_window_attention)
