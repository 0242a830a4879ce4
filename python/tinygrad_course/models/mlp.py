"""Multi-layer perceptrons of the course."""
from __future__ import annotations

from .. import nn


def circles_mlp(hidden: int = 4, n_in: int = 2, n_classes: int = 2) -> nn.Sequential:
    """The circles network of COURSE.md section 1: Linear(2, 4) -> tanh -> Linear(4, 2).

    It returns logits; the softmax lives inside the cross-entropy loss.
    """
    return nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, n_classes))


def mnist_mlp(hidden: int = 256, n_in: int = 784, n_classes: int = 10) -> nn.Sequential:
    """The MNIST MLP of COURSE.md section 2 on flattened 28x28 images: Linear(784, 256) -> ReLU -> Linear(256, 10).

    Input (N, 784) (flatten the images first), output (N, 10) logits; 203,530 parameters with the defaults.
    """
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
