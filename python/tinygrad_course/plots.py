"""Plots for training runs (needs the `plot` extra: matplotlib). Files are written as PNG."""
from __future__ import annotations

import os
import sys

import numpy as np


class PlotsUnavailable(ImportError):
    """matplotlib is not installed."""


def optional(draw) -> list[str]:
    """`draw()` (which plots and returns the paths written), or [] and a one-line notice without
    matplotlib: plots are an extra, and a missing extra never fails a finished run."""
    try:
        return list(draw())
    except PlotsUnavailable as e:
        print(f"plots skipped: {e}", file=sys.stderr)
        return []


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:
        raise PlotsUnavailable("plots need matplotlib: pip install 'tinygrad_course[plot]'") from e
    matplotlib.use("Agg")  # files only, no screen needed
    import matplotlib.pyplot as plt
    return plt


def plot_curves(histories: dict, path: str, title: str = "") -> str:
    """Loss and accuracy per epoch; `histories` maps a label to a dict with
    'train_loss' and optionally 'train_acc'/'test_acc' lists."""
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for label, h in histories.items():
        epochs = np.arange(1, len(h["train_loss"]) + 1)
        ax_loss.plot(epochs, h["train_loss"], label=label)
        for key, style in (("train_acc", "-"), ("test_acc", "--")):
            if h.get(key):
                ax_acc.plot(epochs, h[key], style, label=f"{label} {key.split('_')[0]}")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, plt, path)


def plot_decision_boundary(predict, x: np.ndarray, y: np.ndarray, path: str, title: str = "",
                           resolution: int = 300) -> str:
    """Colour the plane by the predicted class of `predict(points) -> logits`, with the data on top."""
    plt = _pyplot()
    pad = 0.25
    (x0, y0), (x1, y1) = x.min(axis=0) - pad, x.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(x.dtype)
    classes = np.asarray(predict(grid)).argmax(axis=1).reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.contourf(gx, gy, classes, alpha=0.3, cmap="coolwarm")
    ax.scatter(x[:, 0], x[:, 1], c=y, s=10, cmap="coolwarm", edgecolors="k", linewidths=0.2)
    ax.set(title=title, xlabel="x0", ylabel="x1", aspect="equal")
    return _save(fig, plt, path)


METRIC_NAMES = ("loss", "top1", "top5", "pixel_acc", "iou", "dice")


def _split_metric(key: str):
    """A Trainer history key into (split, metric): "test_exact_top1" -> ("test_exact", "top1")."""
    for metric in METRIC_NAMES:
        if key.endswith("_" + metric):
            return key[:-len(metric) - 1], metric
    return None, None


def plot_history(history: list, path: str, title: str = "") -> str:
    """One panel per metric (loss, top1, ...) with a line per split, from Trainer history rows
    (keys "<split>_<metric>", e.g. "train_loss", "test_top1")."""
    plt = _pyplot()
    keys = [k for k in history[0] if _split_metric(k)[0]] if history else []
    metrics = list(dict.fromkeys(_split_metric(k)[1] for k in keys))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    epochs = [row["epoch"] for row in history]
    for ax, metric in zip(axes[0], metrics):
        for key in keys:
            split, name = _split_metric(key)
            if name == metric:
                ax.plot(epochs, [row.get(key, np.nan) for row in history], "-" if split == "train" else "--",
                        label=split)
        ax.set(xlabel="epoch", title=metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, plt, path)


def plot_confusion(matrix: np.ndarray, path: str, class_names=None, title: str = "") -> str:
    """Confusion matrix (rows: true class, columns: predicted), counts written in the cells."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * k, 0.8 + 0.55 * k))
    ax.imshow(matrix, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return _save(fig, plt, path)


def plot_segmentation(images: np.ndarray, masks: np.ndarray, predictions: np.ndarray, path: str,
                      title: str = "") -> str:
    """Rows of (image, true mask, predicted mask over the image) for images (N, 3, H, W) in [0, 1]
    and masks / predictions (N, H, W) in {0, 1}."""
    plt = _pyplot()
    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(9, 2.6 * n), squeeze=False)
    for row, (img, mask, pred) in enumerate(zip(images, masks, predictions)):
        rgb = np.clip(np.transpose(img, (1, 2, 0)), 0, 1)
        overlay = rgb.copy()
        overlay[pred > 0] = 0.5 * overlay[pred > 0] + 0.5 * np.array([1.0, 0.2, 0.2])
        for ax, picture, name in zip(axes[row], (rgb, mask, overlay), ("image", "sky mask", "prediction")):
            ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
            ax.set_title(name, fontsize=8)
            ax.axis("off")
    fig.suptitle(title)
    return _save(fig, plt, path)


def _save(fig, plt, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
