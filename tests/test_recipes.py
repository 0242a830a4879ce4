"""The course recipes end to end through the command line.

Pipeline tests run every recipe on tiny files in the standard formats written here (random pixels:
they check the plumbing, files, plots and resume, not accuracy). The real-data tests use
../shared/datasets when it is present (skipped otherwise) and assert the accuracy of short seeded
runs: MNIST MLP >= 95% test after 4 epochs, Iris >= 0.93, the CIFAR network well above chance on
a slice, the sky segmentation's validation IoU after a few epochs.
"""
from __future__ import annotations

import csv
import importlib.util
import json

import numpy as np
import pytest
from data_writers import write_cifar_binary, write_images_masks, write_mnist

from tinygrad_course.cli import main
from tinygrad_course.course import recipes, results


def _run(*argv):
    assert main(["train", *argv, "--quiet"]) == 0


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def _rows(out):
    with open(out / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_mnist(root / "mnist", n_train=48, n_test=16)
    write_mnist(root / "fashion-mnist", n_train=48, n_test=16, seed=1)
    write_cifar_binary(root / "cifar-10", n_per_batch=8, xz=True)
    rng = np.random.default_rng(0)
    rows = [f"{x0:.1f},{x1:.1f},{x2:.1f},{x3:.1f},{k % 3}" for k, (x0, x1, x2, x3) in
            enumerate(rng.uniform(0, 8, (30, 4)))]
    (root / "iris").mkdir()
    (root / "iris" / "iris.csv").write_text("30,4,setosa,versicolor,virginica\n" + "\n".join(rows) + "\n")
    for split in ("train", "val"):
        write_images_masks(root / "horizon-sky" / split, [(40, 30), (36, 24), (50, 40), (32, 32)])
    return root


def test_mnist_mlp_pipeline_files_plots_and_resume(tiny_root, tmp_path):
    out = tmp_path / "mlp"
    _run("mnist-mlp", "--data-root", str(tiny_root), "--epochs", "1", "--batch-size", "16", "--out", str(out))
    first = _summary(out)
    assert first["epochs"] == 1 and first["recipe"] == "mnist-mlp" and first["backend"]
    assert {"test_top1", "test_top5", "train_loss"} <= set(first["final"])
    for name in ("metrics.json", "metrics.csv", "checkpoint.npz", "curves.png", "confusion.png"):
        assert (out / name).stat().st_size > 0, name
    _run("mnist-mlp", "--data-root", str(tiny_root), "--epochs", "2", "--batch-size", "16", "--out", str(out),
         "--resume")
    rows = _rows(out)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert rows[0]["train_loss"] == str(first["final"]["train_loss"])  # epoch 1 kept, not retrained
    table = results.at_epochs_markdown(str(tmp_path), [1, 2, 5])
    (line,) = table.splitlines()[2:]
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[0] == "mlp" and cells[1:4] == [f"{100 * float(rows[0]['test_top1']):.2f}",
                                               f"{100 * float(rows[1]['test_top1']):.2f}", "-"]
    assert cells[4] == "2"
    with pytest.raises(ValueError, match="batch_size: 16 there, 8 now"):
        _run("mnist-mlp", "--data-root", str(tiny_root), "--epochs", "3", "--batch-size", "8", "--out", str(out),
             "--resume")


@pytest.mark.parametrize("recipe,extra", [
    ("mnist-cnn", ["--dataset", "fashion-mnist"]),
    ("mnist-cifarnet", []),
    ("mnist-classic", []),
    ("homework", ["--part", "mlp", "--act", "tanh", "--batch-norm"]),
    ("homework", ["--part", "cnn", "--small", "--act", "leaky_relu", "--subset", "16"]),
])
def test_mnist_style_recipes_run(tiny_root, tmp_path, recipe, extra):
    out = tmp_path / "run"
    _run(recipe, "--data-root", str(tiny_root), "--epochs", "1", "--batch-size", "16", "--out", str(out),
         "--no-plots", *extra)
    final = _summary(out)["final"]
    assert 0 <= final["test_top1"] <= 1 and np.isfinite(final["train_loss"])
    if recipe == "homework":  # its variables are in the name, the batch size too when not the default 64
        assert _summary(out)["recipe"].endswith(("-tanh-bn-b16", "-small-fashion-mnist-leaky_relu-b16"))


# zca is slow here (the 3072 x 3072 eigendecomposition takes ~20 s whatever the data size): run with -m slow
@pytest.mark.parametrize("rung", ["baseline", pytest.param("zca", marks=pytest.mark.slow), "batchnorm"])
def test_cifar10_rungs_run(tiny_root, tmp_path, rung):
    out = tmp_path / rung
    _run("cifar10", "--rung", rung, "--data-root", str(tiny_root), "--epochs", "1", "--batch-size", "20",
         "--out", str(out), "--no-plots")
    summary = _summary(out)
    assert summary["config"]["rung"] == rung and summary["config"]["batch_norm"] == (rung == "batchnorm")
    assert "test_top5" in summary["final"]


def test_cifar_ladder_is_cumulative():
    s = {rung: recipes.cifar_rung_settings(rung) for rung in recipes.CIFAR_RUNGS}
    assert s["baseline"] == {"preprocess": "scale", "augment": False, "momentum": 0.0, "lr": 0.1, "lr_decay": 1.0,
                             "dropout": 0.0, "batch_norm": False}
    assert s["zca"]["preprocess"] == "zca" and not s["zca"]["augment"]
    assert s["augment"]["preprocess"] == "standardize" and s["augment"]["augment"]
    assert s["momentum"]["momentum"] == 0.9 and s["momentum"]["lr_decay"] < 1 and s["momentum"]["dropout"] == 0
    assert s["dropout"]["dropout"] == 0.5 and not s["dropout"]["batch_norm"]
    assert s["batchnorm"] == dict(s["dropout"], batch_norm=True)
    with pytest.raises(ValueError, match="unknown CIFAR-10 rung"):
        recipes.cifar_rung_settings("mixup")


def test_iris_horizon_and_svm_recipes_run(tiny_root, tmp_path):
    _run("iris", "--data-root", str(tiny_root), "--epochs", "2", "--out", str(tmp_path / "iris"), "--no-plots")
    assert "val_top1" in _summary(tmp_path / "iris")["final"]
    _run("horizon", "--data-root", str(tiny_root), "--epochs", "1", "--size", "16", "16", "--loss", "dice",
         "--out", str(tmp_path / "sky"))
    final = _summary(tmp_path / "sky")["final"]
    assert {"val_iou", "val_dice", "val_pixel_acc"} <= set(final)
    assert (tmp_path / "sky" / "overlays.png").stat().st_size > 0
    _run("svm-circles", "--kernels", "rbf", "--cs", "1", "--out", str(tmp_path / "svm"), "--no-plots")
    (row,) = _summary(tmp_path / "svm")["rows"]
    assert row["kernel"] == "rbf" and row["test_acc"] >= 0.94  # the circles data is generated: real figure
    if importlib.util.find_spec("sklearn") is not None:  # scikit-learn's SVC on the same split, as a reference
        assert abs(row["sklearn_test_acc"] - row["test_acc"]) <= 0.02
    table = results.markdown(results.collect(tmp_path))
    assert [line.split(" | ")[0] for line in table.splitlines()[2:]] == ["| horizon-dice", "| iris", "| svm-circles"]
    assert "rbf" in table and "val IoU" in table
    assert ("(SVC " in table) == (row["sklearn_test_acc"] is not None)


def test_results_command_on_an_empty_folder(tmp_path, capsys):
    assert main(["results", str(tmp_path)]) == 1
    assert "no summary.json" in capsys.readouterr().out
    assert main(["results", str(tmp_path), "--at-epochs", "25", "40"]) == 1
    assert "no metrics.json" in capsys.readouterr().out


def test_missing_data_gives_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="TINYGRAD_COURSE_DATA"):
        _run("mnist-mlp", "--data-root", str(tmp_path), "--epochs", "1", "--out", str(tmp_path / "o"))


# --- real data (../shared/datasets), short seeded runs with asserted accuracy ----------------------------------
def test_mnist_mlp_reaches_95_percent(shared_datasets, tmp_path):
    _run("mnist-mlp", "--data-root", str(shared_datasets), "--epochs", "4", "--out", str(tmp_path), "--no-plots")
    assert _summary(tmp_path)["final"]["test_top1"] >= 0.95


def test_iris_reaches_093(shared_datasets, tmp_path):
    _run("iris", "--data-root", str(shared_datasets), "--out", str(tmp_path), "--no-plots")
    assert _summary(tmp_path)["final"]["test_top1"] >= 0.93


def test_cifar_network_well_above_chance_on_a_slice(shared_datasets, tmp_path):
    _run("cifar10", "--rung", "batchnorm", "--data-root", str(shared_datasets), "--epochs", "2", "--subset", "5000",
         "--test-subset", "2000", "--out", str(tmp_path), "--no-plots")
    final = _summary(tmp_path)["final"]
    assert final["test_top1"] >= 0.30 and final["test_exact_top1"] >= 0.30  # chance: 0.10


def test_horizon_segmentation_learns_the_sky(shared_datasets, tmp_path):
    _run("horizon", "--data-root", str(shared_datasets), "--epochs", "3", "--out", str(tmp_path), "--no-plots")
    final = _summary(tmp_path)["final"]
    assert final["val_iou"] >= 0.5 and final["val_pixel_acc"] >= 0.8
