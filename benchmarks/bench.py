"""Benchmark suite of the native CPU kernels: ours (native, NumPy reference) vs NumPy's BLAS vs PyTorch CPU.

    python benchmarks/bench.py                      # everything (< ~10 min on 2 cores), writes benchmarks/results/
    python benchmarks/bench.py --quick              # fewer repeats, shorter probes (< ~2 min); noisy
    python benchmarks/bench.py --only conv          # workloads whose name matches a regex (case-insensitive)
    python benchmarks/bench.py --repeats 30         # more timed repeats per implementation
    python benchmarks/bench.py --update-readme      # also put the table into README.md (the running ISA's markers)
    python benchmarks/bench.py --isa avx2           # our kernels and PyTorch both restricted to AVX2 (also: baseline)
    python benchmarks/bench.py --render-only [--update-readme]   # re-render md/png from results.json, no timing
    python benchmarks/bench.py --list               # workload names

One process runs everything side by side. Implementations (columns):

* native     -- our C++ kernels (tinygrad_course backend "native"); a primitive without a kernel
                yet runs the reference, which is detected at run time and marked in the table;
* numpy      -- our NumPy reference backend (the readable oracle);
* numpy_blas -- np.matmul straight on the arrays (GEMM rows only; the reference backend's
                matmul *is* np.matmul, so the two columns differ only by call overhead);
* torch      -- PyTorch CPU (the pinned torch==2.13.0 of the `bench` extra), with
                torch.set_num_threads equal to our OpenMP threads (tinygrad_course._C.num_threads());
                convolution, pooling, batch-norm and CIFAR rows run both in NCHW (torch_nchw) and
                channels_last (torch_cl, model and inputs converted); the faster is the reference.

Our backends are called at their primitive level (backend.matmul/conv2d/..., with operands
laid out as autograd passes them, e.g. W.T views for nn.Linear) against the matching aten ops;
cross-entropy and the training steps run at the Tensor level in both frameworks.

Timing: every implementation is warmed up, then timed `--repeats` times (fewer when a call is
slow: each implementation has a time budget, and never fewer than 3 samples). The
implementations of a workload take turns in a few rounds, each a block of back-to-back
samples after one untimed call (which absorbs the switch between thread pools: ours, OpenBLAS's
and torch's OpenMP threads all live in this process), so that load drift on a shared machine
hits them all alike. Calls shorter than ~2 ms are timed in batches (`inner` in results.json).
We report the median and the interquartile range (min/max too in results.json), the ratio
ours / torch-best (ours = native, or the reference without the extension; below 1 = we are
faster) and the throughput: GFLOP/s and % of the measured FMA peak for GEMM, conv and training
steps (GEMM/conv FLOPs only: 2*M*N*K per product, backward twice the forward, less the input
gradient of the first layer, which no framework computes), GB/s and % of the measured triad
bandwidth for the memory-bound ops (compulsory traffic: each float32 input read once, each
output written once, indices not counted). Peak and bandwidth come from tinygrad_course/peak.c,
compiled at run time by tinygrad_course/machine.py.

Outputs in --out (default benchmarks/results/): results.json (machine, versions, build flags,
peak, all statistics), results.md (the table) and ratios.png (ours / torch per workload).
Without torch (or with --no-torch) the torch columns are left out with a note; without the
native extension (or with --no-native) the native column is.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import machine  # noqa: E402  (benchmarks/machine.py)

import tinygrad_course as tg  # noqa: E402
from tinygrad_course import optim  # noqa: E402
from tinygrad_course.backend.numpy_backend import NumpyBackend  # noqa: E402
from tinygrad_course.course import circles  # noqa: E402
from tinygrad_course.models import CifarNet, mnist_mlp  # noqa: E402
from tinygrad_course.nn import functional as F  # noqa: E402

try:
    from tinygrad_course.backend.native import NativeBackend
except ImportError:  # the extension is not built
    NativeBackend = None

RESULTS = os.path.join(HERE, "results")
README = os.path.join(os.path.dirname(HERE), "README.md")


def table_markers(isa: str) -> tuple[str, str]:
    """README.md's markers around the benchmark table of one ISA of our kernels (a table per ISA measured)."""
    return f"<!-- BENCHMARK_TABLE_{isa.upper()}_START -->", f"<!-- BENCHMARK_TABLE_{isa.upper()}_END -->"
TORCH_VERSION = "2.13.0"  # the pin of the `bench` extra
BATCH = 128               # the CIFAR batch of COURSE.md section 3
CONV_LAYERS = [           # (name, in channels, side, out channels) of CifarNet's convolutions at batch 128
    ("conv1", 3, 32, 32), ("conv2", 32, 16, 64), ("conv3", 64, 8, 64)]
# the backend primitives (NumpyBackend's public methods: matmul, conv2d, ..., cross_entropy_grad)
from tinygrad_course.profiler import PRIMITIVES  # noqa: E402
IMPL_ORDER = ("native", "numpy", "numpy_blas", "torch", "torch_nchw", "torch_cl")


# --- timing --------------------------------------------------------------------------------------
@dataclass
class Impl:
    fn: Callable[[], object]
    backend: str | None = None  # our backend to select (untimed) before each sample


@dataclass
class Plan:
    repeats: int = 15
    warmup: int = 2
    budget_s: float = 4.0      # time budget for the timed samples of one implementation
    min_repeats: int = 3
    min_sample_s: float = 2e-3  # shorter calls are timed in batches of `inner`
    rounds: int = 3            # the samples of each implementation are split over this many rounds


def _stats(per_call: list[float], inner: int) -> dict:
    q1, _, q3 = statistics.quantiles(per_call, n=4, method="inclusive") if len(per_call) > 1 else per_call * 3
    return {"median_s": statistics.median(per_call), "q1_s": q1, "q3_s": q3, "iqr_s": q3 - q1,
            "min_s": min(per_call), "max_s": max(per_call), "repeats": len(per_call), "inner": inner}


@contextlib.contextmanager
def backend_calls():
    """Record which backend primitives run while inside: {"native": set(), "reference": set()}, filled
    when the block ends, from a tinygrad_course.profile of it.

    Calls started on the native backend count as native, the NumPy reference's as reference; a native
    call that its guard handed to the reference (a fallback, or a primitive without a kernel yet)
    counts in both.
    """
    calls = {"native": set(), "reference": set()}
    with tg.profile() as prof:
        yield calls
    for e in prof.events:
        if e.kind == "primitive":
            if e.ran_on != "numpy":
                calls["native"].add(e.name)
            if e.ran_on.startswith("numpy"):
                calls["reference"].add(e.name)


def measure(impls: dict[str, Impl], plan: Plan) -> tuple[dict[str, dict], dict]:
    """Warm up each implementation, then time it in rounds that rotate over the implementations.

    Within a round an implementation runs its samples back to back (its thread pools warm, as
    in real use); each round starts with an untimed call (when calls are cheap) so that the
    previous implementation's spinning OpenMP/BLAS threads have gone quiet. Several rounds spread
    each implementation over the whole measurement, so load drift hits all of them alike.
    Returns (statistics per implementation, extra) where extra holds "errors" (implementations
    that raised during warm-up, left out) and "native_calls" (primitives the native call ran).
    """
    calib, extra = {}, {"errors": {}}
    for name, impl in list(impls.items()):
        if impl.backend:
            tg.set_backend(impl.backend)
        first = math.inf
        try:
            for i in range(max(1, plan.warmup)):
                t0 = time.perf_counter()
                if i == 0 and name == "native":
                    with backend_calls() as calls:
                        impl.fn()
                    extra["native_calls"] = {k: sorted(v) for k, v in calls.items()}
                else:
                    impl.fn()
                first = min(first, time.perf_counter() - t0)
        except Exception as e:  # a kernel that is not built yet, a torch op missing: skip this column
            extra["errors"][name] = f"{type(e).__name__}: {e}"[:300]
            print(f"  warning: {name} failed and is left out: {extra['errors'][name]}", flush=True)
            del impls[name]
            continue
        inner = 1 if first >= plan.min_sample_s else min(10_000, math.ceil(plan.min_sample_s / max(first, 1e-7)))
        n = max(plan.min_repeats, min(plan.repeats, int(plan.budget_s / max(first * inner, 1e-9))))
        calib[name] = (inner, n, first < 0.25)
    samples = {name: [] for name in impls}
    gc.collect()
    for r in range(plan.rounds):
        for name, impl in impls.items():
            inner, n, cheap = calib[name]
            todo = n * (r + 1) // plan.rounds - n * r // plan.rounds
            if todo == 0:
                continue
            if impl.backend:
                tg.set_backend(impl.backend)
            fn = impl.fn
            if cheap:
                fn()
            for _ in range(todo):
                t0 = time.perf_counter()
                for _ in range(inner):
                    fn()
                samples[name].append((time.perf_counter() - t0) / inner)
    return {name: _stats(samples[name], calib[name][0]) for name in impls}, extra


# --- context: what is available -------------------------------------------------------------------
@dataclass
class Context:
    torch: object | None
    backends: list[str]
    threads: int
    native_kernels: list[str] = field(default_factory=list)

    def ours(self, make: Callable[[str], Callable[[], object]]) -> dict[str, Impl]:
        """One Impl per available backend of ours; make(backend) builds the closure."""
        return {b: Impl(make(b), backend=b) for b in ("native", "numpy") if b in self.backends}


def make_context(no_torch=False, no_native=False) -> tuple[Context, list[str]]:
    notes = []
    backends = [b for b in tg.available_backends() if not (no_native and b == "native")]
    threads = machine.usable_cores()
    native_kernels = []
    if "native" in backends:
        from tinygrad_course import _C
        threads = _C.num_threads()
        with tg.use_backend("native"):
            be = tg.get_backend()
        native_kernels = [p for p in PRIMITIVES if getattr(type(be), p) is not getattr(NumpyBackend, p)]
    else:
        notes.append("native backend unavailable (tinygrad_course._C not built or disabled): native rows skipped")
    torch = None
    if not no_torch:
        try:
            import torch
        except ImportError:
            notes.append("torch not installed: torch columns skipped (pip install 'tinygrad_course[bench]')")
    else:
        notes.append("torch disabled by --no-torch: torch columns skipped")
    if torch is not None:
        torch.set_num_threads(threads)
        if not torch.__version__.startswith(TORCH_VERSION):
            notes.append(f"torch {torch.__version__} is not the pinned {TORCH_VERSION}")
    return Context(torch, backends, threads, native_kernels), notes


# Our ISA -> PyTorch's own switches (read when torch is imported), so both sides run the same
# instruction set. oneDNN's lowest is SSE4.1 and MKL's SSE4.2, a little above our x86-64 baseline (SSE2).
ISA_ENV = {
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
               "MKL_ENABLE_INSTRUCTIONS": "AVX512"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "baseline": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                 "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
}


# --- workloads -------------------------------------------------------------------------------------
@dataclass
class Workload:
    name: str
    group: str                     # gemm | conv | memory | overhead | step
    build: Callable[[Context], dict[str, Impl]]
    flop: float | None = None      # for GFLOP/s and % peak
    bytes: float | None = None     # for GB/s and % bandwidth (memory-bound ops)


def _backend(name: str):
    """Our backend object by name (the one tg.get_backend() returns while it is selected)."""
    with tg.use_backend(name):
        return tg.get_backend()


def _fmt(shape) -> str:
    return "(" + ",".join(map(str, shape)) + ")"


def _rng(seed=0):
    return np.random.default_rng(seed)


def _f32(*shape, seed=0):
    return _rng(seed).standard_normal(shape, dtype=np.float32)


def gemm_workload(label, a_shape, b_shape, transpose_a=False, transpose_b=False):
    """C = A @ B with A, B given as (possibly transposed) views, the way autograd hands them to matmul."""
    m, k = a_shape
    n = b_shape[1]

    def build(ctx):
        a0 = _f32(*(a_shape[::-1] if transpose_a else a_shape), seed=1)  # the stored (contiguous) arrays
        b0 = _f32(*(b_shape[::-1] if transpose_b else b_shape), seed=2)
        a, b = (a0.T if transpose_a else a0), (b0.T if transpose_b else b0)

        def make(name):
            be = _backend(name)
            return lambda: be.matmul(a, b)
        impls = ctx.ours(make)
        impls["numpy_blas"] = Impl(lambda: np.matmul(a, b))
        if ctx.torch is not None:
            torch = ctx.torch
            ta = torch.from_numpy(a0).T if transpose_a else torch.from_numpy(a0)
            tb = torch.from_numpy(b0).T if transpose_b else torch.from_numpy(b0)
            impls["torch"] = Impl(lambda: torch.matmul(ta, tb))
        return impls

    return Workload(f"GEMM {m}x{k} @ {k}x{n}{label}", "gemm", build, flop=2.0 * m * n * k)


def _torch_layouts(ctx, *arrays):
    """Torch copies of the arrays per layout: {"torch_nchw": [...], "torch_cl": [...]} (4-D ones converted)."""
    torch = ctx.torch
    nchw = [torch.from_numpy(a) for a in arrays]
    cl = [t.contiguous(memory_format=torch.channels_last) if t.ndim == 4 else t for t in nchw]
    return {"torch_nchw": nchw, "torch_cl": cl}


def conv_workload(layer, c, side, f, backward):
    n, k, pad = BATCH, 5, 2
    flop = 2.0 * n * f * side * side * c * k * k * (2 if backward else 1)
    params = ((1, 1), (pad, pad), (1, 1), 1)

    def build(ctx):
        x, w, b, gy = _f32(n, c, side, side, seed=1), _f32(f, c, k, k, seed=2), _f32(f, seed=3), \
            _f32(n, f, side, side, seed=4)

        def make(name):
            be = _backend(name)
            if backward:
                return lambda: (be.conv2d_grad_input(gy, w, x.shape, *params),
                                be.conv2d_grad_weight(gy, x, w.shape, *params))
            return lambda: be.conv2d(x, w, b, *params)
        impls = ctx.ours(make)
        if ctx.torch is not None:
            torch = ctx.torch
            conv_bwd = torch.ops.aten.convolution_backward
            for layout, (tx, tw, tb, tgy) in _torch_layouts(ctx, x, w, b, gy).items():
                if backward:
                    impls[layout] = Impl(lambda tx=tx, tw=tw, tgy=tgy: conv_bwd(
                        tgy, tx, tw, None, [1, 1], [pad, pad], [1, 1], False, [0, 0], 1, [True, True, False]))
                else:
                    impls[layout] = Impl(lambda tx=tx, tw=tw, tb=tb: _no_grad(torch, torch.nn.functional.conv2d,
                                                                              tx, tw, tb, padding=pad))
        return impls

    what = "bwd (grad input + grad weight)" if backward else "fwd"
    return Workload(f"{layer} {c}->{f} 5x5 on ({n},{c},{side},{side}) {what}", "conv", build, flop=flop)


def _no_grad(torch, fn, *args, **kwargs):
    with torch.no_grad():
        return fn(*args, **kwargs)


def maxpool_workload():
    shape = (BATCH, 32, 32, 32)
    x_elems = math.prod(shape)
    y_elems = x_elems // 4

    def build(ctx):
        x, gy = _f32(*shape, seed=1), _f32(BATCH, 32, 16, 16, seed=2)

        def make(name):
            be = _backend(name)

            def run():
                y, idx = be.max_pool2d(x, (2, 2), (2, 2), (0, 0))
                return be.max_pool2d_grad(gy, idx, x.shape)
            return run
        impls = ctx.ours(make)
        if ctx.torch is not None:
            aten = ctx.torch.ops.aten
            for layout, (tx, tgy) in _torch_layouts(ctx, x, gy).items():
                def run(tx=tx, tgy=tgy):
                    y, idx = aten.max_pool2d_with_indices(tx, [2, 2], [2, 2], [0, 0], [1, 1], False)
                    return aten.max_pool2d_with_indices_backward(tgy, tx, [2, 2], [2, 2], [0, 0], [1, 1], False, idx)
                impls[layout] = Impl(run)
        return impls

    return Workload(f"max_pool 2x2 on {_fmt(shape)} fwd+bwd", "memory", build,
                    bytes=4.0 * 2 * (x_elems + y_elems))


def batchnorm_workload():
    shape, eps = (BATCH, 64, 16, 16), 1e-5
    elems = math.prod(shape)

    def build(ctx):
        x, gy = _f32(*shape, seed=1), _f32(*shape, seed=2)
        gamma, beta = (1 + 0.1 * _f32(64, seed=3)), 0.1 * _f32(64, seed=4)

        def make(name):
            be = _backend(name)

            def run():  # what ops.BatchNorm does in training, minus the (64,) running-statistics update
                y, mean, var = be.batch_norm_train(x, gamma, beta, eps)
                invstd = 1.0 / np.sqrt(var + eps)
                return be.batch_norm_grad(gy, x, mean, invstd, gamma, True)
            return run
        impls = ctx.ours(make)
        if ctx.torch is not None:
            torch, aten = ctx.torch, ctx.torch.ops.aten
            tgamma, tbeta = torch.from_numpy(gamma), torch.from_numpy(beta)
            rm, rv = torch.zeros(64), torch.ones(64)
            for layout, (tx, tgy) in _torch_layouts(ctx, x, gy).items():
                def run(tx=tx, tgy=tgy):
                    y, mean, invstd = aten.native_batch_norm(tx, tgamma, tbeta, rm, rv, True, 0.1, eps)
                    return aten.native_batch_norm_backward(tgy, tx, tgamma, rm, rv, mean, invstd, True, eps,
                                                           [True, True, True])
                impls[layout] = Impl(run)
        return impls

    return Workload(f"batch_norm train on {_fmt(shape)} fwd+bwd", "memory", build, bytes=4.0 * 5 * elems)


def cross_entropy_workload():
    n, c = BATCH, 10

    def build(ctx):
        logits, target = _f32(n, c, seed=1), _rng(2).integers(0, c, size=n)
        t_target = tg.Tensor(target)

        def make(name):
            def run():
                z = tg.Tensor(logits, requires_grad=True)
                F.cross_entropy(z, t_target).backward()
                return z.grad
            return run
        impls = ctx.ours(make)
        if ctx.torch is not None:
            torch = ctx.torch
            tl, tt = torch.from_numpy(logits), torch.from_numpy(target)

            def run():
                z = tl.detach().requires_grad_(True)
                torch.nn.functional.cross_entropy(z, tt).backward()
                return z.grad
            impls["torch"] = Impl(run)
        return impls

    return Workload(f"cross_entropy ({n},{c}) fwd+bwd, Tensor level", "overhead", build)


# --- training steps -------------------------------------------------------------------------------
def _torch_cifarnet(torch, batch_norm, dropout):
    tnn = torch.nn

    class TorchCifarNet(tnn.Module):  # the same module tree (and state-dict names) as ours
        def __init__(self):
            super().__init__()
            layers, c_in = [], 3
            for c_out in (32, 64, 64):
                layers += [tnn.Conv2d(c_in, c_out, 5, padding=2)] + ([tnn.BatchNorm2d(c_out)] if batch_norm else [])
                layers += [tnn.ReLU(), tnn.MaxPool2d(2, 2)]
                c_in = c_out
            self.features = tnn.Sequential(*layers)
            head = [tnn.Flatten(), tnn.Linear(1024, 1000), tnn.ReLU()] + ([tnn.Dropout(dropout)] if dropout else [])
            self.classifier = tnn.Sequential(*head, tnn.Linear(1000, 10))

        def forward(self, x):
            return self.classifier(self.features(x))

    return TorchCifarNet()


def _load_into_torch(torch, ours, theirs):
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})
    return theirs


def _ours_step(model, x, y, lr):
    opt = optim.SGD(model.parameters(), lr=lr)
    xt, yt = tg.Tensor(x), tg.Tensor(y)

    def step():
        loss = F.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss
    return step


def _torch_step(torch, model, x, y, lr, channels_last=False):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        tx = tx.contiguous(memory_format=torch.channels_last)

    def step():
        loss = torch.nn.functional.cross_entropy(model(tx), ty)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss
    return step


def _cifar_flop(batch):
    fwd_conv = [2.0 * batch * f * s * s * c * 25 for _, c, s, f in CONV_LAYERS]
    fwd_fc = 2.0 * batch * (1024 * 1000 + 1000 * 10)
    return 3 * (sum(fwd_conv) + fwd_fc) - fwd_conv[0]  # no grad input for the first layer


def cifar_step_workload(batch_norm, dropout):
    lr = 0.1  # COURSE.md section 3

    def build(ctx):
        x, y = _f32(BATCH, 3, 32, 32, seed=1), _rng(2).integers(0, 10, size=BATCH)
        tg.manual_seed(0)
        reference = CifarNet(batch_norm=batch_norm, dropout=dropout)

        def make(name):
            model = CifarNet(batch_norm=batch_norm, dropout=dropout)
            model.load_state_dict(reference.state_dict())  # every implementation starts from the same weights
            return _ours_step(model, x, y, lr)
        impls = ctx.ours(make)
        if ctx.torch is not None:
            torch = ctx.torch
            for layout in ("torch_nchw", "torch_cl"):
                model = _load_into_torch(torch, reference, _torch_cifarnet(torch, batch_norm, dropout))
                impls[layout] = Impl(_torch_step(torch, model, x, y, lr, channels_last=layout == "torch_cl"))
        return impls

    extra = " + batch norm + dropout 0.5" if batch_norm else ""
    return Workload(f"train step CifarNet{extra}, batch {BATCH}", "step", build, flop=_cifar_flop(BATCH))


def mnist_step_workload():
    batch, lr = 64, 0.1

    def build(ctx):
        x, y = _f32(batch, 784, seed=1), _rng(2).integers(0, 10, size=batch)
        tg.manual_seed(0)
        reference = mnist_mlp()

        def make(name):
            model = mnist_mlp()
            model.load_state_dict(reference.state_dict())
            return _ours_step(model, x, y, lr)
        impls = ctx.ours(make)
        if ctx.torch is not None:
            torch = ctx.torch
            model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
            impls["torch"] = Impl(_torch_step(torch, _load_into_torch(torch, reference, model), x, y, lr))
        return impls

    fwd1, fwd2 = 2.0 * batch * 784 * 256, 2.0 * batch * 256 * 10
    return Workload(f"train step MNIST MLP 784-256-10, batch {batch}", "step", build, flop=3 * (fwd1 + fwd2) - fwd1)


def circles_step_workload():
    def build(ctx):
        cfg = circles.CirclesConfig()
        x, _, y, _ = circles.load_data(cfg)
        xb, yb = x[:cfg.batch_size], y[:cfg.batch_size]
        weights = circles.initial_weights(cfg)

        def make(name):
            trainer = circles.make_trainer("optim", weights, cfg)
            return lambda: trainer.step(xb, yb)
        impls = ctx.ours(make)
        if ctx.torch is not None:
            torch = ctx.torch
            model = torch.nn.Sequential(torch.nn.Linear(2, cfg.hidden), torch.nn.Tanh(), torch.nn.Linear(cfg.hidden, 2))
            model.load_state_dict({"0.weight": torch.from_numpy(weights["W_h"]), "0.bias": torch.from_numpy(weights["b_h"]),
                                   "2.weight": torch.from_numpy(weights["W_y"]), "2.bias": torch.from_numpy(weights["b_y"])})
            step = _torch_step(torch, model, xb, yb, cfg.lr)
            impls["torch"] = Impl(lambda: step().item())  # ours returns loss.item() too
        return impls

    return Workload("train step circles MLP 2-4-2 tanh, batch 10 (overhead)", "overhead", build)


def all_workloads() -> list[Workload]:
    w = [gemm_workload("", (n, n), (n, n)) for n in (256, 512, 1024, 2048)]
    for n_in, n_out in ((784, 256), (1024, 1000)):  # nn.Linear: W is (out, in), forward uses W.T
        w += [gemm_workload(f" (fc {n_in}->{n_out} fwd X@W)", (BATCH, n_in), (n_in, n_out), transpose_b=True),
              gemm_workload(f" (fc {n_in}->{n_out} bwd g@W^T)", (BATCH, n_out), (n_out, n_in)),
              gemm_workload(f" (fc {n_in}->{n_out} bwd X^T@g)", (n_in, BATCH), (BATCH, n_out), transpose_a=True)]
    for layer, c, side, f in CONV_LAYERS:
        w += [conv_workload(layer, c, side, f, backward=False), conv_workload(layer, c, side, f, backward=True)]
    w += [maxpool_workload(), batchnorm_workload(), cross_entropy_workload(),
          cifar_step_workload(False, 0.0), cifar_step_workload(True, 0.5), mnist_step_workload(),
          circles_step_workload()]
    return w


# --- one run --------------------------------------------------------------------------------------
def run_workload(wl: Workload, ctx: Context, plan: Plan) -> dict:
    previous = tg.get_backend_name()
    try:
        impls = wl.build(ctx)
        impls = {k: impls[k] for k in IMPL_ORDER if k in impls}
        times, extra = measure(impls, plan)
    finally:
        tg.set_backend(previous)
    row = {"workload": wl.name, "group": wl.group, "flop": wl.flop, "bytes": wl.bytes, "times": times}
    if extra["errors"]:
        row["errors"] = extra["errors"]
    calls = extra.get("native_calls")
    if calls is not None and "native" in times:
        fallbacks = set(calls["reference"])
        ok = set(calls["native"]) - fallbacks
        row["native_fallbacks"] = sorted(fallbacks)
        row["native_coverage"] = "full" if not fallbacks else ("partial" if ok else "none")
    return row


def derived(row: dict, info: dict) -> dict:
    """Ours (native, else numpy) vs torch-best: ratio, GFLOP/s, % peak, GB/s, % bandwidth."""
    times = row["times"]
    ours_key = "native" if "native" in times else "numpy" if "numpy" in times else None
    torch_keys = [k for k in ("torch", "torch_nchw", "torch_cl") if k in times]
    best = min(torch_keys, key=lambda k: times[k]["median_s"]) if torch_keys else None
    out = {"ours": ours_key, "torch_best": best}
    if ours_key is None:
        return out
    t = times[ours_key]["median_s"]
    if best:
        out["ratio"] = t / times[best]["median_s"]
        if "numpy" in times and ours_key != "numpy":
            out["ratio_numpy"] = times["numpy"]["median_s"] / times[best]["median_s"]
    peak = (info.get("peak") or {}).get("gflops")
    bw = (info.get("bandwidth") or {}).get("gbps")
    if row.get("flop"):
        out["gflops"] = row["flop"] / t / 1e9
        if peak:
            out["pct_peak"] = 100 * out["gflops"] / peak
        if best:
            out["torch_gflops"] = row["flop"] / times[best]["median_s"] / 1e9
    if row.get("bytes"):
        out["gbps"] = row["bytes"] / t / 1e9
        if bw:
            out["pct_bandwidth"] = 100 * out["gbps"] / bw
    return out


# --- reporting ------------------------------------------------------------------------------------
LAYOUT = {"torch": "", "torch_nchw": " NCHW", "torch_cl": " CL"}


def _ms(stat: dict | None) -> str:
    if not stat:
        return "-"
    med = 1e3 * stat["median_s"]
    digits = 3 if med < 1 else 2 if med < 100 else 1 if med < 1000 else 0
    spread = 100 * stat["iqr_s"] / stat["median_s"] if stat["median_s"] else 0
    return f"{med:.{digits}f} ±{spread:.0f}%"


def to_markdown(results: dict) -> str:
    info, rows = results["machine"], results["results"]
    forced = ""
    if info.get("isa_forced"):
        switches = ", ".join(f"{k}={v}" for k, v in (info.get("torch_isa_env") or {}).items())
        forced = (f" ISA forced to {info['isa_forced']} (--isa): ours with TINYGRAD_COURSE_ISA, PyTorch with "
                  f"{switches or 'nothing'}, the peak probe compiled for it.")
    peak, bw = (info.get("peak") or {}), (info.get("bandwidth") or {})
    has_native = any("native" in r["times"] for r in rows)
    has_torch = any(r["derived"].get("torch_best") for r in rows)
    ours = "native" if has_native else "numpy ref"
    mode = " **Quick mode (fewer repeats; noisy).**" if results.get("quick") else ""
    torch_txt = (f"PyTorch {info['torch']} CPU ({info['torch_threads']} threads)" if info.get("torch")
                 else "no PyTorch")
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, our OpenMP threads {info['threads']}; "
        f"measured float32 FMA peak {peak.get('gflops', float('nan')):.0f} GFLOP/s "
        f"({(info.get('peak_1thread') or {}).get('gflops', float('nan')):.0f} on 1 thread, {peak.get('isa', '?')}), "
        f"triad bandwidth {bw.get('gbps', float('nan')):.1f} GB/s; NumPy {info['numpy']} ({info['numpy_blas']}), "
        f"{torch_txt}; native build: {info.get('native_build', 'not available')}. "
        f"Date {info['date'][:10]}.{mode}{forced}",
        "",
    ]
    cols = ["workload"] + (["ours native ms"] if has_native else []) + ["ours numpy-ref ms", "NumPy BLAS ms"]
    cols += ["torch best ms", f"{ours} / torch"] if has_torch else []
    cols += [f"{ours} throughput", "% of peak"]
    lines += ["| " + " | ".join(cols) + " |", "|---" + "|---:" * (len(cols) - 1) + "|"]
    for row in rows:
        t, d = row["times"], row["derived"]
        cells = [row["workload"]]
        if has_native:
            mark = {"none": " †", "partial": " ‡"}.get(row.get("native_coverage"), "")
            cells.append(_ms(t.get("native")) + mark if "native" in t else
                         "error" if "native" in row.get("errors", {}) else "-")
        cells += [_ms(t.get("numpy")), _ms(t.get("numpy_blas"))]
        if has_torch:
            best = d.get("torch_best")
            cells += [f"{_ms(t[best])}{LAYOUT[best]}" if best else "-", f"{d['ratio']:.2f}" if "ratio" in d else "-"]
        if "gflops" in d:
            cells += [f"{d['gflops']:.1f} GFLOP/s", f"{d['pct_peak']:.0f}% FMA" if "pct_peak" in d else "-"]
        elif "gbps" in d:
            cells += [f"{d['gbps']:.1f} GB/s", f"{d['pct_bandwidth']:.0f}% BW" if "pct_bandwidth" in d else "-"]
        else:
            cells += ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Medians over the timed repeats after warm-up, ± the interquartile range as % of the median. "
        + ("torch best: the faster of NCHW and channels_last (CL) where both apply; ratio below 1: we are faster. "
           if has_torch else "")
        + "Throughput counts GEMM/conv FLOPs (training steps: forward + backward) or compulsory memory traffic; "
        "% of peak is against the measured FMA peak (FLOP rows) or triad bandwidth (memory rows)."
    ]
    if any(r.get("native_coverage") in ("none", "partial") for r in rows):
        lines.append("† the native backend ran the NumPy reference for this op (no kernel yet); "
                     "‡ it did for some of its primitives (results.json: native_fallbacks).")
    for note in results.get("notes", []):
        lines.append(f"Note: {note}.")
    return "\n".join(lines) + "\n"


def write_chart(results: dict, path: str) -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed: ratios.png not written"
    rows = [r for r in results["results"] if "ratio" in r["derived"]]
    if not rows:
        return "no torch ratios to plot: ratios.png not written"
    names = [r["workload"] for r in rows][::-1]
    ours = [r["derived"]["ratio"] for r in rows][::-1]
    ref = [r["derived"].get("ratio_numpy", math.nan) for r in rows][::-1]
    label = rows[0]["derived"]["ours"]
    fig, ax = plt.subplots(figsize=(11, 0.34 * len(rows) + 1.8))
    y = np.arange(len(rows))
    has_ref = not all(math.isnan(v) for v in ref)
    h = 0.4 if has_ref else 0.7
    # bars start at 1.0: to the right we are slower than torch, to the left faster
    series = [(ours, y + (h / 2 if has_ref else 0), "tab:blue", f"ours ({label}) / torch best")]
    if has_ref:
        series.append((ref, y - h / 2, "tab:gray", "ours (numpy reference) / torch best"))
    for values, pos, color, name in series:
        values = np.asarray(values, dtype=float)
        ax.barh(pos, values - 1.0, left=1.0, height=h, color=color, alpha=0.85 if color == "tab:blue" else 0.5,
                label=name)
        if color == "tab:blue":
            for v, p in zip(values, pos):
                ax.annotate(f"{v:.2f}", (v, p), xytext=(3 if v >= 1 else -3, 0), textcoords="offset points",
                            ha="left" if v >= 1 else "right", va="center", fontsize=7)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    lo = np.nanmin(ours + ref) if has_ref else min(ours)
    hi = np.nanmax(ours + ref) if has_ref else max(ours)
    ax.set_xlim(min(lo, 0.5) / 1.6, max(hi, 2.0) * 1.6)
    ax.set_yticks(y, names, fontsize=7)
    ax.set_xlabel("time ours / PyTorch (log scale; < 1: we are faster)")
    info = results["machine"]
    quick = " (quick mode: noisy)" if results.get("quick") else ""
    ax.set_title(f"tinygrad_course vs PyTorch {info.get('torch', '')} CPU - {info['cpu']}, "
                 f"{info['threads']} threads, {info['date'][:10]}{quick}", fontsize=9)
    ax.legend(fontsize=8, loc="best")
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return None


def update_readme(table: str, isa: str, readme: str = README) -> None:
    """Replace what lies between the README.md markers of `isa`'s benchmark table with `table`."""
    table_start, table_end = table_markers(isa)
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    start, end = text.find(table_start), text.find(table_end)
    if start < 0 or end < start:
        raise SystemExit(f"README.md has no {table_start} ... {table_end} markers; not updated "
                         "(add them where the table of this ISA belongs)")
    text = text[:start + len(table_start)] + "\n" + table.rstrip("\n") + "\n" + text[end:]
    tmp = readme + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, readme)


def render(results: dict, out: str, readme: bool) -> str:
    for row in results["results"]:
        row["derived"] = derived(row, results["machine"])
    table = to_markdown(results)
    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as f:
        f.write("# tinygrad_course benchmarks\n\n" + table +
                "\nReproduce: `python benchmarks/bench.py` (see its docstring); raw numbers in results.json.\n")
    chart = os.path.join(out, "ratios.png")
    note = write_chart(results, chart)
    if note:
        print(f"note: {note}")
        if os.path.exists(chart):  # do not leave a chart of an earlier run next to these results
            os.remove(chart)
    if readme:
        isa = (results["machine"].get("native_build_info") or {}).get("isa")
        if not isa:
            raise SystemExit("--update-readme needs the native backend (the table is filed under its ISA)")
        update_readme(table, isa)
        print(f"updated the benchmark table in {os.path.relpath(README)}")
    return table


def machine_info(ctx: Context, quick: bool, isa: str | None = None) -> dict:
    print("measuring the machine (FMA peak, triad bandwidth)...", flush=True)
    info = machine.describe(ctx.threads, quick=quick, isa=isa)
    info["isa_forced"] = isa
    info["torch_isa_env"] = {k: os.environ[k] for k in ISA_ENV.get(isa, {}) if k in os.environ}
    info["load_average_start"] = os.getloadavg()
    info["tinygrad_course"] = tg.__version__
    info["backends"] = ctx.backends
    info["native_kernels"] = ctx.native_kernels
    if "native" in ctx.backends:
        from tinygrad_course import _C
        build = dict(_C.build_info())
        info["native_build_info"] = build
        info["native_build"] = (f"{build.get('compiler', '?')} {build.get('cxx_flags', '')}, "
                                f"ISAs {build.get('isas_compiled', '?')}, running {build.get('isa', '?')}")
    if ctx.torch is not None:
        info["torch"] = ctx.torch.__version__
        info["torch_threads"] = ctx.torch.get_num_threads()
        try:
            info["torch_mkldnn"] = bool(ctx.torch.backends.mkldnn.is_available())
        except AttributeError:
            pass
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and shorter probes (noisy)")
    parser.add_argument("--only", metavar="PATTERN", help="only workloads whose name matches this regex")
    parser.add_argument("--repeats", type=int, help="timed repeats per implementation (default 15, quick 5)")
    parser.add_argument("--out", help="output folder (default benchmarks/results; with --only "
                                      "benchmarks/results/partial, so a partial run never replaces the full results)")
    parser.add_argument("--update-readme", action="store_true", help="replace README.md's benchmark table")
    parser.add_argument("--render-only", action="store_true",
                        help="no timing: re-render results.md/ratios.png from OUT/results.json")
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    parser.add_argument("--no-torch", action="store_true", help="do not compare with PyTorch")
    parser.add_argument("--no-native", action="store_true", help="skip our native backend")
    parser.add_argument("--isa", choices=sorted(ISA_ENV),
                        help="run our kernels with this instruction set and restrict PyTorch (ATen, oneDNN, MKL) "
                             "and the FMA-peak probe to the same, so a lower ISA than the CPU's best is compared "
                             "like for like (default: each library's best)")
    args = parser.parse_args(argv)
    if args.isa:
        if "torch" in sys.modules:  # its switches are read when it is imported
            raise SystemExit("--isa must be applied before torch is imported")
        os.environ.update(ISA_ENV[args.isa])
        os.environ["TINYGRAD_COURSE_ISA"] = args.isa
        if NativeBackend is not None:
            from tinygrad_course import _C
            _C.set_isa(args.isa)  # ValueError naming what this CPU can run

    workloads = all_workloads()
    if args.out is None:
        args.out = os.path.join(RESULTS, "partial") if args.only else RESULTS
    if args.only:
        pattern = re.compile(args.only, re.IGNORECASE)
        workloads = [w for w in workloads if pattern.search(w.name)]
    if args.list:
        print("\n".join(f"{w.group:8s} {w.name}" for w in workloads))
        return 0
    os.makedirs(args.out, exist_ok=True)
    if args.render_only:
        with open(os.path.join(args.out, "results.json"), encoding="utf-8") as f:
            results = json.load(f)
        print(render(results, args.out, args.update_readme))
        return 0
    if not workloads:
        raise SystemExit(f"no workload matches {args.only!r} (see --list)")
    if args.update_readme and args.only:
        raise SystemExit("--update-readme needs the full suite (drop --only)")

    plan = Plan(repeats=args.repeats or (5 if args.quick else 15), warmup=1 if args.quick else 2,
                budget_s=1.0 if args.quick else 4.0)
    ctx, notes = make_context(args.no_torch, args.no_native)
    load = os.getloadavg()[0]
    if load > 0.5:
        notes.append(f"the machine was busy at the start (load average {load:.1f} on {machine.usable_cores()} cores): "
                     "timings are noisy")
    for note in notes:
        print(f"note: {note}")
    info = machine_info(ctx, args.quick, args.isa)
    print(f"{info['cpu']}: peak {(info['peak'] or {}).get('gflops', 'n/a')} GFLOP/s, "
          f"bandwidth {(info['bandwidth'] or {}).get('gbps', 'n/a')} GB/s; {ctx.threads} threads; "
          f"native kernels: {', '.join(ctx.native_kernels) or 'none'}", flush=True)
    results = {"machine": info, "quick": args.quick, "only": args.only, "notes": notes,
               "plan": plan.__dict__, "results": []}
    t_start = time.perf_counter()
    for wl in workloads:
        t0 = time.perf_counter()
        row = run_workload(wl, ctx, plan)
        row["derived"] = derived(row, info)
        results["results"].append(row)
        d = row["derived"]
        cells = "  ".join(f"{k} {1e3 * v['median_s']:.3f}" for k, v in row["times"].items())
        ratio = f"  ratio {d['ratio']:.2f}" if "ratio" in d else ""
        print(f"[{time.perf_counter() - t0:5.1f}s] {wl.name}: {cells} ms{ratio}", flush=True)
    info["load_average_end"] = os.getloadavg()
    results["total_s"] = time.perf_counter() - t_start
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    print()
    print(render(results, args.out, args.update_readme))
    print(f"total {results['total_s']:.0f} s; results in {os.path.relpath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
