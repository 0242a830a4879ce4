"""What this machine can do: float32 FMA peak (GFLOP/s) and memory bandwidth (GB/s), and what it is.

The benchmarks' "% of peak" columns and the profiler's divide by these. `Probe` compiles `peak.c`
(next to this file) with the system C compiler (`$CC`, else `cc`; flags `-O2 -march=native -fopenmp`,
or restricted to one of our kernels' ISAs) into a temporary folder; `measure_peak` runs its FMA probe
(independent FMA chains on the widest vectors allowed, best of a short run), `measure_bandwidth` its
STREAM-like triad (3 arrays of 256 MiB; a NumPy copy without a compiler). Both return None for a probe
that cannot run, so the callers still work without a compiler ("% peak" then reads "-").

`peaks()` measures both once per machine (CPU, threads and kernel ISA) and caches them as JSON in the
cache folder (TINYGRAD_COURSE_CACHE_DIR, else ~/.cache/tinygrad_course), so later calls are instant.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
import time

import numpy as np

PEAK_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peak.c")
CFLAGS = ["-O2", "-march=native", "-fopenmp"]
# The probe restricted to one of our kernels' ISAs (benchmarks run with --isa): the peak that ISA can reach.
ISA_CFLAGS = {
    "avx512": ["-O2", "-march=native", "-fopenmp"],
    "avx2": ["-O2", "-march=native", "-mno-avx512f", "-fopenmp"],
    "baseline": ["-O2", "-march=x86-64", "-fopenmp"],
}


def _compiler():
    cc = os.environ.get("CC", "cc")
    return cc if shutil.which(cc) else None


class Probe:
    """peak.c compiled once into a temporary folder (removed by close() or at exit of a with block)."""

    def __init__(self, isa: str | None = None):
        self.tmp = tempfile.TemporaryDirectory(prefix="tgc-peak-")
        self.exe = None
        self.flags = None
        self.error = None
        cc = _compiler()
        if cc is None:
            self.error = "no C compiler found (set CC)"
            return
        exe = os.path.join(self.tmp.name, "peak")
        # without OpenMP the probe still runs, single-threaded (the pragmas are ignored)
        base = ISA_CFLAGS.get(isa, CFLAGS)
        for flags in (base, [f for f in base if f != "-fopenmp"]):
            proc = subprocess.run([cc, *flags, PEAK_SOURCE, "-o", exe], capture_output=True, text=True)
            if proc.returncode == 0:
                self.exe, self.flags = exe, [cc, *flags]
                return
            self.error = proc.stderr.strip()[-500:]

    def run(self, *args, timeout=120):
        if self.exe is None:
            return None
        try:
            proc = subprocess.run([self.exe, *map(str, args)], capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            self.error = str(e)
            return None
        if proc.returncode != 0:
            self.error = proc.stderr.strip()[-500:]
            return None
        try:
            return json.loads(proc.stdout)
        except ValueError:
            self.error = f"unreadable probe output: {proc.stdout[:200]!r}"
            return None

    def close(self):
        self.tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def measure_peak(probe: Probe, threads: int, seconds: float = 0.5):
    """Best float32 FMA rate of `threads` threads: {"gflops", "threads", "isa", ...} or None."""
    return probe.run("fma", threads, seconds)


def measure_bandwidth(probe: Probe | None, threads: int, mib: int = 256):
    """STREAM-like triad bandwidth in GB/s ({"gbps", "threads", "method"}); NumPy copy without a compiler."""
    result = probe.run("triad", threads, mib) if probe is not None else None
    if result is not None:
        result["method"] = "triad a = b + s*c (peak.c, OpenMP)"
        return result
    n = mib * (1 << 20) // 4
    src, dst = np.ones(n, dtype=np.float32), np.empty(n, dtype=np.float32)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return {"gbps": 2 * 4 * n / best / 1e9, "threads": 1, "method": "numpy copy (no C compiler)"}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_details() -> dict:
    """Vendor family/model numbers and the SIMD flags that matter here, from /proc/cpuinfo (Linux)."""
    out = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key in ("cpu family", "model", "stepping", "cache size") and key not in out:
                    out[key.replace(" ", "_")] = value
                elif key == "flags" and "simd" not in out:
                    flags = set(value.split())
                    out["simd"] = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                                               "avx512_bf16", "amx_tile") if f in flags]
                elif not line.strip() and out:
                    break
    except OSError:
        pass
    return out


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def numpy_blas() -> str:
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{cfg.get('name', '?')} {cfg.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict mode
        return "unknown"


def peaks(threads: int | None = None, isa: str | None = None, refresh: bool = False) -> dict:
    """{"gflops": FMA peak or None, "gbps": triad bandwidth or None, ...} for `threads` threads (default:
    the native kernels' thread count) and the native kernels' ISA (default: the one they run), measured
    once (about 2 s) and cached per machine."""
    if threads is None or isa is None:
        try:
            from . import _C
            threads = _C.num_threads() if threads is None else threads
            isa = _C.isa() if isa is None else isa
        except ImportError:
            threads = usable_cores() if threads is None else threads
    key = f"{cpu_model()}|{usable_cores()} cores|{threads} threads|{isa}"
    from .backend.cuda import _cache_root
    path = _cache_root() / "machine-peaks.json"
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = {}
    if key in cached and not refresh:
        return cached[key]
    with Probe(isa) as probe:
        peak = measure_peak(probe, threads)
        bandwidth = measure_bandwidth(probe if probe.exe else None, threads)
    result = {"gflops": peak and peak["gflops"], "gbps": bandwidth and bandwidth["gbps"], "threads": threads,
              "isa": isa, "cpu": cpu_model(), "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
    cached[key] = result
    try:
        from .checkpoint import write_atomically
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda f: json.dump(cached, f, indent=1), "w")
    except OSError:  # a read-only home: measure again next time
        pass
    return result
