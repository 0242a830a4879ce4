"""Every non-reference backend equals the NumPy reference backend, primitive by primitive.

For each method of the backend interface (the public methods of `NumpyBackend`) hypothesis draws
inputs in float32 and float64 -- odd sizes (1, primes), non-contiguous layouts (permuted, stepped,
negative-stride and stride-0 broadcast views) -- and the result of every available backend other than
"numpy" must match the reference:

* float32: rtol 1e-4, atol 1e-5 * sqrt(K) * max(1, max|reference|) * cond
* float64: rtol 1e-10, atol 1e-12 * sqrt(K) * max(1, max|reference|) * cond

where K is the length of the reduction behind one output element (k of a matmul, C/groups * KH * KW
of a convolution, the number of values per channel of a batch norm, ...): kernels may sum in another
order, and the rounding error of a sum grows like sqrt(K) * eps. cond is 1, except for batch/layer
norm where it is max(1, max|x| * max(invstd)): there an error in the mean is amplified by 1/std, up to
1/sqrt(eps) for (nearly) constant groups. Max-pooling values are exact (equal), and so are argmax
indices when the window values are distinct. Backends must also return the NumPy backend's shapes
and dtypes and never write into their inputs.

For float32 inputs the reference values are the NumPy backend's, computed in float64 on the same
(float32) inputs and rounded to float32: the NumPy backend's own float32 rounding (e.g. its naive
float32 sum over a strided batch axis, ~100 ulps for 4000 values) must not count against the kernel.

Every test runs on "small" and on "big" inputs (the `big` fixture): big ones go past the kernels'
blocking (GEMM panels, 8-channel conv micro-tiles) and past the element counts where they start
threads (2**14-2**15 elements), still with odd sizes. Convolutions also run with <= 4 and with > 4
input channels per group (the `path` parameter: the native direct kernel vs im2col + GEMM).

The "cuda" backend runs here twice: "cuda-emulated" is CudaBackend on the CPU emulation of the very same
kernels/*.cu sources (tinygrad_course.backend.cuda.emulated_runtime: needs only a C++17 compiler; outputs
poisoned with NaN), small and big inputs (about 10 s in all); tests/test_cuda_kernels.py adds targeted cases
(GEMM and convolution tile boundaries, split-K). "cuda-host" is CudaBackend on a real GPU wrapped in
HostArrays (NumPy arrays in and out); it is marked `gpu` and skips without CuPy and a GPU.

With only the numpy backend available (tinygrad_course._C not built, no C++ compiler) these tests skip.
"""
from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_course as tg
import tinygrad_course.backend as tg_backend
from tinygrad_course.backend.numpy_backend import NumpyBackend
from tinygrad_course.nn import functional as F

from conftest import CUDA_BACKEND_PARAMS, NATIVE_ISAS, forced_isa, make_cuda_backend
from strategies import ALL_LAYOUTS, ODD_SIZES, WRITEABLE_LAYOUTS, arrays, conv_out, shapes

REF = NumpyBackend()
OTHER_BACKENDS = [b for b in tg.available_backends() if b != "numpy"]
_SKIP = pytest.mark.skip(reason="only the 'numpy' backend is available (tinygrad_course._C is not built), "
                                "so there is no other backend to compare with the reference")


def _backend_object(name):
    with tg.use_backend(name):
        return tg.get_backend()


# The native kernels also with each lower ISA they can run with here ("native-avx2", ...; conftest.py).
NATIVE_LOWER_ISAS = [f"native-{isa}" for isa in NATIVE_ISAS[1:]]


@pytest.fixture(params=(OTHER_BACKENDS + NATIVE_LOWER_ISAS or [pytest.param("native", marks=_SKIP)])
                + CUDA_BACKEND_PARAMS, ids=str)
def other(request, monkeypatch):
    """The backend object under test (every available backend except the reference)."""
    if request.param.startswith("native-"):
        with forced_isa(request.param[len("native-"):]):
            yield _backend_object("native")
        return
    if request.param not in ("cuda-emulated", "cuda-host"):
        yield _backend_object(request.param)
        return
    backend = make_cuda_backend(request.param)
    # registered for this test, so that tg.use_backend(backend.name) selects it (the network test)
    monkeypatch.setitem(tg_backend._instances, backend.name, backend)
    yield backend


DTYPES = st.sampled_from([np.float32, np.float64])
SIZES = st.one_of(st.sampled_from(ODD_SIZES), st.integers(1, 9))


@pytest.fixture(params=["small", "big"])
def big(request):
    """True for the "big" inputs described at the top of this file."""
    return request.param == "big"


def tolerances(dtype, k, ref, cond=1.0):
    scale = max(1.0, float(np.max(np.abs(ref)))) if np.size(ref) else 1.0
    if np.dtype(dtype) == np.float32:
        return 1e-4, 1e-5 * math.sqrt(max(k, 1)) * scale * cond
    return 1e-10, 1e-12 * math.sqrt(max(k, 1)) * scale * cond


def assert_same(actual, expected, k, what, cond=1.0):
    """actual (backend under test) equals expected (reference) in shape, dtype and value."""
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != reference {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != reference {expected.dtype}"
    rtol, atol = tolerances(expected.dtype, k, expected, cond)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def norm_cond(x, invstd):
    """Condition factor of a normalisation: how much 1/std amplifies rounding errors of x - mean."""
    return max(1.0, float(np.max(np.abs(x))) * float(np.max(invstd))) if np.size(x) else 1.0


def _upcast(args):
    return [a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype == np.float32 else a for a in args]


def _like(value, template):
    """`value` (float64 reference results) cast to the dtypes of `template` (the float32 reference's)."""
    if isinstance(template, tuple):
        return tuple(_like(v, t) for v, t in zip(value, template))
    return np.asarray(value).astype(template.dtype) if isinstance(template, np.ndarray) else value


def call_both(other, method, *args, **kwargs):
    """Run `method` on the reference and on `other`; check `other` left its array inputs untouched.

    The reference result has the NumPy backend's shapes and dtypes, and for float32 inputs the values
    it computes from the same inputs in float64 (see the top of the file).
    """
    expected = getattr(REF, method)(*args, **kwargs)
    if any(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in args):
        expected = _like(getattr(REF, method)(*_upcast(args), **kwargs), expected)
    before = [np.array(a, copy=True) for a in args if isinstance(a, np.ndarray)]
    actual = getattr(other, method)(*args, **kwargs)
    after = [a for a in args if isinstance(a, np.ndarray)]
    for i, (b, a) in enumerate(zip(before, after)):
        np.testing.assert_array_equal(a, b, err_msg=f"{method} modified its input {i}")
    return actual, expected


def arr(data, shape, dtype, lo=-1.0, hi=1.0, layouts=ALL_LAYOUTS, **kw):
    return data.draw(arrays(tuple(shape), lo, hi, dtype=dtype, layouts=layouts, **kw))


# --- the interface itself -------------------------------------------------------------------
PRIMITIVES = sorted(n for n, f in inspect.getmembers(NumpyBackend, inspect.isfunction) if not n.startswith("_"))
COVERED = {"matmul", "conv2d", "conv2d_grad_input", "conv2d_grad_weight", "max_pool2d", "max_pool2d_grad",
           "avg_pool2d", "avg_pool2d_grad", "batch_norm_train", "batch_norm_eval", "batch_norm_grad",
           "layer_norm", "layer_norm_grad", "cross_entropy", "cross_entropy_grad", "relu", "relu_grad"}


def test_every_primitive_has_an_equivalence_test():
    # a new primitive in the backend interface needs a test here
    assert set(PRIMITIVES) == COVERED


def test_other_backends_implement_the_whole_interface(other):
    for name in PRIMITIVES:
        assert callable(getattr(other, name, None)), f"{type(other).__name__} lacks {name}"


# --- matmul ---------------------------------------------------------------------------------
@given(data=st.data())
def test_matmul(other, big, data):
    dtype = data.draw(DTYPES)
    m, k, n = data.draw(SIZES), data.draw(st.one_of(SIZES, st.integers(1, 70))), data.draw(SIZES)
    if big:  # across the GEMM's register and cache blocks (MR 6-14, NR 16-32, KC 256)
        m = data.draw(st.sampled_from([13, 15, 29, 337]))
        k = data.draw(st.sampled_from([255, 257, 301]))
        n = data.draw(st.sampled_from([17, 33, 129]))
    batch_a = data.draw(shapes(max_dims=2, max_side=3, max_size=6))
    batch_b = data.draw(st.sampled_from([batch_a, batch_a[1:], (), tuple(1 for _ in batch_a)]))
    a = arr(data, batch_a + (m, k), dtype)
    b = arr(data, batch_b + (k, n), dtype)
    actual, expected = call_both(other, "matmul", a, b)
    assert_same(actual, expected, k, "matmul")


# --- relu -------------------------------------------------------------------------------------
@given(data=st.data())
def test_relu_and_its_gradient(other, big, data):
    dtype = data.draw(DTYPES)
    shape = (3, 70_000) if big else data.draw(shapes(max_dims=4, max_side=7, max_size=200))
    x = arr(data, shape, dtype)
    g = arr(data, shape, dtype)
    actual, expected = call_both(other, "relu", x)
    np.testing.assert_array_equal(actual, expected)
    actual, expected = call_both(other, "relu_grad", g, x)
    np.testing.assert_array_equal(actual, expected)


# --- convolution ----------------------------------------------------------------------------
@st.composite
def conv_cases(draw, big, path):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    # <= 4 input channels per group: the native direct kernel; more: im2col + GEMM
    cin = groups * draw(st.integers(1, 4) if path == "direct" else st.integers(5, 9))
    cout = groups * draw(st.integers(5, 17) if big else st.integers(1, 9))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, kh)), draw(st.integers(0, kw)))
    hmin = max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0])
    wmin = max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1])
    n = draw(st.integers(1, 3))
    h, w = hmin + draw(st.sampled_from([0, 1, 2, 4, 6, 10])), wmin + draw(st.sampled_from([0, 1, 3, 5, 8]))
    if big:
        h, w = hmin + draw(st.sampled_from([17, 30])), wmin + draw(st.sampled_from([13, 29]))
    return dict(x_shape=(n, cin, h, w), w_shape=(cout, cin // groups, kh, kw), stride=stride,
                padding=padding, dilation=dilation, groups=groups)


CONV_PATHS = pytest.mark.parametrize("path", ["direct", "gemm"])


def _conv_k(c):
    return c["w_shape"][1] * c["w_shape"][2] * c["w_shape"][3]


def _conv_params(c):
    return c["stride"], c["padding"], c["dilation"], c["groups"]


def _conv_out_shape(c):
    n, _, h, w = c["x_shape"]
    f, _, kh, kw = c["w_shape"]
    return (n, f, conv_out(h, kh, c["stride"][0], c["padding"][0], c["dilation"][0]),
            conv_out(w, kw, c["stride"][1], c["padding"][1], c["dilation"][1]))


@CONV_PATHS
@given(data=st.data())
def test_conv2d(other, big, path, data):
    dtype, c = data.draw(DTYPES), data.draw(conv_cases(big, path))
    x, w = arr(data, c["x_shape"], dtype), arr(data, c["w_shape"], dtype)
    b = arr(data, (c["w_shape"][0],), dtype) if data.draw(st.booleans()) else None
    actual, expected = call_both(other, "conv2d", x, w, b, *_conv_params(c))
    assert expected.shape == _conv_out_shape(c)
    assert_same(actual, expected, _conv_k(c), "conv2d")


@CONV_PATHS
@given(data=st.data())
def test_conv2d_grad_input(other, big, path, data):
    dtype, c = data.draw(DTYPES), data.draw(conv_cases(big, path))
    gy, w = arr(data, _conv_out_shape(c), dtype), arr(data, c["w_shape"], dtype)
    actual, expected = call_both(other, "conv2d_grad_input", gy, w, c["x_shape"], *_conv_params(c))
    assert expected.shape == c["x_shape"]
    f, _, kh, kw = c["w_shape"]
    assert_same(actual, expected, f // c["groups"] * kh * kw, "conv2d_grad_input")


@CONV_PATHS
@given(data=st.data())
def test_conv2d_grad_weight(other, big, path, data):
    dtype, c = data.draw(DTYPES), data.draw(conv_cases(big, path))
    gy, x = arr(data, _conv_out_shape(c), dtype), arr(data, c["x_shape"], dtype)
    actual, expected = call_both(other, "conv2d_grad_weight", gy, x, c["w_shape"], *_conv_params(c))
    assert expected.shape == c["w_shape"]
    n, _, oh, ow = _conv_out_shape(c)
    assert_same(actual, expected, n * oh * ow, "conv2d_grad_weight")


# --- pooling --------------------------------------------------------------------------------
@st.composite
def pool_cases(draw, big):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    hmin, wmin = max(1, kernel[0] - 2 * padding[0]), max(1, kernel[1] - 2 * padding[1])
    n, c = draw(st.integers(1, 3)), draw(SIZES)
    h, w = hmin + draw(st.sampled_from([0, 1, 2, 5, 8])), wmin + draw(st.sampled_from([0, 1, 3, 6]))
    if big:  # > 2**15 elements: the kernels go parallel
        n, c, h, w = 2, 9, hmin + 47, wmin + 41
    return dict(x_shape=(n, c, h, w), kernel=kernel, stride=stride, padding=padding)


def _pool_out_shape(p):
    n, c, h, w = p["x_shape"]
    return (n, c, conv_out(h, p["kernel"][0], p["stride"][0], p["padding"][0]),
            conv_out(w, p["kernel"][1], p["stride"][1], p["padding"][1]))


@given(data=st.data())
def test_max_pool2d(other, big, data):
    dtype, p = data.draw(DTYPES), data.draw(pool_cases(big))
    distinct = data.draw(st.booleans())
    if distinct:  # no ties: the argmax is unique and must be the same
        x = arr(data, p["x_shape"], dtype, -100.0, 100.0, layouts=WRITEABLE_LAYOUTS, distinct_gap=1e-2)
    else:  # ties everywhere (stride-0 views, few distinct values): any maximising index is fine
        x = arr(data, p["x_shape"], dtype, -2.0, 2.0, integral=True)
    (y, am), (y_ref, am_ref) = call_both(other, "max_pool2d", x, p["kernel"], p["stride"], p["padding"])
    assert_same(y, y_ref, 1, "max_pool2d values")
    np.testing.assert_array_equal(y, y_ref)  # a maximum involves no rounding: exactly equal
    am = np.asarray(am)
    assert am.shape == am_ref.shape and am.dtype.kind in "iu"
    if distinct:
        np.testing.assert_array_equal(am, am_ref)
    n, c, h, w = p["x_shape"]
    picked = np.take_along_axis(x.reshape(n, c, h * w), am.reshape(n, c, -1).astype(np.int64), axis=-1)
    np.testing.assert_array_equal(picked.reshape(y_ref.shape), y_ref)  # argmax points at a maximum


@given(data=st.data())
def test_max_pool2d_grad(other, big, data):
    dtype, p = data.draw(DTYPES), data.draw(pool_cases(big))
    x = arr(data, p["x_shape"], dtype, layouts=WRITEABLE_LAYOUTS, distinct_gap=1e-3)
    _, argmax = REF.max_pool2d(x, p["kernel"], p["stride"], p["padding"])
    gy = arr(data, argmax.shape, dtype)
    actual, expected = call_both(other, "max_pool2d_grad", gy, argmax, p["x_shape"])
    k = math.ceil(p["kernel"][0] / p["stride"][0]) * math.ceil(p["kernel"][1] / p["stride"][1])
    assert_same(actual, expected, k, "max_pool2d_grad")


@given(data=st.data())
def test_avg_pool2d(other, big, data):
    dtype, p = data.draw(DTYPES), data.draw(pool_cases(big))
    cip = data.draw(st.booleans())
    x = arr(data, p["x_shape"], dtype)
    actual, expected = call_both(other, "avg_pool2d", x, p["kernel"], p["stride"], p["padding"], cip)
    assert expected.shape == _pool_out_shape(p)
    assert_same(actual, expected, p["kernel"][0] * p["kernel"][1], "avg_pool2d")


@given(data=st.data())
def test_avg_pool2d_grad(other, big, data):
    dtype, p = data.draw(DTYPES), data.draw(pool_cases(big))
    cip = data.draw(st.booleans())
    gy = arr(data, _pool_out_shape(p), dtype)
    actual, expected = call_both(other, "avg_pool2d_grad", gy, p["x_shape"], p["kernel"], p["stride"],
                                 p["padding"], cip)
    assert expected.shape == p["x_shape"]
    k = math.ceil(p["kernel"][0] / p["stride"][0]) * math.ceil(p["kernel"][1] / p["stride"][1])
    assert_same(actual, expected, k, "avg_pool2d_grad")


# --- normalisation --------------------------------------------------------------------------
@st.composite
def bn_shapes(draw, big):
    nd = draw(st.sampled_from([2, 3, 4]))
    shape = (draw(st.integers(1, 5)), draw(SIZES)) + tuple(draw(SIZES) for _ in range(nd - 2))
    if big:  # > 2**15 elements: the kernels go parallel
        shape = {2: (4099, 9), 3: (5, 7, 1031), 4: (4, 7, 37, 33)}[nd]
    if math.prod(shape) // shape[1] < 2:
        shape = (shape[0] + 1,) + shape[1:]
    return shape


def _bn_m(shape):
    return math.prod(shape) // shape[1]


EPS = st.sampled_from([1e-5, 1e-3, 0.1])


@given(data=st.data())
def test_batch_norm_train(other, big, data):
    dtype, shape, eps = data.draw(DTYPES), data.draw(bn_shapes(big)), data.draw(EPS)
    c = shape[1]
    x = arr(data, shape, dtype, -3.0, 3.0)
    gamma = arr(data, (c,), dtype, 0.5, 2.0) if data.draw(st.booleans()) else None
    beta = arr(data, (c,), dtype) if data.draw(st.booleans()) else None
    actual, expected = call_both(other, "batch_norm_train", x, gamma, beta, eps)
    assert len(actual) == 3
    cond = norm_cond(x, 1.0 / np.sqrt(expected[2].astype(np.float64) + eps))
    for what, a, e in zip(("y", "mean", "var"), actual, expected):
        assert_same(a, e, _bn_m(shape), f"batch_norm_train {what}", cond)


@given(data=st.data())
def test_batch_norm_eval(other, big, data):
    dtype, shape, eps = data.draw(DTYPES), data.draw(bn_shapes(big)), data.draw(EPS)
    c = shape[1]
    x = arr(data, shape, dtype, -3.0, 3.0)
    mean, var = arr(data, (c,), dtype), arr(data, (c,), dtype, 0.2, 3.0)
    gamma = arr(data, (c,), dtype, 0.5, 2.0) if data.draw(st.booleans()) else None
    beta = arr(data, (c,), dtype) if data.draw(st.booleans()) else None
    actual, expected = call_both(other, "batch_norm_eval", x, mean, var, gamma, beta, eps)
    assert_same(actual, expected, 1, "batch_norm_eval", norm_cond(x, 1.0 / np.sqrt(var + eps)))


@given(data=st.data())
def test_batch_norm_grad(other, big, data):
    dtype, shape, eps = data.draw(DTYPES), data.draw(bn_shapes(big)), data.draw(EPS)
    c = shape[1]
    training = data.draw(st.booleans())
    x = arr(data, shape, dtype, -3.0, 3.0)
    gamma = arr(data, (c,), dtype, 0.5, 2.0) if data.draw(st.booleans()) else None
    if training:
        _, mean, var = REF.batch_norm_train(x, gamma, None, eps)
    else:
        mean, var = arr(data, (c,), dtype), arr(data, (c,), dtype, 0.2, 3.0)
    invstd = (1.0 / np.sqrt(var + eps)).astype(dtype)
    gy = arr(data, shape, dtype)
    actual, expected = call_both(other, "batch_norm_grad", gy, x, mean, invstd, gamma, training)
    assert len(actual) == 3
    for what, a, e in zip(("grad_input", "grad_gamma", "grad_beta"), actual, expected):
        assert_same(a, e, _bn_m(shape), f"batch_norm_grad(training={training}) {what}", norm_cond(x, invstd))


@st.composite
def ln_cases(draw, big):
    ndim = draw(st.integers(1, 3))
    norm = tuple(draw(SIZES) for _ in range(ndim))
    lead = draw(shapes(max_dims=2, max_side=5))
    if big:  # > 2**15 elements: the kernels go parallel
        norm = {1: (257,), 2: (13, 37), 3: (3, 7, 11)}[ndim]
        lead = (37, 5) if ndim > 1 else (131,)
    return lead + norm, ndim


@given(data=st.data())
def test_layer_norm(other, big, data):
    dtype, (shape, ndim), eps = data.draw(DTYPES), data.draw(ln_cases(big)), data.draw(EPS)
    norm = shape[len(shape) - ndim:]
    x = arr(data, shape, dtype, -3.0, 3.0)
    gamma = arr(data, norm, dtype, 0.5, 2.0) if data.draw(st.booleans()) else None
    beta = arr(data, norm, dtype) if data.draw(st.booleans()) else None
    actual, expected = call_both(other, "layer_norm", x, ndim, gamma, beta, eps)
    assert len(actual) == 3
    cond = norm_cond(x, expected[2])
    for what, a, e in zip(("y", "mean", "invstd"), actual, expected):
        assert_same(a, e, math.prod(norm), f"layer_norm {what}", cond)


@given(data=st.data())
def test_layer_norm_grad(other, big, data):
    dtype, (shape, ndim), eps = data.draw(DTYPES), data.draw(ln_cases(big)), data.draw(EPS)
    norm = shape[len(shape) - ndim:]
    x = arr(data, shape, dtype, -3.0, 3.0)
    gamma = arr(data, norm, dtype, 0.5, 2.0) if data.draw(st.booleans()) else None
    _, mean, invstd = REF.layer_norm(x, ndim, gamma, None, eps)
    gy = arr(data, shape, dtype)
    actual, expected = call_both(other, "layer_norm_grad", gy, x, mean, invstd, gamma, ndim)
    assert len(actual) == 3
    m = max(math.prod(norm), math.prod(shape[:len(shape) - ndim]))
    for what, a, e in zip(("grad_input", "grad_gamma", "grad_beta"), actual, expected):
        assert_same(a, e, m, f"layer_norm_grad {what}", norm_cond(x, invstd))


# --- fused softmax cross-entropy ------------------------------------------------------------------
@st.composite
def ce_cases(draw, big):
    n, c = draw(SIZES), draw(st.one_of(SIZES, st.integers(1, 40)))
    if big:  # > 2**14 elements: the kernels go parallel
        n, c = 131, draw(st.sampled_from([127, 1001]))
    target = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    return n, c, target, draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))


@given(data=st.data())
def test_cross_entropy(other, big, data):
    dtype, (n, c, target, ls) = data.draw(DTYPES), data.draw(ce_cases(big))
    scale = data.draw(st.sampled_from([1.0, 10.0, 100.0]))  # large logits: the max-shift must be there
    logits = arr(data, (n, c), dtype, -scale, scale)
    actual, expected = call_both(other, "cross_entropy", logits, target, ls)
    assert len(actual) == 2
    for what, a, e in zip(("loss", "probs"), actual, expected):
        assert_same(a, e, c, f"cross_entropy {what}")


@given(data=st.data())
def test_cross_entropy_grad(other, big, data):
    dtype, (n, c, target, ls) = data.draw(DTYPES), data.draw(ce_cases(big))
    _, probs = REF.cross_entropy(arr(data, (n, c), dtype, -5.0, 5.0), target, ls)
    g = arr(data, (n,), dtype)
    actual, expected = call_both(other, "cross_entropy_grad", g, probs, target, ls)
    assert_same(actual, expected, 1, "cross_entropy_grad")


# --- end to end: one small network, forward and backward, on both backends ---------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_small_network_same_loss_and_gradients(other, dtype):
    rng = np.random.default_rng(0)

    def run(backend_name):
        x = tg.Tensor(rng_x.copy())
        params = [tg.Tensor(p.copy(), requires_grad=True) for p in raw_params]
        w1, b1, g, bt, w2, b2 = params
        with tg.use_backend(backend_name):
            h = F.conv2d(x, w1, b1, stride=1, padding=1).relu()
            h = F.batch_norm(h, None, None, g, bt, training=True)
            h = F.max_pool2d(h, 2)
            h = F.avg_pool2d(h, 3, stride=2, padding=1, count_include_pad=False)
            h = F.layer_norm(h.flatten(1), h.shape[1] * h.shape[2] * h.shape[3])
            loss = F.cross_entropy(F.linear(h, w2, b2), tg.Tensor(np.array([1, 0, 3, 2, 2])))
            loss.backward()
        return loss.item(), [p.grad.numpy() for p in params]

    rng_x = rng.standard_normal((5, 3, 11, 7)).astype(dtype)
    raw_params = [rng.standard_normal(s).astype(dtype) * 0.3 for s in
                  [(4, 3, 3, 3), (4,), (4,), (4,), (4, 4 * 3 * 2), (4,)]]
    loss_ref, grads_ref = run("numpy")
    loss, grads = run(other.name)
    rtol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(loss, loss_ref, rtol=rtol)
    for g, gr in zip(grads, grads_ref):
        np.testing.assert_allclose(g, gr, rtol=rtol, atol=rtol * max(1.0, float(np.abs(gr).max())))
