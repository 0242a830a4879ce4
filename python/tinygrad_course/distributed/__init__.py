"""Data-parallel training across processes, as torch.distributed: a process group over MPI.

    mpiexec -n 4 python train.py          # every rank runs the same script
    import tinygrad_course.distributed as dist
    dist.init_process_group()             # MPI's world: rank 0..3
    dist.all_reduce(t)                    # t summed over the ranks, in place

The collectives move the tensors' own buffers: CPU tensors with mpi4py's upper-case calls
(`Allreduce`, `Bcast`: no pickling, which is several times slower), "cuda" tensors with NCCL
(`nccl.py`: one process per GPU, the NCCL group made at the first collective on a cuda tensor, its
unique id sent over MPI). Whatever the backend named, each tensor goes the way of its device (PyTorch's
"nccl" backend refuses CPU tensors; here they still go through MPI). mpi4py and an MPI are the
optional extra `distributed` (`pip install "tinygrad_course[distributed]"`: mpi4py and the MPICH
wheel), CuPy with NCCL the extra `cuda`; importing this module never needs them, the first call does.
On a real GPU the cuda path runs cupy.cuda.nccl; the tests here run it under the CUDA emulation
(TINYGRAD_COURSE_CUDA_EMULATE=1, NCCL emulated over MPI: see nccl.py), as no GPU is available to them.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from ..tensor import Function, Tensor
from . import nccl
from .errors import DistributedSetupError
from .sampler import DistributedSampler  # noqa: F401

__all__ = ["DistributedSetupError", "init_process_group", "destroy_process_group", "is_initialized", "is_available", "get_rank",
           "get_world_size", "barrier", "all_reduce", "broadcast", "ReduceOp", "DistributedSampler",
           "DistributedDataParallel"]


class ReduceOp:
    """The reductions of all_reduce, by PyTorch's names."""
    SUM, PRODUCT, MIN, MAX, AVG = "sum", "product", "min", "max", "avg"


_group = None  # the communicator of init_process_group, or None
_nccl = None   # the NCCL group of the "cuda" tensors, made by their first collective


def is_available() -> bool:
    """True when mpi4py (and so an MPI library) can be imported."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise DistributedSetupError("distributed training needs mpi4py and an MPI library: "
                           'pip install "tinygrad_course[distributed]" (mpi4py and the mpich wheel), then '
                           f"launch with mpiexec -n N python script.py ({e})") from None
    return MPI


def init_process_group(backend: str = "mpi", *, world_size: int | None = None, rank: int | None = None,
                       **unused) -> None:
    """Join the group of all processes started by `mpiexec -n N`. `backend` "mpi" (PyTorch's "gloo" is
    taken as "mpi") or "nccl": with any of them CPU tensors go through MPI and "cuda" tensors through
    NCCL; "nccl" also selects this rank's GPU at once (local rank % GPUs, see nccl.py), so call it before
    making cuda tensors (without a usable CUDA runtime it leaves that to the first cuda collective,
    and CPU tensors still work). world_size and rank, or the launcher's WORLD_SIZE and RANK variables,
    are checked against MPI's world: they cannot choose another one. (init_method, timeout and the
    other torch arguments are accepted and have no effect.)"""
    global _group
    if backend not in ("mpi", "gloo", "nccl"):
        raise ValueError(f"init_process_group: backend {backend!r} is not supported; use 'mpi' (or 'gloo': "
                         "the same) or 'nccl' (both move CPU tensors over MPI and cuda tensors over NCCL)")
    if _group is not None:
        raise RuntimeError("init_process_group: the process group is initialised already; "
                           "call destroy_process_group() first")
    comm = _mpi().COMM_WORLD
    for name, given in (("world_size", world_size if world_size is not None else os.environ.get("WORLD_SIZE")),
                        ("rank", rank if rank is not None else os.environ.get("RANK"))):
        actual = comm.Get_size() if name == "world_size" else comm.Get_rank()
        if given is not None and int(given) != actual:
            raise ValueError(f"init_process_group: {name}={given} but MPI's world has {name} {actual}; "
                             f"launch with mpiexec -n N and leave {name} out")
    _group = comm
    _abort_all_on_uncaught_exception(comm)
    if backend == "nccl":
        try:
            gpus = nccl.api()
        except DistributedSetupError:  # no CuPy/NCCL/GPU here: a cuda collective will say so; CPU tensors work
            gpus = None
        # select_device is collective: every rank does it, or none (a rank without a GPU would leave it unmatched)
        everywhere = np.array([gpus is not None], np.int32)
        comm.Allreduce(_mpi().IN_PLACE, everywhere, op=_mpi().MIN)
        if everywhere[0]:
            nccl.select_device(comm, gpus)


def _abort_all_on_uncaught_exception(comm) -> None:
    """A rank that stops on an exception would leave the others waiting in a collective forever: print
    its traceback, then abort the whole job (mpiexec ends every rank and exits non-zero). A rank that
    dies outright (killed, out of memory) is ended the same way by mpiexec itself."""
    previous = sys.excepthook

    def abort(kind, value, traceback):
        previous(kind, value, traceback)
        sys.stderr.write(f"tinygrad_course.distributed: rank {comm.Get_rank()} of {comm.Get_size()} stopped on "
                         f"{kind.__name__}; aborting all ranks\n")
        sys.stderr.flush()
        comm.Abort(1)
    abort.previous = previous
    sys.excepthook = abort


def destroy_process_group() -> None:
    global _group, _nccl
    _group = _nccl = None
    sys.excepthook = getattr(sys.excepthook, "previous", sys.excepthook)


def is_initialized() -> bool:
    return _group is not None


def _comm():
    if _group is None:
        raise RuntimeError("the default process group is not initialised: call "
                           "tinygrad_course.distributed.init_process_group() first (under mpiexec)")
    return _group


def get_rank() -> int:
    return _comm().Get_rank()


def get_world_size() -> int:
    return _comm().Get_size()


def barrier() -> None:
    _comm().Barrier()


def _nccl_group() -> "nccl.NcclGroup":
    """The NCCL group of the cuda tensors; made (by every rank) at the first call."""
    global _nccl
    if _nccl is None:
        _nccl = nccl.NcclGroup(_comm(), nccl.api())
    return _nccl


def _check(name: str, tensor: Tensor) -> None:
    """MPI (CPU) or NCCL (cuda) reads and writes the tensor's own storage: a contiguous array, written
    in place through the tensor's in-place path, so its version counter and the read-only guards apply.
    NCCL's dtypes are checked here, before any rank makes the NCCL group."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(tensor).__name__}")
    if tensor.device == "cuda":
        nccl.check_dtype(name, tensor.dtype)
    if not tensor._data.flags.c_contiguous:
        raise ValueError(f"{name}: the tensor (shape {tensor.shape}) must be contiguous; pass t.contiguous()")


def all_reduce(tensor: Tensor, op: str = ReduceOp.SUM) -> None:
    """Reduce `tensor` over all ranks, in place on every rank (op: ReduceOp.SUM, AVG, PRODUCT, MIN, MAX).
    CPU tensors over MPI; cuda tensors over NCCL, on the current CUDA stream."""
    MPI = _mpi()
    ops = {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
           ReduceOp.MIN: MPI.MIN, ReduceOp.MAX: MPI.MAX}
    if op not in ops:
        raise ValueError(f"all_reduce: op must be one of {sorted(ops)} (ReduceOp.SUM, ...), got {op!r}")
    _check("all_reduce", tensor)
    if op == ReduceOp.AVG and tensor.dtype.kind != "f":
        raise TypeError(f"all_reduce: ReduceOp.AVG needs a float tensor, got {tensor.dtype}")
    comm = _comm()
    if tensor.device == "cuda":
        group = _nccl_group()
        tensor._inplace("all_reduce", lambda a: group.all_reduce(a, op))
        return

    def reduce(a):
        comm.Allreduce(MPI.IN_PLACE, a, op=ops[op])
        if op == ReduceOp.AVG:
            a /= comm.Get_size()
    tensor._inplace("all_reduce", reduce)


def broadcast(tensor: Tensor, src: int = 0) -> None:
    """Rank `src`'s values of `tensor` on every rank, in place (cuda tensors: NCCL, current stream)."""
    comm = _comm()
    if not isinstance(src, int) or not 0 <= src < comm.Get_size():
        raise ValueError(f"broadcast: src must be a rank in [0, {comm.Get_size()}), got {src!r}")
    _check("broadcast", tensor)
    if tensor.device == "cuda":
        group = _nccl_group()
        tensor._inplace("broadcast", lambda a: group.broadcast(a, src))
    else:
        tensor._inplace("broadcast", lambda a: comm.Bcast(a, root=src))


class _SumOverRanks(Function):
    """y = the sum over the ranks of x (every rank gets y). Its backward is the same sum of the ranks'
    gradients: each rank's x reaches every rank's loss."""

    def forward(self, x):
        return self._sum(x)

    def backward(self, g):
        return self._sum(g)

    def _sum(self, a):
        t = Tensor._wrap(a.copy(), self.device)
        all_reduce(t)
        return t._data


def _summed_over_ranks(tensor: Tensor) -> Tensor:
    """The sum of `tensor` over all ranks, differentiable (SyncBatchNorm's statistics); a new tensor.
    Every rank must call it, and backward through it, in the same order."""
    return _SumOverRanks.apply(tensor)


from .ddp import DistributedDataParallel  # noqa: E402  (it uses the functions above)
