"""Progress display: tqdm when installed (the `progress` extra), a plain line printer otherwise."""
from __future__ import annotations

import sys
import time


class _LinePrinter:
    """Minimal stand-in for tqdm: prints about `lines` status lines over the run."""

    def __init__(self, iterable, total, desc, lines=10, file=None):
        self.iterable, self.total, self.desc = iterable, total, desc
        self.every = max(1, (total or 1) // lines)
        self.postfix = ""
        self.file = file or sys.stderr
        self.start = time.perf_counter()

    def set_postfix(self, **values):
        self.postfix = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())

    def __iter__(self):
        for i, item in enumerate(self.iterable, 1):
            yield item
            if i % self.every == 0 or i == self.total:
                elapsed = time.perf_counter() - self.start
                print(f"{self.desc}: {i}/{self.total} [{elapsed:.1f}s] {self.postfix}", file=self.file, flush=True)

    def close(self):
        pass


def progress(iterable, total=None, desc="", enabled=True):
    """Wrap an iterable with a progress display that supports `set_postfix(**metrics)`."""
    total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
    if not enabled:
        return _LinePrinter(iterable, total, desc, lines=1, file=_NullFile())
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _LinePrinter(iterable, total, desc)
    return tqdm(iterable, total=total, desc=desc, dynamic_ncols=True, leave=True)


class _NullFile:
    def write(self, _):
        pass

    def flush(self):
        pass
