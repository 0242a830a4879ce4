"""What the machine can do: float32 FMA peak (GFLOP/s) and memory bandwidth (GB/s), plus its description.

    python benchmarks/machine.py            # prints the probes as JSON

`measure_peak(threads)` compiles `peak.c` next to this file with the system C
compiler (`$CC`, else `cc`; flags `-O2 -march=native -fopenmp`) into a
temporary folder and runs its FMA probe: independent FMA chains on the widest
vectors -march=native allows (see peak.c), best of a short run. The result is
the ceiling the "% peak" columns of the benchmark compare with.
`measure_bandwidth(threads)` runs peak.c's STREAM-like triad (3 arrays of
256 MiB); without a C compiler it falls back to a NumPy copy (one thread).
Both return None for a probe that cannot run, so the suite still works
without a compiler (the "% peak" columns then read "-").
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PEAK_SOURCE = os.path.join(HERE, "peak.c")
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
        proc = subprocess.run([self.exe, *map(str, args)], capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            self.error = proc.stderr.strip()[-500:]
            return None
        return json.loads(proc.stdout)

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


def describe(threads: int, quick: bool = False, isa: str | None = None) -> dict:
    """CPU, cores, date, versions; measured FMA peak (1 thread, all cores, and `threads`) and bandwidth.

    `peak` is the figure at `threads` (the benchmark's thread count), the one "% peak" divides by.
    With `isa` (our kernels forced to one: "avx2", "baseline", ...) the peak is that ISA's.
    """
    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_model(),
            "cpu_details": cpu_details(), "cores": usable_cores(), "logical_cpus": os.cpu_count(), "threads": threads,
            "platform": platform.platform(), "python": platform.python_version(), "numpy": np.__version__,
            "numpy_blas": numpy_blas()}
    with Probe(isa) as probe:
        info["peak_compile"] = " ".join(probe.flags) + " peak.c" if probe.flags else None
        seconds = 0.3 if quick else 1.0
        peaks = {}
        for n in dict.fromkeys((1, info["cores"], threads)):
            peaks[n] = measure_peak(probe, n, seconds)
        info["peak_1thread"] = peaks[1]
        info["peak_all_cores"] = peaks[info["cores"]]
        info["peak"] = peaks[threads]
        info["bandwidth"] = measure_bandwidth(probe if probe.exe else None, threads, 128 if quick else 256)
        if probe.error and probe.exe is None:
            info["peak_error"] = probe.error
    return info


if __name__ == "__main__":
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else usable_cores()
    print(json.dumps(describe(threads), indent=1))
