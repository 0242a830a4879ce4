"""The error of a distributed set-up that cannot work as launched (what is missing, and how to launch)."""


class DistributedSetupError(RuntimeError):
    """mpi4py, CuPy's NCCL or a GPU per rank is missing, or the launch does not fit (the message says
    what to install or how to launch). The command line reports it in one line, without a traceback."""
