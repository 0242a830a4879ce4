"""Tests of the shared training loop (tinygrad_course.training.Trainer).

Learning on an easy problem, the files it writes, exact resume after an interruption (same weights
and history as an uninterrupted run, dropout included), refusal to resume with other settings,
the metric arithmetic for both tasks, and a clear error on a non-finite loss.
"""
from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from tinygrad_course import checkpoint, nn, optim
from tinygrad_course.nn import functional as F
from tinygrad_course.tensor import manual_seed
from tinygrad_course.training import SettingsError, Trainer, TrainingInterrupted, _Counts, output_lock


class ListLoader:
    """Minimal loader: shuffles from (seed, epoch) like the library's DataLoader."""

    def __init__(self, x, y, batch_size, shuffle=False, seed=0):
        self.x, self.y, self.batch_size, self.shuffle, self.seed, self.epoch = x, y, batch_size, shuffle, seed, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x)) if self.shuffle
                 else np.arange(len(self.x)))
        for i in range(0, len(order), self.batch_size):
            idx = order[i:i + self.batch_size]
            yield self.x[idx], self.y[idx]


def _blobs(n=240, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.array([[0, 3], [3, -2], [-3, -2]], np.float32)
    return (centres[y] + rng.standard_normal((n, 2)).astype(np.float32)), y


def _setup(tmp_path, dropout=0.0, seed=0):
    x, y = _blobs()
    manual_seed(seed)
    layers = [nn.Linear(2, 16), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else []) + [nn.Linear(16, 3)]
    model = nn.Sequential(*layers)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    trainer = Trainer(model, opt, F.cross_entropy, ListLoader(x[:200], y[:200], 16, shuffle=True),
                      {"test": ListLoader(x[200:], y[200:], 40)}, scheduler=sched, num_classes=3,
                      out_dir=tmp_path, seed=seed, config={"lr": 0.1}, show_progress=False)
    return trainer, model


def test_trainer_learns_and_writes_logs(tmp_path):
    trainer, _ = _setup(tmp_path)
    history = trainer.fit(5)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5]
    assert history[-1]["test_top1"] > 0.9 and history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[1]["lr"] == pytest.approx(0.1 * 0.9)  # the schedule steps once per epoch
    assert "test_top5" not in history[-1]  # three classes: top-5 is meaningless
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert doc["history"] == json.loads(json.dumps(history))
    assert np.asarray(doc["confusion"]["test"]).sum() == 40
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 and float(rows[-1]["test_top1"]) == pytest.approx(history[-1]["test_top1"])
    _, meta = checkpoint.load(tmp_path / "checkpoint.npz")
    assert meta["epoch"] == 5 and len(meta["history"]) == 5


def test_resume_reproduces_an_uninterrupted_run_exactly(tmp_path):
    full, full_model = _setup(tmp_path / "full", dropout=0.3)
    full.fit(4)
    first, _ = _setup(tmp_path / "parts", dropout=0.3)
    first.fit(2)  # "interrupted" after two epochs
    resumed, resumed_model = _setup(tmp_path / "parts", dropout=0.3, seed=0)
    # a different initialisation must not matter: everything comes from the checkpoint
    for p in resumed_model.parameters():
        p.data[...] = 0
    history = resumed.fit(4, resume=True)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert [r["train_loss"] for r in history] == [r["train_loss"] for r in full.history]
    for (name, a), (_, b) in zip(full_model.state_dict().items(), resumed_model.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert resumed.scheduler.get_last_lr() == full.scheduler.get_last_lr()


def test_resume_refuses_other_settings_and_starts_fresh_without_checkpoint(tmp_path, capsys):
    trainer, _ = _setup(tmp_path)
    trainer.fit(1)
    other, _ = _setup(tmp_path)
    other.config = {"lr": 0.5}
    with pytest.raises(ValueError, match="lr: 0.1 there, 0.5 now"):
        other.fit(2, resume=True)
    fresh, _ = _setup(tmp_path / "empty")
    assert len(fresh.fit(1, resume=True)) == 1
    assert "starting from scratch" in capsys.readouterr().out


def test_resume_compares_the_seed_and_force_continues_with_the_new_settings(tmp_path, capsys):
    trainer, _ = _setup(tmp_path)
    trainer.fit(1)
    other, _ = _setup(tmp_path, seed=3)
    with pytest.raises(SettingsError, match="seed: 0 there, 3 now; .*--force"):
        other.fit(2, resume=True)
    assert len(other.fit(2, resume=True, force=True)) == 2
    assert "continuing" in capsys.readouterr().out
    assert checkpoint.load(tmp_path / "checkpoint.npz")[1]["seed"] == 3


def test_resume_refuses_non_finite_weights_and_names_them(tmp_path):
    trainer, _ = _setup(tmp_path)
    trainer.fit(1)
    path = tmp_path / "checkpoint.npz"
    state, meta = checkpoint.load(path)
    state["model.2.bias"][1] = np.inf
    checkpoint.save(path, state, meta)
    resumed, _ = _setup(tmp_path)
    with pytest.raises(checkpoint.CheckpointError, match="holds non-finite weights: 'model.2.bias' has 1 NaN"):
        resumed.fit(2, resume=True)


def test_resume_refuses_a_checkpoint_without_an_epoch(tmp_path):
    trainer, model = _setup(tmp_path)
    checkpoint.save_module(tmp_path / "checkpoint.npz", model, trainer.optimizer, epoch="3")
    with pytest.raises(checkpoint.CheckpointError, match="no valid epoch"):
        trainer.fit(2, resume=True)


def test_resume_into_another_model_names_the_checkpoint(tmp_path):
    trainer, _ = _setup(tmp_path)
    trainer.fit(1)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))  # same settings, other widths
    other = Trainer(model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9), F.cross_entropy,
                    trainer.train_loader, out_dir=tmp_path, config={"lr": 0.1}, show_progress=False)
    with pytest.raises(checkpoint.CheckpointError, match=r"(?s)checkpoint\.npz' does not fit this model and "
                                                         r"optimizer: .*'0.weight': shape \(16, 2\)"):
        other.fit(2, resume=True)


def test_ctrl_c_says_which_epoch_is_saved(tmp_path, monkeypatch):
    trainer, _ = _setup(tmp_path)
    trainer.fit(1)
    resumed, _ = _setup(tmp_path)

    def interrupt(epoch, epochs):
        raise KeyboardInterrupt
    monkeypatch.setattr(resumed, "train_epoch", interrupt)
    with pytest.raises(TrainingInterrupted) as info:
        resumed.fit(3, resume=True)
    assert isinstance(info.value, KeyboardInterrupt) and info.value.epoch == 1
    assert info.value.out_dir == str(tmp_path)
    assert checkpoint.load(tmp_path / "checkpoint.npz")[1]["epoch"] == 1


def test_output_lock_refuses_a_second_holder_and_names_its_pid(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    with output_lock(tmp_path / "run"):
        with output_lock(tmp_path / "run"):  # nested in one process: shared
            pass
        assert (tmp_path / "run" / ".lock").read_text().strip() == str(os.getpid())
    with open(tmp_path / "run" / ".lock", "r+") as other:  # another holder: its own open file, locked
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        other.write(" 4242\n")
        other.flush()
        with pytest.raises(SettingsError, match=r"output folder '.*run' is in use by another run \(PID 4242\)"):
            with output_lock(tmp_path / "run"):
                pass
    (tmp_path / "a_file").write_text("")
    with pytest.raises(SettingsError, match="cannot use .*a_file.* as the output folder"):
        with output_lock(tmp_path / "a_file"):
            pass


def test_non_finite_loss_raises_with_position(tmp_path):
    trainer, _ = _setup(tmp_path)
    trainer.loss_fn = lambda logits, target: (logits * float("nan")).sum()
    with pytest.raises(FloatingPointError, match="epoch 1, batch 0"):
        trainer.fit(1)


def test_classification_counts_top1_top5_and_confusion():
    counts = _Counts("classification", 6)
    logits = np.array([[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [0, 0, 9, 0, 0, 0]], np.float32)
    target = np.array([5, 5, 1])  # top-1 right, in top-5? no (rank 6), top-5 yes (rank 2)
    counts.add(2.0, logits, target)
    s = counts.summary()
    assert s == {"loss": 2.0, "top1": pytest.approx(1 / 3), "top5": pytest.approx(2 / 3)}
    expected = np.zeros((6, 6), int)
    expected[5, 5] = expected[5, 0] = expected[1, 2] = 1
    np.testing.assert_array_equal(counts.confusion, expected)


def test_segmentation_counts_pixel_accuracy_iou_dice():
    counts = _Counts("segmentation", None)
    logits = np.array([[[[1.0, -1.0], [2.0, 3.0]]]])   # predicted foreground: 3 pixels
    target = np.array([[[[1.0, 1.0], [0.0, 1.0]]]])    # true foreground: 3 pixels, 2 shared
    counts.add(0.5, logits, target)
    s = counts.summary()
    assert s["pixel_acc"] == pytest.approx(2 / 4)
    assert s["iou"] == pytest.approx(2 / 4)             # tp / (tp + fp + fn) = 2 / 4
    assert s["dice"] == pytest.approx(4 / 6)            # 2 tp / (2 tp + fp + fn)
    empty = _Counts("segmentation", None)
    empty.add(0.1, -np.ones((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)))
    assert empty.summary()["iou"] == 1.0 and empty.summary()["dice"] == 1.0


def test_history_plot_splits_keys_into_split_and_metric(tmp_path):
    pytest.importorskip("matplotlib")
    from tinygrad_course import plots
    assert plots._split_metric("test_exact_top1") == ("test_exact", "top1")
    assert plots._split_metric("val_pixel_acc") == ("val", "pixel_acc")
    assert plots._split_metric("train_seconds") == (None, None)
    rows = [{"epoch": e, "lr": 0.1, "train_loss": 1.0 / e, "test_loss": 1.2 / e, "test_exact_top1": 0.1 * e,
             "seconds": 1.0} for e in (1, 2)]
    plots.plot_history(rows, str(tmp_path / "h.png"))
    assert (tmp_path / "h.png").stat().st_size > 1000


def test_trainer_takes_dataloader_tensor_batches_and_workers_change_nothing(tmp_path):
    from tinygrad_course.data import DataLoader
    x, y = _blobs(96)
    histories, weights = [], []
    for workers in (0, 2):
        manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3))
        train = DataLoader((x, y), batch_size=16, shuffle=True, seed=1, num_workers=workers,
                           transform=lambda a, rng: a + rng.normal(0, 0.1, a.shape).astype(np.float32))
        trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), F.cross_entropy, train,
                          {"test": DataLoader((x, y), batch_size=32, num_workers=workers)}, num_classes=3,
                          show_progress=False)
        histories.append([{k: v for k, v in row.items() if "seconds" not in k} for row in trainer.fit(2)])
        weights.append([p.detach().numpy().copy() for p in model.parameters()])
    assert histories[0] == histories[1]
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    assert histories[0][-1]["test_top1"] > 0.8


def test_trainer_segmentation_targets_from_a_dataloader():
    from tinygrad_course.data import DataLoader
    rng = np.random.default_rng(0)
    images = rng.standard_normal((8, 1, 4, 4)).astype(np.float32)
    masks = (images > 0).astype(np.uint8)  # (N, 1, H, W) uint8, made float targets
    manual_seed(0)
    model = nn.Conv2d(1, 1, 3, padding=1)
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.5), F.binary_cross_entropy_with_logits,
                      DataLoader((images, masks[:, 0]), batch_size=4), {"val": DataLoader((images, masks), batch_size=8)},
                      task="segmentation", show_progress=False)
    row = trainer.fit(3)[-1]
    assert row["val_pixel_acc"] > 0.8 and 0 <= row["val_iou"] <= 1


def test_trainer_steps_plateau_and_per_batch_schedulers_as_pytorch_scripts_do():
    """ReduceLROnPlateau gets the first evaluation set's loss each epoch; OneCycleLR is stepped after
    every optimizer step: 3 epochs of 4 batches are 12 steps."""
    from tinygrad_course import nn, optim
    from tinygrad_course.data import DataLoader
    from tinygrad_course.training import Trainer
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 4)).astype(np.float32), rng.integers(0, 3, 40)
    for make, check in [
        (lambda opt: optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=10.0),
         lambda opt: opt.param_groups[0]["lr"] < 0.1),  # no loss improves by 1000 %: halved each epoch
        (lambda opt: optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=3 * 4),
         lambda opt: trainer.scheduler.last_epoch == 12)]:
        model = nn.Linear(4, 3)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        trainer = Trainer(model, opt, nn.CrossEntropyLoss(), DataLoader((x, y), batch_size=10),
                          {"val": DataLoader((x, y), batch_size=40)}, scheduler=make(opt), show_progress=False)
        trainer.fit(3)
        assert check(opt), opt.param_groups[0]["lr"]
