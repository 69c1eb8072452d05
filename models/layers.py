"""The layers now live in minigrad.nn (minigrad/nn/layers.py); these names stay for
existing imports (from models.layers import Linear)."""
from minigrad.nn.layers import (GELU, Dropout, Embedding, LayerNorm, Linear,  # noqa: F401
                                softmax_composite)
