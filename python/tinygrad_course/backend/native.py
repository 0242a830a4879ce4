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


class NativeBackend(NumpyBackend):
    """NumpyBackend with matmul dispatched to the C++ GEMM in ``tinygrad_course._C``."""

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

        m, k = a.shape[-2:]
        k2, n = b.shape[-2:]
        if k != k2:
            raise ValueError(
                f"matmul: shapes {a.shape} and {b.shape} are not aligned: {k} != {k2}"
            )
        batch_shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        nbatch = math.prod(batch_shape)

        if math.prod(b.shape[:-2]) == 1:
            # b is a single matrix shared by the whole batch (e.g. a Linear
            # layer's weight): fold the batch into the rows of one 2-D GEMM
            # instead of materialising nbatch copies of b.
            a2 = np.ascontiguousarray(np.broadcast_to(a, batch_shape + (m, k))).reshape(
                nbatch * m, k
            )
            b2 = np.ascontiguousarray(b.reshape(k, n))
            out = _C.matmul(a2, b2)
        else:
            a3 = np.ascontiguousarray(np.broadcast_to(a, batch_shape + (m, k))).reshape(
                nbatch, m, k
            )
            b3 = np.ascontiguousarray(np.broadcast_to(b, batch_shape + (k, n))).reshape(
                nbatch, k, n
            )
            out = _C.matmul(a3, b3)
        return out.reshape(batch_shape + (m, n))
