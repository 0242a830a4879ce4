"""tinygrad_course.distributed: the process group's collectives over MPI (several ranks started by
mpiexec in a subprocess; skipped without mpi4py) and DistributedSampler (no MPI needed)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from ranks import mpiexec, run_ranks

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


# 3 SGD steps of a CNN on 2 images (SIDE x SIDE, DTYPE, set by the test) per rank and step
CNN_STEPS = """
from tinygrad_course import nn, optim
from tinygrad_course.distributed import DistributedDataParallel as DDP
r, n = dist.get_rank(), dist.get_world_size()

def images(step, rank):
    rng = np.random.default_rng(100 * step + rank)
    return tg.tensor(rng.standard_normal((2, 2, SIDE, SIDE)), dtype=DTYPE), tg.tensor(rng.integers(0, 3, 2))

def train(net, opt, ranks):
    for step in range(3):
        xs, ys = zip(*[images(step, k) for k in ranks])
        opt.zero_grad()
        nn.functional.cross_entropy(net(tg.cat(list(xs))), tg.cat(list(ys))).backward()
        opt.step()
"""


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-10), ("float32", 1e-5)])
def test_ddp_cnn_with_batch_norm_in_eval_mode_equals_one_process(tmp_path, dtype, tolerance):
    """A CNN with batch norm in eval mode (running statistics fixed, so a sample's output does not depend
    on the rest of its batch): 3 ranks x 2 images equal one process on the 6 images after 3 steps of
    SGD with momentum and weight decay; float32 within 1e-5 (the sums' order differs)."""
    rows = run_ranks(tmp_path, 3, CNN_STEPS + f"""
SIDE, DTYPE = 6, "{dtype}"

def cnn(seed):
    tg.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, dtype=DTYPE), nn.BatchNorm2d(4, dtype=DTYPE), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 3, dtype=DTYPE))
    net[1].running_mean.copy_(tg.tensor(np.linspace(-0.2, 0.2, 4), dtype=DTYPE))
    net[1].running_var.copy_(tg.tensor(np.linspace(0.5, 2.0, 4), dtype=DTYPE))
    return net.eval()

ddp = DDP(cnn(seed=r), bucket_cap_mb=0.0002)
train(ddp, optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01), [r])
ref = cnn(seed=0)
train(ref, optim.SGD(ref.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01), range(n))
diff = max(float(abs(a.detach() - b.detach()).max()) for a, b in zip(ddp.parameters(), ref.parameters()))
report({{"rank": r, "diff": diff, "buckets": len(ddp.buckets())}})
""")
    for row in rows:
        assert row["diff"] < tolerance, row
    assert rows[0]["buckets"] >= 2


def test_sync_batch_norm_on_three_ranks_equals_batch_norm_in_one_process(tmp_path):
    """Batch norm in training mode: with SyncBatchNorm, 3 ranks x 2 images compute what one process
    with BatchNorm computes on the 6 images: parameters and running statistics after 3 steps (float64)."""
    rows = run_ranks(tmp_path, 3, CNN_STEPS + """
SIDE, DTYPE = 5, "float64"

def cnn(seed):
    tg.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, dtype=DTYPE), nn.BatchNorm2d(4, dtype=DTYPE),
                         nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 6, dtype=DTYPE),
                         nn.BatchNorm1d(6, momentum=None, dtype=DTYPE), nn.Linear(6, 3, dtype=DTYPE))

net = nn.SyncBatchNorm.convert_sync_batchnorm(cnn(seed=r))
kinds = [type(m).__name__ for m in net]
ddp = DDP(net)
train(ddp, optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9), [r])
ref = cnn(seed=0)
train(ref, optim.SGD(ref.parameters(), lr=0.1, momentum=0.9), range(n))
ours, theirs = net.state_dict(), ref.state_dict()
diff = {k: float(abs(ours[k].double() - theirs[k].double()).max()) for k in theirs}
report({"rank": r, "diff": diff, "kinds": kinds})
""")
    for row in rows:
        assert max(row["diff"].values()) < 1e-10, row["diff"]
    assert rows[0]["kinds"][1] == rows[0]["kinds"][5] == "SyncBatchNorm"


def test_sync_batch_norm_without_a_process_group_is_batch_norm():
    import tinygrad_course as tg
    from tinygrad_course import nn
    tg.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))
    bn = model[1]
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    sync = converted[1]
    assert converted is model and isinstance(sync, nn.SyncBatchNorm)
    assert sync.weight is bn.weight and sync.running_mean is bn.running_mean  # shared, not copied
    x = tg.randn(4, 3, 6, 6)
    reference = nn.BatchNorm2d(3)
    np.testing.assert_allclose(sync(x).detach().numpy(), reference(x).detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(sync.running_var.numpy(), reference.running_var.numpy(), atol=1e-6)


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
    launcher = mpiexec()
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
    done = subprocess.run([launcher, "-n", "3", sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=90)
    assert done.returncode != 0 and time.monotonic() - start < 60
    output = done.stdout + done.stderr
    if failure == "raise":
        assert "ValueError: rank 1 broke" in output and "rank 1 of 3 stopped on ValueError" in output
    else:
        assert "Killed" in output or "signal 9" in output


# --- the Trainer and the recipes, distributed ---------------------------------------------------------
TRAINER_SETUP = """
import numpy as np
import tinygrad_course as tg
from tinygrad_course import nn, optim
from tinygrad_course.data import DataLoader
from tinygrad_course.training import Trainer

def make_trainer(out, distributed, batch_norm=False):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((48, 6)), rng.integers(0, 4, 48)
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16, dtype="float64"),
                          nn.BatchNorm1d(16, dtype="float64") if batch_norm else nn.Identity(),
                          nn.Tanh(), nn.Linear(16, 4, dtype="float64"))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    # each rank its own loader seed: the Trainer takes rank 0's, so the permutation is still seed 3's
    seed = 3 + (__import__("tinygrad_course.distributed").distributed.get_rank() if distributed else 0)
    return Trainer(model, opt, nn.functional.cross_entropy, DataLoader((x, y), batch_size=12, shuffle=True, seed=seed),
                   {"test": DataLoader((x[:20], y[:20]), batch_size=3)}, num_classes=4, out_dir=out,
                   show_progress=False, distributed=distributed, sync_batch_norm=distributed and batch_norm)

def finals(trainer):
    return {"params": [t.numpy().tolist() for t in trainer.model.state_dict().values()], "history": trainer.history}
"""


def _trainer_ranks(tmp_path, n, out, epochs, resume=False, batch_norm=False):
    rows = run_ranks(tmp_path, n, TRAINER_SETUP + f"""
trainer = make_trainer({str(out)!r}, distributed=True, batch_norm={batch_norm})
trainer.fit({epochs}, resume={resume})
report(dict(finals(trainer), rank=dist.get_rank()))
""")
    return rows


def _assert_same_run(row, reference):
    for ours, theirs in zip(row["params"], reference["params"]):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)
    assert len(row["history"]) == len(reference["history"])
    for ours, theirs in zip(row["history"], reference["history"]):
        for key in ("train_loss", "train_top1", "test_loss", "test_top1"):
            assert ours[key] == pytest.approx(theirs[key], abs=1e-10), key


def _single_process_reference(tmp_path, epochs, batch_norm=False):
    scope = {}
    exec(TRAINER_SETUP, scope)
    trainer = scope["make_trainer"](tmp_path / "reference", False, batch_norm)
    trainer.fit(epochs)
    return json.loads(json.dumps(scope["finals"](trainer)))


@pytest.mark.parametrize("n, drop_last", [(40, False), (40, True), (37, True)])
def test_training_shares_make_up_the_single_process_batches(n, drop_last):
    """Rank r's k-th batch of b samples is every N-th sample of the one-process loader's k-th batch of N*b
    (with drop_last, as many steps as one process: 37 samples, batch 8 -> 4 steps)."""
    from tinygrad_course.data import DataLoader
    from tinygrad_course.training import _training_share
    x = np.arange(float(n))
    loader = DataLoader((x, x), batch_size=8, shuffle=True, seed=5, drop_last=drop_last)
    firsts = []
    for epoch in (1, 2):
        shares = [_training_share(loader, r, 4) for r in range(4)]
        for d in (loader, *shares):
            d.set_epoch(epoch)
        whole = [b[0].numpy() for b in loader]
        parts = [[b[0].numpy() for b in share] for share in shares]
        assert all(len(p) == len(whole) for p in parts)
        for k, batch in enumerate(whole):
            assert sorted(np.concatenate([p[k] for p in parts])) == sorted(batch)
            np.testing.assert_array_equal(parts[1][k], batch[1::4])
        firsts.append(whole[0])
    assert not np.array_equal(*firsts)  # reshuffled per epoch


def test_training_share_refuses_a_batch_the_ranks_cannot_divide():
    from tinygrad_course.data import DataLoader
    from tinygrad_course.training import SettingsError, _evaluation_share, _training_share
    with pytest.raises(SettingsError, match=r"batch size 128 is the global batch, shared by 3 ranks.*126, 129"):
        _training_share(DataLoader((np.zeros(300), np.zeros(300)), batch_size=128), 0, 3)
    with pytest.raises(SettingsError, match="DistributedSampler"):
        _training_share(DataLoader(np.zeros(10), sampler=[1, 2]), 0, 2)
    with pytest.raises(SettingsError, match="without shuffle, drop_last"):
        _evaluation_share("test", DataLoader((np.zeros(10), np.zeros(10)), batch_size=3, drop_last=True), 0, 2)


def test_trainer_on_two_ranks_equals_one_process(tmp_path):
    reference = _single_process_reference(tmp_path, 2)
    rows = _trainer_ranks(tmp_path, 2, tmp_path / "run", 2)
    for row in rows:  # every rank holds the same model and the global metrics
        _assert_same_run(row, reference)
    assert rows[0]["history"][-1]["ranks"] == 2
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["history"][-1]["ranks"] == 2


def test_trainer_with_sync_batch_norm_on_three_ranks_equals_one_process(tmp_path):
    """Batch norm in training mode, SyncBatchNorm: parameters, running statistics and metrics of one process."""
    reference = _single_process_reference(tmp_path, 2, batch_norm=True)
    for row in _trainer_ranks(tmp_path, 3, tmp_path / "run", 2, batch_norm=True):
        _assert_same_run(row, reference)


@pytest.mark.parametrize("ranks", [1, 4])
def test_resume_on_another_number_of_ranks(tmp_path, ranks):
    """A checkpoint written by 2 ranks after epoch 1, resumed on 1 or 4 ranks to epoch 2: the same
    parameters and metrics as one uninterrupted process (the global batches do not depend on N)."""
    reference = _single_process_reference(tmp_path, 2)
    _trainer_ranks(tmp_path, 2, tmp_path / "run", 1)
    rows = _trainer_ranks(tmp_path, ranks, tmp_path / "run", 2, resume=True)
    for row in rows:
        _assert_same_run(row, reference)
    assert [r["ranks"] for r in rows[0]["history"]] == [2, ranks]


def test_a_stale_checkpoint_on_one_rank_stops_every_rank(tmp_path):
    """Resume where rank 1 sees another checkpoint than rank 0 (a folder that is not shared): every rank
    stops with the message, none trains on."""
    scope = {}
    exec(TRAINER_SETUP, scope)
    for name, epochs in (("shared", 1), ("stale", 2)):
        scope["make_trainer"](tmp_path / name, False).fit(epochs)
    script = TRAINER_SETUP + f"""
import tinygrad_course.distributed as dist
from tinygrad_course.training import SettingsError
dist.init_process_group()
out = {str(tmp_path / "shared")!r} if dist.get_rank() == 0 else {str(tmp_path / "stale")!r}
trainer = make_trainer(out, distributed=True)
try:
    trainer.fit(3, resume=True)
except SettingsError as e:
    print("STOPPED", dist.get_rank(), e, flush=True)
"""
    done = subprocess.run([mpiexec(), "-n", "2", sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("STOPPED") == 2 and "different checkpoints (rank 0: after epoch 1; " in done.stdout


def test_evaluate_on_one_rank_needs_no_other_rank(tmp_path):
    """Trainer.evaluate(loader) of a distributed trainer is this rank's alone (no collective): rank 0 can
    evaluate by itself while the others go on."""
    rows = run_ranks(tmp_path, 2, TRAINER_SETUP + """
trainer = make_trainer(None, distributed=True)
trainer.fit(1)
metrics = None
if dist.get_rank() == 0:
    x = np.random.default_rng(1).standard_normal((10, 6))
    metrics = trainer.evaluate(DataLoader((x, np.zeros(10, np.int64)), batch_size=4))
dist.barrier()
report({"rank": dist.get_rank(), "metrics": metrics})
""")
    assert rows[0]["metrics"]["loss"] > 0 and rows[1]["metrics"] is None


def test_distributed_recipe_from_the_command_line(tmp_path):
    """`mpiexec -n 2 python -m tinygrad_course train mnist-mlp --distributed`: one writer, one summary,
    and a resume on 1 rank; without --distributed under mpiexec the command says what to add."""
    launcher = mpiexec()
    from data_writers import write_mnist
    write_mnist(tmp_path / "data" / "mnist", n_train=48, n_test=16)
    args = ["-m", "tinygrad_course", "train", "mnist-mlp", "--data-root", str(tmp_path / "data"),
            "--out", str(tmp_path / "run"), "--batch-size", "16", "--no-plots"]

    def launch(n, *extra):
        return subprocess.run([launcher, "-n", str(n), sys.executable, *args, *extra], capture_output=True,
                              text=True, timeout=180)
    done = launch(2, "--epochs", "1", "--distributed")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("mnist-mlp (backend") == 1  # rank 0 alone reports
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["final"]["ranks"] == 2 and summary["epochs"] == 1
    done = launch(1, "--epochs", "2", "--distributed", "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed from" in done.stdout
    assert [row["ranks"] for row in json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]] == [2, 1]
    done = launch(2, "--epochs", "1")
    assert done.returncode == 2 and "add --distributed" in done.stderr
    done = launch(2, "--epochs", "1", "--distributed", "--batch-size", "15")
    assert done.returncode == 2 and "divisible by 2" in done.stderr and "Traceback" not in done.stderr
