"""GEMM benchmark: our C++ gemm (tinygrad_course._C.matmul) vs NumPy (OpenBLAS here) vs PyTorch (MKL).

    python benchmarks/bench_gemm.py                  # float32, 2 threads, 6 rounds x 5 calls, all shapes
    python benchmarks/bench_gemm.py --repeats 10 --only square
    python benchmarks/bench_gemm.py --dtype float64 --threads 1

Shapes (M x K @ K x N; "T" marks an operand passed as a transposed view, e.g. w.T):
  square   256, 512, 1024, 2048
  mlp      the MLP layers 128x784 -> 256 and 128x1024 -> 1000 as the autograd
           computes them: forward x @ W.T, grad_x = g @ W, grad_W = g.T @ x
           (W is (out, in), C-contiguous; no copies are made for the views).

Every library gets the same operands (torch through torch.from_numpy, so the
same memory and the same strides). The libraries are timed in rounds, so that
load from other processes hits all of them alike: in each round every library
runs a block of --inner consecutive calls (after one warm-up call), preceded
by a --gap pause. The pause matters: each library's idle worker threads keep
spinning for a while after a call (OpenMP's spin-wait, OpenBLAS's busy-wait
of up to ~0.1 s), and on a 2-core machine they would steal the cores of
whichever library runs next if calls of different libraries alternated. We
report the minimum and the median over all timed calls in ms, GFLOP/s of the
minimum (2*M*N*K flops), and the ratios ours/numpy and ours/torch of the
minimum times' throughput (> 1: we are faster). Thread counts:
OMP_NUM_THREADS (ours), OPENBLAS_NUM_THREADS (numpy) and torch.set_num_threads
are all set to --threads before the libraries load.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def shapes(which):
    out = []
    if which in ("all", "square"):
        for s in (256, 512, 1024, 2048):
            out.append((f"{s}^3", s, s, s, False, False))
    if which in ("all", "mlp"):
        for batch, fan_in, fan_out in ((128, 784, 256), (128, 1024, 1000)):
            tag = f"{batch}x{fan_in}->{fan_out}"
            out.append((f"{tag} fwd  x@W.T", batch, fan_in, fan_out, False, True))
            out.append((f"{tag} dx   g@W", batch, fan_out, fan_in, False, False))
            out.append((f"{tag} dW   g.T@x", fan_out, batch, fan_in, True, False))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=6, help="rounds")
    ap.add_argument("--inner", type=int, default=5, help="timed calls per library per round")
    ap.add_argument("--gap", type=float, default=0.1, help="pause (s) before each block of calls")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--only", choices=["all", "square", "mlp"], default="all")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    args = ap.parse_args()

    # Before NumPy / torch / the extension start their thread pools.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np

    from tinygrad_course import _C

    torch = None
    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(args.threads)
        except ImportError:
            print("torch not installed: skipping it", file=sys.stderr)

    dtype = np.dtype(args.dtype)
    cfg = _C.gemm_config()[dtype.name]
    print(f"# {dtype.name}, {args.threads} thread(s), {args.repeats} rounds x {args.inner} calls; ours: {cfg['isa']} "
          f"micro-tile {cfg['mr']}x{cfg['nr']}, kc={cfg['kc']} mc={cfg['mc']} nc={cfg['nc']}; "
          f"numpy {np.__version__}" + (f", torch {torch.__version__}" if torch else ""))
    cols = ["ours", "numpy"] + (["torch"] if torch else [])
    head = f"{'shape':32s} {'M':>5s} {'K':>5s} {'N':>5s} " + " ".join(
        f"{c + ' ms min/med':>17s} {'GF/s':>6s}" for c in cols
    ) + f" {'/numpy':>7s}" + (f" {'/torch':>7s}" if torch else "")
    print(head)
    print("-" * len(head))

    rng = np.random.default_rng(0)
    for label, m, k, n, ta, tb in shapes(args.only):
        # op(a) is m x k: a transposed view of a C-contiguous k x m array when ta.
        a = rng.uniform(-1, 1, (k, m) if ta else (m, k)).astype(dtype)
        b = rng.uniform(-1, 1, (n, k) if tb else (k, n)).astype(dtype)
        a = a.T if ta else a
        b = b.T if tb else b
        fns = {"ours": lambda a=a, b=b: _C.matmul(a, b), "numpy": lambda a=a, b=b: np.matmul(a, b)}
        if torch:
            ta_t, tb_t = torch.from_numpy(a), torch.from_numpy(b)
            fns["torch"] = lambda x=ta_t, y=tb_t: torch.matmul(x, y)
        times = {c: [] for c in cols}
        for _ in range(args.repeats):
            for c in cols:
                time.sleep(args.gap)
                fns[c]()  # warm-up (caches, thread pool wake-up)
                for _ in range(args.inner):
                    t0 = time.perf_counter()
                    fns[c]()
                    times[c].append(time.perf_counter() - t0)
        flops = 2.0 * m * n * k
        best = {c: min(times[c]) for c in cols}
        line = f"{label:32s} {m:5d} {k:5d} {n:5d} "
        line += " ".join(
            f"{best[c] * 1e3:8.3f}/{statistics.median(times[c]) * 1e3:8.3f} {flops / best[c] / 1e9:6.1f}"
            for c in cols
        )
        line += f" {best['numpy'] / best['ours']:7.2f}"
        if torch:
            line += f" {best['torch'] / best['ours']:7.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
