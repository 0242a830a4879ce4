"""tinygrad_course.distributed on "cuda" tensors (NCCL, distributed/nccl.py), without a GPU: 2 ranks under
mpiexec with TINYGRAD_COURSE_CUDA_EMULATE=1, where cupy.cuda.nccl and CUDA streams are emulated (over MPI)
and everything else -- pointers, dtype mapping, unique-id broadcast, side-stream bookkeeping, DDP's cuda
buckets -- is the code a GPU runs. Real NCCL is checked by benchmarks/gpu_distributed_check.py on GPUs.
Skipped without mpi4py/mpiexec or a C++ compiler (the emulation's); the import test needs neither."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import ranks
from ranks import cuda_emulation_or_skip


def run_ranks(tmp_path, n: int, body: str, backend: str = "nccl") -> list:
    """tests/ranks.py's run_ranks on emulated "cuda", with nccl.py imported as `nccl`."""
    cuda_emulation_or_skip()
    return ranks.run_ranks(tmp_path, n, body, backend=backend, prelude="from tinygrad_course.distributed import nccl",
                           env={"TINYGRAD_COURSE_CUDA_EMULATE": "1"}, timeout=300)


# --- no MPI needed ----------------------------------------------------------------------------------
def test_importing_distributed_and_nccl_needs_no_cupy():
    """The package and nccl.py import with CuPy unimportable, and do not even try it; asking for real
    NCCL then says what to install."""
    script = textwrap.dedent("""\
        import os, sys
        tried = []
        class NoCupy:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "cupy":
                    tried.append(name)
                    raise ImportError("cupy is absent here")
        sys.meta_path.insert(0, NoCupy())
        import tinygrad_course.distributed
        import tinygrad_course.distributed.nccl as nccl
        assert tried == [] and not [m for m in sys.modules if m.split(".")[0] == "cupy"], tried
        os.environ.pop("TINYGRAD_COURSE_CUDA_EMULATE", None)
        try:
            nccl.api()
        except RuntimeError as e:
            print("ERROR", e)
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ERROR collectives on cuda tensors need CuPy with NCCL" in done.stdout and "cupy is absent" in done.stdout


def test_dtype_refusal_names_the_dtype():
    from tinygrad_course.distributed import nccl
    assert nccl.check_dtype("all_reduce", np.float64) == "float64"
    with pytest.raises(TypeError, match=r"all_reduce: .* this one is int16: convert it"):
        nccl.check_dtype("all_reduce", np.int16)


# --- two ranks on emulated "cuda" -------------------------------------------------------------------
def test_cuda_collectives_equal_the_cpu_ones(tmp_path):
    """Every op of all_reduce and broadcast on cuda tensors give the MPI results of the same CPU tensors,
    in place (version bumped), through NCCL on the current stream (stream 0); the group selected GPU
    local_rank and every rank holds rank 0's unique id."""
    rows = run_ranks(tmp_path, 2, """
        r = dist.get_rank()
        rows = {}
        for dtype, ops in (("float64", ["sum", "avg", "product", "min", "max"]), ("float32", ["avg"]),
                           ("int32", ["sum", "product", "min", "max"]), ("int64", ["sum"]), ("int8", ["max"]),
                           ("uint8", ["min"])):
            for op in ops:
                x = (np.arange(6).reshape(2, 3) * (r + 2) - 3 * r).astype(dtype)
                cuda, cpu = tg.tensor(x, device="cuda"), tg.tensor(x)
                version = cuda._version
                dist.all_reduce(cuda, op)
                dist.all_reduce(cpu, op)
                rows[f"{dtype} {op}"] = [str(cuda.device), str(cuda.dtype), cuda._version > version,
                                         cuda.cpu().numpy().tolist(), cpu.numpy().tolist()]
        b = tg.tensor(np.full(4, 10.0 * r), device="cuda")
        dist.broadcast(b, src=1)
        i = tg.tensor(np.full(3, r, dtype=np.int64), device="cuda")
        dist.broadcast(i, src=0)
        group = dist._nccl
        report({"rows": rows, "b": b.cpu().numpy().tolist(), "i": i.cpu().numpy().tolist(),
                "device": group.device, "uid": list(group.unique_id), "log": list(nccl.emulation_log)})
    """)
    for row in rows:
        for name, (device, dtype, bumped, cuda, cpu) in row["rows"].items():
            assert device == "cuda" and dtype == name.split()[0] and bumped, name
            assert cuda == cpu, name
        assert row["b"] == [10.0] * 4 and row["i"] == [0] * 3
        assert {tuple(e) for e in row["log"]} == {("allReduce", 0), ("bcast", 0)}  # the current stream
    assert rows[0]["rows"]["float64 avg"][3] == [[-1.5, 1.0, 3.5], [6.0, 8.5, 11.0]]
    assert [row["device"] for row in rows] == [0, 1]  # local rank % GPUs (every rank has an emulated one)
    assert len(rows[0]["uid"]) == 128 and rows[0]["uid"] == rows[1]["uid"]


def test_the_unique_id_must_travel_from_rank_0(tmp_path):
    """The emulated communicator compares the ranks' ids: a group whose MPI broadcast of rank 0's id is
    skipped (each rank keeps zeros, rank 0 its own id) is refused on every rank, as is each rank passing
    its own get_unique_id()."""
    rows = run_ranks(tmp_path, 2, """
        comm = dist._comm()
        class NoBcast:  # the MPI communicator with the id broadcast left out
            def __getattr__(self, name):
                return getattr(comm, name)
            def Bcast(self, buf, root=0):
                pass
        errors = []
        for make in (lambda: nccl.NcclGroup(NoBcast(), nccl.api()),
                     lambda: nccl.api().nccl.NcclCommunicator(2, nccl.api().nccl.get_unique_id(), comm.Get_rank())):
            try:
                make()
                errors.append(None)
            except RuntimeError as e:
                errors.append(str(e))
        good = nccl.NcclGroup(comm, nccl.api())  # with the broadcast it works
        x = np.ones(3)
        good.all_reduce(x)
        report({"errors": errors, "sum": x.tolist()})
    """)
    for row in rows:
        assert all(e is not None and "ranks [1] passed another unique id than rank 0" in e for e in row["errors"])
        assert row["sum"] == [2.0] * 3


def test_cuda_collectives_refuse_bad_input_by_name(tmp_path):
    """NCCL's dtypes are checked before any rank makes the NCCL group; the CPU checks still apply."""
    rows = run_ranks(tmp_path, 2, """
        errors = []
        for call in (lambda: dist.all_reduce(tg.tensor(np.ones(2, np.int16), device="cuda")),
                     lambda: dist.broadcast(tg.tensor(np.ones(2, bool), device="cuda")),
                     lambda: dist.all_reduce(tg.ones(4, 2, device="cuda").T),
                     lambda: dist.all_reduce(tg.tensor([1, 2], device="cuda"), dist.ReduceOp.AVG)):
            try:
                call()
                errors.append(None)
            except (TypeError, ValueError, RuntimeError) as e:
                errors.append(type(e).__name__ + ": " + str(e))
        report({"errors": errors, "group_made": dist._nccl is not None})
    """)
    errors = rows[0]["errors"]
    assert errors[0].startswith("TypeError: all_reduce: NCCL collectives") and "this one is int16" in errors[0]
    assert errors[1].startswith("TypeError: broadcast: NCCL") and "this one is bool" in errors[1]
    assert "contiguous" in errors[2] and "AVG needs a float" in errors[3]
    assert not rows[0]["group_made"]


DDP_BODY = """
from tinygrad_course import nn, optim
from tinygrad_course.distributed import DistributedDataParallel as DDP
r, n = dist.get_rank(), dist.get_world_size()

def model(seed, device):
    tg.manual_seed(seed)  # a different seed per rank: the broadcast must make the replicas equal
    return nn.Sequential(nn.Linear(5, 16, dtype="float64"), nn.Tanh(), nn.Linear(16, 8, dtype="float64"),
                         nn.ReLU(), nn.Linear(8, 3, dtype="float64")).to(device)

def batch(step, rank, device):
    rng = np.random.default_rng(1000 * step + rank)
    return tg.tensor(rng.standard_normal((4, 5)), device=device), tg.tensor(rng.integers(0, 3, 4), device=device)

def train(net, steps, ranks, device):
    # returns the log of the emulated NCCL and streams of each step
    opt, logs = optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01), []
    for step in range(steps):
        nccl.emulation_log.clear()
        xs, ys = zip(*[batch(step, k, device) for k in ranks])
        opt.zero_grad()
        nn.functional.cross_entropy(net(tg.cat(list(xs))), tg.cat(list(ys))).backward()
        opt.step()
        logs.append(list(nccl.emulation_log))
    return logs

def params(net):
    return [p.detach().cpu().numpy() for p in net.parameters()]

on_cuda = DDP(model(r, "cuda"), bucket_cap_mb=0.0004)  # several small buckets
log = train(on_cuda, 3, [r], "cuda")[1]              # the stream bookkeeping of the second step
on_cpu = DDP(model(r, "cpu"), bucket_cap_mb=0.0004)
train(on_cpu, 3, [r], "cpu")
whole = model(0, "cuda")                              # rank 0's start, on both ranks' samples in one process
train(whole, 3, range(n), "cuda")
diff = lambda a, b: max(float(np.abs(x - y).max()) for x, y in zip(params(a), params(b)))
report({"vs_cpu_ddp": diff(on_cuda, on_cpu), "vs_one_process": diff(on_cuda, whole),
        "device": str(next(on_cuda.parameters()).grad.device), "buckets": len(on_cuda.buckets()),
        "early": on_cuda.buckets_started_during_backward, "log": log})
"""


@pytest.mark.parametrize("backend", ["nccl", "mpi"])
def test_ddp_on_emulated_cuda_equals_cpu_ddp_and_one_process(tmp_path, backend):
    """float64, 3 SGD steps, several buckets: the same parameters (1e-10) as DDP on the CPU and as one
    process on the concatenated batch; each bucket's NCCL sum was launched during backward on the side
    stream after it waited for the current stream, and the current stream waited for the side stream
    before the averaged gradients were written. With backend "mpi" the NCCL group is made lazily."""
    rows = run_ranks(tmp_path, 2, DDP_BODY, backend=backend)
    for row in rows:
        assert row["vs_cpu_ddp"] < 1e-10 and row["vs_one_process"] < 1e-10, row
        assert row["device"] == "cuda"
        k = row["buckets"]
        assert k >= 3 and row["early"] == k  # every bucket started during backward
        side = row["log"][1][1]
        assert side != 0
        expected = [("record", 0), ("wait", side, 0), ("allReduce", side)] * k + [("record", side), ("wait", 0, side)]
        assert [tuple(e) for e in row["log"]] == expected



def test_distributed_recipe_on_emulated_cuda_matches_one_cpu_process(tmp_path):
    """`mpiexec -n 2 python -m tinygrad_course --device cuda train mnist-mlp --distributed` (NCCL emulated)
    logs the metrics of one CPU process trained on the same global batches (float32)."""
    launcher = ranks.mpiexec()
    cuda_emulation_or_skip()
    from data_writers import write_mnist
    write_mnist(tmp_path / "data" / "mnist", n_train=48, n_test=16)

    def history(launcher, device, *extra):
        out = tmp_path / device
        done = subprocess.run([*launcher, sys.executable, "-m", "tinygrad_course", "--device", device, "train",
                               "mnist-mlp", "--data-root", str(tmp_path / "data"), "--epochs", "2", "--batch-size",
                               "16", "--no-plots", "--quiet", "--out", str(out), *extra],
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "TINYGRAD_COURSE_CUDA_EMULATE": "1"})
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads((out / "metrics.json").read_text())["history"]
    ours, reference = history([launcher, "-n", "2"], "cuda", "--distributed"), history([], "cpu")
    for row, ref in zip(ours, reference, strict=True):
        for key in ("train_loss", "train_top1", "test_loss", "test_top1"):
            assert row[key] == pytest.approx(ref[key], abs=2e-5), key
    assert ours[-1]["ranks"] == 2


def test_a_cupy_without_libnccl_is_named(monkeypatch):
    """CuPy imports cupy.cuda.nccl even when libnccl is missing (nccl.available is False): the error must
    say so, not fail later on a missing attribute."""
    import types

    from tinygrad_course.distributed import DistributedSetupError, nccl
    cupy = types.ModuleType("cupy")
    cupy.cuda = types.ModuleType("cupy.cuda")
    cupy.cuda.nccl = types.ModuleType("cupy.cuda.nccl")
    cupy.cuda.nccl.available = False
    cupy.cuda.runtime = types.SimpleNamespace(getDeviceCount=lambda: 1)
    for name, module in (("cupy", cupy), ("cupy.cuda", cupy.cuda), ("cupy.cuda.nccl", cupy.cuda.nccl)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delenv("TINYGRAD_COURSE_CUDA_EMULATE", raising=False)
    with pytest.raises(DistributedSetupError, match="need NCCL, which this CuPy cannot load"):
        nccl.api()
