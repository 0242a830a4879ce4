"""The machine the benchmarks ran on: `describe()` (CPU, versions, measured FMA peak and bandwidth).

    python benchmarks/machine.py            # prints the description as JSON

The probes themselves (`Probe`, `measure_peak`, `measure_bandwidth`, compiling peak.c) live in the
package, `tinygrad_course.machine`, which the profiler shares; their names are re-exported here.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import sys

import numpy as np

from tinygrad_course.machine import (CFLAGS, ISA_CFLAGS, PEAK_SOURCE, Probe, cpu_details, cpu_model,  # noqa: F401
                                     measure_bandwidth, measure_peak, numpy_blas, usable_cores)


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
