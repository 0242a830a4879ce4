"""Tests for the C++ GEMM exposed as tinygrad_course._C.matmul (and the native backend).

Tolerances: results are compared against a float64 NumPy reference.
  * float64: rtol = atol = 1e-12 (entries are O(sqrt(K)) with |x| <= 1 inputs).
  * float32: rtol = atol = 1e-5 * max(1, sqrt(K)); the blocked kernel sums in a
    different order than BLAS, so float32 rounding error grows ~ sqrt(K) * eps.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

C = pytest.importorskip("tinygrad_course._C")

# Every test once per ISA the kernels can run with here (AVX-512, AVX2, baseline; conftest.py).
pytestmark = pytest.mark.usefixtures("native_isa")

PRIMES = [2, 3, 5, 7, 11, 13, 17, 31, 37, 61, 67]
dims = st.one_of(st.sampled_from([0, 1, *PRIMES]), st.integers(0, 70))
batches = st.integers(1, 3)
dtypes = st.sampled_from([np.float32, np.float64])
layouts = st.sampled_from(["contiguous", "transposed", "strided", "fortran"])


def tol(dtype, k):
    if np.dtype(dtype) == np.float64:
        return 1e-12
    return 1e-5 * max(1.0, math.sqrt(k))


def make(rng, shape, dtype, layout):
    """A (..., r, c) array of the given dtype with the requested memory layout."""
    *lead, r, c = shape

    def rand(*s):
        return rng.uniform(-1, 1, size=s).astype(dtype)

    if layout == "contiguous":
        x = rand(*shape)
    elif layout == "transposed":  # a view with swapped strides
        x = np.swapaxes(rand(*lead, c, r), -1, -2)
    elif layout == "strided":  # a slice with a step along both matrix axes
        x = rand(*lead, 2 * r, 3 * c)[..., ::2, ::3]
    elif layout == "fortran":
        x = np.asfortranarray(rand(*shape))
    else:
        raise AssertionError(layout)
    assert x.shape == tuple(shape) and x.dtype == dtype
    if layout != "contiguous" and r > 1 and c > 1:
        assert not x.flags.c_contiguous
    return x


def reference(a, b):
    return np.matmul(a.astype(np.float64), b.astype(np.float64))


def check(a, b):
    a_before, b_before = a.copy(), b.copy()
    out = C.matmul(a, b)
    assert isinstance(out, np.ndarray)
    assert out.dtype == a.dtype
    assert out.shape == np.matmul(a, b).shape
    assert out.flags.c_contiguous
    k = a.shape[-1]
    np.testing.assert_allclose(out, reference(a, b), rtol=tol(a.dtype, k), atol=tol(a.dtype, k))
    # inputs are never modified
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(b, b_before)
    return out


# --------------------------------------------------------------------------- correctness


@settings(max_examples=50, deadline=None)
@given(m=dims, k=dims, n=dims, dtype=dtypes, seed=st.integers(0, 2**32 - 1))
def test_matmul_2d_matches_numpy(m, k, n, dtype, seed):
    rng = np.random.default_rng(seed)
    check(make(rng, (m, k), dtype, "contiguous"), make(rng, (k, n), dtype, "contiguous"))


@settings(max_examples=50, deadline=None)
@given(
    batch=batches, m=dims, k=dims, n=dims, dtype=dtypes, seed=st.integers(0, 2**32 - 1)
)
def test_matmul_3d_batched_matches_numpy(batch, m, k, n, dtype, seed):
    rng = np.random.default_rng(seed)
    check(
        make(rng, (batch, m, k), dtype, "contiguous"),
        make(rng, (batch, k, n), dtype, "contiguous"),
    )


@settings(max_examples=50, deadline=None)
@given(
    batched=st.booleans(),
    batch=batches,
    m=dims,
    k=dims,
    n=dims,
    dtype=dtypes,
    layout_a=layouts,
    layout_b=layouts,
    seed=st.integers(0, 2**32 - 1),
)
def test_matmul_non_contiguous_inputs(batched, batch, m, k, n, dtype, layout_a, layout_b, seed):
    rng = np.random.default_rng(seed)
    lead = (batch,) if batched else ()
    check(
        make(rng, (*lead, m, k), dtype, layout_a),
        make(rng, (*lead, k, n), dtype, layout_b),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_crosses_block_boundaries(dtype):
    # Larger than one (32 x 256) C tile and one 128-deep K block, with ragged edges.
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 67, 301)).astype(dtype)
    b = rng.standard_normal((2, 301, 523)).astype(dtype)
    check(a, b)
    check(a[1], b[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_vector_shapes(dtype):
    rng = np.random.default_rng(1)
    check(rng.standard_normal((1, 700)).astype(dtype), rng.standard_normal((700, 600)).astype(dtype))
    check(rng.standard_normal((600, 700)).astype(dtype), rng.standard_normal((700, 1)).astype(dtype))
    check(rng.standard_normal((600, 1)).astype(dtype), rng.standard_normal((1, 500)).astype(dtype))


@pytest.mark.parametrize("shape_a,shape_b", [((0, 3), (3, 4)), ((3, 0), (0, 4)), ((3, 4), (4, 0)),
                                             ((0, 2, 3), (0, 3, 4)), ((2, 3, 0), (2, 0, 5))])
def test_matmul_empty(shape_a, shape_b):
    a = np.ones(shape_a, np.float32)
    b = np.ones(shape_b, np.float32)
    out = C.matmul(a, b)
    assert out.shape == np.matmul(a, b).shape
    assert out.dtype == np.float32
    assert not out.any()  # K == 0 gives zeros, not garbage


def test_matmul_exact_small_integers():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    b = np.arange(12, dtype=np.float64).reshape(3, 4)
    np.testing.assert_array_equal(C.matmul(a, b), a @ b)
    np.testing.assert_array_equal(C.matmul(a.astype(np.float32), b.astype(np.float32)), a @ b)


def test_matmul_special_values_propagate():
    a = np.array([[np.nan, 1.0], [1.0, 1.0]])
    b = np.array([[1.0, 0.0], [np.inf, 1.0]])
    np.testing.assert_array_equal(C.matmul(a, b), a @ b)


def test_matmul_threads_release_gil_and_agree():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 96, 160)).astype(np.float32)
    b = rng.standard_normal((3, 160, 96)).astype(np.float32)
    expected = C.matmul(a, b)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: C.matmul(a, b), range(8)))
    for r in results:
        np.testing.assert_array_equal(r, expected)  # deterministic summation order


# --------------------------------------------------------------------------- transposed operands


def _op_input(rng, rows, cols, dtype, trans, batch=None):
    """An array whose (last two dims) transpose-if-`trans` is a (rows, cols) operand.

    Returns (x, op_x): `x` is what the kernel is given with trans=`trans`
    (C-contiguous), op_x the logical operand (a view).
    """
    lead = () if batch is None else (batch,)
    shape = (*lead, cols, rows) if trans else (*lead, rows, cols)
    x = rng.uniform(-1, 1, size=shape).astype(dtype)
    return x, (np.swapaxes(x, -1, -2) if trans else x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("batch", [None, 3])
def test_matmul_transposed_views(dtype, trans_a, trans_b, batch):
    # w.T / np.swapaxes views are passed to the kernel as transposed operands.
    rng = np.random.default_rng(10)
    for m, k, n in [(1, 1, 1), (5, 7, 3), (33, 70, 47), (130, 260, 70)]:
        _, a = _op_input(rng, m, k, dtype, trans_a, batch)
        _, b = _op_input(rng, k, n, dtype, trans_b, batch)
        check(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_row_and_batch_strides(dtype):
    # Row-major with a row stride > K (a column slice), transposed slices,
    # broadcast batch (stride 0), negative steps (copied), all give the right answer.
    rng = np.random.default_rng(11)
    big_a = rng.uniform(-1, 1, (4, 40, 50)).astype(dtype)
    big_b = rng.uniform(-1, 1, (4, 50, 60)).astype(dtype)
    check(big_a[:, :, 3:33], big_b[:, 5:35, :])
    check(big_a[1, :, 3:33], big_b[2, 5:35, 7:50])
    check(np.swapaxes(big_a, -1, -2)[:, 3:33, :], big_b[:, :40, :])
    check(big_a[:, :, 3:33], np.broadcast_to(big_b[0, :30, :], (4, 30, 60)))
    bt = rng.uniform(-1, 1, (60, 30)).astype(dtype)
    check(big_a[:, :, 3:33], np.broadcast_to(bt.T, (4, 30, 60)))
    check(big_a[::-2, ::-1, :30], big_b[::2, :30, ::-1])
    check(big_a[0, :, :1], big_b[0, :1, :])  # K == 1
    check(big_a[0, :1, :], big_b[0, :, :1])  # M == N == 1


def test_matmul_unaligned_input_is_copied():
    rng = np.random.default_rng(12)
    a = rng.uniform(-1, 1, (9, 11)).astype(np.float32)
    buf = np.zeros(a.nbytes + 1, np.uint8)
    ua = np.frombuffer(buf.data, dtype=np.float32, count=a.size, offset=1).reshape(a.shape)
    ua[...] = a
    assert not ua.flags.aligned
    b = rng.uniform(-1, 1, (11, 6)).astype(np.float32)
    np.testing.assert_allclose(C.matmul(ua, b), reference(a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_transposed_operands_are_not_copied(dtype):
    # numpy reports its allocations to tracemalloc: a copy of w (8 or 16 MB)
    # would show up in the peak; the output (4 x 2000) is tiny.
    import tracemalloc

    rng = np.random.default_rng(13)
    w = rng.uniform(-1, 1, (2000, 1000)).astype(dtype)
    x = rng.uniform(-1, 1, (4, 1000)).astype(dtype)
    xt = np.ascontiguousarray(x.T)
    tracemalloc.start()
    try:
        out1 = C.matmul(x, w.T)
        out2 = C.matmul(xt.T, w.T)
        batched = C.matmul(np.broadcast_to(x, (3, 4, 1000)), np.broadcast_to(w.T, (3, 1000, 2000)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < w.nbytes // 4
    expected = reference(x, w.T)
    t = tol(dtype, 1000)
    np.testing.assert_allclose(out1, expected, rtol=t, atol=t)
    np.testing.assert_allclose(out2, expected, rtol=t, atol=t)
    np.testing.assert_allclose(batched, np.broadcast_to(expected, (3, 4, 2000)), rtol=t, atol=t)


# --------------------------------------------------------------------------- micro-tile / cache-block edges


def test_gemm_config():
    cfg = C.gemm_config()
    for dt in ("float32", "float64"):
        c = cfg[dt]
        assert c["isa"] == C.isa() and c["isa"] in C.isas()
        assert c["simd"] == C.isas()[c["isa"]]["simd"]
        assert c["mr"] >= 1 and c["nr"] >= 1 and c["kc"] >= 1
        assert c["mc"] % c["mr"] == 0 and c["nc"] % c["nr"] == 0
    assert cfg["float32"]["isa"] == cfg["float64"]["isa"]


def _edges(x):
    return sorted({max(1, x - 1), x, x + 1})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_micro_tile_edges(dtype, trans_a, trans_b):
    cfg = C.gemm_config()[np.dtype(dtype).name]
    mr, nr, kc = cfg["mr"], cfg["nr"], cfg["kc"]
    rng = np.random.default_rng(14)
    ms = [1, *_edges(mr), 2 * mr + 1]
    ns = [1, *_edges(nr), 2 * nr + 3]
    ks = [1, 3, *_edges(kc)]
    for m in ms:
        for n in ns:
            for k in ks:
                a, op_a = _op_input(rng, m, k, dtype, trans_a)
                b, op_b = _op_input(rng, k, n, dtype, trans_b)
                out = C.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
                t = tol(dtype, k)
                np.testing.assert_allclose(out, reference(op_a, op_b), rtol=t, atol=t,
                                           err_msg=f"m={m} n={n} k={k}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, True)])
def test_gemm_cache_block_edges(dtype, trans_a, trans_b):
    # Several MC x KC x NC blocks with ragged last blocks, large enough to be
    # split over threads; also M or N smaller than a micro-tile with big K.
    cfg = C.gemm_config()[np.dtype(dtype).name]
    mc, kc, nc, mr, nr = cfg["mc"], cfg["kc"], cfg["nc"], cfg["mr"], cfg["nr"]
    rng = np.random.default_rng(15)
    for m, n, k in [(mc + 1, nr * 5 + 1, 2 * kc + 1), (mc - 1, nc + 1, kc - 1),
                    (2 * mc + mr + 3, 2 * nr + 1, kc + 1), (3, nc + nr + 1, 2 * kc + 7),
                    (2 * mc + 5, 3, 2 * kc + 7)]:
        a, op_a = _op_input(rng, m, k, dtype, trans_a)
        b, op_b = _op_input(rng, k, n, dtype, trans_b)
        out = C.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
        t = tol(dtype, k)
        np.testing.assert_allclose(out, reference(op_a, op_b), rtol=t, atol=t,
                                   err_msg=f"m={m} n={n} k={k}")
        np.testing.assert_allclose(C.matmul(op_a, op_b), out, rtol=t, atol=t)


# --------------------------------------------------------------------------- _C.gemm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (1.0, 1.0), (-0.5, 2.0), (2.0, 0.0), (0.0, 0.5),
                                        (0.0, 0.0)])
def test_gemm_alpha_beta_in_place(dtype, alpha, beta):
    rng = np.random.default_rng(16)
    for m, n, k in [(3, 5, 4), (29, 67, 300), (140, 70, 33), (4, 3, 0)]:
        a = rng.uniform(-1, 1, (m, k)).astype(dtype)
        b = rng.uniform(-1, 1, (k, n)).astype(dtype)
        c0 = rng.uniform(-1, 1, (m, n)).astype(dtype)
        c = c0.copy()
        if beta == 0.0:
            c[...] = np.nan  # never read when beta == 0
        out = C.gemm(a, b, c, alpha=alpha, beta=beta)
        assert out is c
        expected = alpha * reference(a, b) + (beta * c0.astype(np.float64) if beta else 0.0)
        t = tol(dtype, k)
        np.testing.assert_allclose(c, expected, rtol=t, atol=t)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_strided_c_and_flipped_layouts(dtype):
    rng = np.random.default_rng(17)
    m, n, k = 37, 45, 51
    big = rng.uniform(-1, 1, (m + 4, n + 9)).astype(dtype)
    before = big.copy()
    c = big[2 : 2 + m, 3 : 3 + n]  # row stride n + 9: only the window is written
    a = rng.uniform(-1, 1, (k, m)).astype(dtype)  # op(a) = a.T
    bt = rng.uniform(-1, 1, (k, n)).astype(dtype)
    b = bt.T  # a transposed view given with trans_b=True: op(b) = bt again
    C.gemm(a, b, c, alpha=1.5, beta=-1.0, trans_a=True, trans_b=True)
    expected = 1.5 * reference(a.T, bt) - before[2 : 2 + m, 3 : 3 + n]
    t = tol(dtype, k)
    np.testing.assert_allclose(c, expected, rtol=t, atol=t)
    outside = np.ones(big.shape, bool)
    outside[2 : 2 + m, 3 : 3 + n] = False
    np.testing.assert_array_equal(big[outside], before[outside])


def test_gemm_without_c_ignores_beta():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    b = np.arange(12, dtype=np.float64).reshape(3, 4)
    np.testing.assert_array_equal(C.gemm(a, b, beta=3.0), a @ b)
    np.testing.assert_array_equal(C.gemm(a.T, b, trans_a=True), a @ b)
    np.testing.assert_array_equal(C.gemm(a, b.T, trans_b=True), a @ b)
    for shape_a, shape_b in [((0, 3), (3, 4)), ((2, 0), (0, 4)), ((2, 3), (3, 0))]:
        out = C.gemm(np.ones(shape_a), np.ones(shape_b))
        assert out.shape == (shape_a[0], shape_b[1]) and not out.any()


def test_gemm_errors():
    f32 = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match="float32"):
        C.gemm(f32, np.ones((3, 2), np.float64))
    with pytest.raises(TypeError):
        C.gemm(np.ones((2, 3), np.int32), np.ones((3, 2), np.int32))
    with pytest.raises(ValueError, match="not aligned"):
        C.gemm(f32, f32)
    with pytest.raises(ValueError, match="2-D"):
        C.gemm(np.ones((1, 2, 3), np.float32), np.ones((1, 3, 2), np.float32))
    with pytest.raises(ValueError, match=r"c has shape \(2, 3\), expected \(2, 2\)"):
        C.gemm(f32, f32.T, np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError):
        C.gemm(f32, f32.T, np.zeros((2, 2), np.float64))
    with pytest.raises(ValueError, match="stride"):
        C.gemm(f32, f32.T, np.zeros((2, 2), np.float32).T)
    ro = np.zeros((2, 2), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        C.gemm(f32, f32.T, ro)
    assert not ro.any()


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "da,db",
    [(np.float32, np.float64), (np.float64, np.float32), (np.int64, np.int64),
     (np.float16, np.float16), (np.float32, np.int32)],
)
def test_matmul_dtype_errors(da, db):
    a = np.ones((2, 3), da)
    b = np.ones((3, 4), db)
    with pytest.raises(TypeError) as exc:
        C.matmul(a, b)
    msg = str(exc.value)
    assert np.dtype(da).name in msg
    assert np.dtype(db).name in msg


def test_matmul_never_converts_dtype():
    with pytest.raises(TypeError):
        C.matmul(np.ones((2, 2), np.float32), np.ones((2, 2), np.float64))


@pytest.mark.parametrize(
    "shape_a,shape_b",
    [((2, 3), (4, 5)), ((3, 2, 3), (3, 4, 5)), ((1, 0), (1, 1))],
)
def test_matmul_misaligned_shapes(shape_a, shape_b):
    with pytest.raises(ValueError) as exc:
        C.matmul(np.ones(shape_a), np.ones(shape_b))
    msg = str(exc.value)
    assert str(shape_a) in msg and str(shape_b) in msg
    assert f"{shape_a[-1]} != {shape_b[-2]}" in msg


def test_matmul_misaligned_message_format():
    with pytest.raises(ValueError, match=r"^matmul: shapes \(2, 3\) and \(4, 5\) are not aligned: 3 != 4$"):
        C.matmul(np.ones((2, 3)), np.ones((4, 5)))


def test_matmul_batch_size_mismatch():
    with pytest.raises(ValueError) as exc:
        C.matmul(np.ones((2, 3, 4)), np.ones((3, 4, 5)))
    assert "(2, 3, 4)" in str(exc.value) and "(3, 4, 5)" in str(exc.value)


@pytest.mark.parametrize(
    "shape_a,shape_b",
    [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((1, 2, 2, 2), (1, 2, 2, 2)),
     ((2, 3), (1, 3, 4)), ((1, 2, 3), (3, 4)), ((), ())],
)
def test_matmul_wrong_ndim(shape_a, shape_b):
    with pytest.raises(ValueError) as exc:
        C.matmul(np.ones(shape_a), np.ones(shape_b))
    assert str(shape_a) in str(exc.value) and str(shape_b) in str(exc.value)


# --------------------------------------------------------------------------- module info


def test_module_metadata():
    assert isinstance(C.__version__, str) and C.__version__
    assert isinstance(C.openmp_enabled(), bool)
    n = C.num_threads()
    assert isinstance(n, int) and n >= 1
    if not C.openmp_enabled():
        assert n == 1
    info = C.build_info()
    assert isinstance(info, dict)
    for key in ("version", "compiler", "cxx_flags", "build_type", "native_arch_option",
                "march_native", "sanitize", "openmp", "num_threads"):
        assert key in info
    assert info["openmp"] == C.openmp_enabled()
    assert info["version"] == C.__version__


# --------------------------------------------------------------------------- native backend


@pytest.fixture(scope="module")
def backend():
    native = pytest.importorskip("tinygrad_course.backend.native")
    return native.NativeBackend()


@pytest.mark.parametrize(
    "shape_a,shape_b",
    [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 6)),
     ((1, 3, 4), (2, 4, 5)), ((2, 3, 4), (2, 4, 5)), ((0, 3, 4), (4, 5)), ((2, 3, 0), (1, 0, 5)),
     ((1, 1, 3, 4), (4, 2))],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_native_backend_broadcasting(backend, shape_a, shape_b, dtype):
    rng = np.random.default_rng(3)
    a = rng.standard_normal(shape_a).astype(dtype)
    b = rng.standard_normal(shape_b).astype(dtype)
    out = backend.matmul(a, b)
    expected = np.matmul(a, b)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    np.testing.assert_allclose(out, expected, rtol=tol(dtype, a.shape[-1]), atol=tol(dtype, a.shape[-1]))


def test_native_backend_non_float_falls_back(backend):
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    b = np.arange(12, dtype=np.int64).reshape(3, 4)
    out = backend.matmul(a, b)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, a @ b)


def test_native_backend_errors(backend):
    with pytest.raises(ValueError):
        backend.matmul(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ValueError):
        backend.matmul(np.ones((2, 3, 4)), np.ones((3, 4, 5)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape_a,shape_b,swap_a,swap_b",
    [
        ((16, 30), (20, 30), False, True),  # linear forward: x @ w.T
        ((2, 16, 30), (20, 30), False, True),  # batched x @ w.T (folded into one GEMM)
        ((16, 20), (20, 30), False, False),  # grad_x = g @ w
        ((16, 30), (16, 20), True, False),  # grad_w.T = x.T @ g
        ((3, 16, 30), (3, 16, 20), True, False),  # batched swapaxes(a) @ g
        ((3, 16, 20), (3, 30, 20), False, True),  # batched g @ swapaxes(b)
        ((3, 16, 30), (16, 20), True, False),  # batch of transposed a, shared b
        ((2, 1, 16, 30), (4, 20, 16), True, True),  # broadcasting + both transposed
    ],
)
def test_native_backend_transposed_operands(backend, dtype, shape_a, shape_b, swap_a, swap_b):
    rng = np.random.default_rng(4)
    a = rng.standard_normal(shape_a).astype(dtype)
    b = rng.standard_normal(shape_b).astype(dtype)
    a = np.swapaxes(a, -1, -2) if swap_a else a
    b = np.swapaxes(b, -1, -2) if swap_b else b
    out = backend.matmul(a, b)
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert out.shape == expected.shape and out.dtype == dtype
    t = tol(dtype, a.shape[-1])
    np.testing.assert_allclose(out, expected, rtol=t, atol=t)


def test_native_backend_does_not_copy_transposed_operands(backend):
    import tracemalloc

    rng = np.random.default_rng(5)
    w = rng.standard_normal((1500, 1000)).astype(np.float32)  # 6 MB
    x = rng.standard_normal((2, 3, 1000)).astype(np.float32)
    g = rng.standard_normal((2, 3, 1500)).astype(np.float32)
    tracemalloc.start()
    try:
        y = backend.matmul(x, w.T)  # forward of linear
        gx = backend.matmul(g, np.swapaxes(w.T, -1, -2))  # backward to x
        xt = np.swapaxes(np.ascontiguousarray(np.swapaxes(x, -1, -2)), -1, -2)
        y2 = backend.matmul(xt, w.T)  # batch of transposed a, shared transposed b
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < w.nbytes // 4
    np.testing.assert_allclose(y, x @ w.T, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y2, x @ w.T, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gx, g @ w, rtol=1e-4, atol=1e-4)
