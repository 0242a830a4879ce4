"""Seeded generators for the 2-D toy classification sets of the course.

Each returns (X, y): X float32 of shape (n, 2), y int64 class labels of shape (n,).
"""
from __future__ import annotations

import numpy as np

__all__ = ["make_circles", "make_xor", "make_gaussians", "make_spirals", "train_test_split", "TOY_DATASETS"]


def _finish(x, y, noise, rng):
    if noise:
        x = x + rng.normal(scale=noise, size=x.shape)
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order].astype(np.int64)


def make_circles(n_samples: int = 1000, noise: float = 0.1, factor: float = 0.5, seed: int = 0):
    """Two concentric circles (like scikit-learn's make_circles): label 0 outer (radius 1), 1 inner (radius factor)."""
    if not 0 < factor < 1:
        raise ValueError(f"factor must be in (0, 1), got {factor}")
    rng = np.random.default_rng(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    x = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], 1),
                        factor * np.stack([np.cos(t_in), np.sin(t_in)], 1)])
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    return _finish(x, y, noise, rng)


def make_xor(n_samples: int = 1000, noise: float = 0.1, seed: int = 0):
    """Points uniform in [-1, 1]^2 labelled by the sign of x0 * x1 (label 1 where they agree)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n_samples, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    return _finish(x, y, noise, rng)


def make_gaussians(n_samples: int = 1000, noise: float = 0.5, distance: float = 2.0, seed: int = 0):
    """Two isotropic Gaussian blobs with std `noise`, centres +-distance/2 on the diagonal."""
    rng = np.random.default_rng(seed)
    n0 = n_samples // 2
    centres = np.where(np.arange(n_samples)[:, None] < n0, -distance / 2, distance / 2) * np.ones((1, 2))
    y = (np.arange(n_samples) >= n0).astype(np.int64)
    return _finish(centres, y, noise, rng)


def make_spirals(n_samples: int = 1000, noise: float = 0.05, turns: float = 1.5, seed: int = 0):
    """Two interleaved spirals (the second is the first rotated by pi)."""
    rng = np.random.default_rng(seed)
    n0 = n_samples // 2
    counts = (n0, n_samples - n0)
    parts, labels = [], []
    for label, n in enumerate(counts):
        r = np.linspace(0.05, 1, n)
        t = 2 * np.pi * turns * r + label * np.pi
        parts.append(np.stack([r * np.cos(t), r * np.sin(t)], 1))
        labels.append(np.full(n, label))
    return _finish(np.concatenate(parts), np.concatenate(labels), noise, rng)


TOY_DATASETS = {"circles": make_circles, "xor": make_xor, "gaussians": make_gaussians, "spirals": make_spirals}


def train_test_split(x, y, test_size: float = 0.2, seed: int = 0):
    """Seeded shuffle then split: returns x_train, x_test, y_train, y_test."""
    if len(x) != len(y):
        raise ValueError(f"x and y have different lengths ({len(x)} and {len(y)})")
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_size))
    test, train = order[:n_test], order[n_test:]
    return x[train], x[test], y[train], y[test]
