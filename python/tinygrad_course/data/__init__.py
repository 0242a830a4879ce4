"""Data sets, loaders and transforms.

Toy 2-D sets are generated (toy.py); the course's real data sets (MNIST, Fashion-MNIST, CIFAR-10,
Iris, the horizon/sky segmentation set) are read from their standard formats under a data root
(root.py: argument, else $TINYGRAD_COURSE_DATA, else a per-user cache folder).
"""
from .cifar import CIFAR10, CIFAR10_CLASSES, read_cifar_binary, read_cifar_python  # noqa: F401
from .dataset import ArrayDataset, ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset  # noqa: F401
from .iris import Iris, read_iris_csv  # noqa: F401
from .loader import DataLoader, WorkerInfo, default_collate, get_worker_info, random_split  # noqa: F401
from .mnist import MNIST, FashionMNIST, read_idx  # noqa: F401
from .sampler import (  # noqa: F401
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler, WeightedRandomSampler)
from .root import DatasetError, data_root, default_cache_dir, download_url  # noqa: F401
from .segmentation import HorizonSky, read_image_mask_folder  # noqa: F401
from .toy import TOY_DATASETS, make_circles, make_gaussians, make_spirals, make_xor, train_test_split  # noqa: F401
from .transforms import (  # noqa: F401
    ZCA, CenterCrop, Compose, Lambda, Normalize, OneHot, RandomCrop, RandomHorizontalFlip, RandomResizedCrop, Resize,
    Standardize, ToFloat, ToTensor, Transform, one_hot)
from .utils import make_grid  # noqa: F401
from . import datasets, transforms, utils  # noqa: F401,E402  (torchvision's submodule names)
