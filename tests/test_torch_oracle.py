"""PyTorch as an external oracle: forward values and gradients of every op equal torch's.

Same float64 inputs on both sides (tinygrad_course may get them as non-contiguous or stride-0 views,
torch gets a contiguous copy); the tinygrad_course output is backpropagated with a random upstream
gradient, torch's with the same one. Tolerances are tight -- rtol 1e-10, atol 1e-12 -- because both
compute the same float64 formulas and differ only in summation order. Dropout cannot match torch's
random masks; its semantics (inverted scaling, identity in eval) are checked directly instead.
Runs on every available backend.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_course as tg
from tinygrad_course.nn import functional as F

from resample_strategies import conv_transpose2d_configs, interpolate_configs
from strategies import ALL_LAYOUTS, arrays, axis_args, broadcast_shapes, conv2d_configs, normalise_axes, \
    pool_configs, shapes, WRITEABLE_LAYOUTS

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RTOL, ATOL = 1e-10, 1e-12


def compare(tg_fn, th_fn, inputs, grads=None, rtol=RTOL, atol=ATOL, seed=0):
    """Run tg_fn on tinygrad_course tensors and th_fn on torch tensors made from the same arrays.

    inputs: float64 arrays (any layout); grads: which of them require grad (default: all).
    Checks forward value, shape and dtype, then the gradient of every input that requires grad.
    """
    grads = [True] * len(inputs) if grads is None else grads
    tg_in = [tg.Tensor(a, requires_grad=g) for a, g in zip(inputs, grads)]
    th_in = [torch.tensor(np.array(a, order="C"), requires_grad=g) for a, g in zip(inputs, grads)]
    out, ref = tg_fn(*tg_in), th_fn(*th_in)
    assert out.shape == tuple(ref.shape), f"shape {out.shape} vs torch {tuple(ref.shape)}"
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=rtol, atol=atol, err_msg="forward")
    if not any(grads):
        return out
    upstream = np.random.default_rng(seed).standard_normal(tuple(ref.shape))
    out.backward(upstream)
    ref.backward(torch.from_numpy(np.array(upstream)))
    for i, (t, r, g) in enumerate(zip(tg_in, th_in, grads)):
        if not g:
            continue
        assert t.grad is not None, f"input {i} got no gradient"
        expected = r.grad.numpy() if r.grad is not None else np.zeros(r.shape)
        np.testing.assert_allclose(t.grad.numpy(), expected, rtol=rtol, atol=atol, err_msg=f"grad of input {i}")
    return out


def arr(draw, shape, lo=-2.0, hi=2.0, **kw):
    return draw(arrays(tuple(shape), lo, hi, layouts=ALL_LAYOUTS, **kw))


def tdims(axis, ndim):
    return normalise_axes(axis, ndim)


ORACLE = {}  # name -> builder(draw) -> (tg_fn, th_fn, inputs[, grads])


def oracle(name):
    def register(f):
        ORACLE[name] = f
        return f
    return register


# --- elementwise -----------------------------------------------------------------------------------
BINARY = {
    "add": (lambda a, b: a + b, dict()),
    "sub": (lambda a, b: a - b, dict()),
    "mul": (lambda a, b: a * b, dict()),
    "div": (lambda a, b: a / b, dict(b=dict(away=(0.0,), gap=0.5))),
    "pow": (lambda a, b: a ** b, dict(a=dict(lo=0.3, hi=2.0))),
}

for _name, (_fn, _kw) in BINARY.items():
    def _binary(draw, fn=_fn, kw=_kw):
        (sa, sb), _ = draw(broadcast_shapes())
        return fn, fn, [arr(draw, sa, **kw.get("a", {})), arr(draw, sb, **kw.get("b", {}))]
    oracle(_name)(_binary)


@oracle("pow_scalar")
def _pow_scalar(draw):
    p = draw(st.sampled_from([2, 3, -1, 0.5, 1.5, -2.5]))
    lo = 0.3 if not float(p).is_integer() else -2.0
    return (lambda x: x ** p), (lambda x: x ** p), [arr(draw, draw(shapes()), lo, 2.0, away=(0.0,), gap=0.3)]


@oracle("rpow")
def _rpow(draw):
    base = draw(st.sampled_from([0.5, 2.0, 3.7]))
    return (lambda x: base ** x), (lambda x: base ** x), [arr(draw, draw(shapes()))]


@oracle("scalar_arith")
def _scalar_arith(draw):
    s = draw(st.sampled_from([-2.5, 0.5, 3.0]))
    fn = lambda x: (s - x) * s / (x + 0.0) + s / x - x / s  # noqa: E731
    return fn, fn, [arr(draw, draw(shapes()), away=(0.0,), gap=0.5)]


UNARY = {
    "neg": (lambda x: -x, lambda x: -x, dict()),
    "exp": (lambda x: x.exp(), torch.exp, dict()),
    "log": (lambda x: x.log(), torch.log, dict(lo=0.2, hi=3.0)),
    "sqrt": (lambda x: x.sqrt(), torch.sqrt, dict(lo=0.2, hi=3.0)),
    "abs": (lambda x: x.abs(), torch.abs, dict(away=(0.0,))),
    "tanh": (F.tanh, torch.tanh, dict(lo=-4.0, hi=4.0)),
    "sigmoid": (F.sigmoid, torch.sigmoid, dict(lo=-8.0, hi=8.0)),
    "relu": (F.relu, torch.relu, dict(away=(0.0,))),
}

for _name, (_f, _g, _kw) in UNARY.items():
    def _unary(draw, f=_f, g=_g, kw=_kw):
        return f, g, [arr(draw, draw(shapes()), **kw)]
    oracle(_name)(_unary)


@oracle("leaky_relu")
def _leaky_relu(draw):
    slope = draw(st.sampled_from([0.01, 0.2, 1.5]))
    return (lambda x: F.leaky_relu(x, slope)), (lambda x: TF.leaky_relu(x, slope)), \
        [arr(draw, draw(shapes()), away=(0.0,))]


@oracle("prelu")
def _prelu(draw):
    shape = draw(shapes(min_dims=2, max_dims=4, max_size=48))
    c = shape[1] if draw(st.booleans()) else 1
    return F.prelu, TF.prelu, [arr(draw, shape, away=(0.0,)), arr(draw, (c,), -0.5, 1.0)]


@oracle("clamp")
def _clamp(draw):
    lo, hi = draw(st.sampled_from([-1.0, -0.3, None])), draw(st.sampled_from([0.2, 1.5, None]))
    assume(lo is not None or hi is not None)
    pts = tuple(p for p in (lo, hi) if p is not None)
    return (lambda x: x.clamp(lo, hi)), (lambda x: torch.clamp(x, lo, hi)), [arr(draw, draw(shapes()), away=pts)]


@oracle("where")
def _where(draw):
    (sc, sa, sb), _ = draw(broadcast_shapes(num_shapes=3))
    cond = np.asarray(draw(arrays(sc, 0.0, 1.0)) > 0.5)
    return (lambda a, b: tg.where(cond, a, b)), (lambda a, b: torch.where(torch.from_numpy(cond), a, b)), \
        [arr(draw, sa), arr(draw, sb)]


@oracle("astype_roundtrip")
def _astype(draw):
    # float64 -> float32 rounds to nearest even in both libraries: the values must agree exactly
    return (lambda x: x.float().double() * 3.0), (lambda x: x.float().double() * 3.0), \
        [arr(draw, draw(shapes()), -1e3, 1e3)]


# --- matmul and linear --------------------------------------------------------------------------
@oracle("matmul")
def _matmul(draw):
    m, k, n = (draw(st.integers(1, 5)) for _ in range(3))
    (ba, bb), _ = draw(broadcast_shapes(max_dims=3, max_side=3, max_size=12))
    form = draw(st.sampled_from(["1d@1d", "1d@nd", "nd@1d", "nd@nd"]))
    sa = (k,) if form in ("1d@1d", "1d@nd") else ba + (m, k)
    sb = (k,) if form in ("1d@1d", "nd@1d") else bb + (k, n)
    return (lambda a, b: a @ b), torch.matmul, [arr(draw, sa), arr(draw, sb)]


@oracle("linear")
def _linear(draw):
    lead = draw(shapes(max_dims=2, max_side=3))
    fin, fout = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    ins = [arr(draw, lead + (fin,)), arr(draw, (fout, fin))]
    if draw(st.booleans()):
        ins.append(arr(draw, (fout,)))
    return F.linear, TF.linear, ins


# --- shape ops --------------------------------------------------------------------------------------
@oracle("reshape")
def _reshape(draw):
    shape = draw(shapes(min_dims=1))
    new = (-1,) + tuple(reversed(shape[1:])) if draw(st.booleans()) else tuple(reversed(shape))
    return (lambda x: x.reshape(new) * 2.0), (lambda x: x.reshape(new) * 2.0), [arr(draw, shape)]


@oracle("permute")
def _permute(draw):
    shape = draw(shapes(min_dims=1))
    perm = tuple(draw(st.permutations(range(len(shape)))))
    return (lambda x: x.permute(perm) * 1.0), (lambda x: x.permute(perm) * 1.0), [arr(draw, shape)]


@oracle("transpose")
def _transpose(draw):
    shape = draw(shapes(min_dims=1))
    d0, d1 = draw(st.integers(-len(shape), len(shape) - 1)), draw(st.integers(-len(shape), len(shape) - 1))
    return (lambda x: x.transpose(d0, d1) * 1.0), (lambda x: x.transpose(d0, d1) * 1.0), [arr(draw, shape)]


@oracle("T")
def _T(draw):
    shape = draw(shapes())
    rev = tuple(reversed(range(len(shape))))
    return (lambda x: x.T * 1.0), (lambda x: x.permute(rev) * 1.0), [arr(draw, shape)]


@oracle("squeeze_unsqueeze")
def _squeeze(draw):
    shape = tuple(1 if draw(st.booleans()) else s for s in draw(shapes(min_dims=1)))
    nd = len(shape)
    sq = draw(st.integers(-nd, nd - 1))
    nd2 = nd - 1 if shape[sq] == 1 else nd
    ax = draw(st.integers(-nd2 - 1, nd2))
    return (lambda x: x.squeeze(sq).unsqueeze(ax) * 1.0), (lambda x: x.squeeze(sq).unsqueeze(ax) * 1.0), \
        [arr(draw, shape)]


@oracle("flatten")
def _flatten2(draw):
    shape = draw(shapes(min_dims=1))
    nd = len(shape)
    s = draw(st.integers(0, nd - 1))
    e = draw(st.integers(s, nd - 1))
    return (lambda x: x.flatten(s, e)), (lambda x: x.flatten(s, e)), [arr(draw, shape)]


@oracle("expand")
def _expand(draw):
    (sa, _), out = draw(broadcast_shapes())
    return (lambda x: x.expand(out) * 1.0), (lambda x: x.expand(out) * 1.0), [arr(draw, sa)]


@oracle("cat_stack")
def _cat(draw):
    shape = draw(shapes(min_dims=1, max_size=20))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    ins = []
    for _ in range(draw(st.integers(1, 3))):
        s = list(shape)
        s[axis] = draw(st.integers(1, 3))
        ins.append(arr(draw, s))
    if draw(st.booleans()):
        return (lambda *t: tg.cat(list(t), axis=axis)), (lambda *t: torch.cat(t, dim=axis)), ins
    ins = [arr(draw, shape) for _ in range(len(ins))]
    return (lambda *t: tg.stack(list(t), axis=axis)), (lambda *t: torch.stack(t, dim=axis)), ins


@oracle("getitem_basic")
def _getitem(draw):
    # torch has no negative slice steps: those are covered by gradcheck
    shape = draw(shapes(min_dims=1))
    items = []
    for n in shape:
        kind = draw(st.sampled_from(["int", "slice", "full"]))
        if kind == "int":
            items.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            items.append(slice(draw(st.integers(0, n - 1)), draw(st.none() | st.integers(-n, n)),
                               draw(st.sampled_from([1, 2, 3]))))
        else:
            items.append(slice(None))
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), None)
    if draw(st.booleans()) and len(items) > 1:
        items = [Ellipsis] + items[draw(st.integers(1, len(items))):]
    index = tuple(items)
    assume(np.empty(shape)[index].size > 0)
    return (lambda x: x[index]), (lambda x: x[index]), [arr(draw, shape)]


@oracle("getitem_advanced")
def _getitem_adv(draw):
    shape = draw(shapes(min_dims=2, max_size=40))
    i0 = np.array(draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=6)))
    i1 = np.array(draw(st.lists(st.integers(0, shape[1] - 1), min_size=len(i0), max_size=len(i0))))
    form = draw(st.sampled_from(["first", "second", "pair"]))
    index = {"first": i0, "second": (slice(None), i1), "pair": (i0, i1)}[form]
    th_index = {"first": torch.from_numpy(i0), "second": (slice(None), torch.from_numpy(i1)),
                "pair": (torch.from_numpy(i0), torch.from_numpy(i1))}[form]
    return (lambda x: x[index]), (lambda x: x[th_index]), [arr(draw, shape)]


@oracle("pad")
def _pad(draw):
    shape = draw(shapes(min_dims=1, max_size=30))
    k = draw(st.integers(1, len(shape)))
    pad = tuple(draw(st.integers(0, 2)) for _ in range(2 * k))
    value = draw(st.sampled_from([0.0, -1.5]))
    return (lambda x: x.pad(pad, value=value)), (lambda x: TF.pad(x, pad, value=value)), [arr(draw, shape)]


# --- reductions ----------------------------------------------------------------------------------
@oracle("sum_mean")
def _sum_mean(draw):
    shape = draw(shapes())
    axis, kd = draw(axis_args(len(shape))), draw(st.booleans())
    dims = tdims(axis, len(shape))
    if not dims:  # 0-d input
        return (lambda x: x.sum() + x.mean()), (lambda x: x.sum() + x.mean()), [arr(draw, shape)]
    return (lambda x: x.sum(axis=axis, keepdims=kd) + x.mean(axis=axis, keepdims=kd) * 3.0), \
        (lambda x: x.sum(dim=dims, keepdim=kd) + x.mean(dim=dims, keepdim=kd) * 3.0), [arr(draw, shape)]


@oracle("var_std")
def _var_std(draw):
    shape = draw(shapes(min_dims=1))
    axis, kd, corr = draw(axis_args(len(shape))), draw(st.booleans()), draw(st.integers(0, 2))
    dims = tdims(axis, len(shape))
    assume(math.prod(shape[d] for d in dims) > max(corr, 1))
    def tg_fn(x):
        return x.var(axis=axis, keepdims=kd, correction=corr) + x.std(axis=axis, keepdims=kd, correction=corr)

    def th_fn(x):
        return torch.var(x, dim=dims, keepdim=kd, correction=corr) + torch.std(x, dim=dims, keepdim=kd,
                                                                              correction=corr)
    # no stride-0 views (they repeat values): the gradient of std at zero variance is 0/0
    return tg_fn, th_fn, [draw(arrays(shape, distinct_gap=0.05))]


@oracle("max_min")
def _max_min(draw):
    shape = draw(shapes(min_dims=1))
    axis, kd = draw(axis_args(len(shape))), draw(st.booleans())
    dims = tdims(axis, len(shape))
    return (lambda x: x.amax(axis=axis, keepdims=kd) - 2.0 * x.amin(axis=axis, keepdims=kd)), \
        (lambda x: torch.amax(x, dim=dims, keepdim=kd) - 2.0 * torch.amin(x, dim=dims, keepdim=kd)), \
        [draw(arrays(shape, distinct_gap=1e-3))]  # no ties (stride-0 views repeat values)


@oracle("max_min_dim")
def _max_min_dim(draw):
    shape = draw(shapes(min_dims=1))
    dim, kd = draw(st.integers(-len(shape), len(shape) - 1)), draw(st.booleans())
    return (lambda x: x.max(dim, keepdim=kd).values - 2.0 * x.min(dim=dim, keepdim=kd)[0]), \
        (lambda x: torch.max(x, dim, keepdim=kd).values - 2.0 * torch.min(x, dim=dim, keepdim=kd)[0]), \
        [draw(arrays(shape, distinct_gap=1e-3))]


@oracle("logsumexp")
def _logsumexp(draw):
    shape = draw(shapes(min_dims=1))
    axis, kd = draw(axis_args(len(shape))), draw(st.booleans())
    dims = tdims(axis, len(shape))
    scale = draw(st.sampled_from([1.0, 50.0]))
    return (lambda x: x.logsumexp(axis=axis, keepdims=kd)), (lambda x: torch.logsumexp(x, dim=dims, keepdim=kd)), \
        [arr(draw, shape, -scale, scale)]


@oracle("softmax_log_softmax")
def _softmax(draw):
    shape = draw(shapes(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    scale = draw(st.sampled_from([1.0, 50.0]))
    return (lambda x: F.softmax(x, axis) + F.log_softmax(x, axis) * 0.5), \
        (lambda x: TF.softmax(x, dim=axis) + TF.log_softmax(x, dim=axis) * 0.5), [arr(draw, shape, -scale, scale)]


# --- convolution and pooling ----------------------------------------------------------------------
@oracle("conv2d")
def _conv2d(draw):
    c = draw(conv2d_configs(max_batch=3, max_channels=6, max_kernel=4, max_stride=3, max_dilation=3,
                            max_input_elems=400, max_weight_elems=200))
    ins = [arr(draw, c["x_shape"]), arr(draw, c["w_shape"])]
    if c["bias"]:
        ins.append(arr(draw, (c["w_shape"][0],)))
    kw = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"], groups=c["groups"])
    return (lambda x, w, b=None: F.conv2d(x, w, b, **kw)), (lambda x, w, b=None: TF.conv2d(x, w, b, **kw)), ins


@oracle("max_pool2d")
def _max_pool2d(draw):
    c = draw(pool_configs(max_batch=2, max_channels=3, max_kernel=4, max_stride=4, max_input_elems=200))
    kw = dict(kernel_size=c["kernel"], stride=c["stride"], padding=c["padding"])
    return (lambda x: F.max_pool2d(x, **kw)), (lambda x: TF.max_pool2d(x, **kw)), \
        [draw(arrays(c["x_shape"], distinct_gap=1e-3))]


@oracle("avg_pool2d")
def _avg_pool2d(draw):
    c = draw(pool_configs(max_batch=2, max_channels=3, max_kernel=4, max_stride=4, max_input_elems=200))
    kw = dict(kernel_size=c["kernel"], stride=c["stride"], padding=c["padding"],
              count_include_pad=draw(st.booleans()))
    return (lambda x: F.avg_pool2d(x, **kw)), (lambda x: TF.avg_pool2d(x, **kw)), [arr(draw, c["x_shape"])]


# --- normalisation ---------------------------------------------------------------------------------
@oracle("batch_norm")
def _batch_norm(draw):
    nd = draw(st.sampled_from([2, 3, 4]))
    shape = draw(shapes(min_dims=nd, max_dims=nd, max_side=4, max_size=60))
    assume(math.prod(shape) // shape[1] >= 2)
    c = shape[1]
    training, affine = draw(st.booleans()), draw(st.booleans())
    eps, momentum = draw(st.sampled_from([1e-5, 0.1])), draw(st.sampled_from([0.1, 0.5]))
    rm0, rv0 = np.array(draw(arrays((c,)))), np.array(draw(arrays((c,), 0.3, 2.0)))
    stats = {}

    def tg_fn(x, w=None, b=None):
        stats["tg"] = (tg.Tensor(rm0.copy()), tg.Tensor(rv0.copy()))
        return F.batch_norm(x, *stats["tg"], w, b, training=training, momentum=momentum, eps=eps)

    def th_fn(x, w=None, b=None):
        stats["th"] = (torch.tensor(rm0), torch.tensor(rv0))
        return TF.batch_norm(x, *stats["th"], w, b, training=training, momentum=momentum, eps=eps)

    # Training normalises by the batch statistics: a broadcast (stride-0) layout could make a channel
    # constant, where the gamma gradient is 0 for us and rounding noise (~1e-12) for torch.
    x_layouts = WRITEABLE_LAYOUTS if training else ALL_LAYOUTS
    ins = [draw(arrays(tuple(shape), layouts=x_layouts, distinct_gap=0.05 if training else None))]
    if affine:
        ins += [arr(draw, (c,), 0.5, 2.0), arr(draw, (c,))]
    return tg_fn, th_fn, ins, None, stats


@oracle("layer_norm")
def _layer_norm(draw):
    nd = draw(st.integers(1, 3))
    norm = draw(shapes(min_dims=nd, max_dims=nd, max_side=4, max_size=24))
    lead = draw(shapes(max_dims=2, max_side=3, max_size=max(1, 60 // math.prod(norm))))
    eps = draw(st.sampled_from([1e-5, 1e-2]))
    ins = [arr(draw, lead + norm, distinct_gap=0.05)]
    if draw(st.booleans()):
        ins += [arr(draw, norm), arr(draw, norm)]
    return (lambda x, w=None, b=None: F.layer_norm(x, norm, w, b, eps=eps)), \
        (lambda x, w=None, b=None: TF.layer_norm(x, norm, w, b, eps=eps)), ins


# --- losses -------------------------------------------------------------------------------------
REDUCTIONS = st.sampled_from(["mean", "sum", "none"])


@oracle("cross_entropy_indices")
def _ce(draw):
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    t = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    ls, red = draw(st.sampled_from([0.0, 0.1, 0.6, 1.0])), draw(REDUCTIONS)
    scale = draw(st.sampled_from([1.0, 100.0]))
    return (lambda x: F.cross_entropy(x, tg.Tensor(t), label_smoothing=ls, reduction=red)), \
        (lambda x: TF.cross_entropy(x, torch.from_numpy(t), label_smoothing=ls, reduction=red)), \
        [arr(draw, (n, c), -scale, scale)]


@oracle("cross_entropy_probs")
def _ce_probs(draw):
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    ls, red = draw(st.sampled_from([0.0, 0.25])), draw(REDUCTIONS)
    p = draw(arrays((n, c), 0.01, 1.0))
    p = p / p.sum(axis=1, keepdims=True)
    return (lambda x, t: F.cross_entropy(x, t, label_smoothing=ls, reduction=red)), \
        (lambda x, t: TF.cross_entropy(x, t, label_smoothing=ls, reduction=red)), \
        [arr(draw, (n, c), -4.0, 4.0), p], [True, draw(st.booleans())]


@oracle("nll_loss")
def _nll(draw):
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    t = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    red = draw(REDUCTIONS)
    return (lambda x: F.nll_loss(F.log_softmax(x, 1), tg.Tensor(t), reduction=red)), \
        (lambda x: TF.nll_loss(TF.log_softmax(x, 1), torch.from_numpy(t), reduction=red)), [arr(draw, (n, c))]


@oracle("bce_with_logits")
def _bce_logits(draw):
    shape, red = draw(shapes()), draw(REDUCTIONS)
    scale = draw(st.sampled_from([5.0, 100.0]))
    return (lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction=red)), \
        (lambda x, y: TF.binary_cross_entropy_with_logits(x, y, reduction=red)), \
        [arr(draw, shape, -scale, scale), arr(draw, shape, 0.0, 1.0)]


@oracle("bce")
def _bce(draw):
    shape, red = draw(shapes()), draw(REDUCTIONS)
    return (lambda p, y: F.binary_cross_entropy(p, y, reduction=red)), \
        (lambda p, y: TF.binary_cross_entropy(p, y, reduction=red)), \
        [arr(draw, shape, 0.02, 0.98), arr(draw, shape, 0.0, 1.0)]


@oracle("mse_loss")
def _mse(draw):
    shape, red = draw(shapes()), draw(REDUCTIONS)
    return (lambda a, b: F.mse_loss(a, b, reduction=red)), (lambda a, b: TF.mse_loss(a, b, reduction=red)), \
        [arr(draw, shape), arr(draw, shape)]


# --- transposed convolution, resampling, segmentation losses -------------------------------------------
@oracle("conv_transpose2d")
def _conv_transpose2d(draw):
    c = draw(conv_transpose2d_configs(max_batch=3, max_channels=6, max_kernel=4, max_stride=3, max_dilation=3,
                                      max_input_elems=200, max_weight_elems=200))
    ins = [arr(draw, c["x_shape"]), arr(draw, c["w_shape"])]
    if c["bias"]:
        ins.append(arr(draw, (c["w_shape"][1] * c["groups"],)))
    kw = dict(stride=c["stride"], padding=c["padding"], output_padding=c["output_padding"], groups=c["groups"],
              dilation=c["dilation"])
    return (lambda x, w, b=None: F.conv_transpose2d(x, w, b, **kw)), \
        (lambda x, w, b=None: TF.conv_transpose2d(x, w, b, **kw)), ins


@oracle("interpolate")
def _interpolate(draw):
    c = draw(interpolate_configs(max_side=7, max_out=12))
    kw = dict(mode=c["mode"], **c["kwargs"])
    if c["mode"] == "bilinear":
        kw["align_corners"] = c["align_corners"]
    return (lambda x: F.interpolate(x, **kw)), (lambda x: TF.interpolate(x, **kw)), [arr(draw, c["x_shape"])]


def torch_focal(x, t, alpha=0.25, gamma=2.0, reduction="mean"):
    """torchvision.ops.sigmoid_focal_loss, written out."""
    p = torch.sigmoid(x)
    ce = TF.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha is not None and alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return {"mean": loss.mean, "sum": loss.sum, "none": lambda: loss}[reduction]()


def torch_overlap(x, t, smooth, kind, reduction):
    """Soft Dice / Jaccard loss per sample, written out."""
    p, t = torch.sigmoid(x).reshape(x.shape[0], -1), t.reshape(t.shape[0], -1)
    inter, total = (p * t).sum(1), p.sum(1) + t.sum(1)
    loss = 1 - ((2 * inter + smooth) / (total + smooth) if kind == "dice" else
                (inter + smooth) / (total - inter + smooth))
    return {"mean": loss.mean, "sum": loss.sum, "none": lambda: loss}[reduction]()


@oracle("focal_loss")
def _focal(draw):
    shape, red = draw(shapes()), draw(REDUCTIONS)
    alpha, gamma = draw(st.sampled_from([0.25, -1.0, 0.8])), draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]))
    # The written-out 1 - p_t cancels: for |x| = 20 it keeps only ~8 digits, while the fused op forms it
    # from tail-accurate sigmoids. Logits up to 10 keep both within the tight tolerance; saturated
    # logits (+-40, +-100) are compared in test_focal_loss_saturated.
    scale = draw(st.sampled_from([5.0, 10.0]))
    hard = draw(st.booleans())
    target = np.asarray(np.round(draw(arrays(shape, 0.0, 1.0)))) if hard else arr(draw, shape, 0.0, 1.0)
    return (lambda x, t: F.focal_loss(x, t, alpha, gamma, red)), (lambda x, t: torch_focal(x, t, alpha, gamma, red)), \
        [arr(draw, shape, -scale, scale), target], [True, draw(st.booleans())]


@oracle("dice_jaccard_loss")
def _dice_jaccard(draw):
    shape = draw(shapes(min_dims=1, max_dims=4))
    kind, red = draw(st.sampled_from(["dice", "jaccard"])), draw(REDUCTIONS)
    smooth = draw(st.sampled_from([0.0, 1.0, 1e-2]))
    fn = F.dice_loss if kind == "dice" else F.jaccard_loss
    return (lambda x, t: fn(x, t, smooth, red)), (lambda x, t: torch_overlap(x, t, smooth, kind, red)), \
        [arr(draw, shape, -6.0, 6.0), arr(draw, shape, 0.0, 1.0)], [True, draw(st.booleans())]


# --- the tests ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(ORACLE))
@given(data=st.data())
def test_matches_torch(backend, name, data):
    built = ORACLE[name](data.draw)
    tg_fn, th_fn, inputs = built[:3]
    grads = built[3] if len(built) > 3 else None
    compare(tg_fn, th_fn, inputs, grads)
    if len(built) > 4:  # batch norm: running statistics updated like torch's
        stats = built[4]
        for mine, ref in zip(stats["tg"], stats["th"]):
            np.testing.assert_allclose(mine.numpy(), ref.numpy(), rtol=RTOL, atol=ATOL)


def test_batch_norm_running_stats_follow_torch_over_several_steps(backend):
    rng = np.random.default_rng(0)
    rm, rv = tg.zeros(3, dtype="float64"), tg.ones(3, dtype="float64")
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for step in range(4):
        x = rng.standard_normal((4, 3, 2, 5)) * (step + 1) + step
        y = F.batch_norm(tg.Tensor(x), rm, rv, training=True, momentum=0.3)
        ty = TF.batch_norm(torch.tensor(x), trm, trv, training=True, momentum=0.3)
        np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(rm.numpy(), trm.numpy(), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(rv.numpy(), trv.numpy(), rtol=RTOL, atol=ATOL)
    assert not np.allclose(rm.numpy(), 0.0)  # the statistics did move
    x = rng.standard_normal((2, 3, 2, 2))
    np.testing.assert_allclose(F.batch_norm(tg.Tensor(x), rm, rv, training=False).numpy(),
                               TF.batch_norm(torch.tensor(x), trm, trv, training=False).numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("logit", [100.0, -100.0, 40.0, -40.0, 0.0])
@pytest.mark.parametrize("target", [0.0, 1.0, 0.3])
def test_bce_with_logits_saturated(backend, logit, target):
    compare(lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction="none"),
            lambda x, y: TF.binary_cross_entropy_with_logits(x, y, reduction="none"),
            [np.full((2,), logit), np.full((2,), target)])


@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1)])
def test_var_std_correction(backend, correction, axis):
    x = np.random.default_rng(1).standard_normal((3, 4))
    dims = tdims(axis, 2)
    compare(lambda t: t.var(axis=axis, correction=correction) * t.std(axis=axis, correction=correction),
            lambda t: torch.var(t, dim=dims, correction=correction) * torch.std(t, dim=dims, correction=correction),
            [x])


def test_conv2d_all_parameters_fixed(backend):
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 6, 9, 8)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    kw = dict(stride=(2, 3), padding=(2, 1), dilation=(2, 1), groups=2)
    compare(lambda x, w, b: F.conv2d(x, w, b, **kw), lambda x, w, b: TF.conv2d(x, w, b, **kw), [x, w, b])


@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_dropout_semantics(backend, p):
    # torch's masks cannot be reproduced; check the inverted-dropout definition torch uses instead
    x = tg.Tensor(np.random.default_rng(3).uniform(0.5, 1.5, (40, 50)), requires_grad=True)
    y = F.dropout(x, p)
    kept = y.detach().numpy() != 0
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    np.testing.assert_allclose(y.detach().numpy()[kept], x.detach().numpy()[kept] * scale, rtol=1e-15)
    if 0 < p < 1:
        assert abs(kept.mean() - (1 - p)) < 0.05  # 2000 draws
    y.backward(np.ones(y.shape))
    np.testing.assert_allclose(x.grad.numpy(), kept * scale)
    assert F.dropout(x, p, training=False) is x


@pytest.mark.parametrize("gamma", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("alpha", [0.25, -1.0])
def test_focal_loss_saturated(backend, gamma, alpha):
    x = np.array([100.0, -100.0, 100.0, -100.0, 40.0, -40.0, 0.0])
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    compare(lambda x, t: F.focal_loss(x, t, alpha, gamma, "none"), lambda x, t: torch_focal(x, t, alpha, gamma, "none"),
            [x, t], [True, False])


def test_focal_loss_finite_where_the_written_out_formula_is_not(backend):
    # with gamma < 1, (1 - p_t) ** gamma has an infinite slope at 0: the formula above gives NaN gradients at
    # saturated logits; the fused op forms the product stably and its gradient there is the limit, 0
    x = tg.Tensor(np.array([100.0, -100.0, 100.0, -100.0]), requires_grad=True)
    t = tg.Tensor(np.array([1.0, 0.0, 0.0, 1.0]))
    F.focal_loss(x, t, gamma=0.5, reduction="sum").backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    np.testing.assert_allclose(x.grad.numpy()[:2], 0.0, atol=1e-30)
    np.testing.assert_allclose(x.grad.numpy()[2:], [0.75, -0.25], rtol=1e-12)


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1, output_padding=1), dict(stride=(1, 2), dilation=(3, 1),
                                                                                   output_padding=(2, 1), groups=3)])
def test_conv_transpose2d_fixed(backend, kw):
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 6, 5, 4)), rng.standard_normal((6, 2, 3, 2))
    b = rng.standard_normal(2 * kw.get("groups", 1))
    compare(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), lambda x, w, b: TF.conv_transpose2d(x, w, b, **kw),
            [x, w, b])
