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

# PyTorch's names (issue 12): elementwise math, activations, reductions, selection
from .ops.activations import (celu, elu, hardsigmoid, hardswish, hardtanh,  # noqa: F401, E402
                              leaky_relu, logsigmoid, mish, relu6, selu, silu, softmin,
                              softplus, softsign, tanhshrink)
from .ops.elementwise import (acos, acosh, allclose, arccos, arccosh, arcsin,  # noqa: F401, E402, A004
                              arcsinh, arctan, arctanh, asin, asinh, atan, atanh, bitwise_and,
                              bitwise_not, bitwise_or, bitwise_xor, ceil, cos, cosh, exp2,
                              expm1, floor, floor_divide, fmod, isclose, isfinite, isinf, isnan,
                              lerp, log1p, log2, log10, logaddexp, logaddexp2, logical_and,
                              logical_not, logical_or, logical_xor, maximum, minimum, remainder,
                              round, rsqrt, sign, sin, sinh, square, tan, trunc)
from .ops.indexing import (gather, index_select, masked_select, nonzero,  # noqa: F401, E402
                           scatter, scatter_add, scatter_reduce)
from .ops.reductions import amax, amin, argmax, argmin  # noqa: F401, E402
from .ops.shape import concatenate as cat  # noqa: F401, E402
from .ops.shape import concatenate as concat  # noqa: F401, E402
from .ops.layout import (clone, contiguous, diag, diagonal, einsum, flatten, flip,  # noqa: F401, E402
                         meshgrid, movedim, one_hot, pad, repeat, repeat_interleave, roll,
                         tile, tril, triu, unflatten)
from .ops.reductions import all, any, logsumexp, std  # noqa: F401, E402, A004
from .ops.scans import argsort, cumprod, cumsum, prod, sort, topk  # noqa: F401, E402
from .ops.losses import (binary_cross_entropy, binary_cross_entropy_with_logits,  # noqa: F401, E402
                         huber_loss, kl_div, l1_loss, mse_loss, nll_loss, smooth_l1_loss)

from .ops.nn import packed_causal_attention  # noqa: F401,E402

# keep last: every public name above (help(minigrad.functional) lists them)
__all__ = sorted(name for name in dir() if not name.startswith("_"))
