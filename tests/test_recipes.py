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
import sys

import numpy as np
import pytest
from data_writers import write_cifar_binary, write_images_masks, write_mnist

from tinygrad_course import checkpoint
from tinygrad_course.cli import main
from tinygrad_course.course import recipes, results
from tinygrad_course.training import Trainer


def _run(*argv):
    assert main(["train", *argv, "--quiet"]) == 0


def _fails(capsys, *argv) -> str:
    """Run a recipe that must stop with one line and exit code 2; that line."""
    assert main(["train", *argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [x for x in err.splitlines() if "error:" in x]
    return line


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



def test_resume_refuses_other_settings_unless_forced(tiny_root, tmp_path, capsys):
    out = tmp_path / "mlp"
    common = ["mnist-mlp", "--data-root", str(tiny_root), "--batch-size", "16", "--out", str(out), "--no-plots"]
    _run(*common, "--epochs", "1")
    line = _fails(capsys, *common, "--epochs", "2", "--resume", "--seed", "1", "--batch-size", "8")
    assert f"checkpoint {out / 'checkpoint.npz'} was written with other settings" in line
    assert "batch_size: 16 there, 8 now" in line and "seed: 0 there, 1 now" in line and "--force" in line
    assert len(_rows(out)) == 1  # nothing was trained
    _run(*common, "--epochs", "2", "--resume", "--seed", "1", "--force")
    assert "continuing" in capsys.readouterr().out and [r["epoch"] for r in _rows(out)] == ["1", "2"]
    _run(*common, "--epochs", "3", "--resume", "--seed", "1")  # the settings of the forced run are kept
    assert len(_rows(out)) == 3


def test_non_finite_weights_in_a_checkpoint_are_named_on_resume(tiny_root, tmp_path, capsys):
    out = tmp_path / "mlp"
    common = ["mnist-mlp", "--data-root", str(tiny_root), "--batch-size", "16", "--out", str(out), "--no-plots"]
    _run(*common, "--epochs", "1")
    state, meta = checkpoint.load(out / "checkpoint.npz")
    name = sorted(k for k in state if k.startswith("model."))[0]
    state[name][0] = np.nan
    checkpoint.save(out / "checkpoint.npz", state, meta)
    line = _fails(capsys, *common, "--epochs", "2", "--resume")
    assert f"checkpoint file {str(out / 'checkpoint.npz')!r} holds non-finite weights: {name!r}" in line
    assert "learning rate" not in line


def test_ctrl_c_stops_with_one_line_and_the_last_checkpoint_resumes(tiny_root, tmp_path, monkeypatch, capsys):
    common = ["mnist-mlp", "--data-root", str(tiny_root), "--batch-size", "16", "--no-plots", "--quiet"]
    train_epoch, stop_at = Trainer.train_epoch, {"epoch": 2}

    def interrupted(self, epoch, epochs):  # Ctrl-C during one epoch
        if epoch == stop_at["epoch"]:
            raise KeyboardInterrupt
        return train_epoch(self, epoch, epochs)
    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    out = tmp_path / "mlp"
    assert main(["train", *common, "--out", str(out), "--epochs", "3"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == f"interrupted after epoch 1; --resume continues from the checkpoint in {out}"
    assert checkpoint.load(out / "checkpoint.npz")[1]["epoch"] == 1
    stop_at["epoch"] = 1  # before any epoch is saved there is nothing to promise
    assert main(["train", *common, "--out", str(tmp_path / "other"), "--epochs", "3"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted before the first epoch finished; nothing to resume"
    stop_at["epoch"] = None
    _run(*common, "--out", str(out), "--epochs", "3", "--resume")
    assert [r["epoch"] for r in _rows(out)] == ["1", "2", "3"]


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
    assert "no readable summary.json" in capsys.readouterr().out
    assert main(["results", str(tmp_path), "--at-epochs", "25", "40"]) == 1
    assert "no readable metrics.json" in capsys.readouterr().out


def test_missing_data_gives_a_clear_error(tmp_path, capsys):
    line = _fails(capsys, "mnist-mlp", "--data-root", str(tmp_path), "--epochs", "1", "--out", str(tmp_path / "o"))
    assert "not found in" in line and "TINYGRAD_COURSE_DATA" in line


@pytest.mark.parametrize("recipe,flag,size,what", [
    ("mnist-mlp", "--subset", 48, "mnist training set"),
    ("mnist-cnn", "--test-subset", 16, "mnist test set"),
    ("cifar10", "--test-subset", 8, "cifar10 test set"),
    ("homework", "--subset", 48, "fashion-mnist training set"),
    ("iris", "--subset", 19, "iris training split"),  # 30 rows: 6 test, 5 validation, 19 to train on
    ("horizon", "--test-subset", 4, "horizon-sky validation split"),
])
def test_a_subset_larger_than_the_data_is_refused(tiny_root, tmp_path, capsys, recipe, flag, size, what):
    line = _fails(capsys, recipe, "--data-root", str(tiny_root), "--epochs", "1", "--out", str(tmp_path),
                  flag, str(size + 1))
    assert line.endswith(f"error: {flag} {size + 1}: the {what} has {size} samples; ask for 1 to {size}, "
                         f"or leave {flag} out to use them all")
    assert not (tmp_path / "checkpoint.npz").exists()


def test_iris_honours_subset_and_test_subset(tiny_root, tmp_path):
    _run("iris", "--data-root", str(tiny_root), "--epochs", "1", "--batch-size", "1", "--subset", "7",
         "--test-subset", "3", "--out", str(tmp_path), "--no-plots")
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert doc["config"]["subset"] == 7 and doc["config"]["test_subset"] == 3
    assert np.asarray(doc["confusion"]["test"]).sum() == 3 and np.asarray(doc["confusion"]["val"]).sum() == 5
    assert 7 * doc["history"][0]["train_top1"] == pytest.approx(round(7 * doc["history"][0]["train_top1"]))


def test_missing_matplotlib_never_fails_a_run(tiny_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    for recipe, extra in (("mnist-mlp", []), ("horizon", ["--size", "16", "16"])):
        out = tmp_path / recipe
        _run(recipe, "--data-root", str(tiny_root), "--epochs", "1", "--out", str(out), *extra)
        assert "plots skipped: plots need matplotlib" in capsys.readouterr().err
        summary = _summary(out)
        assert summary["epochs"] == 1 and summary["plots"] == []
        assert not list(out.glob("*.png"))


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
