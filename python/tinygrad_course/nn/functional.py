"""Functional forms of layers and losses: argument checking, then one op.

Every function validates shapes and dtypes at the call site and raises an
error naming the offending shapes, so mistakes surface here rather than deep
inside a kernel.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..backend.numpy_backend import conv_output_size
from ..tensor import Tensor, _check_dtypes, where

__all__ = [
    "relu", "leaky_relu", "prelu", "tanh", "sigmoid", "softmax", "log_softmax", "linear",
    "conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "layer_norm", "dropout",
    "cross_entropy", "nll_loss", "binary_cross_entropy_with_logits", "binary_cross_entropy",
    "mse_loss", "one_hot",
]


def _pair(v, name):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {v}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


# --- activations -------------------------------------------------------------------------
def relu(x: Tensor) -> Tensor:
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return x.leaky_relu(negative_slope)


def prelu(x: Tensor, weight: Tensor) -> Tensor:
    """max(0, x) + weight * min(0, x), weight with 1 element or one per channel (axis 1)."""
    if weight.ndim != 1 or (weight.shape[0] != 1 and (x.ndim < 2 or weight.shape[0] != x.shape[1])):
        raise ValueError(f"prelu: weight of shape {weight.shape} must have 1 element or one per channel "
                         f"of input shape {x.shape}")
    if weight.shape[0] != 1:
        weight = weight.reshape((1, -1) + (1,) * (x.ndim - 2))
    return where(x.data > 0, x, x * weight)


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.softmax(axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.log_softmax(axis)


# --- linear and convolution ---------------------------------------------------------------
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias with weight of shape (out_features, in_features), as in PyTorch."""
    if x.ndim < 1 or weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} does not match weight of shape {weight.shape} "
                         "(expected input (..., in_features) and weight (out_features, in_features))")
    _check_dtypes("linear", x, weight)
    if bias is not None:
        _check_dtypes("linear bias", x, bias)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"linear: bias shape {bias.shape} must be ({weight.shape[0]},)")
    return ops.Linear.apply(x, weight, bias)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-D cross-correlation, NCHW input, weight (out_channels, in_channels/groups, kh, kw)."""
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"conv2d: expected 4-D input (N, C, H, W) and 4-D weight (F, C/groups, KH, KW), "
                         f"got input {x.shape} and weight {weight.shape}")
    _check_dtypes("conv2d", x, weight)
    stride, padding, dilation = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    if groups < 1 or x.shape[1] % groups or weight.shape[0] % groups:
        raise ValueError(f"conv2d: groups={groups} must divide the input channels {x.shape[1]} and the "
                         f"output channels {weight.shape[0]}")
    if x.shape[1] != weight.shape[1] * groups:
        raise ValueError(f"conv2d: input {x.shape} has {x.shape[1]} channels but weight {weight.shape} with "
                         f"groups={groups} expects {weight.shape[1] * groups}")
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise ValueError(f"conv2d: stride {stride} and dilation {dilation} must be >= 1, padding {padding} >= 0")
    if bias is not None:
        _check_dtypes("conv2d bias", x, bias)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"conv2d: bias shape {bias.shape} must be ({weight.shape[0]},)")
    out = [conv_output_size(x.shape[2 + i], weight.shape[2 + i], stride[i], padding[i], dilation[i]) for i in range(2)]
    if min(out) < 1:
        raise ValueError(f"conv2d: input {x.shape} is too small for kernel {weight.shape[2:]} with padding "
                         f"{padding} and dilation {dilation} (output would be {tuple(out)})")
    return ops.Conv2d.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)


def _pool_args(name, x, kernel_size, stride, padding):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D input (N, C, H, W), got shape {x.shape}")
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    padding = _pair(padding, "padding")
    if min(kernel) < 1 or min(stride) < 1:
        raise ValueError(f"{name}: kernel {kernel} and stride {stride} must be >= 1")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2 or min(padding) < 0:
        raise ValueError(f"{name}: padding {padding} must be between 0 and half the kernel {kernel}")
    out = [conv_output_size(x.shape[2 + i], kernel[i], stride[i], padding[i]) for i in range(2)]
    if min(out) < 1:
        raise ValueError(f"{name}: input {x.shape} is smaller than the kernel {kernel} with padding {padding}")
    return kernel, stride, padding


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    """Max over kernel windows (stride defaults to the kernel); padding counts as -inf."""
    kernel, stride, padding = _pool_args("max_pool2d", x, kernel_size, stride, padding)
    return ops.MaxPool2d.apply(x, kernel=kernel, stride=stride, padding=padding)


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0, count_include_pad: bool = True) -> Tensor:
    """Mean over kernel windows; zero padding is counted in the divisor unless count_include_pad=False."""
    kernel, stride, padding = _pool_args("avg_pool2d", x, kernel_size, stride, padding)
    return ops.AvgPool2d.apply(x, kernel=kernel, stride=stride, padding=padding,
                               count_include_pad=count_include_pad)


# --- normalisation and dropout ----------------------------------------------------------
def batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Normalise each channel (axis 1) of a (N, C) or (N, C, ...) input.

    training=True uses the batch statistics and updates the running ones in place
    (running = (1 - momentum) * running + momentum * batch, unbiased variance);
    training=False uses the running statistics.
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected an input (N, C) or (N, C, ...), got shape {x.shape}")
    c = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (c,):
            raise ValueError(f"batch_norm: {name} has shape {t.shape}, expected ({c},) for input {x.shape}")
        if t is not None:
            _check_dtypes(f"batch_norm {name}", x, t)
    if training:
        if x.size // max(c, 1) < 2:
            raise ValueError(f"batch_norm: training needs more than one value per channel, input has shape {x.shape}")
    elif running_mean is None or running_var is None:
        raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
    return ops.BatchNorm.apply(x, weight, bias, running_mean, running_var, training=training,
                               momentum=momentum, eps=eps)


def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing `normalized_shape` axes of x."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if x.shape[x.ndim - len(shape):] != shape or len(shape) > x.ndim:
        raise ValueError(f"layer_norm: normalized_shape {shape} does not match the end of input shape {x.shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != shape:
            raise ValueError(f"layer_norm: {name} has shape {t.shape}, expected {shape}")
    return ops.LayerNorm.apply(x, weight, bias, ndim=len(shape), eps=eps)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout; the identity when not training or p == 0."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    return ops.Dropout.apply(x, p=p)


# --- losses ----------------------------------------------------------------------------
def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_class_targets(name, logits: Tensor, target: Tensor):
    if logits.ndim != 2:
        raise ValueError(f"{name}: expected input of shape (N, C), got {logits.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: class-index targets must be integers (int64), got {target.dtype}; "
                        "for probabilities pass a float target of the input's shape to cross_entropy")
    if target.shape != (logits.shape[0],):
        raise ValueError(f"{name}: target shape {target.shape} must be ({logits.shape[0]},) for input {logits.shape}")
    if target.size and (target.data.min() < 0 or target.data.max() >= logits.shape[1]):
        bad = target.data[(target.data < 0) | (target.data >= logits.shape[1])][0]
        raise IndexError(f"{name}: target class {bad} is out of range for {logits.shape[1]} classes")


def nll_loss(log_probs: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices under (N, C) log-probabilities."""
    _check_class_targets("nll_loss", log_probs, target)
    picked = log_probs[np.arange(log_probs.shape[0]), target.data]
    return _reduce(-picked, reduction)


def cross_entropy(logits: Tensor, target: Tensor, label_smoothing: float = 0.0, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy from (N, C) logits and int64 class indices (or float probabilities).

    With label smoothing e the target is (1 - e) * one_hot + e / C, as in PyTorch.
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    if target.dtype.kind == "f":
        logp = logits.log_softmax(axis=-1)
        if target.shape != logits.shape:
            raise ValueError(f"cross_entropy: probability target shape {target.shape} must equal input {logits.shape}")
        _check_dtypes("cross_entropy", logits, target)
        if label_smoothing:
            target = target * (1 - label_smoothing) + label_smoothing / logits.shape[-1]
        return _reduce(-(target * logp).sum(axis=-1), reduction)
    _check_class_targets("cross_entropy", logits, target)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return ops.CrossEntropy.apply(logits, target.data, label_smoothing=float(label_smoothing), reduction=reduction)


def binary_cross_entropy_with_logits(logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """-[y log s(x) + (1 - y) log(1 - s(x))] computed stably from logits x (finite for |x| = 100)."""
    if logits.shape != target.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: input {logits.shape} and target {target.shape} differ")
    _check_dtypes("binary_cross_entropy_with_logits", logits, target)
    return _reduce(ops.BCEWithLogits.apply(logits, target), reduction)


def binary_cross_entropy(probs: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """-[y log p + (1 - y) log(1 - p)] with the logs clamped at -100, as PyTorch does."""
    if probs.shape != target.shape:
        raise ValueError(f"binary_cross_entropy: input {probs.shape} and target {target.shape} differ")
    _check_dtypes("binary_cross_entropy", probs, target)
    return _reduce(ops.BinaryCrossEntropy.apply(probs, target), reduction)


def mse_loss(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    if pred.shape != target.shape:
        raise ValueError(f"mse_loss: input {pred.shape} and target {target.shape} differ")
    diff = pred - target
    return _reduce(diff * diff, reduction)


def one_hot(labels: Tensor, num_classes: int, dtype=None) -> Tensor:
    """(N,) int labels -> (N, num_classes) float one-hot rows (not differentiable)."""
    idx = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise IndexError(f"one_hot: labels must be in [0, {num_classes}), got range [{idx.min()}, {idx.max()}]")
    out = np.zeros(idx.shape + (num_classes,), dtype=dtype or np.float32)
    np.put_along_axis(out, idx[..., None].astype(np.int64), 1, axis=-1)
    return Tensor(out)
