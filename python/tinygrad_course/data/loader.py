"""Mini-batches over a data set, with seeded shuffling, per-batch transforms and background prefetch."""
from __future__ import annotations

import math
import queue
import threading

import numpy as np

from .dataset import ArrayDataset, Subset
from .transforms import _takes_rng

__all__ = ["DataLoader", "random_split"]


class DataLoader:
    """Iterate over `data` in mini-batches, each a tuple of NumPy arrays (e.g. (images, labels)).

    data: a data set (`len` and `ds[i]`; ArrayDataset and the course data sets are gathered a batch
    at a time) or a tuple of equally long arrays (or one array). With shuffle=True every epoch
    (every `iter()`) uses a new permutation; epoch e depends only on (seed, e), so runs are
    reproducible and prefetch on/off give identical batches. seed=None draws one from the global
    generator (see manual_seed).

    transform is applied to the first array of each batch (the inputs), target_transform to the
    second (the targets). With pair_transform=True, transform gets and returns the pair instead,
    `transform(x, y) -> (x, y)`, e.g. RandomHorizontalFlip() flipping images and masks together.
    A transform with an `rng` parameter (our random transforms, or `lambda x, rng: ...`) is called
    with rng=<the loader's generator for this epoch>, so augmentations are reproducible too.

    prefetch=k > 0 prepares up to k batches ahead in a background thread so data preparation
    overlaps the training step; prefetch=0 prepares each batch on demand. An exception raised
    while preparing a batch is re-raised by the consumer's next(); an iterator abandoned
    halfway stops its thread when it is closed or garbage collected.

    A loader without a single batch (an empty data set, or drop_last with fewer samples than
    batch_size) raises ValueError when it is made, not a division by zero at the end of an epoch.
    """

    def __init__(self, data, batch_size: int = 1, shuffle: bool = False, seed: int | None = None,
                 drop_last: bool = False, transform=None, target_transform=None, pair_transform: bool = False,
                 prefetch: int = 2):
        if isinstance(data, np.ndarray):
            data = ArrayDataset(data)
        elif isinstance(data, (tuple, list)):
            data = ArrayDataset(*data)
        if not _is_int(batch_size) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if not _is_int(prefetch) or prefetch < 0:
            raise ValueError(f"prefetch must be an integer >= 0, got {prefetch!r}")
        if seed is None:
            from ..tensor import get_rng
            seed = int(get_rng().integers(2 ** 63))
        self.dataset, self.batch_size, self.shuffle, self.seed = data, batch_size, shuffle, seed
        self.drop_last, self.prefetch = drop_last, prefetch
        self.transform, self.target_transform, self.pair_transform = transform, target_transform, pair_transform
        self._rng_kw = [_takes_rng(t) for t in (transform, target_transform)]
        self.epoch = 0
        if len(self) == 0:  # say so now, not with a division by zero batches at the end of an epoch
            n = len(data)
            raise ValueError("DataLoader got an empty data set" if n == 0 else
                             f"DataLoader has no batches: {n} samples with batch_size={batch_size} and "
                             "drop_last=True; use a smaller batch_size or drop_last=False")

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iter() produce epoch `epoch` (its permutation and augmentations)."""
        self.epoch = epoch

    def __iter__(self):
        seeds = np.random.SeedSequence([self.seed, self.epoch]).spawn(2)
        order_rng, aug_rng = (np.random.default_rng(s) for s in seeds)
        self.epoch += 1
        n = len(self.dataset)
        order = order_rng.permutation(n) if self.shuffle else np.arange(n)
        stops = range(0, len(self) * self.batch_size, self.batch_size)
        index_batches = [order[i:i + self.batch_size] for i in stops]
        if self.prefetch == 0:
            return (self._make_batch(idx, aug_rng) for idx in index_batches)
        return self._prefetching(index_batches, aug_rng)

    def _make_batch(self, idx, rng):
        if getattr(self.dataset, "supports_batch_index", False):
            batch = self.dataset[idx]
        else:
            items = [self.dataset[int(i)] for i in idx]
            if not isinstance(items[0], tuple):
                items = [(item,) for item in items]
            batch = tuple(np.stack(field) for field in zip(*items))
        batch = list(batch if isinstance(batch, tuple) else (batch,))
        kw = [{"rng": rng} if takes else {} for takes in self._rng_kw]
        if self.transform is not None and self.pair_transform:
            batch[:2] = self.transform(*batch[:2], **kw[0])
        elif self.transform is not None:
            batch[0] = self.transform(batch[0], **kw[0])
        if self.target_transform is not None and len(batch) > 1:
            batch[1] = self.target_transform(batch[1], **kw[1])
        return tuple(batch)

    def _prefetching(self, index_batches, rng):
        """Generator: a worker thread fills a bounded queue; closing the generator stops the worker."""
        q = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    pass
            return False

        def work():
            try:
                for idx in index_batches:
                    if not put(("batch", self._make_batch(idx, rng))):
                        return
            except BaseException as e:  # handed to the consumer, re-raised there
                put(("error", e))
                return
            put(("done", None))

        worker = threading.Thread(target=work, name="tinygrad_course-prefetch", daemon=True)
        worker.start()
        try:
            while True:
                kind, item = q.get()
                if kind == "batch":
                    yield item
                elif kind == "error":
                    raise item
                else:
                    return
        finally:
            stop.set()
            worker.join()


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def random_split(data, lengths, seed: int = 0):
    """Seeded random partition of `data` (a length n, or a data set) into parts of the given sizes.

    lengths: fractions summing to 1 (the remainder of the rounding goes to the first parts) or
    counts summing to n. Returns index arrays for an integer n, Subsets for a data set.
    """
    n = data if isinstance(data, (int, np.integer)) else len(data)
    lengths = list(lengths)
    if all(isinstance(x, (int, np.integer)) for x in lengths):
        counts = [int(x) for x in lengths]
        if sum(counts) != n or min(counts) < 0:
            raise ValueError(f"lengths {counts} must be non-negative and sum to {n}")
    else:
        if not math.isclose(sum(lengths), 1.0, abs_tol=1e-6) or min(lengths) < 0:
            raise ValueError(f"fractions {lengths} must be non-negative and sum to 1")
        counts = [int(math.floor(f * n)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
    order = np.random.default_rng(seed).permutation(n)
    parts = np.split(order, np.cumsum(counts)[:-1])
    if isinstance(data, (int, np.integer)):
        return parts
    return [Subset(data, p) for p in parts]
