"""Devices: where a tensor's storage lives, and the array module (`xp`) that works on it.

"cpu" storage is a NumPy array. "cuda" storage is a CuPy array on the current GPU; simple
elementwise work runs through CuPy and the heavy primitives through our own kernels
(`backend/cuda.py`, `kernels/*.cu`). CuPy is imported only when "cuda" is first used, so the
package imports without it.

Setting TINYGRAD_COURSE_CUDA_EMULATE=1 makes "cuda" run the same kernel sources on the CPU
(compiled by the host C++ compiler, one host thread per CUDA thread) with NumPy storage: very
slow, but it lets tests drive the whole "cuda" path on a machine without a GPU.
"""
from __future__ import annotations

import os

import numpy as np

DEVICES = ("cpu", "cuda")


class device(str):
    """A device name, as torch.device: device("cuda"), device("cuda:0"), device("cuda", 0), device("cpu").

    It is the canonical device string itself ("cpu" or "cuda"), so it works wherever a device name
    does (`.to(device)`, `device=`, `== "cuda"`). A tensor's `.device` is one (`x.device.type`).
    """

    def __new__(cls, type, index=None):
        if isinstance(type, device) and index is None:  # device(device("cuda:0")) keeps its index
            type, index = str(type), type.index
        name = str(type) if index is None else f"{type}:{index}"
        if index is not None and ":" in str(type):
            raise ValueError(f"device(): type {type!r} already has an index; give device({type!r})")
        self = super().__new__(cls, _canonical_name(name))
        self.index = int(name.split(":")[1]) if ":" in name else None
        return self

    @property
    def type(self) -> str:
        return str(self)

    def __repr__(self):
        return f"device(type='{self}'" + ("" if self.index is None else f", index={self.index}") + ")"


def canonical_device(device) -> "device":
    """The device "cpu" or "cuda" for a device name ('cuda:0' is 'cuda'; there is one GPU device)."""
    return _CANONICAL[_canonical_name(device)]


def _canonical_name(device) -> str:
    if device is None:
        return "cpu"
    name = str(device).strip().lower()
    if name == "cuda:0":
        name = "cuda"
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda' (one GPU: 'cuda:0' is 'cuda')")
    return name


_CANONICAL = {name: device(name) for name in DEVICES}


def emulating_cuda() -> bool:
    """True when TINYGRAD_COURSE_CUDA_EMULATE asks for the CPU emulation of the CUDA kernels."""
    return os.environ.get("TINYGRAD_COURSE_CUDA_EMULATE", "0") not in ("", "0")


def cuda_runtime():
    """The runtime behind device "cuda": real (CuPy) or emulated; raises CudaUnavailableError."""
    from .backend import cuda  # imported late: it is only needed once "cuda" is used
    return cuda.emulated_runtime() if emulating_cuda() else cuda.cuda_runtime()


def array_module(device: str):
    """numpy for "cpu"; the CUDA runtime's array module (cupy) for "cuda"."""
    return np if device == "cpu" else cuda_runtime().xp


def is_host_array(a) -> bool:
    return isinstance(a, (np.ndarray, np.generic))


def is_device_array(a) -> bool:
    """True for a GPU array (a CuPy array: it has __cuda_array_interface__ and is not NumPy's)."""
    return not is_host_array(a) and hasattr(a, "__cuda_array_interface__")


def to_numpy(a) -> np.ndarray:
    """A NumPy array with the values of `a` (a copy when `a` lives on the GPU).

    GPU arrays are copied with `.get()`: NumPy refuses to convert a CuPy array implicitly
    (`np.asarray(cupy_array)` raises TypeError). Anything else goes through `np.asarray`.
    """
    if is_device_array(a):
        return a.get()  # cupy.ndarray -> host
    return np.asarray(a)


def to_device(a, device: str):
    """A copy of `a` on `device` (what moving a tensor gives: never storage shared across devices)."""
    if device == "cpu":
        return np.array(to_numpy(a), copy=True)
    return cuda_runtime().xp.array(a, copy=True)


def xp_of(a):
    """The array module that works on array `a`: numpy for host arrays, else the CUDA runtime's."""
    return np if is_host_array(a) else cuda_runtime().xp
