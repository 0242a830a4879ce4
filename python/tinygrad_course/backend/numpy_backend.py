"""The NumPy reference backend: the heavy primitives written to be read.

Every other backend (native C++, CUDA) must produce the same results as this
one; the equivalence tests use it as the oracle. Layout is NCHW throughout.
Arguments are plain NumPy arrays; `stride`, `padding`, `dilation` and
`kernel_size` arrive as (height, width) pairs, already validated by
`nn.functional`. Nothing here records autograd: the Functions in `ops.py` call
these forward and backward pieces explicitly.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """floor((size + 2p - d(k-1) - 1) / s) + 1, the usual convolution/pooling formula."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _pad_hw(x, padding, value=0.0):
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _windows(xp, kernel, stride, dilation):
    """View of a padded (N, C, H, W) array as (N, C, OH, OW, KH, KW) sliding windows (no copy)."""
    n, c, h, w = xp.shape
    kh, kw = kernel
    sh, sw = stride
    dh, dw = dilation
    oh = (h - dh * (kh - 1) - 1) // sh + 1
    ow = (w - dw * (kw - 1) - 1) // sw + 1
    s_n, s_c, s_h, s_w = xp.strides
    return as_strided(xp, shape=(n, c, oh, ow, kh, kw),
                      strides=(s_n, s_c, s_h * sh, s_w * sw, s_h * dh, s_w * dw), writeable=False)


def _col2im(cols, padded_shape, stride, dilation):
    """Adjoint of `_windows`: scatter-add (N, C, OH, OW, KH, KW) window values into a padded image."""
    out = np.zeros(padded_shape, dtype=cols.dtype)
    _, _, oh, ow, kh, kw = cols.shape
    sh, sw = stride
    dh, dw = dilation
    for i in range(kh):
        for j in range(kw):
            out[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh,
                j * dw: j * dw + sw * (ow - 1) + 1: sw] += cols[:, :, :, :, i, j]
    return out


def _unpad_hw(x, padding):
    ph, pw = padding
    return x[:, :, ph: x.shape[2] - ph, pw: x.shape[3] - pw]


class NumpyBackend:
    """Reference implementations of the primitives every backend provides."""

    name = "numpy"

    # --- matmul -----------------------------------------------------------------
    def matmul(self, a, b):
        """Batched matrix product with NumPy broadcasting of leading dims (ndim >= 2)."""
        return np.matmul(a, b)

    # --- ReLU (on the hot path of every image network) ------------------------------
    def relu(self, x):
        """max(x, 0); NaN passes through."""
        return np.maximum(x, 0)

    def relu_grad(self, g, x):
        """g * (x > 0): the gradient at 0 is 0, as in PyTorch."""
        return g * (x > 0)

    # --- conv2d -----------------------------------------------------------------
    # x (N, C, H, W), w (F, C/groups, KH, KW), y (N, F, OH, OW). With groups g the
    # channels split into g independent blocks; we expose the group axis and let
    # einsum contract over (channel, kernel row, kernel column).
    def conv2d(self, x, w, b, stride, padding, dilation, groups):
        n, c = x.shape[:2]
        f, cg, kh, kw = w.shape
        win = _windows(_pad_hw(x, padding), (kh, kw), stride, dilation)
        oh, ow = win.shape[2:4]
        win = win.reshape(n, groups, cg, oh, ow, kh, kw)
        wg = w.reshape(groups, f // groups, cg, kh, kw)
        y = np.einsum("ngcxykl,gfckl->ngfxy", win, wg, optimize=True).reshape(n, f, oh, ow)
        if b is not None:
            y += b.reshape(1, f, 1, 1)
        return np.ascontiguousarray(y)

    def conv2d_grad_input(self, gy, w, x_shape, stride, padding, dilation, groups):
        n, c, h, wd = x_shape
        f, cg, kh, kw = w.shape
        _, _, oh, ow = gy.shape
        gyg = gy.reshape(n, groups, f // groups, oh, ow)
        wg = w.reshape(groups, f // groups, cg, kh, kw)
        cols = np.einsum("ngfxy,gfckl->ngcxykl", gyg, wg, optimize=True).reshape(n, c, oh, ow, kh, kw)
        padded = (n, c, h + 2 * padding[0], wd + 2 * padding[1])
        return np.ascontiguousarray(_unpad_hw(_col2im(cols, padded, stride, dilation), padding))

    def conv2d_grad_weight(self, gy, x, w_shape, stride, padding, dilation, groups):
        n = x.shape[0]
        f, cg, kh, kw = w_shape
        win = _windows(_pad_hw(x, padding), (kh, kw), stride, dilation)
        oh, ow = win.shape[2:4]
        win = win.reshape(n, groups, cg, oh, ow, kh, kw)
        gyg = gy.reshape(n, groups, f // groups, oh, ow)
        return np.einsum("ngfxy,ngcxykl->gfckl", gyg, win, optimize=True).reshape(w_shape)

    # --- pooling ----------------------------------------------------------------
    def max_pool2d(self, x, kernel, stride, padding):
        """Returns (y, argmax) where argmax holds the flat h*W+w input index of each maximum."""
        n, c, h, w = x.shape
        kh, kw = kernel
        win = _windows(_pad_hw(x, padding, -np.inf), kernel, stride, (1, 1))
        oh, ow = win.shape[2:4]
        flat = win.reshape(n, c, oh, ow, kh * kw)
        # The first maximum in row-major window order wins (the first NaN if any), but never a
        # padding cell: an all -inf window must point at a real input element.
        real = _windows(_pad_hw(np.ones((1, 1, h, w), dtype=bool), padding, False), kernel, stride, (1, 1))
        real = real.reshape(1, 1, oh, ow, kh * kw)
        best = flat.max(axis=-1, keepdims=True)
        k = (real & ((flat == best) | np.isnan(flat))).argmax(axis=-1)
        y = np.take_along_axis(flat, k[..., None], axis=-1)[..., 0]
        rows = np.arange(oh).reshape(oh, 1) * stride[0] - padding[0] + k // kw
        cols = np.arange(ow).reshape(1, ow) * stride[1] - padding[1] + k % kw
        return np.ascontiguousarray(y), (rows * w + cols).astype(np.int64)

    def max_pool2d_grad(self, gy, argmax, x_shape):
        n, c, h, w = x_shape
        base = (np.arange(n * c, dtype=np.int64) * (h * w)).reshape(n, c, 1, 1)
        gx = np.bincount((base + argmax).ravel(), weights=gy.ravel(), minlength=n * c * h * w)
        return gx.astype(gy.dtype).reshape(x_shape)

    def _avg_divisor(self, x_shape, kernel, stride, padding, count_include_pad, dtype):
        if count_include_pad:
            return np.asarray(kernel[0] * kernel[1], dtype=dtype)
        ones = np.ones((1, 1) + tuple(x_shape[2:]), dtype=dtype)
        return _windows(_pad_hw(ones, padding), kernel, stride, (1, 1)).sum(axis=(-1, -2))

    def avg_pool2d(self, x, kernel, stride, padding, count_include_pad=True):
        win = _windows(_pad_hw(x, padding), kernel, stride, (1, 1))
        div = self._avg_divisor(x.shape, kernel, stride, padding, count_include_pad, x.dtype)
        return np.ascontiguousarray(win.sum(axis=(-1, -2)) / div)

    def avg_pool2d_grad(self, gy, x_shape, kernel, stride, padding, count_include_pad=True):
        n, c, h, w = x_shape
        div = self._avg_divisor(x_shape, kernel, stride, padding, count_include_pad, gy.dtype)
        g = gy / div
        cols = np.broadcast_to(g[..., None, None], g.shape + tuple(kernel))
        padded = (n, c, h + 2 * padding[0], w + 2 * padding[1])
        return np.ascontiguousarray(_unpad_hw(_col2im(cols, padded, stride, (1, 1)), padding))

    # --- batch norm (per channel = axis 1; inputs (N, C) or (N, C, ...)) ---------
    @staticmethod
    def _bn_shape(x):
        return (1, x.shape[1]) + (1,) * (x.ndim - 2)

    @staticmethod
    def _bn_axes(x):
        return (0,) + tuple(range(2, x.ndim))

    def batch_norm_train(self, x, gamma, beta, eps):
        """Normalise with the batch's statistics. Returns (y, mean, biased var) per channel."""
        axes = self._bn_axes(x)
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)
        y = self.batch_norm_eval(x, mean, var, gamma, beta, eps)
        return y, mean, var

    def batch_norm_eval(self, x, mean, var, gamma, beta, eps):
        shape = self._bn_shape(x)
        scale = 1.0 / np.sqrt(var + eps)
        if gamma is not None:
            scale = scale * gamma
        y = (x - mean.reshape(shape)) * scale.reshape(shape)
        if beta is not None:
            y += beta.reshape(shape)
        return y.astype(x.dtype, copy=False)

    def batch_norm_grad(self, gy, x, mean, invstd, gamma, training):
        """Gradients (gx, ggamma, gbeta). In training mean/invstd depend on x, in eval they are constants."""
        axes, shape = self._bn_axes(x), self._bn_shape(x)
        xhat = (x - mean.reshape(shape)) * invstd.reshape(shape)
        gbeta = gy.sum(axis=axes)
        ggamma = (gy * xhat).sum(axis=axes)
        g_xhat = gy if gamma is None else gy * gamma.reshape(shape)
        if training:
            m = x.size // x.shape[1]
            gx = (invstd.reshape(shape) / m) * (m * g_xhat - g_xhat.sum(axis=axes).reshape(shape)
                                                - xhat * (g_xhat * xhat).sum(axis=axes).reshape(shape))
        else:
            gx = g_xhat * invstd.reshape(shape)
        return gx.astype(x.dtype, copy=False), ggamma, gbeta

    # --- layer norm (over the last `ndim` axes) ---------------------------------
    def layer_norm(self, x, ndim, gamma, beta, eps):
        """Returns (y, mean, invstd); mean/invstd keep dims so they broadcast against x."""
        axes = tuple(range(x.ndim - ndim, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        invstd = 1.0 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
        y = (x - mean) * invstd
        if gamma is not None:
            y = y * gamma
        if beta is not None:
            y = y + beta
        return y.astype(x.dtype, copy=False), mean, invstd

    def layer_norm_grad(self, gy, x, mean, invstd, gamma, ndim):
        axes = tuple(range(x.ndim - ndim, x.ndim))
        lead = tuple(range(x.ndim - ndim))
        xhat = (x - mean) * invstd
        gbeta = gy.sum(axis=lead)
        ggamma = (gy * xhat).sum(axis=lead)
        g_xhat = gy if gamma is None else gy * gamma
        m = int(np.prod(x.shape[x.ndim - ndim:]))
        gx = (invstd / m) * (m * g_xhat - g_xhat.sum(axis=axes, keepdims=True)
                             - xhat * (g_xhat * xhat).sum(axis=axes, keepdims=True))
        return gx.astype(x.dtype, copy=False), ggamma, gbeta

    # --- fused softmax + cross-entropy (logits (N, C), int64 class indices (N,)) ---------
    def cross_entropy(self, logits, target, label_smoothing):
        """Per-sample loss -[(1-e) log_softmax[target] + e mean_c log_softmax] and softmax probabilities."""
        n = logits.shape[0]
        shifted = logits - logits.max(axis=1, keepdims=True)
        lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        logp = shifted - lse
        loss = -logp[np.arange(n), target]
        if label_smoothing:
            loss = (1 - label_smoothing) * loss - label_smoothing * logp.mean(axis=1)
        return loss.astype(logits.dtype, copy=False), np.exp(logp)

    def cross_entropy_grad(self, g, probs, target, label_smoothing):
        """d loss / d logits = g * (softmax - smoothed one-hot target)."""
        n, c = probs.shape
        soft = np.full((n, c), label_smoothing / c, dtype=probs.dtype)
        soft[np.arange(n), target] += 1 - label_smoothing
        return g[:, None] * (probs - soft)
