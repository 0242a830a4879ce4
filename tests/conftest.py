"""Shared pytest configuration: hypothesis profiles, the `backend` fixture, per-test seeding.

Hypothesis profiles (choose with the environment variable TINYGRAD_COURSE_HYPOTHESIS_PROFILE):

* ``ci`` (default): derandomised, so a red run reproduces exactly; few examples per test so the
  whole suite stays quick on a small machine.
* ``thorough``: many random examples, for hunting bugs locally (``TINYGRAD_COURSE_HYPOTHESIS_PROFILE=
  thorough pytest tests/test_gradcheck_ops.py``). Failures print a reproduction blob.

Tests that set ``@settings(max_examples=...)`` themselves keep the other settings of the active profile.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Numba's CUDA kernels run under its CUDA simulator when this machine has no NVIDIA GPU (as in CI);
# numba reads the variable when numba.cuda is first imported, which is after this file runs.
if not (shutil.which("nvidia-smi") or any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0"))):
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import tinygrad_course as tg  # noqa: E402

# function_scoped_fixture: the `backend` and seeding fixtures below are deliberately per test, not
# per example (the backend is constant within a test; examples draw their own data from hypothesis).
_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=20, print_blob=True,
    suppress_health_check=_SUPPRESSED, database=None)
settings.register_profile(
    "thorough", derandomize=False, deadline=None, max_examples=250, print_blob=True,
    suppress_health_check=_SUPPRESSED)
settings.load_profile(os.environ.get("TINYGRAD_COURSE_HYPOTHESIS_PROFILE", "ci"))

# the module (the package attribute `tensor` is the creation function)
_tensor_module = importlib.import_module("tinygrad_course.tensor")

BACKENDS = tg.available_backends()


def _native_isas() -> list[str]:
    """The instruction sets the native kernels can run with here, best first (tinygrad_course._C.isas()):
    every one this build has and this CPU supports, or only the forced one under TINYGRAD_COURSE_ISA."""
    if "native" not in BACKENDS:
        return []
    from tinygrad_course import _C
    if os.environ.get("TINYGRAD_COURSE_ISA"):
        return [_C.isa()]
    available = [name for name, e in _C.isas().items() if e["available"]]
    return sorted(available, key=lambda name: name != _C.best_isa())


NATIVE_ISAS = _native_isas()


@contextlib.contextmanager
def forced_isa(isa):
    """Run the native kernels with `isa` inside the block (None: leave them alone), then restore."""
    if isa is None:
        yield
        return
    from tinygrad_course import _C
    before = _C.isa()
    _C.set_isa(isa)
    try:
        yield
    finally:
        _C.set_isa(before)


@pytest.fixture(params=NATIVE_ISAS or [None], ids=lambda isa: isa or "no-native")
def native_isa(request):
    """Run the test once per ISA of the native kernels (see _native_isas), so that the AVX2 and baseline
    paths are tested on an AVX-512 machine too; yields the ISA name (None without the extension).
    Native kernel test modules use it for every test (pytestmark)."""
    with forced_isa(request.param):
        yield request.param


# (backend, ISA): "native" with its best ISA, then once more per lower ISA (id "native-avx2", ...).
_BACKEND_PARAMS = [(b, None) for b in BACKENDS] + [("native", isa) for isa in NATIVE_ISAS[1:]]


@pytest.fixture(params=_BACKEND_PARAMS, ids=lambda p: p[0] if p[1] is None else f"{p[0]}-{p[1]}")
def backend(request):
    """Run the test once per available CPU backend ("numpy", "native"), and the native one once per
    lower ISA its kernels can run with here (see native_isa); yields the backend name."""
    name, isa = request.param
    with forced_isa(isa), tg.use_backend(name):
        yield name


def make_cuda_backend(name):
    """CudaBackend taking and returning NumPy arrays: "cuda-emulated" (the CPU emulation of our CUDA
    kernels) or "cuda-host" (a real GPU behind HostArrays). Skips the test when the runtime is missing."""
    from tinygrad_course.backend import cuda
    try:
        if name == "cuda-emulated":
            return cuda.CudaBackend(cuda.emulated_runtime(), poison=True)
        return cuda.HostArrays(cuda.CudaBackend(cuda.cuda_runtime(), poison=True))
    except (cuda.CudaUnavailableError, RuntimeError) as e:
        pytest.skip(f"{name}: {e}")


CUDA_BACKEND_PARAMS = [pytest.param("cuda-emulated"), pytest.param("cuda-host", marks=pytest.mark.gpu)]


@pytest.fixture(params=CUDA_BACKEND_PARAMS, ids=str)
def cuda_backend(request, monkeypatch):
    """Like `backend`, with our CUDA kernels as the backend (on NumPy arrays); yields its name.

    The backend is registered for the test only, so that `tg.use_backend(name)` selects it."""
    from tinygrad_course import backend as registry
    be = make_cuda_backend(request.param)
    monkeypatch.setitem(registry._instances, be.name, be)
    with tg.use_backend(be.name):
        yield be.name


@pytest.fixture(autouse=True)
def _seed_and_restore_global_state():
    """Seed tinygrad_course's and NumPy's global generators; restore dtype/grad mode afterwards."""
    tg.manual_seed(0)
    np.random.seed(0)
    dtype, grad_mode = tg.get_default_dtype(), tg.is_grad_enabled()
    yield
    tg.set_default_dtype(dtype)
    if tg.is_grad_enabled() != grad_mode:  # a test leaked a switched grad mode: put it back
        _tensor_module._grad_mode.enabled = grad_mode


@pytest.fixture(scope="session")
def shared_datasets():
    """The offline copies of the course data sets (../shared/datasets next to the repository); skip if absent."""
    from pathlib import Path
    path = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
    if not path.is_dir():
        pytest.skip(f"offline data sets not found at {path}")
    return path


def _real_runtime_or_skip():
    from tinygrad_course.backend.cuda import CudaUnavailableError, cuda_runtime
    try:
        cuda_runtime()
    except CudaUnavailableError as e:
        pytest.skip(f"no usable GPU: {e}")


@pytest.fixture(params=["emulated", pytest.param("gpu", marks=pytest.mark.gpu)])
def cuda(request, monkeypatch):
    """The device name "cuda", backed by the CPU emulation of our kernels or by a real GPU (skipped
    without one): for tests of the "cuda" device's plumbing and of ops on it."""
    if request.param == "emulated":
        if shutil.which("g++") is None and shutil.which("c++") is None:
            pytest.skip("the CUDA emulation needs a host C++ compiler")
        monkeypatch.setenv("TINYGRAD_COURSE_CUDA_EMULATE", "1")
    else:
        monkeypatch.delenv("TINYGRAD_COURSE_CUDA_EMULATE", raising=False)
        _real_runtime_or_skip()
    return "cuda"
