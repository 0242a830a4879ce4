"""CIFAR-10 from the official binary batches (plain or .xz) or python (pickle) batches."""
from __future__ import annotations

import csv
import io
import lzma
import math
import pickle
import pickletools
import shutil
import tarfile
from pathlib import Path

import numpy as np

from .dataset import ImageClassification
from .root import DatasetError, data_root, download_url, missing_files_error

__all__ = ["read_cifar_binary", "read_cifar_python", "CIFAR10", "CIFAR10_CLASSES"]

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
RECORD_SIZE = 1 + 3 * 32 * 32  # label byte + red, green, blue planes


# CIFAR-10 has 60000 images; a batch that decompresses to more is not CIFAR-10 (xz has no size header
# to check, and can shrink data by far more than 1000:1).
MAX_RECORDS = 60000


def read_cifar_binary(path):
    """One binary batch (plain or xz): returns images uint8 (N, 3, 32, 32) and labels int64 (N,)."""
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:6] == b"\xfd7zXZ\x00":
        raw = _decompress_xz(path, raw, MAX_RECORDS * RECORD_SIZE)
    if not raw or len(raw) % RECORD_SIZE:
        raise DatasetError(f"{path}: {len(raw)} bytes is not a whole number of {RECORD_SIZE}-byte CIFAR-10 "
                           "records (truncated file, or not CIFAR-10's binary format)")
    records = np.frombuffer(raw, np.uint8).reshape(-1, RECORD_SIZE)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= 10:
        raise DatasetError(f"{path}: label {labels.max()} out of range 0..9 (not a CIFAR-10 binary batch?)")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def _decompress_xz(path: Path, raw: bytes, limit: int) -> bytes:
    """The xz stream `raw` decompressed, refusing to produce more than `limit` bytes."""
    decompressor = lzma.LZMADecompressor(lzma.FORMAT_XZ)
    try:
        out = decompressor.decompress(raw, max_length=limit + 1)
    except lzma.LZMAError as e:
        raise DatasetError(f"{path}: corrupt xz data ({e})") from None
    if len(out) > limit:
        raise DatasetError(f"{path}: decompresses to more than {limit} bytes ({limit // RECORD_SIZE} records, "
                           "all of CIFAR-10); not a CIFAR-10 batch")
    if not decompressor.eof or decompressor.unused_data:
        raise DatasetError(f"{path}: truncated xz data, or bytes after its end")
    return out


class _Array:
    """Stands in for numpy's array while unpickling: numpy's own rebuilding would allocate whatever
    shape the pickle declares, so the array is made only once its bytes are at hand (`_array_from`)."""

    array = None

    def __setstate__(self, state):  # numpy's state: (version, shape, dtype, fortran_order, bytes)
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError("malformed numpy array state")
        self.array = _array_from(*state[-4:])


class _DType:
    """Stands in for a numpy dtype while unpickling: only plain numbers, never objects or records."""

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype

    def __setstate__(self, state):  # (version, byte order, subarray, names, fields, ...): keep the byte order
        if not isinstance(state, tuple) or len(state) < 5 or state[1] not in ("<", ">", "|", "=", b"<", b">", b"|"):
            raise pickle.UnpicklingError(f"malformed numpy dtype state {state!r:.80}")
        if any(part is not None for part in state[2:5]):
            raise pickle.UnpicklingError("refusing a numpy record or sub-array dtype")
        order = state[1].decode() if isinstance(state[1], bytes) else state[1]
        self.dtype = self.dtype.newbyteorder(order if order in "<>" else "=")


def _array_from(shape, dtype, fortran_order, data) -> np.ndarray:
    """An array from the bytes the pickle holds, whose length must match the declared shape and dtype."""
    if not isinstance(dtype, _DType) or not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError("malformed numpy array (its dtype or its data)")
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise pickle.UnpicklingError(f"malformed numpy array shape {shape!r:.80}")
    nbytes = math.prod(shape) * dtype.dtype.itemsize
    if nbytes != len(data):
        raise pickle.UnpicklingError(f"an array declared as {dtype.dtype} {shape} needs {nbytes} bytes, "
                                     f"the file holds {len(data)}")
    order = "F" if fortran_order in (True, "F", b"F") else "C"
    return np.frombuffer(data, dtype.dtype).reshape(shape, order=order)


def _dtype(spec, align=False, copy=False) -> _DType:
    """numpy.dtype(spec) for plain numbers (a function, not the class: a pickle cannot then alter the class)."""
    if isinstance(spec, bytes):  # a Python 2 str under encoding="bytes"
        spec = spec.decode("ascii", "replace")
    try:
        dtype = np.dtype(spec) if isinstance(spec, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in "biuf" or dtype.fields or dtype.subdtype:
        raise pickle.UnpicklingError(f"refusing numpy dtype {spec!r:.40} (CIFAR batches hold plain numbers)")
    return _DType(dtype)


def _reconstruct(cls, shape, typecode):
    """numpy's _reconstruct(ndarray, (0,), b"b"): an empty array that the next BUILD fills."""
    if cls is not _NDARRAY:
        raise pickle.UnpicklingError("refusing to rebuild anything but a numpy array")
    return _Array()


def _frombuffer(buf, dtype, shape, order):
    """numpy's _frombuffer (pickle protocol 5) over our checks."""
    return _array_from(shape, dtype, order, bytes(buf) if isinstance(buf, memoryview) else buf)


def _latin1(text, encoding):
    """codecs.encode(text, "latin1"): how protocol 2 stores bytes; other codecs could inflate data."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing codecs.encode with {encoding!r:.40}")
    return text.encode("latin-1")


def _empty_bytes(*args):
    """bytes(): how protocol 2 stores b"" (an empty batch's data); bytes(n) would allocate n bytes."""
    if args:
        raise pickle.UnpicklingError("refusing bytes() with arguments")
    return b""


_NDARRAY = object()  # numpy.ndarray inside the pickle: a token for _reconstruct, not callable


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR's python batches (dicts of bytes, lists, ints and one numpy uint8 array).

    Every global the pickle names maps to one of the stand-ins above; any other class or function
    is refused, so a malicious file cannot run code, and no array is allocated beyond the bytes
    the file holds.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy.core.numeric", "_frombuffer"): _frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _frombuffer,
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _dtype,
        ("_codecs", "encode"): _latin1,
        ("__builtin__", "bytes"): _empty_bytes,
        ("builtins", "bytes"): _empty_bytes,
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


def _check_pickle_sizes(raw: bytes) -> None:
    """Walk the opcodes before unpickling: the unpickler allocates what a bytes or str opcode declares
    before reading it, and a memo array as long as the largest memo index. pickletools checks each
    declared length against the bytes left; a memo index is bounded by the opcodes seen so far (a
    pickler numbers the objects it memoizes 0, 1, 2, ...)."""
    for count, (opcode, arg, _) in enumerate(pickletools.genops(raw)):
        if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and arg > count:
            raise pickle.UnpicklingError(f"memo index {arg} after only {count} opcodes")


def read_cifar_python(path):
    """One python batch (a pickled dict with 'data' and 'labels'), read with a restricted unpickler."""
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        _check_pickle_sizes(raw)
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
        if not isinstance(batch, dict):
            raise TypeError(f"the pickle holds a {type(batch).__name__}, not a dict")
        data, labels = _key(batch, "data"), _key(batch, "labels")
        data = data.array if isinstance(data, _Array) else data
        if not isinstance(data, np.ndarray):
            raise TypeError(f"'data' is a {type(data).__name__}, not a numpy array")
        labels = np.asarray(labels.array if isinstance(labels, _Array) else labels, dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError, IndexError,
            OverflowError, RecursionError) as e:
        raise DatasetError(f"{path}: not a CIFAR-10 python batch ({type(e).__name__}: {e})") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != RECORD_SIZE - 1:
        raise DatasetError(f"{path}: 'data' must be uint8 of shape (N, 3072), got {data.dtype} {data.shape}")
    if not len(data):
        raise DatasetError(f"{path}: the batch holds no images")
    if labels.shape != (len(data),):
        raise DatasetError(f"{path}: {len(data)} images but {labels.size} labels")
    if labels.min() < 0 or labels.max() >= 10:
        raise DatasetError(f"{path}: labels out of range 0..9")
    return data.reshape(-1, 3, 32, 32).copy(), labels


def _read_provenance(path: Path, labels: np.ndarray) -> np.ndarray:
    """exact_mask from test_batch_provenance.csv (record,label,source,...): True where source is 'exact'."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{path}: not a UTF-8 CSV file ({e})") from None
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
    transform gets each image as torchvision gives it, a 32 x 32 x 3 uint8 array (ToTensor() makes
    it a 3 x 32 x 32 float Tensor), target_transform each label.
    """

    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    md5 = "c32a1d4ab5d03f1284b67883e8d87530"
    folders = ["cifar-10", "cifar-10-batches-bin", "cifar-10-batches-py",
               "cifar-10/cifar-10-batches-bin", "cifar-10/cifar-10-batches-py"]

    def __init__(self, root=None, train: bool = True, transform=None, target_transform=None, download: bool = False,
                 exact_only: bool = False):
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
            if not exact.any():
                raise DatasetError(f"{provenance}: marks no record as exact, so exact_only=True leaves nothing")
            images, labels, exact = images[exact], labels[exact], exact[exact]
        self.exact_mask = exact
        super().__init__(images, labels, transform=transform, target_transform=target_transform)

    @property
    def data(self) -> np.ndarray:
        """The images as torchvision's CIFAR10 has them: uint8 (N, 32, 32, 3), a view of `images`."""
        return self.images.transpose(0, 2, 3, 1)

    @property
    def targets(self) -> list:
        """The labels as torchvision's CIFAR10 has them: a list of ints."""
        return self.labels.tolist()

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
            try:
                names = [line.strip() for line in meta.read_text(encoding="utf-8").splitlines() if line.strip()]
            except UnicodeDecodeError as e:
                raise DatasetError(f"{meta}: not UTF-8 text ({e})") from None
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
                    shutil.copyfileobj(src, out)  # in chunks, not the whole member in memory
