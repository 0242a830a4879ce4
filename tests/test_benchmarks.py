"""Smoke tests of the benchmark suite (benchmarks/bench.py, machine.py, peak.c): it must not rot.

Nothing here times anything seriously: a trivial workload, the markdown/README rendering on
synthetic results, and a very short run of the FMA probe when a C compiler is present.
"""
from __future__ import annotations

import copy
import os
import platform
import shutil
import sys

import numpy as np
import pytest

import tinygrad_course as tg

BENCH_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCH_DIR)
bench = pytest.importorskip("bench")
machine = pytest.importorskip("machine")


def test_the_suite_has_the_workloads_of_the_issue():
    names = [w.name for w in bench.all_workloads()]
    for n in (256, 512, 1024, 2048):
        assert f"GEMM {n}x{n} @ {n}x{n}" in names
    for shape in ("128x784 @ 784x256", "128x256 @ 256x784", "784x128 @ 128x256",
                  "128x1024 @ 1024x1000", "128x1000 @ 1000x1024", "1024x128 @ 128x1000"):
        assert any(shape in n for n in names), shape
    assert sum(n.startswith("conv") for n in names) == 6
    for key in ("max_pool", "batch_norm", "cross_entropy", "CifarNet, batch", "batch norm + dropout", "MNIST", "circles"):
        assert any(key in n for n in names), key
    assert len(set(names)) == len(names)


def test_measure_times_interleaved_and_leaves_out_an_implementation_that_raises():
    def boom():
        raise RuntimeError("kernel not built")
    impls = {"numpy": bench.Impl(lambda: np.ones(10).sum(), backend="numpy"), "torch": bench.Impl(boom)}
    plan = bench.Plan(repeats=4, warmup=1, budget_s=0.05, min_sample_s=1e-4, rounds=2)
    times, extra = bench.measure(impls, plan)
    assert set(times) == {"numpy"} and "torch" in extra["errors"]
    st = times["numpy"]
    assert st["repeats"] >= 3 and st["min_s"] <= st["q1_s"] <= st["median_s"] <= st["q3_s"] <= st["max_s"]


@pytest.mark.skipif("native" not in tg.available_backends(), reason="native backend not built")
def test_backend_calls_sees_native_kernels_and_reference_fallbacks():
    with tg.use_backend("native"):
        be = tg.get_backend()
        a = np.ones((4, 4), dtype=np.float32)
        with bench.backend_calls() as calls:
            be.matmul(a, a)
            be.matmul(a.astype(np.int64), a.astype(np.int64))  # integers: the reference runs it
    assert "matmul" in calls["native"] and "matmul" in calls["reference"]
    # and the classes are restored afterwards
    assert bench.NumpyBackend.matmul.__qualname__ == "NumpyBackend.matmul"


def _synthetic_results(with_torch=True):
    stat = {"median_s": 0.01, "q1_s": 0.009, "q3_s": 0.011, "iqr_s": 0.002, "min_s": 0.008, "max_s": 0.02,
            "repeats": 5, "inner": 1}
    times = {"native": stat, "numpy": dict(stat, median_s=0.05)}
    if with_torch:
        times.update(torch_nchw=dict(stat, median_s=0.03), torch_cl=dict(stat, median_s=0.02))
    info = {"cpu": "Test CPU", "cores": 2, "threads": 2, "numpy": np.__version__, "numpy_blas": "blas",
            "date": "2030-01-01T00:00:00", "peak": {"gflops": 100.0, "isa": "avx512"}, "peak_1thread": {"gflops": 50.0},
            "bandwidth": {"gbps": 20.0}}
    if with_torch:
        info.update(torch="2.13.0", torch_threads=2)
    rows = [{"workload": "conv", "group": "conv", "flop": 1e9, "bytes": None, "times": copy.deepcopy(times),
             "native_coverage": "partial"},
            {"workload": "pool", "group": "memory", "flop": None, "bytes": 1e8, "times": copy.deepcopy(times)}]
    results = {"machine": info, "quick": True, "notes": [], "results": rows}
    for row in rows:
        row["derived"] = bench.derived(row, info)
    return results


def test_markdown_table_ratio_throughput_and_layout():
    results = _synthetic_results()
    conv = results["results"][0]["derived"]
    assert conv["torch_best"] == "torch_cl" and conv["ratio"] == pytest.approx(0.5)
    assert conv["gflops"] == pytest.approx(100.0) and conv["pct_peak"] == pytest.approx(100.0)
    pool = results["results"][1]["derived"]
    assert pool["gbps"] == pytest.approx(10.0) and pool["pct_bandwidth"] == pytest.approx(50.0)
    table = bench.to_markdown(results)
    assert "| conv | 10.00 ±20% ‡ | 50.00 ±4% | - | 20.00 ±10% CL | 0.50 | 100.0 GFLOP/s | 100% FMA |" in table
    assert "10.0 GB/s" in table and "50% BW" in table and "Quick mode" in table and "2030-01-01" in table
    no_torch = bench.to_markdown(_synthetic_results(with_torch=False))
    assert "torch best" not in no_torch and "/ torch" not in no_torch


def test_update_readme_replaces_only_between_the_markers_of_its_isa(tmp_path):
    readme = tmp_path / "README.md"
    (s2, e2), (s5, e5) = bench.table_markers("avx2"), bench.table_markers("avx512")
    assert s2 == "<!-- BENCHMARK_TABLE_AVX2_START -->"
    readme.write_text(f"# T\n\nbefore\n\n{s5}\nOLD512\n{e5}\n{s2}\nTABLE\n{e2}\n\nafter\n")
    bench.update_readme("| a |\n|---|\n", "avx2", str(readme))
    bench.update_readme("| b |\n|---|\n", "avx2", str(readme))  # idempotent: replaces the previous table
    text = readme.read_text()
    assert text == f"# T\n\nbefore\n\n{s5}\nOLD512\n{e5}\n{s2}\n| b |\n|---|\n{e2}\n\nafter\n"
    with pytest.raises(SystemExit, match="BENCHMARK_TABLE_BASELINE_START"):
        bench.update_readme("| c |\n", "baseline", str(readme))


@pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None, reason="no C compiler")
def test_peak_probe_compiles_and_reports_a_positive_rate():
    with machine.Probe() as probe:
        assert probe.exe is not None, probe.error
        peak = machine.measure_peak(probe, 1, seconds=0.05)
        assert peak["gflops"] > 0 and peak["threads"] == 1 and peak["isa"] in ("avx512", "avx2", "sse2", "scalar")
        bw = machine.measure_bandwidth(probe, 1, mib=16)
        assert bw["gbps"] > 0


@pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None or platform.machine() not in ("x86_64", "AMD64"),
                    reason="no C compiler, or not x86-64")
def test_peak_probe_restricted_to_the_baseline_isa():
    """bench.py --isa baseline measures the SSE2 peak, whatever the CPU has beyond it."""
    with machine.Probe("baseline") as probe:
        assert probe.exe is not None, probe.error
        assert machine.measure_peak(probe, 1, seconds=0.05)["isa"] == "sse2"


def test_distributed_bench_tables_from_synthetic_rows():
    bd = pytest.importorskip("bench_distributed")
    row = {"ranks": 2, "threads": 1, "per_rank_batch": 64, "batch": 128, "params": 1000, "bytes": 4000,
           "buckets": 1, "step": 0.1, "compute": 0.09, "reduce": 0.02, "allreduce": 0.001, "pickled": 0.007,
           "step_wait": 0.005, "reduce_wait": 0.01}
    one = dict(row, ranks=1, threads=2, per_rank_batch=128, step=0.2, compute=0.2)
    d = bd.derived(row)
    assert d["images_per_s"] == pytest.approx(1280) and d["hidden"] == pytest.approx(0.5)
    assert d["allreduce_gbps"] == pytest.approx(4000 / 0.001 / 1e9)  # 2(N-1)/N = 1 for two ranks
    table = bd.measured_table([one, row])
    assert "| 2 | 1 | 64 | 100.0 | 90.0 | 1280 | 2.00 |" in table and table.endswith("| 1 | 5.00 | 50% |")
    estimate = bd.estimate_table({"net": (1_000_000, 128, 0.1)})
    # at 10 Gbit/s: 2 * (N-1)/N * 4 MB / 1.25 GB/s = 5.6 ms (N = 8) ... 6.3 ms (N = 64)
    assert "| net | 1.00 M | 100 ms (batch 128) | 10 Gbit/s | 5.6 / 6.0 / 6.2 / 6.3 | 95% / 94% / 94% / 94% |" in estimate
    assert "| 5.5x / 8.2x / 10.7x / 12.7x |" in estimate  # 0.1 / (0.1 / N + comm): 0.1 / (0.0125 + 0.0056), N = 8


def test_distributed_bench_runs_on_two_ranks(tmp_path):
    pytest.importorskip("mpi4py")
    if shutil.which("mpiexec") is None:
        pytest.skip("no mpiexec")
    import subprocess
    out = tmp_path / "d.json"
    done = subprocess.run([sys.executable, os.path.join(BENCH_DIR, "bench_distributed.py"), "--ranks", "1", "2",
                           "--batch", "4", "--steps", "1", "--no-estimate", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    import json
    rows = json.loads(out.read_text())["rows"]
    assert [r["ranks"] for r in rows] == [1, 2] and rows[1]["params"] == 1191490 and rows[1]["per_rank_batch"] == 2
