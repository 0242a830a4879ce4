"""GPU benchmark: our CUDA kernels (device "cuda") vs PyTorch's cuBLAS/cuDNN, side by side in one run.

    python benchmarks/bench_cuda.py                 # everything (a few minutes on an H100)
    python benchmarks/bench_cuda.py --quick         # fewer repeats, GEMM up to 4096
    python benchmarks/bench_cuda.py --only gemm     # workloads whose name matches a regex
    python benchmarks/bench_cuda.py --update-readme # also put the table into README.md (GPU markers)

Needs a GPU, CuPy and PyTorch with CUDA (on the GPU machine, PyTorch of the machine's image).
Workloads (float32 throughout):

* GEMM n x n @ n x n for n in 1024, 2048, 4096, 8192: our `matmul` vs torch.matmul with TF32 off
  (torch.backends.cuda.matmul.allow_tf32 = False), TFLOP/s and % of the card's FP32 peak
  (SMs x 128 FP32 lanes x 2 x boost clock, from the device properties).
* conv2d forward + backward (input and weight gradients) of CifarNet's three layers at batch 128 and
  256: our three primitives vs torch.nn.functional.conv2d and aten.convolution_backward, cuDNN with
  benchmark mode on and TF32 off.
* max-pool 2x2 and batch norm (training) forward + backward on conv1's output at batch 128.
* a full training step (forward, backward, SGD) of CifarNet with batch norm and dropout at batch 128:
  ms per step, ours (Tensor level) vs the same torch.nn model.

Timing: CUDA events around `inner` back-to-back calls (inner chosen so a sample lasts >= ~1 ms),
after warm-up calls; median and interquartile range over --repeats samples. Our implementation
and torch's take turns in rounds so clock drift hits both. Ratio = ours / torch (below 1: faster).

Outputs in --out (default benchmarks/results/): cuda_results.json (device, versions, all statistics)
and cuda_results.md (the table).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(os.path.dirname(HERE), "README.md")
TABLE_START, TABLE_END = "<!-- GPU_BENCHMARK_TABLE_START -->", "<!-- GPU_BENCHMARK_TABLE_END -->"
CONV_LAYERS = [("conv1", 3, 32, 32), ("conv2", 32, 16, 64), ("conv3", 64, 8, 64)]  # name, C, side, F


def _setup():
    import cupy
    import torch

    import tinygrad_course as tg
    if not torch.cuda.is_available():
        raise SystemExit("PyTorch sees no GPU; this benchmark needs one")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    return cupy, torch, tg


def fp32_peak_tflops(cupy) -> float:
    """SMs x 128 FP32 lanes x 2 flops (FMA) x clock: the FP32 peak of Ampere/Hopper parts."""
    props = cupy.cuda.runtime.getDeviceProperties(0)
    return props["multiProcessorCount"] * 128 * 2 * props["clockRate"] * 1e3 / 1e12


def time_gpu(fn, cupy, repeats: int, warmup: int = 3) -> dict:
    """Median/IQR seconds per call of `fn`, by CUDA events around `inner` back-to-back calls."""
    for _ in range(warmup):
        fn()
    cupy.cuda.Device().synchronize()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    inner = 1
    while True:  # grow `inner` until one sample takes >= 1 ms (launch overhead stops mattering)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        if cupy.cuda.get_elapsed_time(start, end) >= 1.0 or inner >= 256:
            break
        inner *= 2
    samples = []
    for _ in range(repeats):
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        samples.append(cupy.cuda.get_elapsed_time(start, end) / 1e3 / inner)
    q = statistics.quantiles(samples, n=4) if len(samples) >= 2 else samples * 3
    return {"median_s": statistics.median(samples), "q1_s": q[0], "q3_s": q[2], "min_s": min(samples),
            "repeats": repeats, "inner": inner}


def _interleaved(impls: dict, cupy, repeats: int, rounds: int = 3) -> dict:
    """Time each implementation in `rounds` turns and pool the samples (medians of the rounds' medians)."""
    per = {name: [] for name in impls}
    for _ in range(rounds):
        for name, fn in impls.items():
            per[name].append(time_gpu(fn, cupy, max(3, repeats // rounds)))
    return {name: {**runs[-1], "median_s": statistics.median(r["median_s"] for r in runs),
                   "q1_s": min(r["q1_s"] for r in runs), "q3_s": max(r["q3_s"] for r in runs)}
            for name, runs in per.items()}


# --- workloads: each returns (name, flop or None, {"ours": fn, "torch": fn}) -----------------------
def gemm_workloads(cupy, torch, tg, sizes):
    be = tg.get_backend("cuda")
    for n in sizes:
        rng = cupy.random.default_rng(n)
        a, b = rng.standard_normal((n, n), dtype=cupy.float32), rng.standard_normal((n, n), dtype=cupy.float32)
        ta, tb = torch.as_tensor(a, device="cuda"), torch.as_tensor(b, device="cuda")
        yield f"GEMM {n}x{n} @ {n}x{n}", 2.0 * n ** 3, {"ours": lambda a=a, b=b: be.matmul(a, b),
                                                       "torch": lambda ta=ta, tb=tb: torch.matmul(ta, tb)}


def conv_workloads(cupy, torch, tg, batches):
    be = tg.get_backend("cuda")
    aten = torch.ops.aten
    for batch in batches:
        for name, c, side, f in CONV_LAYERS:
            rng = cupy.random.default_rng(7)
            x = rng.standard_normal((batch, c, side, side), dtype=cupy.float32)
            w = rng.standard_normal((f, c, 5, 5), dtype=cupy.float32) * 0.05
            b = cupy.zeros(f, dtype=cupy.float32)
            gy = rng.standard_normal((batch, f, side, side), dtype=cupy.float32)
            tx, tw, tb, tgy = (torch.as_tensor(v, device="cuda") for v in (x, w, b, gy))
            args = ((1, 1), (2, 2), (1, 1), 1)

            def ours(x=x, w=w, b=b, gy=gy):
                be.conv2d(x, w, b, *args)
                be.conv2d_grad_input(gy, w, x.shape, *args)
                be.conv2d_grad_weight(gy, x, w.shape, *args)

            def theirs(tx=tx, tw=tw, tb=tb, tgy=tgy):
                torch.nn.functional.conv2d(tx, tw, tb, 1, 2)
                aten.convolution_backward(tgy, tx, tw, [f], [1, 1], [2, 2], [1, 1], False, [0, 0], 1,
                                          [True, True, False])
            flop = 3 * 2.0 * batch * f * side * side * c * 25
            yield f"{name} {c}->{f} 5x5, {side}x{side}, batch {batch}, fwd+bwd", flop, {"ours": ours, "torch": theirs}


def memory_bound_workloads(cupy, torch, tg, batch=128):
    be = tg.get_backend("cuda")
    rng = cupy.random.default_rng(3)
    x = rng.standard_normal((batch, 32, 32, 32), dtype=cupy.float32)
    tx = torch.as_tensor(x, device="cuda").requires_grad_()  # torch's side runs through autograd
    gy = rng.standard_normal((batch, 32, 16, 16), dtype=cupy.float32)
    tgy = torch.as_tensor(gy, device="cuda")

    def pool_ours():
        _, argmax = be.max_pool2d(x, (2, 2), (2, 2), (0, 0))
        be.max_pool2d_grad(gy, argmax, x.shape)

    def pool_theirs():
        torch.nn.functional.max_pool2d(tx, 2, 2).backward(tgy)
    yield f"max_pool 2x2 fwd+bwd, {batch}x32x32x32", None, {"ours": pool_ours, "torch": pool_theirs}

    gamma, beta = cupy.ones(32, dtype=cupy.float32), cupy.zeros(32, dtype=cupy.float32)
    gyb = rng.standard_normal(x.shape, dtype=cupy.float32)
    tgamma, tbeta = (torch.as_tensor(v, device="cuda").requires_grad_() for v in (gamma, beta))
    tgyb = torch.as_tensor(gyb, device="cuda")

    def bn_ours():
        _, mean, var = be.batch_norm_train(x, gamma, beta, 1e-5)
        be.batch_norm_grad(gyb, x, mean, 1.0 / cupy.sqrt(var + 1e-5), gamma, True)

    def bn_theirs():  # cuDNN's batch norm, as F.batch_norm picks it
        torch.nn.functional.batch_norm(tx, None, None, tgamma, tbeta, training=True, eps=1e-5).backward(tgyb)
    yield f"batch_norm train fwd+bwd, {batch}x32x32x32", None, {"ours": bn_ours, "torch": bn_theirs}


def cifar_step_workload(cupy, torch, tg, batch=128):
    sys.path.insert(0, HERE)
    from bench import _load_into_torch, _torch_cifarnet  # the same module tree as ours

    from tinygrad_course import optim
    from tinygrad_course.models import CifarNet
    from tinygrad_course.nn import functional as F
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    tg.manual_seed(0)
    ours_model = CifarNet(batch_norm=True, dropout=0.5)
    theirs_model = _load_into_torch(torch, ours_model, _torch_cifarnet(torch, True, 0.5)).cuda()
    ours_model.to("cuda")
    opt = optim.SGD(ours_model.parameters(), lr=0.1)
    topt = torch.optim.SGD(theirs_model.parameters(), lr=0.1)
    xt, yt = tg.tensor(x, device="cuda"), tg.tensor(y, device="cuda")
    tx, ty = torch.as_tensor(x, device="cuda"), torch.as_tensor(y, device="cuda")

    def ours():
        loss = F.cross_entropy(ours_model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def theirs():
        loss = torch.nn.functional.cross_entropy(theirs_model(tx), ty)
        topt.zero_grad()
        loss.backward()
        topt.step()
    yield f"train step CifarNet + batch norm + dropout, batch {batch}", None, {"ours": ours, "torch": theirs}


# --- report --------------------------------------------------------------------------------------
def to_markdown(results: dict) -> str:
    info = results["device"]
    lines = [f"GPU: {info['name']} ({info['sms']} SMs, FP32 peak {info['fp32_peak_tflops']:.1f} TFLOP/s), "
             f"CuPy {info['cupy']}, PyTorch {info['torch']}, {results['date']}. "
             "Median of CUDA-event-timed samples; ratio = ours / torch (below 1: ours faster).", "",
             "| workload | ours ms | torch ms | ratio | ours TFLOP/s (% of peak) | torch TFLOP/s |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in results["rows"]:
        o, t = row["times"].get("ours"), row["times"].get("torch")
        if not (o and t):
            lines.append(f"| {row['name']} | failed: {row.get('error', '?')} | | | | |")
            continue
        ours_tf = theirs_tf = "-"
        if row["flop"]:
            a, b = row["flop"] / o["median_s"] / 1e12, row["flop"] / t["median_s"] / 1e12
            ours_tf, theirs_tf = f"{a:.1f} ({100 * a / info['fp32_peak_tflops']:.0f} %)", f"{b:.1f}"
        lines.append(f"| {row['name']} | {o['median_s'] * 1e3:.3f} | {t['median_s'] * 1e3:.3f} | "
                     f"{o['median_s'] / t['median_s']:.2f} | {ours_tf} | {theirs_tf} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", help="regex on workload names")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--update-readme", action="store_true")
    args = ap.parse_args(argv)
    cupy, torch, tg = _setup()
    props = cupy.cuda.runtime.getDeviceProperties(0)
    device = {"name": props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
              "sms": props["multiProcessorCount"], "clock_mhz": props["clockRate"] / 1e3,
              "fp32_peak_tflops": fp32_peak_tflops(cupy), "cupy": cupy.__version__, "torch": torch.__version__}
    repeats = 5 if args.quick else args.repeats
    sizes = (1024, 2048, 4096) if args.quick else (1024, 2048, 4096, 8192)
    generators = [gemm_workloads(cupy, torch, tg, sizes), conv_workloads(cupy, torch, tg, (128, 256)),
                  memory_bound_workloads(cupy, torch, tg), cifar_step_workload(cupy, torch, tg)]
    rows = []
    for gen in generators:
        for name, flop, impls in gen:
            if args.only and not re.search(args.only, name, re.I):
                continue
            print(f"{name} ...", flush=True)
            row = {"name": name, "flop": flop, "times": {}}
            try:
                row["times"] = _interleaved(impls, cupy, repeats)
            except Exception as e:  # report and go on: one broken kernel must not hide the others
                row["error"] = f"{type(e).__name__}: {e}"
                print(f"  failed: {row['error']}", flush=True)
            rows.append(row)
    results = {"device": device, "date": time.strftime("%Y-%m-%d"), "rows": rows}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "cuda_results.json"), "w") as f:
        json.dump(results, f, indent=1)
    table = to_markdown(results)
    with open(os.path.join(args.out, "cuda_results.md"), "w") as f:
        f.write(table)
    print(table)
    if args.update_readme:
        with open(README, encoding="utf-8") as f:
            text = f.read()
        start, end = text.find(TABLE_START), text.find(TABLE_END)
        if start < 0 or end < start:
            raise SystemExit(f"README.md has no {TABLE_START} ... {TABLE_END} markers; not updated")
        text = text[:start + len(TABLE_START)] + "\n" + table + text[end:]
        with open(README + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(README + ".tmp", README)


if __name__ == "__main__":
    main()
