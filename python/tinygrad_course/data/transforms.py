"""Batch transforms on NumPy arrays (NCHW image batches or (N, D) feature matrices), and torchvision's
per-sample ToTensor and Normalize for data sets' `transform=`. The crops and the flip also take one
image as torchvision does: a C x H x W Tensor, or an H x W x C (or H x W) array as before ToTensor.

Fitted transforms (Standardize, ZCA) learn their statistics with `.fit(x_train)` on the training
split only and are then applied to every split. Random transforms draw from a NumPy Generator:
the one passed at call time (`t(x, rng=g)`, what DataLoader does), else the one given to the
constructor, else, while a DataLoader makes a batch, that batch's generator (so a data set's
per-sample augmentation is the same with or without worker processes), else tinygrad_course's
global generator (see manual_seed).
"""
from __future__ import annotations

import contextlib
import inspect
import threading

import numpy as np

__all__ = ["Transform", "Compose", "Lambda", "ToTensor", "Normalize", "ToFloat", "Standardize", "ZCA", "RandomCrop",
           "CenterCrop", "RandomHorizontalFlip", "OneHot", "one_hot", "Resize",
           "RandomResizedCrop"]


_batch = threading.local()  # the generator of the batch this thread is making, if any


@contextlib.contextmanager
def batch_generator(rng: np.random.Generator):
    """Random transforms called without a generator in this block (in this thread) draw from `rng`."""
    previous = getattr(_batch, "rng", None)
    _batch.rng = rng
    try:
        yield
    finally:
        _batch.rng = previous


def _generator(rng):
    if rng is None:
        rng = getattr(_batch, "rng", None)
    if rng is None:
        from ..tensor import get_rng
        return get_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _takes_rng(t) -> bool:
    """Whether a transform accepts an `rng` argument (our Transform classes all do)."""
    if isinstance(t, Transform):
        return True
    try:
        return "rng" in inspect.signature(t).parameters
    except (TypeError, ValueError):  # some builtins have no signature
        return False


def _feature_axes(x: np.ndarray):
    """Axes reduced to get per-channel (NCHW: 0, 2, 3) or per-feature ((N, D): 0) statistics."""
    if x.ndim == 2:
        return (0,)
    if x.ndim == 4:
        return (0, 2, 3)
    raise ValueError(f"expected an (N, D) or (N, C, H, W) batch, got shape {x.shape}")


def _chunks(x, rows: int = 2048):
    for i in range(0, len(x), rows):
        yield x[i:i + rows]


def _check_images(x: np.ndarray, name: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{name} expects an NCHW batch, got shape {x.shape}")


def _one_image(batch_fn, x):
    """batch_fn (NCHW array -> NCHW array) applied to what torchvision's transforms take: a Tensor
    (C x H x W, or a batch) gives a Tensor, an H x W x C or H x W array the same layout back.
    None when x is a batch array: the caller handles it."""
    from ..tensor import Tensor
    if isinstance(x, Tensor):
        arr = x.detach().numpy()
        out = batch_fn(arr[None])[0] if arr.ndim == 3 else batch_fn(arr)
        return Tensor(np.ascontiguousarray(out), device=x.device)
    if np.ndim(x) not in (2, 3):
        return None
    x = np.asarray(x)
    chw = (x[:, :, None] if x.ndim == 2 else x).transpose(2, 0, 1)
    out = batch_fn(chw[None])[0].transpose(1, 2, 0)
    return out[:, :, 0] if x.ndim == 2 else out


class Transform:
    """Base class: `t(x, rng=None)` returns the transformed batch. Deterministic ones ignore rng."""

    def __call__(self, x, rng=None):
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_") and k != "rng")
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply transforms in order; a call-time rng is passed on to each one that takes an rng."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x, rng=None):
        for t in self.transforms:
            x = t(x, rng=rng) if _takes_rng(t) else t(x)
        return x


class Lambda(Transform):
    """torchvision's Lambda: a function as a transform, e.g. Lambda(lambda x: x.flatten())."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Lambda needs a callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, x, rng=None):
        return self.lambd(x)


class ToTensor(Transform):
    """torchvision's ToTensor: an H x W x C image (or H x W, grey) as a NumPy array or PIL image ->
    a C x H x W Tensor. uint8 values become the default float dtype scaled to [0, 1]; other dtypes
    keep their values, as in torchvision."""

    def __call__(self, pic, rng=None):
        from ..tensor import Tensor, get_default_dtype
        if hasattr(pic, "getbands"):  # a PIL image
            pic = np.asarray(pic)
        if not isinstance(pic, np.ndarray):
            raise TypeError(f"ToTensor: pic must be a NumPy array (H x W x C) or PIL image, got {type(pic).__name__}")
        if pic.ndim not in (2, 3):
            raise ValueError(f"ToTensor: pic must be an H x W or H x W x C image, got shape {pic.shape}")
        chw = (pic[:, :, None] if pic.ndim == 2 else pic).transpose(2, 0, 1)
        if pic.dtype == np.uint8:
            dtype = get_default_dtype()
            return Tensor(chw.astype(dtype) / dtype.type(255))
        return Tensor(np.ascontiguousarray(chw))


class Normalize(Transform):
    """torchvision's Normalize: (x - mean[c]) / std[c] per channel of a float C x H x W image (or an
    N x C x H x W batch), a Tensor or a NumPy array; returns the same kind. inplace=True writes
    the result into the input."""

    def __init__(self, mean, std, inplace: bool = False):
        self.mean, self.std = np.asarray(mean, np.float64).ravel(), np.asarray(std, np.float64).ravel()
        if not self.mean.size or not self.std.size or (self.mean.size != self.std.size
                                                       and 1 not in (self.mean.size, self.std.size)):
            raise ValueError(f"Normalize: mean and std need one value per channel, got {self.mean.size} and "
                             f"{self.std.size} values")
        if (self.std == 0).any():
            raise ValueError(f"Normalize: std must not be zero (a division by zero), got {self.std.tolist()}")
        self.inplace = inplace

    def __call__(self, x, rng=None):
        from ..tensor import Tensor
        arr = x.detach().numpy() if isinstance(x, Tensor) else np.asarray(x)
        if arr.dtype.kind != "f":
            raise TypeError(f"Normalize: expects a float image (apply ToTensor first), got dtype {arr.dtype}")
        if arr.ndim < 3 or max(self.mean.size, self.std.size) not in (1, arr.shape[-3]):
            raise ValueError(f"Normalize: expects C x H x W images with {max(self.mean.size, self.std.size)} "
                             f"channels (mean and std have one value per channel), got shape {arr.shape}")
        shape = (-1, 1, 1)
        out = (arr - self.mean.astype(arr.dtype).reshape(shape)) / self.std.astype(arr.dtype).reshape(shape)
        if not isinstance(x, Tensor):
            if self.inplace:
                x[...] = out
                return x
            return out
        if self.inplace:
            x.data = out  # counts as an in-place change of x
            return x
        return Tensor(out, device=x.device)


class ToFloat(Transform):
    """Convert to float (float32 by default) and multiply by `scale` (1/255 maps bytes to [0, 1])."""

    def __init__(self, scale: float = 1 / 255, dtype=np.float32):
        self.scale, self.dtype = scale, np.dtype(dtype)

    def __call__(self, x, rng=None):
        return np.asarray(x, dtype=self.dtype) * self.dtype.type(self.scale)


class Standardize(Transform):
    """Per-channel (NCHW) or per-feature ((N, D)) standardisation: (x - mean) / std, stats from fit().

    A constant channel (std 0) is only centred. Output float32 unless `dtype` says otherwise.
    """

    def __init__(self, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        self.mean_ = self.std_ = None

    def fit(self, x) -> "Standardize":
        x = np.asarray(x)
        axes = _feature_axes(x)
        mean = x.mean(axis=axes, dtype=np.float64, keepdims=True)[0]
        # second pass in chunks: no float64 copy of the whole training set
        sq = sum(((c - mean) ** 2).sum(axis=axes) for c in _chunks(x))
        std = np.sqrt(sq / (x.size / mean.size)).reshape(mean.shape)
        self.mean_, self.std_ = mean, np.where(std > 0, std, 1.0)
        return self

    def __call__(self, x, rng=None):
        if self.mean_ is None:
            raise RuntimeError("Standardize: call fit(x_train) first")
        x = np.asarray(x)
        if x.shape[1:2] != self.mean_.shape[:1]:
            raise ValueError(f"Standardize was fitted on {self.mean_.shape[0]} channels, got shape {x.shape}")
        mean, std = self.mean_.astype(self.dtype), self.std_.astype(self.dtype)
        return (x.astype(self.dtype) - mean) / std


class ZCA(Transform):
    """ZCA whitening: x -> (x - mean) W with W = Q diag(lambda + eps)^-1/2 Q^T.

    Q, lambda: eigenvectors and eigenvalues of the covariance of the flattened, centred training
    samples (fit). Whitened training data has covariance Q diag(lambda / (lambda + eps)) Q^T, close
    to the identity wherever lambda >> eps, so eps depends on the data's scale (scale pixels to
    [0, 1] first, e.g. with ToFloat, for an eps like 1e-2). Output keeps the input's shape, float32.
    """

    def __init__(self, eps: float = 1e-2, dtype=np.float32):
        self.eps, self.dtype = eps, np.dtype(dtype)
        self.mean_ = self.W_ = None

    def fit(self, x) -> "ZCA":
        x = np.asarray(x)
        flat = x.reshape(len(x), -1)
        self.mean_ = flat.mean(axis=0, dtype=np.float64)
        cov = np.zeros((flat.shape[1],) * 2)
        for c in _chunks(flat):  # float64 in chunks: no float64 copy of the whole training set
            c = c - self.mean_
            cov += c.T @ c
        cov /= len(flat)
        lam, q = np.linalg.eigh(cov)
        lam = np.clip(lam, 0, None)  # round-off can make tiny eigenvalues negative
        self.W_ = (q / np.sqrt(lam + self.eps)) @ q.T
        return self

    def __call__(self, x, rng=None):
        if self.W_ is None:
            raise RuntimeError("ZCA: call fit(x_train) first")
        x = np.asarray(x)
        flat = x.reshape(len(x), -1)
        if flat.shape[1] != len(self.mean_):
            raise ValueError(f"ZCA was fitted on {len(self.mean_)} values per sample, got shape {x.shape}")
        w = self.W_.astype(self.dtype)
        out = (flat.astype(self.dtype) - self.mean_.astype(self.dtype)) @ w
        return out.reshape(x.shape)


class RandomCrop(Transform):
    """Random size x size crops of an NCHW batch (or one image), one offset per sample, after zero-padding
    by `padding`.

    RandomCrop(32, padding=4) is the pad-4 augmentation that keeps CIFAR's 32x32 input;
    RandomCrop(28) takes random 28x28 crops (pair it with CenterCrop(28) at test time).
    """

    def __init__(self, size, padding: int = 0, rng=None):
        self.size = (size, size) if np.isscalar(size) else tuple(size)
        self.padding, self.rng = padding, rng

    def __call__(self, x, rng=None):
        one = _one_image(lambda b: self(b, rng=rng), x)
        if one is not None:
            return one
        x = np.asarray(x)
        _check_images(x, "RandomCrop")
        g = _generator(rng if rng is not None else self.rng)
        p = self.padding
        if p:
            x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        n, _, h, w = x.shape
        ch, cw = self.size
        if ch > h or cw > w:
            raise ValueError(f"crop {self.size} larger than the (padded) images {(h, w)}")
        top = g.integers(0, h - ch + 1, size=n)
        left = g.integers(0, w - cw + 1, size=n)
        rows = top[:, None] + np.arange(ch)  # (N, ch)
        cols = left[:, None] + np.arange(cw)  # (N, cw)
        idx = np.arange(n)[:, None, None, None]
        return x[idx, np.arange(x.shape[1])[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]]


class CenterCrop(Transform):
    """The central size x size window of an NCHW batch or one image (rounding the offset down)."""

    def __init__(self, size):
        self.size = (size, size) if np.isscalar(size) else tuple(size)

    def __call__(self, x, rng=None):
        one = _one_image(self, x)
        if one is not None:
            return one
        x = np.asarray(x)
        _check_images(x, "CenterCrop")
        h, w = x.shape[2:]
        ch, cw = self.size
        if ch > h or cw > w:
            raise ValueError(f"crop {self.size} larger than the images {(h, w)}")
        top, left = (h - ch) // 2, (w - cw) // 2
        return x[:, :, top:top + ch, left:left + cw]


def _resized_size(h: int, w: int, size, max_size=None) -> tuple:
    """torchvision's output size: (h, w) as given, or for one number the smaller edge set to it and the
    longer one to int(size * long / short) (then both scaled down if the longer one exceeds max_size)."""
    if len(size) == 2:
        if max_size is not None:
            raise ValueError(f"Resize: max_size applies only when size is one number, got size={size}")
        return size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size[0], int(size[0] * long / short)
    if max_size is not None:
        if max_size <= size[0]:
            raise ValueError(f"Resize: max_size={max_size} must be larger than size={size[0]}")
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_long, new_short) if w <= h else (new_short, new_long)


def _linear_matrix(n_in: int, n_out: int, antialias: bool, dtype) -> np.ndarray:
    """The (n_out, n_in) matrix of PyTorch's bilinear resampling along one axis (align_corners=False).

    antialias=False: F.interpolate's two taps (ops.linear_taps). antialias=True: PyTorch's (and PIL's)
    triangle filter widened by the scale when downsampling, normalised to sum 1 (_upsample_bilinear2d_aa).
    """
    m = np.zeros((n_out, n_in), dtype=np.float64)
    if not antialias:
        from ..ops import linear_taps
        i0, i1, w0, w1 = linear_taps(n_in, n_out, False, None, dtype)
        rows = np.arange(n_out)
        np.add.at(m, (rows, i0), w0)
        np.add.at(m, (rows, i1), w1)
        return m.astype(dtype)
    scale = n_in / n_out
    support = scale if scale >= 1.0 else 1.0
    inv = 1.0 / scale if scale >= 1.0 else 1.0
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)  # int(): C's truncation, as PyTorch
        hi = min(int(center + support + 0.5), n_in)
        w = np.maximum(0.0, 1.0 - np.abs((np.arange(lo, hi) - center + 0.5) * inv))
        m[i, lo:hi] = w / w.sum() if w.sum() != 0 else w
    return m.astype(dtype)



class Resize(Transform):
    """torchvision's Resize of an NCHW batch or one image: `size` (h, w), or one number for the smaller
    edge (the longer one keeps the aspect ratio, torchvision's int(size * long / short), at most max_size).

    interpolation "bilinear" (F.interpolate's align_corners=False rule) or "nearest" (F.interpolate's
    "nearest"); a torchvision InterpolationMode works too. antialias (bilinear only) is torchvision's
    low-pass filter when downsampling, as F.interpolate(..., antialias=True); default True as torchvision.
    Float images keep their dtype; integer ones (uint8) are resampled in float32 and rounded back.
    """

    def __init__(self, size, interpolation="bilinear", max_size=None, antialias=True):
        size = (size,) if np.isscalar(size) else tuple(size)
        if len(size) not in (1, 2) or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size):
            raise ValueError(f"Resize: size must be a positive int or an (h, w) pair of them, got {size}")
        mode = str(getattr(interpolation, "value", interpolation)).lower()
        if mode not in ("bilinear", "nearest"):
            raise ValueError(f"Resize: interpolation must be 'bilinear' or 'nearest', got {interpolation!r}")
        self.size, self.interpolation, self.max_size = tuple(int(s) for s in size), mode, max_size
        self.antialias = bool(antialias) if antialias is not None else True
        _resized_size(2, 2, self.size, max_size)  # checks max_size now rather than at the first call

    def __call__(self, x, rng=None):
        one = _one_image(self, x)
        if one is not None:
            return one
        x = np.asarray(x)
        _check_images(x, "Resize")
        size = _resized_size(*x.shape[2:], self.size, self.max_size)
        return _resize(x, size, self.interpolation, self.antialias)


def _resize(x: np.ndarray, size, mode: str, antialias: bool) -> np.ndarray:
    """An NCHW batch resampled to size (oh, ow): see Resize."""
    h, w = x.shape[2:]
    oh, ow = size
    if (oh, ow) == (h, w):
        return x.copy()
    if mode == "nearest":
        from ..ops import nearest_indices
        return np.ascontiguousarray(x[:, :, nearest_indices(h, oh)][:, :, :, nearest_indices(w, ow)])
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    a = x.astype(dtype, copy=False)
    if ow != w:
        a = a @ _linear_matrix(w, ow, antialias, dtype).T
    if oh != h:
        a = np.einsum("oh,nchw->ncow", _linear_matrix(h, oh, antialias, dtype), a)
    if x.dtype.kind == "f":
        return np.ascontiguousarray(a)
    info = np.iinfo(x.dtype) if x.dtype.kind in "iu" else None
    a = np.round(a)
    return (np.clip(a, info.min, info.max) if info else a).astype(x.dtype)


class RandomResizedCrop(Transform):
    """torchvision's RandomResizedCrop of an NCHW batch (one crop per sample) or one image: a crop of a
    random area (a fraction in `scale` of the image's) and aspect ratio (log-uniform in `ratio`), resized
    to `size` (an int for a square) as Resize does. The crop is drawn as torchvision's get_params does
    (ten tries, then a central crop of the ratio's nearest bound), from this library's generator.
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation="bilinear", antialias=True,
                 rng=None):
        self.size = (size, size) if np.isscalar(size) else tuple(size)
        if len(self.size) == 1:
            self.size = self.size * 2
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError(f"RandomResizedCrop: scale and ratio must be (min, max) ranges, got {scale} and {ratio}")
        resize = Resize(self.size, interpolation, antialias=antialias)  # checks size and interpolation
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.interpolation, self.antialias, self.rng = resize.interpolation, resize.antialias, rng

    @staticmethod
    def get_params(height: int, width: int, scale, ratio, rng) -> tuple:
        """(top, left, h, w) of one crop, by torchvision's rule, drawn from the NumPy Generator `rng`."""
        area = height * width
        log_ratio = np.log(ratio)
        for _ in range(10):
            target_area = area * rng.uniform(scale[0], scale[1])
            aspect = float(np.exp(rng.uniform(log_ratio[0], log_ratio[1])))
            w = int(round(np.sqrt(target_area * aspect)))
            h = int(round(np.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
        in_ratio = width / height
        if in_ratio < min(ratio):
            w, h = width, int(round(width / min(ratio)))
        elif in_ratio > max(ratio):
            h, w = height, int(round(height * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, x, rng=None):
        one = _one_image(lambda b: self(b, rng=rng), x)
        if one is not None:
            return one
        x = np.asarray(x)
        _check_images(x, "RandomResizedCrop")
        g = _generator(rng if rng is not None else self.rng)
        out = np.empty(x.shape[:2] + self.size, dtype=x.dtype)
        for k in range(len(x)):
            top, left, h, w = self.get_params(*x.shape[2:], self.scale, self.ratio, g)
            out[k] = _resize(x[k:k + 1, :, top:top + h, left:left + w], self.size, self.interpolation,
                             self.antialias)[0]
        return out


class RandomHorizontalFlip(Transform):
    """Mirror each image of an NCHW batch (or one image) left-right with probability p.

    Extra batches passed along (`flip(images, masks)`) get the same flips, for segmentation.
    """

    def __init__(self, p: float = 0.5, rng=None):
        self.p, self.rng = p, rng

    def __call__(self, x, *others, rng=None):
        if others and (others[-1] is None or isinstance(others[-1], np.random.Generator)):
            *others, rng = others  # the generator passed positionally: flip(x, rng)
        if not others:
            one = _one_image(lambda b: self(b, rng=rng), x)
            if one is not None:
                return one
        g = _generator(rng if rng is not None else self.rng)
        x = np.asarray(x)
        _check_images(x, "RandomHorizontalFlip")
        flip = g.random(len(x)) < self.p
        out = []
        for a in (x, *others):
            a = np.array(a, copy=True)
            a[flip] = a[flip][..., ::-1]
            out.append(a)
        return out[0] if not others else tuple(out)


def one_hot(labels, num_classes: int, dtype=np.float32) -> np.ndarray:
    """(N,) integer labels -> (N, num_classes) one-hot rows."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must be in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}")
    return np.eye(num_classes, dtype=dtype)[labels]


class OneHot(Transform):
    """Transform form of one_hot (e.g. a DataLoader target_transform)."""

    def __init__(self, num_classes: int, dtype=np.float32):
        self.num_classes, self.dtype = num_classes, dtype

    def __call__(self, y, rng=None):
        return one_hot(y, self.num_classes, self.dtype)
