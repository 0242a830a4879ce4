"""Convolution benchmark: our C++ kernels vs PyTorch (CPU, oneDNN) on the CIFAR network's convs.

    python benchmarks/bench_conv.py                 # batch 128, 2 threads, 20 rounds
    python benchmarks/bench_conv.py --repeats 40 --layers conv1

Layers (float32, batch 128, 5x5 kernels, padding 2, stride 1):
  conv1  3 -> 32 channels on 32x32   (few input channels: our direct kernel)
  conv2 32 -> 64 channels on 16x16   (small images: our channel-vectorised direct kernel)
  conv3 64 -> 64 channels on 8x8     (small images: our channel-vectorised direct kernel)

For each layer we time the forward, the gradient with respect to the input and the gradient with
respect to the weight, for ours (NCHW) and for torch with NCHW and with channels_last tensors
(torch.ops.aten.convolution_backward with one output mask entry at a time, so the two gradients are
timed separately; bias gradients are not included). The functions are timed in interleaved rounds
(every function once per round) so that load from other processes hits all of them alike; we report
the minimum and the median over the rounds in ms, GFLOP/s of the minimum (2 * N * F * C/g * KH * KW *
OH * OW flops per primitive) and the ratio torch / ours of the minima (> 1: we are faster). "sum" is
forward + grad_input + grad_weight.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

LAYERS = {  # name: (C, F, H=W)
    "conv1": (3, 32, 32),
    "conv2": (32, 64, 16),
    "conv3": (64, 64, 8),
}
K, PAD = 5, 2


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS and torch.set_num_threads")
    ap.add_argument("--repeats", type=int, default=20, help="timed rounds (after 3 warm-up rounds)")
    ap.add_argument("--layers", nargs="+", default=list(LAYERS), choices=list(LAYERS))
    args = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))  # before the extension starts OpenMP
    import torch

    from tinygrad_course import _C

    torch.set_num_threads(args.threads)
    print(f"batch {args.batch}, float32, {args.threads} threads (ours: {_C.num_threads()}), "
          f"{args.repeats} rounds; torch {torch.__version__}, mkldnn {torch.backends.mkldnn.is_available()}")
    print()
    print("| layer | primitive | impl | min ms | median ms | GFLOP/s | torch/ours (min) |")
    print("|---|---|---|---:|---:|---:|---:|")

    for name in args.layers:
        c, f, hw = LAYERS[name]
        n = args.batch
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, c, hw, hw), dtype=np.float32)
        w = (rng.standard_normal((f, c, K, K), dtype=np.float32) / np.sqrt(c * K * K)).astype(np.float32)
        b = rng.standard_normal(f, dtype=np.float32)
        s, p, d = (1, 1), (PAD, PAD), (1, 1)
        y = _C.conv2d(x, w, b, s, p, d, 1)
        gy = rng.standard_normal(y.shape, dtype=np.float32)
        flop = 2.0 * n * f * c * K * K * y.shape[2] * y.shape[3]
        algos = _C.conv2d_algorithms(x.shape, w.shape, s, p, d, 1)

        fns = {
            ("forward", "ours"): lambda: _C.conv2d(x, w, b, s, p, d, 1),
            ("grad_input", "ours"): lambda: _C.conv2d_grad_input(gy, w, x.shape, s, p, d, 1),
            ("grad_weight", "ours"): lambda: _C.conv2d_grad_weight(gy, x, w.shape, s, p, d, 1),
        }
        for layout, fmt in (("NCHW", torch.contiguous_format), ("channels_last", torch.channels_last)):
            tx = torch.from_numpy(x).contiguous(memory_format=fmt)
            tw = torch.from_numpy(w).contiguous(memory_format=fmt)
            tb = torch.from_numpy(b)
            tgy = torch.from_numpy(gy).contiguous(memory_format=fmt)

            def bwd(mask, tx=tx, tw=tw, tgy=tgy):
                return torch.ops.aten.convolution_backward(tgy, tx, tw, [f], list(s), list(p), list(d),
                                                           False, [0, 0], 1, mask)

            fns[("forward", f"torch {layout}")] = lambda tx=tx, tw=tw, tb=tb: torch.conv2d(tx, tw, tb, s, p, d, 1)
            fns[("grad_input", f"torch {layout}")] = lambda bwd=bwd: bwd([True, False, False])
            fns[("grad_weight", f"torch {layout}")] = lambda bwd=bwd: bwd([False, True, False])

        times = {key: [] for key in fns}
        with torch.no_grad():
            for rnd in range(3 + args.repeats):
                for key, fn in fns.items():
                    t0 = time.perf_counter()
                    fn()
                    dt = time.perf_counter() - t0
                    if rnd >= 3:
                        times[key].append(dt)

        impls = ["ours", "torch NCHW", "torch channels_last"]
        mins = {k: min(v) for k, v in times.items()}
        meds = {k: statistics.median(v) for k, v in times.items()}
        for prim in ("forward", "grad_input", "grad_weight", "sum"):
            for impl in impls:
                if prim == "sum":
                    keys = [(q, impl) for q in ("forward", "grad_input", "grad_weight")]
                    tmin = sum(mins[k] for k in keys)
                    tmed = sum(meds[k] for k in keys)
                    ours = sum(mins[(q, "ours")] for q in ("forward", "grad_input", "grad_weight"))
                    fl = 3 * flop
                else:
                    tmin, tmed, ours, fl = mins[(prim, impl)], meds[(prim, impl)], mins[(prim, "ours")], flop
                label = impl + (f" ({algos[prim]})" if impl == "ours" and prim != "sum" else "")
                ratio = "" if impl == "ours" else f"{tmin / ours:.2f}"
                print(f"| {name} {c}->{f} {hw}x{hw} | {prim} | {label} | {tmin * 1e3:.2f} | "
                      f"{tmed * 1e3:.2f} | {fl / tmin / 1e9:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
