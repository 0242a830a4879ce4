"""The "native" backend: NumPy for everything, except the ops we have C++ kernels for.

Importing this module raises ImportError when the compiled extension
``tinygrad_course._C`` is missing (e.g. a source checkout that was never
built); the backend registry treats that as "native backend unavailable".
"""

from __future__ import annotations

import math

import numpy as np

from .. import _C
from .numpy_backend import NumpyBackend

_NATIVE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _native_floats(*arrays) -> bool:
    """True when every array that is not None is a float32 ndarray, or every one float64.

    That is what the pooling/normalisation/loss kernels take; anything else
    (other dtypes, mixed dtypes, non-arrays) goes to the NumPy reference.
    """
    given = [a for a in arrays if a is not None]
    if not all(isinstance(a, np.ndarray) for a in given):
        return False
    dtypes = {a.dtype for a in given}
    return len(dtypes) == 1 and dtypes.pop() in _NATIVE_DTYPES


def _int64(a):
    """Class indices / argmax positions as int64 (no copy when they already are), or None."""
    a = np.asarray(a)
    return a.astype(np.int64, copy=False) if a.dtype.kind in "iu" else None


class NativeBackend(NumpyBackend):
    """NumpyBackend with matmul, conv2d, pooling, batch/layer norm and the fused softmax
    cross-entropy dispatched to the C++ kernels in ``tinygrad_course._C``."""

    name = "native"

    def matmul(self, a, b):
        """``np.matmul`` semantics for ndim >= 2 operands, computed by ``_C.matmul``.

        Leading (batch) dimensions broadcast as in NumPy. Anything the kernel
        does not handle -- dtypes other than float32/float64, mixed dtypes,
        1-D operands -- falls back to NumPy.
        """
        a = np.asarray(a)
        b = np.asarray(b)
        if a.ndim < 2 or b.ndim < 2 or a.dtype != b.dtype or a.dtype not in _NATIVE_DTYPES:
            return super().matmul(a, b)
        if a.ndim == 2 and b.ndim == 2:  # the common case (Linear layers): no batch bookkeeping
            return _C.matmul(a, b)

        m, k = a.shape[-2:]
        k2, n = b.shape[-2:]
        if k != k2:
            raise ValueError(
                f"matmul: shapes {a.shape} and {b.shape} are not aligned: {k} != {k2}"
            )
        batch_shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        nbatch = math.prod(batch_shape)

        # No np.ascontiguousarray here: _C.matmul reads row-major and
        # transposed (e.g. w.T, np.swapaxes(x, -1, -2)) matrices in place, with
        # any batch stride (0 included, from np.broadcast_to), and copies only
        # other layouts. The reshapes below are views whenever NumPy can make one.
        a_full = np.broadcast_to(a, batch_shape + (m, k))
        if math.prod(b.shape[:-2]) == 1:
            # b is a single matrix shared by the whole batch (e.g. a Linear
            # layer's weight; b.reshape only drops size-1 dims: a view).
            b2 = b.reshape(k, n)
            # Fold the batch into the rows of one 2-D GEMM when the rows of a
            # are evenly spaced (e.g. a C-contiguous a), so the reshape is a view.
            dims = [(s, st) for s, st in zip(a_full.shape[:-1], a_full.strides[:-1]) if s != 1]
            if all(st == nst * ns for (_, st), (ns, nst) in zip(dims, dims[1:])):
                out = _C.matmul(a_full.reshape(nbatch * m, k), b2)
            else:
                # e.g. a batch of transposed matrices: a batched GEMM reading the
                # same b for every entry (batch stride 0), nothing materialised.
                b3 = np.broadcast_to(b2, (nbatch, k, n))
                out = _C.matmul(a_full.reshape(nbatch, m, k), b3)
        else:
            a3 = a_full.reshape(nbatch, m, k)
            b3 = np.broadcast_to(b, batch_shape + (k, n)).reshape(nbatch, k, n)
            out = _C.matmul(a3, b3)
        return out.reshape(batch_shape + (m, n))

    # --- ReLU: src/elementwise.cpp (multithreaded, vectorised) -----------------------
    def relu(self, x):
        return _C.relu(x) if _native_floats(x) else super().relu(x)

    def relu_grad(self, g, x):
        return _C.relu_grad(g, x) if _native_floats(g, x) and g.shape == x.shape else super().relu_grad(g, x)

    # --- conv2d: src/conv2d.cpp (im2col + GEMM, direct kernel for few channels) ------
    def conv2d(self, x, w, b, stride, padding, dilation, groups):
        if not _native_floats(x, w, b):
            return super().conv2d(x, w, b, stride, padding, dilation, groups)
        return _C.conv2d(x, w, b, tuple(stride), tuple(padding), tuple(dilation), int(groups))

    def conv2d_grad_input(self, gy, w, x_shape, stride, padding, dilation, groups):
        if not _native_floats(gy, w):
            return super().conv2d_grad_input(gy, w, x_shape, stride, padding, dilation, groups)
        return _C.conv2d_grad_input(gy, w, tuple(x_shape), tuple(stride), tuple(padding),
                                    tuple(dilation), int(groups))

    def conv2d_grad_weight(self, gy, x, w_shape, stride, padding, dilation, groups):
        if not _native_floats(gy, x):
            return super().conv2d_grad_weight(gy, x, w_shape, stride, padding, dilation, groups)
        return _C.conv2d_grad_weight(gy, x, tuple(w_shape), tuple(stride), tuple(padding),
                                     tuple(dilation), int(groups))

    # --- pooling: src/pool.cpp ----------------------------------------------------
    def max_pool2d(self, x, kernel, stride, padding):
        if not _native_floats(x):
            return super().max_pool2d(x, kernel, stride, padding)
        return _C.max_pool2d(x, tuple(kernel), tuple(stride), tuple(padding))

    def max_pool2d_grad(self, gy, argmax, x_shape):
        idx = _int64(argmax)
        if idx is None or not _native_floats(gy):
            return super().max_pool2d_grad(gy, argmax, x_shape)
        return _C.max_pool2d_grad(gy, idx, tuple(x_shape))

    def avg_pool2d(self, x, kernel, stride, padding, count_include_pad=True):
        if not _native_floats(x):
            return super().avg_pool2d(x, kernel, stride, padding, count_include_pad)
        return _C.avg_pool2d(x, tuple(kernel), tuple(stride), tuple(padding), bool(count_include_pad))

    def avg_pool2d_grad(self, gy, x_shape, kernel, stride, padding, count_include_pad=True):
        if not _native_floats(gy):
            return super().avg_pool2d_grad(gy, x_shape, kernel, stride, padding, count_include_pad)
        return _C.avg_pool2d_grad(gy, tuple(x_shape), tuple(kernel), tuple(stride), tuple(padding),
                                  bool(count_include_pad))

    # --- batch norm / layer norm: src/norm.cpp --------------------------------------
    def batch_norm_train(self, x, gamma, beta, eps):
        if not _native_floats(x, gamma, beta):
            return super().batch_norm_train(x, gamma, beta, eps)
        return _C.batch_norm_train(x, gamma, beta, float(eps))

    def batch_norm_eval(self, x, mean, var, gamma, beta, eps):
        if not _native_floats(x, mean, var, gamma, beta):
            return super().batch_norm_eval(x, mean, var, gamma, beta, eps)
        return _C.batch_norm_eval(x, mean, var, gamma, beta, float(eps))

    def batch_norm_grad(self, gy, x, mean, invstd, gamma, training):
        if not _native_floats(gy, x, mean, invstd, gamma):
            return super().batch_norm_grad(gy, x, mean, invstd, gamma, training)
        return _C.batch_norm_grad(gy, x, mean, invstd, gamma, bool(training))

    def layer_norm(self, x, ndim, gamma, beta, eps):
        if not _native_floats(x, gamma, beta):
            return super().layer_norm(x, ndim, gamma, beta, eps)
        return _C.layer_norm(x, int(ndim), gamma, beta, float(eps))

    def layer_norm_grad(self, gy, x, mean, invstd, gamma, ndim):
        if not _native_floats(gy, x, mean, invstd, gamma):
            return super().layer_norm_grad(gy, x, mean, invstd, gamma, ndim)
        return _C.layer_norm_grad(gy, x, mean, invstd, gamma, int(ndim))

    # --- fused softmax cross-entropy: src/softmax.cpp -------------------------------
    def cross_entropy(self, logits, target, label_smoothing):
        idx = _int64(target)
        if idx is None or not _native_floats(logits):
            return super().cross_entropy(logits, target, label_smoothing)
        return _C.cross_entropy(logits, idx, float(label_smoothing))

    def cross_entropy_grad(self, g, probs, target, label_smoothing):
        idx = _int64(target)
        if idx is None or not _native_floats(g, probs):
            return super().cross_entropy_grad(g, probs, target, label_smoothing)
        return _C.cross_entropy_grad(g, probs, idx, float(label_smoothing))
