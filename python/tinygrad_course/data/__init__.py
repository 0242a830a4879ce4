"""Data sets, loaders and transforms."""
from .toy import TOY_DATASETS, make_circles, make_gaussians, make_spirals, make_xor, train_test_split  # noqa: F401
