"""Memory-bound primitives: our C++ kernels vs PyTorch (CPU) on the CIFAR network's shapes.

    python benchmarks/bench_memory_bound.py                  # 2 threads, 40 timed calls each
    python benchmarks/bench_memory_bound.py --repeats 100 --cases maxpool batchnorm
    python benchmarks/bench_memory_bound.py --threads 1 --clock thread     # CPU time, for a busy machine

Cases (float32, forward + backward of one primitive, timed as one unit):
  maxpool    max_pool2d 2x2 / stride 2 on (128, 32, 32, 32), with int64 argmax indices
  batchnorm  batch norm in training mode (batch statistics, affine) on (128, 64, 16, 16)
  xent       fused softmax cross-entropy of (128, 10) logits and int64 targets (per-sample loss)

Ours calls the primitives of the native backend (`NativeBackend.max_pool2d` + `max_pool2d_grad`,
...: tinygrad_course._C, NCHW). Torch calls the same-level aten kernels, without autograd:
max_pool2d_with_indices(+_backward), native_batch_norm(+_backward), and _log_softmax + nll_loss_forward
/ nll_loss_backward + _log_softmax_backward_data; torch runs with NCHW (contiguous) tensors and with
channels_last ones (4-D cases only). With --autograd the same three are also timed end to end through
each library's autograd (tinygrad_course Tensor + nn.functional vs torch.nn.functional, NCHW).

The implementations take turns in blocks: 5 cycles, in each of which every function runs once
untimed and then repeats / 5 timed calls in a row, so that load from other processes hits all of them
alike. (Blocks rather than alternating single calls: torch and our extension each bring their own
OpenMP thread pool, whose idle threads spin for a while after a parallel region; alternating calls
would make each library's spinning threads compete with the other's working ones.) Reported: minimum and median over the timed calls in ms, GB/s of the
minimum and the ratio torch / ours of the minima (> 1: we are faster). GB/s counts the bytes a
primitive must move at least (each input read once, each output written once, float32 = 4 bytes,
int64 indices = 8 bytes), the same count for ours and torch:
  maxpool    fwd x + y + argmax, bwd gy + argmax + gx
  batchnorm  fwd x + y, bwd gy + x + gx (per-channel vectors ignored); our kernels actually read x
             twice in the forward and gy and x twice in the backward (statistics pass + apply pass)
  xent       fwd logits + target + loss + probs, bwd g + probs + target + grad
Compare with the machine's memory bandwidth (python benchmarks/machine.py; ~25 GB/s for 2 cores
on the development machine). Note: the working sets (<= 30 MB) may partly stay in a large L3 cache
between calls, so rates above the DRAM bandwidth are possible.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

CASES = ("maxpool", "batchnorm", "xent")


CLOCK = time.perf_counter


def _timed_rounds(funcs, repeats, blocks=5):
    """{name: [seconds per call]}: `blocks` cycles over the functions, each function timed in a
    block of repeats / blocks consecutive calls (after one untimed call)."""
    times = {name: [] for name in funcs}
    per = max(1, repeats // blocks)
    for _ in range(blocks):
        for name, fn in funcs.items():
            fn()
            for _ in range(per):
                t0 = CLOCK()
                fn()
                times[name].append(CLOCK() - t0)
    return times


def _rows(case, times, nbytes, ours="ours"):
    rows = []
    best_ours = min(times[ours])
    for name, ts in times.items():
        best = min(ts)
        rows.append({
            "case": case, "impl": name, "min_ms": best * 1e3, "median_ms": statistics.median(ts) * 1e3,
            "gb_s": nbytes / best / 1e9, "ratio": None if name == ours else best / best_ours,
        })
    return rows


def bench_maxpool(torch, nat, repeats, autograd):
    import tinygrad_course as tg
    from tinygrad_course.nn import functional as F

    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 32, 32, 32)).astype(np.float32)
    k = (2, 2)
    y, am = nat.max_pool2d(x, k, k, (0, 0))
    gy = rng.standard_normal(y.shape).astype(np.float32)
    nbytes = (x.nbytes + y.nbytes + am.nbytes) + (gy.nbytes + am.nbytes + x.nbytes)

    def ours():
        _, a = nat.max_pool2d(x, k, k, (0, 0))
        nat.max_pool2d_grad(gy, a, x.shape)

    funcs = {"ours": ours}
    for layout, fmt in (("torch NCHW", torch.contiguous_format), ("torch channels_last", torch.channels_last)):
        tx = torch.from_numpy(x).contiguous(memory_format=fmt)
        tgy = torch.from_numpy(gy).contiguous(memory_format=fmt)

        def run(tx=tx, tgy=tgy):
            _, idx = torch.ops.aten.max_pool2d_with_indices(tx, [2, 2], [2, 2], [0, 0], [1, 1], False)
            torch.ops.aten.max_pool2d_with_indices_backward(tgy, tx, [2, 2], [2, 2], [0, 0], [1, 1], False, idx)
        funcs[layout] = run
        # same values and the same gradient as ours
        ty, tidx = torch.ops.aten.max_pool2d_with_indices(tx, [2, 2], [2, 2], [0, 0], [1, 1], False)
        np.testing.assert_array_equal(ty.contiguous().numpy(), y)
        tgx = torch.ops.aten.max_pool2d_with_indices_backward(tgy, tx, [2, 2], [2, 2], [0, 0], [1, 1], False, tidx)
        np.testing.assert_array_equal(tgx.contiguous().numpy(), nat.max_pool2d_grad(gy, am, x.shape))
    rows = _rows("maxpool 2x2 (128,32,32,32) fwd+bwd", _timed_rounds(funcs, repeats), nbytes)

    if autograd:
        tgx_ = tg.Tensor(x, requires_grad=True)
        tgy_ = tg.Tensor(gy)
        ttx = torch.from_numpy(x).requires_grad_()
        ttgy = torch.from_numpy(gy)

        def ours_ag():
            tgx_.grad = None
            with tg.use_backend("native"):
                F.max_pool2d(tgx_, 2).backward(tgy_)

        def torch_ag():
            ttx.grad = None
            torch.nn.functional.max_pool2d(ttx, 2).backward(ttgy)
        rows += _rows("maxpool autograd", _timed_rounds({"ours": ours_ag, "torch NCHW": torch_ag}, repeats), nbytes)
    return rows


def bench_batchnorm(torch, nat, repeats, autograd):
    import tinygrad_course as tg
    from tinygrad_course.nn import functional as F

    rng = np.random.default_rng(1)
    shape, eps = (128, 64, 16, 16), 1e-5
    x = rng.standard_normal(shape).astype(np.float32)
    gamma = rng.uniform(0.5, 2.0, shape[1]).astype(np.float32)
    beta = rng.standard_normal(shape[1]).astype(np.float32)
    gy = rng.standard_normal(shape).astype(np.float32)
    nbytes = 2 * x.nbytes + 3 * x.nbytes

    def ours():
        _, mean, var = nat.batch_norm_train(x, gamma, beta, eps)
        invstd = 1.0 / np.sqrt(var + np.float32(eps))
        nat.batch_norm_grad(gy, x, mean, invstd, gamma, True)

    funcs = {"ours": ours}
    tw, tb = torch.from_numpy(gamma), torch.from_numpy(beta)
    for layout, fmt in (("torch NCHW", torch.contiguous_format), ("torch channels_last", torch.channels_last)):
        tx = torch.from_numpy(x).contiguous(memory_format=fmt)
        tgy = torch.from_numpy(gy).contiguous(memory_format=fmt)

        def run(tx=tx, tgy=tgy):
            _, m, inv = torch.ops.aten.native_batch_norm(tx, tw, tb, None, None, True, 0.1, eps)
            torch.ops.aten.native_batch_norm_backward(tgy, tx, tw, None, None, m, inv, True, eps, [True, True, True])
        funcs[layout] = run
        ty, m, inv = torch.ops.aten.native_batch_norm(tx, tw, tb, None, None, True, 0.1, eps)
        np.testing.assert_allclose(ty.contiguous().numpy(), nat.batch_norm_train(x, gamma, beta, eps)[0],
                                   rtol=1e-4, atol=1e-4)
    rows = _rows("batchnorm train (128,64,16,16) fwd+bwd", _timed_rounds(funcs, repeats), nbytes)

    if autograd:
        tx_, tg_, tb_ = (tg.Tensor(a, requires_grad=True) for a in (x, gamma, beta))
        tgy_ = tg.Tensor(gy)
        ttx, ttw, ttb = (torch.from_numpy(a).requires_grad_() for a in (x, gamma, beta))
        ttgy = torch.from_numpy(gy)

        def ours_ag():
            for t in (tx_, tg_, tb_):
                t.grad = None
            with tg.use_backend("native"):
                F.batch_norm(tx_, None, None, tg_, tb_, training=True, eps=eps).backward(tgy_)

        def torch_ag():
            for t in (ttx, ttw, ttb):
                t.grad = None
            torch.nn.functional.batch_norm(ttx, None, None, ttw, ttb, training=True, eps=eps).backward(ttgy)
        rows += _rows("batchnorm autograd", _timed_rounds({"ours": ours_ag, "torch NCHW": torch_ag}, repeats),
                      nbytes)
    return rows


def bench_xent(torch, nat, repeats, autograd):
    import tinygrad_course as tg
    from tinygrad_course.nn import functional as F

    rng = np.random.default_rng(2)
    n, c = 128, 10
    logits = rng.standard_normal((n, c)).astype(np.float32)
    target = rng.integers(0, c, size=n)
    g = rng.standard_normal(n).astype(np.float32)
    nbytes = (logits.nbytes + target.nbytes + g.nbytes + logits.nbytes) + (g.nbytes + 2 * logits.nbytes + target.nbytes)

    def ours():
        _, probs = nat.cross_entropy(logits, target, 0.0)
        nat.cross_entropy_grad(g, probs, target, 0.0)

    tl, tt, tgr = torch.from_numpy(logits), torch.from_numpy(target), torch.from_numpy(g)

    def run():
        lsm = torch.ops.aten._log_softmax(tl, 1, False)
        _, total = torch.ops.aten.nll_loss_forward(lsm, tt, None, 0, -100)
        gl = torch.ops.aten.nll_loss_backward(tgr, lsm, tt, None, 0, -100, total)
        torch.ops.aten._log_softmax_backward_data(gl, lsm, 1, torch.float32)

    lsm = torch.ops.aten._log_softmax(tl, 1, False)
    np.testing.assert_allclose(torch.ops.aten.nll_loss_forward(lsm, tt, None, 0, -100)[0].numpy(),
                               nat.cross_entropy(logits, target, 0.0)[0], rtol=1e-5, atol=1e-6)
    rows = _rows("cross-entropy (128,10) fwd+bwd", _timed_rounds({"ours": ours, "torch": run}, repeats), nbytes)

    if autograd:
        tx_ = tg.Tensor(logits, requires_grad=True)
        ttarget = tg.Tensor(target)
        ttx = torch.from_numpy(logits).requires_grad_()

        def ours_ag():
            tx_.grad = None
            with tg.use_backend("native"):
                F.cross_entropy(tx_, ttarget).backward()

        def torch_ag():
            ttx.grad = None
            torch.nn.functional.cross_entropy(ttx, tt).backward()
        rows += _rows("cross-entropy autograd (mean)", _timed_rounds({"ours": ours_ag, "torch": torch_ag},
                                                                    repeats), nbytes)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS and torch.set_num_threads")
    ap.add_argument("--repeats", type=int, default=40, help="timed calls per function (in 5 blocks)")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    ap.add_argument("--autograd", action="store_true", help="also time both libraries through autograd")
    ap.add_argument("--clock", choices=("wall", "thread"), default="wall",
                    help="wall: time.perf_counter; thread: CPU time of the calling thread (time.thread_time), "
                         "robust against preemption on a shared machine but only meaningful with --threads 1")
    args = ap.parse_args()
    if args.clock == "thread":
        if args.threads != 1:
            ap.error("--clock thread needs --threads 1 (other threads' CPU time is not counted)")
        global CLOCK
        CLOCK = time.thread_time

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))  # before the extension starts OpenMP
    import torch

    from tinygrad_course import _C
    from tinygrad_course.backend.native import NativeBackend

    torch.set_num_threads(args.threads)
    nat = NativeBackend()
    print(f"threads: ours {_C.num_threads()}, torch {torch.get_num_threads()}; torch {torch.__version__}; "
          f"{args.repeats} timed calls each, {args.clock} clock")
    rows = []
    for case in args.cases:
        fn = {"maxpool": bench_maxpool, "batchnorm": bench_batchnorm, "xent": bench_xent}[case]
        rows += fn(torch, nat, args.repeats, args.autograd)

    print()
    print("| case | impl | min ms | median ms | GB/s (min) | torch / ours |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"| {r['case']} | {r['impl']} | {r['min_ms']:.3f} | {r['median_ms']:.3f} | {r['gb_s']:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
