"""Functional forms of layers and losses: argument checking, then one op.

Every function validates shapes and dtypes at the call site and raises an
error naming the offending shapes, so mistakes surface here rather than deep
inside a kernel.
"""
from __future__ import annotations

import math

import numpy as np

from .. import ops
from ..backend.numpy_backend import conv_output_size
from ..device import xp_of
from ..tensor import Tensor, _check_devices, _check_dtypes, _torch_names, concat, where

__all__ = [
    "relu", "leaky_relu", "prelu", "tanh", "sigmoid", "softmax", "log_softmax", "linear",
    "conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "layer_norm", "dropout",
    "cross_entropy", "nll_loss", "binary_cross_entropy_with_logits", "binary_cross_entropy",
    "mse_loss", "one_hot", "conv_transpose2d", "upsample", "interpolate", "dice_loss", "jaccard_loss",
    "focal_loss", "gelu", "silu", "elu", "softplus", "relu6", "hardtanh", "logsigmoid", "softmin", "normalize",
    "cosine_similarity", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div", "pad",
    "max_pool1d", "avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "conv1d", "mish", "hardswish",
    "hardsigmoid", "selu", "celu", "softsign", "tanhshrink", "threshold", "hardshrink", "softshrink", "glu",
    "scaled_dot_product_attention",
]


def _pair(v, name):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {v}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


# --- activations -------------------------------------------------------------------------
# inplace= is accepted for PyTorch's signatures; the result is always a new tensor
def relu(x: Tensor, inplace: bool = False) -> Tensor:
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return x.leaky_relu(negative_slope)


def prelu(x: Tensor, weight: Tensor) -> Tensor:
    """max(0, x) + weight * min(0, x), weight with 1 element or one per channel (axis 1)."""
    if weight.ndim != 1 or (weight.shape[0] != 1 and (x.ndim < 2 or weight.shape[0] != x.shape[1])):
        raise ValueError(f"prelu: weight of shape {weight.shape} must have 1 element or one per channel "
                         f"of input shape {x.shape}")
    if weight.shape[0] != 1:
        weight = weight.reshape((1, -1) + (1,) * (x.ndim - 2))
    return where(x > 0, x, x * weight)


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) with the exact erf (approximate='none', PyTorch's default) or the tanh approximation."""
    if approximate == "tanh":
        return 0.5 * x * (1 + (math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)).tanh())
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * x * (1 + (x * (1 / math.sqrt(2))).erf())


def silu(x: Tensor, inplace: bool = False) -> Tensor:
    return x * x.sigmoid()


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    # exp of the clamped input: exp(x) of a large unused x would overflow and poison the gradient
    return where(x > 0, x, alpha * (x.clamp(max=0).exp() - 1))


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold, as in PyTorch."""
    bx = x * beta
    return where(bx > threshold, x, bx.clamp(max=threshold).exp().log1p() * (1 / beta))


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clipped to [min_val, max_val]; as in PyTorch the gradient is 0 at the bounds too (clamp's is 1)."""
    return where((x > min_val) & (x < max_val), x, x.clamp(min_val, max_val).detach())


def relu6(x: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(x, 0.0, 6.0)


def logsigmoid(x: Tensor) -> Tensor:
    """log(sigmoid(x)), exact in both tails: x - log(1 + e^x) for x < 0, else -log(1 + e^-x)."""
    return where(x < 0, x - x.clamp(max=0).exp().log1p(), -(-x).clamp(max=0).exp().log1p())


def mish(x: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x)) (Misra 2019), smooth and non-monotonic like silu."""
    return x * softplus(x).tanh()


def hardswish(x: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6, MobileNetV3's cheap silu; piecewise so that the gradient is PyTorch's:
    x / 3 + 1/2 strictly inside (-3, 3), 0 below and 1 from 3 on."""
    return where(x <= -3, 0.0, where(x < 3, x * (x + 3) * (1 / 6), x))


def hardsigmoid(x: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6: a piecewise-linear sigmoid (gradient 1/6 strictly inside (-3, 3), else 0)."""
    return relu6(x + 3) * (1 / 6)


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def selu(x: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with the self-normalising constants of Klambauer et al. (as PyTorch)."""
    return elu(x, _SELU_ALPHA) * _SELU_SCALE


def celu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, else alpha * (exp(x / alpha) - 1): an elu with slope 1 at 0 for any alpha."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (it divides x); use relu for the alpha -> 0 limit")
    return where(x > 0, x, alpha * ((x * (1 / alpha)).clamp(max=0).exp() - 1))


def softsign(x: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return x / (x.abs() + 1)


def tanhshrink(x: Tensor) -> Tensor:
    """x - tanh(x)."""
    return x - x.tanh()


def threshold(x: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value (gradient 0 there), as PyTorch's threshold."""
    return where(x > threshold, x, value)


def _check_lambd(name, lambd):
    if lambd < 0:
        raise ValueError(f"{name}: lambd must be >= 0, got {lambd}")


def hardshrink(x: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0."""
    _check_lambd("hardshrink", lambd)
    return where((x > lambd) | (x < -lambd), x, 0.0)


def softshrink(x: Tensor, lambd: float = 0.5) -> Tensor:
    """x moved lambd towards 0, and 0 where |x| <= lambd (the proximal step of lambd * |x|)."""
    _check_lambd("softshrink", lambd)
    return where(x > lambd, x - lambd, where(x < -lambd, x + lambd, 0.0))


@_torch_names
def glu(x: Tensor, axis: int = -1) -> Tensor:
    """a * sigmoid(b), a and b the two halves of x along `axis` (dim), which must have an even size."""
    if not -x.ndim <= axis < x.ndim or x.shape[axis] % 2:
        raise ValueError(f"glu: dim {axis} of input shape {x.shape} must exist and have an even size (it is halved)")
    a, b = x.chunk(2, axis)
    return a * b.sigmoid()


@_torch_names
def softmin(x: Tensor, axis: int = -1) -> Tensor:
    return (-x).softmax(axis)


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


@_torch_names
def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.softmax(axis)


@_torch_names
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
    """2-D cross-correlation, NCHW input, weight (out_channels, in_channels/groups, kh, kw); padding may
    be an int, a pair, "valid" (none) or "same" (stride 1; output size = input size), as in PyTorch."""
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"conv2d: expected 4-D input (N, C, H, W) and 4-D weight (F, C/groups, KH, KW), "
                         f"got input {x.shape} and weight {weight.shape}")
    _check_dtypes("conv2d", x, weight)
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if isinstance(padding, str):
        x, padding = _string_padding(x, padding, stride, dilation, weight.shape[2:])
    padding = _pair(padding, "padding")
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


def _string_padding(x: Tensor, padding: str, stride, dilation, kernel):
    """(input, padding pair) for padding "valid" or "same": a total of d (k - 1) per axis, split evenly, the
    odd one after (as PyTorch) by padding the input itself, which conv2d's symmetric padding cannot express."""
    if padding not in ("same", "valid"):
        raise ValueError(f"conv2d: padding string must be 'same' or 'valid', got {padding!r}")
    if padding == "valid":
        return x, (0, 0)
    if stride != (1, 1):
        raise ValueError(f"conv2d: padding='same' is only supported with stride 1, got stride {stride}; "
                         "give the padding as numbers instead")
    th, tw = (d * (k - 1) for k, d in zip(kernel, dilation))
    if th % 2 or tw % 2:
        return x.pad((tw // 2, tw - tw // 2, th // 2, th - th // 2)), (0, 0)
    return x, (th // 2, tw // 2)


def conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-D cross-correlation over (N, C, L) or unbatched (C, L) input, weight (out_channels,
    in_channels/groups, k): conv2d on a height of one. padding may be an int, "valid" or "same" (stride 1)."""
    if x.ndim == 2:
        return _unbatched(conv1d, x, weight, bias, stride, padding, dilation, groups)
    if x.ndim != 3 or weight.ndim != 3:
        raise ValueError(f"conv1d: expected input (N, C, L) or (C, L) and 3-D weight (F, C/groups, K), "
                         f"got input {x.shape} and weight {weight.shape}")
    padding = padding if isinstance(padding, str) else (0, _single(padding, "padding"))
    weight = weight.reshape(weight.shape[0], weight.shape[1], 1, weight.shape[2])
    return _from_2d(conv2d(_as_2d(x, "conv1d"), weight, bias, (1, _single(stride, "stride")), padding,
                           (1, _single(dilation, "dilation")), groups))


def conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 2-D convolution (PyTorch's semantics), NCHW input, weight (C_in, C_out/groups, kh, kw).

    Output size per axis: (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1;
    output_padding must be smaller than the stride or the dilation.
    """
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"conv_transpose2d: expected 4-D input (N, C_in, H, W) and 4-D weight "
                         f"(C_in, C_out/groups, KH, KW), got input {x.shape} and weight {weight.shape}")
    _check_dtypes("conv_transpose2d", x, weight)
    stride, padding, dilation = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    output_padding = _pair(output_padding, "output_padding")
    if groups < 1 or weight.shape[0] % groups:
        raise ValueError(f"conv_transpose2d: groups={groups} must divide the input channels {weight.shape[0]} "
                         f"of weight {weight.shape}")
    if x.shape[1] != weight.shape[0]:
        raise ValueError(f"conv_transpose2d: input {x.shape} has {x.shape[1]} channels but weight "
                         f"{weight.shape} expects {weight.shape[0]} (weight is (C_in, C_out/groups, KH, KW))")
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0 or min(output_padding) < 0:
        raise ValueError(f"conv_transpose2d: stride {stride} and dilation {dilation} must be >= 1, padding "
                         f"{padding} and output_padding {output_padding} >= 0")
    if any(op >= max(s, d) for op, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(f"conv_transpose2d: output_padding {output_padding} must be smaller than the stride "
                         f"{stride} or the dilation {dilation} in each dimension")
    c_out = weight.shape[1] * groups
    if bias is not None:
        _check_dtypes("conv_transpose2d bias", x, bias)
        if bias.shape != (c_out,):
            raise ValueError(f"conv_transpose2d: bias shape {bias.shape} must be ({c_out},) for weight "
                             f"{weight.shape} with groups={groups}")
    out = tuple((x.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (weight.shape[2 + i] - 1)
                + output_padding[i] + 1 for i in range(2))
    if min(out) < 1:
        raise ValueError(f"conv_transpose2d: input {x.shape} with kernel {weight.shape[2:]}, stride {stride} "
                         f"and padding {padding} gives an empty output {out}")
    return ops.ConvTranspose2d.apply(x, weight, bias, stride=stride, padding=padding, output_padding=output_padding,
                                     dilation=dilation, groups=groups, out_hw=out)


def _single(v, name):
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"{name} must be an int or a 1-tuple, got {v}")
        v = v[0]
    return int(v)


def _unbatched(fn, x: Tensor, *args):
    """fn on one unbatched sample (C, ...) as a batch of one: the output(s) lose the batch axis again."""
    out = fn(x.reshape((1,) + x.shape), *args)
    return tuple(o.reshape(o.shape[1:]) for o in out) if isinstance(out, tuple) else out.reshape(out.shape[1:])


def _as_2d(x: Tensor, name: str) -> Tensor:
    """(N, C, L) -> (N, C, 1, L): the 1-d functions run the 2-d ones on a height of one."""
    if x.ndim != 3:
        raise ValueError(f"{name}: expected input (N, C, L), got shape {x.shape}")
    return x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])


def _from_2d(out):
    """(N, C, 1, L) output(s) of a 2-d function back to (N, C, L)."""
    if isinstance(out, tuple):
        return tuple(_from_2d(o) for o in out)
    return out.reshape(out.shape[0], out.shape[1], out.shape[3])


def pool_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                     ceil_mode: bool = False) -> int:
    """PyTorch's pooling output size: floor (or ceil) of (size + 2p - d(k-1) - 1) / s, plus one; with
    ceil_mode the last window must start inside the input or the left padding, else it is dropped."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _pool_args(name, x, kernel_size, stride, padding, dilation=1, ceil_mode=False):
    """(kernel, stride, padding, dilation, output size), each a pair, checked as PyTorch checks them."""
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D input (N, C, H, W) or 3-D (C, H, W), got shape {x.shape}")
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    padding, dilation = _pair(padding, "padding"), _pair(dilation, "dilation")
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1:
        raise ValueError(f"{name}: kernel {kernel}, stride {stride} and dilation {dilation} must be >= 1")
    if min(padding) < 0 or any(p > (d * (k - 1) + 1) // 2 for p, k, d in zip(padding, kernel, dilation)):
        raise ValueError(f"{name}: padding {padding} must be between 0 and half the kernel {kernel}")
    out = tuple(pool_output_size(x.shape[2 + i], kernel[i], stride[i], padding[i], dilation[i], ceil_mode)
                for i in range(2))
    if min(out) < 1:
        raise ValueError(f"{name}: input {x.shape} is smaller than the kernel {kernel} with padding {padding} "
                         f"and dilation {dilation} (output would be {out})")
    return kernel, stride, padding, dilation, out


def _ceil_extra(x: Tensor, kernel, stride, padding, out) -> tuple[int, int]:
    """Rows and columns a ceil_mode output needs after the input (beyond the padding) for its last window."""
    return tuple(max(0, (out[i] - 1) * stride[i] + kernel[i] - x.shape[2 + i] - 2 * padding[i]) for i in range(2))


def _max_pool2d_indices(a, kernel, stride, padding, dilation, out):
    """Flat h * W + w input index of each window's maximum in the (N, C, H, W) array `a`: the first in
    row-major window order (the first NaN if any), never a padding cell, as the max_pool2d kernels pick."""
    xp = xp_of(a)
    h, w = a.shape[2:]
    rows0 = xp.arange(out[0])[:, None] * stride[0] - padding[0]
    cols0 = xp.arange(out[1])[None, :] * stride[1] - padding[1]
    best = xp.full(a.shape[:2] + tuple(out), -xp.inf, dtype=a.dtype)
    idx = xp.zeros(best.shape, dtype=np.int64)
    seen = xp.zeros(tuple(out), dtype=bool)
    for i in range(kernel[0]):
        rows = rows0 + i * dilation[0]
        for j in range(kernel[1]):
            cols = cols0 + j * dilation[1]
            real = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
            flat = rows.clip(0, h - 1) * w + cols.clip(0, w - 1)
            v = a[:, :, rows.clip(0, h - 1), cols.clip(0, w - 1)]
            take = real & (~seen | (v > best) | (xp.isnan(v) & ~xp.isnan(best)))
            best, idx, seen = xp.where(take, v, best), xp.where(take, flat, idx), seen | real
    return idx


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max over kernel windows (stride defaults to the kernel); padding counts as -inf. As PyTorch:
    dilation spaces the window's taps, ceil_mode keeps a last partial window, and return_indices also
    returns each maximum's int64 index h * W + w in its (N, C) plane (for max_unpool)."""
    if x.ndim == 3:
        return _unbatched(max_pool2d, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    kernel, stride, padding, dilation, out = _pool_args("max_pool2d", x, kernel_size, stride, padding, dilation,
                                                        ceil_mode)
    if x.dtype.kind in "iub":  # the kernels pad with -inf: pool integers as float64 (exact below 2**53)
        y = max_pool2d(x.double(), kernel, stride, padding, dilation, ceil_mode, return_indices)
        return (y[0].astype(x.dtype), y[1]) if return_indices else y.astype(x.dtype)
    if return_indices or dilation != (1, 1):  # the maxima's indices, then a differentiable gather of them
        n, c, h, w = x.shape
        idx = Tensor._wrap(_max_pool2d_indices(x._data, kernel, stride, padding, dilation, out), x.device)
        y = x.reshape(n, c, h * w).gather(2, idx.reshape(n, c, -1)).reshape(idx.shape)
        return (y, idx) if return_indices else y
    extra_h, extra_w = _ceil_extra(x, kernel, stride, padding, out)
    if extra_h or extra_w:  # ceil_mode: repeat the last row/column, which every window reaching there holds
        x = pad(x, (0, extra_w, 0, extra_h), mode="replicate")
    return ops.MaxPool2d.apply(x, kernel=kernel, stride=stride, padding=padding)


def _avg_divisor(x: Tensor, kernel, stride, padding, out, count_include_pad: bool) -> Tensor:
    """PyTorch's divisor of each window: its cells inside the padded input (count_include_pad) or inside
    the input; the same for every (N, C) plane."""
    counts = []
    for i in range(2):
        start = np.arange(out[i]) * stride[i] - padding[i]
        end = np.minimum(start + kernel[i], x.shape[2 + i] + padding[i])
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, x.shape[2 + i])
        counts.append(end - start)
    return Tensor((counts[0][:, None] * counts[1][None, :]).astype(x.dtype), device=x.device)


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over kernel windows; zero padding is counted in the divisor unless count_include_pad=False.
    As PyTorch: ceil_mode keeps a last partial window (divided by its cells inside the padded input),
    and divisor_override divides every window's sum by that number instead."""
    if x.ndim == 3:
        return _unbatched(avg_pool2d, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                          divisor_override)
    kernel, stride, padding, _, out = _pool_args("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and (isinstance(divisor_override, bool) or
                                         not isinstance(divisor_override, (int, np.integer)) or divisor_override < 1):
        raise ValueError(f"avg_pool2d: divisor_override must be a positive int or None, got {divisor_override!r}")
    extra_h, extra_w = _ceil_extra(x, kernel, stride, padding, out)
    if not (extra_h or extra_w) and divisor_override is None:
        return ops.AvgPool2d.apply(x, kernel=kernel, stride=stride, padding=padding,
                                   count_include_pad=count_include_pad)
    # the kernel's window sums (zeros after the input add nothing), divided by PyTorch's divisor
    sums = ops.AvgPool2d.apply(x.pad((0, extra_w, 0, extra_h)), kernel=kernel, stride=stride, padding=padding,
                               count_include_pad=True) * (kernel[0] * kernel[1])
    if divisor_override is not None:
        return sums * (1 / divisor_override)
    return sums / _avg_divisor(x, kernel, stride, padding, out, count_include_pad)


def max_pool1d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """max_pool2d along the last axis of (N, C, L) input (indices into L)."""
    if x.ndim == 2:
        return _unbatched(max_pool1d, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    stride = None if stride is None else (1, _single(stride, "stride"))
    return _from_2d(max_pool2d(_as_2d(x, "max_pool1d"), (1, _single(kernel_size, "kernel_size")), stride,
                               (0, _single(padding, "padding")), (1, _single(dilation, "dilation")), ceil_mode,
                               return_indices))


def avg_pool1d(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """avg_pool2d along the last axis of (N, C, L) input."""
    if x.ndim == 2:
        return _unbatched(avg_pool1d, x, kernel_size, stride, padding, ceil_mode, count_include_pad)
    stride = None if stride is None else (1, _single(stride, "stride"))
    return _from_2d(avg_pool2d(_as_2d(x, "avg_pool1d"), (1, _single(kernel_size, "kernel_size")), stride,
                               (0, _single(padding, "padding")), ceil_mode, count_include_pad))


def _adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's windows for adaptive pooling: output i covers [floor(i*size/out), ceil((i+1)*size/out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _adaptive_output_size(name, output_size) -> tuple:
    """output_size as a pair of positive ints, None meaning 'keep that input size' (checked as PyTorch)."""
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(sizes) != 2 or not all(s is None or (isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                                and s > 0) for s in sizes):
        raise ValueError(f"{name}: output_size must be a positive int or a pair of positive ints (None keeps "
                         f"that input size), got {output_size!r}")
    return tuple(sizes)


def _adaptive_pool2d(name, pool, x: Tensor, output_size, return_indices=False):
    """Pool (N, C, H, W) or (C, H, W) input to a fixed output size, whatever the input size. When the
    output size divides the input size the windows are a plain pooling grid (one op); otherwise each
    output cell pools its own window (windows may overlap or differ in size)."""
    if x.ndim not in (3, 4):
        raise ValueError(f"{name}: expected input (N, C, H, W) or (C, H, W), got shape {x.shape}")
    sizes = _adaptive_output_size(name, output_size)
    if x.ndim == 3:
        return _unbatched(lambda x4: _adaptive_pool2d(name, pool, x4, sizes, return_indices), x)
    (h, w), extra = x.shape[2:], dict(return_indices=True) if return_indices else {}
    out_h, out_w = (s if s is not None else n for s, n in zip(sizes, (h, w)))
    if h % out_h == 0 and w % out_w == 0:
        return pool(x, (h // out_h, w // out_w), **extra)
    rows, index_rows, xp, windows = [], [], xp_of(x._data), _adaptive_windows(w, out_w)
    for h0, h1 in _adaptive_windows(h, out_h):
        cells = [pool(x[:, :, h0:h1, w0:w1], (h1 - h0, w1 - w0), **extra) for w0, w1 in windows]
        if return_indices:  # each cell's index into its window, made an index into the whole plane
            index_rows.append(xp.concatenate([(i._data // (w1 - w0) + h0) * w + i._data % (w1 - w0) + w0
                                              for (_, i), (w0, w1) in zip(cells, windows)], 3))
            cells = [v for v, _ in cells]
        rows.append(concat(cells, 3))
    if return_indices:
        return concat(rows, 2), Tensor._wrap(xp.concatenate(index_rows, 2), x.device)
    return concat(rows, 2)


def adaptive_avg_pool2d(x: Tensor, output_size) -> Tensor:
    """Mean over PyTorch's adaptive windows to output_size (an int, a pair, None keeping that input
    size); output_size 1 is global average pooling."""
    return _adaptive_pool2d("adaptive_avg_pool2d", avg_pool2d, x, output_size)


def adaptive_max_pool2d(x: Tensor, output_size, return_indices: bool = False):
    """Max over PyTorch's adaptive windows; return_indices also returns the int64 h * W + w indices."""
    return _adaptive_pool2d("adaptive_max_pool2d", max_pool2d, x, output_size, return_indices)


# --- resampling ---------------------------------------------------------------------------------
def upsample(x: Tensor, scale_factor=None, size=None, mode: str = "nearest", align_corners: bool = False) -> Tensor:
    """Resize NCHW input to `size` (int or (H, W)) or by `scale_factor` (float or pair), like PyTorch's
    interpolate: the output is floor(in * scale_factor) and the scale factor itself sets the source
    coordinates. mode "nearest" (PyTorch's index rule, floor(dst / scale)), "nearest-exact" (pixel
    centres, floor((dst + 0.5) / scale)) or "bilinear" (with align_corners False: pixel centres; True:
    corner pixels aligned).
    """
    if x.ndim != 4:
        raise ValueError(f"upsample: expected a 4-D input (N, C, H, W), got shape {x.shape}")
    if mode not in ("nearest", "nearest-exact", "bilinear"):
        raise ValueError(f"upsample: mode must be 'nearest', 'nearest-exact' or 'bilinear', got {mode!r}")
    if mode != "bilinear" and align_corners:
        raise ValueError("upsample: align_corners=True only applies to mode='bilinear'")
    if mode == "bilinear" and x.dtype.kind != "f":
        raise TypeError(f"upsample: bilinear mode needs a float input, got {x.dtype}")
    if (size is None) == (scale_factor is None):
        raise ValueError("upsample: give exactly one of size and scale_factor")
    if size is not None:
        out = _pair(size, "size")
        scales = (None, None)
    else:
        scales = tuple(float(s) for s in (scale_factor if isinstance(scale_factor, (tuple, list))
                                          else (scale_factor, scale_factor)))
        if len(scales) != 2 or min(scales) <= 0:
            raise ValueError(f"upsample: scale_factor must be a positive number or pair, got {scale_factor}")
        out = tuple(int(np.floor(n * s)) for n, s in zip(x.shape[2:], scales))
    if min(out) < 1:
        raise ValueError(f"upsample: input {x.shape} resized to {out} would be empty")
    return ops.Interpolate2d.apply(x, size=out, mode=mode, align_corners=bool(align_corners), scale_factors=scales)


def interpolate(x: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool = False) -> Tensor:
    """PyTorch's name (and argument order) for `upsample`."""
    return upsample(x, scale_factor=scale_factor, size=size, mode=mode, align_corners=align_corners)


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
        if x.numel() // max(c, 1) < 2:
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


def dropout(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Inverted dropout; the identity when not training or p == 0."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    return ops.Dropout.apply(x, p=p)



# --- attention ---------------------------------------------------------------------------
def _attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None, dropout_p: float = 0.0,
               is_causal: bool = False, scale=None, name: str = "scaled_dot_product_attention"):
    """(output, weights) of softmax(Q K^T * scale + mask) V: the one place for attention's arithmetic
    (scaled_dot_product_attention returns the output, MultiheadAttention also the weights)."""
    for arg, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor) or t.ndim < 2:
            raise TypeError(f"{name}: {arg} must be a Tensor of at least 2 dims (..., length, features), "
                            f"got {getattr(t, 'shape', type(t).__name__)}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"{name}: query (..., L, E), key (..., S, E) and value (..., S, Ev) must agree, got "
                         f"{query.shape}, {key.shape}, {value.shape}")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{name}: dropout_p must be in [0, 1], got {dropout_p}")
    length, source = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    scores = (query @ key.transpose(-2, -1)) * scale  # (..., L, S)
    if is_causal:
        if attn_mask is not None:
            raise ValueError(f"{name}: give attn_mask or is_causal=True, not both")
        attn_mask = Tensor(np.tril(np.ones((length, source), dtype=bool)), device=query.device)
    if attn_mask is not None:
        if not isinstance(attn_mask, Tensor):
            attn_mask = Tensor(np.asarray(attn_mask), device=query.device)
        try:
            np.broadcast_shapes(attn_mask.shape, scores.shape)
        except ValueError:
            raise ValueError(f"{name}: attn_mask of shape {attn_mask.shape} does not broadcast to the scores' "
                             f"shape {scores.shape} (..., L, S)") from None
        # bool: True takes part (False is -inf); a float mask is added to the scores
        scores = where(attn_mask, scores, -math.inf) if attn_mask.dtype == bool else scores + attn_mask
    weights = softmax(scores, -1)
    if dropout_p:
        weights = dropout(weights, dropout_p, True)
    return weights @ value, weights


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale=None, enable_gqa: bool = False) -> Tensor:
    """softmax(Q K^T * scale + mask) V, as torch's: query (..., L, E), key (..., S, E), value (..., S, Ev)
    give (..., L, Ev), leading dims broadcast. A bool attn_mask is True where attention takes part, a
    float one is added to the scores; is_causal masks above the diagonal; scale defaults to 1/sqrt(E);
    dropout_p drops attention weights (always, as torch's: pass 0.0 when evaluating)."""
    if enable_gqa:
        raise NotImplementedError("scaled_dot_product_attention: enable_gqa=True (grouped-query attention) is not "
                                  "supported; repeat key and value over the head dim (repeat_interleave) instead")
    return _attention(query, key, value, attn_mask, dropout_p, is_causal, scale)[0]

# --- losses ----------------------------------------------------------------------------
def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_class_targets(name, logits: Tensor, target: Tensor, ignore_index=None):
    if logits.ndim != 2:
        raise ValueError(f"{name}: expected input of shape (N, C), got {logits.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: class-index targets must be integers (int64), got {target.dtype}; "
                        "for probabilities pass a float target of the input's shape to cross_entropy")
    if target.shape != (logits.shape[0],):
        raise ValueError(f"{name}: target shape {target.shape} must be ({logits.shape[0]},) for input {logits.shape}")
    _check_devices(name, logits, target)  # the target goes to the op as an array, unchecked there
    t = target._data
    bad = ((t < 0) | (t >= logits.shape[1])) & (t != ignore_index)
    if bad.any():
        raise IndexError(f"{name}: target class {t[bad][0]} is out of range for {logits.shape[1]} classes "
                         f"(and is not ignore_index={ignore_index})")


def _check_weight(name, logits: Tensor, weight):
    c = logits.shape[1] if logits.ndim >= 2 else logits.shape[0]
    if not isinstance(weight, Tensor) or weight.shape != (c,):
        raise ValueError(f"{name}: weight must be a Tensor of shape ({c},), one per class, got "
                         f"{getattr(weight, 'shape', type(weight).__name__)}")
    _check_dtypes(f"{name} weight", logits, weight)


def _spatial(name, fn, logits: Tensor, target: Tensor, reduction, **kwargs):
    """(N, C, d1, ...) input with (N, d1, ...) class indices: every position is a sample (classes moved last)."""
    if target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f"{name}: class-index target shape {target.shape} must be "
                         f"{logits.shape[:1] + logits.shape[2:]} for input {logits.shape}")
    flat = logits.permute(0, *range(2, logits.ndim), 1).reshape(-1, logits.shape[1])
    loss = fn(flat, target.reshape(-1), reduction=reduction, **kwargs)
    return loss.reshape(target.shape) if reduction == "none" else loss


def _class_nll(logp: Tensor, target: Tensor, weight, ignore_index, reduction, smoothing=0.0) -> Tensor:
    """-weight[t] * logp[t] per sample, 0 where t == ignore_index; 'mean' divides by the weights taken.

    With label smoothing e, PyTorch's (1 - e) * that + e / C * -(sum over classes of weight * logp).
    """
    n, c = logp.shape
    xp = xp_of(logp._data)
    t = target._data
    keep = t != ignore_index
    safe = xp.where(keep, t, 0)
    class_w = weight._data if weight is not None else xp.ones(c, dtype=logp.dtype)
    w = (class_w[safe] * keep).astype(logp.dtype)
    loss = -logp[xp.arange(n), safe] * Tensor._wrap(w, logp.device)
    if smoothing:
        kept = Tensor._wrap(keep.astype(logp.dtype), logp.device)
        smooth = -(logp * Tensor._wrap(class_w, logp.device)).sum(axis=1) * kept
        loss = loss * (1 - smoothing) + smooth * (smoothing / c)
    if reduction == "mean":
        return loss.sum() / Tensor._wrap(xp.asarray(w.sum()), logp.device)
    return _reduce(loss, reduction)


def _tensors(op: str, **arguments) -> None:
    """The losses take Tensors, as PyTorch's do: a NumPy array or list is refused naming the fix (it used to
    fail deep inside with an unrelated message, or was converted with whatever dtype it had)."""
    for name, value in arguments.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(value).__name__}; wrap it with "
                            "tinygrad_course.tensor(...) (DataLoader's batches are Tensors already)")


def nll_loss(log_probs: Tensor, target: Tensor, reduction: str = "mean", *, weight: Tensor | None = None,
             ignore_index: int = -100) -> Tensor:
    """Negative log-likelihood of class indices under (N, C) or (N, C, d1, ...) log-probabilities.

    As in PyTorch: `weight` (C,) scales each class and 'mean' divides by the weights taken; targets
    equal to `ignore_index` add nothing.
    """
    _tensors("nll_loss", input=log_probs, target=target)
    if log_probs.ndim > 2:
        return _spatial("nll_loss", nll_loss, log_probs, target, reduction, weight=weight, ignore_index=ignore_index)
    _check_class_targets("nll_loss", log_probs, target, ignore_index)
    if weight is not None:
        _check_weight("nll_loss", log_probs, weight)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return _class_nll(log_probs, target, weight, ignore_index, reduction)


def cross_entropy(logits: Tensor, target: Tensor, label_smoothing: float = 0.0, reduction: str = "mean", *,
                  weight: Tensor | None = None, ignore_index: int = -100) -> Tensor:
    """Softmax cross-entropy over the classes on axis 1 of (N, C) or (N, C, d1, ...) logits, as in PyTorch.

    The target holds int64 class indices, (N,) or (N, d1, ...), or float probabilities of the
    input's shape. With label smoothing e the target is (1 - e) * one_hot + e / C, as in PyTorch;
    `weight` (C,) and `ignore_index` as in `nll_loss`.
    """
    _tensors("cross_entropy", input=logits, target=target)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    if weight is not None:
        _check_weight("cross_entropy", logits, weight)
    if target.dtype.kind == "f":
        classes = 1 if logits.ndim >= 2 else 0  # a single (C,) sample has its classes on axis 0
        logp = logits.log_softmax(axis=classes)
        if target.shape != logits.shape:
            raise ValueError(f"cross_entropy: probability target shape {target.shape} must equal input {logits.shape}")
        _check_dtypes("cross_entropy", logits, target)
        if label_smoothing:
            target = target * (1 - label_smoothing) + label_smoothing / logits.shape[classes]
        if weight is not None:
            logp = logp * weight.reshape((-1,) + (1,) * (logits.ndim - 1 - classes))
        return _reduce(-(target * logp).sum(axis=classes), reduction)
    if logits.ndim > 2:
        return _spatial("cross_entropy", cross_entropy, logits, target, reduction, label_smoothing=label_smoothing,
                        weight=weight, ignore_index=ignore_index)
    _check_class_targets("cross_entropy", logits, target, ignore_index)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if weight is not None or (target._data == ignore_index).any():
        return _class_nll(logits.log_softmax(axis=1), target, weight, ignore_index, reduction, float(label_smoothing))
    return ops.CrossEntropy.apply(logits, target._data, label_smoothing=float(label_smoothing), reduction=reduction)


def _bce_args(name, x: Tensor, target: Tensor, **optional) -> None:
    """Input and target Tensors of one shape and dtype; weight / pos_weight Tensors that broadcast to it."""
    _tensors(name, input=x, target=target)
    if x.shape != target.shape:
        raise ValueError(f"{name}: input {x.shape} and target {target.shape} differ")
    _check_dtypes(name, x, target)
    for arg, t in optional.items():
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: {arg} must be a Tensor or None, got {type(t).__name__}"
                            + ("; pass reduction= by keyword (the third argument is weight, as in PyTorch)"
                               if isinstance(t, str) else ""))
        try:
            fits = np.broadcast_shapes(t.shape, x.shape) == x.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"{name}: {arg} of shape {t.shape} must broadcast to the input shape {x.shape}")
        _check_dtypes(f"{name} {arg}", x, t)


def binary_cross_entropy_with_logits(logits: Tensor, target: Tensor, weight: Tensor | None = None,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """-w [p y log s(x) + (1 - y) log(1 - s(x))] computed stably from logits x (finite for |x| = 100), as
    PyTorch: `weight` w rescales each element and `pos_weight` p (e.g. one per class, broadcast over the
    last dim) weighs the positive term, p > 1 favouring recall."""
    _bce_args("binary_cross_entropy_with_logits", logits, target, weight=weight, pos_weight=pos_weight)
    if pos_weight is None:
        loss = ops.BCEWithLogits.apply(logits, target)
    else:  # (1 - y) x + (1 + (p - 1) y) softplus(-x), with softplus(-x) = -logsigmoid(x) finite in both tails
        loss = (1 - target) * logits - (1 + (pos_weight - 1) * target) * logsigmoid(logits)
    return _reduce(loss if weight is None else loss * weight, reduction)


def binary_cross_entropy(probs: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """-w [y log p + (1 - y) log(1 - p)] with the logs clamped at -100, as PyTorch does; `weight` w
    rescales each element (it broadcasts to the input)."""
    _bce_args("binary_cross_entropy", probs, target, weight=weight)
    loss = ops.BinaryCrossEntropy.apply(probs, target)
    return _reduce(loss if weight is None else loss * weight, reduction)


def _pointwise_loss(name, pred: Tensor, target: Tensor) -> Tensor:
    _tensors(name, input=pred, target=target)
    if pred.shape != target.shape:
        raise ValueError(f"{name}: input {pred.shape} and target {target.shape} differ")
    return pred - target


def l1_loss(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    return _reduce(_pointwise_loss("l1_loss", pred, target).abs(), reduction)


def smooth_l1_loss(pred: Tensor, target: Tensor, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (PyTorch's; beta=0 is l1_loss)."""
    d = _pointwise_loss("smooth_l1_loss", pred, target).abs()
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(where(d < beta, 0.5 * d * d * (1 / beta), d - 0.5 * beta), reduction)


def huber_loss(pred: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta): smooth_l1_loss scaled by delta."""
    d = _pointwise_loss("huber_loss", pred, target).abs()
    return _reduce(where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta)), reduction)


def kl_div(log_pred: Tensor, target: Tensor, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """target * (log(target) - log_pred) pointwise (0 where target is 0), as PyTorch's kl_div: the input
    holds log-probabilities. reduction 'batchmean' (the true KL divergence) divides the sum by the batch size."""
    _tensors("kl_div", input=log_pred, target=target)
    if log_pred.shape != target.shape:
        raise ValueError(f"kl_div: input {log_pred.shape} and target {target.shape} differ")
    if log_target:
        loss = target.exp() * (target - log_pred)
    else:  # log of the clamped target: log(0) in the unused branch would give a NaN gradient
        tiny = float(np.finfo(target.dtype).tiny) if target.dtype.kind == "f" else 1e-38
        loss = where(target > 0, target * target.clamp(min=tiny).log(), 0) - target * log_pred
    if reduction == "batchmean":
        return loss.sum() * (1.0 / (log_pred.shape[0] if log_pred.ndim else 1))
    return _reduce(loss, reduction)


@_torch_names
def normalize(x: Tensor, p: float = 2.0, axis: int = 1, eps: float = 1e-12) -> Tensor:
    """x divided by its p-norm along `axis` (dim), at least eps, as PyTorch's normalize."""
    return x / x.norm(p, axis, keepdims=True).clamp(min=eps)


@_torch_names
def cosine_similarity(x1: Tensor, x2: Tensor, axis: int = 1, eps: float = 1e-8) -> Tensor:
    """x1 . x2 / (max(|x1|, eps) max(|x2|, eps)) along `axis` (dim), as PyTorch."""
    return (normalize(x1, 2, axis, eps) * normalize(x2, 2, axis, eps)).sum(axis)


def pad(x: Tensor, pad, mode: str = "constant", value=None) -> Tensor:
    """PyTorch's F.pad: `pad` is (left, right) of the last dim, then of the one before, ...; mode
    "constant" (with `value`, default 0), "reflect" (mirrored, edge not repeated), "replicate" (edge
    repeated) or "circular" (wrapped). All are differentiable."""
    if mode == "constant":
        return x.pad(pad, 0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim or any(p < 0 for p in pad):
        raise ValueError(f"pad: {pad} must be non-negative (before, after) pairs for at most {x.ndim} dims "
                         f"of shape {x.shape}")
    out = x
    for i in range(len(pad) // 2):  # one gather of source indices per padded dim
        d, (lo, hi) = x.ndim - 1 - i, pad[2 * i:2 * i + 2]
        n = x.shape[d]
        src = np.arange(-lo, n + hi)
        if mode == "replicate":
            src = np.clip(src, 0, n - 1)
        elif mode == "circular":
            if max(lo, hi) > n:
                raise ValueError(f"pad: circular padding {(lo, hi)} is larger than dim {d} of size {n}")
            src = src % n
        else:
            if max(lo, hi) >= n:
                raise ValueError(f"pad: reflect padding {(lo, hi)} must be smaller than dim {d} of size {n}")
            period = 2 * (n - 1)
            src = np.abs(src) % period if period else np.zeros_like(src)
            src = np.where(src >= n, period - src, src)
        out = out[(slice(None),) * d + (src,)]
    return out


def mse_loss(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    _tensors("mse_loss", input=pred, target=target)
    if pred.shape != target.shape:
        raise ValueError(f"mse_loss: input {pred.shape} and target {target.shape} differ")
    diff = pred - target
    return _reduce(diff * diff, reduction)


def _binary_target(name, logits: Tensor, target) -> Tensor:
    """The target as a float tensor of the logits' dtype and shape (bool/int masks are converted)."""
    if not isinstance(target, Tensor):  # a list, NumPy or CuPy mask on the logits' device; a copy, as losses save it
        target = Tensor(target, dtype=logits.dtype, device=logits.device).clone()
    elif target.dtype != logits.dtype:
        if target.dtype.kind == "f":
            _check_dtypes(name, logits, target)
        target = Tensor(target._data.astype(logits.dtype), device=target.device)
    if target.shape != logits.shape:
        raise ValueError(f"{name}: input {logits.shape} and target {target.shape} differ")
    return target


def _overlap_terms(name, logits: Tensor, target, smooth: float):
    """Per sample (sums over the non-batch axes): intersection sum(p t) and sum(p) + sum(t), p = sigmoid."""
    if logits.ndim < 1:
        raise ValueError(f"{name}: expected logits (N, ...) with a batch axis, got shape {logits.shape}")
    if smooth < 0:
        raise ValueError(f"{name}: smooth must be >= 0, got {smooth}")
    target = _binary_target(name, logits, target)
    n = logits.shape[0]
    p, t = logits.sigmoid().reshape(n, -1), target.reshape(n, -1)
    return (p * t).sum(axis=1), p.sum(axis=1) + t.sum(axis=1)


def dice_loss(logits: Tensor, target, smooth: float = 1.0, reduction: str = "mean") -> Tensor:
    """Soft Dice loss from per-pixel logits: 1 - (2 sum(p t) + smooth) / (sum(p) + sum(t) + smooth).

    p = sigmoid(logits); the sums run over each sample's non-batch axes, then `reduction` averages
    or sums the per-sample losses. The target is a binary or soft mask of the logits' shape.
    With smooth > 0 an empty prediction of an empty mask has loss 0 (with smooth = 0 it is 0/0).
    """
    inter, total = _overlap_terms("dice_loss", logits, target, smooth)
    return _reduce(1.0 - (2.0 * inter + smooth) / (total + smooth), reduction)


def jaccard_loss(logits: Tensor, target, smooth: float = 1.0, reduction: str = "mean") -> Tensor:
    """Soft Jaccard (IoU) loss from per-pixel logits: 1 - (sum(p t) + smooth) / (sum(p) + sum(t) - sum(p t) + smooth).

    Per sample over its non-batch axes, p = sigmoid(logits), then reduced as in `dice_loss`.
    """
    inter, total = _overlap_terms("jaccard_loss", logits, target, smooth)
    return _reduce(1.0 - (inter + smooth) / (total - inter + smooth), reduction)


def focal_loss(logits: Tensor, target, alpha: float | None = 0.25, gamma: float = 2.0,
               reduction: str = "mean") -> Tensor:
    """Binary focal loss on logits (torchvision's sigmoid_focal_loss): alpha_t (1 - p_t)^gamma BCE(logits, t).

    p_t = p t + (1 - p)(1 - t), alpha_t = alpha t + (1 - alpha)(1 - t); alpha=None (or < 0) disables
    the class weighting. 'mean' averages over all elements. Finite for logits of +-100.
    """
    target = _binary_target("focal_loss", logits, target)
    if gamma < 0:
        raise ValueError(f"focal_loss: gamma must be >= 0, got {gamma}")
    if alpha is not None and alpha < 0:
        alpha = None
    elif alpha is not None and alpha > 1:
        raise ValueError(f"focal_loss: alpha must be in [0, 1] (or None / negative to disable), got {alpha}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return _reduce(ops.SigmoidFocalLoss.apply(logits, target, alpha=None if alpha is None else float(alpha),
                                              gamma=float(gamma)), reduction)


def one_hot(labels: Tensor, num_classes: int = -1, dtype=None) -> Tensor:
    """(...) int labels -> (..., num_classes) one-hot rows, int64 as in PyTorch unless `dtype` is given
    (not differentiable); num_classes=-1 takes the largest label + 1."""
    idx, device = (labels._data, labels.device) if isinstance(labels, Tensor) else (np.asarray(labels), "cpu")
    if num_classes == -1:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise IndexError(f"one_hot: labels must be in [0, {num_classes}), got range [{idx.min()}, {idx.max()}]")
    # a comparison with arange, so that it runs on the labels' array module (numpy or cupy)
    xp = xp_of(idx)
    out = (idx[..., None].astype(np.int64) == xp.arange(num_classes)).astype(dtype or np.int64)
    return Tensor(out, device=device)
