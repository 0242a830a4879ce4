"""The native pooling, normalisation and fused cross-entropy kernels (src/pool.cpp, src/norm.cpp,
src/softmax.cpp) against the NumPy reference backend, plus their error messages and gradchecks.

Tolerances (the reference sums in another order; K is the length of the reduction behind one value):
  * float64: rtol 1e-10, atol 1e-12 * sqrt(K) * scale
  * float32: rtol 1e-4,  atol 1e-5 * sqrt(K) * scale      (scale = max(1, max |reference|))
Max pooling involves no rounding: values are compared exactly, and so are the argmax indices, ties
included (first maximum in row-major window order, first NaN wins, as np.argmax over the window).

One deliberate difference from the reference: a window whose maximum is -inf and that starts in the
padding gets the index of its first element inside the image (padding never wins); the reference returns
the padding's position, which is negative or points at another row (see test_max_pool2d_all_minus_inf).
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

C = pytest.importorskip("tinygrad_course._C")

# Every test once per ISA the kernels can run with here (AVX-512, AVX2, baseline; conftest.py).
pytestmark = pytest.mark.usefixtures("native_isa")

import tinygrad_course as tg  # noqa: E402
from tinygrad_course.backend.native import NativeBackend  # noqa: E402
from tinygrad_course.backend.numpy_backend import NumpyBackend  # noqa: E402
from tinygrad_course.nn import functional as F  # noqa: E402
from tinygrad_course.testing import gradcheck  # noqa: E402

REF = NumpyBackend()
NAT = NativeBackend()

DTYPES = st.sampled_from([np.float32, np.float64])
ODD = st.sampled_from([1, 2, 3, 5, 7, 11, 13])
LAYOUTS = st.sampled_from(["contiguous", "transposed", "sliced", "fortran"])


# --- helpers --------------------------------------------------------------------------------
def tol(dtype, k, ref):
    scale = max(1.0, float(np.nanmax(np.abs(ref)))) if np.size(ref) else 1.0
    if np.dtype(dtype) == np.float32:
        return dict(rtol=1e-4, atol=1e-5 * math.sqrt(max(k, 1)) * scale)
    return dict(rtol=1e-10, atol=1e-12 * math.sqrt(max(k, 1)) * scale)


def close(actual, expected, k, what=""):
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    np.testing.assert_allclose(actual, expected, err_msg=what, **tol(expected.dtype, k, expected))


def layout(a, kind):
    """The same values as `a` in another memory layout (non-contiguous unless trivially small)."""
    if kind == "contiguous":
        return np.ascontiguousarray(a)
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "transposed":  # a transposed view of a transposed copy
        axes = tuple(reversed(range(a.ndim)))
        return np.ascontiguousarray(a.transpose(axes)).transpose(axes)
    if kind == "sliced":  # every other element of a larger array, last axis reversed
        big = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)
        view = big[tuple(slice(None, None, 2) for _ in a.shape)][..., ::-1]
        view[...] = a[..., ::-1]
        return view
    raise AssertionError(kind)


def rand(rng, shape, dtype, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(dtype)


def unchanged(fn, *arrays):
    """Call fn(*arrays) and check that no array input was written to."""
    before = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in arrays]
    out = fn(*arrays)
    for b, a in zip(before, arrays):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg="an input was modified")
    return out


@st.composite
def pool_cases(draw, fast=False):
    """Pooling parameters: non-dividing windows, stride != kernel, padding up to kernel // 2."""
    if fast or draw(st.integers(0, 4)) == 0:  # the specialised 2x2 / stride 2 / no padding case
        kernel, stride, padding = (2, 2), (2, 2), (0, 0)
    else:
        kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
        stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
        padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    h = max(1, kernel[0] - 2 * padding[0]) + draw(st.sampled_from([0, 1, 2, 4, 7, 10]))
    w = max(1, kernel[1] - 2 * padding[1]) + draw(st.sampled_from([0, 1, 3, 6, 12]))
    return dict(x_shape=(draw(st.integers(1, 3)), draw(ODD), h, w), kernel=kernel, stride=stride,
                padding=padding)


def pool_args(p):
    return p["kernel"], p["stride"], p["padding"]


# --- max pooling ----------------------------------------------------------------------------
@given(p=pool_cases(), dtype=DTYPES, kind=LAYOUTS, values=st.sampled_from(["distinct", "ties"]),
       seed=st.integers(0, 2**31 - 1))
def test_max_pool2d_matches_reference(p, dtype, kind, values, seed):
    rng = np.random.default_rng(seed)
    n = math.prod(p["x_shape"])
    if values == "distinct":
        x = (rng.permutation(n).reshape(p["x_shape"]) - n / 2).astype(dtype)
    else:  # few distinct values: many ties, the first maximum in window order must win
        x = rng.integers(-2, 3, size=p["x_shape"]).astype(dtype)
    x = layout(x, kind)
    y_ref, am_ref = REF.max_pool2d(x, *pool_args(p))
    y, am = unchanged(lambda a: NAT.max_pool2d(a, *pool_args(p)), x)
    assert y.dtype == x.dtype and am.dtype == np.int64
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(am, am_ref)

    gy = layout(rand(rng, y_ref.shape, dtype), kind)
    gx_ref = REF.max_pool2d_grad(gy, am_ref, x.shape)
    gx = unchanged(lambda g, a: NAT.max_pool2d_grad(g, a, x.shape), gy, am)
    k = math.ceil(p["kernel"][0] / p["stride"][0]) * math.ceil(p["kernel"][1] / p["stride"][1])
    close(gx, gx_ref, k, "max_pool2d_grad")


@given(p=pool_cases(), dtype=DTYPES, seed=st.integers(0, 2**31 - 1))
def test_max_pool2d_nan_matches_reference(p, dtype, seed):
    # the first NaN of a window wins (np.argmax semantics), whatever comes after it
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, size=p["x_shape"]).astype(dtype)
    x[rng.random(x.shape) < 0.2] = np.nan
    y_ref, am_ref = REF.max_pool2d(x, *pool_args(p))
    y, am = NAT.max_pool2d(x, *pool_args(p))
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(am, am_ref)


def test_max_pool2d_all_minus_inf():
    # Padding never wins: with a real -inf as the maximum, the index is the window's first element
    # inside the image (the reference would point into the padding: a negative or wrapped index).
    x = np.full((1, 1, 3, 4), -np.inf)
    y, am = NAT.max_pool2d(x, (3, 3), (1, 1), (1, 1))
    assert np.all(y == -np.inf)
    np.testing.assert_array_equal(am[0, 0], [[0, 0, 1, 2], [0, 0, 1, 2], [4, 4, 5, 6]])
    gx = NAT.max_pool2d_grad(np.ones_like(y), am, x.shape)
    assert gx.sum() == y.size
    # without padding in front, -inf maxima agree with the reference
    y_ref, am_ref = REF.max_pool2d(x, (2, 2), (1, 1), (0, 0))
    np.testing.assert_array_equal(NAT.max_pool2d(x, (2, 2), (1, 1), (0, 0))[1], am_ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(128, 32, 32, 32), (3, 5, 33, 17), (2, 7, 1, 9), (1, 1, 2, 2)])
def test_max_pool2d_2x2_fast_path(dtype, shape):
    # the CIFAR shape (threaded) and odd sizes: a last odd row/column is ignored
    if shape[2] < 2:
        shape = (shape[0], shape[1], 2, shape[3])
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    x[0, 0, 0, :2] = 1.5  # a tie inside one window
    y_ref, am_ref = REF.max_pool2d(x, (2, 2), (2, 2), (0, 0))
    y, am = NAT.max_pool2d(x, (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(am, am_ref)
    gy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_array_equal(NAT.max_pool2d_grad(gy, am, x.shape), REF.max_pool2d_grad(gy, am_ref, x.shape))


# --- average pooling ------------------------------------------------------------------------
@given(p=pool_cases(), dtype=DTYPES, kind=LAYOUTS, cip=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_avg_pool2d_matches_reference(p, dtype, kind, cip, seed):
    rng = np.random.default_rng(seed)
    x = layout(rand(rng, p["x_shape"], dtype), kind)
    k = p["kernel"][0] * p["kernel"][1]
    y_ref = REF.avg_pool2d(x, *pool_args(p), cip)
    y = unchanged(lambda a: NAT.avg_pool2d(a, *pool_args(p), cip), x)
    close(y, y_ref, k, "avg_pool2d")

    gy = layout(rand(rng, y_ref.shape, dtype), kind)
    gx_ref = REF.avg_pool2d_grad(gy, x.shape, *pool_args(p), cip)
    gx = unchanged(lambda g: NAT.avg_pool2d_grad(g, x.shape, *pool_args(p), cip), gy)
    close(gx, gx_ref, k, "avg_pool2d_grad")


@pytest.mark.parametrize("kernel,stride,padding", [((3, 3), (2, 2), (1, 1)), ((3, 3), (1, 1), (1, 1)),
                                                   ((2, 3), (3, 2), (1, 0)), ((2, 2), (2, 2), (0, 0))])
@pytest.mark.parametrize("cip", [True, False])
def test_pool_threaded_sizes(kernel, stride, padding, cip):
    # large enough for the OpenMP path
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 16, 31, 30))
    args = (kernel, stride, padding)
    y_ref, am_ref = REF.max_pool2d(x, *args)
    y, am = NAT.max_pool2d(x, *args)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(am, am_ref)
    gy = rng.standard_normal(y.shape)
    close(NAT.max_pool2d_grad(gy, am, x.shape), REF.max_pool2d_grad(gy, am_ref, x.shape), 4)
    close(NAT.avg_pool2d(x, *args, cip), REF.avg_pool2d(x, *args, cip), 9)
    close(NAT.avg_pool2d_grad(gy, x.shape, *args, cip), REF.avg_pool2d_grad(gy, x.shape, *args, cip), 9)


def test_pool_empty_batch():
    x = np.zeros((0, 3, 4, 4), np.float32)
    y, am = NAT.max_pool2d(x, (2, 2), (2, 2), (0, 0))
    assert y.shape == am.shape == (0, 3, 2, 2)
    assert NAT.max_pool2d_grad(y, am, x.shape).shape == x.shape
    assert NAT.avg_pool2d(x, (3, 3), (1, 1), (1, 1)).shape == (0, 3, 4, 4)


# --- batch norm -----------------------------------------------------------------------------
@st.composite
def bn_shapes(draw):
    nd = draw(st.sampled_from([2, 2, 3, 4]))
    if nd == 2:  # (N, C): many rows, few or many channels
        shape = (draw(st.sampled_from([2, 3, 7, 64, 131])), draw(st.sampled_from([1, 2, 3, 5, 17, 70])))
    else:
        shape = (draw(st.integers(1, 4)), draw(ODD)) + tuple(draw(ODD) for _ in range(nd - 2))
    if math.prod(shape) // shape[1] < 2:
        shape = (shape[0] + 1,) + shape[1:]
    return shape


def bn_m(shape):
    return math.prod(shape) // shape[1]


@given(shape=bn_shapes(), dtype=DTYPES, kind=LAYOUTS, affine=st.booleans(), eps=st.sampled_from([1e-5, 0.1]),
       offset=st.sampled_from([0.0, 30.0]), seed=st.integers(0, 2**31 - 1))
def test_batch_norm_train_matches_reference(shape, dtype, kind, affine, eps, offset, seed):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = layout(rand(rng, shape, dtype, -3, 3) + dtype(offset), kind)  # offset: |mean| >> std
    gamma = rand(rng, (c,), dtype, 0.5, 2.0) if affine else None
    beta = rand(rng, (c,), dtype) if affine else None
    expected = REF.batch_norm_train(x, gamma, beta, eps)
    actual = unchanged(lambda *a: NAT.batch_norm_train(*a, eps), x, gamma, beta)
    k = bn_m(shape) * (1 + offset)  # the reference's float32 two-pass error grows with the offset
    for what, a, e in zip(("y", "mean", "var"), actual, expected):
        close(a, e, k, f"batch_norm_train {what}")

    gy = layout(rand(rng, shape, dtype), kind)
    mean, var = expected[1], expected[2]
    invstd = (1.0 / np.sqrt(var + eps)).astype(dtype)
    exp_g = REF.batch_norm_grad(gy, x, mean, invstd, gamma, True)
    act_g = unchanged(lambda *a: NAT.batch_norm_grad(*a, True), gy, x, mean, invstd, gamma)
    for what, a, e in zip(("gx", "ggamma", "gbeta"), act_g, exp_g):
        close(a, e, k, f"batch_norm_grad {what}")


@given(shape=bn_shapes(), dtype=DTYPES, kind=LAYOUTS, affine=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_batch_norm_eval_matches_reference(shape, dtype, kind, affine, seed):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = layout(rand(rng, shape, dtype, -3, 3), kind)
    mean, var = rand(rng, (c,), dtype), rand(rng, (c,), dtype, 0.2, 3.0)
    gamma = rand(rng, (c,), dtype, 0.5, 2.0) if affine else None
    beta = rand(rng, (c,), dtype) if affine else None
    close(unchanged(lambda *a: NAT.batch_norm_eval(*a, 1e-5), x, mean, var, gamma, beta),
          REF.batch_norm_eval(x, mean, var, gamma, beta, 1e-5), 1, "batch_norm_eval")
    gy = layout(rand(rng, shape, dtype), kind)
    invstd = (1.0 / np.sqrt(var + 1e-5)).astype(dtype)
    for what, a, e in zip(("gx", "ggamma", "gbeta"), NAT.batch_norm_grad(gy, x, mean, invstd, gamma, False),
                          REF.batch_norm_grad(gy, x, mean, invstd, gamma, False)):
        close(a, e, bn_m(shape), f"batch_norm_grad(eval) {what}")


@pytest.mark.parametrize("shape", [(128, 64, 16, 16), (4096, 3), (2, 40, 100), (1, 8, 64, 64)])
def test_batch_norm_threaded_sizes(shape):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(np.float32) * 2 + 5
    c = shape[1]
    gamma, beta = rand(rng, (c,), np.float32, 0.5, 2), rand(rng, (c,), np.float32)
    exp, act = REF.batch_norm_train(x, gamma, beta, 1e-5), NAT.batch_norm_train(x, gamma, beta, 1e-5)
    for a, e in zip(act, exp):
        close(a, e, bn_m(shape) * 5)
    gy = rng.standard_normal(shape).astype(np.float32)
    invstd = (1 / np.sqrt(exp[2] + 1e-5)).astype(np.float32)
    for a, e in zip(NAT.batch_norm_grad(gy, x, exp[1], invstd, gamma, True),
                    REF.batch_norm_grad(gy, x, exp[1], invstd, gamma, True)):
        close(a, e, bn_m(shape) * 5)


def test_batch_norm_one_pass_variance_is_accurate():
    # a large mean and a small spread: the shifted one-pass sums keep the variance accurate
    rng = np.random.default_rng(3)
    x = (1e4 + rng.standard_normal((256, 4, 8, 8))).astype(np.float32)
    _, mean, var = NAT.batch_norm_train(x, None, None, 1e-5)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(var, x64.var(axis=(0, 2, 3)), rtol=1e-4)


# --- layer norm -----------------------------------------------------------------------------
@st.composite
def ln_cases(draw):
    ndim = draw(st.integers(1, 3))
    norm = tuple(draw(ODD) for _ in range(ndim))
    lead = tuple(draw(st.integers(1, 5)) for _ in range(draw(st.integers(0, 2))))
    return lead + norm, ndim


@given(case=ln_cases(), dtype=DTYPES, kind=LAYOUTS, affine=st.sampled_from(["none", "gamma", "beta", "both"]),
       eps=st.sampled_from([1e-5, 0.1]), seed=st.integers(0, 2**31 - 1))
def test_layer_norm_matches_reference(case, dtype, kind, affine, eps, seed):
    shape, ndim = case
    rng = np.random.default_rng(seed)
    norm = shape[len(shape) - ndim:]
    x = layout(rand(rng, shape, dtype, -3, 3), kind)
    gamma = rand(rng, norm, dtype, 0.5, 2.0) if affine in ("gamma", "both") else None
    beta = rand(rng, norm, dtype) if affine in ("beta", "both") else None
    m = math.prod(norm)
    expected = REF.layer_norm(x, ndim, gamma, beta, eps)
    actual = unchanged(lambda *a: NAT.layer_norm(a[0], ndim, a[1], a[2], eps), x, gamma, beta)
    for what, a, e in zip(("y", "mean", "invstd"), actual, expected):
        close(a, e, m, f"layer_norm {what}")
    gy = layout(rand(rng, shape, dtype), kind)
    _, mean, invstd = expected
    k = max(m, math.prod(shape) // m)
    for what, a, e in zip(("gx", "ggamma", "gbeta"),
                          unchanged(lambda *a: NAT.layer_norm_grad(*a, ndim), gy, x, mean, invstd, gamma),
                          REF.layer_norm_grad(gy, x, mean, invstd, gamma, ndim)):
        close(a, e, k, f"layer_norm_grad {what}")


@pytest.mark.parametrize("shape,ndim", [((512, 256), 1), ((3, 64, 7, 7), 3), ((2, 1, 70000), 1)])
def test_layer_norm_threaded_sizes(shape, ndim):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(np.float32)
    norm = shape[len(shape) - ndim:]
    gamma, beta = rand(rng, norm, np.float32, 0.5, 2), rand(rng, norm, np.float32)
    exp, act = REF.layer_norm(x, ndim, gamma, beta, 1e-5), NAT.layer_norm(x, ndim, gamma, beta, 1e-5)
    for a, e in zip(act, exp):
        close(a, e, math.prod(norm))
    gy = rng.standard_normal(shape).astype(np.float32)
    for a, e in zip(NAT.layer_norm_grad(gy, x, exp[1], exp[2], gamma, ndim),
                    REF.layer_norm_grad(gy, x, exp[1], exp[2], gamma, ndim)):
        close(a, e, max(math.prod(norm), x.size // math.prod(norm)))


# --- fused softmax cross-entropy ------------------------------------------------------------
def ce_formula(logits, target, e):
    """The contract written out in float64: loss, probs, and the gradient for g = 1."""
    z = logits.astype(np.float64)
    logp = z - z.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    n, c = z.shape
    loss = -((1 - e) * logp[np.arange(n), target] + e * logp.mean(axis=1))
    soft = np.full((n, c), e / c)
    soft[np.arange(n), target] += 1 - e
    return loss, np.exp(logp), np.exp(logp) - soft


@given(n=st.sampled_from([1, 2, 5, 13, 128]), c=st.sampled_from([1, 2, 3, 10, 37, 1000]), dtype=DTYPES,
       kind=st.sampled_from(["contiguous", "fortran", "sliced"]), e=st.sampled_from([0.0, 0.1, 1.0]),
       scale=st.sampled_from([1.0, 100.0]), seed=st.integers(0, 2**31 - 1))
def test_cross_entropy_matches_reference(n, c, dtype, kind, e, scale, seed):
    rng = np.random.default_rng(seed)
    logits = layout(rand(rng, (n, c), dtype, -scale, scale), kind)
    target = rng.integers(0, c, size=n)
    loss, probs = unchanged(lambda a, t: NAT.cross_entropy(a, t, e), logits, target)
    loss_ref, probs_ref = REF.cross_entropy(logits, target, e)
    close(loss, loss_ref, c, "cross_entropy loss")
    close(probs, probs_ref, c, "cross_entropy probs")
    f_loss, f_probs, f_grad = ce_formula(logits, target, e)
    np.testing.assert_allclose(loss, f_loss, **tol(dtype, c, f_loss * scale))
    np.testing.assert_allclose(probs, f_probs, **tol(dtype, c, f_probs))

    g = rand(rng, (n,), dtype)
    grad = unchanged(lambda *a: NAT.cross_entropy_grad(*a, e), g, probs, target)
    close(grad, REF.cross_entropy_grad(g, probs, target, e), 1, "cross_entropy_grad")
    np.testing.assert_allclose(grad, g.astype(np.float64)[:, None] * f_grad, **tol(dtype, c, f_grad))


def test_cross_entropy_stable_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-1e38, 1e38, 0.0]], np.float32)
    loss, probs = NAT.cross_entropy(logits, np.array([0, 0]), 0.0)
    np.testing.assert_allclose(loss, [0.0, 2e38], rtol=1e-6)
    np.testing.assert_array_equal(probs, [[1, 0, 0], [0, 1, 0]])


def test_cross_entropy_target_dtypes():
    logits = np.random.default_rng(5).standard_normal((4, 3))
    for t in (np.array([0, 2, 1, 2], np.int32), np.array([0, 2, 1, 2], np.uint8)):
        np.testing.assert_allclose(NAT.cross_entropy(logits, t, 0.1)[0], REF.cross_entropy(logits, t, 0.1)[0])


# --- non-contiguous and concurrent calls ---------------------------------------------------
def test_concurrent_calls_from_python_threads():
    # the GIL is released and each calling thread has its own workspace
    rng = np.random.default_rng(6)
    xs = [rng.standard_normal((8, 16, 20, 20)) for _ in range(6)]

    def work(x):
        return (NAT.max_pool2d(x, (3, 3), (2, 2), (1, 1))[0], NAT.avg_pool2d_grad(x[:, :, :10, :10], x.shape,
                (3, 3), (2, 2), (1, 1), False), NAT.batch_norm_train(x, None, None, 1e-5)[0],
                NAT.layer_norm_grad(x, x, *NAT.layer_norm(x, 2, None, None, 1e-5)[1:], None, 2)[0])

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, xs * 3))
    for x, got in zip(xs * 3, results):
        for a, b in zip(got, work(x)):
            np.testing.assert_array_equal(a, b)


# --- errors ---------------------------------------------------------------------------------
def test_error_messages_name_shapes_and_dtypes():
    x = np.zeros((2, 3, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"max_pool2d: expected a 4-D input .* got shape \(3, 4\)"):
        C.max_pool2d(np.zeros((3, 4), np.float32), (2, 2), (2, 2), (0, 0))
    with pytest.raises(TypeError, match="float32 or all float64, got int64"):
        C.max_pool2d(np.zeros((1, 1, 2, 2), np.int64), (2, 2), (2, 2), (0, 0))
    with pytest.raises(ValueError, match=r"padding \(2, 0\) must be between 0 and half the kernel \(3, 3\)"):
        C.avg_pool2d(x, (3, 3), (1, 1), (2, 0))
    with pytest.raises(ValueError, match=r"input \(2, 3, 4, 4\) is smaller than the kernel \(5, 5\)"):
        C.max_pool2d(x, (5, 5), (1, 1), (0, 0))
    y, am = C.max_pool2d(x, (2, 2), (2, 2), (0, 0))
    with pytest.raises(TypeError, match="argmax must be int64, got int32"):
        C.max_pool2d_grad(y, am.astype(np.int32), x.shape)
    bad = am.copy()
    bad[1, 2, 0, 1] = 16
    with pytest.raises(IndexError, match=r"argmax\[1, 2, 0, 1\] = 16 is outside the 4 x 4 input plane"):
        C.max_pool2d_grad(y, bad, x.shape)
    with pytest.raises(ValueError, match=r"gradient has shape \(2, 3, 3, 3\), expected \(2, 3, 2, 2\)"):
        C.avg_pool2d_grad(np.zeros((2, 3, 3, 3), np.float32), x.shape, (2, 2), (2, 2), (0, 0))
    with pytest.raises(ValueError, match=r"gamma has shape \(4,\), expected \(3,\) for input \(2, 3, 4, 4\)"):
        C.batch_norm_train(x, np.ones(4, np.float32), None, 1e-5)
    with pytest.raises(TypeError, match="float32, float64"):
        C.batch_norm_train(x, np.ones(3, np.float64), None, 1e-5)
    with pytest.raises(ValueError, match=r"expected an input \(N, C\) or \(N, C, ...\), got shape \(5,\)"):
        C.batch_norm_train(np.zeros(5), None, None, 1e-5)
    with pytest.raises(ValueError, match=r"gradient has shape \(2, 3\), expected the input's shape"):
        C.batch_norm_grad(np.zeros((2, 3)), np.zeros((2, 3, 1)), np.zeros(3), np.ones(3), None, True)
    with pytest.raises(ValueError, match=r"beta has shape \(4,\), expected \(4, 4\)"):
        C.layer_norm(x, 2, None, np.zeros(4, np.float32), 1e-5)
    with pytest.raises(ValueError, match=r"ndim \(the number of normalised trailing axes of the input \(2, 3, 4, 4\)\) must be between 1 and 4, got 5"):
        C.layer_norm(x, 5, None, None, 1e-5)
    logits = np.zeros((4, 10), np.float32)
    with pytest.raises(IndexError, match=r"target\[2\] = 10 is out of range for 10 classes \(input \(4, 10\)\)"):
        C.cross_entropy(logits, np.array([0, 1, 10, -1]), 0.0)
    with pytest.raises(IndexError, match=r"cross_entropy_grad: target\[0\] = -3 is out of range"):
        C.cross_entropy_grad(np.ones(4, np.float32), logits, np.array([-3, 1, 1, 1]), 0.0)
    with pytest.raises(TypeError, match="target must hold int64 class indices, got float64"):
        C.cross_entropy(logits, np.zeros(4), 0.0)
    with pytest.raises(ValueError, match=r"target has shape \(3,\), expected \(4,\)"):
        C.cross_entropy(logits, np.zeros(3, np.int64), 0.0)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
        C.cross_entropy(logits, np.zeros(4, np.int64), 1.5)


def test_native_backend_falls_back_for_other_dtypes():
    x = np.arange(16, dtype=np.int64).reshape(1, 1, 4, 4)
    for a, b in zip(NAT.max_pool2d(x, (2, 2), (2, 2), (0, 0)), REF.max_pool2d(x, (2, 2), (2, 2), (0, 0))):
        np.testing.assert_array_equal(a, b)
    h = np.ones((2, 3), np.float16)
    np.testing.assert_array_equal(NAT.batch_norm_eval(h, np.zeros(3, np.float16), np.ones(3, np.float16),
                                                      None, None, 1e-5), h)


# --- gradcheck through the autograd engine on the native backend -----------------------------
@pytest.fixture
def native():
    with tg.use_backend("native"):
        yield


def leaf(rng, shape, spread=False):
    if spread:  # distinct values far apart (no max-pool kinks within eps)
        v = rng.permutation(math.prod(shape)).reshape(shape) * 0.1
    else:
        v = rng.standard_normal(shape)
    return tg.Tensor(v.astype(np.float64), requires_grad=True)


@given(p=pool_cases(), seed=st.integers(0, 2**31 - 1), cip=st.booleans())
def test_gradcheck_pooling(native, p, seed, cip):
    rng = np.random.default_rng(seed)
    n, c, h, w = p["x_shape"]
    x = leaf(rng, (1, min(c, 2), h, w), spread=True)
    k, s, pd = pool_args(p)
    gradcheck(lambda t: F.max_pool2d(t, k, s, pd), [x])
    gradcheck(lambda t: F.avg_pool2d(t, k, s, pd, count_include_pad=cip), [x])


@given(shape=bn_shapes(), training=st.booleans(), affine=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_gradcheck_batch_norm(native, shape, training, affine, seed):
    rng = np.random.default_rng(seed)
    shape = shape[:2] + shape[2:][:1] if math.prod(shape) > 60 else shape
    shape = (min(shape[0], 6), min(shape[1], 5)) + shape[2:]
    if math.prod(shape) // shape[1] < 2:
        shape = (shape[0] + 1,) + shape[1:]
    c = shape[1]
    x = leaf(rng, shape)
    rm, rv = tg.Tensor(np.zeros(c)), tg.Tensor(np.ones(c) * 1.5)
    if affine:
        wgt, b = leaf(rng, (c,)), leaf(rng, (c,))
        gradcheck(lambda t, u, v: F.batch_norm(t, None if training else rm, None if training else rv, u, v,
                                               training=training), [x, wgt, b])
    else:
        gradcheck(lambda t: F.batch_norm(t, None if training else rm, None if training else rv,
                                         training=training), [x])


@given(case=ln_cases(), affine=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_gradcheck_layer_norm(native, case, affine, seed):
    shape, ndim = case
    rng = np.random.default_rng(seed)
    norm = shape[len(shape) - ndim:]
    x = leaf(rng, shape)
    if affine:
        gradcheck(lambda t, u, v: F.layer_norm(t, norm, u, v), [x, leaf(rng, norm), leaf(rng, norm)])
    else:
        gradcheck(lambda t: F.layer_norm(t, norm), [x])


@given(n=st.integers(1, 6), c=st.integers(1, 7), e=st.sampled_from([0.0, 0.2]), seed=st.integers(0, 2**31 - 1))
def test_gradcheck_cross_entropy(native, n, c, e, seed):
    rng = np.random.default_rng(seed)
    x = leaf(rng, (n, c))
    target = tg.Tensor(rng.integers(0, c, size=n))
    gradcheck(lambda t: F.cross_entropy(t, target, label_smoothing=e, reduction="none"), [x])
