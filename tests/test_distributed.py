"""tinygrad_course.distributed: the process group's collectives over MPI (several ranks started by
mpiexec in a subprocess; skipped without mpi4py) and DistributedSampler (no MPI needed)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import tinygrad_course.distributed as dist


# --- DistributedSampler ------------------------------------------------------------------------
@pytest.mark.parametrize("n, replicas, drop_last", [(10, 4, False), (10, 4, True), (2, 5, False), (12, 3, False),
                                                    (7, 2, True), (1, 1, False)])
def test_sampler_shares_follow_torchs_rule_without_shuffle(n, replicas, drop_last):
    torch_sampler = pytest.importorskip("torch.utils.data.distributed").DistributedSampler
    for rank in range(replicas):
        ours = dist.DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = torch_sampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


@pytest.mark.parametrize("n, replicas", [(12, 3), (10, 4), (5, 2)])
def test_shuffled_shares_are_disjoint_cover_and_reshuffle_per_epoch(n, replicas):
    samplers = [dist.DistributedSampler(range(n), replicas, r, seed=7) for r in range(replicas)]
    epochs = []
    for epoch in range(3):
        for s in samplers:
            s.set_epoch(epoch)
        shares = [list(s) for s in samplers]
        assert len({len(share) for share in shares}) == 1  # every rank runs the same number of steps
        flat = [i for share in shares for i in share]
        assert set(flat) == set(range(n))  # covering
        padding = len(flat) - n
        assert padding < replicas and len(set(flat)) == n  # disjoint up to the padding
        epochs.append(shares)
        assert [list(s) for s in samplers] == shares  # the same epoch gives the same shares again
    assert epochs[0] != epochs[1] != epochs[2]


def test_sampler_arguments_are_checked():
    with pytest.raises(ValueError, match=r"rank must be in \[0, 2\)"):
        dist.DistributedSampler(range(4), 2, 2)
    with pytest.raises(ValueError, match="num_replicas"):
        dist.DistributedSampler(range(4), 0, 0)
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.DistributedSampler(range(4))  # no process group to ask
    with pytest.raises(RuntimeError, match="not initialised"):
        dist.get_rank()


# --- collectives over MPI, several ranks ------------------------------------------------------------
def _mpiexec() -> str:
    """mpiexec's path; skips the test without mpi4py or an MPI launcher."""
    pytest.importorskip("mpi4py")
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("no mpiexec on PATH (pip install mpich)")
    return mpiexec


def run_ranks(tmp_path, n: int, body: str, timeout: float = 120) -> list:
    """Run `body` on n ranks under mpiexec; each rank's `report(dict)` is returned, in rank order (files,
    not stdout: mpiexec interleaves the ranks' output)."""
    mpiexec = _mpiexec()
    script = textwrap.dedent(f"""\
        import json
        import numpy as np
        import tinygrad_course as tg
        import tinygrad_course.distributed as dist
        dist.init_process_group()

        def report(row):
            with open({str(tmp_path)!r} + f"/rank{{dist.get_rank()}}.json", "w") as f:
                json.dump(row, f)
        """) + textwrap.dedent(body)
    done = subprocess.run([mpiexec, "-n", str(n), sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(n)]


def test_all_reduce_broadcast_and_barrier_on_three_ranks(tmp_path):
    rows = run_ranks(tmp_path, 3, """
        r, n = dist.get_rank(), dist.get_world_size()
        s = tg.tensor(np.arange(4.0) + r); dist.all_reduce(s)
        a = tg.tensor(np.full(2, float(r))); dist.all_reduce(a, dist.ReduceOp.AVG)
        m = tg.tensor(np.array([r, -r])); dist.all_reduce(m, dist.ReduceOp.MAX)
        b = tg.tensor(np.full(3, 10.0 * r)); version = b._version; dist.broadcast(b, src=2)
        dist.barrier()
        report({"rank": r, "n": n, "s": s.tolist(), "a": a.tolist(), "m": m.tolist(), "b": b.tolist(),
                "bumped": b._version > version})
    """)
    assert [row["rank"] for row in rows] == [0, 1, 2] and all(row["n"] == 3 for row in rows)
    for row in rows:
        assert row["s"] == [3.0, 6.0, 9.0, 12.0] and row["a"] == [1.0, 1.0] and row["m"] == [2, 0]
        assert row["b"] == [20.0, 20.0, 20.0] and row["bumped"]  # in place, version-counted


def test_collectives_refuse_bad_input_by_name(tmp_path):
    rows = run_ranks(tmp_path, 2, """
        errors = []
        for call in (lambda: dist.all_reduce(np.ones(2)), lambda: dist.all_reduce(tg.ones(4, 2).T),
                     lambda: dist.all_reduce(tg.ones(2), "median"), lambda: dist.broadcast(tg.ones(2), src=5),
                     lambda: dist.all_reduce(tg.tensor([1, 2]), dist.ReduceOp.AVG),
                     lambda: dist.all_reduce(tg.ones(2, requires_grad=True))):
            try:
                call()
                errors.append(None)
            except (TypeError, ValueError, RuntimeError) as e:
                errors.append(type(e).__name__ + ": " + str(e))
        report({"rank": dist.get_rank(), "errors": errors})
    """)
    errors = rows[0]["errors"]
    assert errors[0].startswith("TypeError: all_reduce: expected a Tensor")
    assert "contiguous" in errors[1] and "op must be one of" in errors[2] and "src must be a rank" in errors[3]
    assert "AVG needs a float" in errors[4] and "requires grad" in errors[5]


# --- DistributedDataParallel ----------------------------------------------------------------------
DDP_SETUP = """
from tinygrad_course import nn, optim
from tinygrad_course.distributed import DistributedDataParallel as DDP
r, n = dist.get_rank(), dist.get_world_size()

def model(seed):
    tg.manual_seed(seed)  # a different seed per rank: the broadcast must make the replicas equal
    return nn.Sequential(nn.Linear(5, 16, dtype="float64"), nn.Tanh(), nn.Linear(16, 8, dtype="float64"),
                         nn.ReLU(), nn.Linear(8, 3, dtype="float64"))

def batch(step, rank, size=4):
    rng = np.random.default_rng(1000 * step + rank)
    return tg.tensor(rng.standard_normal((size, 5))), tg.tensor(rng.integers(0, 3, size))

def train(net, opt, steps, ranks, per_rank):
    for step in range(steps):
        xs, ys = zip(*[batch(step, k, per_rank) for k in ranks])
        opt.zero_grad()
        nn.functional.cross_entropy(net(tg.cat(list(xs))), tg.cat(list(ys))).backward()
        opt.step()
"""


@pytest.mark.parametrize("bucket_cap_mb", [25, 0.0004])
def test_ddp_on_three_ranks_equals_one_process_on_the_whole_batch(tmp_path, bucket_cap_mb):
    rows = run_ranks(tmp_path, 3, DDP_SETUP + f"""
ddp = DDP(model(seed=r), bucket_cap_mb={bucket_cap_mb})
opt = optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
train(ddp, opt, 4, [r], 4)                       # each rank its own 4 samples
ref = model(seed=0)                              # rank 0's start, on all 12 samples in one process
ref_opt = optim.SGD(ref.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
train(ref, ref_opt, 4, range(n), 4)
diff = max(float(abs(a.detach() - b.detach()).max()) for a, b in zip(ddp.parameters(), ref.parameters()))
report({{"rank": r, "diff": diff, "buckets": len(ddp.buckets()), "early": ddp.buckets_started_during_backward,
         "first": ddp.buckets()[0]}})
""")
    for row in rows:
        assert row["diff"] < 1e-10, row  # float64: the same parameters as one process after 4 steps
    assert rows[0]["first"][0] == "4.bias"  # reverse order: the last layer's gradients come first
    if bucket_cap_mb < 0.001:  # small buckets: each starts its reduction during backward, not at the end
        assert rows[0]["buckets"] >= 3 and rows[0]["early"] == rows[0]["buckets"]
    else:
        assert rows[0]["buckets"] == 1


def test_ddp_no_sync_accumulates_and_unused_parameters_do_not_hang(tmp_path):
    rows = run_ranks(tmp_path, 2, DDP_SETUP + """
class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.a, self.b = nn.Linear(5, 4, dtype="float64"), nn.Linear(4, 3, dtype="float64"), \\
            nn.Linear(4, 3, dtype="float64")
    def forward(self, x, head):
        return getattr(self, head)(self.body(x).tanh())

tg.manual_seed(r)
ddp = DDP(TwoHeads(), bucket_cap_mb=0.0001)
x0, y0 = batch(0, r)
x1, y1 = batch(1, r)
with ddp.no_sync():
    nn.functional.cross_entropy(ddp(x0, "a"), y0).backward()
local = ddp.module.a.weight.grad.numpy().copy()
nn.functional.cross_entropy(ddp(x1, "a"), y1).backward()   # head b unused on every rank: no hang
averaged = ddp.module.a.weight.grad.numpy()
report({"rank": r, "local": local.tolist(), "averaged": averaged.tolist(),
        "b_grad": None if ddp.module.b.weight.grad is None else ddp.module.b.weight.grad.numpy().tolist()})
""")
    local = [np.array(row["local"]) for row in rows]
    # each rank accumulated two steps locally; the synchronised step averages the accumulated sums
    for row in rows:
        np.testing.assert_allclose(row["averaged"], rows[0]["averaged"], rtol=0, atol=0)
        assert row["b_grad"] is None or not np.any(row["b_grad"])
    assert not np.allclose(local[0], local[1])  # the ranks' own gradients differed before averaging


@pytest.mark.parametrize("failure", ["raise", "kill"])
def test_a_failing_rank_stops_the_others_within_seconds(tmp_path, failure):
    """Rank 1 raises (or is killed) while ranks 0 and 2 wait in all_reduce: the job ends, non-zero,
    naming the failure, instead of hanging."""
    mpiexec = _mpiexec()
    script = textwrap.dedent(f"""\
        import os, signal
        import tinygrad_course as tg
        import tinygrad_course.distributed as dist
        dist.init_process_group()
        if dist.get_rank() == 1:
            if {failure!r} == "raise":
                raise ValueError("rank 1 broke")
            os.kill(os.getpid(), signal.SIGKILL)
        dist.all_reduce(tg.ones(3))
        """)
    start = time.monotonic()
    done = subprocess.run([mpiexec, "-n", "3", sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=90)
    assert done.returncode != 0 and time.monotonic() - start < 60
    output = done.stdout + done.stderr
    if failure == "raise":
        assert "ValueError: rank 1 broke" in output and "rank 1 of 3 stopped on ValueError" in output
    else:
        assert "Killed" in output or "signal 9" in output
