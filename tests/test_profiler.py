"""tinygrad_course.profile: counts, FLOPs and bytes against known values, where each call ran (native
kernel and algorithm, the reference, a fallback), strict mode, the tables, the Chrome trace against the
Trace Event Format, nothing left wrapped after the block, and the Trainer's --profile output."""
from __future__ import annotations

import json

import numpy as np
import pytest

import tinygrad_course as tg
from tinygrad_course import nn, profiler
from tinygrad_course.backend import available_backends, use_backend
from tinygrad_course.backend.numpy_backend import NumpyBackend

BACKENDS = available_backends()
PEAKS = {"gflops": 100.0, "gbps": 10.0, "threads": 1, "isa": "test", "cpu": "test machine"}


@pytest.fixture(autouse=True)
def known_peaks(monkeypatch):
    """The tables' "% peak" divides by these, instead of probing this machine (and writing its cache)."""
    monkeypatch.setattr(profiler.Profile, "peaks", lambda self: dict(PEAKS))


def _primitives(prof, name=None):
    return [e for e in prof.events if e.kind == "primitive" and (name is None or e.name == name)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_forward_and_backward_counts_and_flops(backend):
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.standard_normal((2, 3, 8, 8)), dtype="float32", requires_grad=True)
    w = tg.tensor(rng.standard_normal((4, 3, 3, 3)), dtype="float32", requires_grad=True)
    with use_backend(backend), tg.profile() as prof:
        nn.functional.conv2d(x, w, padding=1).sum().backward()
    flops = 2 * (2 * 4 * 8 * 8) * (3 * 3 * 3)  # 2 x output elements x C x KH x KW = 27648
    for name in ("conv2d", "conv2d_grad_input", "conv2d_grad_weight"):
        (event,) = _primitives(prof, name)
        assert event.flops == flops and event.dtype == np.float32
        if backend == "native":
            from tinygrad_course import _C
            algorithm = _C.conv2d_algorithms((2, 3, 8, 8), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1)
            part = "forward" if name == "conv2d" else name[len("conv2d_"):]
            assert event.ran_on == f"native {_C.isa()} {algorithm[part]}"
        else:
            assert event.ran_on == "numpy"
    ops = [(e.name, e.phase) for e in prof.events if e.kind == "op"]
    assert ops.count(("Conv2d", "forward")) == 1 and ops.count(("Conv2d", "backward")) == 1
    conv_backward = next(e for e in prof.events if e.kind == "op" and e.name == "Conv2d" and e.phase == "backward")
    assert conv_backward.flops == 2 * flops  # an op counts the FLOPs of its primitives
    assert not prof.fallbacks()


@pytest.mark.parametrize("backend", BACKENDS)
def test_gemm_flops_and_bytes_of_a_memory_bound_primitive(backend):
    a = tg.randn(64, 32, requires_grad=True)
    b = tg.randn(32, 16, requires_grad=True)
    with use_backend(backend), tg.profile() as prof:
        (a @ b).relu().sum().backward()
    matmuls = _primitives(prof, "matmul")
    assert [e.phase for e in matmuls] == ["forward", "backward", "backward"]
    assert all(e.flops == 2 * 64 * 32 * 16 for e in matmuls)  # the two gradients cost as much as the product
    (relu,) = _primitives(prof, "relu")
    assert relu.flops == 0 and relu.bytes == 2 * 64 * 16 * 4  # float32 in once, out once


def test_a_fallback_is_shown_and_strict_mode_raises():
    if "native" not in BACKENDS:
        pytest.skip("needs the native backend")
    x = tg.tensor([1, -2, 3])  # int64: the native relu takes floats only
    with use_backend("native"), tg.profile() as prof:
        x.relu()
    (event,) = prof.fallbacks()
    assert event.name == "relu" and event.ran_on == "numpy FALLBACK" and len(_primitives(prof)) == 1
    assert "numpy FALLBACK" in prof.table(peak=False)
    with use_backend("native"), pytest.raises(profiler.FallbackError, match=r"relu ran in the NumPy reference on "
                                                                           r"the native backend .*int64"):
        with tg.profile(strict=True):
            x.relu()
    with use_backend("native"), tg.profile(strict=True):  # float32: the kernel runs, nothing raised
        tg.randn(3).relu()


def test_nothing_stays_wrapped_after_the_block():
    """No cost when off: leaving the block (normally or by an exception) restores the very functions."""
    from tinygrad_course.tensor import Function
    originals = {(cls, name): cls.__dict__[name] for cls in (Function, *profiler._subclasses(Function),
                                                              *profiler._backend_classes())
                 for name in ("apply", "backward", "_launch", *profiler.PRIMITIVES) if name in cls.__dict__}
    with pytest.raises(ZeroDivisionError):
        with tg.profile():
            tg.randn(2, 2, requires_grad=True).relu().sum().backward()
            1 / 0
    assert profiler._active is None
    for (cls, name), original in originals.items():
        assert cls.__dict__[name] is original, (cls, name)
    with tg.profile() as prof:
        with pytest.raises(RuntimeError, match="already active"):
            tg.profile().__enter__()
    assert prof.events == []


def test_tables_group_sort_and_check_their_arguments():
    model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    x = tg.randn(5, 8)
    with tg.profile() as prof:
        for _ in range(3):
            model(x).sum().backward()
    table = prof.table(peak=False)
    linear = next(line for line in table.splitlines() if line.startswith("Linear ") and " forward " in line)
    assert linear.split()[-7] == "6"  # calls: 2 layers x 3 steps in one row
    by_shape = prof.table(group_by="shape", peak=False)
    assert "5x8 4x8 4 float32" in by_shape and "5x4 2x4 2 float32" in by_shape
    names = [line.split()[0] for line in prof.table(sort_by="name", peak=False, limit=None).splitlines()[2:-1]]
    assert names == sorted(names)
    with pytest.raises(ValueError, match="sort_by must be one of"):
        prof.table(sort_by="cpu_time")
    with pytest.raises(ValueError, match="group_by must be 'op' or 'shape'"):
        prof.table(group_by="module")


def test_percent_of_peak_divides_by_the_cached_machine_peaks(monkeypatch, tmp_path):
    from tinygrad_course import machine
    monkeypatch.setenv("TINYGRAD_COURSE_CACHE_DIR", str(tmp_path))
    measured = []
    monkeypatch.setattr(machine, "measure_peak", lambda probe, threads, seconds=0.5: measured.append(1) or
                        {"gflops": 100.0})
    monkeypatch.setattr(machine, "measure_bandwidth", lambda probe, threads, mib=256: {"gbps": 10.0})
    monkeypatch.setattr(machine, "Probe", _NoProbe)
    assert machine.peaks(threads=1, isa="x")["gflops"] == 100.0
    assert machine.peaks(threads=1, isa="x")["gbps"] == 10.0 and measured == [1]  # the second comes from the cache
    a, b = tg.randn(256, 256), tg.randn(256, 256)
    with tg.profile() as prof:
        a @ b
    row = next(line for line in prof.table().splitlines() if line.startswith("  matmul"))
    (event,) = _primitives(prof, "matmul")
    gflops = event.flops / (event.dur_ns / 1e9) / 1e9
    assert row.split()[-1] == f"{gflops:.0f}"  # % of 100 GFLOP/s is the GFLOP/s figure itself


class _NoProbe:
    def __init__(self, isa=None):
        self.exe = "probe"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def _check_trace_event_format(document):
    """The JSON Object Format of the Trace Event Format (chrome://tracing, Perfetto): traceEvents with
    name/ph/pid/tid, complete events ("X") with ts/dur in microseconds, metadata events ("M"); events
    of one thread nest properly (a child inside its parent)."""
    assert isinstance(document, dict) and isinstance(document["traceEvents"], list)
    assert document.get("displayTimeUnit", "ms") in ("ms", "ns")
    complete = []
    for e in document["traceEvents"]:
        assert isinstance(e["name"], str) and e["ph"] in ("X", "M")
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name") and isinstance(e["args"]["name"], str)
            continue
        assert isinstance(e["ts"], (int, float)) and isinstance(e["dur"], (int, float)) and e["dur"] >= 0
        assert isinstance(e.get("cat", ""), str) and isinstance(e.get("args", {}), dict)
        complete.append((e["ts"], -e["dur"], e["ts"] + e["dur"]))
    open_ends = []
    for start, _, end in sorted(complete):
        while open_ends and open_ends[-1] <= start:
            open_ends.pop()
        assert not open_ends or end <= open_ends[-1] + 1e-3, "events overlap without nesting"
        open_ends.append(end)
    return complete


def test_chrome_trace_follows_the_trace_event_format(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    with tg.profile() as prof:
        nn.functional.cross_entropy(model(tg.randn(2, 1, 6, 6)), tg.tensor([0, 2])).backward()
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    complete = _check_trace_event_format(json.loads(path.read_text()))
    assert len(complete) == len(prof.events)
    conv = next(e for e in json.loads(path.read_text())["traceEvents"] if e["name"] == "conv2d")
    assert conv["args"]["shapes"][:2] == [[2, 1, 6, 6], [2, 1, 3, 3]] and conv["args"]["flops"] == 2 * 2 * 2 * 16 * 9


def test_emulated_cuda_calls_name_their_kernels(cuda):
    x = tg.randn(2, 3, 6, 6, device=cuda)
    w = tg.randn(4, 3, 3, 3, device=cuda)
    with tg.profile() as prof:
        nn.functional.conv2d(x, w, padding=1)
    (event,) = _primitives(prof, "conv2d")
    assert event.ran_on.startswith("cuda") and event.kernels and all("." in k for k in event.kernels)
    assert "(" in prof.table(peak=False)  # the kernels are listed in the row


def test_trainer_profile_writes_tables_and_a_trace(tmp_path, capsys):
    from tinygrad_course.data import DataLoader
    from tinygrad_course.training import PROFILE_WARMUP, Trainer
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 6)).astype(np.float32), rng.integers(0, 3, 64)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    trainer = Trainer(model, tg.optim.SGD(model.parameters(), lr=0.1), nn.functional.cross_entropy,
                      DataLoader((x, y), batch_size=8), out_dir=tmp_path, show_progress=False, profile_steps=3)
    trainer.fit(2)
    text = (tmp_path / "profile.txt").read_text()
    assert f"Profile of 3 training steps (after {PROFILE_WARMUP} warm-up steps)" in text and "By op and input" in text
    linear = next(line for line in text.splitlines() if line.startswith("Linear ") and " forward " in line)
    assert linear.split()[-7] == "6"  # 2 layers x 3 steps: only the profiled steps, only the first epoch
    _check_trace_event_format(json.loads((tmp_path / "trace.json").read_text()))
    assert "Profile of 3 training steps" in capsys.readouterr().out
    assert profiler._active is None


def test_numpy_reference_is_not_a_fallback_when_chosen():
    with use_backend("numpy"), tg.profile(strict=True) as prof:
        tg.randn(4, 4).relu()
    assert [e.ran_on for e in _primitives(prof)] == ["numpy"] and isinstance(NumpyBackend(), NumpyBackend)


def test_circles_profile_from_the_command_line(tmp_path, capsys):
    from tinygrad_course.cli import main
    out = tmp_path / "circles"
    assert main(["train", "circles", "--step", "nn", "--epochs", "1", "--n-samples", "40", "--profile", "2",
                 "--out", str(out), "--no-plots", "--quiet"]) == 0
    text = (out / "profile.txt").read_text()
    assert "Profile of 2 training steps of step 'nn' (after 2 warm-up steps)" in text
    linear = next(line for line in text.splitlines() if line.startswith("Linear ") and " forward " in line)
    assert linear.split()[-7] == "4"  # 2 layers x 2 steps
    _check_trace_event_format(json.loads((out / "trace.json").read_text()))
    with pytest.raises(SystemExit):
        main(["train", "circles", "--step", "manual", "--profile", "--out", str(tmp_path / "m")])
    assert "nothing to profile" in capsys.readouterr().err


def test_subclass_backward_is_named_by_its_node_and_counted_once():
    x = tg.randn(3, 4, requires_grad=True)
    y = tg.randn(3, 4, requires_grad=True)
    with tg.profile() as prof:
        x.min().backward()             # Min inherits Max's backward
        x.minimum(y).sum().backward()  # Minimum inherits Maximum's
        x.std().backward()             # Std's backward calls super().backward() (Var's)
    backward = [e.name for e in prof.events if e.kind == "op" and e.phase == "backward" and e.name != "Sum"]
    assert backward == ["Min", "Minimum", "Std"]


def test_an_op_defined_inside_the_block_is_profiled_and_left_alone_after():
    from tinygrad_course.tensor import Function
    x = tg.randn(3, requires_grad=True)
    with tg.profile() as prof:
        class Twice(Function):
            def forward(self, a):
                return a * 2

            def backward(self, g):
                return g * 2
        backward = Twice.__dict__["backward"]
        Twice.apply(x).sum().backward()
    assert [(e.name, e.phase) for e in prof.events if e.name == "Twice"] == [("Twice", "forward"), ("Twice", "backward")]
    assert Twice.__dict__["backward"] is not backward and Twice.__dict__["backward"].__name__ == "backward"


def test_a_failing_end_still_restores_everything(monkeypatch):
    from tinygrad_course.tensor import Function
    apply = Function.__dict__["apply"]

    class FaultyGpu:
        def synchronize(self):
            raise RuntimeError("an asynchronous kernel fault")
    monkeypatch.setitem(profiler._cuda_state, "runtime", FaultyGpu())
    with pytest.raises(RuntimeError, match="kernel fault"):
        with tg.profile():
            pass
    monkeypatch.delitem(profiler._cuda_state, "runtime")
    assert profiler._active is None and Function.__dict__["apply"] is apply
    with tg.profile() as prof:  # usable again
        tg.randn(2).relu()
    with pytest.raises(RuntimeError, match="recorded its block already"):
        prof.__enter__()


def test_a_primitive_called_by_a_primitive_is_part_of_it():
    with use_backend("numpy"), tg.profile() as prof:  # the reference batch_norm_train calls batch_norm_eval
        nn.BatchNorm2d(3)(tg.randn(4, 3, 5, 5))
    assert [e.name for e in _primitives(prof)] == ["batch_norm_train"]


def test_an_error_while_profiling_a_training_step_is_not_hidden(tmp_path):
    from tinygrad_course.data import DataLoader
    from tinygrad_course.training import Trainer
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 6)).astype(np.float32), rng.integers(0, 3, 64)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    calls = []

    def loss_fn(logits, target):
        calls.append(1)
        if len(calls) == 4:  # inside the profiled window (steps 3 to 7)
            raise ArithmeticError("the loss broke")
        return nn.functional.cross_entropy(logits, target)
    trainer = Trainer(model, tg.optim.SGD(model.parameters(), lr=0.1), loss_fn, DataLoader((x, y), batch_size=8),
                      out_dir=tmp_path, show_progress=False, profile_steps=5)
    with pytest.raises(ArithmeticError, match="the loss broke"):
        trainer.fit(1)
    assert profiler._active is None and not (tmp_path / "profile.txt").exists()


TORCH_STYLE = """
with profiler.profile(activities=[profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
    with profiler.record_function("model_inference"):
        model(x)
table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=10)
by_shape = prof.key_averages(group_by_input_shape=True).table(sort_by="count", row_limit=10)
"""


def test_torch_profiler_habits_work_unchanged():
    """The torch.profiler recipe from PyTorch's tutorial runs with only the import changed (checked
    against torch itself where it is installed)."""
    from tinygrad_course import profiler as ours
    scope = {"profiler": ours, "model": nn.Sequential(nn.Linear(8, 4), nn.ReLU()), "x": tg.randn(5, 8)}
    exec(TORCH_STYLE, scope)
    prof, table = scope["prof"], scope["table"]
    region = next(e for e in prof.events if e.kind == "region")
    inside = [e for e in prof.events if e.kind == "op" and e.depth == 1]
    assert region.name == "model_inference" and {e.name for e in inside} == {"Linear", "Relu"}
    assert all(region.start_ns <= e.start_ns and e.start_ns + e.dur_ns <= region.start_ns + region.dur_ns
               for e in inside)
    assert "model_inference" in table and len(table.splitlines()) <= 2 + 10 + 3
    assert "5x8 4x8 4 float32" in scope["by_shape"]
    assert "in ops" in table and not (profiler.record_function("idle").__enter__()._event)  # no profile: no-op
    torch = pytest.importorskip("torch")
    exec(TORCH_STYLE, {"profiler": torch.profiler, "model": torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU()),
                       "x": torch.randn(5, 8)})
    with pytest.raises(ValueError, match="schedule and on_trace_ready are not supported"):
        ours.profile(schedule=object())
