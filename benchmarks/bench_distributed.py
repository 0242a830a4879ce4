"""Data-parallel training throughput over MPI: DistributedDataParallel on 1, 2, 4 ranks of this machine.

    python benchmarks/bench_distributed.py                  # CifarNet (batch norm), global batch 128
    python benchmarks/bench_distributed.py --ranks 1 2 --steps 5 --json out.json

For each number of ranks N the script starts `mpiexec -n N` on itself. Every rank gets
OMP_NUM_THREADS = cores // N (at least 1, as `train ... --distributed` does) and a per-rank batch of
B / N synthetic CIFAR images (throughput does not depend on the pixels). Measured, median over
--steps steps after 2 warm-up steps, the slowest rank's figure:

  step       a DDP training step: forward, backward with the bucketed Iallreduce, SGD step;
  compute    the same step under no_sync(): no communication at all;
  reduce     DDP's reduction alone (fill the buckets from the gradients, Iallreduce in bucket
             order, wait, average, write .grad), outside backward;
  allreduce  one comm.Allreduce of all the gradient bytes in one buffer (the floor for `reduce`);
  pickled    the same with mpi4py's pickle-based lower-case comm.allreduce (what not to use).

Reported: images/s = B / step; the bus bandwidth 2(N-1)/N * bytes / time of `reduce` and of
`allreduce` (the ring-allreduce convention of nccl-tests); and the fraction of the reduction hidden
behind backward: 1 - (the wait for the reductions after backward, in a step) / (the same wait in
`reduce`, where nothing overlaps). DDP drives MPI's progress from its gradient hooks (MPICH moves a
non-blocking collective only inside MPI calls); --no-mpi-progress turns that off to show its worth.
The wait is measured inside DDP (`last_wait_seconds`), so the fraction is not lost in the noise of
a 100 ms step.

Then, on paper, the expected scaling to 8-64 machines, each as fast as one rank here (the 1-rank
`compute` time of each model), with the ring-allreduce cost 2(N-1)/N * bytes / bandwidth at 10 and
100 Gbit/s, for the CIFAR network and the homework CNN (its batch 64). Latency (2(N-1) messages per
allreduce) is left out; with tens of microseconds per message it adds a few ms at 64 machines.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


# --- one rank (under mpiexec) -----------------------------------------------------------------------
def _model(name: str):
    from tinygrad_course.models import CifarNet, HomeworkCNN
    if name == "cifarnet":
        return CifarNet(batch_norm=True), (3, 32)
    return HomeworkCNN(in_channels=1, image_size=28), (1, 28)  # the homework's default: Fashion-MNIST


def _median_time(fn, steps: int, comm, also=None) -> float | tuple[float, float]:
    """Median seconds of fn() over `steps` calls, the slowest rank's (every call starts together);
    with `also` (a function read after each call), the median over the calls of its least value
    over the ranks as well."""
    times, extra = [], []
    for _ in range(steps):
        comm.Barrier()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        extra.append(also() if also else 0.0)
    slowest = comm.allreduce(statistics.median(times), op=_mpi().MAX)  # one float: pickling is fine here
    if not also:
        return slowest
    # per call, the least any rank waited: the last rank to arrive waits only for the communication
    # still to do, the others also for it (their wait includes the ranks' skew, not communication)
    least = [min(call) for call in zip(*comm.allgather(extra))]
    return slowest, statistics.median(least)


def _mpi():
    from mpi4py import MPI
    return MPI


def worker(args) -> None:
    import numpy as np

    import tinygrad_course as tg
    import tinygrad_course.distributed as dist
    from tinygrad_course import nn, optim
    from tinygrad_course.distributed import DistributedDataParallel
    dist.init_process_group()
    MPI, comm = _mpi(), dist._comm()
    n, rank = comm.Get_size(), comm.Get_rank()
    tg.manual_seed(0)
    model, (channels, side) = _model(args.model)
    if args.no_mpi_progress:  # to measure what driving MPI's progress during backward is worth
        from tinygrad_course.distributed import ddp as ddp_module
        ddp_module._MpiSum.progress = lambda self: None
    ddp = DistributedDataParallel(model, bucket_cap_mb=args.bucket_cap_mb)
    opt = optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    per_rank = args.batch // n
    rng = np.random.default_rng(rank)
    x = tg.tensor(rng.standard_normal((per_rank, channels, side, side), dtype=np.float32))
    y = tg.tensor(rng.integers(0, 10, per_rank))

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(ddp(x), y).backward()
        opt.step()

    def compute_only():
        with ddp.no_sync():
            step()

    params = [p for p in model.parameters() if p.requires_grad]

    def reduce_alone():  # DDP's own path: the hooks backward would call, in its order, then the end
        ddp._pending = True  # as inside a backward that has queued its end
        for p in reversed(params):
            ddp._grad_ready(p)
        ddp._finish()

    flat = np.zeros(sum(p.numel() for p in params), np.float32)
    for _ in range(2):
        step()
    waited = lambda: ddp.last_wait_seconds  # noqa: E731
    step_time, step_wait = _median_time(step, args.steps, comm, also=waited)
    reduce_time, reduce_wait = _median_time(reduce_alone, args.steps, comm, also=waited)
    result = {"ranks": n, "threads": int(os.environ.get("OMP_NUM_THREADS", "0")), "per_rank_batch": per_rank,
              "batch": per_rank * n, "params": int(flat.size), "bytes": int(flat.nbytes), "buckets": len(ddp.buckets()),
              "bucket_cap_mb": args.bucket_cap_mb, "mpi_progress": not args.no_mpi_progress,
              "step": step_time, "compute": _median_time(compute_only, args.steps, comm),
              "step_wait": step_wait, "reduce": reduce_time, "reduce_wait": reduce_wait,
              "allreduce": _median_time(lambda: comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM), args.steps, comm),
              "pickled": _median_time(lambda: comm.allreduce(flat, op=MPI.SUM), args.steps, comm)}
    if rank == 0:
        with open(args.json, "w") as f:
            json.dump(result, f)


# --- the driver ------------------------------------------------------------------------------------
def run_ranks(n: int, model: str, batch: int, steps: int, cores: int, extra=()) -> dict:
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        sys.exit("no mpiexec on PATH: pip install 'tinygrad_course[distributed]' (mpi4py and mpich)")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rank0.json")
        env = dict(os.environ, OMP_NUM_THREADS=str(max(1, cores // n)))
        done = subprocess.run([mpiexec, "-n", str(n), sys.executable, __file__, "--worker", "--json", out,
                               "--model", model, "--batch", str(batch), "--steps", str(steps), *extra],
                              env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{n} ranks failed:\n{done.stderr[-3000:]}")
        with open(out) as f:
            return json.load(f)


def derived(r: dict) -> dict:
    n, ring = r["ranks"], 2 * (r["ranks"] - 1) / r["ranks"]
    bus = lambda seconds: ring * r["bytes"] / seconds / 1e9 if n > 1 else None  # noqa: E731
    # hidden: the share of the reduction's waiting that backward absorbed (the wait after backward in a
    # step, against the wait of the same reduction started with nothing to overlap)
    hidden = None if n == 1 else min(1.0, max(0.0, 1 - r["step_wait"] / r["reduce_wait"]))
    return {"images_per_s": r["batch"] / r["step"], "reduce_gbps": bus(r["reduce"]),
            "allreduce_gbps": bus(r["allreduce"]), "pickled_gbps": bus(r["pickled"]), "hidden": hidden}


def _f(value, fmt):
    return "-" if value is None else format(value, fmt)


def measured_table(rows: list[dict]) -> str:
    lines = ["| ranks | threads/rank | batch/rank | step ms | compute ms | images/s | speed-up | reduce ms "
             "| bus GB/s: DDP / Allreduce / pickled | buckets | wait after backward ms | hidden |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    base = derived(rows[0])["images_per_s"] if rows[0]["ranks"] == 1 else None
    for r in rows:
        d = derived(r)
        lines.append(f"| {r['ranks']} | {r['threads']} | {r['per_rank_batch']} | {1e3 * r['step']:.1f} "
                     f"| {1e3 * r['compute']:.1f} | {d['images_per_s']:.0f} "
                     f"| {_f(d['images_per_s'] / base if base else None, '.2f')} | {1e3 * r['reduce']:.2f} "
                     f"| {_f(d['reduce_gbps'], '.2f')} / {_f(d['allreduce_gbps'], '.2f')} / "
                     f"{_f(d['pickled_gbps'], '.2f')} | {r['buckets']} | {1e3 * r['step_wait']:.2f} "
                     f"| {_f(d['hidden'], '.0%')} |")
    return "\n".join(lines)


MACHINES = (8, 16, 32, 64)


def estimate_table(models: dict) -> str:
    """models: name -> (parameters, batch per machine, compute seconds per step on one machine).
    Per number of machines N: the ring allreduce's time 2(N-1)/N * 4 bytes * params / bandwidth; the
    efficiency when each machine trains its own batch (one machine's step / the distributed step,
    with no overlap at all: the worst case; full overlap gives 100 % while the allreduce is shorter
    than the step); and the speed-up when the global batch is split among the N machines (compute / N,
    optimistic for small per-machine batches; no overlap)."""
    ns = " / ".join(str(n) for n in MACHINES)
    lines = [f"| model | params | step on 1 machine | link | allreduce ms, N = {ns} "
             f"| efficiency, own batch, N = {ns} | speed-up, global batch split, N = {ns} |",
             "|---|---:|---:|---|---|---|---|"]
    for name, (params, batch, compute) in models.items():
        for gbit in (10, 100):
            comm = {n: 2 * (n - 1) / n * 4 * params / (gbit * 1e9 / 8) for n in MACHINES}
            lines.append(f"| {name} | {params / 1e6:.2f} M | {1e3 * compute:.0f} ms (batch {batch}) | {gbit} Gbit/s "
                         f"| {' / '.join(f'{1e3 * comm[n]:.1f}' for n in MACHINES)} "
                         f"| {' / '.join(f'{compute / (compute + comm[n]):.0%}' for n in MACHINES)} "
                         f"| {' / '.join(f'{compute / (compute / n + comm[n]):.1f}x' for n in MACHINES)} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--batch", type=int, default=128, help="global batch (divided among the ranks)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--model", choices=["cifarnet", "homework"], default="cifarnet")
    p.add_argument("--bucket-cap-mb", type=float, default=25)
    p.add_argument("--no-mpi-progress", action="store_true",
                   help="do not drive MPI's progress from the gradient hooks (to measure what it is worth)")
    p.add_argument("--no-estimate", action="store_true", help="skip the homework CNN run of the estimate")
    p.add_argument("--json", help="write the measurements here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    import machine
    cores = machine.usable_cores()
    for n in args.ranks:
        if args.batch % n:
            sys.exit(f"--batch {args.batch} must be divisible by every --ranks value ({n})")
    info = {"cpu": machine.cpu_model(), "simd": machine.cpu_details().get("simd"), "cores": cores,
            "date": time.strftime("%Y-%m-%d")}
    print(f"{info['cpu']}, {cores} cores, {' '.join(info['simd'] or [])}; {info['date']}; model {args.model}, "
          f"global batch {args.batch}", flush=True)
    rows = []
    for n in args.ranks:
        extra = ["--bucket-cap-mb", str(args.bucket_cap_mb)] + (["--no-mpi-progress"] if args.no_mpi_progress else [])
        rows.append(run_ranks(n, args.model, args.batch, args.steps, cores, extra))
        print(f"  {n} rank(s): step {1e3 * rows[-1]['step']:.1f} ms", flush=True)
    print(measured_table(rows))
    result = {"machine": info, "model": args.model, "rows": rows}
    one = next((r for r in rows if r["ranks"] == 1), None)
    if one is not None and not args.no_estimate:
        models = {args.model: (one["params"], one["batch"], one["compute"])}
        other = "homework" if args.model == "cifarnet" else "cifarnet"
        batch = 64 if other == "homework" else 128
        ref = run_ranks(1, other, batch, max(3, args.steps // 2), cores)
        models[other] = (ref["params"], ref["batch"], ref["compute"])
        print("\nEstimated scaling to many machines (each as fast as this one):")
        print(estimate_table(models))
        result["estimate_models"] = models
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
