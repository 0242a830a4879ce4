"""Running test code on several ranks: `mpiexec -n N python -c <script>` in a subprocess (skipped without
mpi4py or an MPI launcher), shared by the distributed test files. Each rank's `report(dict)` goes to a
file, not stdout: mpiexec interleaves the ranks' output."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest


def mpiexec() -> str:
    """mpiexec's path; skips the test without mpi4py or an MPI launcher."""
    pytest.importorskip("mpi4py")
    path = shutil.which("mpiexec")
    if path is None:
        pytest.skip("no mpiexec on PATH (pip install mpich)")
    return path


def cuda_emulation_or_skip() -> None:
    """The CUDA emulation compiles the kernels with the host's C++ compiler."""
    if shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("the CUDA emulation needs a host C++ compiler")


def run_ranks(tmp_path, n: int, body: str, *, backend: str = "mpi", prelude: str = "", env: dict | None = None,
              timeout: float = 120) -> list:
    """Run `body` on n ranks (after init_process_group(backend) and `prelude`); each rank's
    `report(dict)` is returned, in rank order. `env`: variables added to this process's environment."""
    launcher = mpiexec()
    script = textwrap.dedent(f"""\
        import json
        import numpy as np
        import tinygrad_course as tg
        import tinygrad_course.distributed as dist
        {prelude}
        dist.init_process_group({backend!r})

        def report(row):
            with open({str(tmp_path)!r} + f"/rank{{dist.get_rank()}}.json", "w") as f:
                json.dump(row, f)
        """) + textwrap.dedent(body)
    done = subprocess.run([launcher, "-n", str(n), sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(n)]
