"""PyTorch's torch.utils, as far as training scripts reach for it: `utils.data` is tinygrad_course.data."""
from . import data  # noqa: F401
