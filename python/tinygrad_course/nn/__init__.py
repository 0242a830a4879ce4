"""Neural-network building blocks: Module, Parameter, layers, losses, `functional` and `init`.

    from tinygrad_course import nn
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2))
    loss = nn.CrossEntropyLoss()(model(x), y)
"""
from . import functional  # noqa: F401
from . import init  # noqa: F401
from . import utils  # noqa: F401
from .layers import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d,
                     BCELoss, BCEWithLogitsLoss, Conv1d, Conv2d, ConvTranspose2d, CrossEntropyLoss, DiceLoss, Dropout,
                     Dropout2d, Embedding, Flatten, FocalLoss, GroupNorm, Identity, InstanceNorm2d, JaccardLoss,
                     LayerNorm, LeakyReLU, Linear, LogSoftmax, MaxPool1d, MaxPool2d, MSELoss, NLLLoss, PReLU, ReLU,
                     Sigmoid, Softmax, Tanh, Unflatten, Upsample)
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential

__all__ = [
    "functional", "init", "utils", "Module", "ModuleList", "ModuleDict", "Parameter", "Sequential",
    "Linear", "Conv1d", "Conv2d", "ConvTranspose2d", "Upsample", "MaxPool1d", "AvgPool1d", "MaxPool2d",
    "AvgPool2d", "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "InstanceNorm2d", "Dropout",
    "Dropout2d", "Embedding",
    "ReLU", "LeakyReLU", "PReLU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax", "Flatten", "Unflatten", "Identity",
    "CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss", "BCELoss", "MSELoss", "DiceLoss", "JaccardLoss", "FocalLoss",
]
