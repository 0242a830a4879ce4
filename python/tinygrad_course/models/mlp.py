"""Multi-layer perceptrons of the course."""
from __future__ import annotations

from .. import nn


def circles_mlp(hidden: int = 4, n_in: int = 2, n_classes: int = 2) -> nn.Sequential:
    """The circles network of COURSE.md section 1: Linear(2, 4) -> tanh -> Linear(4, 2).

    It returns logits; the softmax lives inside the cross-entropy loss.
    """
    return nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, n_classes))
