"""DistributedDataParallel: one replica of a model per rank, gradients averaged over the ranks during
backward, as torch.nn.parallel.DistributedDataParallel.

Algorithm (PyTorch's reducer, on MPI for CPU parameters and NCCL for "cuda" ones):
* at construction, parameters and buffers are broadcast from rank 0, so every replica starts equal;
* parameters are packed, in reverse order (roughly the order backward produces their gradients),
  into flat buckets of one dtype and device (NumPy arrays, or the CUDA runtime's on "cuda"): the first
  up to 1 MiB (or the cap, if smaller), the others up to `bucket_cap_mb`;
* when backward has accumulated a parameter's gradient (a post-accumulate hook), it is copied into
  its bucket (on "cuda": by a copy on the current stream); a full bucket starts its reduction at once,
  so communication overlaps the rest of backward: on the CPU a non-blocking MPI Iallreduce, on "cuda"
  an NCCL allreduce on a side stream that first waits for an event recorded on the current stream (the
  copies into the bucket are done before it reads them). Buckets start strictly in index order, the
  same on every rank (MPI and NCCL require the same order of collectives);
* when backward ends (a queued callback), buckets not started yet start (a parameter that got no
  gradient this step counts as zero: no rank waits for it, no hang), all are waited for (on "cuda":
  the current stream waits for the side stream, Python does not), divided by the world size and copied
  back into `.grad`.
Under `no_sync()` gradients only accumulate locally; the next synchronised backward averages the
accumulated `.grad`, as in PyTorch. On a real GPU the "cuda" path runs cupy.cuda.nccl and CUDA streams;
the tests run it under the CUDA emulation (see nccl.py), as no GPU is available to them.
"""
from __future__ import annotations

import contextlib
import time

import numpy as np

from ..device import cuda_runtime
from ..nn.module import Module
from ..tensor import Tensor, no_grad, queue_backward_callback
from . import _comm, _mpi, _nccl_group, broadcast, get_world_size

FIRST_BUCKET_BYTES = 1 << 20  # PyTorch's small first bucket: the reduction starts early


class _MpiSum:
    """How CPU buckets are summed: MPI's non-blocking Iallreduce, waited for by Python."""

    def __init__(self):
        self.xp, self.requests = np, []

    def start(self, flat):
        MPI = _mpi()
        self.requests.append(_comm().Iallreduce(MPI.IN_PLACE, flat, op=MPI.SUM))

    def progress(self):
        """Let MPI move the reductions in flight: MPICH advances a non-blocking collective only inside
        MPI calls (unless MPICH_ASYNC_PROGRESS=1), so without this they would wait for the end."""
        if self.requests:
            _mpi().Request.Testall(self.requests)

    def wait(self):
        _mpi().Request.Waitall(self.requests)
        self.requests = []


class _NcclSum:
    """How "cuda" buckets are summed: NCCL on the group's side stream, waited for by the current stream."""

    def __init__(self):
        self.xp, self.group = cuda_runtime().xp, _nccl_group()

    def start(self, flat):
        self.group.start_all_reduce(flat)

    def progress(self):  # the GPU moves NCCL's work by itself
        pass

    def wait(self):
        self.group.wait_started()


class _Bucket:
    def __init__(self, params, summer):
        self.params, self.summer = params, summer
        self.offsets = np.cumsum([0] + [p.numel() for p in params])
        self.flat = summer.xp.zeros(int(self.offsets[-1]), dtype=params[0].dtype)
        self.ready = set()

    def slot(self, i):
        return self.flat[self.offsets[i]:self.offsets[i + 1]]


class DistributedDataParallel(Module):
    """Wrap `module` for data-parallel training: forward is the module's; backward averages the
    gradients over the ranks. `bucket_cap_mb` sizes the buckets (results do not depend on it);
    `broadcast_buffers` re-sends rank 0's buffers (batch-norm statistics) before each forward, as
    PyTorch's default does. device_ids/output_device/find_unused_parameters are accepted for PyTorch's
    scripts (unused parameters are always handled)."""

    def __init__(self, module: Module, device_ids=None, output_device=None, broadcast_buffers: bool = True,
                 bucket_cap_mb: float = 25, find_unused_parameters: bool = False, **unused):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a Module, got {type(module).__name__}")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got {bucket_cap_mb!r}")
        _comm()  # the process group must exist
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self._sync = True
        with no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                broadcast(t, src=0)
        params = [p for p in module.parameters() if p.requires_grad]
        # one way to sum buckets per device of the parameters (sorted: the same order on every rank)
        self._summers = {d: _NcclSum() if d == "cuda" else _MpiSum() for d in sorted({p.device for p in params})}
        self._buckets = self._make_buckets(params[::-1], bucket_cap_mb * (1 << 20))
        self._where = {}
        for b, bucket in enumerate(self._buckets):
            for i, p in enumerate(bucket.params):
                self._where[id(p)] = (b, i)
                p.register_post_accumulate_grad_hook(self._grad_ready)
        self._next = 0           # the next bucket to start
        self._pending = False    # a reduction is under way in this backward
        self.buckets_started_during_backward = 0  # of the last step: the ones whose reduction overlapped
        self.last_wait_seconds = 0.0  # of the last step: waiting for the reductions after backward (exposed)

    def _make_buckets(self, params, cap_bytes):
        buckets, current, size, limit = [], [], 0, min(FIRST_BUCKET_BYTES, cap_bytes)
        for p in params:
            kind = (p.dtype, p.device)
            if current and (size + p._data.nbytes > limit or kind != (current[0].dtype, current[0].device)):
                buckets.append(_Bucket(current, self._summers[current[0].device]))
                current, size, limit = [], 0, cap_bytes
            current.append(p)
            size += p._data.nbytes
        if current:
            buckets.append(_Bucket(current, self._summers[current[0].device]))
        return buckets

    def forward(self, *args, **kwargs):
        if self.broadcast_buffers and self._sync:
            with no_grad():
                for b in self.module.buffers():
                    broadcast(b, src=0)
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Backward inside only accumulates gradients locally (gradient accumulation); the first
        backward outside averages what accumulated."""
        self._sync = False
        try:
            yield
        finally:
            self._sync = True

    # --- the reducer --------------------------------------------------------------------------
    def _grad_ready(self, p):
        if not self._sync:
            return
        if not self._pending:
            self._pending = True
            queue_backward_callback(self._finish)
        b, i = self._where[id(p)]
        bucket = self._buckets[b]
        bucket.slot(i)[...] = p.grad._data.reshape(-1)
        bucket.ready.add(i)
        self._start_ready()
        for summer in self._summers.values():
            summer.progress()

    def _start_ready(self, everything=False):
        """Start buckets in index order while the next one is complete (or, at the end, all of them)."""
        while self._next < len(self._buckets):
            bucket = self._buckets[self._next]
            if not everything and len(bucket.ready) < len(bucket.params):
                return
            for i in set(range(len(bucket.params))) - bucket.ready:  # no gradient this step: zero
                p = bucket.params[i]
                bucket.slot(i)[...] = 0 if p.grad is None else p.grad._data.reshape(-1)
            bucket.summer.start(bucket.flat)
            self._next += 1

    def _finish(self):
        self.buckets_started_during_backward = self._next
        self._start_ready(everything=True)
        n = get_world_size()
        t0 = time.perf_counter()
        for summer in self._summers.values():
            summer.wait()
        self.last_wait_seconds = time.perf_counter() - t0
        for bucket in self._buckets:
            bucket.flat /= n
            for i, p in enumerate(bucket.params):
                averaged = bucket.slot(i).reshape(p.shape)
                if p.grad is None:
                    p.grad = Tensor(averaged.copy(), device=p.device)
                else:
                    p.grad.copy_(averaged)
            bucket.ready.clear()
        self._next, self._pending = 0, False

    def buckets(self) -> list[list[str]]:
        """The parameter names of each bucket, in the order they are reduced (for inspection)."""
        names = {id(p): name for name, p in self.module.named_parameters()}
        return [[names[id(p)] for p in bucket.params] for bucket in self._buckets]
