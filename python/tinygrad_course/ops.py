"""Differentiable operations: one `Function` per op, forward and backward on arrays.

Conventions: `forward` gets arrays and returns an array; `backward` returns one
gradient per positional argument of `apply` (None where an argument needs
none). Gradients of broadcasting ops may keep the broadcast shape: the engine
sums them back to each input's shape. Heavy primitives (matmul, convolution,
pooling, normalisation) go through the backend selected for the device, so
the numpy reference, the C++ kernels and the GPU kernels share these rules.
Array functions go through `self.xp` (numpy on "cpu", cupy on "cuda") or, in helpers,
`xp_of(array)`; `np` is left for host-side bookkeeping (shapes, index tables, errstate).
"""
from __future__ import annotations

import copy
import math

import numpy as np

from .backend import get_backend
from .device import to_device, to_numpy, xp_of
from .tensor import Function, get_rng


# --- elementwise arithmetic ------------------------------------------------------------
class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, -g


class Mul(Function):
    def forward(self, a, b):
        self.save(a, b)
        return a * b

    def backward(self, g):
        a, b = self.saved
        return (g * b if self.needs_input_grad[0] else None,
                g * a if self.needs_input_grad[1] else None)


class Div(Function):
    def forward(self, a, b):
        self.save(a, b)
        return a / b

    def backward(self, g):
        a, b = self.saved
        return (g / b if self.needs_input_grad[0] else None,
                -g * a / (b * b) if self.needs_input_grad[1] else None)


class Pow(Function):
    def forward(self, a, b):
        out = a ** b
        self.save(a, b, out)
        return out

    def backward(self, g):
        # PyTorch's edge values: d/da is 0 where b == 0 (even at a = 0); d/db is out * log(a), so
        # -inf for 0 ** (b < 0) and NaN for a < 0, except 0 where a == 0 and b >= 0
        a, b, out = self.saved
        xp, ga, gb = self.xp, None, None
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.needs_input_grad[0]:
                ga = xp.where(b == 0, 0, g * b * a ** (b - 1))
            if self.needs_input_grad[1]:
                gb = xp.where((a == 0) & (b >= 0), 0, g * out * xp.log(a))
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class Exp(Function):
    def forward(self, a):
        out = self.xp.exp(a)
        self.save(out)
        return out

    def backward(self, g):
        return g * self.saved[0]


class Log(Function):
    def forward(self, a):
        self.save(a)
        return self.xp.log(a)

    def backward(self, g):
        return g / self.saved[0]


class Log1p(Function):
    def forward(self, a):
        self.save(a)
        return self.xp.log1p(a)

    def backward(self, g):
        return g / (1 + self.saved[0])


class Sqrt(Function):
    def forward(self, a):
        out = self.xp.sqrt(a)
        self.save(out)
        return out

    def backward(self, g):
        return g / (2 * self.saved[0])


class Abs(Function):
    def forward(self, a):
        self.save(a)
        return self.xp.abs(a)

    def backward(self, g):
        return g * self.xp.sign(self.saved[0])


class Tanh(Function):
    def forward(self, a):
        out = self.xp.tanh(a)
        self.save(out)
        return out

    def backward(self, g):
        y = self.saved[0]
        return g * (1 - y * y)


class Sigmoid(Function):
    def forward(self, a):
        out = 0.5 * (1 + self.xp.tanh(0.5 * a))  # overflow-free form of 1 / (1 + exp(-a))
        self.save(out)
        return out

    def backward(self, g):
        y = self.saved[0]
        return g * y * (1 - y)


class Relu(Function):
    def forward(self, a):
        self.save(a)
        return get_backend(self.device).relu(a)

    def backward(self, g):
        return get_backend(self.device).relu_grad(g, self.saved[0])


class LeakyRelu(Function):
    def forward(self, a, slope):
        self.slope = slope
        self.save(a)
        return self.xp.where(a > 0, a, a * slope)

    def backward(self, g):
        return self.xp.where(self.saved[0] > 0, g, g * self.slope)


# Elementwise functions from one table: name -> (forward f(xp, a), derivative f'(xp, a, out)); one
# Function (Unary) serves them all. A derivative of None: piecewise constant, the gradient is 0.
UNARY = {
    "sin": (lambda xp, a: xp.sin(a), lambda xp, a, y: xp.cos(a)),
    "cos": (lambda xp, a: xp.cos(a), lambda xp, a, y: -xp.sin(a)),
    "tan": (lambda xp, a: xp.tan(a), lambda xp, a, y: 1 + y * y),
    "sinh": (lambda xp, a: xp.sinh(a), lambda xp, a, y: xp.cosh(a)),
    "cosh": (lambda xp, a: xp.cosh(a), lambda xp, a, y: xp.sinh(a)),
    "asin": (lambda xp, a: xp.arcsin(a), lambda xp, a, y: 1 / xp.sqrt(1 - a * a)),
    "acos": (lambda xp, a: xp.arccos(a), lambda xp, a, y: -1 / xp.sqrt(1 - a * a)),
    "atan": (lambda xp, a: xp.arctan(a), lambda xp, a, y: 1 / (1 + a * a)),
    "square": (lambda xp, a: a * a, lambda xp, a, y: 2 * a),
    "reciprocal": (lambda xp, a: 1 / a, lambda xp, a, y: -y * y),
    "rsqrt": (lambda xp, a: 1 / xp.sqrt(a), lambda xp, a, y: -0.5 * y * y * y),
    "expm1": (lambda xp, a: xp.expm1(a), lambda xp, a, y: y + 1),
    "exp2": (lambda xp, a: xp.exp2(a), lambda xp, a, y: y * np.log(2)),
    "log2": (lambda xp, a: xp.log2(a), lambda xp, a, y: 1 / (a * np.log(2))),
    "erf": (lambda xp, a: _erf(a), lambda xp, a, y: (2 / math.sqrt(math.pi)) * xp.exp(-a * a)),
    "sign": (lambda xp, a: xp.sign(a), None),
    "floor": (lambda xp, a: xp.floor(a), None),
    "ceil": (lambda xp, a: xp.ceil(a), None),
    "round": (lambda xp, a: xp.round(a), None),  # halves to even, as torch.round
    "trunc": (lambda xp, a: xp.trunc(a), None),
    "asinh": (lambda xp, a: xp.arcsinh(a), lambda xp, a, y: 1 / xp.sqrt(a * a + 1)),
    "acosh": (lambda xp, a: xp.arccosh(a), lambda xp, a, y: 1 / xp.sqrt(a * a - 1)),
    "atanh": (lambda xp, a: xp.arctanh(a), lambda xp, a, y: 1 / (1 - a * a)),
}


_erf_host = np.vectorize(math.erf, otypes=[np.float64])


def _erf(a):
    """erf elementwise (NumPy has none): math.erf on the host, exact to float64."""
    out = _erf_host(to_numpy(a)).astype(a.dtype)
    return out if isinstance(a, np.ndarray) else to_device(out, "cuda")


class Unary(Function):
    """One elementwise function of the UNARY table."""

    def forward(self, a, name):
        f, self.df = UNARY[name]
        with np.errstate(divide="ignore", invalid="ignore"):  # log2(0), 1/0: -inf, inf as in PyTorch
            out = f(self.xp, a).astype(a.dtype, copy=False)
        self.save(a, out)
        return out

    def backward(self, g):
        a, out = self.saved
        if self.df is None:
            return self.xp.zeros_like(g)
        with np.errstate(divide="ignore", invalid="ignore"):
            return g * self.df(self.xp, a, out)


class Maximum(Function):
    """Elementwise maximum of two arrays; a tie gives each input half the gradient, as in PyTorch."""

    pick = "maximum"

    def forward(self, a, b):
        self.save(a, b)
        return getattr(self.xp, self.pick)(a, b)

    def backward(self, g):
        a, b = self.saved
        first = (a > b) if self.pick == "maximum" else (a < b)
        share = self.xp.where(a == b, 0.5, first.astype(g.dtype)).astype(g.dtype)
        return g * share, g * (1 - share)


class Minimum(Maximum):
    pick = "minimum"


class Clamp(Function):
    def forward(self, a, lo, hi):
        self.save(a, lo, hi)  # array bounds are positional, so they are saved as copies
        return self.xp.clip(a, lo, hi)

    def backward(self, g):
        a, lo, hi = self.saved
        inside = self.xp.ones(a.shape, dtype=bool)
        if lo is not None:
            inside &= a >= lo
        if hi is not None:
            inside &= a <= hi
        return g * inside, None, None


class Where(Function):
    """a where cond (a bool array or Tensor, saved so that a later change to it is caught) else b."""

    def forward(self, a, b, cond):
        self.save(cond)
        return self.xp.where(cond, a, b)

    def backward(self, g):
        cond, = self.saved
        zero = self.xp.zeros((), dtype=g.dtype)
        return (self.xp.where(cond, g, zero) if self.needs_input_grad[0] else None,
                self.xp.where(cond, zero, g) if self.needs_input_grad[1] else None, None)


class Cast(Function):
    """A dtype conversion; recorded only between float dtypes (an integer result is not differentiable)."""

    def forward(self, a, dtype):
        self.in_dtype = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return g.astype(self.in_dtype)


class ToDevice(Function):
    """A copy on another device; the gradient is copied back."""

    def forward(self, a, device):
        self.out_device = device
        return to_device(a, device)

    def backward(self, g):
        return to_device(g, self.device)


class Clone(Function):
    def forward(self, a):
        return a.copy()

    def backward(self, g):
        return g


# --- shape ---------------------------------------------------------------------------
class Reshape(Function):
    is_view = True

    def forward(self, a, shape):
        self.in_shape = a.shape
        return a.reshape(shape)

    def backward(self, g):
        return g.reshape(self.in_shape)


class Permute(Function):
    is_view = True

    def forward(self, a, axes):
        self.axes = axes
        return self.xp.transpose(a, axes)

    def backward(self, g):
        return self.xp.transpose(g, tuple(int(i) for i in np.argsort(self.axes)))


class Expand(Function):
    is_view = True

    def forward(self, a, shape):
        return self.xp.broadcast_to(a, shape)

    def backward(self, g):
        return g  # the engine sums it back to the input's shape


def _is_advanced(index) -> bool:
    """True when the index holds an array (NumPy, or CuPy on "cuda") or a list: advanced indexing."""
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, (np.ndarray, list)) or hasattr(i, "__cuda_array_interface__") for i in items)


def _private_index(index):
    """The index with copies of its arrays and lists: backward must scatter to where forward read."""
    def one(i):
        if isinstance(i, list):
            return copy.deepcopy(i)
        return i.copy() if hasattr(i, "__array_interface__") or hasattr(i, "__cuda_array_interface__") else i
    return tuple(one(i) for i in index) if isinstance(index, tuple) else one(index)


class GetItem(Function):
    is_view = True

    def forward(self, a, index):
        self.index, self.in_shape = _private_index(index), a.shape
        out = a[self.index]
        if isinstance(out, np.generic):  # NumPy copies out one element; torch gives a 0-d view (N[i, j] += 1)
            idx = self.index if isinstance(self.index, tuple) else (self.index,)
            if not any(i is Ellipsis for i in idx):
                out = a[idx + (Ellipsis,)]
        return out

    def backward(self, g):
        gx = self.xp.zeros(self.in_shape, dtype=g.dtype)
        if _is_advanced(self.index):
            self.xp.add.at(gx, self.index, g)  # repeated indices accumulate
        else:
            gx[self.index] = g
        return gx


class Flip(Function):
    is_view = True

    def forward(self, a, axes):
        self.axes = axes
        return self.xp.flip(a, axes)

    def backward(self, g):
        return self.xp.flip(g, self.axes)


class Gather(Function):
    """out[..., i, ...] = a[..., index[..., i, ...], ...] along `axis` (torch.gather); a is already cut
    to the index's extent off that axis. Repeated indices accumulate their gradients."""

    def forward(self, a, index, axis):
        self.save(index)
        self.axis, self.in_shape = axis, a.shape
        return self.xp.take_along_axis(a, index, axis=axis)

    def backward(self, g):
        index, = self.saved
        gx = self.xp.zeros(self.in_shape, dtype=g.dtype)
        where = list(self.xp.ix_(*[self.xp.arange(n) for n in index.shape]))
        where[self.axis] = index
        self.xp.add.at(gx, tuple(where), g)
        return gx, None


def along_axis(xp, index, axis):
    """The advanced index of a[..., index[i, j, ...], ...] (index's value on `axis`, its position on the
    others) for each position of `index`: what torch.scatter writes and torch.gather reads. Built from
    `ix_`, so the same code runs on NumPy and CuPy."""
    where = list(xp.ix_(*[xp.arange(n) for n in index.shape]))
    where[axis] = index
    return tuple(where)


class Scatter(Function):
    """torch.scatter (add=False: out[where] = src) and torch.scatter_add (add=True: out[where] += src) along
    `axis`; src is an array (read where index has an element: its leading corner) or a scalar.

    Gradients as PyTorch's: scatter gives self the output gradient zeroed where src was written and src
    the output gradient gathered at index (every duplicate of an index gets it, as in PyTorch, whichever
    write won); scatter_add gives self the gradient unchanged and src the same gather.
    """

    def forward(self, a, index, src, axis, add):
        self.save(index)
        self.axis, self.add = axis, add
        self.src_shape = src.shape if getattr(src, "ndim", 0) else None  # None for a scalar src (a, index: >= 1-D)
        out = a.copy()
        where = along_axis(self.xp, index, axis)
        part = src if self.src_shape is None else src[tuple(slice(0, n) for n in index.shape)]
        if add:
            self.xp.add.at(out, where, part)
        else:
            out[where] = part
        return out

    def backward(self, g):
        index, = self.saved
        where = along_axis(self.xp, index, self.axis)
        ga = None
        if self.needs_input_grad[0]:
            ga = g
            if not self.add:
                ga = g.copy()
                ga[where] = 0
        gs = None
        if self.src_shape is not None and self.needs_input_grad[2]:
            gs = self.xp.zeros(self.src_shape, dtype=g.dtype)
            gs[tuple(slice(0, n) for n in index.shape)] = g[where]
        return ga, None, gs


class Einsum(Function):
    """torch.einsum on an explicit equation ("ij,jk->ik": no ellipsis, no implicit output; see
    functions.einsum, which rewrites the others to this form). Forward is one xp.einsum.

    Broadcasting: an operand's size-1 axis whose label has a larger size elsewhere is squeezed and its
    label dropped (it does not vary along that label). Backward, for operand k with labels s_k: the
    einsum of the output gradient with the other operands onto the labels of s_k they hold; labels of
    s_k found nowhere else (summed out by forward) are broadcast back, a label repeated in s_k (a
    diagonal, "ii->i") is written onto the diagonal of a zero gradient, and squeezed axes are restored.
    """

    def forward(self, *arrays, inputs, output, sizes):
        self.save(*arrays)
        self.inputs, self.output, self.sizes = inputs, output, sizes
        subs, ops = self._squeezed(arrays)
        out = self.xp.asarray(self.xp.einsum(",".join(subs) + "->" + output, *ops, optimize=True))
        return out.copy() if len(ops) == 1 else out  # one operand: einsum may return a view of it

    def _squeezed(self, arrays):
        subs, ops = [], []
        for sub, a in zip(self.inputs, arrays):
            drop = tuple(i for i, (c, n) in enumerate(zip(sub, a.shape)) if n == 1 and self.sizes[c] != 1)
            subs.append("".join(c for i, c in enumerate(sub) if i not in drop))
            ops.append(a.squeeze(drop) if drop else a)
        return subs, ops

    def backward(self, g):
        xp = self.xp
        arrays = self.saved
        subs, ops = self._squeezed(arrays)
        grads = []
        for k, (sub, a) in enumerate(zip(subs, arrays)):
            if not self.needs_input_grad[k]:
                grads.append(None)
                continue
            unique = "".join(dict.fromkeys(sub))
            others = [s for j, s in enumerate(subs) if j != k]
            held = set(self.output).union(*others)
            kept = "".join(c for c in unique if c in held)
            gk = xp.asarray(xp.einsum(",".join([self.output, *others]) + "->" + kept, g,
                                      *[o for j, o in enumerate(ops) if j != k], optimize=True))
            if kept != unique:  # labels only this operand has: forward summed over them
                gk = xp.broadcast_to(gk.reshape([self.sizes[c] if c in kept else 1 for c in unique]),
                                     [self.sizes[c] for c in unique])
            if len(unique) != len(sub):  # a repeated label: the gradient lives on the diagonal
                full = xp.zeros([self.sizes[c] for c in sub], dtype=g.dtype)
                grid = xp.ix_(*[xp.arange(self.sizes[c]) for c in unique])
                full[tuple(grid[unique.index(c)] for c in sub)] = gk
                gk = full
            grads.append(xp.ascontiguousarray(gk.reshape(a.shape)))
        return tuple(grads)


class Pad(Function):
    def forward(self, a, widths, value):
        self.slices = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, a.shape))
        return self.xp.pad(a, widths, constant_values=value)

    def backward(self, g):
        return g[self.slices]


class Concat(Function):
    def forward(self, *arrays, axis):
        self.axis = axis
        self.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return self.xp.concatenate(arrays, axis=axis)

    def backward(self, g):
        return tuple(self.xp.split(g, self.splits.tolist(), axis=self.axis))


# --- reductions ------------------------------------------------------------------------
def _expand_reduced(g, in_shape, axis, keepdims):
    """Broadcast a reduced gradient back over the reduced axes."""
    xp = xp_of(g)
    if axis is not None and not keepdims:
        g = xp.expand_dims(g, axis)
    return xp.broadcast_to(g, in_shape)


class Sum(Function):
    def forward(self, a, axis, keepdims):
        self.in_shape, self.axis, self.keepdims = a.shape, axis, keepdims
        return self.xp.asarray(a.sum(axis=axis, keepdims=keepdims))

    def backward(self, g):
        return _expand_reduced(g, self.in_shape, self.axis, self.keepdims)


class CumSum(Function):
    def forward(self, a, axis):
        self.axis = axis
        return self.xp.cumsum(a, axis=axis, dtype=a.dtype)

    def backward(self, g):  # each input reaches every later output: a reversed cumulative sum
        xp = self.xp
        return xp.flip(xp.cumsum(xp.flip(g, self.axis), axis=self.axis), self.axis)


def _exclusive_cumprod(a, axis):
    """Along `axis`: the product of the elements before each one (1 for the first). Exact with zeros."""
    xp = xp_of(a)
    head = [slice(None)] * a.ndim
    head[axis] = slice(0, a.shape[axis] - 1)
    ones = xp.ones(a.shape[:axis] + (1,) + a.shape[axis + 1:], dtype=a.dtype)
    return xp.concatenate([ones, xp.cumprod(a[tuple(head)], axis=axis)], axis=axis)


class Prod(Function):
    """The product along one axis; each element's gradient is the product of the others (exact with zeros)."""

    def forward(self, a, axis, keepdims):
        self.save(a)
        self.axis, self.keepdims = axis, keepdims
        return self.xp.asarray(a.prod(axis=axis, keepdims=keepdims))

    def backward(self, g):
        a, = self.saved
        xp, ax = self.xp, self.axis
        others = _exclusive_cumprod(a, ax) * xp.flip(_exclusive_cumprod(xp.flip(a, ax), ax), ax)
        return _expand_reduced(g, a.shape, (ax,), self.keepdims) * others


class CumProd(Function):
    """out_j = a_0 ... a_j along `axis`. The gradient of a_i is (a_0 ... a_{i-1}) T_i with
    T_i = g_i + a_{i+1} T_{i+1}: a backward recurrence, exact where a holds zeros (no division)."""

    def forward(self, a, axis):
        self.save(a)
        self.axis = axis
        return self.xp.cumprod(a, axis=axis, dtype=a.dtype)

    def backward(self, g):
        a, = self.saved
        xp, ax = self.xp, self.axis
        a_m, g_m = xp.moveaxis(a, ax, 0), xp.moveaxis(g, ax, 0)
        if a_m.shape[0] == 0:  # nothing along the axis: an empty gradient
            return xp.zeros_like(a)
        t = xp.empty_like(g_m)
        t[-1] = g_m[-1]
        for i in range(a_m.shape[0] - 2, -1, -1):
            t[i] = g_m[i] + a_m[i + 1] * t[i + 1]
        return xp.moveaxis(t, 0, ax) * _exclusive_cumprod(a, ax)


class Var(Function):
    def forward(self, a, axis, keepdims, correction):
        n = a.size if axis is None else int(np.prod([a.shape[i] for i in axis]))
        self.axis, self.keepdims = axis, keepdims
        self.centered = a - a.mean(axis=axis, keepdims=True) if n else a
        # no degrees of freedom left (one element with correction 1, or none): divided by 0, as PyTorch,
        # so the value is inf, or NaN where the data are constant
        self.scale = 1.0 / (n - correction) if n > correction else math.inf
        with np.errstate(invalid="ignore"):  # 0 * inf: NaN, wanted
            return self.xp.asarray((self.centered ** 2).sum(axis=axis, keepdims=keepdims) * self.scale, dtype=a.dtype)

    def backward(self, g):
        g = _expand_reduced(g, self.centered.shape, self.axis, self.keepdims)
        with np.errstate(invalid="ignore"):
            return g * (2 * self.scale) * self.centered


class Std(Var):
    def forward(self, a, axis, keepdims, correction):
        self.out = self.xp.sqrt(super().forward(a, axis, keepdims, correction))
        return self.out

    def backward(self, g):
        with np.errstate(divide="ignore", invalid="ignore"):
            g = self.xp.where(self.out > 0, g / (2 * self.out), 0)
        return super().backward(g)


class Norm2(Function):
    """sqrt(sum(a^2)) over axes; the gradient a / norm is 0 where the norm is 0, as in PyTorch."""

    def forward(self, a, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims
        self.out = self.xp.sqrt((a * a).sum(axis=axis, keepdims=True))
        self.save(a)
        out = self.out if keepdims else (self.out.reshape(()) if axis is None else self.out.squeeze(axis))
        return self.xp.asarray(out)

    def backward(self, g):
        a = self.saved[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = self.xp.where(self.out > 0, 1 / self.out, 0)
        return _expand_reduced(g, a.shape, self.axis, self.keepdims) * (a * scale)


class Max(Function):
    """Max over axes; the gradient is shared equally between tied maxima."""

    reduce = "max"

    def forward(self, a, axis, keepdims):
        if a.size == 0:
            raise ValueError(f"{self.reduce} of an empty tensor of shape {a.shape}")
        self.axis, self.keepdims = axis, keepdims
        out = getattr(a, self.reduce)(axis=axis, keepdims=True)
        mask = a == out
        self.weights = mask / mask.sum(axis=axis, keepdims=True)
        return self.xp.asarray(out if keepdims else (out.reshape(()) if axis is None else out.squeeze(axis)))

    def backward(self, g):
        return _expand_reduced(g, self.weights.shape, self.axis, self.keepdims) * self.weights


class Min(Max):
    """Min over axes (its own reduction, not -max(-x): that would refuse bool tensors)."""

    reduce = "min"


def _stable_lse(a, axis):
    xp = xp_of(a)
    m = a.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    return xp.log(xp.exp(a - m).sum(axis=axis, keepdims=True)) + m


class LogSumExp(Function):
    def forward(self, a, axis, keepdims):
        lse = _stable_lse(a, axis)
        self.save(a)
        self.lse, self.axis, self.keepdims = lse, axis, keepdims
        return lse if keepdims else (lse.reshape(()) if axis is None else lse.squeeze(axis))

    def backward(self, g):
        a = self.saved[0]
        return _expand_reduced(g, a.shape, self.axis, self.keepdims) * self.xp.exp(a - self.lse)


class Softmax(Function):
    def forward(self, a, axis):
        e = self.xp.exp(a - a.max(axis=axis, keepdims=True))
        out = e / e.sum(axis=axis, keepdims=True)
        self.save(out)
        self.axis = axis
        return out

    def backward(self, g):
        s = self.saved[0]
        return s * (g - (g * s).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    def forward(self, a, axis):
        out = a - _stable_lse(a, axis)
        self.save(out)
        self.axis = axis
        return out

    def backward(self, g):
        return g - self.xp.exp(self.saved[0]) * g.sum(axis=self.axis, keepdims=True)


# --- heavy primitives: dispatched to the backend ------------------------------------------
class Matmul(Function):
    def forward(self, a, b):
        self.save(a, b)
        return get_backend(self.device).matmul(a, b)

    def backward(self, g):
        a, b = self.saved
        be = get_backend(self.device)
        ga = be.matmul(g, self.xp.swapaxes(b, -1, -2)) if self.needs_input_grad[0] else None
        gb = be.matmul(self.xp.swapaxes(a, -1, -2), g) if self.needs_input_grad[1] else None
        return ga, gb


class Linear(Function):
    """y = x @ W^T + b for x (..., in), W (out, in): one graph node instead of three (transpose, matmul, add)."""

    def forward(self, x, w, b):
        self.save(x, w)
        y = get_backend(self.device).matmul(x, w.T)
        if b is not None:
            y += b
        self.has_bias = b is not None
        return y

    def backward(self, g):
        x, w = self.saved
        be = get_backend(self.device)
        gx = be.matmul(g, w) if self.needs_input_grad[0] else None
        gw = gb = None
        if self.needs_input_grad[1]:
            g2, x2 = g.reshape(-1, g.shape[-1]), x.reshape(-1, x.shape[-1])
            gw = be.matmul(g2.T, x2)
        if self.has_bias and self.needs_input_grad[2]:
            gb = g.reshape(-1, g.shape[-1]).sum(axis=0)
        return gx, gw, gb


class Conv2d(Function):
    def forward(self, x, w, b, stride, padding, dilation, groups):
        self.save(x, w)
        self.params = (stride, padding, dilation, groups)
        self.has_bias = b is not None
        return get_backend(self.device).conv2d(x, w, b, stride, padding, dilation, groups)

    def backward(self, g):
        x, w = self.saved
        be = get_backend(self.device)
        gx = be.conv2d_grad_input(g, w, x.shape, *self.params) if self.needs_input_grad[0] else None
        gw = be.conv2d_grad_weight(g, x, w.shape, *self.params) if self.needs_input_grad[1] else None
        gb = g.sum(axis=(0, 2, 3)) if self.has_bias and self.needs_input_grad[2] else None
        return gx, gw, gb


class MaxPool2d(Function):
    def forward(self, x, kernel, stride, padding):
        y, self.argmax = get_backend(self.device).max_pool2d(x, kernel, stride, padding)
        self.in_shape = x.shape
        return y

    def backward(self, g):
        return get_backend(self.device).max_pool2d_grad(g, self.argmax, self.in_shape)


class AvgPool2d(Function):
    def forward(self, x, kernel, stride, padding, count_include_pad):
        self.in_shape = x.shape
        self.params = (kernel, stride, padding, count_include_pad)
        return get_backend(self.device).avg_pool2d(x, *self.params)

    def backward(self, g):
        return get_backend(self.device).avg_pool2d_grad(g, self.in_shape, *self.params)


class BatchNorm(Function):
    """Batch normalisation over axis 1. In training, running statistics are updated in place."""

    def forward(self, x, gamma, beta, running_mean, running_var, training, momentum, eps):
        be = get_backend(self.device)
        self.training, self.has_affine = training, gamma is not None
        if training:
            y, mean, var = be.batch_norm_train(x, gamma, beta, eps)
            if running_mean is not None:
                self.written = (3, 4)  # the running statistics change in place: apply bumps their versions
                m = x.size // x.shape[1]
                running_mean *= 1 - momentum
                running_mean += momentum * mean
                running_var *= 1 - momentum
                running_var += momentum * var * (m / (m - 1))
        else:
            mean, var = running_mean, running_var
            y = be.batch_norm_eval(x, mean, var, gamma, beta, eps)
        self.mean, self.invstd = mean.copy(), 1.0 / self.xp.sqrt(var + eps)
        self.save(x, gamma)
        return y

    def backward(self, g):
        x, gamma = self.saved
        gx, ggamma, gbeta = get_backend(self.device).batch_norm_grad(g, x, self.mean, self.invstd, gamma, self.training)
        return gx, ggamma, gbeta


class LayerNorm(Function):
    def forward(self, x, gamma, beta, ndim, eps):
        y, self.mean, self.invstd = get_backend(self.device).layer_norm(x, ndim, gamma, beta, eps)
        self.ndim = ndim
        self.save(x, gamma)
        return y

    def backward(self, g):
        x, gamma = self.saved
        return get_backend(self.device).layer_norm_grad(g, x, self.mean, self.invstd, gamma, self.ndim)


class Dropout(Function):
    """Inverted dropout: zero with probability p, scale survivors by 1/(1-p)."""

    def forward(self, x, p):
        scale = x.dtype.type(1.0 / (1.0 - p) if p < 1 else 0)
        if self.device == "cpu":
            keep = get_rng().random(x.shape) >= p
            self.mask = keep.astype(x.dtype) * scale
        else:  # drawn on the GPU by a Numba kernel, seeded from the global generator
            from .backend.cuda_numba import dropout_mask
            self.mask = dropout_mask(x.shape, p, scale, seed=int(get_rng().integers(2**63)), xp=self.xp)
        return x * self.mask

    def backward(self, g):
        return g * self.mask


class CrossEntropy(Function):
    """Fused log-softmax + negative log-likelihood of class indices, reduced by 'mean', 'sum' or 'none'."""

    def forward(self, logits, target, label_smoothing, reduction):
        loss, self.probs = get_backend(self.device).cross_entropy(logits, target, label_smoothing)
        self.save(target)  # the class indices are read again by backward
        self.smoothing, self.reduction = label_smoothing, reduction
        if reduction == "none":
            return loss
        total = loss.sum(dtype=loss.dtype)
        return total / loss.dtype.type(max(len(loss), 1)) if reduction == "mean" else total

    def backward(self, g):
        n = self.probs.shape[0]
        if self.reduction != "none":  # a scalar gradient, shared by every sample
            g = self.xp.full(n, 1 / n if self.reduction == "mean" else 1, dtype=self.probs.dtype) * g
        return get_backend(self.device).cross_entropy_grad(g, self.probs, self.saved[0], self.smoothing), None


class BCEWithLogits(Function):
    """Elementwise max(x, 0) - x*y + log(1 + exp(-|x|)): finite for any logit."""

    def forward(self, x, y):
        self.save(x, y)
        return self.xp.maximum(x, 0) - x * y + self.xp.log1p(self.xp.exp(-self.xp.abs(x)))

    def backward(self, g):
        x, y = self.saved
        gx = g * (0.5 * (1 + self.xp.tanh(0.5 * x)) - y) if self.needs_input_grad[0] else None
        gy = -g * x if self.needs_input_grad[1] else None
        return gx, gy


class BinaryCrossEntropy(Function):
    """Elementwise -[y log p + (1 - y) log(1 - p)] with logs clamped at -100 (PyTorch's convention).

    The gradient in p is (p - y) / max(p (1 - p), 1e-12), finite even for saturated p of 0 or 1.
    """

    def forward(self, p, y):
        with np.errstate(divide="ignore"):
            log_p = self.xp.maximum(self.xp.log(p), -100)
            log_1mp = self.xp.maximum(self.xp.log1p(-p), -100)
        self.save(p, y)
        self.logs = (log_p, log_1mp)
        return -(y * log_p + (1 - y) * log_1mp)

    def backward(self, g):
        p, y = self.saved
        gp = g * (p - y) / self.xp.maximum(p * (1 - p), 1e-12) if self.needs_input_grad[0] else None
        gy = g * (self.logs[1] - self.logs[0]) if self.needs_input_grad[1] else None
        return gp, gy


# --- transposed convolution, built from the conv2d primitives ------------------------------------
class ConvTranspose2d(Function):
    """Transposed convolution, the adjoint of conv2d in its input; weight (C_in, C_out/groups, kh, kw).

    The three conv2d primitives swap roles: the forward is conv2d_grad_input (x plays the output
    gradient), the input gradient is conv2d, and the weight gradient is conv2d_grad_weight with x and
    the output gradient swapped. An output_padding of at least the stride (allowed while it stays
    below the dilation) makes conv2d over the output yield extra rows/columns: x gets that many zero
    rows/columns appended, which add nothing, so that every primitive sees consistent shapes.
    """

    def forward(self, x, w, b, stride, padding, output_padding, dilation, groups, out_hw):
        self.in_hw = x.shape[2:]
        extra = [op // s for op, s in zip(output_padding, stride)]
        if any(extra):
            x = self.xp.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
        self.save(x, w)
        self.params = (stride, padding, dilation, groups)
        self.has_bias = b is not None
        y_shape = (x.shape[0], w.shape[1] * groups) + tuple(out_hw)
        y = get_backend(self.device).conv2d_grad_input(x, w, y_shape, *self.params)
        if b is not None:
            y = y + b.reshape(1, -1, 1, 1)
        return y

    def backward(self, g):
        x, w = self.saved
        be = get_backend(self.device)
        h, wd = self.in_hw
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gx = be.conv2d(g, w, None, *self.params)[:, :, :h, :wd]
        if self.needs_input_grad[1]:
            gw = be.conv2d_grad_weight(x, g, w.shape, *self.params)
        if self.has_bias and self.needs_input_grad[2]:
            gb = g.sum(axis=(0, 2, 3))
        return gx, gw, gb


# --- resampling (upsample / interpolate) ------------------------------------------------------
def nearest_indices(n_in: int, n_out: int, scale_factor=None) -> np.ndarray:
    """Source index of each output index under PyTorch's "nearest" rule.

    src = min(floor(dst * r), n_in - 1) in float32, with r = 1 / scale_factor when a scale factor
    was given, else n_in / n_out. As in PyTorch, an unchanged size is copied and an exactly doubled
    one takes dst // 2, whatever the scale factor.
    """
    if n_out == n_in:
        return np.arange(n_out)
    if n_out == 2 * n_in:
        return np.arange(n_out) // 2
    r = np.float32(1.0 / scale_factor) if scale_factor else np.float32(n_in) / np.float32(n_out)
    src = np.floor(np.arange(n_out, dtype=np.float32) * r).astype(np.int64)
    return np.minimum(src, n_in - 1)


def nearest_exact_indices(n_in: int, n_out: int, scale_factor=None) -> np.ndarray:
    """Source index of each output index under PyTorch's "nearest-exact" rule (pixel centres):
    src = min(floor((dst + 0.5) * r), n_in - 1) in float32, r as in `nearest_indices`."""
    r = np.float32(1.0 / scale_factor) if scale_factor else np.float32(n_in) / np.float32(n_out)
    src = np.floor((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * r).astype(np.int64)
    return np.minimum(src, n_in - 1)


def linear_taps(n_in: int, n_out: int, align_corners: bool, scale_factor=None, dtype=np.float64):
    """Linear interpolation along one axis: (i0, i1, w0, w1), output k = w0[k] x[i0[k]] + w1[k] x[i1[k]].

    PyTorch's source coordinate: align_corners=True maps the corner pixels onto each other,
    src = dst (n_in - 1) / (n_out - 1); otherwise pixel centres, src = (dst + 0.5) r - 0.5 clamped
    at 0, with r = 1 / scale_factor when given, else n_in / n_out. As in PyTorch, an axis whose size
    does not change is copied whatever the scale factor.
    """
    dtype = np.dtype(dtype)
    if n_out == n_in:
        idx = np.arange(n_out)
        return idx, idx, np.ones(n_out, dtype=dtype), np.zeros(n_out, dtype=dtype)
    dst = np.arange(n_out, dtype=dtype)
    if align_corners:
        r = dtype.type(n_in - 1) / dtype.type(n_out - 1) if n_out > 1 else dtype.type(0)
        src = dst * r
    else:
        r = dtype.type(1.0 / scale_factor) if scale_factor else dtype.type(n_in) / dtype.type(n_out)
        src = np.maximum(r * (dst + dtype.type(0.5)) - dtype.type(0.5), 0)
    # PyTorch floors in float32 and clamps the weight to [0, 1]
    i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), n_in - 1)
    w1 = np.clip(src - i0, 0, 1).astype(dtype)
    i1 = i0 + (i0 < n_in - 1)
    return i0, i1, (1 - w1).astype(dtype), w1


def _take(a, idx, axis, weight=None):
    """a gathered at `idx` along `axis`, optionally scaled by a per-index weight."""
    out = xp_of(a).take(a, idx, axis=axis)
    if weight is not None:
        out = out * weight.reshape((-1,) + (1,) * (a.ndim - 1 - axis))
    return out


def _scatter_add(g, idx, n_in, axis, weight=None):
    """Adjoint of `_take`: out[j] = sum over k with idx[k] == j of weight[k] * g[k] along `axis`.

    idx is non-decreasing, so each j owns a contiguous run k = start[j], ..., start[j] + count[j] - 1.
    The sum is taken run offset by run offset (r = 0, 1, ...: one gather per offset, as many as the
    longest run, e.g. 2 for a 2x upsampling), left to right like a plain loop over each run, with the
    same array calls on NumPy and CuPy. (Not `add.reduceat`: CuPy forms it as differences of a
    cumulative sum along the whole axis, which loses precision to cancellation.) The run table is
    computed on the host from the (host) index table.
    """
    xp = xp_of(g)
    if weight is not None:
        g = g * weight.reshape((-1,) + (1,) * (g.ndim - 1 - axis))
    idx = to_numpy(idx)
    counts = np.bincount(idx, minlength=n_in)
    starts = np.searchsorted(idx, np.arange(n_in))
    column = (-1,) + (1,) * (g.ndim - 1 - axis)
    zero = xp.zeros((), dtype=g.dtype)
    out_shape = list(g.shape)
    out_shape[axis] = n_in
    out = xp.zeros(out_shape, dtype=g.dtype)
    for r in range(int(counts.max(initial=0))):
        live = counts > r  # the sources j whose run has an element at offset r
        k = xp.asarray(np.where(live, starts + r, 0))
        out = out + xp.where(xp.asarray(live.reshape(column)), xp.take(g, k, axis=axis), zero)
    return out


class Interpolate2d(Function):
    """Resize the last two axes of NCHW input: mode "nearest", "nearest-exact" or "bilinear" (PyTorch's
    index rules).

    Both modes are separable: the width axis is resampled, then the height axis. The gradient is the
    transpose: a scatter-add of the output gradient (times the interpolation weights) back onto the
    source pixels, height axis first.
    """

    def forward(self, x, size, mode, align_corners, scale_factors):
        self.in_hw, self.mode = x.shape[2:], mode
        if mode in ("nearest", "nearest-exact"):
            index = nearest_indices if mode == "nearest" else nearest_exact_indices
            self.taps = [self._on_device(index(n, m, s)) for n, m, s in zip(x.shape[2:], size, scale_factors)]
            return self.xp.ascontiguousarray(_take(_take(x, self.taps[1][0], 3), self.taps[0][0], 2))
        self.taps = [self._on_device(*linear_taps(n, m, align_corners, s, x.dtype))
                     for n, m, s in zip(x.shape[2:], size, scale_factors)]
        (h0, h1, a0, a1), (w0, w1, b0, b1) = self.taps
        t = _take(x, w0, 3, b0) + _take(x, w1, 3, b1)
        return _take(t, h0, 2, a0) + _take(t, h1, 2, a1)

    def _on_device(self, *tables):
        """The (host-computed) index and weight tables, on this op's device."""
        return tuple(t if self.device == "cpu" else to_device(t, self.device) for t in tables)

    def backward(self, g):
        h, w = self.in_hw
        if self.mode in ("nearest", "nearest-exact"):
            (ih,), (iw,) = self.taps
            return _scatter_add(_scatter_add(g, ih, h, 2), iw, w, 3)
        (h0, h1, a0, a1), (w0, w1, b0, b1) = self.taps
        gt = _scatter_add(g, h0, h, 2, a0) + _scatter_add(g, h1, h, 2, a1)
        return _scatter_add(gt, w0, w, 3, b0) + _scatter_add(gt, w1, w, 3, b1)


# --- segmentation losses -------------------------------------------------------------------
def _sigmoid_pair(x):
    """(sigmoid(x), sigmoid(-x)), each accurate in its own tail (no cancellation in 1 - s)."""
    xp = xp_of(x)
    e = xp.exp(-xp.abs(x))
    big, small = 1 / (1 + e), e / (1 + e)
    return xp.where(x >= 0, big, small), xp.where(x >= 0, small, big)


class SigmoidFocalLoss(Function):
    """Elementwise binary focal loss on logits (torchvision's sigmoid_focal_loss before reduction):

        alpha_t * ce * (1 - p_t) ** gamma,  ce = BCE-with-logits, p_t = p t + (1 - p)(1 - t),
        alpha_t = alpha t + (1 - alpha)(1 - t) (alpha=None: 1), p = sigmoid(x).

    1 - p_t is formed as p (1 - t) + (1 - p) t from two tail-accurate sigmoids, so saturated logits
    (+-100) give finite values and gradients for every gamma >= 0.
    """

    def forward(self, x, t, alpha, gamma):
        p, q = _sigmoid_pair(x)                        # p = sigmoid(x), q = 1 - p
        one_m_pt = p * (1 - t) + q * t
        ce = self.xp.maximum(x, 0) - x * t + self.xp.log1p(self.xp.exp(-self.xp.abs(x)))
        alpha_t = 1.0 if alpha is None else alpha * t + (1 - alpha) * (1 - t)
        mod = one_m_pt ** gamma
        self.save(x, t)
        self.parts = (p, q, one_m_pt, ce, alpha_t, mod, gamma)
        self.alpha = alpha
        return (alpha_t * ce * mod).astype(x.dtype, copy=False)

    def backward(self, g):
        x, t = self.saved
        p, q, one_m_pt, ce, alpha_t, mod, gamma = self.parts
        gx = None
        if self.needs_input_grad[0]:
            # d(1 - p_t)/dx = p q (1 - 2t); p q / (1 - p_t) lies in [0, 1], so form it as a ratio
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = self.xp.where(one_m_pt > 0, p * q / one_m_pt, 0)
            dmod = gamma * mod * ratio * (1 - 2 * t)   # = d((1 - p_t) ** gamma) / dx
            gx = g * alpha_t * ((p - t) * mod + ce * dmod)
        gt = None
        if self.needs_input_grad[1]:
            # d/dt: alpha_t' = 2 alpha - 1, ce' = -x, (1 - p_t)' = q - p; ce (1 - p_t)^(gamma - 1) is
            # formed as (ce / (1 - p_t)) (1 - p_t)^gamma, finite where (1 - p_t) underflows
            with np.errstate(divide="ignore", invalid="ignore"):
                ce_ratio = self.xp.where(one_m_pt > 0, ce / one_m_pt, 0)
            ce_dmod = gamma * mod * ce_ratio * (q - p)   # = ce * d((1 - p_t) ** gamma) / dt
            dalpha = 0.0 if self.alpha is None else 2 * self.alpha - 1
            gt = g * (dalpha * ce * mod + alpha_t * (-x * mod + ce_dmod))
        return gx, gt


# --- cumulative log-sum-exp and copysign -------------------------------------------------------
class LogCumSumExp(Function):
    """log(cumsum(exp(a))) along `axis`, without overflow (logaddexp accumulated); -inf inputs stay exact."""

    def forward(self, a, axis):
        self.axis = axis
        with np.errstate(invalid="ignore"):  # NaN inputs give NaN, as in PyTorch
            out = np.logaddexp.accumulate(to_numpy(a), axis=axis)
        out = to_device(out, self.device).astype(a.dtype, copy=False)
        self.save(a, out)
        return out

    def backward(self, g):
        """d out_i / d a_j = exp(a_j - out_i) for j <= i, so grad_j = sum_{i >= j} g_i exp(a_j - out_i),
        summed in the log domain (a reversed logcumsumexp) for the positive and the negative parts of g,
        as PyTorch does: no exp() of a large difference ever overflows ([0, 100] has gradient [1, 1])."""
        a, out, g = (to_numpy(v) for v in (*self.saved, g))
        axis = self.axis

        def tail(part):  # log(sum_{i >= j} part_i exp(-out_i)) + a_j, then exp
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.flip(np.logaddexp.accumulate(np.flip(np.log(part) - out, axis), axis=axis), axis)
                return np.exp(v + a)
        grad = np.where(np.isneginf(a), 0, tail(np.maximum(g, 0)) - tail(np.maximum(-g, 0)))
        return to_device(grad.astype(g.dtype, copy=False), self.device)


class CopySign(Function):
    """|a| with the sign of b (elementwise, broadcasting); b's gradient is zero, as in PyTorch."""

    def forward(self, a, b):
        out = self.xp.copysign(a, b)
        self.save(a, out)
        return out

    def backward(self, g):
        a, out = self.saved
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = self.xp.where(a == 0, 0, self.xp.sign(out) * self.xp.sign(a))
        return (g * ratio.astype(g.dtype, copy=False),
                self.xp.zeros_like(g) if self.needs_input_grad[1] else None)  # zeros, as PyTorch's
