"""Plots for training runs (needs the `plot` extra: matplotlib). Files are written as PNG."""
from __future__ import annotations

import os

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("plots need matplotlib: pip install 'tinygrad_course[plot]'") from e
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


def _save(fig, plt, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
