"""CIFAR-10 from the official binary batches (plain or .xz) or python (pickle) batches."""
from __future__ import annotations

import codecs
import csv
import lzma
import pickle
import tarfile
from pathlib import Path

import numpy as np

from .dataset import ImageClassification
from .root import DatasetError, data_root, download_url, missing_files_error

__all__ = ["read_cifar_binary", "read_cifar_python", "CIFAR10", "CIFAR10_CLASSES"]

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
RECORD_SIZE = 1 + 3 * 32 * 32  # label byte + red, green, blue planes


def read_cifar_binary(path):
    """One binary batch (plain or xz): returns images uint8 (N, 3, 32, 32) and labels int64 (N,)."""
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:6] == b"\xfd7zXZ\x00":
        try:
            raw = lzma.decompress(raw)
        except (lzma.LZMAError, EOFError) as e:
            raise DatasetError(f"{path}: corrupt or truncated xz data ({e})") from None
    if not raw or len(raw) % RECORD_SIZE:
        raise DatasetError(f"{path}: {len(raw)} bytes is not a whole number of {RECORD_SIZE}-byte CIFAR-10 "
                           "records (truncated file, or not CIFAR-10's binary format)")
    records = np.frombuffer(raw, np.uint8).reshape(-1, RECORD_SIZE)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= 10:
        raise DatasetError(f"{path}: label {labels.max()} out of range 0..9 (not a CIFAR-10 binary batch?)")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR's python batches (dicts of bytes, lists, ints and one numpy uint8 array).

    Only the globals needed to rebuild a plain numpy array are allowed; any other class or
    function in the pickle is refused, so a malicious file cannot run code.
    """

    _reconstruct = np.empty(0).__reduce__()[0]  # numpy's array-rebuilding functions (protocols < 5, 5)
    _frombuffer = np.empty(1).__reduce_ex__(5)[0]
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy.core.numeric", "_frombuffer"): _frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _frombuffer,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # how protocol 2 stores bytes
    }

    def find_class(self, module, name):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def _key(d: dict, name: str):
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    raise KeyError(name)


def read_cifar_python(path):
    """One python batch (a pickled dict with 'data' and 'labels'), read with a restricted unpickler."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
        data, labels = _key(batch, "data"), _key(batch, "labels")
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise DatasetError(f"{path}: not a CIFAR-10 python batch ({type(e).__name__}: {e})") from None
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != RECORD_SIZE - 1:
        raise DatasetError(f"{path}: 'data' must be uint8 of shape (N, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (len(data),):
        raise DatasetError(f"{path}: {len(data)} images but {labels.size} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= 10):
        raise DatasetError(f"{path}: labels out of range 0..9")
    return data.reshape(-1, 3, 32, 32).copy(), labels


def _read_provenance(path: Path, labels: np.ndarray) -> np.ndarray:
    """exact_mask from test_batch_provenance.csv (record,label,source,...): True where source is 'exact'."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != len(labels):
        raise DatasetError(f"{path}: {len(rows)} rows for a test batch of {len(labels)} records")
    try:
        records = np.array([int(r["record"]) for r in rows])
        csv_labels = np.array([int(r["label"]) for r in rows])
        sources = [r["source"] for r in rows]
    except (KeyError, TypeError, ValueError) as e:
        raise DatasetError(f"{path}: malformed provenance file ({type(e).__name__}: {e})") from None
    if not np.array_equal(records, np.arange(len(labels))) or not np.array_equal(csv_labels, labels):
        raise DatasetError(f"{path}: records or labels do not match the test batch")
    return np.array([s == "exact" for s in sources])


class CIFAR10(ImageClassification):
    """CIFAR-10: `.images` uint8 (N, 3, 32, 32), `.labels` int64 (N,), `.classes`, `.exact_mask` bool (N,).

    Searches <root>/cifar-10/, <root>/cifar-10-batches-bin/ and <root>/cifar-10-batches-py/ (also
    inside cifar-10/) for data_batch_1..5 and test_batch, as binary batches (`.bin` or `.bin.xz`)
    or python batches (no extension). `exact_mask` marks records with exact pixels: all of them,
    unless a test_batch_provenance.csv next to the test batch says otherwise (the course's
    offline copy: records 0-999 exact, the rest decoded from JPEG). exact_only=True keeps only
    those. download=True fetches the official binary tarball (md5-checked) into <root>/cifar-10/.
    """

    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    md5 = "c32a1d4ab5d03f1284b67883e8d87530"
    folders = ["cifar-10", "cifar-10-batches-bin", "cifar-10-batches-py",
               "cifar-10/cifar-10-batches-bin", "cifar-10/cifar-10-batches-py"]

    def __init__(self, root=None, train: bool = True, download: bool = False, exact_only: bool = False):
        self.root = data_root(root)
        self.train = train
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        found = self._find(names)
        if found is None and download:
            self._download()
            found = self._find(names)
        if found is None:
            raise missing_files_error(
                "CIFAR10", self.root / "cifar-10",
                [f"{n}.bin[.xz]" for n in names] + [f"(or the same in {', '.join(self.folders[1:])})"])
        folder, paths, reader = found
        parts = [reader(p) for p in paths]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        exact = np.ones(len(labels), dtype=bool)
        provenance = folder / "test_batch_provenance.csv"
        if not train and provenance.is_file():
            exact = _read_provenance(provenance, labels)
        self.classes = self._class_names(folder)
        self.folder = folder
        if exact_only:
            images, labels, exact = images[exact], labels[exact], exact[exact]
        self.exact_mask = exact
        super().__init__(images, labels)

    def _find(self, names):
        """(folder, paths, reader) for the first folder that holds every batch in `names`, else None."""
        for sub in self.folders:
            folder = self.root / sub
            binary = [next((p for p in (folder / f"{n}.bin", folder / f"{n}.bin.xz") if p.is_file()), None)
                      for n in names]
            if all(binary):
                return folder, binary, read_cifar_binary
            python = [folder / n for n in names]
            if all(p.is_file() for p in python):
                return folder, python, read_cifar_python
        return None

    @staticmethod
    def _class_names(folder: Path):
        meta = folder / "batches.meta.txt"
        if meta.is_file():
            names = [line.strip() for line in meta.read_text().splitlines() if line.strip()]
            if len(names) != 10:
                raise DatasetError(f"{meta}: expected 10 class names, found {len(names)}")
            return names
        return list(CIFAR10_CLASSES)

    def _download(self):
        folder = self.root / "cifar-10"
        archive = download_url(self.url, folder / "cifar-10-binary.tar.gz", md5=self.md5)
        _safe_extract(archive, folder)
        archive.unlink()


def _safe_extract(archive: Path, dest: Path) -> None:
    """Extract the regular files of a tar archive under `dest`, refusing absolute or escaping paths."""
    dest = dest.resolve()
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if dest not in target.parents:
                raise DatasetError(f"{archive}: member {member.name!r} would extract outside {dest}")
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(target, "wb") as out:
                    out.write(src.read())
