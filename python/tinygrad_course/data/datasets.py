"""torchvision.datasets' names, so `import tinygrad_course.data as torchvision` serves
`torchvision.datasets.MNIST(...)`, `torchvision.transforms.ToTensor()` and `torchvision.utils.make_grid`."""
from .cifar import CIFAR10  # noqa: F401
from .mnist import MNIST, FashionMNIST  # noqa: F401
