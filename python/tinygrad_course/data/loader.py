"""Mini-batches over a data set, as torch.utils.data.DataLoader: PyTorch's keywords, batches collated
into Tensors, seeded shuffling, per-batch transforms, and a background thread or worker processes."""
from __future__ import annotations

import contextlib
import math
import multiprocessing
import pickle
import queue
import random
import signal
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..tensor import Tensor
from .dataset import ArrayDataset, IterableDataset, Subset
from .sampler import _rng, epoch_order_rng
from .transforms import _takes_rng, batch_generator

__all__ = ["DataLoader", "default_collate", "get_worker_info", "random_split", "WorkerInfo"]


def _collate_arrays(batch):
    """torch's default_collate, stopping at NumPy arrays (they become Tensors in `_to_tensors`)."""
    elem = batch[0]
    if isinstance(elem, (Tensor, np.ndarray)):
        arrays = [b.detach().numpy() if isinstance(b, Tensor) else np.asarray(b) for b in batch]
        if arrays[0].dtype.kind in "OUSV":
            raise TypeError(f"default_collate: samples hold {arrays[0].dtype} arrays, which cannot become "
                            "Tensors; pass a collate_fn that batches them")
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"default_collate: samples of different shapes {sorted(shapes)} cannot be stacked; "
                             "give them one shape (e.g. a resizing transform) or pass a collate_fn")
        return np.stack(arrays)
    if isinstance(elem, np.generic):
        return np.asarray(batch)
    if isinstance(elem, float):
        return np.asarray(batch, dtype=np.float64)  # Python floats collate to float64, as in PyTorch
    if isinstance(elem, (bool, int)):
        return np.asarray(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, Mapping):
        return {key: _collate_arrays([d[key] for d in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(_collate_arrays(field) for field in zip(*batch)))
    if isinstance(elem, Sequence):
        if len({len(b) for b in batch}) > 1:
            raise ValueError("default_collate: samples are sequences of different lengths; give every sample "
                             "the same number of fields or pass a collate_fn")
        return [_collate_arrays(field) for field in zip(*batch)]
    raise TypeError(f"default_collate: samples must be Tensors, NumPy arrays, numbers, strings, dicts, lists or "
                    f"tuples, got {type(elem).__name__}; pass a collate_fn that batches them")


def _to_tensors(batch):
    """Every NumPy array (or scalar) in a collated batch as a Tensor; containers keep their shape."""
    if isinstance(batch, (np.ndarray, np.generic)):
        arr = np.asarray(batch)
        # a batch that owns its memory is shared with the Tensor; a view (of the data set?) is copied
        return Tensor(arr if arr.flags.owndata and arr.flags.writeable else arr.copy())
    if isinstance(batch, Mapping):
        return {key: _to_tensors(value) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*map(_to_tensors, batch))
    if isinstance(batch, (list, tuple)) and not all(isinstance(b, (str, bytes)) for b in batch):
        return [_to_tensors(b) for b in batch]  # tuples give lists, as in PyTorch
    return batch


def default_collate(batch):
    """A list of samples -> one batch, as torch.utils.data.default_collate: arrays and Tensors are
    stacked, numbers become a Tensor (ints int64, floats float64), dicts, tuples and lists are
    collated field by field (tuples give lists), strings stay lists."""
    return _to_tensors(_collate_arrays(list(batch)))


@dataclass
class WorkerInfo:
    """What get_worker_info() returns inside a worker process."""
    id: int
    num_workers: int
    seed: int
    dataset: object


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """Inside a DataLoader worker process: its id, the number of workers, its seed and its data set;
    None in the main process."""
    return _worker_info


class DataLoader:
    """Iterate over `dataset` in mini-batches of Tensors, as torch.utils.data.DataLoader.

    dataset: anything with `len` and `ds[i]`; ArrayDataset, TensorDataset and the course's data sets
    are gathered a batch at a time (one fancy index per array) unless they have a per-sample
    transform. Also a NumPy array (batches of its rows) or a tuple of equally long arrays (an
    ArrayDataset). Each batch is `collate_fn(samples)`, by default `default_collate`: tuple
    samples give a list of Tensors [inputs, targets], integer labels int64.

    shuffle=True gives every epoch (every `iter()`) a new permutation; epoch e depends only on
    (seed, e), so runs are reproducible (`set_epoch(e)` replays epoch e), and prefetching or worker
    processes give the same batches. seed=None draws one from the global generator (manual_seed).
    generator: a tinygrad_course.Generator (or NumPy Generator) that each epoch draws its seed from
    instead, as torch's generator does.
    sampler (indices) or batch_sampler (lists of indices) replace the built-in order. An
    IterableDataset is batched in the order it yields (no shuffle or sampler).

    transform is applied to the first array of each collated batch (the inputs), target_transform
    to the second (the targets); with pair_transform=True, transform gets and returns the pair,
    `transform(x, y) -> (x, y)` (e.g. RandomHorizontalFlip() flipping images and masks together).
    A transform with an `rng` parameter is called with rng=<a generator for this epoch and batch>;
    our random transforms in the data set's per-sample `transform` draw from that generator too.

    num_workers=0 prepares batches in a background thread, up to `prefetch` batches ahead
    (prefetch=0: on demand). num_workers > 0 prepares them in that many processes, each up to
    prefetch_factor (default 2) batches ahead; worker w seeds the global generators (ours, NumPy's,
    Python's) from (seed, epoch, w) and calls worker_init_fn(w). An exception while preparing a
    batch is re-raised by next(), naming the worker and the batch; workers and threads stop when
    the iterator is exhausted, closed or garbage collected. timeout: seconds to wait for a worker's
    batch (0: no limit). pin_memory and persistent_workers are accepted and change nothing.

    A loader without a single batch (an empty data set, or drop_last with fewer samples than
    batch_size) raises ValueError when it is made.
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = False, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None, multiprocessing_context=None,
                 generator=None, *, prefetch_factor: int | None = None, persistent_workers: bool = False,
                 seed: int | None = None, transform=None, target_transform=None, pair_transform: bool = False,
                 prefetch: int = 2):
        self._single = isinstance(dataset, np.ndarray)  # batches of its rows, not one-element lists
        if self._single:
            dataset = ArrayDataset(dataset)
        elif isinstance(dataset, tuple):
            dataset = ArrayDataset(*dataset)
        if not isinstance(dataset, IterableDataset) and not (hasattr(dataset, "__getitem__")
                                                             and hasattr(dataset, "__len__")):
            raise TypeError(f"dataset must support len() and indexing (a Dataset, array or list), "
                            f"got {type(dataset).__name__}")
        shuffle = bool(shuffle)
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable and (shuffle or sampler is not None or batch_sampler is not None):
            raise ValueError("an IterableDataset sets its own order: shuffle, sampler and batch_sampler must be "
                             "left out (shuffle inside the data set's __iter__)")
        if batch_size is not None and (not _is_int(batch_size) or batch_size < 1):
            raise ValueError(f"batch_size must be an integer >= 1 (or None: no batching), got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("sampler is mutually exclusive with shuffle=True; shuffle in the sampler")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError("batch_sampler is mutually exclusive with batch_size, shuffle, sampler and drop_last")
        if batch_size is None and drop_last:
            raise ValueError("batch_size=None turns batching off, so drop_last=True has nothing to drop; "
                             "give a batch_size or leave drop_last out")
        self._batched = batch_size is not None or batch_sampler is not None
        if batch_sampler is not None:
            batch_size = None  # as torch's loader.batch_size
        if not _is_int(num_workers) or num_workers < 0:
            raise ValueError(f"num_workers must be an integer >= 0, got {num_workers!r}")
        if prefetch_factor is not None and num_workers == 0:
            raise ValueError("prefetch_factor applies to worker processes only: give num_workers > 0, "
                             "or use prefetch= for the background thread")
        prefetch_factor = 2 if prefetch_factor is None else prefetch_factor
        if not _is_int(prefetch_factor) or prefetch_factor < 1:
            raise ValueError(f"prefetch_factor must be an integer >= 1, got {prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers needs num_workers > 0")
        if not _is_int(prefetch) or prefetch < 0:
            raise ValueError(f"prefetch must be an integer >= 0, got {prefetch!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
            raise ValueError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        if generator is not None:
            _rng(generator)  # a wrong type fails here, naming the argument
        for name, fn in (("collate_fn", collate_fn), ("worker_init_fn", worker_init_fn), ("transform", transform),
                         ("target_transform", target_transform)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
        if collate_fn is not None and (transform is not None or target_transform is not None):
            raise ValueError("collate_fn and the loader's transform/target_transform cannot be combined: "
                             "transform inside collate_fn, or give the data set a per-sample transform")
        if seed is None:
            from ..tensor import get_rng
            seed = int(get_rng().integers(2 ** 63))
        self.dataset, self.batch_size, self.shuffle, self.seed = dataset, batch_size, shuffle, seed
        self.sampler, self.batch_sampler, self.drop_last, self.generator = sampler, batch_sampler, drop_last, generator
        self.num_workers, self.prefetch_factor, self.timeout = num_workers, prefetch_factor, timeout
        self.collate_fn, self.worker_init_fn = collate_fn, worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.pin_memory, self.persistent_workers, self.prefetch = pin_memory, persistent_workers, prefetch
        self.transform, self.target_transform, self.pair_transform = transform, target_transform, pair_transform
        self._rng_kw = [_takes_rng(t) for t in (transform, target_transform)]
        self.epoch = 0
        if not self._iterable and sampler is None and batch_sampler is None and len(self) == 0:  # now, not later
            n = len(dataset)
            raise ValueError("DataLoader got an empty data set" if n == 0 else
                             f"DataLoader has no batches: {n} samples with batch_size={batch_size} and "
                             "drop_last=True; use a smaller batch_size or drop_last=False")

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.sampler if self.sampler is not None else self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iter() produce epoch `epoch` (its permutation and augmentations), and pass it on
        to a sampler that has set_epoch (DistributedSampler)."""
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self):
        if self.generator is not None:
            entropy = [int(_rng(self.generator).integers(2 ** 63))]
        else:
            entropy = [self.seed, self.epoch]
        self.epoch += 1
        if self.num_workers > 0 and self._iterable:
            return self._from_workers(None, entropy)  # each worker iterates its own copy
        batches = self._index_batches(epoch_order_rng(entropy))
        if self.num_workers > 0:
            return self._from_workers(batches, entropy)
        prepared = (_to_tensors_unless(self, self._make_batch(idx, _batch_rng(entropy, k)))
                    for k, idx in enumerate(batches))
        return prepared if self.prefetch == 0 else self._prefetching(prepared)

    # --- one batch ---------------------------------------------------------------------------------
    def _index_batches(self, order_rng):
        """The epoch's batches of indices (single indices when batch_size is None); for an
        IterableDataset, an iterator over lists of its samples (single samples). A sampler's indices
        are drawn as batches are made: it may be far longer than memory (makemore's
        RandomSampler(num_samples=10**10)); iter() is called now, so its epoch seed is drawn now."""
        if self._iterable:
            return _chunks(iter(self.dataset), self.batch_size, self.drop_last)
        if self.batch_sampler is not None:
            return (list(b) for b in self.batch_sampler)
        if self.sampler is not None:
            return _chunks(iter(self.sampler), self.batch_size, self.drop_last)
        n = len(self.dataset)
        order = order_rng.permutation(n) if self.shuffle else np.arange(n)
        if self.batch_size is None:
            return list(order)
        bs = self.batch_size
        count = len(order) // bs if self.drop_last else math.ceil(len(order) / bs)
        return [order[i:i + bs] for i in range(0, count * bs, bs)]

    def _make_batch(self, idx, rng):
        """Batch `idx` as the collate function gives it (default: NumPy arrays, made Tensors later).
        The data set's random transforms draw from `rng` too (see transforms.batch_generator)."""
        with batch_generator(rng):
            return self._gather(idx, rng)

    def _gather(self, idx, rng):
        ds = self.dataset
        fetch = (lambda sample: sample) if self._iterable else (lambda i: ds[_index(i)])
        if not self._batched:  # batch_size=None: one sample per step, its arrays made Tensors
            batch = fetch(idx)
            return self.collate_fn(batch) if self.collate_fn is not None else self._transformed(batch, rng)
        if not self._iterable and self.collate_fn is None and getattr(ds, "supports_batch_index", False):
            batch = ds[np.asarray(idx)]
            batch = [_host(b) for b in batch] if isinstance(batch, (tuple, list)) else _host(batch)
        else:
            samples = [fetch(i) for i in idx]
            if self.collate_fn is not None:
                return self.collate_fn(samples)
            batch = _collate_arrays(samples)
        return self._transformed(batch, rng)

    def _transformed(self, batch, rng):
        if self.transform is None and self.target_transform is None:
            return batch[0] if self._single else batch
        parts = list(batch) if isinstance(batch, (list, tuple)) else [batch]
        kw = [{"rng": rng} if takes else {} for takes in self._rng_kw]
        if self.transform is not None and self.pair_transform:
            parts[:2] = self.transform(*parts[:2], **kw[0])
        elif self.transform is not None:
            parts[0] = self.transform(parts[0], **kw[0])
        if self.target_transform is not None and len(parts) > 1:
            parts[1] = self.target_transform(parts[1], **kw[1])
        return parts[0] if self._single or not isinstance(batch, (list, tuple)) else parts

    # --- background thread (num_workers=0) ---------------------------------------------------------
    def _prefetching(self, prepared):
        """Generator: a thread runs `prepared` into a bounded queue; closing the generator stops the thread."""
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
                for batch in prepared:
                    if not put(("batch", batch)):
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

    # --- worker processes (num_workers > 0) --------------------------------------------------------
    def _from_workers(self, batches, entropy):
        """Generator: worker w is sent requests through a pipe and answers each, in order, with a batch.
        Batch k of a map-style data set is worker k % n's (the request is k and its indices, drawn as
        the loader goes); an IterableDataset's workers each batch their own stream, taken in turns
        until every one has ended."""
        ctx = self.multiprocessing_context
        ctx = multiprocessing.get_context(ctx) if ctx is None or isinstance(ctx, str) else ctx
        n = self.num_workers
        if not self._iterable:
            with contextlib.suppress(TypeError):  # a sampler without len(): start them all
                n = max(1, min(n, len(self)))
        procs, conns, finished = [], [], False
        try:
            for w in range(n):
                here, there = ctx.Pipe()
                args = (self, not self._iterable, entropy, w, n, there)
                proc = ctx.Process(target=_worker_loop, args=args, name=f"tinygrad_course-worker-{w}", daemon=True)
                try:
                    proc.start()
                except (pickle.PicklingError, TypeError, AttributeError) as e:
                    raise TypeError(f"num_workers={self.num_workers} with the {ctx.get_start_method()!r} start "
                                    f"method must pickle the data set, collate_fn and transforms, which failed "
                                    f"({e}); define them at module level (no lambdas or local functions), or "
                                    "pass multiprocessing_context='fork'") from None
                finally:
                    there.close()
                procs.append(proc)
                conns.append(here)
            if self._iterable:
                yield from self._stream_from_workers(procs, conns)
                finished = True
                return
            batches, sent = iter(batches), 0

            def request():  # batch `sent` to worker sent % n, if the epoch has one more
                nonlocal sent
                idx = next(batches, _END)
                if idx is not _END:
                    conns[sent % n].send((sent, idx))
                    sent += 1
            for _ in range(self.prefetch_factor * n):  # a multiple of n: batch k + ahead goes to k's worker
                request()
            k = 0
            while k < sent:
                _, batch = self._receive(conns[k % n], procs[k % n], k % n, f"batch {k}")
                request()
                k += 1
                yield _to_tensors_unless(self, batch)
            finished = True
        finally:
            for conn in conns:
                try:
                    conn.send(None)
                except OSError:  # that worker is gone already
                    pass
            for proc in procs:  # idle workers exit at once; one busy after an error or a break is stopped
                proc.join(timeout=5 if finished else 0.1)
                if proc.is_alive():
                    proc.terminate()
                    proc.join()
            for conn in conns:
                conn.close()

    def _stream_from_workers(self, procs, conns):
        for conn in conns:
            for j in range(self.prefetch_factor):
                conn.send(j)
        active, turn, taken = list(range(len(conns))), 0, [0] * len(conns)
        while active:
            w = active[turn % len(active)]
            kind, batch = self._receive(conns[w], procs[w], w, f"batch {taken[w]} of its stream")
            if kind == "end":
                active.remove(w)
                continue
            conns[w].send(taken[w] + self.prefetch_factor)
            taken[w] += 1
            turn += 1
            yield _to_tensors_unless(self, batch)

    def _receive(self, conn, proc, w: int, what: str):
        """(kind, payload) of worker w's next answer; a dead worker, a timeout or the worker's exception
        raises here."""
        deadline = time.monotonic() + self.timeout if self.timeout else None
        while not conn.poll(1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))):
            if not proc.is_alive():
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise RuntimeError(f"DataLoader timed out after {self.timeout} s waiting for {what} from "
                                   f"worker {w}; raise timeout= or make the data set faster")
        try:
            kind, payload = conn.recv()
        except (EOFError, OSError):
            proc.join(timeout=1)
            code = proc.exitcode
            how = f"with exit code {code}"
            if code is not None and code < 0:
                how = f"killed by signal {signal.Signals(-code).name}"
                how += " (out of memory?)" if -code == signal.SIGKILL else ""
            raise RuntimeError(f"DataLoader worker {w} (pid {proc.pid}) exited unexpectedly {how} while preparing "
                               f"{what}") from None
        if kind == "error":
            exc_type, message = payload
            try:
                error = exc_type(_Message(message))
            except Exception:  # an exception class that takes other arguments
                error = RuntimeError(message)
            raise error
        return kind, payload


class _Message(str):
    """An error message that KeyError, which shows the repr of its argument, shows as it is."""

    def __repr__(self):
        return str(self)


def _worker_loop(loader: DataLoader, mapped: bool, entropy, worker_id: int, num_workers: int, conn) -> None:
    """A worker process: answer each request (k, indices) with ("batch", batch k) or ("error", ...); for
    an IterableDataset (not mapped; the request is k), with the next batch of its own stream or
    ("end", None)."""
    global _worker_info
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle; it stops us
    seed = int(np.random.SeedSequence(entropy, spawn_key=(2, worker_id)).generate_state(1, np.uint64)[0]) >> 1
    from ..tensor import manual_seed
    manual_seed(seed)
    np.random.seed(seed % 2 ** 32)
    random.seed(seed)
    _worker_info = WorkerInfo(worker_id, num_workers, seed, loader.dataset)
    init_error = None
    if loader.worker_init_fn is not None:
        try:
            loader.worker_init_fn(worker_id)
        except Exception as e:
            init_error = e
    stream = None
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):  # the main process went away
            return
        if request is None:
            return
        k, idx = request if mapped else (request, None)
        try:
            if init_error is not None:
                raise init_error
            if mapped:
                conn.send(("batch", loader._make_batch(idx, _batch_rng(entropy, k))))
                continue
            stream = loader._index_batches(None) if stream is None else stream
            samples = next(stream, _END)
            if samples is _END:
                conn.send(("end", None))
            else:
                rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(3, worker_id, k)))
                conn.send(("batch", loader._make_batch(samples, rng)))
        except Exception as e:
            where = "in worker_init_fn" if init_error is not None else f"while preparing batch {k}"
            message = (f"Caught {type(e).__name__} in DataLoader worker {worker_id} {where}.\n"
                       f"Original {traceback.format_exc()}")
            exc_type = type(e)
            try:
                pickle.dumps(exc_type)
            except Exception:  # a class defined in a function cannot travel back
                exc_type = RuntimeError
            conn.send(("error", (exc_type, message)))


_END = object()


def _chunks(samples, size: int | None, drop_last: bool):
    """Lists of `size` consecutive items of an iterator (the last shorter unless drop_last); single
    items when size is None."""
    if size is None:
        yield from samples
        return
    chunk = []
    for sample in samples:
        chunk.append(sample)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk and not drop_last:
        yield chunk


def _batch_rng(entropy, k: int) -> np.random.Generator:
    """Batch k's generator for the loader's transforms: the same whichever thread or process makes it."""
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(1, k)))


def _to_tensors_unless(loader: DataLoader, batch):
    return batch if loader.collate_fn is not None else _to_tensors(batch)


def _host(a):
    """A batch field from a data set's batched indexing as a NumPy array (Tensors stay as they are)."""
    return a if isinstance(a, Tensor) else np.asarray(a)


def _index(i):
    return int(i) if isinstance(i, np.integer) else i  # data sets get Python ints, as from PyTorch's samplers


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def random_split(data, lengths, generator=None, seed: int = 0):
    """Seeded random partition of `data` (a length n, or a data set) into parts of the given sizes.

    lengths: fractions summing to 1 (the remainder of the rounding goes to the first parts) or
    counts summing to n. The order comes from `generator` (a tinygrad_course.Generator, as torch's,
    or a NumPy Generator) if given, else from `seed`. Returns index arrays for an integer n,
    Subsets for a data set.
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
    order = (_rng(generator) if generator is not None else np.random.default_rng(seed)).permutation(n)
    parts = np.split(order, np.cumsum(counts)[:-1])
    if isinstance(data, (int, np.integer)):
        return parts
    return [Subset(data, p) for p in parts]
