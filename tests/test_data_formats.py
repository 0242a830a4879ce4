"""Readers of the standard data formats, on tiny files written here; data root; checksum-verified downloads."""
from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import pickle
import tarfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_course import data as D
from tinygrad_course.data import DatasetError

from data_writers import (cifar_records, idx_bytes, python_batch_bytes, write_cifar_binary,  # noqa: E402
                          write_images_masks, write_mnist)


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
