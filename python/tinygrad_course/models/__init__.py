"""The course's networks."""
from .cifar import CifarNet  # noqa: F401
from .cnn import HomeworkCNN, MnistCNN, parameter_count_formula  # noqa: F401
from .mlp import circles_mlp, image_mlp, iris_mlp, mnist_classic_mlp, mnist_mlp  # noqa: F401
from .segmentation import SegNet  # noqa: F401
from .svm import KernelSVM, compare_kernels  # noqa: F401

__all__ = ["CifarNet", "MnistCNN", "HomeworkCNN", "SegNet", "circles_mlp", "mnist_mlp", "mnist_classic_mlp",
           "iris_mlp", "image_mlp", "parameter_count_formula", "KernelSVM", "compare_kernels"]
