"""Backend registry: which implementation runs the heavy primitives.

A backend is an object with the methods of `NumpyBackend` (matmul, conv2d and
its two gradients, pooling, batch/layer norm). On the "cpu" device the choice
is "numpy" (the readable reference) or "native" (our C++ kernels, built into
`tinygrad_course._C`); the "cuda" device always uses `CudaBackend` (our CUDA
kernels in `kernels/*.cu`, see `cuda.py`). Choose with `set_backend(name)` or the environment
variable TINYGRAD_COURSE_BACKEND; the default is "native" when the extension
is built, else "numpy".
"""
from __future__ import annotations

import contextlib
import os

from .allocator import tune_allocator
from .numpy_backend import NumpyBackend

tune_allocator()

_CPU_BACKENDS = ("numpy", "native")
_instances: dict[str, object] = {}
_cpu_choice = None


def available_backends() -> list[str]:
    """Names of the CPU backends that can be used on this installation."""
    names = ["numpy"]
    try:
        _load("native")
        names.append("native")
    except ImportError:
        pass
    return names


def _load(name: str):
    if name not in _instances:
        if name == "numpy":
            _instances[name] = NumpyBackend()
        elif name == "native":
            try:
                from .native import NativeBackend
            except ImportError as e:  # the extension was not built
                raise ImportError(
                    "the 'native' backend needs the compiled extension tinygrad_course._C, "
                    f"which failed to import ({e}); reinstall with `pip install .` or use "
                    "set_backend('numpy')") from e
            _instances[name] = NativeBackend()
        else:
            raise ValueError(f"unknown backend {name!r}; choose one of {_CPU_BACKENDS}")
    return _instances[name]


def set_backend(name: str) -> None:
    """Select the CPU backend ("numpy" or "native") for every op from now on."""
    global _cpu_choice
    _load(name)
    _cpu_choice = name


def get_backend_name() -> str:
    global _cpu_choice
    if _cpu_choice is None:
        requested = os.environ.get("TINYGRAD_COURSE_BACKEND")
        if requested:
            _load(requested)  # an explicit request that cannot be met is an error
            _cpu_choice = requested
        else:
            _cpu_choice = "native" if "native" in available_backends() else "numpy"
    return _cpu_choice


def get_backend(device: str = "cpu"):
    """The backend object that runs primitives for tensors on `device` ("cpu" or "cuda")."""
    if device == "cpu":
        return _load(get_backend_name())
    if device != "cuda":
        raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda'")
    from ..device import cuda_runtime, emulating_cuda
    key = "cuda-emulated" if emulating_cuda() else "cuda"
    if key not in _instances:
        from .cuda import CudaBackend
        _instances[key] = CudaBackend(runtime=cuda_runtime())
    return _instances[key]


@contextlib.contextmanager
def use_backend(name: str):
    """Temporarily select a CPU backend: `with use_backend("numpy"): ...`."""
    previous = get_backend_name()
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)
