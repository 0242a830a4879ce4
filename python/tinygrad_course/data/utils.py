"""torchvision.utils' image grid, for looking at a batch (`imshow(make_grid(images))`)."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor


def make_grid(tensor, nrow: int = 8, padding: int = 2, normalize: bool = False, value_range=None,
              scale_each: bool = False, pad_value: float = 0.0) -> Tensor:
    """A (C, H', W') image of the (B, C, H, W) batch (or list of (C, H, W) images) in rows of `nrow`,
    `padding` pixels of `pad_value` around each, as torchvision.utils.make_grid: one channel is repeated
    to three, a batch of one is that image unpadded; normalize=True maps `value_range` (default: the min
    and max, per image if scale_each) to [0, 1].
    """
    if isinstance(tensor, (list, tuple)):
        arrays = [np.asarray(_array(t)) for t in tensor]
        if len({a.shape for a in arrays}) > 1:
            raise ValueError(f"make_grid: the images must have one shape, got {sorted({a.shape for a in arrays})}")
        batch = np.stack(arrays)
    else:
        batch = np.asarray(_array(tensor))
    if batch.ndim == 2:  # one (H, W) image
        batch = batch[None]
    if batch.ndim == 3:  # one (C, H, W) image
        batch = batch[None]
    if batch.ndim != 4 or batch.shape[0] == 0:
        raise ValueError(f"make_grid: expected a (B, C, H, W) batch or a list of (C, H, W) images, got {batch.shape}")
    if not isinstance(nrow, int) or nrow < 1 or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"make_grid: nrow must be >= 1 and padding >= 0, got nrow={nrow!r}, padding={padding!r}")
    if batch.shape[1] == 1:
        batch = np.concatenate([batch] * 3, axis=1)
    batch = batch.copy()  # the caller's images stay as they are
    if normalize:
        batch = batch.astype(np.float32 if batch.dtype.kind != "f" else batch.dtype)
        for part in (batch if scale_each else [batch]):
            low, high = value_range if value_range is not None else (part.min(), part.max())
            np.clip(part, low, high, out=part)
            part -= low
            part /= max(high - low, 1e-5)
    b, c, h, w = batch.shape
    if b == 1:
        return Tensor(batch[0])
    cols = min(nrow, b)
    rows = -(-b // cols)
    grid = np.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value, batch.dtype)
    for i, image in enumerate(batch):
        y, x = (i // cols) * (h + padding) + padding, (i % cols) * (w + padding) + padding
        grid[:, y:y + h, x:x + w] = image
    return Tensor(grid)


def _array(t):
    return t.detach().numpy() if isinstance(t, Tensor) else t
