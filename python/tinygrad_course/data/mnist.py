"""MNIST and Fashion-MNIST from the official IDX files (gzip-compressed or raw)."""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .dataset import ImageClassification
from .root import DatasetError, data_root, download_url, missing_files_error

__all__ = ["read_idx", "MNIST", "FashionMNIST"]

# IDX type byte -> element dtype (big-endian)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# Deflate (gzip) cannot shrink data by more than about 1032:1, so a header declaring more is lying.
_MAX_GZIP_RATIO = 1032


def read_idx(path) -> np.ndarray:
    """Read one IDX file (gzip or raw, recognised by its magic, not its name).

    The dims the header declares are checked against what the file can hold before the payload is
    read (a gzip file is decompressed in chunks, no further than the header says), so a header
    with absurd dims raises DatasetError instead of allocating.
    """
    path = Path(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if f.read(2) != b"\x1f\x8b":
            f.seek(0)
            return _read_idx_stream(path, f, size, exact=True)
        f.seek(0)
        try:
            with gzip.GzipFile(fileobj=f) as g:
                return _read_idx_stream(path, g, _MAX_GZIP_RATIO * size, exact=False)
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            raise DatasetError(f"{path}: corrupt or truncated gzip data ({e})") from None


def _read_idx_stream(path: Path, f, capacity: int, exact: bool) -> np.ndarray:
    """The IDX array in `f`, which holds at most `capacity` bytes (exactly that many when `exact`)."""
    head = f.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DatasetError(f"{path}: not an IDX file (bad magic number {head.hex() or 'empty'})")
    if head[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: unknown IDX element type 0x{head[2]:02x}")
    dtype, ndim = np.dtype(_IDX_DTYPES[head[2]]), head[3]
    if ndim == 0:
        raise DatasetError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    raw_dims = f.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DatasetError(f"{path}: truncated IDX header ({4 + len(raw_dims)} bytes, need {header})")
    dims = struct.unpack(f">{ndim}I", raw_dims)
    expected = math.prod(dims) * dtype.itemsize
    if exact and capacity - header != expected:
        what = "truncated" if capacity - header < expected else "trailing bytes after the"
        raise DatasetError(f"{path}: {what} payload: dims {dims} need {expected} bytes, found {capacity - header}")
    if not exact and header + expected > capacity:
        raise DatasetError(f"{path}: IDX header declares dims {dims} ({expected} bytes), more than this "
                           f"compressed file can hold; the file is corrupt")
    chunks, left = [], expected + 1  # one byte more than declared, to notice trailing data
    while left > 0:
        chunk = f.read(min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    data = b"".join(chunks)
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "trailing bytes after the"
        raise DatasetError(f"{path}: {what} payload: dims {dims} need {expected} bytes, "
                           f"found {len(data) if len(data) < expected else 'more'}")
    return np.frombuffer(data, dtype).reshape(dims).astype(dtype.newbyteorder("="))


class MNIST(ImageClassification):
    """MNIST digits: `.images` uint8 (N, 1, 28, 28), `.labels` int64 (N,), `.classes` names.

    Looks in <root>/mnist/ for train-images-idx3-ubyte(.gz) and friends (see data.root for how
    the root is chosen). download=True fetches missing files from the canonical mirrors and
    verifies their md5 first. transform gets each image as torchvision gives it, a 28 x 28 uint8
    array (ToTensor() makes it a 1 x 28 x 28 float Tensor), target_transform each label.
    """

    folder = "mnist"
    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
    resources = {
        "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    classes = [str(d) for d in range(10)]

    def __init__(self, root=None, train: bool = True, transform=None, target_transform=None, download: bool = False):
        self.root = data_root(root)
        self.train = train
        folder = self.root / self.folder
        prefix = "train" if train else "t10k"
        names = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
        paths = [self._find(folder, name, download) for name in names]
        images, labels = read_idx(paths[0]), read_idx(paths[1])
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise DatasetError(f"{paths[0]}: expected an IDX image file (magic 2051: uint8, N x 28 x 28), "
                               f"got {images.dtype} {images.shape}")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise DatasetError(f"{paths[1]}: expected an IDX label file (magic 2049: uint8, N), "
                               f"got {labels.dtype} {labels.shape}")
        if len(images) != len(labels):
            raise DatasetError(f"{paths[0]} holds {len(images)} images but {paths[1]} holds {len(labels)} labels")
        if not len(labels):
            raise DatasetError(f"{paths[0]} and {paths[1]} hold no images; the files are truncated or empty "
                               "(delete them and pass download=True, or copy them again)")
        if labels.max() >= len(self.classes):
            raise DatasetError(f"{paths[1]}: label {labels.max()} out of range 0..{len(self.classes) - 1}")
        super().__init__(images[:, None], labels.astype(np.int64), transform=transform,
                         target_transform=target_transform)

    @property
    def targets(self):
        """The labels as torchvision's MNIST has them: an int64 Tensor."""
        from ..tensor import Tensor
        return Tensor(self.labels)

    def _find(self, folder: Path, name: str, download: bool) -> Path:
        for candidate in (folder / (name + ".gz"), folder / name):
            if candidate.is_file():
                return candidate
        if not download:
            raise missing_files_error(type(self).__name__, folder, [name + ".gz"])
        dest = folder / (name + ".gz")
        return download_url([m + dest.name for m in self.mirrors], dest, md5=self.resources[name])


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: the MNIST format and API, ten clothing classes, in <root>/fashion-mnist/."""

    folder = "fashion-mnist"
    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    resources = {
        "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
