"""The circles lesson (COURSE.md section 1) end to end, and the 2-D toy data sets."""
import json

import numpy as np
import pytest

import tinygrad_course as tg
from tinygrad_course.cli import CIRCLES_REPORTED, main
from tinygrad_course.course import circles
from tinygrad_course.data import TOY_DATASETS, make_circles, train_test_split
from tinygrad_course.nn import functional as F


@pytest.mark.parametrize("name", sorted(TOY_DATASETS))
def test_toy_sets_are_seeded_balanced_and_typed(name):
    x, y = TOY_DATASETS[name](n_samples=301, seed=3)
    x2, y2 = TOY_DATASETS[name](n_samples=301, seed=3)
    x3, _ = TOY_DATASETS[name](n_samples=301, seed=4)
    assert x.shape == (301, 2) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(x, x3)
    assert set(np.unique(y)) == {0, 1} and abs(int(y.sum()) - 150) <= 30


def test_circles_geometry_without_noise():
    x, y = make_circles(n_samples=200, noise=0.0, factor=0.3)
    radius = np.linalg.norm(x, axis=1)
    np.testing.assert_allclose(radius[y == 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(radius[y == 1], 0.3, rtol=1e-6)


def test_train_test_split_partitions_the_data():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, seed=1)
    assert len(xte) == 3 and len(xtr) == 7
    assert sorted(np.concatenate([ytr, yte]).tolist()) == list(range(10))
    np.testing.assert_array_equal(xtr[:, 0] // 2, ytr)
    with pytest.raises(ValueError, match="different lengths"):
        train_test_split(x, y[:5])


def test_hand_derived_gradients_equal_autograd():
    cfg = circles.CirclesConfig()
    w = {k: v.astype(np.float64) for k, v in circles.initial_weights(cfg).items()}
    x, y = make_circles(n_samples=16, seed=5)
    x = x.astype(np.float64)
    loss, grads = circles.manual_gradients(w, x, y)

    t = {k: tg.Tensor(v, requires_grad=True) for k, v in w.items()}
    logits = (tg.Tensor(x) @ t["W_h"].T + t["b_h"]).tanh() @ t["W_y"].T + t["b_y"]
    auto_loss = F.cross_entropy(logits, tg.Tensor(y))
    auto_loss.backward()
    assert auto_loss.item() == pytest.approx(loss, rel=1e-12)
    for k in w:
        np.testing.assert_allclose(t[k].grad.numpy(), grads[k], rtol=1e-10, atol=1e-12)


def test_manual_and_autograd_steps_follow_the_same_trajectory():
    cfg = circles.CirclesConfig(epochs=3)
    data = circles.load_data(cfg)
    manual, _ = circles.train("manual", cfg, data=data, show_progress=False)
    auto, _ = circles.train("autograd", cfg, data=data, show_progress=False)
    np.testing.assert_allclose(manual.train_loss, auto.train_loss, rtol=1e-4)


@pytest.fixture(scope="module")
def full_runs():
    """The four steps with the course's hyper-parameters: lr 0.03, batch 10, 150 epochs."""
    cfg = circles.CirclesConfig()
    data = circles.load_data(cfg)
    return {step: circles.train(step, cfg, data=data, show_progress=False)[0] for step in circles.STEPS}


@pytest.mark.parametrize("step", circles.STEPS)
def test_each_step_reaches_the_reported_test_accuracy(full_runs, step):
    reported_train, reported_test = CIRCLES_REPORTED[step]
    hist = full_runs[step]
    assert 100 * hist.final_test_acc >= reported_test
    assert 100 * hist.final_train_acc >= reported_train - 2.0
    assert hist.train_loss[-1] < 0.5 * hist.train_loss[0]


def test_cli_trains_and_writes_metrics_and_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    assert main(["train", "circles", "--epochs", "2", "--step", "optim", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "optim" in printed and "test %" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["results"]["optim"]["test_acc"]) == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recipe"] == "circles" and summary["figure"].startswith("optim ")
    assert (out / "curves.png").stat().st_size > 1000
    assert (out / "decision_boundary.png").stat().st_size > 1000


def test_cli_rejects_unknown_recipe():
    with pytest.raises(SystemExit):
        main(["train", "no-such-recipe"])


def test_cli_learning_rate_and_batch_sweeps(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["train", "circles", "--epochs", "3", "--sweep", "lr", "--values", "0.01", "0.3",
                 "--out", str(out), "--quiet", "--no-plots"]) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["sweep"] == "lr" and list(doc["results"]) == ["lr=0.01", "lr=0.3"]
    low, high = doc["results"]["lr=0.01"], doc["results"]["lr=0.3"]
    assert high["train_loss"][-1] < low["train_loss"][-1]  # 30x the rate: further in 3 epochs
    assert main(["train", "circles", "--epochs", "1", "--sweep", "batch", "--values", "1", "100",
                 "--out", str(out), "--quiet", "--no-plots"]) == 0
    assert list(json.loads((out / "metrics.json").read_text())["results"]) == ["batch=1", "batch=100"]
    assert "batch=100" in capsys.readouterr().out
