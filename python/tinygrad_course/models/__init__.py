"""The course's networks."""
from .cifar import CifarNet  # noqa: F401
from .mlp import circles_mlp, mnist_mlp  # noqa: F401

__all__ = ["CifarNet", "circles_mlp", "mnist_mlp"]
