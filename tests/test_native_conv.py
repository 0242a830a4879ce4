"""Tests for the C++ convolution kernels: tinygrad_course._C.conv2d, conv2d_grad_input,
conv2d_grad_weight (src/conv2d.cpp) and the native backend methods that call them.

Every result is compared with the NumPy reference backend evaluated in float64 on the same inputs.
Inputs are uniform in [-1, 1], so an output is a sum of K terms of size <= 1 (K = C/groups * KH * KW
for the forward, F/groups * KH * KW for grad_input, N * OH * OW for grad_weight) and the rounding
error of any summation order grows like sqrt(K) * eps:

  * float32: rtol 1e-4, atol 1e-5 * sqrt(K)
  * float64: rtol 1e-12, atol 1e-12 * sqrt(K)

Every algorithm is tested on every drawn configuration ("gemm": im2col + GEMM, "direct": the
direct kernel vectorised over output width, "direct_channels": the direct kernel vectorised over
output channels that skips padding taps; "auto" picks one), with contiguous and non-contiguous
inputs.
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

import tinygrad_course as tg  # noqa: E402
from tinygrad_course.backend.numpy_backend import NumpyBackend  # noqa: E402
from tinygrad_course.nn import functional as F  # noqa: E402
from tinygrad_course.testing import gradcheck  # noqa: E402

REF = NumpyBackend()
ALGORITHMS = ("auto", "gemm", "direct", "direct_channels")
DTYPES = st.sampled_from([np.float32, np.float64])
LAYOUTS = ("contiguous", "permuted", "sliced", "fortran")


def conv_out(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def tol(dtype, k):
    if np.dtype(dtype) == np.float32:
        return 1e-4, 1e-5 * math.sqrt(max(k, 1))
    return 1e-12, 1e-12 * math.sqrt(max(k, 1))


def make(rng, shape, dtype, layout="contiguous"):
    """Uniform [-1, 1] array of `shape` and `dtype` with the given memory layout."""
    def rand(*s):
        return rng.uniform(-1, 1, size=s).astype(dtype)

    shape = tuple(shape)
    if layout == "contiguous":
        a = rand(*shape)
    elif layout == "permuted":  # axes stored in reverse order
        a = np.transpose(rand(*shape[::-1]), tuple(range(len(shape)))[::-1])
    elif layout == "sliced":  # steps and offsets in every axis, the last one negative
        big = rand(*(2 * s + 1 for s in shape))
        a = big[tuple(slice(1, 1 + 2 * s, 2) for s in shape[:-1]) + (slice(2 * shape[-1], 0, -2),)]
    elif layout == "fortran":
        a = np.asfortranarray(rand(*shape))
    else:
        raise AssertionError(layout)
    assert a.shape == shape and a.dtype == dtype
    return a


@st.composite
def configs(draw, max_batch=3, max_cg=4, max_fg=5, max_kernel=4, max_stride=3, max_dilation=2):
    """conv2d geometry: groups divide both channel counts; odd sizes (1, primes) and padding up to
    kernel + 1 (beyond d(k-1), so the transposed convolution of the direct grad_input crops)."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg, fg = draw(st.integers(1, max_cg)), draw(st.integers(1, max_fg))
    kh, kw = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    stride = (draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride)))
    dilation = (draw(st.integers(1, max_dilation)), draw(st.integers(1, max_dilation)))
    padding = (draw(st.integers(0, kh + 1)), draw(st.integers(0, kw + 1)))
    hmin = max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0])
    wmin = max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1])
    # widths past one SIMD vector (16 floats) so rows span several vectors with a ragged tail
    h = hmin + draw(st.sampled_from([0, 1, 2, 4, 6, 10]))
    w = wmin + draw(st.sampled_from([0, 1, 2, 4, 12, 16, 22, 36]))
    n = draw(st.integers(1, max_batch))
    return dict(x_shape=(n, groups * cg, h, w), w_shape=(groups * fg, cg, kh, kw), stride=stride,
                padding=padding, dilation=dilation, groups=groups)


def out_shape(c):
    n, _, h, w = c["x_shape"]
    f, _, kh, kw = c["w_shape"]
    return (n, f, conv_out(h, kh, c["stride"][0], c["padding"][0], c["dilation"][0]),
            conv_out(w, kw, c["stride"][1], c["padding"][1], c["dilation"][1]))


def params(c):
    return c["stride"], c["padding"], c["dilation"], c["groups"]


def f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def check(actual, expected, dtype, k, what):
    assert isinstance(actual, np.ndarray) and actual.flags.c_contiguous, what
    assert actual.dtype == dtype, f"{what}: dtype {actual.dtype} != {np.dtype(dtype)}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    rtol, atol = tol(dtype, k)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def run_all_three(c, dtype, rng, layout="contiguous", bias=True, algorithms=ALGORITHMS):
    """Forward, grad_input and grad_weight of every algorithm against the float64 reference."""
    x = make(rng, c["x_shape"], dtype, layout)
    w = make(rng, c["w_shape"], dtype, layout)
    b = make(rng, (c["w_shape"][0],), dtype, layout) if bias else None
    gy = make(rng, out_shape(c), dtype, layout)
    p = params(c)
    n, f, oh, ow = out_shape(c)
    _, cg, kh, kw = c["w_shape"]
    fg = f // c["groups"]
    y_ref = REF.conv2d(f64(x), f64(w), f64(b), *p)
    gx_ref = REF.conv2d_grad_input(f64(gy), f64(w), c["x_shape"], *p)
    gw_ref = REF.conv2d_grad_weight(f64(gy), f64(x), c["w_shape"], *p)
    before = [a.copy() for a in (x, w, gy)]
    for algo in algorithms:
        check(C.conv2d(x, w, b, *p, algorithm=algo), y_ref, dtype, cg * kh * kw, f"conv2d {algo} {c}")
        check(C.conv2d_grad_input(gy, w, c["x_shape"], *p, algorithm=algo), gx_ref, dtype,
              fg * kh * kw, f"conv2d_grad_input {algo} {c}")
        check(C.conv2d_grad_weight(gy, x, c["w_shape"], *p, algorithm=algo), gw_ref, dtype,
              n * oh * ow, f"conv2d_grad_weight {algo} {c}")
    for a, a0 in zip((x, w, gy), before):  # inputs are never written
        np.testing.assert_array_equal(a, a0)


# --------------------------------------------------------------------------- equivalence


@settings(max_examples=40)
@given(c=configs(), dtype=DTYPES, bias=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_matches_reference(c, dtype, bias, seed):
    run_all_three(c, dtype, np.random.default_rng(seed), bias=bias)


@settings(max_examples=15)
@given(c=configs(max_batch=2, max_cg=12, max_fg=19, max_kernel=3), dtype=DTYPES,
       seed=st.integers(0, 2**32 - 1))
def test_many_channels(c, dtype, seed):
    """Several channel blocks per micro-kernel (up to 8 output channels each, 4 in grad_weight)."""
    run_all_three(c, dtype, np.random.default_rng(seed))


@settings(max_examples=20)
@given(c=configs(max_batch=15, max_cg=9, max_fg=70, max_kernel=5), dtype=DTYPES,
       seed=st.integers(0, 2**32 - 1))
def test_direct_channels_blocks(c, dtype, seed):
    """The channel-vectorised kernel's blocking: image blocks of up to 6-14 images with a remainder,
    output channels in blocks of up to 4 vectors (70 = 3 + 2 float32 vectors) with a ragged last
    vector, input-channel blocks in grad_weight, border pixels with partial tap ranges."""
    run_all_three(c, dtype, np.random.default_rng(seed), algorithms=("direct_channels",))


@settings(max_examples=15)
@given(c=configs(max_batch=2), dtype=DTYPES, layout=st.sampled_from(LAYOUTS[1:]),
       seed=st.integers(0, 2**32 - 1))
def test_non_contiguous_inputs(c, dtype, layout, seed):
    run_all_three(c, dtype, np.random.default_rng(seed), layout=layout)


@settings(max_examples=15)
@given(cin=st.sampled_from([1, 3]), f=st.sampled_from([1, 6, 8, 16, 32, 33]),
       hw=st.sampled_from([(1, 1), (5, 7), (13, 13), (28, 28), (32, 32), (17, 40)]),
       n=st.sampled_from([1, 2, 5]), dtype=DTYPES, seed=st.integers(0, 2**32 - 1))
def test_few_channel_path_5x5_pad2(cin, f, hw, n, dtype, seed):
    """The first layer of an image network (1 or 3 input channels, 5x5, padding 2): direct kernels
    (except grad_input with one input channel: one output channel per micro-tile, GEMM is faster;
    and grad_weight with 3 input channels on ISAs with 16 vector registers, AVX2 and SSE2, where the
    channel-vectorised kernel wins when the output channels fill half of its vectors)."""
    c = dict(x_shape=(n, cin) + hw, w_shape=(f, cin, 5, 5), stride=(1, 1), padding=(2, 2),
             dilation=(1, 1), groups=1)
    itemsize = np.dtype(dtype).itemsize
    lanes = {"avx512": 64, "avx2": 32}.get(_simd(), 16) // itemsize
    channels_gw = _channels_grad_weight(cin, *hw, itemsize) and f / (math.ceil(f / lanes) * lanes) >= 0.5
    assert C.conv2d_algorithms(c["x_shape"], c["w_shape"], *params(c), dtype=dtype) == {
        "forward": "direct", "grad_input": "direct" if cin > 1 else "gemm",
        "grad_weight": "direct_channels" if channels_gw else "direct"}
    run_all_three(c, dtype, np.random.default_rng(seed), algorithms=("auto",))


def _channels_grad_weight(cin, h, w, itemsize=4):
    """Where "auto" takes the channel-vectorised grad_weight (src/conv2d.cpp, channels_suit_grad_weight):
    more than 4 input channels with 32 vector registers (AVX-512, NEON); from 3 with 16 (AVX2, SSE2),
    on AVX2 only while one image's input is under 256 KiB."""
    simd = _simd()
    if simd in ("avx512", "neon"):
        return cin > 4
    return cin >= 3 and (simd != "avx2" or cin * h * w * itemsize < 256 * 1024)


def _simd():
    """The vector code of the active ISA ("avx512", "avx2", "sse2", "neon"; a -march=native build is one of them)."""
    return C.isas()[C.isa()]["simd"]


def test_algorithm_choice():
    """What "auto" picks (measured per ISA; see src/conv2d.cpp, algorithm choice)."""
    s, p, d = (1, 1), (2, 2), (1, 1)

    def algos(x_shape, w_shape, stride=s, padding=p, dtype="float32"):
        return tuple(C.conv2d_algorithms(x_shape, w_shape, stride, padding, d, 1, dtype=dtype).values())

    def gw(cin, h, w, itemsize=4, other="gemm"):
        return "direct_channels" if _channels_grad_weight(cin, h, w, itemsize) else other

    # the CIFAR network: 3 input channels; then small images where 14% / 28% of the taps are padding
    assert algos((128, 3, 32, 32), (32, 3, 5, 5)) == ("direct", "direct", gw(3, 32, 32, other="direct"))
    assert algos((128, 32, 16, 16), (64, 32, 5, 5)) == ("direct_channels",) * 2 + (gw(32, 16, 16),)
    assert algos((128, 64, 8, 8), (64, 64, 5, 5)) == ("direct_channels",) * 2 + (gw(64, 8, 8),)
    assert algos((128, 64, 8, 8), (64, 64, 5, 5), dtype="float64") == ("direct_channels",) * 2 + (gw(64, 8, 8, 8),)
    # large images (few padding taps) and small batches keep the width-vectorised kernel, except
    # in grad_weight; partly filled channel vectors (24 of 32 lanes) too
    assert algos((32, 64, 32, 32), (64, 64, 3, 3), padding=(1, 1)) == ("direct", "direct", gw(64, 32, 32))
    assert algos((16, 32, 16, 16), (64, 32, 5, 5)) == ("direct", "direct", gw(32, 16, 16))
    if _simd() == "avx512":  # 16 float lanes (AVX2 has 8, SSE2 and NEON 4)
        assert algos((128, 16, 16, 16), (24, 16, 5, 5))[0] == "direct"
    # 1x1 kernels read x in place; the direct transposed convolution needs stride 1
    assert algos((8, 64, 32, 32), (64, 64, 1, 1), padding=0) == ("gemm", "gemm", "gemm")
    assert algos((2, 3, 9, 9), (4, 3, 3, 3), stride=(2, 2))[1] == "gemm"
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got int32"):
        algos((2, 3, 9, 9), (4, 3, 3, 3), dtype="int32")


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_large_image_is_processed_in_row_blocks(algo):
    """Column buffers are limited to ~256 Ki elements, so this input takes several row blocks."""
    c = dict(x_shape=(2, 8, 40, 300), w_shape=(4, 8, 3, 3), stride=(1, 1), padding=(1, 1),
             dilation=(1, 1), groups=1)
    run_all_three(c, np.float32, np.random.default_rng(0), algorithms=(algo,))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pointwise_and_batch_one(dtype):
    """1x1 stride-1 convolutions (GEMM straight on x) and batch 1 (threads inside one image)."""
    rng = np.random.default_rng(1)
    for c in (dict(x_shape=(3, 12, 7, 5), w_shape=(6, 6, 1, 1), groups=2),
              dict(x_shape=(1, 16, 11, 13), w_shape=(20, 16, 3, 3), groups=1),
              dict(x_shape=(1, 3, 32, 32), w_shape=(32, 3, 5, 5), groups=1)):
        c.update(stride=(1, 1), padding=(c["w_shape"][2] // 2,) * 2, dilation=(1, 1))
        run_all_three(c, dtype, rng)


def test_empty_batch_and_channels():
    x = np.zeros((0, 3, 5, 5), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    y = C.conv2d(x, w, None, (1, 1), (0, 0), (1, 1), 1)
    assert y.shape == (0, 4, 3, 3)
    gw = C.conv2d_grad_weight(np.zeros((0, 4, 3, 3), np.float32), x, (4, 3, 3, 3), (1, 1), (0, 0), (1, 1), 1)
    np.testing.assert_array_equal(gw, np.zeros((4, 3, 3, 3), np.float32))
    # no output channels: the input gradient is zero
    gx = C.conv2d_grad_input(np.zeros((2, 0, 3, 3)), np.zeros((0, 3, 3, 3)), (2, 3, 5, 5), 1, 0, 1, 1)
    np.testing.assert_array_equal(gx, np.zeros((2, 3, 5, 5)))


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_grad_weight_is_deterministic(algo):
    rng = np.random.default_rng(2)
    x, gy = make(rng, (9, 3, 20, 20), np.float32), make(rng, (9, 8, 20, 20), np.float32)
    first = C.conv2d_grad_weight(gy, x, (8, 3, 3, 3), 1, 1, 1, 1, algorithm=algo)
    for _ in range(3):
        np.testing.assert_array_equal(C.conv2d_grad_weight(gy, x, (8, 3, 3, 3), 1, 1, 1, 1, algorithm=algo), first)


def test_concurrent_calls_from_python_threads():
    """The GIL is released; per-thread workspaces keep concurrent calls apart."""
    rng = np.random.default_rng(3)
    cases = []
    for cin in (3, 16):
        x = make(rng, (4, cin, 15, 18), np.float32)
        w = make(rng, (8, cin, 3, 3), np.float32)
        cases.append((x, w, REF.conv2d(f64(x), f64(w), None, (1, 1), (1, 1), (1, 1), 1), cin * 9))

    def job(i):
        x, w, ref, k = cases[i % 2]
        return C.conv2d(x, w, None, (1, 1), (1, 1), (1, 1), 1), ref, k

    with ThreadPoolExecutor(4) as ex:
        for y, ref, k in ex.map(job, range(16)):
            check(y, ref, np.float32, k, "concurrent conv2d")


# --------------------------------------------------------------------------- errors


def test_dtype_errors():
    x64, w64 = np.zeros((1, 2, 4, 4)), np.zeros((3, 2, 3, 3))
    with pytest.raises(TypeError, match="float32 or all float64, got float64, float32"):
        C.conv2d(x64, w64.astype(np.float32), None, 1, 0, 1, 1)
    with pytest.raises(TypeError, match="got int64, int64"):
        C.conv2d(x64.astype(np.int64), w64.astype(np.int64), None, 1, 0, 1, 1)
    with pytest.raises(TypeError, match="float64, float64, float32"):
        C.conv2d(x64, w64, np.zeros(3, np.float32), 1, 0, 1, 1)
    with pytest.raises(TypeError, match="conv2d_grad_input: .*float32, float64"):
        C.conv2d_grad_input(np.zeros((1, 3, 2, 2), np.float32), w64, (1, 2, 4, 4), 1, 0, 1, 1)
    with pytest.raises(TypeError, match="conv2d_grad_weight: .*float64, float32"):
        C.conv2d_grad_weight(np.zeros((1, 3, 2, 2)), x64.astype(np.float32), (3, 2, 3, 3), 1, 0, 1, 1)


def test_shape_errors():
    x, w = np.zeros((1, 4, 6, 6), np.float32), np.zeros((6, 2, 3, 3), np.float32)
    s = ((1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match=r"input must be 4-D .* got shape \(4, 6, 6\)"):
        C.conv2d(x[0], w, None, *s, 2)
    with pytest.raises(ValueError, match=r"weight must be 4-D .* got shape \(6, 2, 3\)"):
        C.conv2d(x, w[..., 0], None, *s, 2)
    with pytest.raises(ValueError, match=r"input shape \(1, 4, 6, 6\) and weight shape \(6, 2, 3, 3\) "
                                         r"do not match: the input has 4 channels, the weight expects 2 \* groups=1"):
        C.conv2d(x, w, None, *s, 1)
    with pytest.raises(ValueError, match=r"weight shape \(6, 2, 3, 3\) has 6 output channels, not divisible by groups=4"):
        C.conv2d(np.zeros((1, 8, 6, 6), np.float32), w, None, *s, 4)
    with pytest.raises(ValueError, match=r"input shape \(1, 4, 2, 6\) and weight shape \(6, 2, 3, 3\) give an "
                                         r"output of size \(0, 4\)"):
        C.conv2d(np.zeros((1, 4, 2, 6), np.float32), w, None, *s, 2)
    with pytest.raises(ValueError, match=r"bias shape \(5,\) must be \(6,\) for weight shape \(6, 2, 3, 3\)"):
        C.conv2d(x, w, np.zeros(5, np.float32), *s, 2)
    with pytest.raises(ValueError, match=r"grad_output shape \(1, 6, 3, 4\) does not match the output shape "
                                         r"\(1, 6, 4, 4\) of input shape \(1, 4, 6, 6\)"):
        C.conv2d_grad_input(np.zeros((1, 6, 3, 4), np.float32), w, (1, 4, 6, 6), *s, 2)
    with pytest.raises(ValueError, match=r"grad_output shape \(2, 6, 4, 4\) does not match the output shape "
                                         r"\(1, 6, 4, 4\)"):
        C.conv2d_grad_weight(np.zeros((2, 6, 4, 4), np.float32), x, (6, 2, 3, 3), *s, 2)
    with pytest.raises(ValueError, match=r"x_shape must have 4 entries .* got \(1, 4, 6\)"):
        C.conv2d_grad_input(np.zeros((1, 6, 4, 4), np.float32), w, (1, 4, 6), *s, 2)
    with pytest.raises(ValueError, match=r"conv2d: stride \(0, 1\): each must be >= 1 and at most 2147483647, got 0"):
        C.conv2d(x, w, None, (0, 1), (0, 0), (1, 1), 2)
    with pytest.raises(ValueError, match="algorithm must be 'auto', 'gemm', 'direct' or 'direct_channels'"):
        C.conv2d(x, w, None, *s, 2, algorithm="winograd")


# --------------------------------------------------------------------------- autograd on the native backend


@pytest.mark.parametrize("cfg", [
    dict(x=(2, 3, 6, 7), w=(4, 3, 5, 5), stride=1, padding=2, dilation=1, groups=1),  # few-channel path
    dict(x=(2, 6, 7, 6), w=(4, 3, 3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
    dict(x=(1, 8, 5, 5), w=(2, 8, 3, 3), stride=1, padding=1, dilation=1, groups=1),  # GEMM path
])
def test_gradcheck_native_backend(cfg):
    rng = np.random.default_rng(4)
    with tg.use_backend("native"):
        x = tg.from_numpy(rng.uniform(-1, 1, cfg["x"])).requires_grad_()
        w = tg.from_numpy(rng.uniform(-1, 1, cfg["w"])).requires_grad_()
        b = tg.from_numpy(rng.uniform(-1, 1, cfg["w"][0])).requires_grad_()
        kw = {k: cfg[k] for k in ("stride", "padding", "dilation", "groups")}
        assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kw), [x, w, b])


def test_native_backend_dispatches_to_the_kernels():
    rng = np.random.default_rng(5)
    x, w = make(rng, (2, 3, 8, 8), np.float32), make(rng, (4, 3, 3, 3), np.float32)
    with tg.use_backend("native"):
        be = tg.get_backend()
    y = be.conv2d(x, w, None, (1, 1), (1, 1), (1, 1), 1)
    np.testing.assert_array_equal(y, C.conv2d(x, w, None, (1, 1), (1, 1), (1, 1), 1))
    # dtypes the kernels do not take fall back to the reference
    y16 = be.conv2d(x.astype(np.float16), w.astype(np.float16), None, (1, 1), (1, 1), (1, 1), 1)
    assert y16.dtype == np.float16
