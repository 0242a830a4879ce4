"""Optimisers (SGD, the Adam family, Adagrad, Adadelta, RMSprop) and learning-rate schedulers.

    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.95)
"""
from . import lr_scheduler  # noqa: F401
from .lr_scheduler import (ChainedScheduler, ConstantLR, CosineAnnealingLR, CosineAnnealingWarmRestarts, CyclicLR,
                           ExponentialLR, LambdaLR, LinearLR, LRScheduler, MultiplicativeLR, MultiStepLR, OneCycleLR,
                           PolynomialLR, ReduceLROnPlateau, SequentialLR, StepLR, TimeBasedDecay)
from .optimizers import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, LBFGS, NAdam, Optimizer, RAdam, RMSprop

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta", "RMSprop", "LBFGS",
    "lr_scheduler", "LRScheduler", "StepLR", "ExponentialLR", "LambdaLR", "TimeBasedDecay", "MultiStepLR",
    "CosineAnnealingLR", "OneCycleLR", "ReduceLROnPlateau", "LinearLR", "ConstantLR", "CosineAnnealingWarmRestarts",
    "SequentialLR", "ChainedScheduler", "MultiplicativeLR", "PolynomialLR", "CyclicLR",
]
