"""tinygrad_course: a teaching-grade autograd tensor library with its own kernels.

    import tinygrad_course as tg
    x = tg.randn(4, 3, requires_grad=True)
    (x.tanh() ** 2).sum().backward()
    x.grad
"""
import os as _os

if _os.environ.get("TINYGRAD_COURSE_ISA"):
    # A forced ISA the build or CPU cannot run must stop the import here, with the extension's
    # message, not quietly leave the native backend out.
    from . import _C  # noqa: F401
from .backend import available_backends, get_backend, get_backend_name, set_backend, use_backend
from .tensor import (Function, Tensor, arange, cat, concat, from_numpy, full, get_default_dtype, is_grad_enabled,
                     manual_seed, no_grad, ones, ones_like, rand, randn, set_default_dtype, set_grad_enabled, stack,
                     tensor, where, zeros, zeros_like)
from . import checkpoint, data, nn, optim  # noqa: E402

float32 = "float32"
float64 = "float64"
int64 = "int64"

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "tensor", "from_numpy", "zeros", "ones", "full", "zeros_like", "ones_like", "rand",
    "randn", "arange", "concat", "cat", "stack", "where", "no_grad", "set_grad_enabled", "is_grad_enabled",
    "manual_seed", "set_default_dtype", "get_default_dtype", "set_backend", "get_backend", "get_backend_name",
    "use_backend", "available_backends", "nn", "optim", "data", "checkpoint", "float32", "float64", "int64",
]
