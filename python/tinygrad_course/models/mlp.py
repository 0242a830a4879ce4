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


def mnist_classic_mlp(hidden: int = 16, n_in: int = 784, n_classes: int = 10) -> nn.Sequential:
    """The classic backpropagation illustration of COURSE.md section 2: 784-16-16-10 with a sigmoid after
    every layer (the output too), trained with squared error against one-hot targets; 13,002 parameters."""
    return nn.Sequential(nn.Linear(n_in, hidden), nn.Sigmoid(), nn.Linear(hidden, hidden), nn.Sigmoid(),
                         nn.Linear(hidden, n_classes), nn.Sigmoid())


def iris_mlp(hidden: int = 8, n_in: int = 4, n_classes: int = 3) -> nn.Sequential:
    """The Iris network of COURSE.md section 4: Dense(4 -> 8, ReLU) -> Dense(8 -> 3); 67 parameters."""
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))


ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def activation(name: str) -> nn.Module:
    """A fresh activation layer by name: relu, leaky_relu, sigmoid or tanh."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def image_mlp(n_in: int, n_classes: int = 10, hidden=(512, 256), act: str = "relu",
              batch_norm: bool = False, dropout: float = 0.0) -> nn.Sequential:
    """The homework MLP (COURSE.md section 5, part 1): flatten, then Linear [-> BatchNorm1d] -> activation
    [-> Dropout] per hidden layer, then a Linear to the class logits."""
    layers = [nn.Flatten()]
    for width in hidden:
        layers.append(nn.Linear(n_in, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(activation(act))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n_in = width
    layers.append(nn.Linear(n_in, n_classes))
    return nn.Sequential(*layers)
