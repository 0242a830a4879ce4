"""The malloc tuning applied at import (backend/allocator.py).

In a fresh interpreter, a 48 MiB array is allocated and glibc's own statistics (mallinfo2)
say where it lives: without the tuning it gets its own mapping (glibc maps anything above
32 MiB afresh, and unmaps it on free, so the next step page-faults it again); with it, it comes
from the heap, whose freed blocks the next allocation reuses.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import sys

import pytest


def _has_mallinfo2() -> bool:
    name = ctypes.util.find_library("c")
    try:
        return name is not None and hasattr(ctypes.CDLL(name), "mallinfo2")  # glibc >= 2.33
    except OSError:
        return False


SCRIPT = """
import ctypes, ctypes.util
import numpy as np
import tinygrad_course.backend.allocator as allocator

class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = Mallinfo2
a = np.empty(12 << 20, np.float32)
print(allocator.applied, libc.mallinfo2().hblkhd)
"""


def _mapped_bytes(tuning: str) -> tuple[bool, int]:
    env = dict(os.environ, TINYGRAD_COURSE_MALLOC_TUNING=tuning)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    applied, mapped = out.stdout.split()
    return applied == "True", int(mapped)


@pytest.mark.skipif(not (sys.platform.startswith("linux") and _has_mallinfo2()), reason="glibc >= 2.33 only")
def test_large_arrays_come_from_the_heap_unless_the_tuning_is_turned_off():
    applied, mapped = _mapped_bytes("1")
    assert applied and mapped < 48 << 20  # (blocks mapped while importing, before the tuning, remain)
    applied, mapped_untuned = _mapped_bytes("0")
    assert not applied and mapped_untuned >= mapped + (48 << 20)
