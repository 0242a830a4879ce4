"""Collectives on "cuda" tensors through NCCL (cupy.cuda.nccl), one process per GPU.

Algorithm:
* the group is made the first time a "cuda" tensor meets a collective (or DDP meets "cuda"
  parameters), by every rank together: each rank selects its GPU, rank 0 asks NCCL for a unique id
  (`get_unique_id()`, 128 bytes), the id is broadcast over the MPI communicator as a NumPy int array
  (the buffer form `Bcast`, no pickling), and every rank makes `NcclCommunicator(world_size, id, rank)`.
  NCCL then connects the ranks by itself (NVLink, PCIe, InfiniBand, sockets);
* one process per GPU: a rank's local rank is its rank among the ranks on the same node
  (`comm.Split_type(MPI.COMM_TYPE_SHARED)`) and it uses GPU `local_rank % device_count`. This must
  happen before the rank's first "cuda" tensor: call `init_process_group("nccl")` first, which selects
  the GPU at once (with "mpi"/"gloo" it is selected when the group is made, and a rank that already
  made "cuda" tensors on another GPU is told so);
* an operation passes the arrays' data pointers (`runtime.pointer(a)`), their element count and the
  NCCL dtype mapped from the array's dtype to NCCL, on a CUDA stream: the current stream for
  all_reduce/broadcast (so it runs after the kernels that produced the data); DDP launches bucket
  reductions on a side stream that first waits for an event recorded on the current stream, and at the
  end of backward the current stream waits for the side stream. AVG is SUM, then a division.

The emulation (TINYGRAD_COURSE_CUDA_EMULATE=1, "cuda" tensors are NumPy arrays) replaces only
`cupy.cuda.nccl` and CUDA streams by the small synchronous stand-ins at the bottom of this file, which
rebuild NumPy views from the pointers and reduce with MPI: the code above them (pointers, dtype
mapping, unique-id broadcast, stream bookkeeping) is the one a GPU runs. Only the emulation is tested
here (no GPU on the test machines); `benchmarks/gpu_distributed_check.py` checks real NCCL on GPUs.
Importing this module needs neither CuPy nor mpi4py.
"""
from __future__ import annotations

import collections
import ctypes
import os

import numpy as np

from ..device import cuda_runtime, emulating_cuda
from .errors import DistributedSetupError

UNIQUE_ID_BYTES = 128  # NCCL_UNIQUE_ID_BYTES
DTYPES = ("float32", "float64", "int32", "int64", "int8", "uint8")  # the dtypes we map to NCCL's
_OPS = {"sum": "NCCL_SUM", "avg": "NCCL_SUM", "product": "NCCL_PROD", "min": "NCCL_MIN", "max": "NCCL_MAX"}


def check_dtype(what: str, dtype) -> str:
    """The dtype's name if NCCL can move it here; else TypeError naming it."""
    name = np.dtype(dtype).name
    if name not in DTYPES:
        raise TypeError(f"{what}: NCCL collectives take cuda tensors of dtype {', '.join(DTYPES)}; this one is "
                        f"{name}: convert it (e.g. t.float()) or move it to the CPU (MPI) with t.cpu()")
    return name


def api():
    """What the group talks to: cupy.cuda.nccl and CUDA streams, or their emulation."""
    return _EmulatedApi() if emulating_cuda() else _CupyApi()


def select_device(comm, cuda_api) -> int:
    """Make GPU `local_rank % device_count` this rank's current GPU (collective over `comm`)."""
    from mpi4py import MPI
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    local_rank, local_size = node.Get_rank(), node.Get_size()
    node.Free()
    count = cuda_api.device_count()
    if local_size > count:  # NCCL refuses two ranks on one GPU
        raise DistributedSetupError(f"NCCL needs one GPU per process: {local_size} ranks on this node but {count} GPUs; "
                           f"launch at most {count} ranks per node (mpiexec -n {count} ...)")
    wanted = local_rank % count
    if cuda_api.current_device() != wanted:
        if cuda_api.runtime_started():
            raise DistributedSetupError(f"rank {comm.Get_rank()} made cuda tensors on GPU {cuda_api.current_device()} before "
                               f"the process group chose GPU {wanted} for it; call init_process_group('nccl') "
                               "before the first cuda tensor")
        cuda_api.use_device(wanted)
    return wanted


class NcclGroup:
    """The NCCL communicator of the ranks of an MPI communicator `comm` (made by all ranks together);
    `cuda_api` is api(): real NCCL and streams, or their emulation."""

    def __init__(self, comm, cuda_api):
        self.api, self.size, self.rank = cuda_api, comm.Get_size(), comm.Get_rank()
        self.device = select_device(comm, cuda_api)
        uid = np.zeros(UNIQUE_ID_BYTES, dtype=np.int32)  # int32: NCCL's char is signed on x86, unsigned on ARM
        if self.rank == 0:
            uid[:] = cuda_api.nccl.get_unique_id()
        comm.Bcast(uid, root=0)
        self.unique_id = tuple(int(v) for v in uid)
        self.comm = cuda_api.nccl.NcclCommunicator(self.size, self.unique_id, self.rank)
        self._side = None  # DDP's side stream, made on first use

    def _args(self, what, a):
        """(pointer, count, NCCL dtype) of a contiguous array of the cuda runtime."""
        if not a.flags.c_contiguous:
            raise ValueError(f"{what}: NCCL needs a contiguous array (shape {a.shape}); pass t.contiguous()")
        return cuda_runtime().pointer(a), a.size, getattr(self.api.nccl, "NCCL_" + check_dtype(what, a.dtype).upper())

    def all_reduce(self, a, op: str = "sum", stream=None) -> None:
        """Reduce array `a` over the ranks in place (op: sum, avg, product, min, max), on `stream`
        (default: the current stream)."""
        if op not in _OPS:
            raise ValueError(f"all_reduce: op must be one of {sorted(_OPS)}, got {op!r}")
        ptr, count, dtype = self._args("all_reduce", a)
        stream = self.api.current_stream() if stream is None else stream
        self.comm.allReduce(ptr, ptr, count, dtype, getattr(self.api.nccl, _OPS[op]), stream.ptr)
        if op == "avg":
            with stream:  # the division after the sum, on the same stream
                a /= self.size

    def broadcast(self, a, root: int, stream=None) -> None:
        ptr, count, dtype = self._args("broadcast", a)
        stream = self.api.current_stream() if stream is None else stream
        self.comm.bcast(ptr, count, dtype, root, stream.ptr)

    def start_all_reduce(self, a) -> None:
        """Sum `a` over the ranks on the side stream, once the current stream's work so far (which
        wrote `a`) is done; the caller goes on at once. Finish with wait_started()."""
        if self._side is None:
            self._side = self.api.new_stream()
        self._side.wait_event(self.api.current_stream().record())
        self.all_reduce(a, "sum", stream=self._side)

    def wait_started(self) -> None:
        """Make the current stream wait for every reduction started so far (the GPU waits, not Python)."""
        if self._side is not None:
            self.api.current_stream().wait_event(self._side.record())


class _CupyApi:
    """The real thing: cupy.cuda.nccl and CuPy's streams on this process's GPU."""

    def __init__(self):
        try:
            import cupy
            from cupy.cuda import nccl
        except ImportError as e:
            raise DistributedSetupError("collectives on cuda tensors need CuPy with NCCL (pip install "
                               '"tinygrad_course[cuda]"; cupy.cuda.nccl must import), or move the tensors to the '
                               f"CPU ({e})") from None
        try:
            self.count = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # CUDARuntimeError: no driver or no GPU
            raise DistributedSetupError(f"collectives on cuda tensors need a GPU; the CUDA driver says: {e}") from None
        if self.count == 0:
            raise DistributedSetupError("collectives on cuda tensors need a GPU; cudaGetDeviceCount() found none")
        if not getattr(nccl, "available", True):  # CuPy imports its NCCL module even without libnccl
            raise DistributedSetupError("collectives on cuda tensors need NCCL, which this CuPy cannot load: "
                                        "pip install the NCCL wheel of your CUDA version (nvidia-nccl-cu12, ...), "
                                        "or move the tensors to the CPU")
        self.cupy, self.nccl = cupy, nccl

    def device_count(self) -> int:
        return self.count

    def current_device(self) -> int:
        return self.cupy.cuda.runtime.getDevice()

    def use_device(self, index: int) -> None:
        self.cupy.cuda.Device(index).use()

    def runtime_started(self) -> bool:
        from ..backend import cuda
        return "runtime" in cuda._cuda  # cuda tensors exist (on the GPU current then)

    def current_stream(self):
        return self.cupy.cuda.get_current_stream()

    def new_stream(self):
        return self.cupy.cuda.Stream(non_blocking=True)


# --- EMULATION (TINYGRAD_COURSE_CUDA_EMULATE=1): stand-ins for cupy.cuda.nccl and CUDA streams ------
# what the stand-ins were asked, for tests of the stream bookkeeping (the last 10000 calls):
# ("allReduce"/"bcast", stream), ("record", stream), ("wait", waiting stream, stream that recorded the event)
emulation_log: collections.deque = collections.deque(maxlen=10000)


class _EmulatedEvent:
    def __init__(self, stream_ptr: int):
        self.stream_ptr = stream_ptr  # the stream that recorded it


class _EmulatedStream:
    """A CUDA stream that has nothing to wait for: the emulated work ran when it was launched."""
    count = 0

    def __init__(self, ptr: int):
        self.ptr = ptr

    def record(self):
        emulation_log.append(("record", self.ptr))
        return _EmulatedEvent(self.ptr)

    def wait_event(self, event):
        emulation_log.append(("wait", self.ptr, event.stream_ptr))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _EmulatedCommunicator:
    """NcclCommunicator(ndev, unique_id, rank) over MPI: arrays rebuilt from pointer, count, dtype."""

    def __init__(self, ndev, commId, rank):
        from mpi4py import MPI
        self.MPI = MPI
        self.mpi = MPI.COMM_WORLD.Split(0, rank)  # ordered by NCCL rank, as NCCL's ranks are
        if self.mpi.Get_size() != ndev or self.mpi.Get_rank() != rank:
            raise RuntimeError(f"emulated NcclCommunicator: rank {rank} of ndev={ndev} does not fit the "
                               f"{self.mpi.Get_size()} processes (each rank in [0, ndev) exactly once)")
        ids = np.empty((ndev, UNIQUE_ID_BYTES), dtype=np.int32)
        self.mpi.Allgather(np.asarray(commId, dtype=np.int32), ids)
        differ = [r for r in range(ndev) if not np.array_equal(ids[r], ids[0])]
        if differ:  # real NCCL would wait forever for ranks that joined another id
            raise RuntimeError(f"emulated NcclCommunicator: ranks {differ} passed another unique id than rank 0; "
                               "every rank must pass rank 0's get_unique_id()")

    def _view(self, ptr, count, datatype):
        dtype = np.dtype(_EmulatedNccl.DTYPES[datatype])
        return np.ctypeslib.as_array((ctypes.c_byte * (count * dtype.itemsize)).from_address(ptr)).view(dtype)

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
        emulation_log.append(("allReduce", stream))
        mpi_op = {0: self.MPI.SUM, 1: self.MPI.PROD, 2: self.MPI.MAX, 3: self.MPI.MIN}[op]
        send = self.MPI.IN_PLACE if sendbuf == recvbuf else self._view(sendbuf, count, datatype)
        self.mpi.Allreduce(send, self._view(recvbuf, count, datatype), op=mpi_op)

    def bcast(self, buff, count, datatype, root, stream):
        emulation_log.append(("bcast", stream))
        self.mpi.Bcast(self._view(buff, count, datatype), root=root)


class _EmulatedNccl:
    """The part of cupy.cuda.nccl we use, with NCCL's constants."""
    NCCL_INT8, NCCL_UINT8, NCCL_INT32, NCCL_INT64, NCCL_FLOAT32, NCCL_FLOAT64 = 0, 1, 2, 4, 7, 8
    NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN = 0, 1, 2, 3
    DTYPES = {0: "int8", 1: "uint8", 2: "int32", 4: "int64", 7: "float32", 8: "float64"}
    NcclCommunicator = _EmulatedCommunicator

    @staticmethod
    def get_unique_id():
        return tuple(int(b) for b in np.frombuffer(os.urandom(UNIQUE_ID_BYTES), dtype=np.int8))


class _EmulatedApi:
    """Every rank has an emulated GPU of its own; stream 0 is the current stream."""
    nccl = _EmulatedNccl
    _device = 0

    def device_count(self) -> int:
        return 1 << 16

    def current_device(self) -> int:
        return _EmulatedApi._device

    def use_device(self, index: int) -> None:
        _EmulatedApi._device = index

    def runtime_started(self) -> bool:
        return False  # no real GPU to have started on

    def current_stream(self):
        return _EmulatedStream(0)

    def new_stream(self):
        _EmulatedStream.count += 1
        return _EmulatedStream(_EmulatedStream.count)
