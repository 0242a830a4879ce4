"""Image + mask folders for binary segmentation (the horizon / sky lesson). Needs Pillow."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .dataset import ArrayDataset, hwc_image
from .root import DatasetError, data_root, missing_files_error

__all__ = ["read_image_mask_folder", "HorizonSky"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def _image_module():
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is in the test and images extras
        raise ImportError("reading image folders needs Pillow: pip install 'tinygrad_course[images]'") from None
    return Image


def _by_stem(folder: Path) -> dict:
    files = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            if p.stem in files:
                raise DatasetError(f"{folder}: two files with the stem {p.stem!r} ({files[p.stem].name}, {p.name})")
            files[p.stem] = p
    return files


def read_image_mask_folder(folder, size):
    """Read `folder`/images/* and `folder`/masks/*, paired by file stem, resized to size=(H, W).

    Returns images uint8 (N, 3, H, W) (RGB, bilinear resize), masks uint8 (N, 1, H, W) with values
    0/1 (nearest resize, then mask >= 128), and the sorted stems. No pairs at all, an image without
    a mask, a mask without an image, a mask whose size differs from its image, or an unreadable
    file raise DatasetError naming the folder or file. Images with more pixels than Pillow's
    Image.MAX_IMAGE_PIXELS (a decompression bomb, or a corrupt header) are refused, not decoded.
    """
    Image = _image_module()
    folder = Path(folder)
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(d, (int, np.integer)) and d >= 1 for d in size)):
        raise ValueError(f"size must be (height, width) with two positive integers, got {size!r}")
    height, width = size
    image_files, mask_files = _by_stem(folder / "images"), _by_stem(folder / "masks")
    if not image_files and not mask_files:
        raise DatasetError(f"{folder}: no image/mask pairs; expected images/<name>.png (or "
                           f"{', '.join(sorted(IMAGE_SUFFIXES))}) with a mask masks/<name>.png for each")
    for stem, path in image_files.items():
        if stem not in mask_files:
            raise DatasetError(f"{path}: no mask {stem}.* in {folder / 'masks'}")
    for stem, path in mask_files.items():
        if stem not in image_files:
            raise DatasetError(f"{path}: no image {stem}.* in {folder / 'images'}")
    stems = sorted(image_files)
    images = np.empty((len(stems), 3, height, width), np.uint8)
    masks = np.empty((len(stems), 1, height, width), np.uint8)
    for i, stem in enumerate(stems):
        im, mk = _decode(Image, image_files[stem], "RGB"), _decode(Image, mask_files[stem], "L")
        if im.size != mk.size:
            raise DatasetError(f"{mask_files[stem]}: mask is {mk.size[0]}x{mk.size[1]} (WxH) but its image "
                               f"{image_files[stem].name} is {im.size[0]}x{im.size[1]}")
        images[i] = np.asarray(im.resize((width, height), Image.BILINEAR)).transpose(2, 0, 1)
        masks[i, 0] = np.asarray(mk.resize((width, height), Image.NEAREST)) >= 128
    return images, masks, stems


def _decode(Image, path: Path, mode: str):
    """The whole image in `path`, converted to `mode`; DatasetError naming the file for anything Pillow refuses."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse those too rather than decode them
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return im.convert(mode)
    # Pillow's decoders raise many types for bad files (OSError, SyntaxError, ValueError, struct.error,
    # zlib.error, DecompressionBombError, ...); all of them mean this file cannot be used.
    except Exception as e:
        raise DatasetError(f"{path}: cannot read the image ({type(e).__name__}: {e}); replace or remove the "
                           "file and its mask") from None


class HorizonSky(ArrayDataset):
    """Sky vs. not-sky segmentation (an ADE20K subset), 100 train and 100 val pairs.

    `.images` uint8 (N, 3, H, W), `.masks` uint8 (N, 1, H, W) with 1 = sky, `.names` the file
    stems. Reads <root>/horizon-sky/<split>/{images,masks}/ and resizes every pair to size=(H, W).
    There is no canonical download: put the folder under the data root. transform gets each image as
    torchvision gives it (H x W x 3 uint8), target_transform each mask (H x W uint8).
    """

    classes = ["not sky", "sky"]

    def __init__(self, root=None, split: str = "train", size=(128, 128), *, transform=None, target_transform=None):
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        self.root = data_root(root)
        self.split = split
        folder = self.root / "horizon-sky" / split
        missing = [sub for sub in ("images", "masks") if not (folder / sub).is_dir()]
        if missing:
            raise missing_files_error("HorizonSky", folder, [m + "/" for m in missing], downloadable=False)
        images, masks, self.names = read_image_mask_folder(folder, size)
        super().__init__(images, masks, transform=transform, target_transform=target_transform)

    @property
    def images(self) -> np.ndarray:
        return self.arrays[0]

    @property
    def masks(self) -> np.ndarray:
        return self.arrays[1]

    def _transform_input(self, image):
        return hwc_image(image)

    def _transform_target(self, mask):
        return hwc_image(mask)
