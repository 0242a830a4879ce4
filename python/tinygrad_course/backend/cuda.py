"""The "cuda" backend: our own CUDA kernels (``kernels/*.cu``), launched through CuPy -- or emulated on the CPU.

``CudaBackend`` implements every primitive of ``NumpyBackend`` by launching the kernels in
``kernels/`` (GEMM, implicit-GEMM convolution, pooling, batch/layer norm, softmax cross-entropy,
ReLU). The launch code does not know where the kernels run: it talks to a small *runtime* object
that has an array module ``xp`` and launches a kernel by (module, name, grid, block, args):

* ``cuda_runtime()`` -- the real one: ``xp = cupy``; each ``.cu`` file is compiled once per process
  by ``cupy.RawModule`` (NVRTC, cached on disk by CuPy) when one of its kernels is first used.
* ``emulated_runtime()`` -- ``xp = numpy``; the *same* ``.cu`` sources are compiled on the host by a
  C++17 compiler after ``kernels/emulation.h`` (which turns CUDA's keywords into C++ and runs a block's
  threads as fibers with a real ``__syncthreads()`` barrier), cached as a shared library per source
  hash, loaded with ctypes. One CPU core, one block after another: fine for tests, and it runs the
  actual kernel code without a GPU (CI tests it).

``CudaBackend()`` uses the real runtime (``CudaUnavailableError`` without CuPy or a GPU);
``CudaBackend(emulated_runtime())`` the emulated one. Arrays in and out are ``runtime.xp`` arrays
(CuPy arrays on the GPU); ``HostArrays(backend)`` wraps a backend so it takes and returns NumPy arrays
(what the equivalence tests compare). Importing this module imports neither CuPy nor a compiler.

Adding a kernel: write a templated ``__device__`` body and its ``extern "C"`` ``name_f32``/``name_f64``
wrappers in a ``kernels/*.cu`` file (following the rules at the top of ``kernels/common.cuh``; a new file
also goes into ``KERNEL_MODULES``), launch it from a CudaBackend method with
``self._launch(module, name, grid, block, *args)`` -- the arguments are checked against the parameter
list read from the source -- and add cases to ``tests/test_cuda_kernels.py``. The nvcc/NVRTC compile
checks and the emulation pick the new kernel up by themselves.

Environment variables: ``TINYGRAD_COURSE_CUDA_SYNC=1`` synchronises after every launch, so an
asynchronous kernel fault is reported with the kernel's name; ``TINYGRAD_COURSE_NVRTC_OPTIONS`` adds
NVRTC options; ``TINYGRAD_COURSE_KERNELS`` points at another kernels directory;
``TINYGRAD_COURSE_CACHE_DIR`` is where the emulation keeps its compiled libraries; ``CXX`` the host
compiler of the emulation, ``TINYGRAD_COURSE_EMU_CXXFLAGS`` extra flags for it (e.g. ``-fsanitize=address``
to find out-of-bounds accesses of the kernels without a GPU).
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.resources
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from .numpy_backend import NumpyBackend, conv_output_size

__all__ = ["CudaBackend", "CudaUnavailableError", "HostArrays", "cuda_runtime", "cuda_available",
           "emulated_runtime", "kernels_dir", "kernel_source", "kernel_signatures", "nvrtc_options", "KERNEL_MODULES"]

KERNEL_MODULES = ("elementwise", "gemm", "conv2d", "pool", "norm", "softmax")
_FLOATS = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
_INT32_MAX = 2**31 - 1


class CudaUnavailableError(RuntimeError):
    """The real CUDA runtime cannot be used here (no CuPy, no GPU or no driver)."""


# --- kernel sources ----------------------------------------------------------------------------
def kernels_dir() -> Path:
    """The folder with the .cu files: $TINYGRAD_COURSE_KERNELS, the installed package's
    ``tinygrad_course/kernels``, or the source checkout's ``kernels/``."""
    candidates = []
    if os.environ.get("TINYGRAD_COURSE_KERNELS"):
        candidates.append(Path(os.environ["TINYGRAD_COURSE_KERNELS"]))
    try:
        candidates.append(Path(str(importlib.resources.files("tinygrad_course") / "kernels")))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - unusual import setups
        pass
    candidates.append(Path(__file__).resolve().parents[3] / "kernels")  # python/tinygrad_course/backend
    for c in candidates:
        if (c / "gemm.cu").is_file():
            return c
    raise FileNotFoundError("the CUDA kernel sources (gemm.cu, ...) were not found in any of "
                            + ", ".join(str(c) for c in candidates))


_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')


def kernel_source(module: str) -> str:
    """The text of ``kernels/<module>.cu`` with our ``#include "x.cuh"`` lines inlined (``#line``
    directives keep compiler messages pointing at the original files). Inlining makes the text all a
    compiler needs, and makes CuPy's and the emulation's caches (keyed by the text) see header edits."""
    folder = kernels_dir()

    def expand(name, seen):
        out = [f'#line 1 "{name}"']
        for number, line in enumerate((folder / name).read_text().splitlines(), 1):
            m = _INCLUDE.match(line)
            if not m:
                out.append(line)
                continue
            if m.group(1) not in seen:
                seen.add(m.group(1))
                out.append(expand(m.group(1), seen))
            out.append(f'#line {number + 1} "{name}"')
        return "\n".join(out)

    if module not in KERNEL_MODULES:
        raise ValueError(f"unknown kernel module {module!r}; the modules are {KERNEL_MODULES}")
    return expand(f"{module}.cu", set()) + "\n"


_ENTRY = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(([^)]*)\)')
_SCALAR_CODES = {"int": "i", "long long": "q", "float": "f", "double": "d"}
_CODE_DTYPES = {"i": np.dtype(np.int32), "q": np.dtype(np.int64), "f": np.dtype(np.float32),
                "d": np.dtype(np.float64)}


def kernel_signatures(source: str) -> dict[str, str]:
    """{kernel name: type codes} of the ``extern "C" __global__`` entry points in a kernel source.

    One code per parameter: f/d/i/q for a float/double/int/long long scalar, F/D/I/Q for a pointer
    to one (the same codes that emulation.h derives from the compiled functions)."""
    sigs = {}
    for m in _ENTRY.finditer(source):
        codes = []
        for param in m.group(2).split(","):
            words = [w for w in param.replace("*", " * ").split() if w not in ("const", "__restrict__")]
            pointer = "*" in words
            base = " ".join(w for w in words[:-1] if w != "*")  # the last word is the parameter's name
            if base not in _SCALAR_CODES:
                raise ValueError(f"kernel {m.group(1)}: unsupported parameter type in {param.strip()!r}")
            codes.append(_SCALAR_CODES[base].upper() if pointer else _SCALAR_CODES[base])
        sigs[m.group(1)] = "".join(codes)
    return sigs


# --- runtimes ----------------------------------------------------------------------------------
class _Kernel:
    """One kernel of one runtime: checks the launch configuration and the arguments, then launches."""

    def __init__(self, runtime, name, codes, launch):
        self.runtime, self.name, self.codes, self._launch = runtime, name, codes, launch

    def __call__(self, grid, block, *args):
        grid, block = tuple(int(g) for g in grid), tuple(int(b) for b in block)
        if len(grid) != 3 or len(block) != 3:
            raise ValueError(f"{self.name}: grid and block must have 3 dimensions, got {grid}, {block}")
        if min(block) < 1 or math.prod(block) > 1024 or block[2] > 64:
            raise ValueError(f"{self.name}: invalid block {block} (at most 1024 threads, z <= 64)")
        if min(grid) < 0 or grid[0] > _INT32_MAX or grid[1] > 65535 or grid[2] > 65535:
            raise ValueError(f"{self.name}: invalid grid {grid} (x < 2**31, y and z <= 65535)")
        if len(args) != len(self.codes):
            raise TypeError(f"{self.name} takes {len(self.codes)} arguments, got {len(args)}")
        xp = self.runtime.xp
        checked = []
        for i, (code, a) in enumerate(zip(self.codes, args)):
            dtype = _CODE_DTYPES[code.lower()]
            if code.isupper():
                if not isinstance(a, xp.ndarray) or a.dtype != dtype:
                    got = f"{type(a).__name__} of {a.dtype}" if hasattr(a, "dtype") else type(a).__name__
                    raise TypeError(f"{self.name}: argument {i} must be a {xp.__name__} {dtype} array, got {got}")
                checked.append(a)
            else:
                if dtype.kind == "i":
                    info = np.iinfo(dtype)
                    if not info.min <= int(a) <= info.max:
                        raise ValueError(f"{self.name}: argument {i} = {int(a)} does not fit in {dtype} "
                                         "(the kernels index with 32-bit sizes)")
                checked.append(dtype.type(a))
        if 0 in grid:
            return
        self._launch(grid, block, checked)


class _Runtime:
    """What CudaBackend needs from a runtime: ``xp``, ``kernel(module, name)``, ``pointer(array)``,
    ``max_blocks`` (grid size for grid-stride kernels) and ``target_blocks`` (blocks that fill the
    device: below that, GEMMs with a long K are split)."""

    name = "?"
    xp = np
    max_blocks = 8
    target_blocks = 4

    def __init__(self):
        self._kernels = {}
        self._lock = threading.Lock()

    def kernel(self, module: str, name: str) -> _Kernel:
        key = (module, name)
        if key not in self._kernels:
            with self._lock:
                if key not in self._kernels:
                    self._kernels[key] = self._load(module, name)
        return self._kernels[key]

    def _load(self, module, name):  # pragma: no cover - abstract
        raise NotImplementedError

    def synchronize(self):
        pass


def nvrtc_options() -> tuple[str, ...]:
    """Options for cupy.RawModule (CuPy adds -arch=sm_XX of the device and -ftz=true: float32
    subnormals flush to zero on the GPU)."""
    return ("--std=c++17", "-lineinfo") + tuple(os.environ.get("TINYGRAD_COURSE_NVRTC_OPTIONS", "").split())


class CupyRuntime(_Runtime):
    """Kernels compiled by NVRTC through ``cupy.RawModule``, arrays are CuPy arrays."""

    name = "cuda"

    def __init__(self, cupy):
        super().__init__()
        self.xp = cupy
        self._modules = {}
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        self.device_name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        sms = int(props["multiProcessorCount"])
        self.max_blocks = 16 * sms
        self.target_blocks = 2 * sms
        self.sync_each = os.environ.get("TINYGRAD_COURSE_CUDA_SYNC", "") not in ("", "0")
        self.options = nvrtc_options()

    def pointer(self, a) -> int:
        return int(a.data.ptr)

    def _load(self, module, name):
        if module not in self._modules:
            source = kernel_source(module)
            try:
                raw = self.xp.RawModule(code=source, options=self.options)
            except Exception as e:  # CompileException carries NVRTC's log
                raise RuntimeError(f"compiling kernels/{module}.cu with NVRTC failed: {e}") from e
            self._modules[module] = (raw, kernel_signatures(source))
        raw, sigs = self._modules[module]
        if name not in sigs:
            raise KeyError(f"kernels/{module}.cu has no kernel {name!r}")
        try:
            fn = raw.get_function(name)
        except Exception as e:
            raise RuntimeError(f"loading kernel {name} of kernels/{module}.cu failed: {e}") from e
        cupy = self.xp

        def launch(grid, block, args):
            fn(grid, block, tuple(args))
            if self.sync_each:
                try:
                    cupy.cuda.get_current_stream().synchronize()
                except Exception as e:
                    raise RuntimeError(f"kernel {name} (kernels/{module}.cu) failed: {e}") from e

        return _Kernel(self, name, sigs[name], launch)

    def synchronize(self):
        self.xp.cuda.get_current_stream().synchronize()


# a __shared__ array declaration on a line of its own (the kernels' rule), for emulation.h's poisoning
_SHARED_DECL = re.compile(r"^(\s*__shared__[^;\n]*?\b(\w+)\s*(?:\[[^\]\n]*\])+\s*;)", re.M)
_CTYPES = {"i": ctypes.c_int32, "q": ctypes.c_int64, "f": ctypes.c_float, "d": ctypes.c_double}


def _cache_root() -> Path:
    if os.environ.get("TINYGRAD_COURSE_CACHE_DIR"):
        return Path(os.environ["TINYGRAD_COURSE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tinygrad_course"


class EmulatedRuntime(_Runtime):
    """The kernels compiled as C++ for the CPU (see kernels/emulation.h); arrays are NumPy arrays.

    One launch at a time (the emulated shared memory and fibers are process-wide)."""

    name = "cuda-emulated"
    xp = np
    max_blocks = 8      # grid of the grid-stride kernels: a few blocks keep the emulation quick
    target_blocks = 4
    # no _FORTIFY_SOURCE: its longjmp check rejects the jumps between fiber stacks
    CXXFLAGS = ("-std=c++17", "-O1", "-fPIC", "-shared", "-fno-strict-aliasing", "-U_FORTIFY_SOURCE")

    def __init__(self, cxx: str | None = None, cache_dir: str | os.PathLike | None = None):
        super().__init__()
        # extra flags, e.g. "-fsanitize=address" (run Python with LD_PRELOAD=$(g++ -print-file-name=libasan.so))
        self.CXXFLAGS = self.CXXFLAGS + tuple(os.environ.get("TINYGRAD_COURSE_EMU_CXXFLAGS", "").split())
        self.cxx = cxx or os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
        if not self.cxx:
            raise RuntimeError("the emulated CUDA runtime needs a C++17 compiler (g++ or clang++; set CXX)")
        self.cache_dir = Path(cache_dir) if cache_dir else _cache_root() / "cuda-emulation"
        self._libraries = {}
        self._launch_lock = threading.Lock()

    def pointer(self, a) -> int:
        return int(a.ctypes.data)

    def _compiler_id(self) -> str:
        try:
            return subprocess.run([self.cxx, "--version"], capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            raise RuntimeError(f"the C++ compiler {self.cxx!r} does not run: {e}") from e

    def library(self, module: str):
        """(ctypes library, signatures) of one kernel module, compiled on first use (cached on disk)."""
        if module not in self._libraries:
            self._libraries[module] = self.compile(module, kernel_source(module))
        return self._libraries[module]

    def compile(self, unit: str, source: str):
        """Compile a kernel source (includes already inlined) for the CPU: (ctypes library, signatures).

        The library is cached in ``cache_dir`` under a hash of everything that goes into it, and
        written atomically, so concurrent processes can share the cache."""
        sigs = kernel_signatures(source)
        header = (kernels_dir() / "emulation.h").read_text()
        unit_text = ('#line 1 "emulation.h"\n' + header + "\n" + _SHARED_DECL.sub(r"\1 TGC_EMU_SHARED(\2)", source)
                     + "\n" + "".join(f"TGC_EMU_EXPORT({name})\n" for name in sigs))
        key = hashlib.sha256("\0".join([unit_text, " ".join(self.CXXFLAGS), self._compiler_id()]).encode()).hexdigest()[:20]
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            folder = self.cache_dir
        except OSError:
            folder = Path(tempfile.gettempdir()) / f"tinygrad_course-{os.getuid()}" / "cuda-emulation"
            folder.mkdir(parents=True, exist_ok=True)
        lib_path = folder / f"{unit}-{key}.so"
        if not lib_path.exists():
            tag = f"{os.getpid()}-{threading.get_ident()}"
            src_path, tmp_path = folder / f"{unit}-{key}.cpp", folder / f"{unit}-{key}.{tag}.tmp"
            src_tmp = folder / f"{unit}-{key}.{tag}.cpp"
            src_tmp.write_text(unit_text)
            os.replace(src_tmp, src_path)
            cmd = [self.cxx, *self.CXXFLAGS, "-o", str(tmp_path), str(src_path)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                tmp_path.unlink(missing_ok=True)
                raise RuntimeError(f"compiling {unit} for the CPU emulation failed:\n"
                                   f"{' '.join(cmd)}\n{proc.stderr[-6000:]}")
            os.replace(tmp_path, lib_path)  # atomic: other processes see the whole library or none
        lib = ctypes.CDLL(str(lib_path))
        lib.emu_last_error.restype = ctypes.c_char_p
        for name, codes in sigs.items():
            getattr(lib, f"emu_signature_{name}").restype = ctypes.c_char_p
            compiled = getattr(lib, f"emu_signature_{name}")().decode()
            if compiled != codes:
                raise RuntimeError(f"kernel {name}: parameter types parsed from the source ({codes}) differ "
                                   f"from the compiled ones ({compiled})")
            fn = getattr(lib, f"emu_launch_{name}")
            fn.restype = ctypes.c_int
            fn.argtypes = [ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_void_p)]
        return lib, sigs

    def kernel_from_source(self, unit: str, source: str, name: str) -> _Kernel:
        """A kernel of an arbitrary source (tests of the emulation itself)."""
        return self._make_kernel(unit, *self.compile(unit, source), name)

    def _load(self, module, name):
        return self._make_kernel(f"kernels/{module}.cu", *self.library(module), name)

    def _make_kernel(self, unit, lib, sigs, name):
        if name not in sigs:
            raise KeyError(f"{unit} has no kernel {name!r}")
        fn = getattr(lib, f"emu_launch_{name}")
        codes = sigs[name]

        def launch(grid, block, args):
            values = [ctypes.c_void_p(a.ctypes.data) if c.isupper() else _CTYPES[c](a) for c, a in zip(codes, args)]
            argv = (ctypes.c_void_p * max(len(values), 1))(*[ctypes.addressof(v) for v in values])
            dims = (ctypes.c_uint * 6)(*grid, *block)
            with self._launch_lock:
                rc = fn(dims, argv)
                message = lib.emu_last_error().decode() if rc else ""
            if rc:
                raise RuntimeError(f"kernel {name} ({unit}, emulated): {message}")

        return _Kernel(self, name, codes, launch)


_runtime_lock = threading.Lock()
_cuda = {}  # "runtime" or "error"
_emulated = {}


def cuda_runtime() -> CupyRuntime:
    """The real CUDA runtime (created once per process). Raises CudaUnavailableError, saying why,
    when CuPy is not installed or no GPU/driver is usable."""
    with _runtime_lock:
        if "runtime" not in _cuda and "error" not in _cuda:
            try:
                _cuda["runtime"] = _make_cuda_runtime()
            except CudaUnavailableError as e:
                _cuda["error"] = str(e)
        if "error" in _cuda:
            raise CudaUnavailableError(_cuda["error"])
        return _cuda["runtime"]


def _make_cuda_runtime():
    try:
        import cupy
    except ImportError as e:
        raise CudaUnavailableError(
            'the "cuda" backend needs CuPy, which is not installed: pip install "tinygrad_course[cuda]" '
            f"(CuPy built for your CUDA version, e.g. cupy-cuda13x) ({e})") from e
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count > 0:
            cupy.cuda.Device(0).compute_capability  # noqa: B018 - touches the driver
    except Exception as e:  # CUDARuntimeError: no driver, no device, driver too old
        raise CudaUnavailableError(
            f"no usable CUDA GPU: the CUDA driver says: {e}. The \"cuda\" backend needs an NVIDIA GPU "
            "with a driver for CUDA 13 (check `nvidia-smi`); use the \"numpy\"/\"native\" backends instead") from e
    if count == 0:
        raise CudaUnavailableError('no CUDA GPU found (cudaGetDeviceCount() == 0); the "cuda" backend needs one')
    return CupyRuntime(cupy)


def cuda_available() -> bool:
    """True when cuda_runtime() works here."""
    try:
        cuda_runtime()
        return True
    except CudaUnavailableError:
        return False


def emulated_runtime() -> EmulatedRuntime:
    """The CPU emulation of the kernels (one per process)."""
    with _runtime_lock:
        if "runtime" not in _emulated:
            _emulated["runtime"] = EmulatedRuntime()
        return _emulated["runtime"]


# --- the backend -------------------------------------------------------------------------------
_ALONG_X, _VEC = 1, 2  # loader modes of kernels/gemm_core.cuh
_TILE = 128


def _cdiv(a, b):
    return -(-a // b)


def _pow2_threads(n, lo=32, hi=256):
    """Power-of-two block size for one-block-per-row kernels: enough threads for n values."""
    t = lo
    while t < min(n, hi):
        t *= 2
    return t


class CudaBackend(NumpyBackend):
    """Every primitive of NumpyBackend on our CUDA kernels; arrays are ``runtime.xp`` arrays.

    runtime: ``cuda_runtime()`` (the default) or ``emulated_runtime()``.
    poison: allocate outputs and workspaces filled with NaN (int: a huge negative), so an element a
    kernel forgets to write shows up in tests.
    """

    name = "cuda"

    def __init__(self, runtime=None, *, poison: bool = False):
        self.rt = runtime if runtime is not None else cuda_runtime()
        self.xp = self.rt.xp
        self.name = self.rt.name
        self.poison = poison
        self.split_k_min = 512  # K (per split) below which a GEMM is not split

    # --- helpers ------------------------------------------------------------------------------
    def _launch(self, module, name, grid, block, *args):
        self.rt.kernel(module, name)(grid, block, *args)

    def _array(self, what, a):
        xp = self.xp
        if isinstance(a, xp.ndarray):
            return a
        if xp is not np and isinstance(a, (np.ndarray, np.generic)):
            raise TypeError(f"{what}: got a NumPy array; the {self.name!r} backend works on {xp.__name__} "
                            f"arrays (move it with {xp.__name__}.asarray, or wrap the backend in HostArrays)")
        return xp.asarray(a)

    def _floats(self, what, *arrays):
        """The arrays as xp arrays (None stays None) of one float dtype, and that dtype's kernel suffix."""
        out = [None if a is None else self._array(what, a) for a in arrays]
        dtypes = {a.dtype for a in out if a is not None}
        bad = [d for d in dtypes if d not in _FLOATS]
        if bad:
            raise TypeError(f"{what}: the {self.name!r} backend supports float32 and float64 only, got {bad[0]}")
        if len(dtypes) > 1:
            raise TypeError(f"{what}: operands must share one dtype, got {sorted(str(d) for d in dtypes)}")
        return out, (_FLOATS[dtypes.pop()] if dtypes else "f32")

    def _indices(self, what, a, shape):
        a = self._array(what, a)
        if a.dtype.kind not in "iu":
            raise TypeError(f"{what}: indices must be integers, got {a.dtype}")
        if tuple(a.shape) != tuple(shape):
            raise ValueError(f"{what}: indices of shape {tuple(a.shape)}, expected {tuple(shape)}")
        return self.xp.ascontiguousarray(a, dtype=np.int64)

    def _contig(self, a):
        return None if a is None else self.xp.ascontiguousarray(a)

    def _empty(self, shape, dtype):
        dtype = np.dtype(dtype)
        if self.poison:
            return self.xp.full(shape, np.nan if dtype.kind == "f" else np.iinfo(dtype).min // 2, dtype=dtype)
        return self.xp.empty(shape, dtype=dtype)

    def _aligned(self, a) -> bool:
        return self.rt.pointer(a) % 16 == 0

    def _grid(self, n, block=256):
        return (max(1, min(_cdiv(n, block), self.rt.max_blocks)), 1, 1)

    def _rows_grid(self, rows):
        return (max(1, min(rows, 65535, 4 * self.rt.max_blocks)), 1, 1)

    @staticmethod
    def _check_int32(what, **sizes):
        for k, v in sizes.items():
            if v > _INT32_MAX:
                raise ValueError(f"{what}: {k} = {v} is too large for the kernels' 32-bit index math")

    def _splits(self, tiles, k):
        """How many K-chunks a GEMM with `tiles` output tiles and reduction length k is cut into."""
        if k < 2 * self.split_k_min or tiles >= self.rt.target_blocks:
            return 1
        return max(1, min(_cdiv(self.rt.target_blocks, tiles), k // self.split_k_min, 64))

    # --- matmul -------------------------------------------------------------------------------
    def _gemm_operand(self, x, batch):
        """(array, batch stride, row stride, column stride) in elements, with the batch dims of x
        broadcast to `batch` and folded into one stride; copies only when they cannot be folded."""
        xp = self.xp
        view = xp.broadcast_to(x, tuple(batch) + tuple(x.shape[-2:]))
        for attempt in range(2):
            item = view.itemsize
            if all(s % item == 0 for s in view.strides):
                st = [s // item if n != 1 else 0 for s, n in zip(view.strides, view.shape)]
                dims = [(n, s) for n, s in zip(view.shape[:-2], st[:-2]) if n != 1]
                if all(s == s2 * n2 for (_, s), (n2, s2) in zip(dims, dims[1:])):
                    return view, (dims[-1][1] if dims else 0), st[-2], st[-1]
            view = xp.ascontiguousarray(view)
        raise AssertionError("unreachable: a contiguous array always folds")  # pragma: no cover

    def _mode(self, array, bstride, sk, sx):
        aligned = self._aligned(array) and bstride % 4 == 0
        if sx == 1 and sk % 4 == 0 and aligned:
            return _ALONG_X | _VEC
        if sk == 1 and sx % 4 == 0 and aligned:
            return _VEC
        return _ALONG_X if sx == 1 else 0

    def matmul(self, a, b):
        """np.matmul for float32/float64 operands (1-D operands as np.matmul treats them)."""
        (a, b), sfx = self._floats("matmul", a, b)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: operands must have at least one dimension, got shapes {a.shape} and {b.shape}")
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        m, k = a2.shape[-2:]
        k2, n = b2.shape[-2:]
        if k != k2:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned: {k} (dim -1 of the first) "
                             f"!= {k2} (dim -2 of the second)")
        try:
            batch = tuple(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]))
        except ValueError:
            raise ValueError(f"matmul: the batch dimensions of {a.shape} and {b.shape} do not broadcast") from None
        nb = math.prod(batch)
        self._check_int32("matmul", m=m, n=n, k=k, batch=nb)
        out = self._empty((nb, m, n), a.dtype)
        A, a_b, a_m, a_k = self._gemm_operand(a2, batch)
        B, b_b, b_k, b_n = self._gemm_operand(b2, batch)
        tiles = _cdiv(m, _TILE) * _cdiv(n, _TILE) * nb
        splits = self._splits(tiles, k)
        k_chunk = max(8, _cdiv(_cdiv(k, splits), 8) * 8) if k else 8
        nsplit = _cdiv(k, k_chunk) if k else 1
        dest = out if nsplit == 1 else self._empty((nsplit, nb, m, n), a.dtype)
        self._launch("gemm", f"gemm_{sfx}", (_cdiv(n, _TILE), _cdiv(m, _TILE), min(nb * nsplit, 65535)), (256, 1, 1),
                     A, B, dest, m, n, k, nb, a_b, a_m, a_k, self._mode(A, a_b, a_k, a_m),
                     b_b, b_k, b_n, self._mode(B, b_b, b_k, b_n), k_chunk,
                     int(n % 4 == 0 and self._aligned(dest)))
        if nsplit > 1:
            self._launch("gemm", f"sum_splits_{sfx}", self._grid(out.size), (256, 1, 1), dest, out, out.size, nsplit)
        out = out.reshape(batch + (m, n))
        if a.ndim == 1:
            out = out[..., 0, :]
        if b.ndim == 1:
            out = out[..., 0]
        return out

    # --- ReLU -----------------------------------------------------------------------------------
    def relu(self, x):
        (x,), sfx = self._floats("relu", x)
        xc = self._contig(x)
        y = self._empty(x.shape, x.dtype)
        self._launch("elementwise", f"relu_{sfx}", self._grid(x.size), (256, 1, 1), xc, y, x.size)
        return y

    def relu_grad(self, g, x):
        (g, x), sfx = self._floats("relu_grad", g, x)
        if g.shape != x.shape:
            g, x = self.xp.broadcast_arrays(g, x)
        g, x = self._contig(g), self._contig(x)
        gx = self._empty(x.shape, x.dtype)
        self._launch("elementwise", f"relu_grad_{sfx}", self._grid(x.size), (256, 1, 1), g, x, gx, x.size)
        return gx

    # --- conv2d ---------------------------------------------------------------------------------
    def _conv_geometry(self, what, x_shape, w_shape, stride, padding, dilation, groups):
        if len(x_shape) != 4 or len(w_shape) != 4:
            raise ValueError(f"{what}: input {tuple(x_shape)} and weight {tuple(w_shape)} must both be 4-D (NCHW, FCKK)")
        n, c, h, w = (int(s) for s in x_shape)
        f, cg, kh, kw = (int(s) for s in w_shape)
        groups = int(groups)
        if groups < 1 or c != cg * groups or f % groups:
            raise ValueError(f"{what}: input {tuple(x_shape)} and weight {tuple(w_shape)} do not fit groups={groups} "
                             f"(need C = weight.shape[1] * groups and F divisible by groups)")
        (sh, sw), (ph, pw), (dh, dw) = (tuple(int(v) for v in p) for p in (stride, padding, dilation))
        oh, ow = conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw)
        if oh < 1 or ow < 1:
            raise ValueError(f"{what}: input {tuple(x_shape)} is too small for kernel {(kh, kw)} with "
                             f"padding {(ph, pw)} and dilation {(dh, dw)}")
        self._check_int32(what, batch_pixels=n * max(h * w, oh * ow), filter_taps=f * cg * kh * kw)
        return (n, c, h, w, f, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, groups)

    def conv2d(self, x, w, b, stride, padding, dilation, groups):
        (x, w, b), sfx = self._floats("conv2d", x, w, b)
        geo = self._conv_geometry("conv2d", x.shape, w.shape, stride, padding, dilation, groups)
        n, c, h, wd, f, kh, kw, oh, ow, *_ = geo
        if b is not None and b.shape != (f,):
            raise ValueError(f"conv2d: bias of shape {b.shape}, expected ({f},)")
        x, w, b = self._contig(x), self._contig(w), self._contig(b)
        y = self._empty((n, f, oh, ow), x.dtype)
        q = w.shape[1] * kh * kw
        self._launch("conv2d", f"conv2d_fwd_{sfx}", (_cdiv(n * oh * ow, _TILE), _cdiv(f // groups, _TILE),
                                                     min(groups, 65535)), (256, 1, 1),
                     x, w, w if b is None else b, int(b is not None), y, *geo, int(q % 4 == 0 and self._aligned(w)))
        return y

    def conv2d_grad_input(self, gy, w, x_shape, stride, padding, dilation, groups):
        (gy, w), sfx = self._floats("conv2d_grad_input", gy, w)
        geo = self._conv_geometry("conv2d_grad_input", x_shape, w.shape, stride, padding, dilation, groups)
        n, c, h, wd, f, kh, kw, oh, ow, *_ = geo
        if gy.shape != (n, f, oh, ow):
            raise ValueError(f"conv2d_grad_input: grad_output of shape {gy.shape}, expected {(n, f, oh, ow)} "
                             f"for input {tuple(x_shape)} and weight {w.shape}")
        g, cg, fg = groups, c // groups, f // groups
        gy = self._contig(gy)
        wt = self.xp.ascontiguousarray(w.reshape(g, fg, cg, kh, kw).transpose(0, 2, 1, 3, 4))  # (G, Cg, Fg, KH, KW)
        gx = self._empty((n, c, h, wd), gy.dtype)
        self._launch("conv2d", f"conv2d_dgrad_{sfx}", (_cdiv(n * h * wd, _TILE), _cdiv(cg, _TILE), min(g, 65535)),
                     (256, 1, 1), gy, wt, gx, *geo, int(fg * kh * kw % 4 == 0 and self._aligned(wt)))
        return gx

    def conv2d_grad_weight(self, gy, x, w_shape, stride, padding, dilation, groups):
        (gy, x), sfx = self._floats("conv2d_grad_weight", gy, x)
        geo = self._conv_geometry("conv2d_grad_weight", x.shape, w_shape, stride, padding, dilation, groups)
        n, c, h, wd, f, kh, kw, oh, ow, *_ = geo
        if gy.shape != (n, f, oh, ow):
            raise ValueError(f"conv2d_grad_weight: grad_output of shape {gy.shape}, expected {(n, f, oh, ow)} "
                             f"for input {x.shape} and weight {tuple(w_shape)}")
        gy, x = self._contig(gy), self._contig(x)
        fg, q, p = f // groups, (c // groups) * kh * kw, n * oh * ow
        tiles = _cdiv(fg, _TILE) * _cdiv(q, _TILE) * groups
        splits = self._splits(tiles, p)
        k_chunk = max(8, _cdiv(_cdiv(p, splits), 8) * 8)
        nsplit = _cdiv(p, k_chunk)
        gw = self._empty(tuple(int(s) for s in w_shape), x.dtype)
        dest = gw if nsplit == 1 else self._empty((nsplit, f, q), x.dtype)
        self._launch("conv2d", f"conv2d_wgrad_{sfx}", (_cdiv(q, _TILE), _cdiv(fg, _TILE), min(groups * nsplit, 65535)),
                     (256, 1, 1), gy, x, dest, *geo, k_chunk, int(q % 4 == 0 and self._aligned(dest)))
        if nsplit > 1:
            self._launch("conv2d", f"sum_splits_{sfx}", self._grid(gw.size), (256, 1, 1), dest, gw, gw.size, nsplit)
        return gw

    # --- pooling --------------------------------------------------------------------------------
    def _pool_geometry(self, what, x_shape, kernel, stride, padding):
        if len(x_shape) != 4:
            raise ValueError(f"{what}: input must be 4-D (N, C, H, W), got shape {tuple(x_shape)}")
        n, c, h, w = (int(s) for s in x_shape)
        (kh, kw), (sh, sw), (ph, pw) = (tuple(int(v) for v in p) for p in (kernel, stride, padding))
        oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
        if oh < 1 or ow < 1:
            raise ValueError(f"{what}: input {tuple(x_shape)} is too small for kernel {(kh, kw)} with padding {(ph, pw)}")
        self._check_int32(what, elements=n * c * max(h * w, oh * ow))
        return n, c, h, w, oh, ow, (kh, kw, sh, sw, ph, pw)

    def max_pool2d(self, x, kernel, stride, padding):
        """(y, argmax) with argmax the flat h*W+w input index (int64) of each window's maximum."""
        (x,), sfx = self._floats("max_pool2d", x)
        n, c, h, w, oh, ow, win = self._pool_geometry("max_pool2d", x.shape, kernel, stride, padding)
        x = self._contig(x)
        y = self._empty((n, c, oh, ow), x.dtype)
        argmax = self._empty((n, c, oh, ow), np.int64)
        self._launch("pool", f"maxpool_fwd_{sfx}", self._grid(y.size), (256, 1, 1), x, y, argmax,
                     n * c, h, w, oh, ow, *win)
        return y, argmax

    def max_pool2d_grad(self, gy, argmax, x_shape):
        (gy,), sfx = self._floats("max_pool2d_grad", gy)
        if gy.ndim != 4 or len(x_shape) != 4 or tuple(gy.shape[:2]) != tuple(x_shape[:2]):
            raise ValueError(f"max_pool2d_grad: grad_output {gy.shape} does not fit input shape {tuple(x_shape)}")
        argmax = self._indices("max_pool2d_grad", argmax, gy.shape)
        n, c, h, w = (int(s) for s in x_shape)
        oh, ow = gy.shape[2:]
        gy = self._contig(gy)
        gx = self._empty((n, c, h, w), gy.dtype)
        if gy.size == 0:
            gx[...] = 0
            return gx
        bounds = self._empty((2 * (oh + ow),), np.int32)
        ranges = self._empty((2 * (h + w),), np.int32)
        self._launch("pool", "maxpool_bwd_bounds", self._rows_grid(oh + ow), (256, 1, 1),
                     argmax, bounds, n * c, h, w, oh, ow)
        self._launch("pool", "maxpool_bwd_ranges", self._grid(h + w), (256, 1, 1), bounds, ranges, h, w, oh, ow)
        self._launch("pool", f"maxpool_bwd_{sfx}", self._grid(gx.size), (256, 1, 1),
                     gy, argmax, ranges, gx, n * c, h, w, oh, ow)
        return gx

    def avg_pool2d(self, x, kernel, stride, padding, count_include_pad=True):
        (x,), sfx = self._floats("avg_pool2d", x)
        n, c, h, w, oh, ow, win = self._pool_geometry("avg_pool2d", x.shape, kernel, stride, padding)
        x = self._contig(x)
        y = self._empty((n, c, oh, ow), x.dtype)
        self._launch("pool", f"avgpool_fwd_{sfx}", self._grid(y.size), (256, 1, 1), x, y,
                     n * c, h, w, oh, ow, *win, int(bool(count_include_pad)))
        return y

    def avg_pool2d_grad(self, gy, x_shape, kernel, stride, padding, count_include_pad=True):
        (gy,), sfx = self._floats("avg_pool2d_grad", gy)
        n, c, h, w, oh, ow, win = self._pool_geometry("avg_pool2d_grad", x_shape, kernel, stride, padding)
        if gy.shape != (n, c, oh, ow):
            raise ValueError(f"avg_pool2d_grad: grad_output of shape {gy.shape}, expected {(n, c, oh, ow)}")
        gy = self._contig(gy)
        gx = self._empty((n, c, h, w), gy.dtype)
        self._launch("pool", f"avgpool_bwd_{sfx}", self._grid(gx.size), (256, 1, 1), gy, gx,
                     n * c, h, w, oh, ow, *win, int(bool(count_include_pad)))
        return gx

    # --- batch norm -----------------------------------------------------------------------------
    def _bn_dims(self, what, x, *per_channel):
        if x.ndim < 2:
            raise ValueError(f"{what}: input must be (N, C) or (N, C, ...), got shape {x.shape}")
        n, c = x.shape[:2]
        s = math.prod(x.shape[2:])
        for a in per_channel:
            if a is not None and a.shape != (c,):
                raise ValueError(f"{what}: per-channel parameter of shape {a.shape}, expected ({c},) for input {x.shape}")
        self._check_int32(what, elements=x.size)
        return n, c, s

    def batch_norm_train(self, x, gamma, beta, eps):
        """(y, mean, biased var) with the batch's statistics per channel (axis 1)."""
        (x, gamma, beta), sfx = self._floats("batch_norm_train", x, gamma, beta)
        n, c, s = self._bn_dims("batch_norm_train", x, gamma, beta)
        x, gamma, beta = self._contig(x), self._contig(gamma), self._contig(beta)
        mean, var = self._empty((c,), x.dtype), self._empty((c,), x.dtype)
        params = self._empty((3 * c,), np.float64)
        self._launch("norm", f"bn_stats_{sfx}", self._rows_grid(c), (256, 1, 1), x,
                     x if gamma is None else gamma, x if beta is None else beta, int(gamma is not None),
                     int(beta is not None), mean, var, params, n, c, s, float(eps))
        y = self._empty(x.shape, x.dtype)
        self._launch("norm", f"bn_apply_{sfx}", self._grid(x.size), (256, 1, 1), x, params, y, x.size, c, s)
        return y, mean, var

    def batch_norm_eval(self, x, mean, var, gamma, beta, eps):
        (x, mean, var, gamma, beta), sfx = self._floats("batch_norm_eval", x, mean, var, gamma, beta)
        n, c, s = self._bn_dims("batch_norm_eval", x, mean, var, gamma, beta)
        x, mean, var, gamma, beta = (self._contig(a) for a in (x, mean, var, gamma, beta))
        params = self._empty((3 * c,), np.float64)
        self._launch("norm", f"bn_params_{sfx}", self._grid(c), (256, 1, 1), mean, var, x if gamma is None else gamma,
                     x if beta is None else beta, int(gamma is not None), int(beta is not None), params, c, float(eps))
        y = self._empty(x.shape, x.dtype)
        self._launch("norm", f"bn_apply_{sfx}", self._grid(x.size), (256, 1, 1), x, params, y, x.size, c, s)
        return y

    def batch_norm_grad(self, gy, x, mean, invstd, gamma, training):
        """(grad_input, grad_gamma, grad_beta); training: mean/invstd are the batch's (depend on x)."""
        (gy, x, mean, invstd, gamma), sfx = self._floats("batch_norm_grad", gy, x, mean, invstd, gamma)
        if gy.shape != x.shape:
            raise ValueError(f"batch_norm_grad: grad_output {gy.shape} and input {x.shape} differ")
        n, c, s = self._bn_dims("batch_norm_grad", x, mean, invstd, gamma)
        gy, x, mean, invstd, gamma = (self._contig(a) for a in (gy, x, mean, invstd, gamma))
        ggamma, gbeta = self._empty((c,), x.dtype), self._empty((c,), x.dtype)
        params = self._empty((3 * c,), np.float64)
        self._launch("norm", f"bn_grad_reduce_{sfx}", self._rows_grid(c), (256, 1, 1), gy, x, mean, invstd,
                     x if gamma is None else gamma, int(gamma is not None), ggamma, gbeta, params, n, c, s,
                     int(bool(training)))
        gx = self._empty(x.shape, x.dtype)
        self._launch("norm", f"bn_grad_input_{sfx}", self._grid(x.size), (256, 1, 1), gy, x, mean, invstd, params,
                     gx, x.size, c, s)
        return gx, ggamma, gbeta

    # --- layer norm -----------------------------------------------------------------------------
    def _ln_dims(self, what, x, ndim, *params):
        ndim = int(ndim)
        if not 0 <= ndim <= x.ndim:
            raise ValueError(f"{what}: cannot normalise the last {ndim} axes of an input of shape {x.shape}")
        norm = tuple(x.shape[x.ndim - ndim:])
        for a in params:
            if a is not None and tuple(a.shape) != norm:
                raise ValueError(f"{what}: weight/bias of shape {a.shape}, expected {norm} for input {x.shape}")
        r, d = math.prod(x.shape[:x.ndim - ndim]), math.prod(norm)
        self._check_int32(what, rows=r, normalized_size=d)
        return ndim, r, d

    def layer_norm(self, x, ndim, gamma, beta, eps):
        """(y, mean, invstd) over the last `ndim` axes; mean/invstd keep dims (they broadcast against x)."""
        (x, gamma, beta), sfx = self._floats("layer_norm", x, gamma, beta)
        ndim, r, d = self._ln_dims("layer_norm", x, ndim, gamma, beta)
        x, gamma, beta = self._contig(x), self._contig(gamma), self._contig(beta)
        y = self._empty(x.shape, x.dtype)
        mean, invstd = self._empty((r,), x.dtype), self._empty((r,), x.dtype)
        self._launch("norm", f"ln_fwd_{sfx}", self._rows_grid(r), (_pow2_threads(d), 1, 1), x,
                     x if gamma is None else gamma, x if beta is None else beta, int(gamma is not None),
                     int(beta is not None), y, mean, invstd, r, d, float(eps))
        stat_shape = tuple(x.shape[:x.ndim - ndim]) + (1,) * ndim
        return y, mean.reshape(stat_shape), invstd.reshape(stat_shape)

    def layer_norm_grad(self, gy, x, mean, invstd, gamma, ndim):
        (gy, x, mean, invstd, gamma), sfx = self._floats("layer_norm_grad", gy, x, mean, invstd, gamma)
        if gy.shape != x.shape:
            raise ValueError(f"layer_norm_grad: grad_output {gy.shape} and input {x.shape} differ")
        ndim, r, d = self._ln_dims("layer_norm_grad", x, ndim, gamma)
        if mean.size != r or invstd.size != r:
            raise ValueError(f"layer_norm_grad: mean {mean.shape} / invstd {invstd.shape} need {r} values "
                             f"(one per row of input {x.shape})")
        gy, x, gamma = self._contig(gy), self._contig(x), self._contig(gamma)
        mean, invstd = self._contig(mean).reshape(r), self._contig(invstd).reshape(r)
        gx = self._empty(x.shape, x.dtype)
        norm = tuple(x.shape[x.ndim - ndim:])
        ggamma, gbeta = self._empty(norm, x.dtype), self._empty(norm, x.dtype)
        self._launch("norm", f"ln_grad_rows_{sfx}", self._rows_grid(r), (_pow2_threads(d), 1, 1), gy, x, mean, invstd,
                     x if gamma is None else gamma, int(gamma is not None), gx, r, d)
        self._launch("norm", f"ln_grad_cols_{sfx}", (max(1, min(_cdiv(d, 32), self.rt.max_blocks)), 1, 1), (32, 8, 1),
                     gy, x, mean, invstd, ggamma, gbeta, r, d)
        return gx, ggamma, gbeta

    # --- fused softmax cross-entropy -----------------------------------------------------------
    def cross_entropy(self, logits, target, label_smoothing):
        """(per-sample loss, softmax probabilities) for logits (N, C) and int class indices (N,)."""
        (logits,), sfx = self._floats("cross_entropy", logits)
        if logits.ndim != 2:
            raise ValueError(f"cross_entropy: logits must be (N, C), got shape {logits.shape}")
        n, c = logits.shape
        target = self._indices("cross_entropy", target, (n,))
        self._check_int32("cross_entropy", elements=n * c)
        logits = self._contig(logits)
        loss, probs = self._empty((n,), logits.dtype), self._empty((n, c), logits.dtype)
        self._launch("softmax", f"ce_fwd_{sfx}", self._rows_grid(n), (_pow2_threads(c), 1, 1), logits, target,
                     loss, probs, n, c, float(label_smoothing))
        return loss, probs

    def cross_entropy_grad(self, g, probs, target, label_smoothing):
        (g, probs), sfx = self._floats("cross_entropy_grad", g, probs)
        if probs.ndim != 2 or g.shape != probs.shape[:1]:
            raise ValueError(f"cross_entropy_grad: grad {g.shape} and probabilities {probs.shape} "
                             "must be (N,) and (N, C)")
        n, c = probs.shape
        target = self._indices("cross_entropy_grad", target, (n,))
        self._check_int32("cross_entropy_grad", elements=n * c)
        g, probs = self._contig(g), self._contig(probs)
        gx = self._empty((n, c), probs.dtype)
        self._launch("softmax", f"ce_bwd_{sfx}", self._grid(gx.size), (256, 1, 1), g, probs, target, gx, n, c,
                     float(label_smoothing))
        return gx


class HostArrays:
    """A backend that takes and returns NumPy arrays around one that works on ``backend.xp`` arrays:
    NumPy array arguments are copied in with ``xp.asarray``, array results out with ``xp.asnumpy``
    (a no-op pair for the emulated runtime). For tests and for comparing with NumPy backends."""

    def __init__(self, backend):
        self.backend = backend
        self.name = f"{backend.name}-host"
        self.xp = backend.xp

    def _in(self, a):
        return self.xp.asarray(a) if isinstance(a, np.ndarray) else a

    def _out(self, a):
        if isinstance(a, tuple):
            return tuple(self._out(v) for v in a)
        if self.xp is not np and isinstance(a, self.xp.ndarray):
            return self.xp.asnumpy(a)
        return a

    def __getattr__(self, name):
        attr = getattr(self.backend, name)
        if name.startswith("_") or not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args, **kwargs):
            return self._out(attr(*(self._in(a) for a in args), **{k: self._in(v) for k, v in kwargs.items()}))

        return call

    def __repr__(self):
        return f"HostArrays({self.backend!r})"
