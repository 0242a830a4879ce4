"""Every differentiable op against central finite differences (tinygrad_course.testing.gradcheck).

float64 inputs, gradcheck's default eps/atol/rtol (1e-6 / 1e-5 / 1e-3; see DESIGN.md, Testing), on
every available backend (the `backend` fixture). Two layers of coverage:

* `test_gradcheck_hypothesis`: hypothesis draws shapes, parameters and values for each op in `SPECS`,
  including non-contiguous (permuted / sliced / negative-stride) inputs. Values are kept away from
  kinks (abs/relu at 0, clamp bounds, ties of max/min/max-pool) by `strategies.separate`.
* `test_gradcheck_fixed`: one hand-written example per op, so coverage does not depend on hypothesis;
  `test_gradcheck_fixed_on_cuda_kernels` runs them with our CUDA kernels (the `cuda_backend` fixture:
  the CPU emulation, and a real GPU when there is one), as does `test_gradcheck_hypothesis_heavy_on_cuda_kernels`
  for the drawn examples of the ops that have kernels.

Tensors stay small (<= ~60 elements, tiny convolutions) so the CI profile runs in seconds per op.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tinygrad_course as tg
from tinygrad_course.functions import einsum
from tinygrad_course.nn import functional as F
from tinygrad_course.testing import gradcheck

from resample_strategies import conv_transpose2d_configs, interpolate_configs
from strategies import (WRITEABLE_LAYOUTS, arrays, axis_args, broadcast_shapes, conv2d_configs,
                        normalise_axes, pool_configs, separate, shapes)

SPECS = {}     # name -> function(draw) -> (fn, inputs): hypothesis-drawn example
HEAVY = set()  # ops whose gradcheck costs more per example (convolution, pooling, normalisation)


def spec(name, heavy=False):
    def register(f):
        SPECS[name] = f
        if heavy:
            HEAVY.add(name)
        return f
    return register


def leaf(draw, shape, lo=-2.0, hi=2.0, **kw):
    """A float64 leaf requiring grad, drawn in any writeable layout (gradcheck perturbs it in place)."""
    return tg.Tensor(draw(arrays(tuple(shape), lo, hi, layouts=WRITEABLE_LAYOUTS, **kw)), requires_grad=True)


def const(draw, shape, lo=-2.0, hi=2.0, **kw):
    """Like `leaf` but without requires_grad (an input gradcheck leaves alone)."""
    return tg.Tensor(draw(arrays(tuple(shape), lo, hi, **kw)))


def small(max_size=60, **kw):
    return shapes(max_size=max_size, **kw)


# --- elementwise arithmetic ----------------------------------------------------------------------
@spec("add")
def _add(draw):
    (sa, sb), _ = draw(broadcast_shapes())
    return (lambda a, b: a + b), [leaf(draw, sa), leaf(draw, sb)]


@spec("sub")
def _sub(draw):
    (sa, sb), _ = draw(broadcast_shapes())
    return (lambda a, b: a - b), [leaf(draw, sa), leaf(draw, sb)]


@spec("mul")
def _mul(draw):
    (sa, sb), _ = draw(broadcast_shapes())
    return (lambda a, b: a * b), [leaf(draw, sa), leaf(draw, sb)]


@spec("div")
def _div(draw):
    (sa, sb), _ = draw(broadcast_shapes())
    return (lambda a, b: a / b), [leaf(draw, sa), leaf(draw, sb, away=(0.0,), gap=0.5)]


@spec("same_tensor_twice")
def _same_tensor(draw):
    # the same leaf reaches the output along several paths: gradients must accumulate
    x = leaf(draw, draw(small()))
    return (lambda x: x * x + x.exp() * x - x / (1 + x * x)), [x]


SCALAR_OPS = {
    "x+s": lambda x, s: x + s, "s+x": lambda x, s: s + x, "x-s": lambda x, s: x - s,
    "s-x": lambda x, s: s - x, "x*s": lambda x, s: x * s, "s*x": lambda x, s: s * x,
    "x/s": lambda x, s: x / s, "s/x": lambda x, s: s / x,
}


@spec("scalar_binary")
def _scalar_binary(draw):
    name = draw(st.sampled_from(sorted(SCALAR_OPS)))
    s = draw(st.sampled_from([-2.5, -1.0, 0.5, 3.0]))
    return (lambda x: SCALAR_OPS[name](x, s)), [leaf(draw, draw(small()), away=(0.0,), gap=0.5)]


@spec("pow_scalar")
def _pow_scalar(draw):
    p = draw(st.sampled_from([2, 3, -1, -2, 0, 1, 0.5, 1.5, -0.5, 2.7]))
    if float(p).is_integer():
        x = leaf(draw, draw(small()), away=(0.0,), gap=0.3)  # any sign; integer powers are smooth
    else:
        x = leaf(draw, draw(small()), 0.3, 2.0)
    return (lambda x: x ** p), [x]


@spec("pow_tensor")
def _pow_tensor(draw):
    (sa, sb), _ = draw(broadcast_shapes())
    return (lambda a, b: a ** b), [leaf(draw, sa, 0.3, 2.0), leaf(draw, sb, -2.0, 2.0)]


@spec("rpow")
def _rpow(draw):
    base = draw(st.sampled_from([0.5, 2.0, math.e, 3.7]))
    return (lambda x: base ** x), [leaf(draw, draw(small()))]


# --- elementwise functions -------------------------------------------------------------------------
UNARY = {
    "neg": (lambda x: -x, dict()),
    "exp": (lambda x: x.exp(), dict()),
    "log": (lambda x: x.log(), dict(lo=0.2, hi=3.0)),
    "sqrt": (lambda x: x.sqrt(), dict(lo=0.2, hi=3.0)),
    "abs": (lambda x: x.abs(), dict(away=(0.0,))),
    "tanh": (lambda x: x.tanh(), dict()),
    "F.tanh": (lambda x: F.tanh(x), dict()),
    "sigmoid": (lambda x: x.sigmoid(), dict(lo=-4.0, hi=4.0)),
    "F.sigmoid": (lambda x: F.sigmoid(x), dict(lo=-4.0, hi=4.0)),
    "relu": (lambda x: x.relu(), dict(away=(0.0,))),
    "F.relu": (lambda x: F.relu(x), dict(away=(0.0,))),
    "clone": (lambda x: x.clone(), dict()),
}


def _unary_spec(name, fn, kw):
    @spec(name)
    def _s(draw):
        return fn, [leaf(draw, draw(small()), **kw)]


for _name, (_fn, _kw) in UNARY.items():
    _unary_spec(_name, _fn, _kw)


@spec("leaky_relu")
def _leaky_relu(draw):
    slope = draw(st.sampled_from([0.01, 0.2, 0.0, 1.5, -0.3]))
    use_f = draw(st.booleans())
    fn = (lambda x: F.leaky_relu(x, slope)) if use_f else (lambda x: x.leaky_relu(slope))
    return fn, [leaf(draw, draw(small()), away=(0.0,))]


@spec("prelu_channel")
def _prelu_channel(draw):
    shape = draw(shapes(min_dims=2, max_dims=4, max_size=48))
    return F.prelu, [leaf(draw, shape, away=(0.0,)), leaf(draw, (shape[1],), -0.5, 1.0)]


@spec("prelu_single")
def _prelu_single(draw):
    shape = draw(shapes(min_dims=1, max_dims=4, max_size=48))
    return F.prelu, [leaf(draw, shape, away=(0.0,)), leaf(draw, (1,), -0.5, 1.0)]


@spec("clamp")
def _clamp(draw):
    kind = draw(st.sampled_from(["both", "min", "max"]))
    lo, hi = draw(st.sampled_from([-1.0, -0.3, 0.0])), draw(st.sampled_from([0.2, 0.5, 1.5]))
    points = {"both": (lo, hi), "min": (lo,), "max": (hi,)}[kind]
    x = leaf(draw, draw(small()), away=points)
    method = draw(st.sampled_from(["clamp", "clip"]))
    if kind == "both":
        return (lambda x: getattr(x, method)(lo, hi)), [x]
    if kind == "min":
        return (lambda x: getattr(x, method)(min=lo)), [x]
    return (lambda x: getattr(x, method)(max=hi)), [x]


@spec("where")
def _where(draw):
    (sc, sa, sb), _ = draw(broadcast_shapes(num_shapes=3))
    cond = draw(arrays(sc, 0.0, 1.0, layouts=("contiguous",))) > 0.5
    a, b = leaf(draw, sa), leaf(draw, sb)
    form = draw(st.sampled_from(["tensors", "scalar_b", "cond_tensor"]))
    if form == "scalar_b":
        return (lambda a: tg.where(cond, a, 0.5)), [a]
    if form == "cond_tensor":
        return (lambda a, b: tg.where(tg.Tensor(cond), a, b)), [a, b]
    return (lambda a, b: tg.where(cond, a, b)), [a, b]


@spec("astype_roundtrip")
def _astype(draw):
    x = leaf(draw, draw(small()))
    form = draw(st.sampled_from(["astype", "float_double", "to"]))
    if form == "astype":
        fn = lambda x: x.astype("float32").astype(np.float64) * 1.5  # noqa: E731
    elif form == "float_double":
        fn = lambda x: x.float().double() * 1.5  # noqa: E731
    else:
        fn = lambda x: x.to(dtype="float32").to(dtype="float64") * 1.5  # noqa: E731
    return fn, [x]


# float32 keeps ~7 significant digits, so central differences with eps 1e-6 through a float32 cast are
# rounding noise; the cast round trip is checked with eps 2**-10 (error ~ ulp32 / eps ~ 6e-5 < rtol).
EPS = {"astype_roundtrip": 2.0 ** -10}


# --- matmul ---------------------------------------------------------------------------------------
@spec("matmul")
def _matmul(draw):
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    form = draw(st.sampled_from(["1d@1d", "1d@2d", "2d@1d", "2d@2d", "batched", "1d@batched", "batched@1d"]))
    (ba, bb), _ = draw(broadcast_shapes(max_dims=2, max_side=3, max_size=6))
    shape_a = {"1d@1d": (k,), "1d@2d": (k,), "2d@1d": (m, k), "2d@2d": (m, k), "batched": ba + (m, k),
               "1d@batched": (k,), "batched@1d": ba + (m, k)}[form]
    shape_b = {"1d@1d": (k,), "1d@2d": (k, n), "2d@1d": (k,), "2d@2d": (k, n), "batched": bb + (k, n),
               "1d@batched": bb + (k, n), "batched@1d": (k,)}[form]
    op = draw(st.sampled_from(["@", "matmul"]))
    fn = (lambda a, b: a @ b) if op == "@" else (lambda a, b: a.matmul(b))
    return fn, [leaf(draw, shape_a), leaf(draw, shape_b)]


@spec("linear")
def _linear(draw):
    lead = draw(shapes(max_dims=2, max_side=3))
    fin, fout = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    inputs = [leaf(draw, lead + (fin,)), leaf(draw, (fout, fin))]
    if draw(st.booleans()):
        inputs.append(leaf(draw, (fout,)))
    return F.linear, inputs


# --- shape ops -----------------------------------------------------------------------------------
def _factor(n):
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


@spec("reshape")
def _reshape(draw):
    shape = draw(small(max_size=48))
    size = math.prod(shape)
    factors = draw(st.permutations(_factor(size)))
    ndim = draw(st.integers(1, max(1, len(factors)) + 1))
    dims = [1] * ndim
    for f in factors:
        dims[draw(st.integers(0, ndim - 1))] *= f
    if draw(st.booleans()):
        dims[draw(st.integers(0, ndim - 1))] = -1
    new = tuple(dims)
    form = draw(st.sampled_from(["reshape", "view", "reshape_varargs"]))
    if form == "reshape_varargs":
        return (lambda x: x.reshape(*new) * 1.0), [leaf(draw, shape)]
    return (lambda x: getattr(x, form)(new) * 1.0), [leaf(draw, shape)]


@spec("permute")
def _permute(draw):
    shape = draw(small(min_dims=1))
    perm = draw(st.permutations(range(len(shape))))
    perm = tuple(p - len(shape) if draw(st.booleans()) else p for p in perm)  # negative axes too
    form = draw(st.sampled_from(["args", "tuple"]))
    if form == "args":
        return (lambda x: x.permute(*perm)), [leaf(draw, shape)]
    return (lambda x: x.permute(perm)), [leaf(draw, shape)]


@spec("transpose")
def _transpose(draw):
    shape = draw(small(min_dims=1))
    d0, d1 = draw(st.integers(-len(shape), len(shape) - 1)), draw(st.integers(-len(shape), len(shape) - 1))
    return (lambda x: x.transpose(d0, d1)), [leaf(draw, shape)]


@spec("T")
def _T(draw):
    return (lambda x: x.T), [leaf(draw, draw(small()))]


@spec("flatten")
def _flatten(draw):
    shape = draw(small())
    nd = max(len(shape), 1)
    s = draw(st.integers(-nd, nd - 1))
    e = draw(st.integers(s % nd, nd - 1))
    if draw(st.booleans()):
        e -= nd
    if draw(st.booleans()):
        return (lambda x: x.flatten()), [leaf(draw, shape)]
    return (lambda x: x.flatten(s, e)), [leaf(draw, shape)]


@spec("squeeze")
def _squeeze(draw):
    shape = tuple(1 if draw(st.booleans()) else s for s in draw(small(min_dims=1)))
    nd = len(shape)
    axis = draw(st.one_of(st.none(), st.integers(-nd, nd - 1),
                          st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True).map(tuple)))
    return (lambda x: x.squeeze(axis)), [leaf(draw, shape)]


@spec("unsqueeze")
def _unsqueeze(draw):
    shape = draw(small())
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    return (lambda x: x.unsqueeze(axis)), [leaf(draw, shape)]


@spec("expand")
def _expand(draw):
    (sa, _), out = draw(broadcast_shapes(max_size=48))
    form = draw(st.sampled_from(["expand", "expand_varargs", "broadcast_to"]))
    if form == "expand_varargs" and out:
        return (lambda x: x.expand(*out)), [leaf(draw, sa)]
    if form == "broadcast_to":
        return (lambda x: x.broadcast_to(out)), [leaf(draw, sa)]
    return (lambda x: x.expand(out)), [leaf(draw, sa)]


@spec("concat")
def _concat(draw):
    shape = draw(shapes(min_dims=1, max_size=20))
    nd = len(shape)
    axis = draw(st.integers(-nd, nd - 1))
    ins = []
    for _ in range(draw(st.integers(1, 3))):
        s = list(shape)
        s[axis] = draw(st.integers(1, 3))
        ins.append(leaf(draw, s))
    fn = tg.cat if draw(st.booleans()) else tg.concat
    return (lambda *ts: fn(list(ts), axis=axis)), ins


@spec("stack")
def _stack(draw):
    shape = draw(shapes(max_size=20))
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    ins = [leaf(draw, shape) for _ in range(draw(st.integers(1, 3)))]
    return (lambda *ts: tg.stack(ts, axis=axis)), ins


@st.composite
def basic_indices(draw, shape):
    """A basic index: ints (negative too), slices with any start/stop/step (negative too), None, Ellipsis."""
    items = []
    for n in shape:
        kind = draw(st.sampled_from(["int", "slice", "slice", "full"]))
        if kind == "int":
            items.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            ends = st.one_of(st.none(), st.integers(-n - 1, n + 1))
            items.append(slice(draw(ends), draw(ends), draw(st.sampled_from([None, 1, 2, 3, -1, -2]))))
        else:
            items.append(slice(None))
    if draw(st.booleans()):  # replace a run of items by Ellipsis (the items after it index the last axes)
        i = draw(st.integers(0, len(items)))
        j = draw(st.integers(i, len(items)))
        items = items[:i] + [Ellipsis] + items[j:]
    else:
        items = items[:draw(st.integers(0, len(items)))]  # trailing axes are implicitly full
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), None)
    if len(items) == 1 and draw(st.booleans()):
        return items[0]
    return tuple(items)


@spec("getitem_basic")
def _getitem_basic(draw):
    shape = draw(small(min_dims=1))
    index = draw(basic_indices(shape))
    assume(np.empty(shape)[index].size > 0)
    return (lambda x: x[index]), [leaf(draw, shape)]


@spec("getitem_advanced")
def _getitem_advanced(draw):
    shape = draw(small(min_dims=1, max_size=40))
    nd = len(shape)

    def idx(n, max_dims=2):
        ishape = draw(shapes(min_dims=1, max_dims=max_dims, max_side=4, max_size=8))
        a = draw(st.lists(st.integers(-n, n - 1), min_size=math.prod(ishape), max_size=math.prod(ishape)))
        a = np.array(a, dtype=np.int64).reshape(ishape)
        if a.size >= 2:
            a.flat[-1] = a.flat[0]  # at least one repeated index: gradients must accumulate
        return a

    forms = ["first", "list", "tensor", "ellipsis_last"] + (["second", "pair", "mixed"] if nd >= 2 else [])
    form = draw(st.sampled_from(forms))
    if form == "first":
        index = idx(shape[0])
    elif form == "list":
        index = idx(shape[0], max_dims=1).tolist()
    elif form == "tensor":
        index = tg.Tensor(idx(shape[0]))
    elif form == "ellipsis_last":
        index = (Ellipsis, idx(shape[-1]))
    elif form == "second":
        index = (slice(None), idx(shape[1]))
    elif form == "pair":  # two index arrays broadcast against each other
        i0 = idx(shape[0], max_dims=1)
        i1 = idx(shape[1], max_dims=1)[:1] if draw(st.booleans()) else idx(shape[1], max_dims=1)
        if i0.size != i1.size and i0.size != 1 and i1.size != 1:
            i1 = i1[:1]
        index = (i0, i1)
    else:  # advanced index followed by a slice with a step
        index = (idx(shape[0]), slice(None, None, draw(st.sampled_from([1, -1, 2]))))
    return (lambda x: x[index]), [leaf(draw, shape)]


@spec("pad")
def _pad(draw):
    shape = draw(small(min_dims=1, max_size=30))
    k = draw(st.integers(1, len(shape)))
    pad = tuple(draw(st.integers(0, 2)) for _ in range(2 * k))
    value = draw(st.sampled_from([0.0, 1.5, -2.0]))
    return (lambda x: x.pad(pad, value=value)), [leaf(draw, shape)]


# --- reductions -----------------------------------------------------------------------------------
def _reduced_count(shape, axis):
    return math.prod(shape[a] for a in normalise_axes(axis, len(shape)))


@spec("sum")
def _sum(draw):
    shape = draw(small())
    axis, keepdims = draw(axis_args(len(shape))), draw(st.booleans())
    return (lambda x: x.sum(axis=axis, keepdims=keepdims)), [leaf(draw, shape)]


@spec("mean")
def _mean(draw):
    shape = draw(small())
    axis, keepdims = draw(axis_args(len(shape))), draw(st.booleans())
    return (lambda x: x.mean(axis=axis, keepdims=keepdims)), [leaf(draw, shape)]


@spec("var")
def _var(draw):
    shape = draw(small())
    axis, keepdims = draw(axis_args(len(shape))), draw(st.booleans())
    correction = draw(st.integers(0, 2))
    assume(_reduced_count(shape, axis) > correction)
    return (lambda x: x.var(axis=axis, keepdims=keepdims, correction=correction)), [leaf(draw, shape)]


@spec("std")
def _std(draw):
    shape = draw(small())
    axis, keepdims = draw(axis_args(len(shape))), draw(st.booleans())
    correction = draw(st.integers(0, 2))
    n = _reduced_count(shape, axis)
    assume(n > correction and n >= 2)  # std of one value is 0, where sqrt is not differentiable
    # distinct values keep every group's variance well above 0
    return (lambda x: x.std(axis=axis, keepdims=keepdims, correction=correction)), \
        [leaf(draw, shape, distinct_gap=0.05)]


@spec("max")
def _max(draw):
    shape = draw(small())
    axis, keepdims = draw(axis_args(len(shape))), draw(st.booleans())
    return (lambda x: x.amax(axis=axis, keepdims=keepdims)), [leaf(draw, shape, distinct_gap=1e-3)]


@spec("min")
def _min(draw):
    shape = draw(small())
    axis, keepdims = draw(axis_args(len(shape))), draw(st.booleans())
    return (lambda x: x.amin(axis=axis, keepdims=keepdims)), [leaf(draw, shape, distinct_gap=1e-3)]


@spec("logsumexp")
def _logsumexp(draw):
    shape = draw(small(min_dims=1))
    axis, keepdims = draw(axis_args(len(shape))), draw(st.booleans())
    return (lambda x: x.logsumexp(axis=axis, keepdims=keepdims)), [leaf(draw, shape, -4.0, 4.0)]


@spec("softmax")
def _softmax(draw):
    shape = draw(small(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    f = draw(st.sampled_from([F.softmax, tg.Tensor.softmax]))
    return (lambda x: f(x, axis)), [leaf(draw, shape, -4.0, 4.0)]


@spec("log_softmax")
def _log_softmax(draw):
    shape = draw(small(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    f = draw(st.sampled_from([F.log_softmax, tg.Tensor.log_softmax]))
    return (lambda x: f(x, axis)), [leaf(draw, shape, -4.0, 4.0)]


# --- convolution, pooling, normalisation, dropout ----------------------------------------------
def _pair_or_int(draw, pair):
    return pair[0] if pair[0] == pair[1] and draw(st.booleans()) else pair


@spec("conv2d", heavy=True)
def _conv2d(draw):
    c = draw(conv2d_configs())
    inputs = [leaf(draw, c["x_shape"]), leaf(draw, c["w_shape"], -1.0, 1.0)]
    if c["bias"]:
        inputs.append(leaf(draw, (c["w_shape"][0],)))
    kw = dict(stride=_pair_or_int(draw, c["stride"]), padding=_pair_or_int(draw, c["padding"]),
              dilation=_pair_or_int(draw, c["dilation"]), groups=c["groups"])
    return (lambda x, w, b=None: F.conv2d(x, w, b, **kw)), inputs


def _pool_kw(draw, c):
    stride = None if c["stride"] == c["kernel"] and draw(st.booleans()) else _pair_or_int(draw, c["stride"])
    return dict(kernel_size=_pair_or_int(draw, c["kernel"]), stride=stride,
                padding=_pair_or_int(draw, c["padding"]))


@spec("max_pool2d", heavy=True)
def _max_pool2d(draw):
    c = draw(pool_configs())
    kw = _pool_kw(draw, c)
    return (lambda x: F.max_pool2d(x, **kw)), [leaf(draw, c["x_shape"], distinct_gap=1e-3)]


@spec("avg_pool2d", heavy=True)
def _avg_pool2d(draw):
    c = draw(pool_configs())
    kw = _pool_kw(draw, c)
    kw["count_include_pad"] = draw(st.booleans())
    return (lambda x: F.avg_pool2d(x, **kw)), [leaf(draw, c["x_shape"])]


def _bn_shape(draw):
    nd = draw(st.sampled_from([2, 3, 4]))
    shape = draw(shapes(min_dims=nd, max_dims=nd, max_side=4, max_size=36))
    assume(math.prod(shape) // shape[1] >= 2)
    return shape


@spec("batch_norm_train", heavy=True)
def _batch_norm_train(draw):
    shape = _bn_shape(draw)
    c = shape[1]
    x = leaf(draw, shape, distinct_gap=0.05)  # per-channel variance well above 0
    affine, stats = draw(st.booleans()), draw(st.booleans())
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1]))
    rm = tg.Tensor(np.zeros(c)) if stats else None
    rv = tg.Tensor(np.ones(c)) if stats else None
    if affine:
        return (lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=True, eps=eps)), \
            [x, leaf(draw, (c,), 0.5, 2.0), leaf(draw, (c,))]
    return (lambda x: F.batch_norm(x, rm, rv, training=True, eps=eps)), [x]


@spec("batch_norm_eval", heavy=True)
def _batch_norm_eval(draw):
    nd = draw(st.sampled_from([2, 3, 4]))
    shape = draw(shapes(min_dims=nd, max_dims=nd, max_side=4, max_size=36))
    c = shape[1]
    rm, rv = const(draw, (c,)), const(draw, (c,), 0.3, 2.0)
    eps = draw(st.sampled_from([1e-5, 0.1]))
    if draw(st.booleans()):
        return (lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False, eps=eps)), \
            [leaf(draw, shape), leaf(draw, (c,)), leaf(draw, (c,))]
    return (lambda x: F.batch_norm(x, rm, rv, training=False, eps=eps)), [leaf(draw, shape)]


@spec("layer_norm", heavy=True)
def _layer_norm(draw):
    nd = draw(st.integers(1, 3))
    norm = draw(shapes(min_dims=nd, max_dims=nd, max_side=4, max_size=24))
    lead = draw(shapes(max_dims=2, max_side=3, max_size=max(1, 48 // math.prod(norm))))
    x = leaf(draw, lead + norm, distinct_gap=0.05)
    eps = draw(st.sampled_from([1e-5, 1e-2]))
    ns = norm[0] if nd == 1 and draw(st.booleans()) else norm  # int or tuple normalized_shape
    if draw(st.booleans()):
        return (lambda x, w, b: F.layer_norm(x, ns, w, b, eps=eps)), [x, leaf(draw, norm), leaf(draw, norm)]
    return (lambda x: F.layer_norm(x, ns, eps=eps)), [x]


@spec("dropout")
def _dropout(draw):
    p = draw(st.sampled_from([0.0, 0.2, 0.5, 0.9]))
    training = draw(st.booleans())
    fn = lambda x: (tg.manual_seed(1), F.dropout(x, p, training=training) * 1.0)[1]  # noqa: E731
    return fn, [leaf(draw, draw(small()))]


# --- losses ---------------------------------------------------------------------------------------
REDUCTIONS = st.sampled_from(["mean", "sum", "none"])


def _class_targets(draw, n, c):
    return tg.Tensor(np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64))


@spec("cross_entropy_indices")
def _cross_entropy_indices(draw):
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    target = _class_targets(draw, n, c)
    ls = draw(st.sampled_from([0.0, 0.1, 0.37, 1.0]))
    red = draw(REDUCTIONS)
    return (lambda x: F.cross_entropy(x, target, label_smoothing=ls, reduction=red)), [leaf(draw, (n, c), -4, 4)]


@spec("cross_entropy_probs")
def _cross_entropy_probs(draw):
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    ls = draw(st.sampled_from([0.0, 0.2]))
    red = draw(REDUCTIONS)
    p = draw(arrays((n, c), 0.01, 1.0))
    target = tg.Tensor(p / p.sum(axis=1, keepdims=True), requires_grad=draw(st.booleans()))
    inputs = [leaf(draw, (n, c), -4, 4), target]
    return (lambda x, t: F.cross_entropy(x, t, label_smoothing=ls, reduction=red)), inputs


@spec("nll_loss")
def _nll_loss(draw):
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    target, red = _class_targets(draw, n, c), draw(REDUCTIONS)
    if draw(st.booleans()):
        return (lambda x: F.nll_loss(x, target, reduction=red)), [leaf(draw, (n, c))]
    return (lambda x: F.nll_loss(F.log_softmax(x, -1), target, reduction=red)), [leaf(draw, (n, c))]


@spec("bce_with_logits")
def _bce_logits(draw):
    shape, red = draw(small()), draw(REDUCTIONS)
    return (lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction=red)), \
        [leaf(draw, shape, -6.0, 6.0, away=(0.0,)), leaf(draw, shape, 0.0, 1.0)]


@spec("bce")
def _bce(draw):
    shape, red = draw(small()), draw(REDUCTIONS)
    return (lambda p, y: F.binary_cross_entropy(p, y, reduction=red)), \
        [leaf(draw, shape, 0.05, 0.95), leaf(draw, shape, 0.0, 1.0)]


@spec("mse_loss")
def _mse(draw):
    shape, red = draw(small()), draw(REDUCTIONS)
    return (lambda a, b: F.mse_loss(a, b, reduction=red)), [leaf(draw, shape), leaf(draw, shape)]


# --- transposed convolution, resampling, segmentation losses -----------------------------------------
@spec("conv_transpose2d", heavy=True)
def _conv_transpose2d(draw):
    c = draw(conv_transpose2d_configs())
    inputs = [leaf(draw, c["x_shape"]), leaf(draw, c["w_shape"], -1.0, 1.0)]
    if c["bias"]:
        inputs.append(leaf(draw, (c["w_shape"][1] * c["groups"],)))
    kw = dict(stride=_pair_or_int(draw, c["stride"]), padding=_pair_or_int(draw, c["padding"]),
              output_padding=_pair_or_int(draw, c["output_padding"]), dilation=_pair_or_int(draw, c["dilation"]),
              groups=c["groups"])
    return (lambda x, w, b=None: F.conv_transpose2d(x, w, b, **kw)), inputs


@spec("interpolate")
def _interpolate(draw):
    c = draw(interpolate_configs())
    fn = F.interpolate if draw(st.booleans()) else F.upsample
    return (lambda x: fn(x, mode=c["mode"], align_corners=c["align_corners"], **c["kwargs"])), \
        [leaf(draw, c["x_shape"])]


def _seg_shape(draw):
    return draw(shapes(min_dims=1, max_dims=4, max_side=4, max_size=36))


@spec("dice_loss")
def _dice_loss(draw):
    shape, red = _seg_shape(draw), draw(REDUCTIONS)
    smooth = draw(st.sampled_from([0.0, 1e-3, 1.0]))
    return (lambda x, t: F.dice_loss(x, t, smooth=smooth, reduction=red)), \
        [leaf(draw, shape, -4, 4), leaf(draw, shape, 0, 1)]  # a soft target, differentiated too


@spec("jaccard_loss")
def _jaccard_loss(draw):
    shape, red = _seg_shape(draw), draw(REDUCTIONS)
    smooth = draw(st.sampled_from([0.0, 1e-3, 1.0]))
    mask = np.round(draw(arrays(shape, 0.0, 1.0)))  # a hard 0/1 mask, not differentiated
    return (lambda x: F.jaccard_loss(x, tg.Tensor(mask), smooth=smooth, reduction=red)), [leaf(draw, shape, -4, 4)]


@spec("focal_loss")
def _focal_loss(draw):
    shape, red = _seg_shape(draw), draw(REDUCTIONS)
    alpha, gamma = draw(st.sampled_from([0.25, None, 0.9, 0.0])), draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.3]))
    target = leaf(draw, shape, 0, 1, integral=draw(st.booleans()))
    return (lambda x, t: F.focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=red)), \
        [leaf(draw, shape, -6, 6), target]


# --- scatter / einsum (torch.scatter, torch.scatter_add, torch.einsum) -------------------------------
def _scatter_case(draw, add):
    """(self shape, dim, index, src shape): scatter's index is a distinct position per write along dim (with
    repeats only one write wins, so finite differences would not see PyTorch's gradient); scatter_add's repeats."""
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=4, max_size=24))
    d = draw(st.integers(0, len(shape) - 1))
    ishape = [draw(st.integers(1, n)) for n in shape]
    if add:
        ishape[d] = draw(st.integers(1, shape[d] + 2))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    if add:
        index = rng.integers(0, shape[d], ishape)
    else:
        full = [n if k == d else i for k, (i, n) in enumerate(zip(ishape, shape))]
        index = np.take(rng.random(full).argsort(axis=d), np.arange(ishape[d]), axis=d)
    src_shape = tuple(i + draw(st.integers(0, 1)) for i in ishape)
    return tuple(shape), d, tg.Tensor(index.astype(np.int64)), src_shape


@spec("scatter")
def _scatter(draw):
    shape, d, index, src_shape = _scatter_case(draw, add=False)
    if draw(st.booleans()):
        value = draw(st.sampled_from([0.0, 1.0, -2.5]))
        return (lambda x: x.scatter(d, index, value=value)), [leaf(draw, shape)]
    return (lambda x, s: x.scatter(d, index, s)), [leaf(draw, shape), leaf(draw, src_shape)]


@spec("scatter_add")
def _scatter_add(draw):
    shape, d, index, src_shape = _scatter_case(draw, add=True)
    return (lambda x, s: x.scatter_add(d, index, s)), [leaf(draw, shape), leaf(draw, src_shape)]


_EINSUM_EQUATIONS = ["ij,jk->ik", "bij,bjk->bik", "i,i->", "i,j->ij", "ij->ji", "ij->", "...ij,...jk->...ik",
                     "bhqd,bhkd->bhqk", "ii->i", "ii->", "ij,jk", "bii,bi->bi", "ij,ij->i", "i...->...", "ab,cd->"]


@spec("einsum")
def _einsum(draw):
    eq = draw(st.sampled_from(_EINSUM_EQUATIONS))
    terms = eq.split("->")[0].split(",")
    size = {c: draw(st.integers(1, 3)) for c in sorted(set(eq) - set(",->."))}
    batch = [draw(st.integers(1, 2)) for _ in range(draw(st.integers(0, 2)))]

    def shape(term):  # "..." gets the trailing dims of `batch`, some of them 1 (broadcast)
        lead = batch[len(batch) - draw(st.integers(0, len(batch))):] if "..." in term else []
        lead = [1 if draw(st.booleans()) else n for n in lead]
        return tuple(lead) + tuple(size[c] for c in term.replace("...", ""))

    return (lambda *ops: einsum(eq, *ops)), [leaf(draw, shape(t)) for t in terms]


# --- PyTorch's pooling options, conv1d, more activations, weighted BCE -------------------------------
@spec("max_pool2d_options", heavy=True)
def _max_pool2d_options(draw):
    c = draw(pool_configs())
    kw = _pool_kw(draw, c)
    kw.update(dilation=draw(st.sampled_from([1, 2, (1, 2)])), ceil_mode=draw(st.booleans()))
    assume(min(F.pool_output_size(c["x_shape"][2 + i], c["kernel"][i], c["stride"][i], c["padding"][i],
                                  kw["dilation"] if isinstance(kw["dilation"], int) else kw["dilation"][i],
                                  kw["ceil_mode"]) for i in range(2)) >= 1)
    return (lambda x: F.max_pool2d(x, return_indices=True, **kw)[0]), [leaf(draw, c["x_shape"], distinct_gap=1e-3)]


@spec("avg_pool2d_options", heavy=True)
def _avg_pool2d_options(draw):
    c = draw(pool_configs())
    kw = _pool_kw(draw, c)
    kw.update(ceil_mode=draw(st.booleans()), count_include_pad=draw(st.booleans()),
              divisor_override=draw(st.sampled_from([None, 1, 5])))
    return (lambda x: F.avg_pool2d(x, **kw)), [leaf(draw, c["x_shape"])]


@spec("adaptive_pool2d", heavy=True)
def _adaptive_pool2d(draw):
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    size = (draw(st.integers(1, 4)), draw(st.one_of(st.none(), st.integers(1, 4))))
    pool = F.adaptive_avg_pool2d if draw(st.booleans()) else F.adaptive_max_pool2d
    return (lambda x: pool(x, size)), [leaf(draw, (1, 2, h, w), distinct_gap=1e-3)]


@spec("conv1d", heavy=True)
def _conv1d(draw):
    groups, k = draw(st.sampled_from([1, 2])), draw(st.integers(1, 3))
    stride, dilation = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    padding = "same" if stride == 1 and draw(st.booleans()) else draw(st.integers(0, 2))
    length = dilation * (k - 1) + 1 + draw(st.integers(0, 3))
    inputs = [leaf(draw, (2, 2 * groups, length)), leaf(draw, (2, 2, k), -1.0, 1.0)]
    if draw(st.booleans()):
        inputs.append(leaf(draw, (2,)))
    return (lambda x, w, b=None: F.conv1d(x, w, b, stride, padding, dilation, groups)), inputs


ACTIVATIONS = {  # kinks (hardswish at +-3, selu at 0, the shrinks at +-lambd) are kept away from
    "mish": (F.mish, dict()), "hardswish": (F.hardswish, dict(lo=-4.0, hi=4.0, away=(-3.0, 3.0))),
    "hardsigmoid": (F.hardsigmoid, dict(lo=-4.0, hi=4.0, away=(-3.0, 3.0))), "selu": (F.selu, dict(away=(0.0,))),
    "celu": (lambda x: F.celu(x, 0.7), dict()), "softsign": (F.softsign, dict(away=(0.0,))),
    "tanhshrink": (F.tanhshrink, dict()), "threshold": (lambda x: F.threshold(x, 0.3, -1.5), dict(away=(0.3,))),
    "hardshrink": (F.hardshrink, dict(away=(-0.5, 0.5))),
    "softshrink": (lambda x: F.softshrink(x, 0.3), dict(away=(-0.3, 0.3))),
}
for _name, (_fn, _kw) in ACTIVATIONS.items():
    _unary_spec(_name, _fn, _kw)


@spec("glu")
def _glu(draw):
    shape = list(draw(shapes(min_dims=1, max_dims=3, max_side=4, max_size=30)))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    shape[dim] *= 2
    return (lambda x: F.glu(x, dim)), [leaf(draw, shape)]


@spec("bce_weighted")
def _bce_weighted(draw):
    shape, red = draw(shapes(min_dims=1, max_dims=3, max_side=4, max_size=30)), draw(REDUCTIONS)
    weight = const(draw, shape[-1:], 0.1, 2.0) if draw(st.booleans()) else None
    if draw(st.booleans()):
        pos_weight = const(draw, shape[-1:], 0.1, 3.0) if draw(st.booleans()) else None
        return (lambda x, y: F.binary_cross_entropy_with_logits(x, y, weight, red, pos_weight)), \
            [leaf(draw, shape, -6.0, 6.0), leaf(draw, shape, 0.0, 1.0)]
    return (lambda p, y: F.binary_cross_entropy(p, y, weight, red)), \
        [leaf(draw, shape, 0.05, 0.95), leaf(draw, shape, 0.0, 1.0)]


# --- the hypothesis test ---------------------------------------------------------------------------
# --- PyTorch ops for ported scripts (cummax ... scaled_dot_product_attention, recurrent cells) -------
for _name, (_fn, _kw) in {"asinh": (lambda x: x.asinh(), dict()),
                          "acosh": (lambda x: x.acosh(), dict(lo=1.2, hi=3.0)),
                          "atanh": (lambda x: x.atanh(), dict(lo=-0.8, hi=0.8))}.items():
    _unary_spec(_name, _fn, _kw)


def _dim_of(draw, shape):
    return draw(st.integers(-len(shape), len(shape) - 1))


@spec("logcumsumexp")
def _logcumsumexp(draw):
    shape = draw(small(min_dims=1))
    d = _dim_of(draw, shape)
    return (lambda x: x.logcumsumexp(d)), [leaf(draw, shape)]


@spec("cummax_cummin")
def _cummax_cummin(draw):
    shape = draw(small(min_dims=1))
    d, use_max = _dim_of(draw, shape), draw(st.booleans())
    return ((lambda x: x.cummax(d).values) if use_max else (lambda x: x.cummin(d).values),
            [leaf(draw, shape, distinct_gap=1e-3)])


@spec("copysign")
def _copysign(draw):
    shape = draw(small())
    return (lambda a, b: a.copysign(b)), [leaf(draw, shape, away=(0.0,)), const(draw, shape)]


@spec("logaddexp")
def _logaddexp(draw):
    shape = draw(small())
    return (lambda a, b: a.logaddexp(b)), [leaf(draw, shape, -4, 4), leaf(draw, shape, -4, 4)]


@spec("lerp")
def _lerp(draw):
    shape = draw(small())
    return (lambda a, b, w: a.lerp(b, w)), [leaf(draw, shape), leaf(draw, shape), leaf(draw, shape, 0, 1)]


@spec("diagonal")
def _diagonal(draw):
    shape = draw(small(min_dims=2))
    d1 = _dim_of(draw, shape)
    d2 = draw(st.sampled_from([d for d in range(len(shape)) if d != d1 % len(shape)]))
    offset = draw(st.integers(-2, 2))
    return (lambda x: x.diagonal(offset, d1, d2)), [leaf(draw, shape)]


@spec("masked_select")
def _masked_select(draw):
    shape = draw(small())
    mask = tg.tensor(draw(arrays(shape, layouts=("contiguous",))) > 0)
    return (lambda x: x.masked_select(mask)), [leaf(draw, shape)]


@spec("scaled_dot_product_attention")
def _sdpa(draw):
    n, length, source, e = (draw(st.integers(1, 3)) for _ in range(4))
    causal = draw(st.booleans())
    mask = None if causal else const(draw, (length, source))
    return ((lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)),
            [leaf(draw, (n, length, e)), leaf(draw, (n, source, e)), leaf(draw, (1, source, 2))])


@spec("rnn_cell_steps")
def _rnn_cell_steps(draw):
    from tinygrad_course.nn.layers import _gru_step, _lstm_step, _rnn_step
    kind, n, i, h = draw(st.sampled_from(["rnn", "lstm", "gru"])), draw(st.integers(1, 2)), 2, 2
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    ws = [leaf(draw, (gates * h, i), -1, 1), leaf(draw, (gates * h, h), -1, 1), leaf(draw, (gates * h,), -1, 1),
          leaf(draw, (gates * h,), -1, 1)]
    x, h0, c0 = leaf(draw, (n, i)), leaf(draw, (n, h)), leaf(draw, (n, h))
    if kind == "lstm":
        return (lambda x, h, c, *w: tg.concat(list(_lstm_step(x, (h, c), *w)), 1)), [x, h0, c0, *ws]
    step = _rnn_step if kind == "rnn" else _gru_step
    return (lambda x, h, *w: step(x, h, *w)), [x, h0, *ws]


LIGHT_NAMES = sorted(set(SPECS) - HEAVY)
HEAVY_NAMES = sorted(HEAVY)
_N = settings.default.max_examples


def _run(name, fn, inputs):
    assert gradcheck(fn, inputs, eps=EPS.get(name, 1e-6))


@pytest.mark.parametrize("name", LIGHT_NAMES)
@given(data=st.data())
def test_gradcheck_hypothesis(backend, name, data):
    fn, inputs = SPECS[name](data.draw)
    _run(name, fn, inputs)


@pytest.mark.parametrize("name", HEAVY_NAMES)
@settings(max_examples=max(5, (_N * 3) // 4))
@given(data=st.data())
def test_gradcheck_hypothesis_heavy(backend, name, data):
    fn, inputs = SPECS[name](data.draw)
    _run(name, fn, inputs)


@pytest.mark.parametrize("name", HEAVY_NAMES)
@settings(max_examples=max(5, (_N * 3) // 4))
@given(data=st.data())
def test_gradcheck_hypothesis_heavy_on_cuda_kernels(cuda_backend, name, data):
    """The drawn examples of the ops that run our kernels, with our CUDA kernels as the backend."""
    fn, inputs = SPECS[name](data.draw)
    _run(name, fn, inputs)


# --- one fixed example per op --------------------------------------------------------------------
def fixed_leaf(shape, seed, lo=-2.0, hi=2.0, layout="contiguous", **sep):
    """A deterministic float64 leaf; layout "permuted" / "sliced" make a non-contiguous view."""
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    if layout == "permuted" and len(shape) >= 2:
        base = rng.uniform(lo, hi, shape[::-1])
        a = base.transpose(tuple(reversed(range(len(shape)))))
    elif layout == "sliced":
        base = rng.uniform(lo, hi, tuple(2 * s + 1 for s in shape))
        a = base[tuple(slice(None, 0, -2) if i % 2 else slice(1, None, 2) for i in range(len(shape)))]
        a = a[tuple(slice(0, s) for s in shape)]
    else:
        a = rng.uniform(lo, hi, shape)
    a[...] = separate(a, **sep) if sep else a
    assert a.shape == shape
    return tg.Tensor(a, requires_grad=True)


L = fixed_leaf
_CE_T = np.array([2, 0, 2], dtype=np.int64)
_P = np.array([[0.2, 0.3, 0.5, 0.0], [0.1, 0.1, 0.1, 0.7], [0.25, 0.25, 0.25, 0.25]])

FIXED = {
    "add": lambda: (lambda a, b: a + b, [L((2, 1, 3), 1), L((4, 1), 2, layout="sliced")]),
    "sub": lambda: (lambda a, b: a - b, [L((3,), 1), L((2, 3), 2, layout="permuted")]),
    "mul": lambda: (lambda a, b: a * b, [L((2, 3, 1), 1, layout="permuted"), L((3, 4), 2)]),
    "div": lambda: (lambda a, b: a / b, [L((2, 3), 1), L((3,), 2, away=(0.0,), gap=0.5)]),
    "same_tensor_twice": lambda: (lambda x: x * x + x.exp() * x - x / (1 + x * x), [L((3, 2), 3)]),
    "scalar_binary": lambda: (lambda x: 2.0 / x - 3.0 * x + (1 - x) / 4.0, [L((5,), 4, away=(0.0,), gap=0.5)]),
    "pow_scalar": lambda: (lambda x: x ** 3 + x.abs() ** 0.5 + x ** -2, [L((2, 3), 5, away=(0.0,), gap=0.3)]),
    "pow_tensor": lambda: (lambda a, b: a ** b, [L((2, 3), 6, 0.3, 2.0), L((3,), 7)]),
    "rpow": lambda: (lambda x: 2.0 ** x + 0.5 ** x, [L((4,), 8)]),
    "neg": lambda: (lambda x: -x, [L((2, 2), 9)]),
    "exp": lambda: (lambda x: x.exp(), [L((3, 2), 10, layout="permuted")]),
    "log": lambda: (lambda x: x.log(), [L((3, 2), 11, 0.2, 3.0, layout="sliced")]),
    "sqrt": lambda: (lambda x: x.sqrt(), [L((5,), 12, 0.2, 3.0)]),
    "abs": lambda: (lambda x: x.abs(), [L((2, 3), 13, away=(0.0,))]),
    "tanh": lambda: (lambda x: x.tanh(), [L((2, 3), 14)]),
    "F.tanh": lambda: (F.tanh, [L((4,), 15)]),
    "sigmoid": lambda: (lambda x: x.sigmoid(), [L((2, 3), 16, -4, 4)]),
    "F.sigmoid": lambda: (F.sigmoid, [L((4,), 17, -4, 4)]),
    "relu": lambda: (lambda x: x.relu(), [L((3, 3), 18, away=(0.0,))]),
    "F.relu": lambda: (F.relu, [L((5,), 19, away=(0.0,))]),
    "clone": lambda: (lambda x: x.clone() * 2.0, [L((2, 2), 20)]),
    "leaky_relu": lambda: (lambda x: F.leaky_relu(x, 0.2), [L((3, 3), 21, away=(0.0,))]),
    "prelu_channel": lambda: (F.prelu, [L((2, 3, 2), 22, away=(0.0,)), L((3,), 23, -0.5, 1.0)]),
    "prelu_single": lambda: (F.prelu, [L((2, 3), 24, away=(0.0,)), L((1,), 25, -0.5, 1.0)]),
    "clamp": lambda: (lambda x: x.clamp(-0.5, 0.7), [L((4, 3), 26, away=(-0.5, 0.7))]),
    "where": lambda: (lambda a, b: tg.where(np.array([[True], [False]]), a, b), [L((2, 3), 27), L((3,), 28)]),
    "astype_roundtrip": lambda: (lambda x: x.float().double() * 1.5, [L((2, 3), 29)]),
    "matmul": lambda: (lambda a, b: a @ b, [L((2, 1, 3, 4), 30), L((3, 4, 2), 31, layout="permuted")]),
    "linear": lambda: (F.linear, [L((2, 3), 32), L((4, 3), 33), L((4,), 34)]),
    "reshape": lambda: (lambda x: x.reshape(3, -1, 2) * 1.0, [L((2, 3, 2), 35, layout="permuted")]),
    "permute": lambda: (lambda x: x.permute(2, 0, 1), [L((2, 3, 4), 36)]),
    "transpose": lambda: (lambda x: x.transpose(0, -1), [L((2, 3, 4), 37, layout="sliced")]),
    "T": lambda: (lambda x: x.T, [L((2, 3, 4), 38)]),
    "flatten": lambda: (lambda x: x.flatten(1, -1), [L((2, 3, 2), 39)]),
    "squeeze": lambda: (lambda x: x.squeeze(1).unsqueeze(-1), [L((2, 1, 3), 40)]),
    "unsqueeze": lambda: (lambda x: x.unsqueeze(0).unsqueeze(-2), [L((2, 3), 41)]),
    "expand": lambda: (lambda x: x.expand(2, 3, 4), [L((3, 1), 42)]),
    "concat": lambda: (lambda a, b: tg.concat([a, b], axis=-1), [L((2, 3), 43), L((2, 1), 44)]),
    "stack": lambda: (lambda a, b: tg.stack([a, b], axis=1), [L((2, 3), 45), L((2, 3), 46)]),
    "getitem_basic": lambda: (lambda x: x[None, ::-2, ..., 1:], [L((5, 2, 3), 47)]),
    "getitem_advanced": lambda: (lambda x: x[np.array([[0, 2], [2, -1]]), 1:], [L((4, 3), 48)]),
    "pad": lambda: (lambda x: x.pad((1, 2, 0, 1), value=0.5), [L((2, 3), 49)]),
    "sum": lambda: (lambda x: x.sum(axis=(0, -1), keepdims=True), [L((2, 3, 4), 50)]),
    "mean": lambda: (lambda x: x.mean(axis=1), [L((2, 3, 4), 51)]),
    "var": lambda: (lambda x: x.var(axis=-1, correction=0).sum() + x.var(axis=(0, 1)), [L((2, 3, 4), 52)]),
    "std": lambda: (lambda x: x.std(axis=0, keepdims=True), [L((4, 3), 53, distinct_gap=0.05)]),
    "max": lambda: (lambda x: x.max(axis=1).values, [L((3, 4), 54, distinct_gap=1e-3)]),
    "min": lambda: (lambda x: x.min(axis=(0, 2), keepdims=True), [L((2, 3, 2), 55, distinct_gap=1e-3)]),
    "logsumexp": lambda: (lambda x: x.logsumexp(axis=-1), [L((3, 4), 56)]),
    "softmax": lambda: (lambda x: x.softmax(axis=0), [L((3, 4), 57)]),
    "log_softmax": lambda: (lambda x: F.log_softmax(x, -1), [L((3, 4), 58)]),
    "conv2d": lambda: (lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
                       [L((1, 4, 5, 4), 59), L((2, 2, 2, 3), 60, -1, 1), L((2,), 61)]),
    "max_pool2d": lambda: (lambda x: F.max_pool2d(x, 3, stride=2, padding=1),
                           [L((1, 2, 5, 4), 62, distinct_gap=1e-3)]),
    "avg_pool2d": lambda: (lambda x: F.avg_pool2d(x, (3, 2), stride=(2, 3), padding=(1, 1), count_include_pad=False),
                           [L((2, 1, 5, 5), 63)]),
    "batch_norm_train": lambda: (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                                 [L((3, 2, 2, 2), 64, distinct_gap=0.05), L((2,), 65, 0.5, 2), L((2,), 66)]),
    "batch_norm_eval": lambda: (lambda x: F.batch_norm(x, tg.Tensor(np.array([0.1, -0.2])),
                                                       tg.Tensor(np.array([0.5, 2.0])), training=False),
                                [L((3, 2), 67)]),
    "layer_norm": lambda: (lambda x, w, b: F.layer_norm(x, (3, 2), w, b),
                           [L((2, 3, 2), 68, distinct_gap=0.05), L((3, 2), 69), L((3, 2), 70)]),
    "dropout": lambda: (lambda x: (tg.manual_seed(1), F.dropout(x, 0.5))[1], [L((4, 5), 71)]),
    "cross_entropy_indices": lambda: (lambda x: F.cross_entropy(x, tg.Tensor(_CE_T), label_smoothing=0.1),
                                      [L((3, 4), 72)]),
    "cross_entropy_probs": lambda: (lambda x, t: F.cross_entropy(x, t, reduction="sum"),
                                    [L((3, 4), 73), tg.Tensor(_P.copy(), requires_grad=True)]),
    "nll_loss": lambda: (lambda x: F.nll_loss(x, tg.Tensor(_CE_T), reduction="sum"), [L((3, 4), 74)]),
    "bce_with_logits": lambda: (F.binary_cross_entropy_with_logits,
                                [L((2, 3), 75, -6, 6, away=(0.0,)), L((2, 3), 76, 0, 1)]),
    "bce": lambda: (F.binary_cross_entropy, [L((2, 3), 77, 0.05, 0.95), L((2, 3), 78, 0, 1)]),
    "mse_loss": lambda: (lambda a, b: F.mse_loss(a, b, reduction="none"), [L((2, 3), 79), L((2, 3), 80)]),
}

FIXED.update({
    "conv_transpose2d": lambda: (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=(2, 3), padding=(1, 0),
                                                                     output_padding=(1, 2), groups=2, dilation=(1, 2)),
                                 [L((1, 4, 3, 2), 81), L((4, 1, 3, 2), 82, -1, 1, layout="permuted"), L((2,), 83)]),
    "interpolate": lambda: (lambda x: F.interpolate(x, scale_factor=(1.5, 2), mode="bilinear") +
                            F.interpolate(x, size=(4, 5), mode="bilinear", align_corners=True)[:, :, :, :4] +
                            F.upsample(x, scale_factor=(1.5, 2)), [L((1, 2, 3, 2), 84, layout="sliced")]),
    "dice_loss": lambda: (lambda x, t: F.dice_loss(x, t, reduction="none"), [L((2, 1, 3, 2), 85, -3, 3),
                                                                            L((2, 1, 3, 2), 86, 0, 1)]),
    "jaccard_loss": lambda: (lambda x: F.jaccard_loss(x, tg.Tensor(np.array([[1, 0, 1], [0, 0, 0]])), smooth=0.5),
                             [L((2, 3), 87, -3, 3)]),
    "focal_loss": lambda: (lambda x, t: F.focal_loss(x, t, reduction="sum"), [L((2, 3), 88, -5, 5),
                                                                             L((2, 3), 89, 0, 1)]),
})


FIXED.update({
    "scatter": lambda: (lambda x, s: x.scatter(1, tg.Tensor(np.array([[2, 0], [1, 3], [0, 1]])), s) +
                        x.scatter(0, tg.Tensor(np.array([[2, 0, 1, 1]])), value=0.5),
                        [L((3, 4), 90), L((3, 3), 91, layout="permuted")]),
    "scatter_add": lambda: (lambda x, s: x.scatter_add(0, tg.Tensor(np.array([[0, 2, 0], [0, 1, 2], [2, 2, 2]])), s),
                            [L((3, 3), 92), L((3, 4), 93, layout="sliced")]),
    "einsum": lambda: (lambda a, b: einsum("bij,bjk->bik", a, b).sum(-1) + einsum("bii->bi", a[:, :, :3]) +
                       einsum("...j,...j", a[:, :, :2], b[0, :3, 1:3]), [L((2, 3, 4), 94), L((2, 4, 3), 95)]),
})


FIXED.update({
    "max_pool2d_options": lambda: (lambda x: F.max_pool2d(x, 3, 2, 1, dilation=(1, 2), ceil_mode=True,
                                                          return_indices=True)[0].sum(-1) +
                                   F.max_pool2d(x, 2, ceil_mode=True).sum(-1),
                                   [L((1, 2, 5, 5), 96, distinct_gap=1e-3)]),
    "avg_pool2d_options": lambda: (lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False) +
                                   F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, divisor_override=4),
                                   [L((2, 1, 4, 6), 97, layout="sliced")]),
    "adaptive_pool2d": lambda: (lambda x: F.adaptive_max_pool2d(x, (3, None)).sum(-1) +
                                F.adaptive_avg_pool2d(x, 3).sum(-1), [L((1, 2, 5, 4), 98, distinct_gap=1e-3)]),
    "conv1d": lambda: (lambda x, w, b: F.conv1d(x, w, b, 1, "same", 2, 2) + F.conv1d(x, w, b, 1, 1, 2, 2),
                       [L((2, 4, 5), 99), L((2, 2, 2), 100, -1, 1), L((2,), 101)]),
    "mish": lambda: (F.mish, [L((2, 3), 102, -4, 4)]),
    "hardswish": lambda: (F.hardswish, [L((3, 3), 103, -4, 4, away=(-3.0, 3.0))]),
    "hardsigmoid": lambda: (F.hardsigmoid, [L((3, 3), 104, -4, 4, away=(-3.0, 3.0))]),
    "selu": lambda: (F.selu, [L((2, 3), 105, away=(0.0,))]),
    "celu": lambda: (lambda x: F.celu(x, 0.7), [L((2, 3), 106)]),
    "softsign": lambda: (F.softsign, [L((2, 3), 107, away=(0.0,))]),
    "tanhshrink": lambda: (F.tanhshrink, [L((2, 3), 108)]),
    "threshold": lambda: (lambda x: F.threshold(x, 0.3, -1.5), [L((2, 3), 109, away=(0.3,))]),
    "hardshrink": lambda: (F.hardshrink, [L((2, 3), 110, away=(-0.5, 0.5))]),
    "softshrink": lambda: (lambda x: F.softshrink(x, 0.3), [L((2, 3), 111, away=(-0.3, 0.3))]),
    "glu": lambda: (lambda x: tg.concat([F.glu(x, 0).reshape(-1), F.glu(x, dim=-1).reshape(-1)]), [L((2, 4), 112)]),
    "bce_weighted": lambda: (lambda x, p, y: F.binary_cross_entropy_with_logits(
        x, y, tg.Tensor(np.array([0.5, 2.0, 1.0])), "sum", tg.Tensor(np.array([3.0, 0.5, 1.0]))) +
        F.binary_cross_entropy(p, y, tg.Tensor(np.array([[0.5], [2.0]]))),
        [L((2, 3), 113, -6, 6), L((2, 3), 114, 0.05, 0.95), L((2, 3), 115, 0, 1)]),
})


def _cells_fixed():
    """One step of each recurrent cell (the step functions RNN/LSTM/GRU and their cells share) on one x, h, c."""
    from tinygrad_course.nn.layers import _gru_step, _lstm_step, _rnn_step
    x, h, c = L((2, 3), 218), L((2, 2), 219), L((2, 2), 220)
    weights = []
    for gates, seed in ((1, 221), (3, 225), (4, 229)):  # rnn, gru, lstm
        weights += [L((gates * 2, 3), seed, -1, 1), L((gates * 2, 2), seed + 1, -1, 1),
                    L((gates * 2,), seed + 2, -1, 1), L((gates * 2,), seed + 3, -1, 1)]

    def fn(x, h, c, *w):
        return tg.concat([_rnn_step(x, h, *w[:4]), _gru_step(x, h, *w[4:8]), *_lstm_step(x, (h, c), *w[8:])], 1)
    return fn, [x, h, c, *weights]

FIXED.update({
    "asinh": lambda: (lambda x: x.asinh(), [L((2, 3), 201)]),
    "acosh": lambda: (lambda x: x.acosh(), [L((2, 3), 202, 1.2, 3.0)]),
    "atanh": lambda: (lambda x: x.atanh(), [L((2, 3), 203, -0.8, 0.8, layout="sliced")]),
    "logcumsumexp": lambda: (lambda x: x.logcumsumexp(1) + x.logcumsumexp(0), [L((3, 4), 204, -3, 3)]),
    "cummax_cummin": lambda: (lambda x: x.cummax(1).values + x.cummin(-1).values,
                              [L((3, 4), 205, distinct_gap=1e-3, layout="permuted")]),
    "copysign": lambda: (lambda a, b: a.copysign(b), [L((2, 3), 206, away=(0.0,)),
                                                     tg.Tensor(np.array([[-1.0, 2.0, -0.5]]))]),
    "logaddexp": lambda: (lambda a, b: a.logaddexp(b), [L((2, 3), 207, -4, 4), L((1, 3), 208, -4, 4)]),
    "lerp": lambda: (lambda a, b, w: a.lerp(b, w), [L((2, 3), 209), L((2, 3), 210), L((3,), 211, 0, 1)]),
    "diagonal": lambda: (lambda x: tg.concat([x.diagonal().reshape(-1), x.diagonal(1, 2, 0).reshape(-1),
                                              x.diagonal(-1, -1, 1).reshape(-1)]), [L((3, 4, 2), 212)]),
    "masked_select": lambda: (lambda x, m: x.masked_select(m),
                              [L((2, 3), 213), tg.tensor(np.array([True, False, True]))]),
    "scaled_dot_product_attention": lambda: (
        lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, m) +
        F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3),
        [L((2, 3, 4), 214), L((2, 3, 4), 215), L((1, 3, 2), 216),
         tg.Tensor(np.random.default_rng(217).uniform(-1, 1, (3, 3)))]),
    "rnn_cell_steps": _cells_fixed,
})


def test_every_op_has_a_fixed_example():
    assert set(FIXED) == set(SPECS)


@pytest.mark.parametrize("name", sorted(FIXED))
def test_gradcheck_fixed(backend, name):
    fn, inputs = FIXED[name]()
    _run(name, fn, inputs)


@pytest.mark.parametrize("name", sorted(FIXED))
def test_gradcheck_fixed_on_cuda_kernels(cuda_backend, name):
    """The fixed examples once more with our CUDA kernels as the backend (emulated on the CPU, or a GPU)."""
    fn, inputs = FIXED[name]()
    _run(name, fn, inputs)


# ops whose fixed example legitimately involves float64 (a float64 closure constant or an explicit cast)
_NOT_FLOAT32 = {"batch_norm_eval", "astype_roundtrip", "bce_weighted"}  # bce_weighted: float64 weights


@pytest.mark.parametrize("name", sorted(set(FIXED) - _NOT_FLOAT32))
def test_float32_inputs_give_float32_outputs_and_gradients(backend, name):
    fn, inputs = FIXED[name]()
    inputs32 = [tg.Tensor(t.detach().numpy().astype(np.float32), requires_grad=t.requires_grad)
                if isinstance(t, tg.Tensor) and t.dtype == np.float64 else t for t in inputs]
    out = fn(*inputs32)
    assert out.dtype == np.float32, f"{name}: float32 inputs gave a {out.dtype} output"
    out.backward(np.ones(out.shape, dtype=np.float32))
    for i, t in enumerate(inputs32):
        if isinstance(t, tg.Tensor) and t.requires_grad:
            assert t.grad is not None and t.grad.dtype == np.float32 and t.grad.shape == t.shape, (name, i)
