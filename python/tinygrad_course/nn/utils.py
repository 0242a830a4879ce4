"""Gradient clipping (and flattening parameters to one vector), as `torch.nn.utils`.

Clip between `loss.backward()` and `optimizer.step()`:

    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
"""
from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor, concat, get_default_dtype, no_grad

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector", "vector_to_parameters"]


def _grads(parameters) -> list[Tensor]:
    """The gradients of `parameters` (one Tensor or an iterable of them) that exist."""
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"parameters must be Tensors (e.g. model.parameters()), got a {type(p).__name__}")
    return [p.grad for p in parameters if p.grad is not None]


def _norm(array, xp, norm_type: float):
    """The vector norm of all of `array`'s elements (0 for an empty one), in its dtype."""
    if array.size == 0:
        return array.dtype.type(0)
    return xp.linalg.norm(array.reshape(-1), ord=norm_type)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Scale all gradients together so that their joint norm is at most `max_norm`; returns that norm
    (before clipping) as a 0-d Tensor.

    The norm is the `norm_type` norm (2, 1, inf, ...) of the per-parameter norms, i.e. of all gradient
    elements as one vector. As in PyTorch the scale is max_norm / (norm + 1e-6), capped at 1, and a
    NaN or infinite norm raises only with error_if_nonfinite=True (otherwise the gradients become NaN).
    `foreach` is accepted for PyTorch compatibility and ignored.
    """
    norm_type = float(norm_type)
    max_norm = float(max_norm)
    grads = _grads(parameters)
    if not grads:
        return Tensor(np.array(0.0, dtype=get_default_dtype()))
    xp, dtype = grads[0]._xp, grads[0].dtype
    norms = xp.stack([xp.asarray(_norm(g._data, g._xp, norm_type)) for g in grads])
    total = _norm(norms, xp, norm_type)
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is {float(total)}, so they "
                           "cannot be clipped; find where the loss or its gradient becomes NaN/inf (or pass "
                           "error_if_nonfinite=False to scale by it anyway)")
    # In the gradients' dtype, as PyTorch computes it, so float32 training clips identically.
    coef = min(dtype.type(max_norm) / (total + dtype.type(1e-6)), dtype.type(1.0))
    with no_grad():
        for g in grads:
            g.mul_(coef)
    return Tensor(xp.asarray(total, dtype=dtype), device=grads[0].device)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_value must be a non-negative number, got {clip_value}")
    with no_grad():
        for g in _grads(parameters):
            g.clamp_(-clip_value, clip_value)


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and concatenated into one 1-D Tensor (differentiable, a copy)."""
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    if not parameters:
        raise ValueError("parameters_to_vector: no parameters given")
    return concat([p.reshape(-1) for p in parameters], 0)


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of the 1-D `vec` into the parameters, in place (the inverse of
    parameters_to_vector); its length must equal their total number of elements."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: vec must be a Tensor, got {type(vec).__name__}")
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    total = sum(p.numel() for p in parameters)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ValueError(f"vector_to_parameters: vec of shape {vec.shape} does not hold the {total} elements of "
                         "the parameters; it must be 1-D of that length")
    start = 0
    with no_grad():
        for p in parameters:
            p.copy_(vec._data[start:start + p.numel()].reshape(p.shape))
            start += p.numel()
