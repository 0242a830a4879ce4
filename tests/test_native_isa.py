"""The run-time choice of the native kernels' instruction set (src/isa.h, src/dispatch.cpp) and the
build check that keeps the ISAs apart (cmake/check_isa_symbols.py).

The kernels themselves are tested under every ISA this machine runs by the native test modules
(conftest.py's native_isa fixture) and the backend-equivalence and gradcheck suites.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

C = pytest.importorskip("tinygrad_course._C")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AVAILABLE = [name for name, e in C.isas().items() if e["available"]]


def _python(code: str, **env) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "TINYGRAD_COURSE_ISA"}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120)


def test_the_active_isa_is_compiled_in_and_runs_here():
    isas = C.isas()
    assert C.isa() in AVAILABLE and C.best_isa() in AVAILABLE
    assert set(C.build_info()["isas_compiled"].split()) == set(isas)
    for name, e in isas.items():
        assert isinstance(e["available"], bool) and e["simd"], name
    if os.environ.get("TINYGRAD_COURSE_ISA") is None:
        assert C.isa() == C.best_isa()
    if "baseline" in isas:
        assert isas["baseline"]["available"]  # x86-64's SSE2, or the architecture's base


def test_every_isa_computes_the_same_products():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((37, 53)), rng.standard_normal((53, 29))
    x, w = rng.standard_normal((2, 3, 9, 11)), rng.standard_normal((4, 3, 3, 3))
    before = C.isa()
    try:
        for isa in AVAILABLE:
            C.set_isa(isa)
            # gemm_config's simd comes from the dispatched kernel's own build, not from the switch
            assert C.isa() == isa and C.gemm_config()["float64"]["simd"] == C.isas()[isa]["simd"]
            np.testing.assert_allclose(C.matmul(a, b), a @ b, rtol=1e-10, atol=1e-10)
            y = C.conv2d(x, w, None, (1, 1), (1, 1), (1, 1), 1)
            C.set_isa(AVAILABLE[-1])
            np.testing.assert_allclose(y, C.conv2d(x, w, None, (1, 1), (1, 1), (1, 1), 1, algorithm="gemm"),
                                       rtol=1e-10, atol=1e-10)
    finally:
        C.set_isa(before)


def test_set_isa_refuses_what_this_build_or_cpu_cannot_run():
    before = C.isa()
    with pytest.raises(ValueError, match=r"ISA 'sse9' is not compiled into this build \(it has: "):
        C.set_isa("sse9")
    unsupported = [name for name, e in C.isas().items() if not e["available"]]
    for name in unsupported:
        with pytest.raises(ValueError, match=f"ISA '{name}' is compiled in but this CPU does not support it"):
            C.set_isa(name)
    assert C.isa() == before


def test_the_environment_variable_forces_an_isa_or_stops_the_import():
    lowest = AVAILABLE[0] if "baseline" not in AVAILABLE else "baseline"
    ok = _python("import tinygrad_course._C as C; print(C.isa())", TINYGRAD_COURSE_ISA=lowest)
    assert ok.returncode == 0 and ok.stdout.strip() == lowest, ok.stderr
    bad = _python("import tinygrad_course", TINYGRAD_COURSE_ISA="avx9000")
    assert bad.returncode != 0
    assert "TINYGRAD_COURSE_ISA=avx9000: ISA 'avx9000' is not compiled into this build" in bad.stderr
    assert "unset it to use the best one" in bad.stderr


def test_info_names_the_isas():
    out = _python("from tinygrad_course.cli import main; main(['info'])")
    assert out.returncode == 0, out.stderr
    # (the child process names its own best ISA: under qemu-user it runs on the real CPU)
    line = next(l for l in out.stdout.splitlines() if l.startswith("native kernels: ISA "))
    assert line.split()[3] in C.isas()
    assert "compiled in: " + next(iter(C.isas())) in out.stdout and "TINYGRAD_COURSE_ISA=" in out.stdout


CHECK = os.path.join(ROOT, "cmake", "check_isa_symbols.py")
SAFE = "namespace tgc { namespace avx2 { inline int twice(int x) { return 2 * x; } int f(int x) { return twice(x); } } }\n"
# An inline function of a shared header, instantiated in an ISA's object: the hazard the check is for.
UNSAFE = "inline int shared_twice(int x) { return 2 * x; }\n" \
         "namespace tgc { namespace avx2 { int f(int x) { return shared_twice(x); } } }\n"


@pytest.mark.skipif(shutil.which("g++") is None or shutil.which("nm") is None, reason="needs g++ and nm")
@pytest.mark.parametrize("source,ok", [(SAFE, True), (UNSAFE, False)], ids=["own-namespace", "shared-inline"])
def test_the_build_check_finds_weak_symbols_outside_the_isa_namespace(tmp_path, source, ok):
    obj_dir = tmp_path / "CMakeFiles" / "tgc_kernels_avx2.dir" / "src"
    obj_dir.mkdir(parents=True)
    src, obj = tmp_path / "k.cpp", obj_dir / "k.cpp.o"
    src.write_text(source)
    subprocess.run(["g++", "-O0", "-c", str(src), "-o", str(obj)], check=True)  # -O0: nothing inlined
    out = subprocess.run([sys.executable, CHECK, "nm", str(obj)], capture_output=True, text=True)
    assert (out.returncode == 0) == ok, out.stderr
    if not ok:
        assert "shared_twice(int)" in out.stderr and "(avx2)" in out.stderr
