"""tinygrad_course: a teaching-grade autograd tensor library with its own kernels.

    import tinygrad_course as tg
    x = tg.randn(4, 3, requires_grad=True)
    (x.tanh() ** 2).sum().backward()
    x.grad
"""
import os as _os
from importlib import import_module as _import_module, util as _importlib_util

import numpy as _np

if _os.environ.get("TINYGRAD_COURSE_ISA"):
    # A forced ISA the build or CPU cannot run must stop the import here, with the extension's
    # message, not quietly leave the native backend out.
    from . import _C  # noqa: F401
from .backend import available_backends, get_backend, get_backend_name, set_backend, use_backend
from .tensor import (Function, Tensor, arange, from_numpy, full, get_default_dtype, is_grad_enabled, no_grad, ones,
                     ones_like, rand, randn, set_default_dtype, set_grad_enabled, tensor, zeros, zeros_like)
from .functions import (METHOD_FUNCTIONS as _METHOD_FUNCTIONS, MISSING_METHODS as _MISSING_METHODS, Generator,
                        accelerator, as_tensor, backends, bernoulli, bmm, cat, concat, concatenate, cuda,
                        default_generator, device, einsum, empty, empty_like, eye, full_like, get_rng_state, hstack,
                        inference_mode, initial_seed, is_tensor, linspace, manual_seed, max, meshgrid, min, mm,
                        multinomial, mv, std_mean, var_mean,
                        normal, rand_like, randint, randint_like, randn_like, randperm, set_rng_state, stack, vstack,
                        where)
# `tinygrad_course.device` is now torch.device's counterpart; the module device.py stays importable by
# `from tinygrad_course.device import ...` (but `import tinygrad_course.device as m` gives the class).
from . import checkpoint, data, nn, optim  # noqa: E402
from .checkpoint import load_object as load, save_object as save  # torch.save / torch.load
from .profiler import profile  # noqa: E402

globals().update(_METHOD_FUNCTIONS)  # torch.exp(x), torch.sum(x, dim=1), ...: the Tensor methods as functions
# torch.conv2d(x, w), torch.selu(x), ...: the functional ops whose torch.* form has nn.functional's signature
_FUNCTIONAL = ("conv1d", "conv2d", "conv_transpose2d", "max_pool1d", "max_pool2d", "avg_pool1d", "selu", "celu",
               "threshold", "hardshrink", "cosine_similarity", "prelu")
globals().update({name: getattr(nn.functional, name) for name in _FUNCTIONAL})

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "tensor", "as_tensor", "from_numpy", "is_tensor", "zeros", "ones", "full", "empty", "eye",
    "linspace", "zeros_like", "ones_like", "full_like", "empty_like", "rand", "randn", "randint", "rand_like",
    "randn_like", "randint_like", "randperm", "normal", "multinomial", "bernoulli", "arange", "concat", "cat", "einsum",
    "concatenate", "stack", "hstack", "vstack", "where", "max", "min", "mm", "bmm", "mv", "no_grad",
    "meshgrid", "std_mean", "var_mean",
    "inference_mode", "set_grad_enabled", "is_grad_enabled", "manual_seed", "initial_seed", "default_generator", "get_rng_state", "set_rng_state",
    "Generator", "set_default_dtype", "get_default_dtype", "device", "cuda", "accelerator", "backends", "set_backend",
    "get_backend", "get_backend_name", "use_backend", "available_backends", "nn", "optim", "data", "checkpoint",
    "save", "load", "profile",
    "float32", "float64", "int64", "int32", "int16", "int8", "uint8", "float", "double", "long", "int", "short",
    "bool", "dtype", "finfo", "iinfo",
    *sorted(_METHOD_FUNCTIONS), *_FUNCTIONAL,
]

# What PyTorch has and we do not, with what to use instead (instead of a bare AttributeError).
_DTYPE_ADVICE = "tensors hold float32 (float), float64 (double), int64 (long), int32 (int), int16, int8, uint8 or bool"
_INSTEAD = {
    **{name: f"{_DTYPE_ADVICE}; use float32" for name in ("half", "float16", "bfloat16")},
    "FloatTensor": "use tensor(data, dtype=float32)",
    "LongTensor": "use tensor(data, dtype=int64)",
    "Size": "shapes are tuples: use tuple(...)",
    "set_default_tensor_type": "use set_default_dtype(float64)",
    "compile": "there is no compiler: use the model as it is",
    "autocast": "there is no mixed precision: leave autocast and GradScaler out",
    "amp": "there is no mixed precision: leave autocast and GradScaler out",
    "autograd": "use backward() and .grad (torch.autograd.grad and autograd.Function are not supported)",
    "jit": "there is no compiler: use the model as it is",
}


def __getattr__(name):
    """A submodule not imported yet (tg.metrics); else say what to use instead of a PyTorch name we lack
    (never a guess at a similar name)."""
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _importlib_util.find_spec(f"{__name__}.{name}") is not None:
        return _import_module(f"{__name__}.{name}")
    if name in _INSTEAD:
        advice = _INSTEAD[name]
    elif name in _MISSING_METHODS:
        advice = f"it is not supported yet (Tensor has no .{name}() method)"
    else:
        advice = "PyTorch's torch." + name + " is not supported; README.md's 'API in brief' lists what is"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}: {advice}")


# dtypes under PyTorch's names. NumPy dtypes, so astype(), tensor(dtype=) and `x.dtype == float32` take them,
# and each equals its name as a string ("float32"). Last in the file: `float`, `int` and `bool` hide the builtins.
float32 = float = _np.dtype(_np.float32)
float64 = double = _np.dtype(_np.float64)
int64 = long = _np.dtype(_np.int64)
int32 = int = _np.dtype(_np.int32)
int16 = short = _np.dtype(_np.int16)
int8 = _np.dtype(_np.int8)
uint8 = _np.dtype(_np.uint8)
bool = _np.dtype(_np.bool_)
dtype = _np.dtype  # the class of the above: isinstance(x.dtype, dtype)
finfo, iinfo = _np.finfo, _np.iinfo  # finfo(float32).eps, iinfo(int64).max, as torch's
