"""The training loop every course recipe shares.

    trainer = Trainer(model, optimizer, F.cross_entropy, train_loader, {"test": test_loader},
                      scheduler=scheduler, out_dir="runs/mnist-mlp", seed=0)
    history = trainer.fit(epochs=10)          # or fit(10, resume=True) after an interruption

Per epoch: mini-batch training with a live progress bar (loss and accuracy so far), then an
evaluation pass on every named split, then one row of metrics appended to the history and written
to `metrics.json` and `metrics.csv`, and a checkpoint (`checkpoint.npz`: model, optimizer,
scheduler and history; no pickle). Every file is written atomically, so an interrupted run leaves
the last complete epoch on disk, and `fit(..., resume=True)` continues from it.

Resume is exact: at the start of epoch e the global generator (dropout masks, random
augmentation drawn from it) is reseeded from (seed, e), and loaders with a `set_epoch` method
shuffle from (their seed, e), so a resumed run computes the same numbers as an uninterrupted one.

Tasks:
  "classification": logits (N, classes), integer targets (N,); metrics loss, top1, top5 (top-k
                    needs at least k classes) and, at the end, a confusion matrix per split;
  "segmentation":   one logit per pixel (N, 1, H, W) and a mask (N, 1, H, W) or (N, H, W) in
                    {0, 1}; metrics loss, pixel accuracy, IoU and Dice of the foreground
                    (pixels with logit > 0), counted over the whole split.
"""
from __future__ import annotations

import csv
import json
import os
import time

import numpy as np

from . import checkpoint, metrics
from .progress import progress
from .device import canonical_device
from .tensor import Tensor, manual_seed, no_grad

__all__ = ["Trainer", "TASKS"]

TASKS = ("classification", "segmentation")
CHECKPOINT_NAME = "checkpoint.npz"


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
        train_loader / eval_loaders: iterables of (x, y) NumPy batches with a `len()`; eval_loaders maps
            a split name ("test", "val", ...) to its loader.
        scheduler: stepped once per epoch, after the epoch's updates.
        task: "classification" or "segmentation" (see the module docstring).
        num_classes: for the confusion matrix (classification); None skips it.
        out_dir: folder for metrics.json, metrics.csv and checkpoint.npz; None writes nothing.
        config: JSON-serialisable settings stored in the logs and checkpoints (and checked on resume).
        device: "cpu" or "cuda": the model is moved there and batches are made there; None keeps the
            device the model's parameters are on. (Move the model before its optimizer has state.)
    """

    def __init__(self, model, optimizer, loss_fn, train_loader, eval_loaders=None, *, scheduler=None,
                 task: str = "classification", num_classes: int | None = None, out_dir=None, seed: int = 0,
                 config: dict | None = None, show_progress: bool = True, device: str | None = None):
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
        self.history: list[dict] = []
        self.confusion: dict[str, np.ndarray] = {}

    # --- one pass ------------------------------------------------------------------------------
    def _targets(self, y: np.ndarray) -> Tensor:
        if self.task == "classification":
            return Tensor(np.asarray(y, dtype=np.int64), device=self.device)
        return Tensor(np.asarray(y, dtype=np.float32).reshape(len(y), 1, *np.shape(y)[-2:]), device=self.device)

    def train_epoch(self, epoch: int, epochs: int) -> dict:
        self.model.train()
        counts = _Counts(self.task, None)
        bar = progress(self.train_loader, total=len(self.train_loader), desc=f"epoch {epoch}/{epochs}",
                       enabled=self.show_progress)
        every = max(1, len(self.train_loader) // 50)
        for i, (x, y) in enumerate(bar):
            logits = self.model(Tensor(x, device=self.device))
            loss = self.loss_fn(logits, self._targets(y))
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            value = loss.item()
            if not np.isfinite(value):
                raise FloatingPointError(f"epoch {epoch}, batch {i}: the loss is {value}; lower the learning rate")
            counts.add(value, logits.numpy(), np.asarray(y))
            if i % every == 0:
                live = counts.summary()
                bar.set_postfix(**{k: round(v, 4) for k, v in live.items()})
        if hasattr(bar, "close"):
            bar.close()
        return counts.summary()

    def evaluate(self, loader, name: str = "") -> dict:
        """Metrics of the model in eval mode on one split (and its confusion matrix, kept in `confusion`)."""
        self.model.eval()
        counts = _Counts(self.task, self.num_classes if self.task == "classification" else None)
        with no_grad():
            for x, y in loader:
                logits = self.model(Tensor(x, device=self.device))
                counts.add(self.loss_fn(logits, self._targets(y)).item(), logits.numpy(), np.asarray(y))
        if counts.confusion is not None:
            self.confusion[name] = counts.confusion
        return counts.summary()

    # --- the loop -------------------------------------------------------------------------------
    def fit(self, epochs: int, resume: bool = False) -> list[dict]:
        """Train until `epochs` epochs are done in all (counting those of a resumed checkpoint)."""
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        start = self._resume() if resume else 0
        if start >= epochs:
            print(f"checkpoint already has {start} epochs (asked for {epochs}); nothing to train")
        for epoch in range(start + 1, epochs + 1):
            manual_seed(_epoch_seed(self.seed, epoch))
            for loader in (self.train_loader, *self.eval_loaders.values()):
                if hasattr(loader, "set_epoch"):
                    loader.set_epoch(epoch)
            t0 = time.perf_counter()
            row = {"epoch": epoch, "lr": float(self.optimizer.param_groups[0]["lr"])}
            row.update({f"train_{k}": v for k, v in self.train_epoch(epoch, epochs).items()})
            train_seconds = time.perf_counter() - t0
            for name, loader in self.eval_loaders.items():
                row.update({f"{name}_{k}": v for k, v in self.evaluate(loader, name).items()})
            if self.scheduler is not None:
                self.scheduler.step()
            row["train_seconds"] = train_seconds
            row["seconds"] = time.perf_counter() - t0
            self.history.append(row)
            self._report(row)
            self._save(epoch)
        return self.history

    def _report(self, row: dict) -> None:
        if not self.show_progress:
            return
        parts = [f"{k}={v:.4f}" for k, v in row.items() if k not in ("epoch", "lr", "seconds", "train_seconds")]
        print(f"epoch {row['epoch']}: " + ", ".join(parts) + f", {row['seconds']:.1f}s", flush=True)

    # --- files ----------------------------------------------------------------------------------
    def _path(self, name: str) -> str:
        return os.path.join(self.out_dir, name)

    def _save(self, epoch: int) -> None:
        if self.out_dir is None:
            return
        os.makedirs(self.out_dir, exist_ok=True)
        meta = {"epoch": epoch, "seed": self.seed, "config": self.config, "history": self.history,
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None}
        checkpoint.save_module(self._path(CHECKPOINT_NAME), self.model, self.optimizer, **meta)
        document = {"config": self.config, "seed": self.seed, "history": self.history,
                    "confusion": {k: v.tolist() for k, v in self.confusion.items()}}
        checkpoint.write_atomically(self._path("metrics.json"), lambda f: json.dump(document, f, indent=1), "w")
        columns = list(dict.fromkeys(k for row in self.history for k in row))

        def write_csv(f):
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.history)
        checkpoint.write_atomically(self._path("metrics.csv"), write_csv, "w")

    def _resume(self) -> int:
        if self.out_dir is None:
            raise ValueError("resume needs an out_dir holding a checkpoint")
        path = self._path(CHECKPOINT_NAME)
        if not os.path.exists(path):
            print(f"no checkpoint at {path}; starting from scratch")
            return 0
        meta = checkpoint.load_module(path, self.model, self.optimizer)
        saved = meta.get("config", {})
        changed = {k: (saved.get(k), v) for k, v in self.config.items() if k in saved and saved[k] != v
                   and k not in ("epochs", "resume")}
        if changed:
            raise ValueError(f"checkpoint {path} was written with other settings: "
                             + ", ".join(f"{k}: {old!r} there, {new!r} now" for k, (old, new) in changed.items())
                             + "; use another out folder or the same settings")
        if self.scheduler is not None and meta.get("scheduler") is not None:
            self.scheduler.load_state_dict(meta["scheduler"])
        self.history = list(meta.get("history", []))
        print(f"resumed from {path} after epoch {meta['epoch']}")
        return int(meta["epoch"])
