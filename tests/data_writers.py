"""Writers of tiny files in the standard data formats (MNIST IDX, CIFAR-10 binary and python batches,
image + mask folders), shared by the data-format and recipe tests."""
from __future__ import annotations

import gzip
import lzma
import pickle

import numpy as np

def idx_bytes(array: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
             np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.tobytes()


def write_mnist(folder, n_train=7, n_test=3, gz=True, seed=0):
    """Random images/labels in the four MNIST files; returns {split: (images, labels)}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte"
            payload = idx_bytes(arr)
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(payload))
            else:
                (folder / name).write_bytes(payload)
        out[prefix] = (images, labels)
    return out


def cifar_records(n, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    raw = np.concatenate([labels[:, None], images.reshape(n, -1)], axis=1).tobytes()
    return images, labels, raw


def write_cifar_binary(folder, n_per_batch=4, xz=False):
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        images, labels, raw = cifar_records(n_per_batch, seed=i)
        path = folder / (name + (".bin.xz" if xz else ".bin"))
        path.write_bytes(lzma.compress(raw) if xz else raw)
        batches[name] = (images, labels)
    return batches


def python_batch_bytes(images, labels, protocol=2):
    return pickle.dumps({b"batch_label": b"batch", b"labels": [int(v) for v in labels],
                         b"data": images.reshape(len(images), 3 * 32 * 32), b"filenames": [b"a.png"] * len(labels)},
                        protocol=protocol)


def write_images_masks(folder, sizes, with_masks=True):
    """RGB JPEG/PNG images and greyscale PNG masks (a bright top half); returns the masks as arrays."""
    from PIL import Image
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir(parents=True)
    masks = {}
    for k, (w, h) in enumerate(sizes):
        stem = f"img_{k:03d}"
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "images" / f"{stem}.png")
        mask = np.zeros((h, w), np.uint8)
        mask[: h // 2] = 200
        mask[h // 2:, : w // 4] = 127  # just below the threshold: stays 0
        masks[stem] = mask
        if with_masks:
            Image.fromarray(mask).save(folder / "masks" / f"{stem}.png")
    return masks


def png_bytes(width, height, rows: bytes | None = None, bit_depth=1, color_type=0) -> bytes:
    """A PNG declaring width x height; `rows` are the filtered scanlines (default: all zero for a 1-bit
    greyscale image), compressed in chunks so a huge image costs little memory to write."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    if rows is None:
        row = bytes(1 + (width * bit_depth + 7) // 8)
        compressor = zlib.compressobj(9)
        parts = [compressor.compress(row * min(height - done, 1024)) for done in range(0, height, 1024)]
        idat = b"".join(parts) + compressor.flush()
    else:
        idat = zlib.compress(rows)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
