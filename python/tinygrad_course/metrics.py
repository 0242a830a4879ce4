"""Evaluation metrics: classification (accuracy, top-k, confusion matrix), binary segmentation
(pixel accuracy, IoU, Dice) and a running average over the batches of an epoch.

Inputs are NumPy arrays, Tensors (read with `.numpy()`, outside the graph) or anything
`np.asarray` takes; results are Python floats or NumPy arrays. Shapes are checked and a mismatch
raises a ValueError naming both shapes.

Segmentation masks: boolean, integer 0/1, or float. A float mask is thresholded (values above
`threshold`, 0.5 by default, are foreground), so probabilities and 0.0/1.0 masks both work; pass
threshold=0.0 for logits. The scores pool all pixels of the batch, or with per_image=True are
computed per image (axis 0) and returned as an array. Empty cases: when neither the prediction nor
the target has a foreground pixel, IoU and Dice are defined as 1.0 (a perfect match), not 0/0.
"""
from __future__ import annotations

import numpy as np

from .device import to_numpy
from .tensor import Tensor

__all__ = ["accuracy", "top_k_accuracy", "confusion_matrix", "pixel_accuracy", "iou", "dice", "RunningMetrics"]


def _array(a) -> np.ndarray:
    return a.detach().numpy() if isinstance(a, Tensor) else to_numpy(a)  # np.asarray refuses CuPy arrays


def _labels(name: str, pred, target):
    """(predicted labels, target labels) of equal shape; scores with one extra axis 1 are arg-maxed."""
    pred, target = _array(pred), _array(target)
    if target.dtype.kind not in "iub":
        raise TypeError(f"{name}: target must hold integer class labels, got dtype {target.dtype}")
    if pred.ndim == target.ndim + 1 and pred.ndim >= 2 and pred.shape[:1] + pred.shape[2:] == target.shape:
        pred = pred.argmax(axis=1)
    elif pred.shape != target.shape:
        raise ValueError(f"{name}: predictions of shape {pred.shape} do not match target of shape {target.shape} "
                         "(give labels of the target's shape, or scores (N, C, ...) with the classes on axis 1)")
    if target.size == 0:
        raise ValueError(f"{name}: empty input (shape {target.shape})")
    return pred, target


def accuracy(logits_or_pred, target) -> float:
    """Fraction of correct predictions. Predictions are labels of the target's shape, or scores
    (N, C) / (N, C, H, W) whose argmax over axis 1 is the predicted class."""
    pred, target = _labels("accuracy", logits_or_pred, target)
    return float((pred == target).mean())


def top_k_accuracy(logits, target, k: int = 5) -> float:
    """Fraction of samples whose true class is among the k highest of its (N, C) scores.

    Ties count in the true class's favour: a sample is a hit when fewer than k classes score
    strictly higher than the true one.
    """
    logits, target = _array(logits), _array(target)
    if logits.ndim != 2 or target.shape != (logits.shape[0],):
        raise ValueError(f"top_k_accuracy: expected scores (N, C) and targets (N,), got {logits.shape} and "
                         f"{target.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"top_k_accuracy: target must hold integer class labels, got dtype {target.dtype}")
    n, c = logits.shape
    if not 1 <= k <= c:
        raise ValueError(f"top_k_accuracy: k={k} must be between 1 and the number of classes {c}")
    if n == 0:
        raise ValueError("top_k_accuracy: empty input")
    if target.min() < 0 or target.max() >= c:
        raise ValueError(f"top_k_accuracy: target labels must be in [0, {c}), got range "
                         f"[{target.min()}, {target.max()}]")
    true_score = logits[np.arange(n), target][:, None]
    return float(((logits > true_score).sum(axis=1) < k).mean())


def confusion_matrix(pred, target, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts: row = true class, column = predicted class.

    `pred` holds labels of the target's shape or scores with the classes on axis 1.
    """
    pred, target = _labels("confusion_matrix", pred, target)
    for name, a in (("pred", pred), ("target", target)):
        if a.min() < 0 or a.max() >= num_classes:
            raise ValueError(f"confusion_matrix: {name} labels must be in [0, {num_classes}), got range "
                             f"[{a.min()}, {a.max()}]")
    flat = target.ravel().astype(np.int64) * num_classes + pred.ravel().astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


# --- binary segmentation ---------------------------------------------------------------------
def _masks(name: str, pred_mask, target_mask, threshold: float, per_image: bool):
    pred, target = _array(pred_mask), _array(target_mask)
    if pred.shape != target.shape:
        raise ValueError(f"{name}: prediction mask {pred.shape} and target mask {target.shape} differ")
    if pred.size == 0:
        raise ValueError(f"{name}: empty masks (shape {pred.shape})")
    if per_image and pred.ndim < 2:
        raise ValueError(f"{name}: per_image needs masks (N, ...) with at least 2 axes, got {pred.shape}")
    out = []
    for a in (pred, target):
        if a.dtype.kind == "f":
            a = a > threshold
        elif a.dtype.kind in "iu":
            if a.min() < 0 or a.max() > 1:
                raise ValueError(f"{name}: integer masks must hold 0 and 1, got range [{a.min()}, {a.max()}]")
            a = a.astype(bool)
        elif a.dtype.kind != "b":
            raise TypeError(f"{name}: masks must be boolean, 0/1 integers or floats, got {a.dtype}")
        out.append(a.reshape(a.shape[0], -1) if per_image else a.reshape(1, -1))
    return out


def _finish(values: np.ndarray, per_image: bool):
    return values if per_image else float(values[0])


def pixel_accuracy(pred_mask, target_mask, threshold: float = 0.5, per_image: bool = False):
    """Fraction of pixels where the binary prediction equals the target."""
    p, t = _masks("pixel_accuracy", pred_mask, target_mask, threshold, per_image)
    return _finish((p == t).mean(axis=1), per_image)


def iou(pred_mask, target_mask, threshold: float = 0.5, per_image: bool = False):
    """Intersection over union |P & T| / |P | T| of the foreground; 1.0 when both masks are empty."""
    p, t = _masks("iou", pred_mask, target_mask, threshold, per_image)
    inter, union = (p & t).sum(axis=1), (p | t).sum(axis=1)
    return _finish(np.where(union > 0, inter / np.maximum(union, 1), 1.0), per_image)


def dice(pred_mask, target_mask, threshold: float = 0.5, per_image: bool = False):
    """Dice coefficient 2 |P & T| / (|P| + |T|) of the foreground; 1.0 when both masks are empty."""
    p, t = _masks("dice", pred_mask, target_mask, threshold, per_image)
    inter, total = (p & t).sum(axis=1), p.sum(axis=1) + t.sum(axis=1)
    return _finish(np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0), per_image)


# --- accumulation over an epoch -----------------------------------------------------------------
class RunningMetrics:
    """Averages of per-batch values weighted by batch size, e.g. loss and top-1/top-5 over an epoch.

        running = RunningMetrics()
        for x, y in loader:
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            running.update(len(y), loss=loss, top1=accuracy(logits, y), top5=top_k_accuracy(logits, y, 5))
        running.averages()  # {"loss": ..., "top1": ..., "top5": ...}

    Each name keeps its own count, so a value logged on some batches only is averaged over those.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def update(self, batch_size: int, **values) -> None:
        """Add per-batch averages (floats or one-element Tensors) that each cover `batch_size` samples."""
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"RunningMetrics.update: batch_size must be a positive integer, got {batch_size!r}")
        for name, v in values.items():
            v = float(v.item() if isinstance(v, Tensor) else v)
            self._sums[name] = self._sums.get(name, 0.0) + v * batch_size
            self._counts[name] = self._counts.get(name, 0) + int(batch_size)

    def count(self, name: str) -> int:
        """Samples seen for `name`."""
        return self._counts.get(name, 0)

    def __getitem__(self, name: str) -> float:
        if name not in self._sums:
            raise KeyError(f"RunningMetrics: no value named {name!r} yet (have {sorted(self._sums)})")
        return self._sums[name] / self._counts[name]

    def __contains__(self, name: str) -> bool:
        return name in self._sums

    def averages(self) -> dict:
        """{name: batch-size-weighted average} of everything updated since the last reset."""
        return {name: self[name] for name in self._sums}

    def __repr__(self):
        return "RunningMetrics(" + ", ".join(f"{k}={v:.4g}" for k, v in self.averages().items()) + ")"
