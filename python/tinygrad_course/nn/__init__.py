"""Neural-network building blocks: Module, Parameter, layers, losses, `functional` and `init`.

    from tinygrad_course import nn
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2))
    loss = nn.CrossEntropyLoss()(model(x), y)
"""
from . import functional  # noqa: F401
from . import init  # noqa: F401
from . import utils  # noqa: F401
from .layers import *  # noqa: F401,F403 - every layer, listed in layers.__all__
from .layers import __all__ as _layers
from .module import Module, ModuleDict, ModuleList, Parameter, ParameterDict, ParameterList, Sequential

__all__ = ["functional", "init", "utils", "Module", "ModuleList", "ModuleDict", "Parameter", "ParameterList",
           "ParameterDict", "Sequential", *_layers]
