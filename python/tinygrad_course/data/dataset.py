"""Data set classes, as torch.utils.data's: the Dataset bases, equally long arrays (or Tensors) indexed
together, subsets and concatenations."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor

__all__ = ["Dataset", "IterableDataset", "ArrayDataset", "TensorDataset", "ConcatDataset", "Subset", "hwc_image"]


class Dataset:
    """Base class of map-style data sets, as torch.utils.data.Dataset: define `__len__` and
    `__getitem__(i)`. `a + b` chains two data sets (a ConcatDataset)."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other) -> "ConcatDataset":
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """Base class of stream data sets, as torch.utils.data.IterableDataset: define `__iter__`.
    With num_workers > 0 every worker iterates its own copy: split the stream between them with
    get_worker_info(), or each sample comes once per worker."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class ConcatDataset(Dataset):
    """Several data sets one after the other: index len(a) is the first sample of b."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one data set")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a ConcatDataset of {n} samples")
        index = int(index) % n
        part = int(np.searchsorted(self.cumulative_sizes, index, side="right"))
        return self.datasets[part][index - (self.cumulative_sizes[part - 1] if part else 0)]


class ArrayDataset(Dataset):
    """Equally long arrays indexed together: `ds[i]` is a tuple with one entry per array.

    An integer index gives one sample, an index array or slice gives a batch (one fancy-indexing
    gather per array), which is what DataLoader uses. transform / target_transform (as in
    torchvision) are applied to the first / second entry of each sample `ds[i]`; a data set with
    either is indexed one sample at a time.
    """

    def __init__(self, *arrays, transform=None, target_transform=None):
        if not arrays:
            raise ValueError("ArrayDataset needs at least one array")
        arrays = tuple(np.asarray(a) for a in arrays)
        if any(a.ndim == 0 for a in arrays):
            raise ValueError(f"arrays must have a first (sample) dimension, got shapes {[a.shape for a in arrays]}")
        lengths = {len(a) for a in arrays}
        if len(lengths) != 1:
            raise ValueError(f"arrays have different lengths: {[len(a) for a in arrays]}")
        for name, fn in (("transform", transform), ("target_transform", target_transform)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable (e.g. ToTensor()), got {type(fn).__name__}")
        self.arrays = arrays
        self.transform, self.target_transform = transform, target_transform

    @property
    def supports_batch_index(self) -> bool:
        """Whether `ds[index_array]` gives a whole batch (no per-sample transform to apply)."""
        return self.transform is None and self.target_transform is None

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index):
        if self.supports_batch_index:
            return tuple(a[index] for a in self.arrays)
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"{type(self).__name__} with a transform is indexed one sample at a time (an "
                            f"integer), got {type(index).__name__}")
        sample = [a[index] for a in self.arrays]
        if self.transform is not None:
            sample[0] = self.transform(self._transform_input(sample[0]))
        if self.target_transform is not None and len(sample) > 1:
            sample[1] = self.target_transform(self._transform_target(sample[1]))
        return tuple(sample)

    def _transform_input(self, x):
        """The first entry of a sample as `transform` gets it."""
        return x

    def _transform_target(self, y):
        """The second entry of a sample as `target_transform` gets it."""
        return y

    def __repr__(self) -> str:
        shapes = ", ".join(f"{a.dtype}{list(a.shape)}" for a in self.arrays)
        return f"{type(self).__name__}({shapes})"


class ImageClassification(ArrayDataset):
    """An ArrayDataset of (images, labels): uint8 NCHW images and int64 class labels."""

    @property
    def images(self) -> np.ndarray:
        return self.arrays[0]

    @property
    def labels(self) -> np.ndarray:
        return self.arrays[1]

    def _transform_input(self, image):
        return hwc_image(image)


def hwc_image(image: np.ndarray) -> np.ndarray:
    """A C x H x W image as torchvision hands it to transforms (np.array of the PIL image):
    H x W x C, or H x W for one channel. ToTensor turns it back into C x H x W."""
    image = image.transpose(1, 2, 0)
    return image[:, :, 0] if image.shape[2] == 1 else image


class TensorDataset(Dataset):
    """torch.utils.data.TensorDataset: equally long Tensors (or arrays); `ds[i]` is the tuple of
    their rows i as Tensors, and an index array gives a whole batch at once."""

    supports_batch_index = True

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, (Tensor, np.ndarray)):
                raise TypeError(f"TensorDataset: argument {i} must be a Tensor (or NumPy array), "
                                f"got {type(t).__name__}")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: argument {i} is a scalar; each tensor needs a first "
                                 "(sample) dimension")
        if len({len(t) for t in tensors}) != 1:
            raise ValueError(f"TensorDataset: tensors have different lengths {[len(t) for t in tensors]}; "
                             "give every tensor one row per sample")
        self.tensors = tuple(t if isinstance(t, Tensor) else Tensor(t) for t in tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __repr__(self) -> str:
        return f"TensorDataset({', '.join(f'{t.dtype}{list(t.shape)}' for t in self.tensors)})"


class Subset(Dataset):
    """The samples `indices` of `dataset` (e.g. one part of random_split)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        if self.indices.ndim != 1:
            raise ValueError(f"indices must be 1-D, got shape {self.indices.shape}")
        if len(self.indices) and (self.indices.min() < -len(dataset) or self.indices.max() >= len(dataset)):
            raise IndexError(f"Subset indices out of range for a data set of {len(dataset)} samples")

    @property
    def supports_batch_index(self) -> bool:
        return getattr(self.dataset, "supports_batch_index", False)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]
