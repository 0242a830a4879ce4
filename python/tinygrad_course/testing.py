"""Gradient checking against central finite differences (PyTorch's gradcheck semantics).

    from tinygrad_course.testing import gradcheck
    x = tg.randn(3, 4, dtype="float64", requires_grad=True)
    gradcheck(lambda x: (x.tanh() * x).sum(axis=1), [x])

For every input that requires grad, each element is perturbed by +-eps and the
numerical Jacobian column (f(x + eps) - f(x - eps)) / (2 eps) is compared with
the one autograd gives: |analytic - numeric| <= atol + rtol * |numeric|.
Outputs with up to `max_full_outputs` elements get the full Jacobian (one
backward per output element); larger outputs are checked through
`n_projections` random projections v^T J, which still catches any wrong entry
with probability one. On failure the report names the worst element.
"""
from __future__ import annotations

import numpy as np

from .tensor import Tensor, no_grad

__all__ = ["gradcheck", "GradcheckError", "numerical_jacobian"]


class GradcheckError(AssertionError):
    """Raised by gradcheck when analytic and numerical gradients disagree."""


def _index(flat, shape):
    """A flat index as a tuple of Python ints, e.g. (1, 2) (NumPy 2 would print np.int64(1))."""
    return tuple(int(i) for i in np.unravel_index(flat, shape))


def _outputs(fn, inputs):
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: the function must return a Tensor, got {type(out).__name__}")
    return out


def numerical_jacobian(fn, inputs, wrt: Tensor, eps: float = 1e-6) -> np.ndarray:
    """(n_out, n_in) Jacobian of fn's output with respect to `wrt`, by central differences."""
    data = wrt._data  # perturbed and restored in place, also while a graph has saved it
    cols = []
    with no_grad():
        for idx in np.ndindex(*data.shape):
            orig = data[idx]
            data[idx] = orig + eps
            plus = _outputs(fn, inputs)._data.astype(np.float64).ravel()
            data[idx] = orig - eps
            minus = _outputs(fn, inputs)._data.astype(np.float64).ravel()
            data[idx] = orig
            cols.append((plus - minus) / (2 * eps))
    n_out = _outputs(fn, inputs).numel() if not cols else cols[0].size
    return np.stack(cols, axis=1) if cols else np.zeros((n_out, 0))


def _analytic_rows(fn, inputs, checked, vectors):
    """For each output weighting v, the gradients v^T J for every checked input (flattened)."""
    rows = []
    for v in vectors:
        for t in checked:
            t.grad = None
        out = _outputs(fn, inputs)
        if not out.requires_grad:
            raise GradcheckError("gradcheck: the output does not require grad; no input reaches it")
        out.backward(v.reshape(out.shape).astype(out.dtype))
        rows.append([np.zeros(t.numel()) if t.grad is None else t.grad._data.astype(np.float64).ravel()
                     for t in checked])
    for t in checked:
        t.grad = None
    return rows


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              max_full_outputs: int = 64, n_projections: int = 4, seed: int = 0,
              raise_exception: bool = True) -> bool:
    """Check autograd's gradients of `fn(*inputs)` against central finite differences.

    `inputs` are Tensors (those with requires_grad are checked; they should be
    float64) or other arguments passed through. `fn` must be deterministic
    (re-seed inside it if it draws random numbers). Returns True, or raises
    GradcheckError with a report of the worst element (or returns False when
    raise_exception=False).
    """
    inputs = list(inputs)
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: input of shape {t.shape} is {t.dtype}; use float64 for finite differences")

    with no_grad():
        n_out = _outputs(fn, inputs).numel()
    if n_out <= max_full_outputs:
        vectors = list(np.eye(n_out))
        proj = np.eye(n_out)
    else:
        proj = np.random.default_rng(seed).standard_normal((n_projections, n_out))
        vectors = list(proj)
    analytic = _analytic_rows(fn, inputs, checked, vectors)

    worst = None
    for k, t in enumerate(checked):
        numeric = proj @ numerical_jacobian(fn, inputs, t, eps)          # (n_vectors, n_in)
        exact = np.stack([row[k] for row in analytic]) if analytic else numeric
        err = np.abs(exact - numeric) - (atol + rtol * np.abs(numeric))
        if err.size and (worst is None or err.max() > worst[0]):
            r, c = np.unravel_index(np.argmax(err), err.shape)
            worst = (err.max(), k, t, r, c, exact[r, c], numeric[r, c])
    if worst is None or worst[0] <= 0:
        return True
    _, k, t, r, c, a, n = worst
    where_out = f"output element {_index(r, _outputs(fn, inputs).shape)}" if n_out <= max_full_outputs \
        else f"random projection {r} of the output"
    msg = (f"gradcheck failed for input {k} (shape {t.shape}) at element {_index(c, t.shape)}, "
           f"{where_out}: analytic {a:.8g} vs numerical {n:.8g} (|diff| {abs(a - n):.3g} > atol {atol} + "
           f"rtol {rtol} * |numerical|)")
    if raise_exception:
        raise GradcheckError(msg)
    return False
