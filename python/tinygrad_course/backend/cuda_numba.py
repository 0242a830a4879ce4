"""Numba CUDA kernels of the "cuda" device: the ones that read best as Python (dropout masks).

Dropout draws its keep/drop decisions from a counter-based hash (splitmix64 of seed + element
index), so a mask needs no random state on the GPU and is the same on every run for one seed.
`dropout_mask_reference` computes the same bits with NumPy: the CPU emulation of "cuda" uses it,
and the tests compare the kernel (under Numba's CUDA simulator when there is no GPU) with it.
This module imports Numba; the package imports it only when "cuda" draws a dropout mask.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, uint64

_GOLDEN = 0x9E3779B97F4A7C15  # splitmix64 constants
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_THREADS = 256


def dropout_mask_reference(shape, p: float, scale, seed: int) -> np.ndarray:
    """The mask the kernel draws, computed on the host: `scale` where kept, 0 where dropped."""
    n = int(np.prod(shape))
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (np.arange(n, dtype=np.uint64) + np.uint64(1)) * np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float64) * 2.0 ** -24  # 24 random bits -> [0, 1)
    dtype = np.asarray(scale).dtype
    return np.where(u >= p, scale, dtype.type(0)).astype(dtype).reshape(shape)


_U_GOLDEN, _U_MIX1, _U_MIX2 = uint64(_GOLDEN), uint64(_MIX1), uint64(_MIX2)


@cuda.jit
def dropout_mask_kernel(out, seed, p, scale):
    # one thread per element of the flat mask; uint64 arithmetic wraps like the reference's
    i = cuda.grid(1)
    if i < out.size:
        z = uint64(seed) + (uint64(i) + uint64(1)) * _U_GOLDEN
        z = (z ^ (z >> uint64(30))) * _U_MIX1
        z = (z ^ (z >> uint64(27))) * _U_MIX2
        z = z ^ (z >> uint64(31))
        u = float(z >> uint64(40)) * (2.0 ** -24)
        out[i] = scale if u >= p else 0


def dropout_mask(shape, p: float, scale, seed: int, xp):
    """A dropout mask on the array module `xp`'s device: `scale` where kept (probability 1 - p), else 0."""
    if xp is np:  # the host path (the CPU emulation of "cuda")
        return dropout_mask_reference(shape, p, scale, seed)
    out = xp.empty(int(np.prod(shape)), dtype=np.asarray(scale).dtype)
    if out.size:
        blocks = (out.size + _THREADS - 1) // _THREADS
        # CuPy and Numba share device memory through __cuda_array_interface__: no copy
        dropout_mask_kernel[blocks, _THREADS](out, np.uint64(seed), float(p), scale)
    return out.reshape(shape)
