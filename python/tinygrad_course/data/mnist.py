"""MNIST and Fashion-MNIST from the official IDX files (gzip-compressed or raw)."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .dataset import ImageClassification
from .root import DatasetError, data_root, download_url, missing_files_error

__all__ = ["read_idx", "MNIST", "FashionMNIST"]

# IDX type byte -> element dtype (big-endian)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_maybe_gzip(path: Path) -> bytes:
    """The bytes of `path`, decompressed when it is gzip (recognised by its magic, not its name)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{path}: corrupt or truncated gzip data ({e})") from None


def read_idx(path) -> np.ndarray:
    """Read one IDX file (gzip or raw): checks the magic number and that the payload matches the dims."""
    path = Path(path)
    data = _read_maybe_gzip(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    if data[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: unknown IDX element type 0x{data[2]:02x}")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    if ndim == 0:
        raise DatasetError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header ({len(data)} bytes, need {header})")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - header != expected:
        what = "truncated" if len(data) - header < expected else "trailing bytes after the"
        raise DatasetError(f"{path}: {what} payload: dims {dims} need {expected} bytes, "
                           f"found {len(data) - header}")
    return np.frombuffer(data, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


class MNIST(ImageClassification):
    """MNIST digits: `.images` uint8 (N, 1, 28, 28), `.labels` int64 (N,), `.classes` names.

    Looks in <root>/mnist/ for train-images-idx3-ubyte(.gz) and friends (see data.root for how
    the root is chosen). download=True fetches missing files from the canonical mirrors and
    verifies their md5 first.
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

    def __init__(self, root=None, train: bool = True, download: bool = False):
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
        if len(labels) and labels.max() >= len(self.classes):
            raise DatasetError(f"{paths[1]}: label {labels.max()} out of range 0..{len(self.classes) - 1}")
        super().__init__(images[:, None], labels.astype(np.int64))

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
