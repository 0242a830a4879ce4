"""The training loop every course recipe shares.

    trainer = Trainer(model, optimizer, F.cross_entropy, train_loader, {"test": test_loader},
                      scheduler=scheduler, out_dir="runs/mnist-mlp", seed=0)
    history = trainer.fit(epochs=10)          # or fit(10, resume=True) after an interruption

Per epoch: mini-batch training with a live progress bar (loss and accuracy so far), then an
evaluation pass on every named split, then one row of metrics appended to the history and written
to `metrics.json` and `metrics.csv`, and a checkpoint (`checkpoint.npz`: model, optimizer,
scheduler and history; no pickle). Every file is written atomically, so an interrupted run leaves
the last complete epoch on disk, and `fit(..., resume=True)` continues from it (refusing a checkpoint
written with other settings unless force=True). A run holds its output folder (`output_lock`): a
second process training into the same folder is refused instead of mixing files with the first.

Resume is exact: at the start of epoch e the global generator (dropout masks, random
augmentation drawn from it) is reseeded from (seed, e), and loaders with a `set_epoch` method
shuffle from (their seed, e), so a resumed run computes the same numbers as an uninterrupted one.

Distributed (`distributed=True`, after `distributed.init_process_group()`, one process per rank
under `mpiexec -n N`): the model is wrapped in DistributedDataParallel; the training loader's batch
size is the global one, and each rank takes every N-th sample of it (a DataLoader over the same data
with a DistributedSampler that draws the loader's own permutation), so N ranks take the same steps
as one process (exactly, when N divides the data set and the batch; batch-norm statistics are per
rank unless sync_batch_norm=True, dropout masks and augmentation differ). Evaluation splits are striped over the ranks; the
metrics of every pass are summed over the ranks, so every rank holds the global figures. Rank 0
alone shows progress and writes the output folder (checkpoints atomically, as always); a resume
reads the checkpoint on every rank (the folder must be shared: one machine, or a shared file
system) and works with any number of ranks: the checkpoint holds no per-rank state.

Tasks:
  "classification": logits (N, classes), integer targets (N,); metrics loss, top1, top5 (top-k
                    needs at least k classes) and, at the end, a confusion matrix per split;
  "segmentation":   one logit per pixel (N, 1, H, W) and a mask (N, 1, H, W) or (N, H, W) in
                    {0, 1}; metrics loss, pixel accuracy, IoU and Dice of the foreground
                    (pixels with logit > 0), counted over the whole split.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import time

import numpy as np

from . import checkpoint, metrics
from .progress import progress
from .device import canonical_device
from .optim.lr_scheduler import ReduceLROnPlateau
from .profiler import profile, write_report
from .tensor import Tensor, manual_seed, no_grad

__all__ = ["Trainer", "TASKS", "SettingsError", "TrainingInterrupted", "output_lock"]

TASKS = ("classification", "segmentation")
CHECKPOINT_NAME = "checkpoint.npz"
PROFILE_WARMUP = 2  # steps before --profile starts recording (first calls allocate, compile, fill caches)
LOCK_NAME = ".lock"


class SettingsError(ValueError):
    """The run's settings do not fit its data, its checkpoint or its output folder (the message says how)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during `fit`; `epoch` is the last epoch whose checkpoint is on disk (0: none yet)."""

    def __init__(self, epoch: int, out_dir: str | None):
        super().__init__(epoch, out_dir)
        self.epoch, self.out_dir = epoch, out_dir


_held: dict[str, int] = {}  # folders this process has locked -> how many `output_lock`s are open on each


@contextlib.contextmanager
def output_lock(folder):
    """Hold `folder` (created if needed) for this process while the block runs.

    Another process asking for the same folder gets a SettingsError naming it and the PID that holds
    it, so two runs never mix their checkpoints and logs. The lock is the operating system's (flock,
    msvcrt.locking on Windows) on `folder`/.lock: it goes away when the process dies, however it dies.
    Nested calls in one process share the lock.
    """
    folder = os.fspath(folder)
    key = os.path.realpath(folder)
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    try:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(os.path.join(folder, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise SettingsError(f"cannot use {folder!r} as the output folder: {e.strerror}; choose another --out") from None
    try:
        try:
            _lock(fd)
        except OSError:
            with open(os.path.join(folder, LOCK_NAME), "rb") as f:
                f.seek(1)  # byte 0 is the locked one (Windows refuses to read it)
                pid = f.read().decode("ascii", "replace").strip() or "unknown"
            raise SettingsError(f"output folder {folder!r} is in use by another run (PID {pid}); wait for it "
                                "to finish or choose another --out") from None
        os.lseek(fd, 0, os.SEEK_SET)  # fixed width: overwrites a previous holder's PID whole
        os.write(fd, f" {os.getpid()}".ljust(21).encode("ascii") + b"\n")
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
    finally:
        os.close(fd)  # closing the file releases the lock


def _lock(fd: int) -> None:
    """Lock an open file without waiting; OSError when another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _on(batch, device: str, dtype=None) -> Tensor:
    """A batch as a Tensor on `device`: a Tensor is moved (no copy when it is there already), an array wrapped."""
    if isinstance(batch, Tensor):
        return batch.to(device=device, dtype=dtype)
    return Tensor(np.asarray(batch, dtype=dtype), device=device)


def _numpy(batch) -> np.ndarray:
    return batch.detach().numpy() if isinstance(batch, Tensor) else np.asarray(batch)


def _training_share(loader, rank: int, world_size: int, seed: int | None = None):
    """Rank `rank`'s part of a training DataLoader of global batch size B: a loader over the same data
    set with batch size B / world_size and a DistributedSampler drawing the loader's own permutation
    (its k-th batch is every world_size-th sample of the loader's k-th batch). A loader that has a
    DistributedSampler already is taken as this rank's share. `seed`: the permutation's (default the
    loader's; a distributed Trainer passes rank 0's, so that every rank draws the same one)."""
    from .data import DataLoader
    from .distributed import DistributedSampler
    if isinstance(getattr(loader, "sampler", None), DistributedSampler):
        return loader
    if not isinstance(loader, DataLoader) or loader.sampler is not None or loader.batch_sampler is not None \
            or loader.batch_size is None or loader._iterable or loader.generator is not None:
        raise SettingsError("distributed training shares out a DataLoader(dataset, batch_size, shuffle=..., "
                            "seed=...) itself; give it one (without sampler, batch_sampler or generator), or a "
                            "DataLoader whose sampler is a DistributedSampler")
    if loader.batch_size % world_size:
        b = loader.batch_size
        fits = ", ".join(str(v) for v in sorted({max(world_size, b - b % world_size), b - b % world_size + world_size}))
        raise SettingsError(f"the batch size {b} is the global batch, shared by {world_size} ranks: it must be "
                            f"divisible by {world_size} (--batch-size {fits}, for instance)")
    seed = loader.seed if seed is None else seed
    # drop_last: the sampler cuts the data set to a multiple of world_size, so the ranks drop what one
    # process drops (its last partial batch), no more, no fewer steps
    sampler = DistributedSampler(loader.dataset, world_size, rank, shuffle=loader.shuffle, seed=seed,
                                 drop_last=loader.drop_last)
    return _like(loader, batch_size=loader.batch_size // world_size, sampler=sampler,
                 seed=(seed + rank * 2 ** 40) % 2 ** 63)  # each rank its own augmentation draws


def _evaluation_share(name: str, loader, rank: int, world_size: int):
    """Every world_size-th sample of an evaluation DataLoader, from `rank` on (no padding: the sums over
    the ranks count every sample once)."""
    from .data import DataLoader
    if not isinstance(loader, DataLoader) or loader.sampler is not None or loader.batch_sampler is not None \
            or loader.shuffle or loader._iterable or loader.drop_last:
        raise SettingsError(f"distributed evaluation shares out the {name!r} loader itself: give a "
                            "DataLoader(dataset, batch_size) without shuffle, drop_last, sampler or batch_sampler")
    return _like(loader, sampler=range(rank, len(loader.dataset), world_size))


def _like(loader, **changes):
    """A DataLoader like `loader` (data set, transforms, workers) with some arguments changed."""
    from .data import DataLoader
    kept = dict(dataset=loader.dataset, batch_size=loader.batch_size, num_workers=loader.num_workers,
                collate_fn=loader.collate_fn, drop_last=loader.drop_last, timeout=loader.timeout,
                worker_init_fn=loader.worker_init_fn, multiprocessing_context=loader.multiprocessing_context,
                seed=loader.seed, transform=loader.transform, target_transform=loader.target_transform,
                pair_transform=loader.pair_transform, prefetch=loader.prefetch)
    if loader.num_workers:
        kept["prefetch_factor"] = loader.prefetch_factor
    return DataLoader(**dict(kept, **changes))


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch)) % (2 ** 63)


class _Counts:
    """Running sums for one pass over a split; `summary()` gives the metrics of that pass."""

    def __init__(self, task: str, num_classes: int | None):
        self.task, self.num_classes = task, num_classes
        self.n = 0
        self.width = 0  # number of classes seen in the logits
        self.loss_sum = 0.0
        self.top1 = self.top5 = 0
        self.tp = self.fp = self.fn = self.tn = 0
        self.confusion = np.zeros((num_classes, num_classes), np.int64) if num_classes else None

    def add(self, loss: float, logits: np.ndarray, target: np.ndarray) -> None:
        n = len(target)
        self.n += n
        self.loss_sum += loss * n
        if self.task == "classification":
            pred = logits.argmax(axis=1)
            self.width = logits.shape[1]
            self.top1 += int((pred == target).sum())
            if self.width >= 5:
                self.top5 += round(metrics.top_k_accuracy(logits, target, 5) * n)
            if self.confusion is not None:
                self.confusion += metrics.confusion_matrix(pred, target, self.num_classes)
        else:
            pred = logits.reshape(n, -1) > 0
            truth = target.reshape(n, -1) >= 0.5
            self.tp += int((pred & truth).sum())
            self.fp += int((pred & ~truth).sum())
            self.fn += int((~pred & truth).sum())
            self.tn += int((~pred & ~truth).sum())

    def sum_over_ranks(self) -> None:
        """Replace the counts by their sums over all ranks (a distributed pass: each rank saw a share)."""
        from . import distributed as dist
        totals = Tensor(np.array([self.n, self.loss_sum, self.top1, self.top5, self.tp, self.fp, self.fn, self.tn],
                                 np.float64))
        dist.all_reduce(totals)
        n, self.loss_sum, *rest = totals.numpy().tolist()
        self.n, (self.top1, self.top5, self.tp, self.fp, self.fn, self.tn) = round(n), (round(v) for v in rest)
        width = Tensor(np.array([self.width], np.int64))
        dist.all_reduce(width, dist.ReduceOp.MAX)  # a rank without a batch of this split saw no logits
        self.width = int(width.item())
        if self.confusion is not None:
            confusion = Tensor(self.confusion)
            dist.all_reduce(confusion)
            self.confusion = confusion.numpy()

    def summary(self) -> dict:
        out = {"loss": self.loss_sum / max(self.n, 1)}
        if self.task == "classification":
            out["top1"] = self.top1 / max(self.n, 1)
            if self.width >= 5:
                out["top5"] = self.top5 / max(self.n, 1)
        else:
            pixels = self.tp + self.fp + self.fn + self.tn
            out["pixel_acc"] = (self.tp + self.tn) / max(pixels, 1)
            # An empty prediction of an empty mask is a perfect score (no foreground anywhere).
            union = self.tp + self.fp + self.fn
            out["iou"] = self.tp / union if union else 1.0
            out["dice"] = 2 * self.tp / (2 * self.tp + self.fp + self.fn) if union else 1.0
        return out


class Trainer:
    """Train `model` with `optimizer` on `train_loader`, evaluating on `eval_loaders` after each epoch.

    Args:
        loss_fn: (logits Tensor, target Tensor) -> scalar Tensor, the mean loss of the batch.
        train_loader / eval_loaders: iterables of (x, y) batches, Tensors (DataLoader's) or NumPy arrays,
            with a `len()`; eval_loaders maps a split name ("test", "val", ...) to its loader.
        scheduler: stepped once per epoch, after the epoch's updates and evaluation; those that PyTorch
            steps per batch (OneCycleLR, CyclicLR: `per_batch`) after every optimizer step;
            ReduceLROnPlateau with the epoch's loss on the first evaluation set (the training loss
            without one).
        task: "classification" or "segmentation" (see the module docstring).
        num_classes: for the confusion matrix (classification); None skips it.
        out_dir: folder for metrics.json, metrics.csv and checkpoint.npz; None writes nothing.
        config: JSON-serialisable settings stored in the logs and checkpoints (and checked on resume).
        device: "cpu" or "cuda": the model and each batch are moved there (`.to(device)`); None keeps the
            device the model's parameters are on. (Move the model before its optimizer has state.)
        distributed: train with every rank of the process group (see the module docstring): the loaders
            are DataLoaders over the whole data set, train_loader with the global batch size.
        sync_batch_norm: with distributed, batch norm layers take their training statistics from the
            global batch (nn.SyncBatchNorm), so N ranks train as one process does.
        profile_steps: profile that many training steps of the first epoch this run trains, after
            PROFILE_WARMUP steps (tinygrad_course.profile): the tables go to stdout and `profile.txt`, the
            trace to `trace.json` (chrome://tracing, Perfetto) in out_dir.
    """

    def __init__(self, model, optimizer, loss_fn, train_loader, eval_loaders=None, *, scheduler=None,
                 task: str = "classification", num_classes: int | None = None, out_dir=None, seed: int = 0,
                 config: dict | None = None, show_progress: bool = True, device: str | None = None,
                 distributed: bool = False, sync_batch_norm: bool = False, profile_steps: int = 0):
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
        self.model, self.optimizer, self.loss_fn, self.scheduler = model, optimizer, loss_fn, scheduler
        self.train_loader, self.eval_loaders = train_loader, dict(eval_loaders or {})
        self.task, self.num_classes, self.seed = task, num_classes, int(seed)
        self.out_dir = os.fspath(out_dir) if out_dir is not None else None
        self.config = dict(config or {})
        self.show_progress = show_progress
        if device is None:  # where the model already is
            device = next((p.device for p in model.parameters()), "cpu")
        self.device = canonical_device(device)
        self.model.to(self.device)
        if sync_batch_norm and not distributed:
            raise ValueError("sync_batch_norm=True applies to distributed training only (distributed=True)")
        self.rank, self.world_size = 0, 1
        self._stepping = self.model  # what the training steps call: the model, or its DDP wrapper
        if distributed:
            from . import distributed as dist
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
            seed = Tensor(np.array([getattr(train_loader, "seed", 0) or 0], np.int64))
            dist.broadcast(seed, src=0)  # rank 0's shuffle seed: one permutation, whatever each rank drew
            self.train_loader = _training_share(train_loader, self.rank, self.world_size, int(seed.item()))
            self.eval_loaders = {name: _evaluation_share(name, loader, self.rank, self.world_size)
                                 for name, loader in self.eval_loaders.items()}
            if sync_batch_norm:
                from .nn import SyncBatchNorm
                self.model = SyncBatchNorm.convert_sync_batchnorm(self.model)  # shares the parameters
            self._stepping = dist.DistributedDataParallel(self.model)
            self.show_progress = show_progress and self.rank == 0
        self.distributed = distributed
        self.profile_steps = int(profile_steps)
        self.history: list[dict] = []
        self.saved_epoch = 0  # the last epoch whose checkpoint is on disk
        self.confusion: dict[str, np.ndarray] = {}

    # --- one pass ------------------------------------------------------------------------------
    def _inputs(self, x) -> Tensor:
        return _on(x, self.device)

    def _targets(self, y) -> Tensor:
        if self.task == "classification":
            return _on(y, self.device, np.int64)
        y = _on(y, self.device, np.float32)
        return y.reshape(len(y), 1, *y.shape[-2:])

    def train_epoch(self, epoch: int, epochs: int) -> dict:
        self.model.train()
        counts = _Counts(self.task, None)
        bar = progress(self.train_loader, total=len(self.train_loader), desc=f"epoch {epoch}/{epochs}",
                       enabled=self.show_progress)
        every = max(1, len(self.train_loader) // 50)
        profiling, self.profile_steps = self.profile_steps, 0  # the first epoch of this run only
        prof = None
        try:
            for i, (x, y) in enumerate(bar):
                if profiling and i == PROFILE_WARMUP:
                    prof = profile().__enter__()
                logits = self._stepping(self._inputs(x))
                loss = self.loss_fn(logits, self._targets(y))
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                if getattr(self.scheduler, "per_batch", False):
                    self.scheduler.step()
                value = loss.item()
                if not np.isfinite(value):
                    raise FloatingPointError(f"epoch {epoch}, batch {i}: the loss is {value}; lower the learning rate")
                counts.add(value, logits.detach().numpy(), _numpy(y))
                if i % every == 0:
                    live = counts.summary()
                    bar.set_postfix(**{k: round(v, 4) for k, v in live.items()})
                if prof is not None and i == PROFILE_WARMUP + profiling - 1:
                    done, prof = prof, None
                    done.__exit__(None, None, None)
                    self._write_profile(done, profiling)
        except BaseException:
            if prof is not None:  # stop profiling; the error, not a report, is what the user sees
                prof.__exit__(None, None, None)
            raise
        if prof is not None:  # the epoch ended inside the window
            prof.__exit__(None, None, None)
            self._write_profile(prof, len(self.train_loader) - PROFILE_WARMUP)
        if profiling and len(self.train_loader) <= PROFILE_WARMUP:
            self._say(f"--profile: the epoch has {len(self.train_loader)} steps, all of them warm-up "
                      f"({PROFILE_WARMUP}); nothing was profiled (use more data or a smaller batch)")
        if hasattr(bar, "close"):
            bar.close()
        if self.distributed:
            counts.sum_over_ranks()
        return counts.summary()

    def evaluate(self, loader, name: str = "", *, over_ranks: bool = False) -> dict:
        """Metrics of the model in eval mode on one split (and its confusion matrix, kept in `confusion`).
        over_ranks (distributed training: every rank calls it, each with its share of the split): the
        metrics of the whole split, summed over the ranks, with rank 0's batch-norm statistics."""
        self.model.eval()
        counts = _Counts(self.task, self.num_classes if self.task == "classification" else None)
        with no_grad():
            if over_ranks:  # rank 0's batch-norm statistics on every rank, as in its checkpoint
                from . import distributed as dist
                for b in self.model.buffers():
                    dist.broadcast(b, src=0)
            for x, y in loader:
                logits = self.model(self._inputs(x))
                counts.add(self.loss_fn(logits, self._targets(y)).item(), logits.numpy(), _numpy(y))
        if over_ranks:
            counts.sum_over_ranks()
        if counts.confusion is not None:
            self.confusion[name] = counts.confusion
        return counts.summary()

    # --- the loop -------------------------------------------------------------------------------
    def fit(self, epochs: int, resume: bool = False, force: bool = False) -> list[dict]:
        """Train until `epochs` epochs are done in all (counting those of a resumed checkpoint).

        With resume=True a checkpoint written with other settings (config or seed) is refused unless
        force=True. Ctrl-C raises TrainingInterrupted, which says the last epoch saved."""
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        writes = self.out_dir is not None and self.rank == 0
        with output_lock(self.out_dir) if writes else contextlib.nullcontext():
            start = self._resume(force) if resume else 0
            if self.distributed:
                self._check_same_checkpoint(start)
            if start >= epochs:
                self._say(f"checkpoint already has {start} epochs (asked for {epochs}); nothing to train")
            self.saved_epoch = start
            try:
                for epoch in range(start + 1, epochs + 1):
                    self._epoch(epoch, epochs)
            except KeyboardInterrupt:
                raise TrainingInterrupted(self.saved_epoch, self.out_dir) from None
        return self.history

    def _check_same_checkpoint(self, start: int) -> None:
        """Every rank must continue from rank 0's checkpoint: a rank that cannot see it would start from
        scratch, one that sees a stale copy (another machine's folder) would train another model."""
        from . import distributed as dist
        path = self._path(CHECKPOINT_NAME) if self.out_dir is not None else None
        digest = bytes(32)
        if start:
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).digest()
        mine = np.frombuffer(digest + int(start).to_bytes(8, "little"), np.uint8)
        rank0 = Tensor(mine.copy())
        dist.broadcast(rank0, src=0)
        epoch0 = int.from_bytes(rank0.numpy()[32:].tobytes(), "little")
        differs = Tensor(np.array([int(not np.array_equal(mine, rank0.numpy()))]))
        dist.all_reduce(differs, dist.ReduceOp.MAX)  # every rank stops, not only the one that differs
        if differs.item():
            raise SettingsError(f"the ranks would resume from different checkpoints (rank 0: after epoch {epoch0}; "
                                f"rank {self.rank}: after epoch {start}{', another file' if start == epoch0 else ''}): "
                                f"with --resume every rank reads {path}, so the output folder must be shared "
                                "(one machine, or a shared file system)")

    def _epoch(self, epoch: int, epochs: int) -> None:
        # Each rank its own dropout masks (rank 0 those of a single process); the same again on resume.
        manual_seed((_epoch_seed(self.seed, epoch) + self.rank * 2 ** 40) % 2 ** 63)
        for loader in (self.train_loader, *self.eval_loaders.values()):
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(epoch)
        t0 = time.perf_counter()
        row = {"epoch": epoch, "lr": float(self.optimizer.param_groups[0]["lr"])}
        row.update({f"train_{k}": v for k, v in self.train_epoch(epoch, epochs).items()})
        train_seconds = time.perf_counter() - t0
        for name, loader in self.eval_loaders.items():
            row.update({f"{name}_{k}": v for k, v in self.evaluate(loader, name, over_ranks=self.distributed).items()})
        if isinstance(self.scheduler, ReduceLROnPlateau):
            split = next(iter(self.eval_loaders), "train")
            self.scheduler.step(row[f"{split}_loss"])
        elif self.scheduler is not None and not getattr(self.scheduler, "per_batch", False):
            self.scheduler.step()
        row["train_seconds"] = train_seconds
        row["seconds"] = time.perf_counter() - t0
        if self.distributed:
            row["ranks"] = self.world_size
        self.history.append(row)
        self._report(row)
        self._save(epoch)

    def _write_profile(self, prof, steps: int) -> None:
        """The profile of `steps` training steps: the table on stdout, profile.txt and trace.json."""
        if self.rank == 0:
            text, paths = write_report(prof, f"Profile of {steps} training steps (after {PROFILE_WARMUP} warm-up "
                                             "steps)", self.out_dir)
            self._say(text + ("\nprofile: " + ", ".join(paths) if paths else ""))

    def _say(self, message: str) -> None:
        """A line for the user, from rank 0 only (N ranks would print it N times)."""
        if self.rank == 0:
            print(message, flush=True)

    def _report(self, row: dict) -> None:
        if not self.show_progress:
            return
        parts = [f"{k}={v:.4f}" for k, v in row.items() if k not in ("epoch", "lr", "seconds", "train_seconds", "ranks")]
        print(f"epoch {row['epoch']}: " + ", ".join(parts) + f", {row['seconds']:.1f}s", flush=True)

    # --- files ----------------------------------------------------------------------------------
    def _path(self, name: str) -> str:
        return os.path.join(self.out_dir, name)

    def _save(self, epoch: int) -> None:
        if self.out_dir is None or self.rank != 0:  # one writer; the other ranks hold the same state
            self.saved_epoch = epoch
            return
        os.makedirs(self.out_dir, exist_ok=True)
        meta = {"epoch": epoch, "seed": self.seed, "config": self.config, "history": self.history,
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None}
        checkpoint.save_module(self._path(CHECKPOINT_NAME), self.model, self.optimizer, **meta)
        self.saved_epoch = epoch
        document = {"config": self.config, "seed": self.seed, "history": self.history,
                    "confusion": {k: v.tolist() for k, v in self.confusion.items()}}
        checkpoint.write_atomically(self._path("metrics.json"), lambda f: json.dump(document, f, indent=1), "w")
        columns = list(dict.fromkeys(k for row in self.history for k in row))

        def write_csv(f):
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.history)
        checkpoint.write_atomically(self._path("metrics.csv"), write_csv, "w")

    def _resume(self, force: bool = False) -> int:
        if self.out_dir is None:
            raise ValueError("resume needs an out_dir holding a checkpoint")
        path = self._path(CHECKPOINT_NAME)
        if not os.path.exists(path):
            self._say(f"no checkpoint at {path}; starting from scratch")
            return 0
        state, meta = checkpoint.load(path)
        epoch = meta.get("epoch") if isinstance(meta, dict) else None
        if (type(epoch) is not int or epoch < 1 or not isinstance(meta.get("config", {}), dict)
                or not isinstance(meta.get("history", []), list)):
            raise checkpoint.CheckpointError(f"checkpoint file {path!r} has no valid epoch, config or history in "
                                             "its metadata; it was not written by Trainer")
        changed = self._changed_settings(meta)
        if changed and not force:
            raise SettingsError(f"checkpoint {path} was written with other settings: {changed}; resume with the "
                                "same settings, use another --out, or pass --force to continue with the new ones")
        if changed:
            self._say(f"continuing {path} with other settings (--force): {changed}")
        for name, value in state.items():  # a NaN there would only show up as a NaN loss, much later
            if value.dtype.kind in "fc" and not np.isfinite(value).all():
                raise checkpoint.CheckpointError(
                    f"checkpoint file {path!r} holds non-finite weights: {name!r} has "
                    f"{int((~np.isfinite(value)).sum())} NaN or infinite values; it cannot be resumed "
                    "(train again without --resume, or into another --out)")
        try:
            meta = checkpoint.load_module(path, self.model, self.optimizer)
        except checkpoint.CheckpointError:
            raise
        except (RuntimeError, ValueError) as e:  # shapes or parameter groups that differ (a --force'd resume)
            raise checkpoint.CheckpointError(f"checkpoint file {path!r} does not fit this model and optimizer: "
                                             f"{e}") from None
        if self.scheduler is not None and meta.get("scheduler") is not None:
            self.scheduler.load_state_dict(meta["scheduler"])
        self.history = list(meta.get("history", []))
        self._say(f"resumed from {path} after epoch {epoch}")
        return epoch

    def _changed_settings(self, meta: dict) -> str:
        """The settings (config and seed) that differ from those `meta` was saved with, as text; "" if none.
        The epoch count may change: that is what resuming is for."""
        saved = dict(meta.get("config") or {}, seed=meta.get("seed"))
        now = dict(self.config, seed=self.seed)
        return ", ".join(f"{k}: {saved[k]!r} there, {v!r} now" for k, v in now.items()
                         if k in saved and saved[k] != v and k not in ("epochs", "resume"))
