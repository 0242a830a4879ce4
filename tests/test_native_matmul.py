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
