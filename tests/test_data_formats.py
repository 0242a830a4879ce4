"""Readers of the standard data formats, on tiny files written here; data root; checksum-verified downloads."""
from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import lzma
import pickle
import struct
import tarfile
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_course import data as D
from tinygrad_course.data import DatasetError

from data_writers import (cifar_records, idx_bytes, png_bytes, python_batch_bytes,  # noqa: E402
                          write_cifar_binary, write_images_masks, write_mnist)


def peak_memory_of(call):
    """(the exception `call()` raised, the peak bytes traced while it ran); fails if it raised nothing."""
    tracemalloc.start()
    try:
        call()
    except Exception as e:  # returned for the caller to check its type and message
        return e, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    raise AssertionError("no error raised")


# ---------------------------------------------------------------- data root


def test_data_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYGRAD_COURSE_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert D.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert D.data_root() == tmp_path / "env"
    monkeypatch.delenv("TINYGRAD_COURSE_DATA")
    assert D.data_root() == tmp_path / "xdg" / "tinygrad_course"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert D.data_root() == tmp_path / "home" / ".cache" / "tinygrad_course"


def test_env_var_root_is_used_by_loaders(monkeypatch, tmp_path):
    write_mnist(tmp_path / "mnist")
    monkeypatch.setenv("TINYGRAD_COURSE_DATA", str(tmp_path))
    assert len(D.MNIST()) == 7


def test_missing_files_error_names_folder_and_fix(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        D.MNIST(tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "mnist") in msg and "TINYGRAD_COURSE_DATA" in msg and "download=True" in msg
    with pytest.raises(FileNotFoundError, match="cifar-10"):
        D.CIFAR10(tmp_path, train=False)
    with pytest.raises(FileNotFoundError, match="iris"):
        D.Iris(tmp_path)
    with pytest.raises(FileNotFoundError, match="horizon-sky"):
        D.HorizonSky(tmp_path)


# ---------------------------------------------------------------- IDX / MNIST


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_round_trip(tmp_path, gz):
    written = write_mnist(tmp_path / "fashion-mnist", gz=gz)
    for train, key in ((True, "train"), (False, "t10k")):
        ds = D.FashionMNIST(tmp_path, train=train)
        images, labels = written[key]
        assert ds.images.shape == (len(labels), 1, 28, 28) and ds.images.dtype == np.uint8
        assert ds.labels.dtype == np.int64
        np.testing.assert_array_equal(ds.images[:, 0], images)
        np.testing.assert_array_equal(ds.labels, labels)
        x, y = ds[2]
        np.testing.assert_array_equal(x, images[2][None])
        assert y == labels[2]
    assert ds.classes[9] == "Ankle boot"


@given(st.sampled_from([np.uint8, np.int8, ">i2", ">i4", ">f4", ">f8"]),
       st.lists(st.integers(1, 4), min_size=1, max_size=4), st.booleans())
def test_read_idx_any_type_and_dims(tmp_path_factory, dtype, dims, gz):
    arr = (np.arange(np.prod(dims)) % 100).astype(dtype).reshape(dims)
    path = tmp_path_factory.mktemp("idx") / "a.idx"
    payload = idx_bytes(arr)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    out = D.read_idx(path)
    assert out.shape == tuple(dims) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b"\x01\x02" + b[2:], "magic"),
    (lambda b: b[:-5], "truncated payload"),
    (lambda b: b + b"\x00", "trailing bytes"),
    (lambda b: b[:10], "truncated IDX header"),
    (lambda b: b[:2] + b"\x42" + b[3:], "element type"),
    (lambda b: b"", "magic"),
])
def test_read_idx_rejects_damaged_files(tmp_path, damage, message):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(damage(idx_bytes(np.zeros((2, 28, 28), np.uint8))))
    with pytest.raises(DatasetError, match=message) as e:
        D.read_idx(path)
    assert str(path) in str(e.value)


def test_read_idx_truncated_gzip(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(100, np.uint8)))[:-12])
    with pytest.raises(DatasetError, match="gzip") as e:
        D.read_idx(path)
    assert str(path) in str(e.value)


def gzip_stream(parts):
    """gzip of the concatenated byte strings in `parts`, compressed piece by piece."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join(compressor.compress(p) for p in parts) + compressor.flush()


@pytest.mark.parametrize("content, message", [
    (bytes([0, 0, 8, 4]) + struct.pack(">4I", *[2 ** 16] * 4), "truncated payload"),  # 2**64 bytes
    (bytes([0, 0, 0x0E, 3]) + struct.pack(">3I", *[2 ** 32 - 1] * 3) + bytes(64), "truncated payload"),
    (gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", 60000, 28, 28)), "more than this compressed file"),
    (gzip_stream([idx_bytes(np.zeros(4, np.uint8))] + [bytes(1 << 20)] * 64), "trailing bytes"),  # a gzip bomb
], ids=["dims overflow int64", "huge float64 dims", "gzip declaring 47 MB", "gzip inflating to 64 MiB"])
def test_read_idx_absurd_dims_and_gzip_bombs_raise_without_allocating(tmp_path, content, message):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(content)
    error, peak = peak_memory_of(lambda: D.read_idx(path))
    assert isinstance(error, DatasetError) and message in str(error) and str(path) in str(error), error
    assert peak < 4 << 20  # reads stop at what the header declares


def test_mnist_with_no_images_is_refused_at_load(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((0, 28, 28), np.uint8)))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(0, np.uint8)))
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.*hold no images"):
        D.MNIST(tmp_path, train=False)


def test_mnist_count_mismatch_names_both_files(tmp_path):
    folder = tmp_path / "mnist"
    write_mnist(folder)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(6, np.uint8))))
    with pytest.raises(DatasetError, match="7 images but .* 6 labels") as e:
        D.MNIST(tmp_path)
    assert "train-images-idx3-ubyte.gz" in str(e.value) and "train-labels-idx1-ubyte.gz" in str(e.value)


def test_mnist_swapped_files_rejected(tmp_path):
    folder = tmp_path / "mnist"
    write_mnist(folder, gz=False)
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros(3, np.uint8)))  # a label file
    with pytest.raises(DatasetError, match="2051"):
        D.MNIST(tmp_path, train=False)
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((3, 28, 28), np.uint8)))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(3, 10, np.uint8)))
    with pytest.raises(DatasetError, match="label 10 out of range"):
        D.MNIST(tmp_path, train=False)


# ---------------------------------------------------------------- CIFAR-10


@pytest.mark.parametrize("xz", [False, True])
@pytest.mark.parametrize("folder", ["cifar-10", "cifar-10-batches-bin"])
def test_cifar_binary_round_trip(tmp_path, xz, folder):
    written = write_cifar_binary(tmp_path / folder, xz=xz)
    train = D.CIFAR10(tmp_path)
    assert train.images.shape == (20, 3, 32, 32) and train.labels.dtype == np.int64
    np.testing.assert_array_equal(train.images[4:8], written["data_batch_2"][0])
    np.testing.assert_array_equal(train.labels, np.concatenate([written[f"data_batch_{k}"][1] for k in range(1, 6)]))
    test = D.CIFAR10(tmp_path, train=False)
    np.testing.assert_array_equal(test.images, written["test_batch"][0])
    assert test.exact_mask.all() and test.classes == D.CIFAR10_CLASSES


def test_cifar_python_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    written = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        images, labels, _ = cifar_records(3, seed=i)
        (folder / name).write_bytes(python_batch_bytes(images, labels))
        written[name] = images, labels
    test = D.CIFAR10(tmp_path, train=False)
    np.testing.assert_array_equal(test.images, written["test_batch"][0])
    np.testing.assert_array_equal(test.labels, written["test_batch"][1])
    assert len(D.CIFAR10(tmp_path)) == 15


@pytest.mark.parametrize("protocol, old_numpy_name", [(2, False), (2, True), (4, False), (5, False)])
def test_cifar_python_batch_pickle_protocols(tmp_path, protocol, old_numpy_name):
    images, labels, _ = cifar_records(3)
    raw = python_batch_bytes(images, labels, protocol=protocol)
    if old_numpy_name:  # what the official files (pickled by NumPy 1.x under Python 2) reference
        assert b"numpy._core.multiarray\n_reconstruct" in raw
        raw = raw.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    path = tmp_path / "data_batch_1"
    path.write_bytes(raw)
    out_images, out_labels = D.read_cifar_python(path)
    np.testing.assert_array_equal(out_images, images)
    np.testing.assert_array_equal(out_labels, labels)


def test_cifar_python_batch_refuses_arbitrary_classes(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2))
    with pytest.raises(DatasetError, match="refusing to load .*print") as e:
        D.read_cifar_python(path)
    assert str(path) in str(e.value)


def test_cifar_python_batch_wrong_contents(tmp_path):
    path = tmp_path / "test_batch"
    images, labels, _ = cifar_records(3)
    path.write_bytes(python_batch_bytes(images, labels[:2]))
    with pytest.raises(DatasetError, match="3 images but 2 labels"):
        D.read_cifar_python(path)
    path.write_bytes(pickle.dumps({b"labels": [1]}))
    with pytest.raises(DatasetError, match="data"):
        D.read_cifar_python(path)
    path.write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match=str(path)):
        D.read_cifar_python(path)


class _Reduce:
    """Pickles as `reduce_value`, for writing hostile pickles with the real module names."""

    def __init__(self, reduce_value):
        self.reduce_value = reduce_value

    def __reduce__(self):
        return self.reduce_value


_RECONSTRUCT = np.empty(0).__reduce__()[0]


@pytest.mark.parametrize("content, message", [
    (pickle.dumps({b"data": _Reduce((_RECONSTRUCT, (np.ndarray, (2 ** 40,), b"B"))), b"labels": []}, protocol=2),
     "not a CIFAR-10 python batch"),  # numpy would allocate the 1 TiB _reconstruct declares
    (pickle.dumps({b"data": _Reduce((_RECONSTRUCT, (np.ndarray, (0,), b"b"),
                                     (1, (2 ** 40,), np.dtype(np.uint8), False, b"abc"))), b"labels": []}, protocol=2),
     "needs 1099511627776 bytes, the file holds 3"),
    (b"\x80\x04\x8e" + struct.pack("<Q", 2 ** 40) + b"abc", "bytes8"),  # BINBYTES8 declaring 1 TiB
    (b"\x80\x02}r" + struct.pack("<I", 2 ** 31) + b".", "memo index 2147483648"),  # a memo array of 2**31
    (pickle.dumps({b"data": np.zeros((1, 3072), object), b"labels": [0]}, protocol=2), "refusing numpy dtype"),
    (pickle.dumps({b"data": _Reduce((codecs.encode, ("00" * 8, "hex"))), b"labels": []}, protocol=2),
     "refusing codecs.encode"),
    (pickle.dumps({b"data": _Reduce((np.ndarray, ((2 ** 40,),))), b"labels": []}, protocol=2), "not callable"),
    (b"\x80\x02c__builtin__\nbytes\nJ\x00\x00\x00\x40\x85R.", "refusing bytes() with arguments"),  # bytes(2**30)
    (pickle.dumps([1, 2], protocol=2), "not a dict"),
    (pickle.dumps({b"data": [[0] * 3072], b"labels": [0]}, protocol=2), "not a numpy array"),
    (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [2 ** 70]}, protocol=2), "OverflowError"),
], ids=["reconstruct 1 TiB", "state 1 TiB", "bytes8 1 TiB", "memo index", "object dtype", "hex codec", "ndarray called", "bytes(n)",
        "not a dict", "list data", "huge label"])
def test_hostile_cifar_python_batches_raise_without_allocating(tmp_path, content, message):
    path = tmp_path / "data_batch_1"
    path.write_bytes(content)
    error, peak = peak_memory_of(lambda: D.read_cifar_python(path))
    assert isinstance(error, DatasetError) and message in str(error) and str(path) in str(error), error
    assert peak < 1 << 20


def test_cifar_batches_with_no_images_are_refused(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(python_batch_bytes(np.zeros((0, 3, 32, 32), np.uint8), []))
    with pytest.raises(DatasetError, match="data_batch_1: the batch holds no images"):
        D.read_cifar_python(path)
    path = tmp_path / "data_batch_1.bin.xz"
    path.write_bytes(lzma.compress(b""))
    with pytest.raises(DatasetError, match="0 bytes is not a whole number"):
        D.read_cifar_binary(path)


def test_cifar_xz_bomb_and_trailing_data_refused(tmp_path, monkeypatch):
    from tinygrad_course.data import cifar
    monkeypatch.setattr(cifar, "MAX_RECORDS", 3)  # the real bound is all 60000 records of CIFAR-10
    path = tmp_path / "data_batch_1.bin.xz"
    path.write_bytes(lzma.compress(cifar_records(4)[2]))
    with pytest.raises(DatasetError, match="decompresses to more than 9219 bytes .*not a CIFAR-10 batch"):
        D.read_cifar_binary(path)
    path.write_bytes(lzma.compress(cifar_records(3)[2]) + b"junk")
    with pytest.raises(DatasetError, match="bytes after its end"):
        D.read_cifar_binary(path)
    path.write_bytes(lzma.compress(cifar_records(3)[2]))
    assert len(D.read_cifar_binary(path)[1]) == 3


def test_cifar_text_companions_not_utf8_and_exact_only_leaving_nothing(tmp_path):
    written = write_cifar_binary(tmp_path / "cifar-10")
    folder = tmp_path / "cifar-10"
    rows = ["record,label,source"] + [f"{i},{y},jpeg_q75" for i, y in enumerate(written["test_batch"][1])]
    (folder / "test_batch_provenance.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match="test_batch_provenance.csv: marks no record as exact"):
        D.CIFAR10(tmp_path, train=False, exact_only=True)
    (folder / "test_batch_provenance.csv").write_bytes(b"record,label,source\n0,\xff\xfe,exact\n")
    with pytest.raises(DatasetError, match="test_batch_provenance.csv: not a UTF-8 CSV"):
        D.CIFAR10(tmp_path, train=False)
    (folder / "test_batch_provenance.csv").unlink()
    (folder / "batches.meta.txt").write_bytes(b"caf\xe9\n" * 10)
    with pytest.raises(DatasetError, match="batches.meta.txt: not UTF-8"):
        D.CIFAR10(tmp_path, train=False)


def test_cifar_binary_bad_record_size_truncated_xz(tmp_path):
    _, _, raw = cifar_records(2)
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(raw[:-1])
    with pytest.raises(DatasetError, match="3073-byte") as e:
        D.read_cifar_binary(path)
    assert str(path) in str(e.value)
    path = tmp_path / "data_batch_1.bin.xz"
    path.write_bytes(lzma.compress(raw)[:-20])
    with pytest.raises(DatasetError, match="xz") as e:
        D.read_cifar_binary(path)
    assert str(path) in str(e.value)
    path.write_bytes(lzma.compress(raw))
    assert len(D.read_cifar_binary(path)[1]) == 2


def test_cifar_test_provenance(tmp_path):
    written = write_cifar_binary(tmp_path / "cifar-10")
    labels = written["test_batch"][1]
    rows = ["record,label,source,class_index,official_test_index"]
    rows += [f"{i},{y},{'exact' if i < 2 else 'jpeg_q75'},0,{i if i < 2 else ''}" for i, y in enumerate(labels)]
    (tmp_path / "cifar-10" / "test_batch_provenance.csv").write_text("\n".join(rows) + "\n")
    test = D.CIFAR10(tmp_path, train=False)
    np.testing.assert_array_equal(test.exact_mask, [True, True, False, False])
    exact = D.CIFAR10(tmp_path, train=False, exact_only=True)
    np.testing.assert_array_equal(exact.images, written["test_batch"][0][:2])
    rows[1] = f"0,{(labels[0] + 1) % 10},exact,0,0"  # a label that disagrees with the batch
    (tmp_path / "cifar-10" / "test_batch_provenance.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match="test_batch_provenance.csv"):
        D.CIFAR10(tmp_path, train=False)


# ---------------------------------------------------------------- Iris


IRIS_HEAD = "6,2,a,b,c\n"
IRIS_ROWS = "1.0,2.0,0\n1.5,2.5,0\n3,4,1\n3.5,4.5,1\n5,6,2\n5.5,6.5,2\n"


def test_iris_round_trip(tmp_path):
    (tmp_path / "iris").mkdir()
    (tmp_path / "iris" / "iris.csv").write_text(IRIS_HEAD + IRIS_ROWS)
    ds = D.Iris(tmp_path)
    assert ds.data.shape == (6, 2) and ds.data.dtype == np.float32 and ds.classes == ["a", "b", "c"]
    np.testing.assert_array_equal(ds.labels, [0, 0, 1, 1, 2, 2])
    np.testing.assert_allclose(ds.data[3], [3.5, 4.5])


@pytest.mark.parametrize("text, message", [
    ("7,2,a,b,c\n" + IRIS_ROWS, "announces 7 rows, found 6"),
    (IRIS_HEAD + IRIS_ROWS.replace("3,4,1", "3,4,x"), "line 4"),
    (IRIS_HEAD + IRIS_ROWS.replace("3,4,1", "3,1"), "line 4 has 2 fields"),
    (IRIS_HEAD + IRIS_ROWS.replace("5,6,2", "5,6,3"), "label 3 out of range"),
    ("sepal,petal\n" + IRIS_ROWS, "header"),
])
def test_iris_bad_csv(tmp_path, text, message):
    path = tmp_path / "iris.csv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message) as e:
        D.read_iris_csv(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("content, message", [
    (b"6,2,a,b,c\n" + IRIS_ROWS.encode().replace(b"3,4,1", b"3,\xe94,1"), "not UTF-8 text"),
    ((IRIS_HEAD + IRIS_ROWS.replace("3,4,1", "nan,4,1")).encode(), "line 4: features must be finite"),
    ((IRIS_HEAD + IRIS_ROWS.replace("3,4,1", "3,inf,1")).encode(), "line 4: features must be finite"),
    ((IRIS_HEAD + IRIS_ROWS.replace("3,4,1", "3,1e39,1")).encode(), "line 4: features must be finite float32"),
    ((IRIS_HEAD + IRIS_ROWS.replace("3,4,1", "3,4,99999999999999999999")).encode(), "line 4: label 9999"),
    ((IRIS_HEAD + "\n\n" + IRIS_ROWS.replace("3,4,1", "3,4,x")).encode(), "line 6"),  # counts blank lines
    (b"1,100000000000,a\n1,0\n", "line 2 has 2 fields, expected 100000000001"),
    (b"0,2,a,b\n", "at least one row"),
    (b"1,2\n1,2,0\n", "one class name"),
    (b"", "empty file"),
], ids=["latin-1", "nan", "inf", "float32 overflow", "huge label", "line numbers", "huge feature count",
        "no rows", "no classes", "empty"])
def test_iris_bad_text_and_values_name_the_line(tmp_path, content, message):
    path = tmp_path / "iris.csv"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message) as e:
        D.read_iris_csv(path)
    assert str(path) in str(e.value)


# ---------------------------------------------------------------- image + mask folders


def test_image_mask_folder_round_trip(tmp_path):
    from PIL import Image
    folder = tmp_path / "horizon-sky" / "val"
    masks = write_images_masks(folder, [(40, 20), (30, 50), (16, 8)])
    ds = D.HorizonSky(tmp_path, split="val", size=(8, 16))
    assert ds.images.shape == (3, 3, 8, 16) and ds.masks.shape == (3, 1, 8, 16)
    assert ds.images.dtype == np.uint8 and set(np.unique(ds.masks)) <= {0, 1}
    assert ds.names == ["img_000", "img_001", "img_002"]
    # the third pair is already 8x16: no resampling, so the pixels and the binarised mask are exact
    original = np.asarray(Image.open(folder / "images" / "img_002.png"))
    np.testing.assert_array_equal(ds.images[2], original.transpose(2, 0, 1))
    np.testing.assert_array_equal(ds.masks[2, 0], masks["img_002"] >= 128)
    # nearest resizing keeps masks binary; the bright top half stays sky after resizing
    assert ds.masks[0, 0, :4].all() and not ds.masks[0, 0, 4:].any()
    image, mask = ds[1]
    assert image.shape == (3, 8, 16) and mask.shape == (1, 8, 16)


def test_missing_mask_names_the_image(tmp_path):
    folder = tmp_path / "horizon-sky" / "train"
    write_images_masks(folder, [(8, 8), (8, 8)])
    (folder / "masks" / "img_001.png").unlink()
    with pytest.raises(DatasetError, match="img_001.png: no mask"):
        D.HorizonSky(tmp_path, size=(4, 4))


def test_orphan_mask_and_size_mismatch(tmp_path):
    from PIL import Image
    folder = tmp_path / "pairs"
    write_images_masks(folder, [(8, 8)])
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "masks" / "extra.png")
    with pytest.raises(DatasetError, match="extra.png: no image"):
        D.read_image_mask_folder(folder, (4, 4))
    (folder / "masks" / "extra.png").unlink()
    Image.fromarray(np.zeros((9, 8), np.uint8)).save(folder / "masks" / "img_000.png")
    with pytest.raises(DatasetError, match="img_000.png: mask is 8x9"):
        D.read_image_mask_folder(folder, (4, 4))
    (folder / "images" / "img_000.png").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match="img_000"):
        D.read_image_mask_folder(folder, (4, 4))


def test_empty_image_folders_are_refused_naming_what_was_expected(tmp_path):
    folder = tmp_path / "horizon-sky" / "train"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    (folder / "images" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetError, match=r"train: no image/mask pairs; expected images/<name>.png"):
        D.HorizonSky(tmp_path)
    with pytest.raises(ValueError, match="size must be"):
        D.read_image_mask_folder(folder, (0, 8))


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (10_000, 10_000)],
                         ids=["over twice Pillow's limit", "over Pillow's limit (only a warning there)"])
def test_png_decompression_bombs_are_refused(tmp_path, width, height):
    folder = tmp_path / "pairs"
    write_images_masks(folder, [(8, 8)])
    bomb = folder / "images" / "img_000.png"
    # 1-bit zeros, a few KB for 10**8 pixels; no pixel data at all for 10**10 (Pillow refuses at the header)
    bomb.write_bytes(png_bytes(width, height, rows=b"" if width * height > 10 ** 9 else None))
    with pytest.raises(DatasetError, match="img_000.png: cannot read the image.*DecompressionBomb"):
        D.read_image_mask_folder(folder, (4, 4))


def test_damaged_png_files_raise_dataset_error_or_load(tmp_path):
    """Seeded damage to every part of a small PNG: Pillow's many error types all become DatasetError."""
    folder = tmp_path / "pairs"
    write_images_masks(folder, [(8, 6)])
    path = folder / "images" / "img_000.png"
    good = path.read_bytes()
    rng = np.random.default_rng(0)
    for position, value in zip(rng.integers(0, len(good), 300), rng.integers(1, 256, 300)):
        damaged = bytearray(good)
        damaged[position] ^= value
        path.write_bytes(bytes(damaged))
        try:
            images, masks, _ = D.read_image_mask_folder(folder, (6, 8))
        except DatasetError as e:
            assert "img_000.png" in str(e)
        else:
            assert images.shape == (1, 3, 6, 8) and masks.shape == (1, 1, 6, 8)


# ---------------------------------------------------------------- downloads (local file:// URLs only)


def test_download_url_verifies_and_renames(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload" * 1000)
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = tmp_path / "out" / "file.bin"
    assert D.download_url(src.as_uri(), dest, md5=md5, sha256=sha) == dest
    assert dest.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.bin"]


def test_download_url_checksum_mismatch_leaves_nothing(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(DatasetError, match="checksum mismatch"):
        D.download_url(src.as_uri(), dest, sha256="0" * 64)
    assert list(dest.parent.iterdir()) == []  # no partial file, no temp file


def test_download_url_tries_mirrors(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc")
    dest = tmp_path / "file.bin"
    missing = (tmp_path / "nowhere.bin").as_uri()
    D.download_url([missing, src.as_uri()], dest, md5=hashlib.md5(b"abc").hexdigest())
    assert dest.read_bytes() == b"abc"
    with pytest.raises(OSError, match="could not download"):
        D.download_url([missing], tmp_path / "other.bin", md5="0" * 32)
    with pytest.raises(ValueError, match="md5 or a sha256"):
        D.download_url(src.as_uri(), dest)


def test_mnist_download_from_mirror(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    written = write_mnist(mirror)
    md5s = {p.name[:-3]: hashlib.md5(p.read_bytes()).hexdigest() for p in mirror.iterdir()}
    monkeypatch.setattr(D.MNIST, "mirrors", [(tmp_path / "down").as_uri() + "/", mirror.as_uri() + "/"])
    monkeypatch.setattr(D.MNIST, "resources", md5s)
    ds = D.MNIST(tmp_path / "root", train=False, download=True)
    np.testing.assert_array_equal(ds.labels, written["t10k"][1])
    assert sorted(p.name for p in (tmp_path / "root" / "mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    monkeypatch.setattr(D.MNIST, "resources", {k: "0" * 32 for k in md5s})
    with pytest.raises(DatasetError, match="checksum mismatch"):
        D.MNIST(tmp_path / "root", train=True, download=True)
    assert not list((tmp_path / "root" / "mnist").glob("train*"))


def test_cifar_download_extracts_tarball(tmp_path, monkeypatch):
    written = write_cifar_binary(tmp_path / "build" / "cifar-10-batches-bin", n_per_batch=2)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "build" / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    monkeypatch.setattr(D.CIFAR10, "url", archive.as_uri())
    monkeypatch.setattr(D.CIFAR10, "md5", hashlib.md5(archive.read_bytes()).hexdigest())
    ds = D.CIFAR10(tmp_path / "root", train=False, download=True)
    np.testing.assert_array_equal(ds.images, written["test_batch"][0])
    assert ds.folder == tmp_path / "root" / "cifar-10" / "cifar-10-batches-bin"
    assert not (tmp_path / "root" / "cifar-10" / "cifar-10-binary.tar.gz").exists()


def test_cifar_download_refuses_escaping_tar_members(tmp_path, monkeypatch):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    monkeypatch.setattr(D.CIFAR10, "url", archive.as_uri())
    monkeypatch.setattr(D.CIFAR10, "md5", hashlib.md5(archive.read_bytes()).hexdigest())
    with pytest.raises(DatasetError, match="outside"):
        D.CIFAR10(tmp_path / "root", download=True)
    assert not (tmp_path / "root" / "escaped.txt").exists()
