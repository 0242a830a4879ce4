"""The native kernels' boundary under hostile input: never a crash, never a silently wrong result.

Every call into ``tinygrad_course._C`` either returns what the NumPy reference returns or raises
one of TypeError / ValueError / IndexError / MemoryError with a message that names the operation.
What keeps it so (csrc/common.h, src/memory.h, src/workspace.h):
  * integer parameters and dimensions are bounded (2**31 - 1) and so is every size derived from
    them (2**48 elements), so no size a kernel computes overflows;
  * a stride that only ever applies once (one output row or column) is shrunk to the smallest one
    with the same result, so a stride of 12000 on an 8 x 8 image needs no 549 MB of scratch;
  * every scratch buffer comes from one allocator that throws, is never allocated inside an OpenMP
    region (or the region keeps and rethrows the failure), and the binding turns it into MemoryError.

The fuzz test at the end throws random shapes, layouts, dtypes and parameter values at every
primitive; TINYGRAD_COURSE_FUZZ_EXAMPLES sets its budget (bash .ci/sanitize runs it with a larger one
under AddressSanitizer and UndefinedBehaviorSanitizer).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

C = pytest.importorskip("tinygrad_course._C")

# Every test once per ISA the kernels can run with here (conftest.py).
pytestmark = pytest.mark.usefixtures("native_isa")

from tinygrad_course.backend.numpy_backend import NumpyBackend  # noqa: E402

REF = NumpyBackend()
ALLOWED = (TypeError, ValueError, IndexError, MemoryError)
FUZZ_EXAMPLES = int(os.environ.get("TINYGRAD_COURSE_FUZZ_EXAMPLES", "25"))


def _image(shape=(2, 3, 8, 8), dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _close(got, want, dtype):
    tol = 1e-4 if np.dtype(dtype) == np.float32 else 1e-10
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    scale = max(1.0, float(np.nanmax(np.abs(np.where(np.isinf(want), 0, want)), initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, equal_nan=True)


# --- strides past the input: same result, no scratch the size of the stride squared ------------------
@pytest.mark.parametrize("stride", [9, 12000, 2**31 - 1])
def test_pool_stride_past_the_input_matches_the_reference(stride):
    x = _image()
    s = (stride, stride)
    _close(C.avg_pool2d(x, 2, stride, 1), REF.avg_pool2d(x, (2, 2), s, (1, 1)), x.dtype)
    y, am = C.max_pool2d(x, 3, stride, 1)
    y_ref, am_ref = REF.max_pool2d(x, (3, 3), s, (1, 1))
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(am, am_ref)
    gy = np.ones_like(y)
    _close(C.avg_pool2d_grad(gy, x.shape, 2, stride, 1), REF.avg_pool2d_grad(gy, x.shape, (2, 2), s, (1, 1)),
           x.dtype)


@pytest.mark.parametrize("stride", [(12000, 1), (1, 2**31 - 1), (2**20, 2**20)])
def test_conv_stride_past_the_input_matches_the_reference(stride):
    x, w = _image(), _image((4, 3, 3, 3), seed=1)
    pad, dil = (1, 1), (1, 1)
    y = C.conv2d(x, w, None, stride, pad, dil, 1)
    _close(y, REF.conv2d(x, w, None, stride, pad, dil, 1), x.dtype)
    gy = _image(y.shape, seed=2)
    _close(C.conv2d_grad_input(gy, w, x.shape, stride, pad, dil, 1),
           REF.conv2d_grad_input(gy, w, x.shape, stride, pad, dil, 1), x.dtype)
    _close(C.conv2d_grad_weight(gy, x, w.shape, stride, pad, dil, 1),
           REF.conv2d_grad_weight(gy, x, w.shape, stride, pad, dil, 1), x.dtype)


# --- parameters out of range: ValueError / TypeError naming the argument and the bound ------------------
@pytest.mark.parametrize("call, error, message", [
    (lambda x: C.max_pool2d(x, 2**40, 2**40, 2**39), ValueError,
     r"max_pool2d: kernel must be >= 1 and at most 2147483647, got 1099511627776"),
    (lambda x: C.avg_pool2d(x, 2, 2**63, 0), ValueError, r"avg_pool2d: stride must be >= 1 .* got 9223372036854775808"),
    (lambda x: C.avg_pool2d(x, 2, (1, -1), 0), ValueError, r"avg_pool2d: stride \(1, -1\): each must be >= 1"),
    (lambda x: C.avg_pool2d(x, 2, 1.5, 0), TypeError, r"avg_pool2d: stride must be an int or a pair of ints, got 1.5"),
    (lambda x: C.max_pool2d_grad(np.zeros((2, 3, 1, 1), x.dtype), np.zeros((2, 3, 1, 1), np.int64),
                                 (2, 3, 2**31, 2**31)), ValueError, r"max_pool2d_grad: x_shape .*: each entry must be"),
    (lambda x: C.avg_pool2d_grad(np.zeros((1, 1, 1, 1), x.dtype), (2**20, 2**20, 2**20, 1), 1, 1, 0),
     ValueError, r"avg_pool2d_grad: x_shape \(1048576, 1048576, 1048576, 1\) has more than 2\*\*48 elements"),
    (lambda x: C.conv2d(x, np.ones((1, 3, 3, 3), x.dtype), None, 2**62, 0, 1, 1), ValueError,
     r"conv2d: stride must be >= 1 and at most 2147483647, got 4611686018427387904"),
    (lambda x: C.conv2d(x, np.ones((1, 3, 3, 3), x.dtype), None, 1, 2**63, 1, 1), ValueError,
     r"conv2d: padding must be >= 0 and at most 2147483647, got 9223372036854775808"),
    (lambda x: C.conv2d(x, np.ones((1, 3, 3, 3), x.dtype), None, 1, 0, 1, 2**63), ValueError,
     r"conv2d: groups must be >= 1"),
    (lambda x: C.conv2d(x, np.ones((1, 3, 3, 3), x.dtype), None, 1, 0, 0, 1), ValueError,
     r"conv2d: dilation must be >= 1"),
    (lambda x: C.conv2d(x, np.ones((1, 3, 3, 3), x.dtype), None, 1, 2**30, 1, 1), ValueError,
     r"conv2d: .* need more than 2\*\*48 elements .* use a smaller padding"),
    (lambda x: C.conv2d_grad_weight(np.zeros((2, 1, 6, 6), x.dtype), x, (1, 3, 3, "3"), 1, 0, 1, 1), TypeError,
     r"conv2d_grad_weight: w_shape \(1, 3, 3, '3'\): each entry must be an int"),
    (lambda x: C.batch_norm_train(x, None, None, -1.0), ValueError, r"batch_norm_train: eps must be a finite number > 0"),
    (lambda x: C.batch_norm_train(x, None, None, 0.0), ValueError, r"batch_norm_train: eps must be a finite number > 0"),
    (lambda x: C.layer_norm(x, 1, None, None, float("nan")), ValueError, r"layer_norm: eps must be a finite number"),
    (lambda x: C.layer_norm(x, 2**63, None, None, 1e-5), ValueError, r"layer_norm: ndim .* must be between 1 and 4"),
])
def test_bad_parameters_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call(_image())


def test_a_copy_that_does_not_fit_is_a_memory_error():
    """A huge broadcast view is not contiguous; copying it fails before any kernel runs."""
    big = np.broadcast_to(np.float32(1), (10**6, 10**6))
    with pytest.raises(MemoryError, match=r"relu: could not copy a non-contiguous array of shape \(1000000, 1000000\)"):
        C.relu(big)
    with pytest.raises(MemoryError, match=r"avg_pool2d: could not copy"):
        C.avg_pool2d(np.broadcast_to(np.float32(1), (10**5, 10**5, 8, 8)), 2, 2, 0)


def test_scratch_that_does_not_fit_is_a_memory_error():
    """The kernel's own buffer (the phases of a 2**20-padded plane) cannot be had: MemoryError naming the size."""
    with pytest.raises(MemoryError, match=r"avg_pool2d: could not allocate [0-9.]+ TiB of scratch memory"):
        C.avg_pool2d(_image((1, 1, 8, 8)), 2**21, 1, 2**20)


# --- gemm's output may alias an input ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_output_aliasing_an_input(dtype):
    rng = np.random.default_rng(3)
    for which in ("a", "b", "both", "view"):
        a = rng.standard_normal((40, 40)).astype(dtype)
        b = rng.standard_normal((40, 40)).astype(dtype)
        if which == "a":
            want = 2.0 * (a @ b) + 0.5 * a
            got = C.gemm(a, b, c=a, alpha=2.0, beta=0.5)
        elif which == "b":
            want = 2.0 * (a @ b) + 0.5 * b
            got = C.gemm(a, b, c=b, alpha=2.0, beta=0.5)
        elif which == "both":
            want = 2.0 * (a @ a) + 0.5 * a
            got = C.gemm(a, a, c=a, alpha=2.0, beta=0.5)
        else:  # c overlaps the second half of a's rows only
            big = rng.standard_normal((80, 40)).astype(dtype)
            a = big[:40]
            want = 2.0 * (a @ b) + 0.5 * big[20:60]
            got = C.gemm(a, b, c=big[20:60], alpha=2.0, beta=0.5)
        _close(got, want, dtype)


def test_gemm_read_only_output():
    a = np.ones((3, 3))
    c = np.zeros((3, 3))
    c.flags.writeable = False
    with pytest.raises(ValueError, match="gemm: c is read-only"):
        C.gemm(a, a, c=c)


# --- NaN / Inf in the normalisations: the same NaN pattern as PyTorch and the reference ------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_norm_nan_and_inf_pattern(dtype):
    torch = pytest.importorskip("torch")
    x = _image((4, 3, 4, 4), dtype)
    x[1, 0, 2, 2] = np.nan
    x[2, 1, 0, 0] = np.inf
    x[0, 2, 0, 0] = -np.inf
    y = C.batch_norm_train(x, None, None, 1e-5)[0]
    y_torch = torch.nn.functional.batch_norm(torch.tensor(x), None, None, training=True).numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(y_torch))  # every channel with a NaN or an Inf
    np.testing.assert_array_equal(np.isnan(y), np.isnan(REF.batch_norm_train(x, None, None, 1e-5)[0]))
    xl = x.reshape(8, 24)
    yl = C.layer_norm(xl, 1, None, None, 1e-5)[0]
    yl_torch = torch.nn.functional.layer_norm(torch.tensor(xl), (24,)).numpy()
    np.testing.assert_array_equal(np.isnan(yl), np.isnan(yl_torch))
    assert np.isnan(yl).sum() == 3 * 24  # three whole rows


# --- allocation failures: every one, in every primitive, is a MemoryError -----------------------------
_FAULTS = textwrap.dedent('''
    import numpy as np
    import tinygrad_course._C as C
    from tinygrad_course.backend.numpy_backend import NumpyBackend
    ref = NumpyBackend()
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    x, w, gy = f(8, 8, 16, 16), f(16, 8, 3, 3), f(8, 16, 16, 16)
    xp = f(8, 8, 33, 33)
    calls = {}
    for algo in ("gemm", "direct", "direct_channels"):
        calls["conv2d " + algo] = (lambda a=algo: C.conv2d(x, w, None, 1, 1, 1, 1, a),
                                   lambda: ref.conv2d(x, w, None, (1, 1), (1, 1), (1, 1), 1))
        calls["conv2d_grad_input " + algo] = (
            lambda a=algo: C.conv2d_grad_input(gy, w, x.shape, 1, 1, 1, 1, a),
            lambda: ref.conv2d_grad_input(gy, w, x.shape, (1, 1), (1, 1), (1, 1), 1))
        calls["conv2d_grad_weight " + algo] = (
            lambda a=algo: C.conv2d_grad_weight(gy, x, w.shape, 1, 1, 1, 1, a),
            lambda: ref.conv2d_grad_weight(gy, x, w.shape, (1, 1), (1, 1), (1, 1), 1))
    calls["max_pool2d"] = (lambda: C.max_pool2d(xp, 3, 2, 1)[0], lambda: ref.max_pool2d(xp, (3, 3), (2, 2), (1, 1))[0])
    calls["avg_pool2d"] = (lambda: C.avg_pool2d(xp, 3, 2, 1), lambda: ref.avg_pool2d(xp, (3, 3), (2, 2), (1, 1)))
    g16 = f(8, 8, 17, 17)
    calls["avg_pool2d_grad"] = (lambda: C.avg_pool2d_grad(g16, xp.shape, 3, 2, 1),
                                lambda: ref.avg_pool2d_grad(g16, xp.shape, (3, 3), (2, 2), (1, 1)))
    calls["batch_norm_train"] = (lambda: C.batch_norm_train(x, None, None, 1e-5)[0],
                                 lambda: ref.batch_norm_train(x, None, None, 1e-5)[0])
    calls["layer_norm"] = (lambda: C.layer_norm(x, 2, None, None, 1e-5)[0],
                           lambda: ref.layer_norm(x, 2, None, None, 1e-5)[0])
    a3, b3 = f(64, 16, 16), f(64, 16, 16)
    calls["matmul batched"] = (lambda: C.matmul(a3, b3), lambda: a3 @ b3)
    a2, b2 = f(300, 300), f(300, 300)
    calls["gemm"] = (lambda: C.gemm(a2, b2), lambda: a2 @ b2)
    injected = 0
    for name, (call, want) in calls.items():
        for n in range(200):
            C._fail_scratch_alloc(n)
            try:
                got = call()
            except MemoryError as e:
                assert "could not allocate" in str(e), (name, str(e))
                injected += 1
                continue
            finally:
                C._fail_scratch_alloc(-1)
            np.testing.assert_allclose(got, want(), rtol=1e-4, atol=1e-3, err_msg=name)
            break
        else:
            raise AssertionError(name + ": still failing after 200 injected failures")
    print("injected", injected)
''')


def test_every_scratch_allocation_failure_is_a_memory_error(native_isa):
    """In a fresh process (no buffers yet), fail the 1st, 2nd, ... scratch allocation of each primitive
    until it succeeds: each failure must be a MemoryError (also when it happens in a worker thread of
    an OpenMP region) and the final result must be right. Two threads, so the parallel paths run."""
    env = dict(os.environ, OMP_NUM_THREADS="2")
    if native_isa:
        env["TINYGRAD_COURSE_ISA"] = native_isa
    run = subprocess.run([sys.executable, "-c", _FAULTS], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert int(run.stdout.split()[-1]) >= 15  # failures were injected and survived


# --- fuzz: random shapes, layouts, dtypes and parameters at every primitive ---------------------------
_DTYPES = [np.float32] * 4 + [np.float64] * 3 + [np.float16, np.int64, np.bool_]
_INTS = st.one_of(st.integers(0, 4), st.integers(-2, 9),
                  st.sampled_from([2**31 - 1, 2**31, 2**40, 2**62, 2**63, 2**64, -2**63]))
_ODD = st.sampled_from([None, 1.5, "2", (1,), (1, 2, 3), True, np.int64(2), [2, 2]])


def _param(draw):
    return draw(st.one_of(_INTS, _INTS, st.tuples(_INTS, _INTS), _ODD))


def _array(draw, shape, dtype=None, values=True):
    """An array of `shape` in a random layout: C order, Fortran order, strided, reversed, broadcast,
    misaligned (read through an aligned copy), byte-swapped."""
    dtype = np.dtype(dtype if dtype is not None else draw(st.sampled_from(_DTYPES)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    data = rng.standard_normal(shape) * 3
    if values and data.size and draw(st.booleans()):
        flat = data.reshape(-1)
        flat[rng.integers(0, flat.size, size=max(1, flat.size // 8))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    with np.errstate(invalid="ignore"):  # NaN/Inf cast to an integer dtype
        a = data.astype(dtype)
    layout = draw(st.sampled_from(["c", "c", "f", "strided", "reversed", "broadcast", "misaligned", "byteswapped"]))
    if layout == "f":
        a = np.asfortranarray(a)
    elif layout == "strided" and a.ndim:
        a = np.repeat(a, 2, axis=-1)[..., ::2]
    elif layout == "reversed" and a.ndim:
        a = np.flip(a, axis=0).copy()[::-1]
    elif layout == "broadcast" and a.ndim and a.size:
        a = np.broadcast_to(a[:1], a.shape) if a.shape[0] > 1 else a
    elif layout == "byteswapped" and a.itemsize > 1:  # numpy's non-native byte order: refused, never misread
        a = a.astype(a.dtype.newbyteorder())
    elif layout == "misaligned" and a.itemsize > 1:
        raw = np.zeros(a.nbytes + 1, np.uint8)
        view = raw[1:].view(a.dtype).reshape(a.shape)
        view[...] = a
        a = view
    return a


def _dims(draw, n, lo=0, hi=5):
    return tuple(draw(st.integers(lo, hi)) for _ in range(n))


def _pair(v):
    return (v, v) if isinstance(v, (int, np.integer)) else tuple(v)


def _conv_args(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    n, cg, f, h, w = draw(st.integers(0, 3)), draw(st.integers(1, 3)), groups * draw(st.integers(1, 3)), \
        draw(st.integers(0, 9)), draw(st.integers(0, 9))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dtype = draw(st.sampled_from(_DTYPES))
    x = _array(draw, (n, cg * groups, h, w), dtype)
    wt = _array(draw, (f, cg, kh, kw), dtype)
    stride, padding, dilation = (_param(draw) if draw(st.integers(0, 3)) == 0 else draw(st.integers(1, 3))
                                 for _ in range(3))
    g = _param(draw) if draw(st.integers(0, 5)) == 0 else groups
    return x, wt, stride, padding, dilation, g


@st.composite
def _calls(draw):
    """(name, native call, reference call or None)."""
    op = draw(st.sampled_from(["relu", "relu_grad", "matmul", "gemm", "conv2d", "conv2d_grad_input",
                               "conv2d_grad_weight", "max_pool2d", "max_pool2d_grad", "avg_pool2d",
                               "avg_pool2d_grad", "batch_norm_train", "batch_norm_eval", "batch_norm_grad",
                               "layer_norm", "layer_norm_grad", "cross_entropy", "cross_entropy_grad"]))
    if op in ("relu", "relu_grad"):
        shape = _dims(draw, draw(st.integers(0, 4)))
        x = _array(draw, shape)
        if op == "relu":
            return op, lambda: C.relu(x), lambda: REF.relu(x)
        g = _array(draw, shape if draw(st.integers(0, 5)) else shape + (1,), x.dtype)
        return op, lambda: C.relu_grad(g, x), lambda: REF.relu_grad(g, x)
    if op in ("matmul", "gemm"):
        m, k, n = _dims(draw, 3, 0, 6)
        batch = () if op == "gemm" or draw(st.booleans()) else (draw(st.integers(0, 3)),)
        dtype = draw(st.sampled_from(_DTYPES))
        a = _array(draw, batch + (m, k), dtype)
        b = _array(draw, batch + ((k, n) if draw(st.integers(0, 6)) else (k + 1, n)), dtype)
        if op == "matmul":
            return op, lambda: C.matmul(a, b), lambda: np.matmul(a, b)
        alpha, beta = draw(st.sampled_from([1.0, 0.5, -2.0])), draw(st.sampled_from([0.0, 1.0, 0.5]))
        c = _array(draw, (m, n), dtype) if draw(st.booleans()) else None
        if c is not None and draw(st.booleans()) and a.shape == c.shape:
            c = a  # the output aliases an input
        c0 = None if c is None else np.array(c, copy=True)
        a0, b0 = np.array(a, copy=True), np.array(b, copy=True)
        # with beta == 0, c is never read (BLAS): NaN in it stays out of the result
        want = (lambda: alpha * (a0 @ b0)) if c is None or beta == 0 else (lambda: alpha * (a0 @ b0) + beta * c0)
        return op, lambda: C.gemm(a, b, c, alpha, beta), want
    if op.startswith("conv2d"):
        x, w, stride, padding, dilation, groups = _conv_args(draw)
        bias = _array(draw, (w.shape[0],), x.dtype) if draw(st.booleans()) else None

        def ref_args():
            return _pair(stride), _pair(padding), _pair(dilation), groups
        if op == "conv2d":
            return op, lambda: C.conv2d(x, w, bias, stride, padding, dilation, groups), \
                lambda: REF.conv2d(x, w, bias, *ref_args())
        try:  # a gradient of the output's shape, when the geometry has one
            y_shape = C.conv2d(np.zeros(x.shape, np.float32), np.zeros(w.shape, np.float32), None,
                               stride, padding, dilation, groups).shape
        except ALLOWED:
            y_shape = (1, 1, 1, 1)
        gy = _array(draw, y_shape, x.dtype)
        if op == "conv2d_grad_input":
            return op, lambda: C.conv2d_grad_input(gy, w, x.shape, stride, padding, dilation, groups), \
                lambda: REF.conv2d_grad_input(gy, w, x.shape, *ref_args())
        return op, lambda: C.conv2d_grad_weight(gy, x, w.shape, stride, padding, dilation, groups), \
            lambda: REF.conv2d_grad_weight(gy, x, w.shape, *ref_args())
    if "pool" in op:
        x = _array(draw, _dims(draw, 4, 0, 9) if draw(st.integers(0, 9)) else _dims(draw, 3, 1, 4))
        kernel = _param(draw) if draw(st.integers(0, 3)) == 0 else draw(st.integers(1, 4))
        stride = _param(draw) if draw(st.integers(0, 3)) == 0 else draw(st.sampled_from([1, 2, 3, 12000]))
        padding = _param(draw) if draw(st.integers(0, 3)) == 0 else draw(st.integers(0, 2))
        cip = draw(st.booleans())

        def ref_args():
            return _pair(kernel), _pair(stride), _pair(padding)
        if op == "max_pool2d":
            return op, lambda: C.max_pool2d(x, kernel, stride, padding)[0], \
                lambda: REF.max_pool2d(x, *ref_args())[0]
        if op == "avg_pool2d":
            return op, lambda: C.avg_pool2d(x, kernel, stride, padding, cip), \
                lambda: REF.avg_pool2d(x, *ref_args(), cip)
        try:
            y_shape = C.avg_pool2d(np.zeros(x.shape, np.float32), kernel, stride, padding).shape
        except ALLOWED:
            y_shape = (1, 1, 1, 1)
        gy = _array(draw, y_shape, x.dtype)
        if op == "avg_pool2d_grad":
            return op, lambda: C.avg_pool2d_grad(gy, x.shape, kernel, stride, padding, cip), \
                lambda: REF.avg_pool2d_grad(gy, x.shape, *ref_args(), cip)
        plane = max(1, x.shape[2] * x.shape[3]) if x.ndim == 4 else 1
        am = _array(draw, y_shape, np.int64, values=False) % plane
        if draw(st.integers(0, 5)) == 0:
            am = am + draw(st.sampled_from([plane, -1 - plane, 2**62]))  # an index outside the plane
        return op, lambda: C.max_pool2d_grad(gy, am, x.shape), lambda: REF.max_pool2d_grad(gy, am, x.shape)
    # (eps = 0 is refused by batch_norm_train only; a constant row then divides 0 by 0, which has no
    # right answer to compare with)
    eps = draw(st.sampled_from([1e-5, 1e-5, 1.0, -1.0, float("nan"), float("inf")]))
    if op.startswith("batch_norm"):
        shape = _dims(draw, draw(st.integers(1, 4)), 0, 5)
        x = _array(draw, shape)
        c = shape[1] if len(shape) > 1 else 1
        gamma = _array(draw, (c,), x.dtype) if draw(st.booleans()) else None
        beta = _array(draw, (c,), x.dtype) if draw(st.booleans()) else None
        if op == "batch_norm_train":
            return op, lambda: C.batch_norm_train(x, gamma, beta, eps)[0], \
                lambda: REF.batch_norm_train(x, gamma, beta, eps)[0]
        mean, var = _array(draw, (c,), x.dtype), np.abs(_array(draw, (c,), x.dtype))
        if op == "batch_norm_eval":
            return op, lambda: C.batch_norm_eval(x, mean, var, gamma, beta, eps), \
                lambda: REF.batch_norm_eval(x, mean, var, gamma, beta, eps)
        gy, training = _array(draw, shape, x.dtype), draw(st.booleans())
        return op, lambda: C.batch_norm_grad(gy, x, mean, var, gamma, training)[0], \
            lambda: REF.batch_norm_grad(gy, x, mean, var, gamma, training)[0]
    if op.startswith("layer_norm"):
        shape = _dims(draw, draw(st.integers(1, 4)), 0, 5)
        x = _array(draw, shape)
        ndim = _param(draw) if draw(st.integers(0, 4)) == 0 else draw(st.integers(1, max(1, len(shape))))
        norm = shape[len(shape) - ndim:] if isinstance(ndim, int) and 1 <= ndim <= len(shape) else shape[-1:]
        gamma = _array(draw, norm, x.dtype) if draw(st.booleans()) else None
        beta = _array(draw, norm, x.dtype) if draw(st.booleans()) else None
        if op == "layer_norm":
            return op, lambda: C.layer_norm(x, ndim, gamma, beta, eps)[0], \
                lambda: REF.layer_norm(x, ndim, gamma, beta, eps)[0]
        stats = shape[:len(shape) - len(norm)] + (1,) * len(norm)
        mean, invstd = _array(draw, stats, x.dtype), np.abs(_array(draw, stats, x.dtype))
        gy = _array(draw, shape, x.dtype)
        return op, lambda: C.layer_norm_grad(gy, x, mean, invstd, gamma, ndim)[0], \
            lambda: REF.layer_norm_grad(gy, x, mean, invstd, gamma, ndim)[0]
    n, c = draw(st.integers(0, 5)), draw(st.integers(0, 5))
    logits = _array(draw, (n, c))
    target = _array(draw, (n,), np.int64, values=False) % max(c, 1)
    if draw(st.integers(0, 4)) == 0:
        target = target + draw(st.sampled_from([c, -1, 2**62]))
    smoothing = draw(st.sampled_from([0.0, 0.1, 1.0, -0.5, 2.0, float("nan")]))
    if op == "cross_entropy":
        return op, lambda: C.cross_entropy(logits, target, smoothing)[0], \
            lambda: REF.cross_entropy(logits, target, smoothing)[0]
    g = _array(draw, (n,), logits.dtype)
    probs = np.abs(_array(draw, (n, c), logits.dtype))
    return op, lambda: C.cross_entropy_grad(g, probs, target, smoothing), \
        lambda: REF.cross_entropy_grad(g, probs, target, smoothing)


def _finite_inputs(call):
    """Whether every float array the call passes holds only finite values."""
    arrays = [c.cell_contents for c in call.__closure__ or () if isinstance(c.cell_contents, np.ndarray)]
    return all(np.isfinite(a).all() for a in arrays if a.dtype.kind == "f")


def _close_where_finite(got, want, dtype):
    """Gradients of Inf/NaN inputs: the kernels combine the infinities in another order than the
    reference (a fused batch-norm gradient subtracts before it multiplies, a transposed convolution
    multiplies padding), so Inf - Inf may be NaN in one and +-Inf in the other; the values that are
    finite in both agree."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    both = np.isfinite(got) & np.isfinite(want)
    _close(got[both], want[both], dtype)


@settings(max_examples=FUZZ_EXAMPLES * 18)
@given(_calls())
def test_fuzz_every_primitive(call):
    """A result equal to the reference (the same NaN pattern, except for gradients of Inf/NaN inputs:
    see _close_where_finite), or a documented exception whose message names the operation."""
    name, native, reference = call
    try:
        got = native()
    except ALLOWED as e:
        assert str(e), f"{name}: {type(e).__name__} without a message"
        if not isinstance(e, TypeError):  # pybind11's own argument errors name the function differently
            assert str(e).startswith(name), f"{name}: message does not name the operation: {e}"
        return
    with np.errstate(all="ignore"):
        try:
            want = reference()
        except Exception:  # the reference is no oracle for what is an error
            return
    dtype = np.asarray(got).dtype
    loose = "_grad" in name and not _finite_inputs(native)
    (_close_where_finite if loose else _close)(got, np.asarray(want, dtype=dtype), dtype)


def test_a_stride_past_the_input_allocates_no_large_scratch(native_isa):
    """avg_pool2d of an 8 x 8 image with stride 12000 used to take 549 MB of scratch (the phase planes
    grow with the stride squared); now the process grows by less than 20 MB."""
    script = textwrap.dedent('''
        import resource, numpy as np
        import tinygrad_course._C as C
        x = np.ones((1, 1, 8, 8), np.float32)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        C.avg_pool2d(x, 2, 12000, 1)
        C.max_pool2d(x, 2, 12000, 1)
        C.conv2d(x, np.ones((1, 1, 3, 3), np.float32), None, 12000, 1, 1, 1)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)  # KiB on Linux
    ''')
    env = dict(os.environ, TINYGRAD_COURSE_ISA=native_isa) if native_isa else None
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout.split()[-1]) < 20 * 1024


def test_memory_error_through_the_tensor_api(native_isa):
    """In a fresh process, a conv's forward or backward that cannot get its scratch raises MemoryError
    through the Tensor API (forward or Tensor.backward), and the step works once memory is back."""
    script = textwrap.dedent('''
        import numpy as np
        import tinygrad_course as tg
        import tinygrad_course._C as C
        import tinygrad_course.nn.functional as F
        rng = np.random.default_rng(4)
        xs, ws = rng.standard_normal((6, 3, 17, 17)), rng.standard_normal((5, 3, 3, 3))

        def step():
            x = tg.Tensor(xs.astype(np.float32), requires_grad=True)
            w = tg.Tensor(ws.astype(np.float32), requires_grad=True)
            F.conv2d(x, w, padding=1).sum().backward()
            return x.grad.numpy(), w.grad.numpy()

        failures = 0
        with tg.use_backend("native"):
            for n in range(100):
                C._fail_scratch_alloc(n)
                try:
                    got = step()
                    break
                except MemoryError as e:
                    assert str(e).startswith("conv2d"), e
                    failures += 1
                finally:
                    C._fail_scratch_alloc(-1)
            want = step()
        assert all(np.allclose(g, w) for g, w in zip(got, want))
        print(failures)
    ''')
    env = dict(os.environ, OMP_NUM_THREADS="2")
    if native_isa:
        env["TINYGRAD_COURSE_ISA"] = native_isa
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert int(run.stdout.split()[-1]) >= 2  # the forward's and the backward's buffers both failed once


@pytest.mark.parametrize("padding", [1, 4])  # 4: the corner windows of a 3 x 3 kernel read padding only
def test_conv_keeps_nan_from_inf_times_padding(padding):
    """0 * Inf is NaN: the channel-vectorised kernels, which skip the taps that read padding, must give
    the NaN pattern of the reference (and PyTorch's im2col), for an Inf in gy (grad_weight) and in w."""
    rng = np.random.default_rng(6)
    x, w = _image((4, 8, 6, 6), seed=7), _image((16, 8, 3, 3), seed=8)
    s, p, d = (1, 1), (padding, padding), (1, 1)
    assert C.conv2d_algorithms(x.shape, w.shape, s, p, d, 1, "float32")["grad_weight"] == "direct_channels"
    y_shape = C.conv2d(x, w, None, s, p, d, 1).shape
    gy = rng.standard_normal(y_shape).astype(np.float32)
    gy[1, 3, 0, 0] = np.inf
    with np.errstate(all="ignore"):
        _close(C.conv2d_grad_weight(gy, x, w.shape, s, p, d, 1), REF.conv2d_grad_weight(gy, x, w.shape, s, p, d, 1),
               x.dtype)
        w[2, 1, 0, 0] = np.inf
        _close(C.conv2d(x, w, None, s, p, d, 1), REF.conv2d(x, w, None, s, p, d, 1), x.dtype)
