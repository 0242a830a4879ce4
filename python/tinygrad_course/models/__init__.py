"""The course's networks."""
from .mlp import circles_mlp  # noqa: F401
