"""The CUDA kernels (kernels/*.cu) and the "cuda" backend (tinygrad_course.backend.cuda).

Without a GPU (this machine, CI) everything except the `gpu` tests runs:

* every .cu compiles with nvcc for sm_90 and sm_80 with warnings as errors (skips without nvcc; results
  are cached by source hash in the emulation's cache folder, so only edited kernels are recompiled);
* the CPU emulation itself (kernels/emulation.h): barrier misuse fails loudly, a missing barrier and a read
  of unwritten shared memory show up, launches are checked;
* CudaBackend on the emulated runtime equals NumpyBackend on targeted cases -- GEMM tile boundaries and
  strided/transposed/broadcast/misaligned operands, split-K, convolutions across the 128-wide tiles with
  groups/stride/dilation/padding, NaN/tie/-inf pooling windows, arbitrary argmax for the max-pool
  gradient, normalisations, cross-entropy -- with outputs poisoned (NaN-filled), inputs checked untouched;
* errors: dtypes, shapes, and cuda_runtime()'s messages without CuPy or without a GPU.

With a GPU (`python -m pytest -m gpu tests/test_cuda_kernels.py tests/test_backend_equivalence.py`) the
same backend cases also run on the real runtime (through HostArrays), plus a GEMM throughput check
against cuBLAS. The random (hypothesis) comparisons of every primitive live in test_backend_equivalence.py.
"""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_course.backend import cuda
from tinygrad_course.backend.numpy_backend import NumpyBackend

from strategies import ALL_LAYOUTS, arrays

REF = NumpyBackend()
RNG_SEED = 1234


# --- sources -----------------------------------------------------------------------------------
def test_kernel_sources_follow_the_rules():
    folder = cuda.kernels_dir()
    assert sorted(p.stem for p in folder.glob("*.cu")) == sorted(cuda.KERNEL_MODULES)
    for module in cuda.KERNEL_MODULES:
        text = (folder / f"{module}.cu").read_text()
        assert text.startswith(f"// {module}.cu -- "), f"{module}.cu must start with its header comment"
        source = cuda.kernel_source(module)
        assert "#include" not in source.replace("#line", ""), f"{module}: includes left after inlining"
        sigs = cuda.kernel_signatures(source)
        assert sigs, f"{module}.cu has no extern \"C\" kernels"
        for name in sigs:  # typed kernels come in float32/float64 pairs
            if name.endswith("_f32"):
                assert name[:-4] + "_f64" in sigs, f"{name} has no float64 twin"
            if name.endswith("_f64"):
                assert name[:-4] + "_f32" in sigs, f"{name} has no float32 twin"


def test_signature_parser():
    src = ('extern "C" __global__ void __launch_bounds__(256, 2)\nk_f32(const float* __restrict__ a, double* b,\n'
           '  int n, long long s, float f, double d, const long long* idx, int* out) {}')
    assert cuda.kernel_signatures(src) == {"k_f32": "FDiqfdQI"}
    with pytest.raises(ValueError, match="unsupported parameter type"):
        cuda.kernel_signatures('extern "C" __global__ void k(unsigned char* p) {}')


def test_importing_the_backend_does_not_import_cupy():
    code = "import sys, tinygrad_course.backend.cuda; assert 'cupy' not in sys.modules, 'cupy imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- nvcc and NVRTC: every kernel compiles for the GPU -----------------------------------------------
def _stamp(tool, source, how):
    """A file that exists once `source` compiled cleanly with `tool` that way (an edited kernel is checked again)."""
    key = hashlib.sha256("\0".join([tool, source, how]).encode()).hexdigest()
    return cuda._cache_root() / "kernel-compile-checks" / f"{tool}-{key[:32]}"


NVCC = shutil.which("nvcc")
ARCHS = ("sm_90", "sm_80")  # the H100, and the lowest arch nvcc 13 still targets


@pytest.mark.skipif(NVCC is None, reason="nvcc not found: the .cu files were not compiled for a GPU")
@pytest.mark.parametrize("module", cuda.KERNEL_MODULES)
def test_kernel_compiles_with_nvcc(module, tmp_path):
    """nvcc --cubin for each arch (in parallel), warnings as errors, of the inlined source NVRTC gets."""
    source = cuda.kernel_source(module)
    version = subprocess.run([NVCC, "--version"], capture_output=True, text=True).stdout
    procs = {}
    for arch in ARCHS:
        cmd = [NVCC, "--cubin", f"-arch={arch}", "-std=c++17", "-Werror", "all-warnings", "-Xptxas", "-v",
               "-o", os.devnull, str(tmp_path / f"{module}.cu")]
        stamp = _stamp("nvcc", source, " ".join(cmd[:-1]) + version)
        if stamp.exists():
            continue
        (tmp_path / f"{module}.cu").write_text(source)
        procs[arch] = (stamp, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for arch, (stamp, proc) in procs.items():
        out = proc.communicate()[0]
        assert proc.returncode == 0, f"nvcc -arch={arch} failed on kernels/{module}.cu:\n{out}"
        for line in out.splitlines():  # static shared memory must fit the default 48 KiB
            if "bytes smem" in line:
                smem = int(line.split("bytes smem")[0].split(",")[-1])
                assert smem <= 48 * 1024, f"{module} ({arch}): {line.strip()}"
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(out)


def _find_nvrtc():
    """libnvrtc (what CuPy compiles with): $TINYGRAD_COURSE_NVRTC, the system's, or the pip wheel's."""
    import ctypes.util
    import glob
    candidates = [os.environ.get("TINYGRAD_COURSE_NVRTC"), ctypes.util.find_library("nvrtc")]
    for root in sys.path + ["/usr/local/cuda"]:
        candidates += sorted(glob.glob(os.path.join(root, "nvidia", "cu*", "lib", "libnvrtc.so.*")))
        candidates += sorted(glob.glob(os.path.join(root, "lib64", "libnvrtc.so*")))
    for c in candidates:
        if c and "builtins" not in c:
            try:
                return ctypes.CDLL(c)
            except OSError:
                continue
    return None


NVRTC = _find_nvrtc()


def nvrtc_compile(source, options):
    """(return code, log) of nvrtcCompileProgram."""
    import ctypes
    prog = ctypes.c_void_p()
    assert NVRTC.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"kernels.cu", 0, None, None) == 0
    try:
        opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
        rc = NVRTC.nvrtcCompileProgram(prog, len(options), opts)
        size = ctypes.c_size_t()
        NVRTC.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        NVRTC.nvrtcGetProgramLog(prog, log)
        return rc, log.value.decode(errors="replace")
    finally:
        NVRTC.nvrtcDestroyProgram(ctypes.byref(prog))


@pytest.mark.skipif(NVRTC is None, reason="libnvrtc not found (pip install nvidia-cuda-nvrtc, or a CUDA toolkit)")
@pytest.mark.parametrize("module", cuda.KERNEL_MODULES)
def test_kernel_compiles_with_nvrtc(module):
    """Exactly what cupy.RawModule does on the GPU machine (no GPU needed): our options, then CuPy's."""
    source = cuda.kernel_source(module)
    for arch in ARCHS:
        options = [*cuda.nvrtc_options(), "-ftz=true", f"-arch={arch}"]
        stamp = _stamp("nvrtc", source, " ".join(options))
        if stamp.exists():
            continue
        rc, log = nvrtc_compile(source, options)
        assert rc == 0 and "warning" not in log, f"NVRTC -arch={arch} on kernels/{module}.cu:\n{log}"
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(log)


def test_kernels_dir_prefers_the_installed_package(tmp_path, monkeypatch):
    (tmp_path / "kernels").mkdir()
    (tmp_path / "kernels" / "gemm.cu").write_text("// gemm.cu -- test copy")
    monkeypatch.setattr(cuda.importlib.resources, "files", lambda package: tmp_path)
    assert cuda.kernels_dir() == tmp_path / "kernels"
    monkeypatch.setenv("TINYGRAD_COURSE_KERNELS", str(cuda.Path(__file__).parents[1] / "kernels"))
    assert cuda.kernels_dir() == cuda.Path(__file__).parents[1] / "kernels"


# --- the emulation itself -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def emu():
    try:
        return cuda.emulated_runtime()
    except RuntimeError as e:
        pytest.skip(str(e))


TEST_KERNELS = r'''
extern "C" __global__ void early_return(float* out) {
  __shared__ float s[64];
  if (threadIdx.x == 3) return;
  s[threadIdx.x] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x];
}
extern "C" __global__ void divergent(float* out) {
  if (threadIdx.x < 2) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1.0f;
}
extern "C" __global__ void neighbour(float* out, int with_barrier) {
  __shared__ float s[64];
  s[threadIdx.x] = static_cast<float>(threadIdx.x);
  if (with_barrier) __syncthreads();
  out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}
extern "C" __global__ void unwritten(float* out) {
  __shared__ float s[64];
  out[threadIdx.x] = s[threadIdx.x];
}
extern "C" __global__ void indices(int* out, long long n) {
  const long long t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const long long b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const long long i = b * blockDim.x * blockDim.y * blockDim.z + t;
  if (i < n) out[i] = static_cast<int>(i);
}
'''


def _test_kernel(emu, name):
    return emu.kernel_from_source("emulation-tests", TEST_KERNELS, name)


def test_emulation_fails_on_an_early_return_before_a_barrier(emu):
    with pytest.raises(RuntimeError, match=r"1 thread\(s\) returned while 63 wait at __syncthreads"):
        _test_kernel(emu, "early_return")((1, 1, 1), (64, 1, 1), np.zeros(64, np.float32))


def test_emulation_fails_on_a_barrier_in_divergent_code(emu):
    with pytest.raises(RuntimeError, match="different __syncthreads"):
        _test_kernel(emu, "divergent")((1, 1, 1), (32, 1, 1), np.zeros(32, np.float32))


def test_emulation_shows_a_missing_barrier(emu):
    kernel, expected = _test_kernel(emu, "neighbour"), (np.arange(64) + 1) % 64
    out = np.zeros(64, np.float32)
    kernel((1, 1, 1), (64, 1, 1), out, 1)
    np.testing.assert_array_equal(out, expected)
    kernel((1, 1, 1), (64, 1, 1), out, 0)  # thread t reads s[t+1] before thread t+1 wrote it
    assert np.isnan(out[:-1]).all()


def test_emulation_poisons_shared_memory(emu):
    out = np.zeros(64, np.float32)
    _test_kernel(emu, "unwritten")((2, 1, 1), (64, 1, 1), out)
    assert np.isnan(out).all()


def test_emulation_runs_every_block_and_thread(emu):
    n = 2 * 3 * 2 * (4 * 2 * 3) - 5
    out = np.full(n, -1, np.int32)
    _test_kernel(emu, "indices")((2, 3, 2), (4, 2, 3), out, n)
    np.testing.assert_array_equal(out, np.arange(n))


def test_launches_are_checked(emu):
    kernel = _test_kernel(emu, "indices")
    out = np.zeros(8, np.int32)
    with pytest.raises(ValueError, match="invalid block"):
        kernel((1, 1, 1), (2048, 1, 1), out, 8)
    with pytest.raises(ValueError, match="invalid grid"):
        kernel((1, 70000, 1), (32, 1, 1), out, 8)
    with pytest.raises(TypeError, match="must be a numpy int32 array"):
        kernel((1, 1, 1), (32, 1, 1), out.astype(np.int64), 8)
    with pytest.raises(TypeError, match="takes 2 arguments"):
        kernel((1, 1, 1), (32, 1, 1), out)
    with pytest.raises(ValueError, match="does not fit in int32"):
        _test_kernel(emu, "neighbour")((1, 1, 1), (64, 1, 1), np.zeros(64, np.float32), 2**31)


def test_every_kernel_module_builds_for_the_emulation(emu):
    for module in cuda.KERNEL_MODULES:  # compile() also checks the parsed signatures against the compiled ones
        lib, sigs = emu.library(module)
        assert sigs == cuda.kernel_signatures(cuda.kernel_source(module))


# --- the backend on every runtime at hand ---------------------------------------------------------
@pytest.fixture(scope="module", params=["cuda-emulated", pytest.param("cuda-host", marks=pytest.mark.gpu)])
def be(request):
    """CudaBackend with NaN-poisoned outputs, taking and returning NumPy arrays."""
    try:
        if request.param == "cuda-emulated":
            return cuda.HostArrays(cuda.CudaBackend(cuda.emulated_runtime(), poison=True))
        return cuda.HostArrays(cuda.CudaBackend(cuda.cuda_runtime(), poison=True))
    except RuntimeError as e:
        pytest.skip(str(e))


def rand(shape, dtype, lo=-1.0, hi=1.0, seed=None):
    rng = np.random.default_rng(RNG_SEED if seed is None else seed)
    return rng.uniform(lo, hi, shape).astype(dtype)


def _like(value, template):
    if isinstance(template, tuple):
        return tuple(_like(v, t) for v, t in zip(value, template))
    return np.asarray(value).astype(template.dtype) if isinstance(template, (np.ndarray, np.generic)) else value


def check(be, method, *args, k=1, cond=1.0, exact=False):
    """be.method(*args) equals the NumPy reference (computed in float64 for float32 inputs) in shape,
    dtype and value (tolerances as in test_backend_equivalence.py), and leaves its inputs untouched."""
    expected = getattr(REF, method)(*args)
    if any(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in args):
        up = [a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype == np.float32 else a for a in args]
        expected = _like(getattr(REF, method)(*up), expected)
    before = [a.copy() for a in args if isinstance(a, np.ndarray)]
    actual = getattr(be, method)(*args)
    for b, a in zip(before, [a for a in args if isinstance(a, np.ndarray)]):
        np.testing.assert_array_equal(a, b, err_msg=f"{method} modified an input")
    pairs = zip(actual, expected) if isinstance(expected, tuple) else [(actual, expected)]
    for a, e in pairs:
        a = np.asarray(a)
        assert a.shape == e.shape and a.dtype == e.dtype, f"{method}: {a.shape} {a.dtype} != {e.shape} {e.dtype}"
        if exact:
            np.testing.assert_array_equal(a, e, err_msg=method)
            continue
        scale = max(1.0, float(np.nanmax(np.abs(e)))) if e.size else 1.0
        rtol, atol = (1e-4, 1e-5) if e.dtype == np.float32 else (1e-10, 1e-12)
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol * math.sqrt(max(k, 1)) * scale * cond, err_msg=method)
    return actual


DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])


# GEMM: sizes around the 128 x 128 tiles and the 8-deep K slices
GEMM_SHAPES = [(1, 1, 1), (1, 9, 257), (127, 8, 129), (128, 16, 128), (129, 33, 1), (257, 7, 127),
               (3, 300, 5), (130, 4, 131), (2, 0, 3)]


def _layout(x, how):
    """x (..., r, c) in another memory layout with the same values."""
    if how == "transposed":  # a transposed view of a C-contiguous array
        return np.ascontiguousarray(np.swapaxes(x, -1, -2)).swapaxes(-1, -2)
    if how == "negative":
        return np.ascontiguousarray(x[..., ::-1, ::-1])[..., ::-1, ::-1]
    if how == "misaligned":  # contiguous rows, but the first element is not 16-byte aligned
        buf = np.empty(x.size + 1, x.dtype)
        view = buf[1:].reshape(x.shape)
        view[...] = x
        return view
    if how == "strided":
        big = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
        big[..., ::2] = x
        return big[..., ::2]
    return x


@DTYPES
@pytest.mark.parametrize("m,k,n", GEMM_SHAPES, ids=lambda v: str(v))
def test_matmul_tile_boundaries(be, dtype, m, k, n):
    a, b = rand((m, k), dtype, seed=1), rand((k, n), dtype, seed=2)
    check(be, "matmul", a, b, k=k)


@DTYPES
@pytest.mark.parametrize("layout_a", ["contiguous", "transposed", "negative", "misaligned", "strided"])
@pytest.mark.parametrize("layout_b", ["contiguous", "transposed", "misaligned"])
def test_matmul_operand_layouts(be, dtype, layout_a, layout_b):
    a, b = rand((2, 131, 12), dtype, seed=3), rand((2, 12, 132), dtype, seed=4)
    check(be, "matmul", _layout(a, layout_a), _layout(b, layout_b), k=12)


@DTYPES
def test_matmul_broadcast_batches_and_vectors(be, dtype):
    a, b = rand((3, 1, 5, 8), dtype, seed=7), rand((4, 8, 6), dtype, seed=8)
    check(be, "matmul", a, b, k=8)
    check(be, "matmul", np.broadcast_to(a[:1], (3, 4, 5, 8)), b, k=8)  # stride-0 batch, not foldable
    check(be, "matmul", a[0, 0, 0], b, k=8)  # 1-D @ 3-D
    check(be, "matmul", a, b[0, :, 0], k=8)  # 4-D @ 1-D
    check(be, "matmul", rand((9, 300), dtype, seed=9).T, rand((9, 5), dtype, seed=10), k=9)


@DTYPES
def test_matmul_split_k_is_exact_and_deterministic(be, dtype):
    be.backend.split_k_min = 16  # small problems with a long K get split: exercise that path
    try:
        a, b = rand((2, 7, 203), dtype, seed=11), rand((203, 9), dtype, seed=12)
        first = check(be, "matmul", a, b, k=203)
        np.testing.assert_array_equal(be.matmul(a, b), first)  # same order of additions every time
    finally:
        be.backend.split_k_min = 512


@settings(max_examples=10)
@given(data=st.data())
def test_matmul_drawn_layouts(be, data):
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    m, k, n = (data.draw(st.sampled_from([1, 2, 5, 9, 130])) for _ in range(3))
    a = data.draw(arrays((2, m, k), dtype=dtype, layouts=ALL_LAYOUTS))
    b = data.draw(arrays((k, n), dtype=dtype, layouts=ALL_LAYOUTS))
    check(be, "matmul", a, b, k=k)


# convolutions: (x_shape, w_shape, stride, padding, dilation, groups)
CONV_CASES = [
    ((1, 1, 1, 1), (1, 1, 1, 1), (1, 1), (0, 0), (1, 1), 1),
    ((2, 3, 9, 8), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((2, 6, 11, 7), (4, 3, 3, 2), (2, 1), (1, 2), (1, 2), 2),
    ((3, 4, 7, 9), (6, 4, 1, 1), (1, 2), (0, 0), (1, 1), 1),  # 1x1, Q = 4: vector loads of w
    ((1, 6, 10, 10), (6, 1, 3, 3), (1, 1), (1, 1), (2, 2), 6),  # depthwise
    ((2, 5, 13, 12), (130, 5, 2, 2), (3, 2), (1, 0), (1, 1), 1),  # F > 128: two M tiles
    ((3, 2, 17, 16), (3, 2, 4, 3), (1, 1), (3, 2), (1, 1), 1),  # N*OH*OW > 128: several N tiles
    ((1, 9, 5, 5), (9, 3, 5, 5), (1, 1), (2, 2), (1, 1), 3),
]
CONV_IDS = [f"x{c[0]}w{c[1]}s{c[2]}p{c[3]}d{c[4]}g{c[5]}".replace(" ", "") for c in CONV_CASES]


def _conv_out(case):
    (n, _, h, w), (f, _, kh, kw), s, p, d, _ = case
    return (n, f, (h + 2 * p[0] - d[0] * (kh - 1) - 1) // s[0] + 1, (w + 2 * p[1] - d[1] * (kw - 1) - 1) // s[1] + 1)


@DTYPES
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_forward_and_gradients(be, dtype, case):
    x_shape, w_shape, *params = case
    x, w, b = rand(x_shape, dtype, seed=13), rand(w_shape, dtype, seed=14), rand(w_shape[:1], dtype, seed=15)
    gy = rand(_conv_out(case), dtype, seed=16)
    q = w_shape[1] * w_shape[2] * w_shape[3]
    check(be, "conv2d", x, w, b, *params, k=q)
    check(be, "conv2d", x, w, None, *params, k=q)
    check(be, "conv2d_grad_input", gy, w, x_shape, *params, k=w_shape[0] * q)
    check(be, "conv2d_grad_weight", gy, x, w_shape, *params, k=gy.size // gy.shape[1])


@DTYPES
def test_conv2d_grad_weight_split_k(be, dtype):
    case = ((4, 3, 12, 12), (5, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1)
    gy, x = rand(_conv_out(case), dtype, seed=17), rand(case[0], dtype, seed=18)
    be.backend.split_k_min = 64
    try:
        check(be, "conv2d_grad_weight", gy, x, case[1], *case[2:], k=gy.size // gy.shape[1])
    finally:
        be.backend.split_k_min = 512


POOL_CASES = [((2, 3, 7, 9), (2, 2), (2, 2), (0, 0)), ((1, 2, 8, 5), (3, 3), (1, 2), (1, 1)),
              ((2, 1, 5, 11), (4, 1), (3, 1), (2, 0)), ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0))]


@DTYPES
@pytest.mark.parametrize("x_shape,kernel,stride,padding", POOL_CASES, ids=lambda v: str(v).replace(" ", ""))
def test_pooling(be, dtype, x_shape, kernel, stride, padding):
    x = rand(x_shape, dtype, seed=19)
    y, argmax = check(be, "max_pool2d", x, kernel, stride, padding, exact=True)
    gy = rand(y.shape, dtype, seed=20)
    check(be, "max_pool2d_grad", gy, argmax, x_shape, k=kernel[0] * kernel[1])
    for cip in (True, False):
        check(be, "avg_pool2d", x, kernel, stride, padding, cip, k=kernel[0] * kernel[1])
        check(be, "avg_pool2d_grad", gy, x_shape, kernel, stride, padding, cip, k=kernel[0] * kernel[1])


@DTYPES
def test_max_pool_nan_ties_and_infinities(be, dtype):
    x = np.array([[[[1, 2, 2, 0], [2, np.nan, 1, np.nan], [-np.inf, -np.inf, 3, 3], [-np.inf, -np.inf, 0, 3]]]], dtype)
    for kernel, stride, padding in [((2, 2), (2, 2), (0, 0)), ((2, 2), (1, 1), (1, 1)), ((3, 3), (1, 1), (1, 1))]:
        check(be, "max_pool2d", x, kernel, stride, padding, exact=True)


@DTYPES
def test_max_pool_grad_with_any_argmax(be, dtype):
    """The gradient kernel derives its windows from argmax itself: any in-plane indices work."""
    rng = np.random.default_rng(21)
    x_shape = (2, 3, 6, 7)
    argmax = rng.integers(0, 6 * 7, size=(2, 3, 4, 5)).astype(np.int64)
    gy = rand(argmax.shape, dtype, seed=22)
    check(be, "max_pool2d_grad", gy, argmax, x_shape, k=20)


BN_SHAPES = [(5, 3), (4, 3, 7), (2, 5, 4, 3), (1, 2, 1, 1)]


@DTYPES
@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_batch_norm(be, dtype, shape):
    c, m = shape[1], math.prod(shape) // shape[1]
    x, gamma, beta = rand(shape, dtype, -3, 3, seed=23), rand((c,), dtype, 0.5, 2, seed=24), rand((c,), dtype, seed=25)
    for g, bt in [(gamma, beta), (None, None), (gamma, None)]:
        y, mean, var = check(be, "batch_norm_train", x, g, bt, 1e-5, k=m, cond=1e3)
        check(be, "batch_norm_eval", x, mean, var, g, bt, 1e-3, cond=1e3)
        invstd = (1.0 / np.sqrt(var.astype(np.float64) + 1e-5)).astype(dtype)
        gy = rand(shape, dtype, seed=26)
        for training in (True, False):
            check(be, "batch_norm_grad", gy, x, mean, invstd, g, training, k=m, cond=1e3)


LN_CASES = [((4, 7), 1), ((9, 4, 6), 1), ((2, 3, 5), 2), ((2, 3, 2, 5), 3), ((3, 300), 1), ((5,), 1)]


@DTYPES
@pytest.mark.parametrize("shape,ndim", LN_CASES, ids=str)
def test_layer_norm(be, dtype, shape, ndim):
    norm = shape[len(shape) - ndim:]
    x, gamma, beta = rand(shape, dtype, -3, 3, seed=27), rand(norm, dtype, 0.5, 2, seed=28), rand(norm, dtype, seed=29)
    d = math.prod(norm)
    for g, bt in [(gamma, beta), (None, None)]:
        _, mean, invstd = check(be, "layer_norm", x, ndim, g, bt, 1e-5, k=d, cond=1e3)
        gy = rand(shape, dtype, seed=30)
        check(be, "layer_norm_grad", gy, x, mean, invstd, g, ndim, k=max(d, x.size // d), cond=1e3)


@DTYPES
@pytest.mark.parametrize("n,c", [(1, 1), (7, 11), (3, 300), (40, 2)])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
def test_cross_entropy(be, dtype, n, c, smoothing):
    logits = rand((n, c), dtype, -30, 30, seed=31)
    target = np.random.default_rng(32).integers(0, c, n)
    _, probs = check(be, "cross_entropy", logits, target, smoothing, k=c)
    check(be, "cross_entropy_grad", rand((n,), dtype, seed=33), probs, target.astype(np.int32), smoothing)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
@DTYPES
def test_relu_specials(be, dtype):
    x = np.array([-np.inf, -1, -0.0, 0.0, 1e-30, 2, np.inf, np.nan], dtype)
    g = np.array([1, np.nan, np.inf, -2, 3, np.nan, 5, 6], dtype)
    check(be, "relu", x, exact=True)
    check(be, "relu_grad", g, x, exact=True)
    check(be, "relu", np.array(-3.0, dtype), exact=True)  # 0-d
    check(be, "relu_grad", np.ones((2, 1), dtype), rand((2, 3), dtype), exact=True)  # broadcast


# --- errors ---------------------------------------------------------------------------------------
def test_unsupported_dtypes_and_shapes_raise_clearly(emu):
    backend = cuda.CudaBackend(emu)
    with pytest.raises(TypeError, match="float32 and float64 only, got int64"):
        backend.relu(np.arange(3))
    with pytest.raises(TypeError, match="share one dtype"):
        backend.matmul(np.ones((2, 2), np.float32), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\) are not aligned"):
        backend.matmul(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="do not fit groups=2"):
        backend.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 1, 3, 3)), None, (1, 1), (0, 0), (1, 1), 2)
    with pytest.raises(ValueError, match="too small"):
        backend.max_pool2d(np.ones((1, 1, 2, 2)), (3, 3), (1, 1), (0, 0))
    with pytest.raises(TypeError, match="indices must be integers"):
        backend.cross_entropy(np.ones((2, 3)), np.ones(2), 0.0)


def test_cuda_runtime_without_cupy(monkeypatch):
    monkeypatch.setattr(cuda, "_cuda", {})
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    with pytest.raises(cuda.CudaUnavailableError, match=r'pip install "tinygrad_course\[cuda\]"'):
        cuda.cuda_runtime()
    with pytest.raises(cuda.CudaUnavailableError):  # the failure is cached, and says the same again
        cuda.CudaBackend()
    assert not cuda.cuda_available()


def test_cuda_runtime_without_a_gpu(monkeypatch):
    def no_device():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_device)))
    monkeypatch.setattr(cuda, "_cuda", {})
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(cuda.CudaUnavailableError, match="no usable CUDA GPU.*cudaErrorNoDevice"):
        cuda.cuda_runtime()
    fake.cuda.runtime.getDeviceCount = lambda: 0
    monkeypatch.setattr(cuda, "_cuda", {})
    with pytest.raises(cuda.CudaUnavailableError, match="no CUDA GPU found"):
        cuda.cuda_runtime()


@pytest.mark.gpu
def test_gpu_backend_rejects_host_arrays():
    try:
        backend = cuda.CudaBackend(cuda.cuda_runtime())
    except cuda.CudaUnavailableError:
        pytest.skip("no GPU")
    with pytest.raises(TypeError, match="HostArrays"):
        backend.relu(np.ones(3, np.float32))


# --- on a real GPU ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gpu():
    try:
        return cuda.CudaBackend(cuda.cuda_runtime())
    except cuda.CudaUnavailableError as e:
        pytest.skip(str(e))


@pytest.mark.gpu
def test_gemm_throughput_against_cublas(gpu):
    """Our float32 GEMM at 4096^3 reaches at least 70% of cuBLAS (cupy.matmul) on the same GPU."""
    cp = gpu.xp
    n = 4096
    a, b = cp.random.standard_normal((n, n), dtype=cp.float32), cp.random.standard_normal((n, n), dtype=cp.float32)

    def best_ms(f, reps=10):
        f()
        cp.cuda.get_current_stream().synchronize()
        start, end = cp.cuda.Event(), cp.cuda.Event()
        times = []
        for _ in range(reps):
            start.record()
            f()
            end.record()
            end.synchronize()
            times.append(cp.cuda.get_elapsed_time(start, end))
        return min(times)

    ours, cublas = best_ms(lambda: gpu.matmul(a, b)), best_ms(lambda: cp.matmul(a, b))
    flop = 2 * n**3
    print(f"\nGEMM {n}^3 float32: ours {flop / ours / 1e9:.1f} TFLOP/s, cuBLAS {flop / cublas / 1e9:.1f} TFLOP/s, "
          f"ratio {cublas / ours:.2f}")
    np.testing.assert_allclose(cp.asnumpy(gpu.matmul(a[:256], b[:, :256])), cp.asnumpy(cp.matmul(a[:256], b[:, :256])),
                               rtol=1e-3, atol=1e-3)
    assert cublas / ours >= 0.7, f"our GEMM reaches {cublas / ours:.0%} of cuBLAS (goal: 70%)"
