"""minigrad.nn: Module and Parameter (module.py), torch.nn's layers (layers.py), weight
initialization (init.py), and nn.functional (the ops of minigrad.functional).

    import minigrad.nn as nn
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
"""
from . import functional, init, utils  # noqa: F401
from .layers import (GELU, BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, Dropout,  # noqa: F401
                     Embedding, Flatten, Identity, KLDivLoss, L1Loss, LayerNorm, LeakyReLU,
                     Linear, LogSoftmax, MSELoss, NLLLoss, ReLU, Sigmoid, SiLU, SmoothL1Loss,
                     Softmax, Softplus, Tanh, softmax_composite)
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential  # noqa: F401

__all__ = ["Module", "Parameter", "ModuleList", "ModuleDict", "Sequential", "Linear",
           "Embedding", "LayerNorm", "Dropout", "GELU", "ReLU", "Tanh", "Sigmoid", "SiLU",
           "LeakyReLU", "Softplus", "Softmax", "LogSoftmax", "Identity", "Flatten",
           "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "SmoothL1Loss", "BCELoss",
           "BCEWithLogitsLoss", "KLDivLoss", "functional", "init", "utils"]
