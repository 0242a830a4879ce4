"""In-memory data sets: a tuple of equally long arrays, indexed together."""
from __future__ import annotations

import numpy as np

__all__ = ["ArrayDataset", "Subset"]


class ArrayDataset:
    """Equally long arrays indexed together: `ds[i]` is a tuple with one entry per array.

    An integer index gives one sample, an index array or slice gives a batch (one fancy-indexing
    gather per array), which is what DataLoader uses.
    """

    supports_batch_index = True

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("ArrayDataset needs at least one array")
        arrays = tuple(np.asarray(a) for a in arrays)
        lengths = {len(a) for a in arrays}
        if len(lengths) != 1:
            raise ValueError(f"arrays have different lengths: {[len(a) for a in arrays]}")
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)

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


class Subset:
    """The samples `indices` of `dataset` (e.g. one part of random_split)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        if self.indices.ndim != 1:
            raise ValueError(f"indices must be 1-D, got shape {self.indices.shape}")
        if len(self.indices) and (self.indices.min() < -len(dataset) or self.indices.max() >= len(dataset)):
            raise IndexError(f"Subset indices out of range for a data set of {len(dataset)} samples")
        self.supports_batch_index = getattr(dataset, "supports_batch_index", False)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]
