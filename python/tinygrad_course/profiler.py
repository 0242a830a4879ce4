"""Where a step's time goes: every op and every backend primitive, the kernel that ran, and how close
it came to the machine's peak.

    with tinygrad_course.profile() as prof:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    print(prof.table())                      # sort_by="total", group_by="op" (or "shape")
    prof.export_chrome_trace("trace.json")   # chrome://tracing, ui.perfetto.dev

What is recorded, per call: the op (a Function's forward, or its backward) or the primitive (a backend
method: matmul, conv2d, its gradients, pooling, norms, cross-entropy, relu) with its input shapes and
dtype, wall time (the GPU synchronised before and after on "cuda"), and where it ran:
  native <isa> [algorithm]  our C++ kernel (conv: the algorithm "auto" picks for that geometry, from
                            _C.conv2d_algorithms; a NaN/Inf operand can still send it to gemm at run time)
  numpy                     the NumPy reference backend, chosen (set_backend("numpy"))
  numpy FALLBACK            the reference running for another backend: a primitive without a kernel
                            there, or one whose guard (dtype, layout) sent it back. strict=True raises.
  cuda [kernels]            our CUDA kernels (emulated on the CPU with TINYGRAD_COURSE_CUDA_EMULATE=1)
Ops that call no primitive (elementwise ops, reductions, reshapes) run in NumPy (CuPy on "cuda") by
design; their row says so. Primitives count FLOPs (matmul 2mnk, convolutions 2 x output x C/g x KH x KW,
each gradient the same) and the others compulsory bytes (inputs read once, outputs written once), so
a row gives GFLOP/s or GB/s and % of the machine's measured FMA peak or triad bandwidth
(machine.peaks(): measured once per machine and cached; CPU only).

How: entering a profile wraps Function.apply, every Function's backward and the backends' primitives;
leaving restores them. With no profile active nothing is added to any call. While one is active each
call costs a few microseconds more (stated in the README); one profile at a time, on the thread that
entered it (other threads' calls are not recorded).
"""
from __future__ import annotations

import contextlib
import importlib
import json
import os
import threading
import time
from dataclasses import dataclass, field

from .backend.cuda import _cuda as _cuda_state  # the CUDA runtime, once "cuda" was used
from .backend.numpy_backend import NumpyBackend
from .tensor import Function, Tensor

tensor_module = importlib.import_module(".tensor", __package__)  # (the package's `tensor` is the function)

__all__ = ["profile", "Profile", "Event", "FallbackError", "write_report", "record_function", "ProfilerActivity"]

PRIMITIVES = tuple(name for name, value in vars(NumpyBackend).items() if not name.startswith("_") and callable(value))


class FallbackError(RuntimeError):
    """In a strict profile: a primitive ran in the NumPy reference for another backend."""


@dataclass
class Event:
    name: str                 # op class name, or primitive name
    kind: str                 # "op", "primitive", or "region" (record_function)
    phase: str                # "forward" or "backward" (a primitive: the phase of the op around it)
    shapes: tuple             # shapes of the array/Tensor inputs
    dtype: object             # a NumPy dtype (str() of it is slow: done when reporting)
    start_ns: int
    ran_on: str = ""          # see the module docstring
    dur_ns: int = 0
    flops: int = 0            # primitives that compute: 2 per multiply-add
    bytes: int = 0            # compulsory traffic of the others
    depth: int = 0
    fallback: bool = False
    kernels: list = field(default_factory=list)  # CUDA kernels launched inside
    ctx_id: int | None = None  # a backward op: its node (super().backward() is the same call)
    in_op: bool = False       # opened inside an op (its time is part of that op's)


class Profile:
    """The record of one `with profile():` block; see the module docstring."""

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.events: list[Event] = []
        self.wall_ns = 0
        self._stack: list[Event] = []
        self._phase = "forward"
        self._thread = None
        self._restore = []
        self._t0 = 0
        self._peaks = None
        self._algorithms = {}

    # --- recording ------------------------------------------------------------------------------
    def __enter__(self):
        global _active
        if _active is not None:
            raise RuntimeError("profile(): a profile is already active; nest the code in the open one")
        if self._thread is not None:
            raise RuntimeError("profile(): this profile has recorded its block already; use a new profile()")
        _active, self._thread = self, threading.get_ident()
        try:
            try:
                from . import _C
                self._isa = _C.isa()
            except ImportError:  # no native backend to name
                self._isa = ""
            self._patch()
        except BaseException:  # a partial patch must not outlive a failed start
            self._unpatch()
            raise
        self._t0 = time.perf_counter_ns()
        return self

    def __exit__(self, *exc):
        try:
            self._sync()  # on "cuda" this may raise the block's kernel fault: restore anyway
        finally:
            self.wall_ns = time.perf_counter_ns() - self._t0
            self._unpatch()
        return False

    def _unpatch(self):
        global _active
        for owner, name, original in reversed(self._restore):
            setattr(owner, name, original)
        self._restore.clear()
        tensor_module._new_function_hook = None
        _active = None

    def _patch(self):
        apply = Function.__dict__["apply"].__func__

        def profiled_apply(cls, *args, **kwargs):
            if not self._mine():
                return apply(cls, *args, **kwargs)
            event = self._open(cls.__name__, "op", args)
            try:
                out = apply(cls, *args, **kwargs)
            finally:
                self._close(event)
            event.dtype = out.dtype
            if not event.flops and not cls.is_view:  # a view moves no data
                event.bytes = _nbytes(args) + out._data.nbytes
            return out
        self._set(Function, "apply", classmethod(profiled_apply))
        for cls in _subclasses(Function):
            self._wrap_backward(cls)
        tensor_module._new_function_hook = self._wrap_backward  # ops defined while the profile is active
        for backend in _backend_classes():
            for name in PRIMITIVES:
                if name in backend.__dict__:
                    self._set(backend, name, self._primitive_wrapper(backend, name, backend.__dict__[name]))
            if "_launch" in backend.__dict__:  # CUDA: which kernels a primitive launched
                self._set(backend, "_launch", self._launch_wrapper(backend.__dict__["_launch"]))

    def _wrap_backward(self, cls):
        if "backward" in cls.__dict__:
            self._set(cls, "backward", self._backward_wrapper(cls.__dict__["backward"]))

    def _set(self, owner, name, value):
        self._restore.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, value)

    def _mine(self) -> bool:
        return threading.get_ident() == self._thread

    def _backward_wrapper(self, backward):
        def profiled_backward(ctx, grad):
            top = self._stack[-1] if self._stack else None
            if not self._mine() or (top is not None and top.ctx_id == id(ctx)):  # super().backward(): one call
                return backward(ctx, grad)
            op, view = type(ctx).__name__, type(ctx).is_view  # the class of the node, not of the method
            outer, self._phase = self._phase, "backward"
            event = self._open(op, "op", (grad,) + tuple(p for p in (ctx.parents or ()) if p is not None))
            event.ctx_id = id(ctx)
            event.dtype = getattr(grad, "dtype", "")
            try:
                grads = backward(ctx, grad)
            finally:
                self._close(event)
                self._phase = outer
            if not event.flops and not view:  # a view's gradient is a view too: no traffic
                event.bytes = _nbytes((grad,)) + _nbytes(grads if isinstance(grads, tuple) else (grads,))
            return grads
        return profiled_backward

    def _primitive_wrapper(self, backend, name, method):
        reference = backend is NumpyBackend

        def profiled_primitive(backend_self, *args, **kwargs):
            if not self._mine():
                return method(backend_self, *args, **kwargs)
            outer = self._stack[-1] if self._stack else None
            if outer is not None and outer.kind == "primitive":
                if reference and outer.name == name and not outer.ran_on.startswith("numpy"):
                    # a kernel's guard handing the call to the reference (super().name(...)): one call, relabelled
                    outer.ran_on, outer.fallback = "numpy FALLBACK", True
                    if self.strict:
                        raise self._fallback_error(backend_self, outer)
                return method(backend_self, *args, **kwargs)  # part of the outer primitive's time
            event = self._open(name, "primitive", args)
            event.dtype = next((a.dtype for a in args if hasattr(a, "dtype")), "")
            event.ran_on = self._ran_on(backend_self, name, args, reference)
            if event.fallback and self.strict:
                self._close(event)
                raise self._fallback_error(backend_self, event)
            try:
                out = method(backend_self, *args, **kwargs)
            finally:
                self._close(event)
            event.flops = _flops(name, args, out)
            if not event.flops:
                event.bytes = _nbytes(args) + _nbytes(out if isinstance(out, tuple) else (out,))
            op = next((e for e in reversed(self._stack) if e.kind == "op"), None)
            if op is not None:  # an op that computes is measured by its FLOPs, not its bytes
                op.flops += event.flops
            return out
        return profiled_primitive

    @staticmethod
    def _fallback_error(backend_self, event) -> FallbackError:
        return FallbackError(f"{event.name} ran in the NumPy reference on the {_backend_name(backend_self)} backend "
                             f"(inputs {[tuple(s) for s in event.shapes]}, {event.dtype}): no kernel there for "
                             "this call, or its guard (dtype, layout) sent it back")

    def _launch_wrapper(self, launch):
        def profiled_launch(backend_self, module, name, *args):
            if self._mine() and self._stack:
                self._stack[-1].kernels.append(f"{module}.{name}")
            return launch(backend_self, module, name, *args)
        return profiled_launch

    def _ran_on(self, backend_self, name, args, reference) -> str:
        if reference and type(backend_self) is not NumpyBackend:  # inherited: no kernel of that backend
            self._stack[-1].fallback = True
            return "numpy FALLBACK"
        if reference:
            return "numpy"
        kind = _backend_name(backend_self)
        if kind == "native":
            where = f"native {self._isa}"
            if name.startswith("conv2d"):
                return f"{where} {self._conv_algorithm(name, args)}"
            return f"{where} gemm" if name == "matmul" else where
        return kind

    def _conv_algorithm(self, name, args) -> str:
        if name == "conv2d":
            x, w, _b, stride, padding, dilation, groups = args[:7]
            x_shape, w_shape, dtype = x.shape, w.shape, x.dtype
        elif name == "conv2d_grad_input":
            gy, w, x_shape, stride, padding, dilation, groups = args[:7]
            w_shape, dtype = w.shape, gy.dtype
        else:
            gy, x, w_shape, stride, padding, dilation, groups = args[:7]
            x_shape, dtype = x.shape, gy.dtype
        key = (tuple(x_shape), tuple(w_shape), tuple(stride), tuple(padding), tuple(dilation), int(groups), str(dtype))
        if key not in self._algorithms:
            from . import _C
            try:
                self._algorithms[key] = _C.conv2d_algorithms(*key)
            except (TypeError, ValueError):  # a dtype or geometry the kernels refuse: the call will say so
                self._algorithms[key] = {}
        part = {"conv2d": "forward"}.get(name, name[len("conv2d_"):])
        return self._algorithms[key].get(part, "")

    def _open(self, name, kind, args) -> Event:
        self._sync()
        event = Event(name, kind, self._phase, _shapes(args), "", time.perf_counter_ns() - self._t0,
                      depth=len(self._stack), in_op=any(e.kind == "op" for e in self._stack))
        if kind == "op":
            event.ran_on = "cuda" if _on_cuda(args) else "numpy"  # until a primitive inside says otherwise
        self._stack.append(event)
        self.events.append(event)
        return event

    def _close(self, event):
        self._sync()
        event.dur_ns = time.perf_counter_ns() - self._t0 - event.start_ns
        if self._stack[-1] is event:
            self._stack.pop()
        else:  # a region closed out of order (its `with` left while another was open)
            self._stack.remove(event)
        if event.kind == "primitive" and self._stack and self._stack[-1].kind == "op":
            op = self._stack[-1]  # an op is labelled by its primitives: "numpy" would hide a kernel
            if op.ran_on in ("numpy", "cuda") or event.fallback:
                op.ran_on = event.ran_on
            elif not op.fallback:  # e.g. a conv backward whose two gradients use different algorithms
                op.ran_on = _merged(op.ran_on, event.ran_on)
            op.fallback = op.fallback or event.fallback

    def _sync(self):
        """Wait for the GPU, so that a "cuda" call's time is its own (nothing to do on the CPU)."""
        runtime = _cuda_state.get("runtime")
        if runtime is not None:
            runtime.synchronize()

    # --- reports --------------------------------------------------------------------------------
    def step(self) -> None:
        """torch.profiler's step() for schedules: there are none here, so nothing to do."""

    def key_averages(self, group_by_input_shape: bool = False) -> "_KeyAverages":
        """torch.profiler's `prof.key_averages().table(sort_by=..., row_limit=...)`: this profile's
        table, by op (or op and input shape)."""
        return _KeyAverages(self, "shape" if group_by_input_shape else "op")

    def peaks(self) -> dict:
        """The machine's FMA peak and bandwidth the "% peak" column divides by (measured once per machine)."""
        if self._peaks is None:
            from .machine import peaks
            self._peaks = peaks()
        return self._peaks

    def fallbacks(self) -> list[Event]:
        """The primitive calls that ran in the reference for another backend."""
        return [e for e in self.events if e.kind == "primitive" and e.ran_on == "numpy FALLBACK"]

    def rows(self, group_by: str = "op") -> list[dict]:
        """Events grouped by (kind, phase, name, where it ran) and, for group_by="shape", input shapes."""
        if group_by not in ("op", "shape"):
            raise ValueError(f"group_by must be 'op' or 'shape', got {group_by!r}")
        groups: dict[tuple, dict] = {}
        for e in self.events:
            key = (e.kind, e.phase, e.name, e.ran_on, str(e.dtype)) + ((e.shapes,) if group_by == "shape" else ())
            row = groups.setdefault(key, {"name": e.name, "kind": e.kind, "phase": e.phase, "ran_on": e.ran_on,
                                          "shapes": e.shapes if group_by == "shape" else None, "dtype": str(e.dtype),
                                          "calls": 0, "total_ns": 0, "flops": 0, "bytes": 0, "kernels": set()})
            row["calls"] += 1
            row["total_ns"] += e.dur_ns
            row["flops"] += e.flops
            row["bytes"] += e.bytes
            row["kernels"].update(e.kernels)
        return list(groups.values())

    def table(self, sort_by: str = "total", group_by: str = "op", limit: int | None = 40,
              peak: bool = True) -> str:
        """The familiar table: one row per op or primitive (and shape), slowest first. sort_by "total",
        "mean", "calls" or "name"; peak=False skips the peak measurement (and the "% peak" column)."""
        keys = {"total": lambda r: -r["total_ns"], "mean": lambda r: -r["total_ns"] / r["calls"],
                "calls": lambda r: -r["calls"], "name": lambda r: r["name"]}
        if sort_by not in keys:
            raise ValueError(f"sort_by must be one of {sorted(keys)}, got {sort_by!r}")
        rows = sorted(self.rows(group_by), key=keys[sort_by])
        machine = self.peaks() if peak and not self._on_gpu() else {}
        top = sum(e.dur_ns for e in self.events if e.kind == "op" and not e.in_op)
        head = ["name", "phase", "ran on", "calls", "total ms", "mean ms", "% wall", "GFLOP/s", "GB/s", "% peak"]
        if group_by == "shape":
            head.insert(3, "input shapes")
        lines = []
        for r in rows[:limit]:
            seconds = r["total_ns"] / 1e9
            gflops = r["flops"] / seconds / 1e9 if r["flops"] and seconds else None
            gbps = r["bytes"] / seconds / 1e9 if r["bytes"] and seconds else None
            fma = machine.get("gflops") and machine["gflops"] / (2 if r["dtype"] == "float64" else 1)  # half the lanes
            pct = (gflops / fma if gflops and fma else
                   gbps / machine["gbps"] if gbps and machine.get("gbps") else None)
            name = "  " + r["name"] if r["kind"] == "primitive" else r["name"]  # primitives indented under ops
            ran_on = r["ran_on"] + (f" ({', '.join(sorted(r['kernels']))})" if r["kernels"] else "")
            cells = [name, r["phase"], ran_on, str(r["calls"]), f"{1e3 * seconds:.3f}",
                     f"{1e3 * seconds / r['calls']:.3f}", f"{100 * r['total_ns'] / max(self.wall_ns, 1):.1f}",
                     _fmt(gflops), _fmt(gbps), "-" if pct is None else f"{100 * pct:.0f}"]
            if group_by == "shape":
                cells.insert(3, " ".join("x".join(map(str, s)) for s in r["shapes"]) + f" {r['dtype']}")
            lines.append(cells)
        widths = [max(len(h), *(len(c[i]) for c in lines)) if lines else len(h) for i, h in enumerate(head)]
        out = ["  ".join(h.ljust(w) if i < 3 + (group_by == "shape") else h.rjust(w)
                         for i, (h, w) in enumerate(zip(head, widths)))]
        out.append("  ".join("-" * w for w in widths))
        for cells in lines:
            out.append("  ".join(c.ljust(w) if i < 3 + (group_by == "shape") else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))))
        out.append(f"wall {self.wall_ns / 1e6:.1f} ms; in ops {top / 1e6:.1f} ms "
                   f"({100 * top / max(self.wall_ns, 1):.0f} %); the rest is Python, the autograd engine "
                   "(gradient accumulation) and data loading. Primitives (indented) are part of their op's time.")
        if machine:
            out.append(f"% peak: of {machine.get('gflops') or '-'} GFLOP/s (FMA) or {machine.get('gbps') or '-'} "
                       f"GB/s (triad), {machine.get('threads')} threads, {machine.get('isa')}, {machine.get('cpu')}; "
                       "float64 against half the FMA peak; over 100 % of the bandwidth: the data came from the caches")
        if len(rows) > (limit or len(rows)):
            out.append(f"({len(rows) - limit} more rows: table(limit=None))")
        return "\n".join(out)

    def _on_gpu(self) -> bool:
        return any(e.ran_on.startswith("cuda") for e in self.events)

    def export_chrome_trace(self, path) -> None:
        """Write the events in the Trace Event Format (complete "X" events, microseconds), which
        chrome://tracing and ui.perfetto.dev open; written atomically."""
        from .checkpoint import write_atomically
        events = [{"name": e.name, "cat": f"{e.kind},{e.phase}", "ph": "X", "ts": e.start_ns / 1e3,
                   "dur": e.dur_ns / 1e3, "pid": 1, "tid": 1,
                   "args": {"shapes": [list(s) for s in e.shapes], "dtype": str(e.dtype), "ran_on": e.ran_on,
                            "flops": e.flops, "bytes": e.bytes, **({"kernels": e.kernels} if e.kernels else {})}}
                  for e in self.events]
        meta = [{"name": "process_name", "ph": "M", "pid": 1, "tid": 1, "args": {"name": "tinygrad_course"}},
                {"name": "thread_name", "ph": "M", "pid": 1, "tid": 1, "args": {"name": "profiled thread"}}]
        document = {"traceEvents": meta + events, "displayTimeUnit": "ms"}
        write_atomically(path, lambda f: json.dump(document, f), "w")


_active: Profile | None = None


def write_report(prof: Profile, title: str, folder=None) -> tuple[str, list[str]]:
    """The report of a profile (`--profile`): the table by op, then by op and shape, under `title`;
    written to folder/profile.txt with the trace in folder/trace.json (atomically) when a folder is
    given. Returns (the by-op part, to print; the paths written)."""
    from .checkpoint import write_atomically
    by_op = f"{title}, by op:\n{prof.table()}"
    paths = []
    if folder is not None:
        os.makedirs(folder, exist_ok=True)
        paths = [os.path.join(folder, "profile.txt"), os.path.join(folder, "trace.json")]
        text = f"{by_op}\n\nBy op and input shape:\n{prof.table(group_by='shape', limit=None)}\n"
        write_atomically(paths[0], lambda f: f.write(text), "w")
        prof.export_chrome_trace(paths[1])
    return by_op, paths


def profile(activities=None, *, strict: bool = False, record_shapes: bool = False, profile_memory: bool = False,
            with_stack: bool = False, with_flops: bool = False, schedule=None, on_trace_ready=None) -> Profile:
    """A profile to use as a context manager (see the module docstring). strict=True raises
    FallbackError as soon as a primitive runs in the NumPy reference for another backend.

    torch.profiler.profile's arguments are taken for PyTorch scripts: activities (what runs is recorded,
    CPU and CUDA alike), record_shapes and with_flops (always on), profile_memory and with_stack (not
    recorded). schedule and on_trace_ready are refused: profile the steps you want inside the block."""
    if schedule is not None or on_trace_ready is not None:
        raise ValueError("profile(): schedule and on_trace_ready are not supported; put the steps to profile "
                         "inside the block and call prof.export_chrome_trace(path) after it")
    return Profile(strict=strict)


class ProfilerActivity:
    """torch.profiler.ProfilerActivity's names (profile() records whatever runs)."""
    CPU, CUDA = "cpu", "cuda"


class record_function(contextlib.ContextDecorator):
    """A named region of the profile, as torch.profiler.record_function: `with record_function("data"):`.
    It shows as a row (ran on "region") and as an event around its ops in the trace; without an active
    profile it does nothing."""

    def __init__(self, name: str):
        self.name, self._event, self._profile = str(name), None, None

    def __enter__(self):
        if _active is not None and _active._mine():
            self._profile = _active
            self._event = _active._open(self.name, "region", ())
            self._event.ran_on = "region"
        return self

    def __exit__(self, *exc):
        if self._event is not None:
            self._profile._close(self._event)
            self._event = self._profile = None
        return False


class _KeyAverages:
    def __init__(self, prof: Profile, group_by: str):
        self.prof, self.group_by = prof, group_by

    def table(self, sort_by: str | None = None, row_limit: int = 100, **unused) -> str:
        """torch's sort keys: "count" sorts by calls; the time keys (cpu_time_total, cuda_time_total,
        self_cpu_time_total, ...) by total time, the one time measured here."""
        return self.prof.table(sort_by="calls" if sort_by == "count" else "total", group_by=self.group_by,
                               limit=row_limit)

    def __str__(self):
        return self.table()


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _backend_classes():
    classes = [NumpyBackend]
    try:
        from .backend.native import NativeBackend
        classes.append(NativeBackend)
    except ImportError:  # no compiled extension
        pass
    from .backend.cuda import CudaBackend
    classes.append(CudaBackend)
    return classes


def _backend_name(backend) -> str:
    return getattr(backend, "name", type(backend).__name__)


def _arrays(args) -> list:
    return [a._data if isinstance(a, Tensor) else a for a in args
            if isinstance(a, Tensor) or (hasattr(a, "nbytes") and hasattr(a, "shape"))]


def _shapes(args) -> tuple:
    return tuple([a.shape for a in _arrays(args)])


def _nbytes(args) -> int:
    return sum([a.nbytes for a in _arrays(args)])


def _on_cuda(args) -> bool:
    return any(isinstance(a, Tensor) and a.device == "cuda" for a in args)


def _flops(name, args, out) -> int:
    """2 per multiply-add of the primitives that compute (0 for the memory-bound ones)."""
    if name == "matmul":
        return 2 * int(out.size) * int(args[0].shape[-1])
    if name == "conv2d":
        w = args[1].shape
        return 2 * int(out.size) * int(w[1] * w[2] * w[3])
    if name == "conv2d_grad_input":
        w = args[1].shape
        return 2 * int(args[0].size) * int(w[1] * w[2] * w[3])
    if name == "conv2d_grad_weight":
        w = args[2]
        return 2 * int(args[0].size) * int(w[1] * w[2] * w[3])
    return 0


def _merged(label: str, other: str) -> str:
    """One op's primitives ran in several places: "native avx2 direct" + "native avx2 direct_channels"
    gives "native avx2 direct + direct_channels"."""
    parts = label.split(" + ")
    head = " ".join(parts[0].split()[:2]) + " "  # "native avx2 "
    tail = other[len(head):] if other.startswith(head) else other
    return label if tail in parts or other == parts[0] else f"{label} + {tail}"


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.1f}" if value >= 10 else f"{value:.2f}"
