"""Benchmarks: our backends side by side with NumPy and PyTorch (CPU), in one process.

    python benchmarks/run.py            # all workloads, writes benchmarks/results/
    python benchmarks/run.py --quick    # fewer repeats

Each workload is timed `--repeats` times after a warm-up; we report the median
and the interquartile range, and the ratio ours / theirs (below 1 = we are
faster). PyTorch runs with torch.set_num_threads equal to our OpenMP threads.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time

import numpy as np

import tinygrad_course as tg
from tinygrad_course.course import circles
from tinygrad_course.nn import functional as F

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def timeit(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {"median_s": statistics.median(times), "iqr_s": q[2] - q[0], "repeats": repeats}


def gemm_workloads(repeats, torch):
    from tinygrad_course import _C
    rows = []
    for n in (256, 512, 1024):
        rng = np.random.default_rng(0)
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        flop = 2.0 * n ** 3
        entry = {"workload": f"GEMM {n}x{n}x{n} float32", "flop": flop,
                 "native": timeit(lambda: _C.matmul(a, b), repeats),
                 "numpy_blas": timeit(lambda: a @ b, repeats)}
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            entry["torch"] = timeit(lambda: ta @ tb, repeats)
        rows.append(entry)
    return rows


def circles_step_workload(repeats, torch):
    """One SGD step of the 2-4-2 tanh MLP at batch 10: pure framework overhead."""
    cfg = circles.CirclesConfig()
    x, _, y, _ = circles.load_data(cfg)
    xb, yb = x[:10], y[:10]
    entry = {"workload": "circles MLP 2-4-2 train step, batch 10", "flop": None}
    for backend in tg.available_backends():
        with tg.use_backend(backend):
            trainer = circles.make_trainer("optim", circles.initial_weights(cfg), cfg)
            entry[f"ours_{backend}"] = timeit(lambda: trainer.step(xb, yb), repeats * 20)
    if torch is not None:
        model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.03)
        tx, ty = torch.from_numpy(xb), torch.from_numpy(yb)

        def torch_step():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(tx), ty)
            loss.backward()
            opt.step()
        entry["torch"] = timeit(torch_step, repeats * 20)
    return [entry]


def conv_workload(repeats, torch):
    """CIFAR conv1 forward at batch 32: the reference backend's cost (the fast kernels are future work)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3, 32, 32), dtype=np.float32)
    w = rng.standard_normal((32, 3, 5, 5), dtype=np.float32)
    flop = 2.0 * 32 * 32 * 32 * 32 * 3 * 25
    entry = {"workload": "conv2d 3->32 5x5 pad 2, (32,3,32,32) forward", "flop": flop}
    with tg.no_grad():
        for backend in tg.available_backends():
            with tg.use_backend(backend):
                entry[f"ours_{backend}"] = timeit(lambda: F.conv2d(tg.Tensor(x), tg.Tensor(w), padding=2), repeats)
    if torch is not None:
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        with torch.no_grad():
            entry["torch"] = timeit(lambda: torch.nn.functional.conv2d(tx, tw, padding=2), repeats)
    return [entry]


def machine_info():
    info = {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
            "machine": platform.machine(), "cpu": platform.processor() or "unknown", "numpy": np.__version__}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info["cores"] = os.cpu_count()
    try:
        from tinygrad_course import _C
        info["native_threads"] = _C.num_threads()
        info["native_simd"] = _C.build_info().get("simd")
    except ImportError:
        pass
    return info


def to_markdown(rows, info):
    lines = [f"Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, NumPy {info['numpy']}"
             f"{', torch ' + info['torch'] if 'torch' in info else ''}; date {info['date']}.", "",
             "| workload | implementation | median ms | IQR ms | GFLOP/s | ratio to torch |", "|---|---|---:|---:|---:|---:|"]
    for row in rows:
        ref = row.get("torch", {}).get("median_s")
        for key, val in row.items():
            if not isinstance(val, dict):
                continue
            gflops = f"{row['flop'] / val['median_s'] / 1e9:.1f}" if row.get("flop") else "-"
            ratio = f"{val['median_s'] / ref:.2f}" if ref else "-"
            lines.append(f"| {row['workload']} | {key} | {1e3 * val['median_s']:.3f} | {1e3 * val['iqr_s']:.3f} | "
                         f"{gflops} | {ratio} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args()
    repeats = 5 if args.quick else 15
    info = machine_info()
    try:
        import torch
        threads = info.get("native_threads", os.cpu_count())
        torch.set_num_threads(threads)
        info["torch"] = torch.__version__
        info["torch_threads"] = threads
    except ImportError:
        torch = None
        print("torch not installed: comparing with NumPy only (pip install 'tinygrad_course[bench]')")
    rows = []
    if "native" in tg.available_backends():
        rows += gemm_workloads(repeats, torch)
    rows += conv_workload(repeats, torch)
    rows += circles_step_workload(repeats, torch)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"machine": info, "results": rows}, f, indent=1)
    table = to_markdown(rows, info)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
