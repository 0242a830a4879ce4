"""The command line refuses bad input with one line and exit code 2, never a traceback.

Every option's type and bounds come from one table (cli.OPTIONS), so a bad value stops argparse
before any work; mistakes found later (a busy output folder, a checkpoint with other settings, a
corrupt results file) give one line too. Ctrl-C gives "interrupted ..." and exit code 130. The
recipes that need data files are covered in test_recipes.py; these use generated data only.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tinygrad_course import cli
from tinygrad_course.cli import main
from tinygrad_course.course import circles
from tinygrad_course.models import svm


def _exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's errors
        return e.code


def _circles(out, *extra):
    return ["train", "circles", "--step", "optim", "--n-samples", "100", "--epochs", "1", "--quiet", "--no-plots",
            "--out", str(out), *extra]


@pytest.mark.parametrize("argv,message", [
    (["train", "circles", "--n-samples", "0"], "argument --n-samples: must be an integer from 10 to 1000000, got 0"),
    (["train", "circles", "--n-samples", "1e12"], "argument --n-samples: must be"),
    (["train", "mnist-mlp", "--subset", "-5"], "argument --subset: must be a positive integer, got -5"),
    (["train", "iris", "--test-subset", "0"], "argument --test-subset: must be a positive integer, got 0"),
    (["train", "circles", "--seed", str(2 ** 32)], "argument --seed: must be an integer from 0 to 2**32 - 1"),
    (["train", "cifar10", "--seed", "-1"], "argument --seed: must be an integer from 0 to 2**32 - 1, got -1"),
    (["train", "circles", "--batch-size", "2.5"], "argument --batch-size: must be a positive integer, got 2.5"),
    (["train", "iris", "--epochs", "0"], "argument --epochs: must be a positive integer, got 0"),
    (["train", "circles", "--lr", "nan"], "argument --lr: must be a positive finite number, got nan"),
    (["train", "homework", "--lr", "0"], "argument --lr: must be a positive finite number, got 0"),
    (["train", "circles", "--noise", "-0.1"], "argument --noise: must be a number from 0 to 10, got -0.1"),
    (["train", "horizon", "--size", "10", "16"], "argument --size: must be a multiple of 4 from 4 to 1024, got 10"),
    (["train", "svm-circles", "--cs", "0"], "argument --cs: must be a positive finite number, got 0"),
    (["train", "cifar10", "--zca-eps", "inf"], "argument --zca-eps: must be a positive finite number, got inf"),
    (["results", "--at-epochs", "0"], "argument --at-epochs: must be a positive integer, got 0"),
    (["train", "circles", "--sweep", "batch", "--values", "1", "2.5"],
     "argument --values: each --sweep batch value (--batch-size) must be a positive integer, got 2.5"),
    (["train", "circles", "--sweep", "lr", "--values", "-1"], "each --sweep lr value (--lr) must be a positive"),
    (["train", "circles", "--values", "1"], "--values lists the values of --sweep"),
    (["train", "mnist-mlp", "--force"], "--force only applies with --resume"),
    (["train", "cifar10", "--rung", "baseline", "--zca-eps", "0.1"], "--zca-eps only applies to --rung zca"),
    (["train", "svm-circles", "--epochs", "3"], "unrecognized arguments: --epochs 3"),
    (["--device", "cuda", "train", "circles"], "the circles recipe runs on the CPU only"),
])
def test_bad_options_are_refused_by_the_parser(argv, message, capsys):
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_unknown_backend_in_the_environment_is_one_line(monkeypatch, capsys):
    from tinygrad_course import backend
    monkeypatch.setattr(backend, "_cpu_choice", None)  # read the environment again
    monkeypatch.setenv("TINYGRAD_COURSE_BACKEND", "fortran")
    assert _exit_code(["info"]) == 2
    err = capsys.readouterr().err
    assert "info: error: unknown backend 'fortran'" in err and "Traceback" not in err


def test_folder_options_must_be_folders(tmp_path, capsys):
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    assert _exit_code(["train", "iris", "--data-root", str(tmp_path / "nowhere")]) == 2
    assert "argument --data-root: no folder" in capsys.readouterr().err
    assert _exit_code(_circles(a_file)) == 2
    assert "argument --out: " in capsys.readouterr().err and not a_file.is_dir()
    assert _exit_code(["results", str(tmp_path / "nowhere")]) == 2
    assert "argument root: no folder" in capsys.readouterr().err


def test_option_types_are_declared_once_with_their_bounds():
    assert cli.OPTIONS["--seed"][0](str(2 ** 32 - 1)) == 2 ** 32 - 1
    assert cli.OPTIONS["--size"][0]("96") == 96
    for flag, value in (("--epochs", "1.0"), ("--lr", "-inf"), ("--n-samples", "9"), ("--size", "1028")):
        with pytest.raises(Exception, match="must be"):
            cli.OPTIONS[flag][0](value)
    parser = cli.build_parser()  # circles and the recipes take the same types for the same flags
    circles_parser = parser.parse_args(["train", "circles"]).command_parser
    mnist_parser = parser.parse_args(["train", "mnist-mlp"]).command_parser
    for flag in ("--lr", "--batch-size", "--epochs", "--seed", "--out"):
        types = {next(a.type for a in p._actions if flag in a.option_strings) for p in (circles_parser, mnist_parser)}
        assert types == {cli.OPTIONS[flag][0]}, flag


def test_sweep_values_are_typed_like_their_option(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(_circles(out, "--sweep", "batch")) == 0  # default batch sizes, not the learning rates cast to int
    doc = json.loads((out / "metrics.json").read_text())
    assert list(doc["results"]) == ["batch=1", "batch=10", "batch=100"]
    assert main(_circles(out, "--sweep", "lr", "--values", "0.5", "1e-2")) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert list(doc["results"]) == ["lr=0.5", "lr=0.01"]


def test_largest_seed_and_smallest_data_set_train(tmp_path, capsys):
    assert main(_circles(tmp_path / "a", "--seed", str(2 ** 32 - 1), "--n-samples", "10")) == 0
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["figure"].startswith("optim ") and "nan" not in summary["figure"]


def test_an_empty_split_is_refused_by_the_library_too():
    with pytest.raises(ValueError, match="empty train or test split"):
        circles.load_data(circles.CirclesConfig(n_samples=2))


def test_a_diverging_run_stops_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(circles._OptimStep, "step", lambda self, xb, yb: float("nan"))  # as a huge rate gives
    assert _exit_code(_circles(tmp_path, "--lr", "1e6")) == 2
    err = capsys.readouterr().err
    assert "error: circles/optim, epoch 1: the loss is nan; lower the learning rate (lr 1000000.0)" in err
    assert "Traceback" not in err


def test_ctrl_c_gives_one_line_and_exit_code_130(tmp_path, monkeypatch, capsys):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(circles, "train", interrupt)
    assert main(_circles(tmp_path)) == 130
    assert capsys.readouterr().err.strip() == "interrupted"


class _InstantSVM:
    def __init__(self, kernel, C):
        pass

    def fit(self, x, y):
        return self

    def score(self, x, y):
        return 0.5

    def decision_function(self, x):
        return x[:, 0]


def test_missing_matplotlib_skips_the_plots_with_a_notice(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    out = tmp_path / "c"
    assert main(["train", "circles", "--step", "optim", "--n-samples", "100", "--epochs", "1", "--quiet",
                 "--out", str(out)]) == 0
    assert "plots skipped: plots need matplotlib" in capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["recipe"] == "circles"
    assert not (out / "curves.png").exists()
    monkeypatch.setattr(svm, "KernelSVM", _InstantSVM)  # the recipe's plumbing, not the solver, is under test
    assert main(["train", "svm-circles", "--kernels", "linear", "--cs", "1", "--quiet", "--out",
                 str(tmp_path / "svm")]) == 0
    assert "plots skipped" in capsys.readouterr().err
    assert json.loads((tmp_path / "svm" / "summary.json").read_text())["plots"] == []


# --- one run per output folder ---------------------------------------------------------------------------
HOLDER = """
import sys
from tinygrad_course.training import output_lock
with output_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()  # hold the folder until the test closes stdin (or kills this process)
"""


def test_a_second_run_into_a_busy_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "busy"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(_circles(out)) == 2
        err = capsys.readouterr().err
        assert f"output folder {str(out)!r} is in use by another run (PID {holder.pid})" in err
        assert not (out / "summary.json").exists()
    finally:
        holder.kill()  # no clean exit: the operating system must drop the lock itself
        holder.wait()
    assert main(_circles(out)) == 0
    assert (out / "summary.json").exists()


# --- results ---------------------------------------------------------------------------------------------
def test_results_skip_unreadable_files_and_name_them(tmp_path, capsys):
    assert main(_circles(tmp_path / "good")) == 0
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text('{"recipe": "iris", "fin')
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "summary.json").write_text("[1, 2]")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "summary.json").write_text('{"recipe": "iris", "final": {"test_top1": "high"}}')
    capsys.readouterr()
    assert main(["results", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "| circles |" in captured.out and "iris" not in captured.out
    for name in ("broken", "list", "odd"):
        assert f"skipping {tmp_path / name / 'summary.json'}: " in captured.err
    assert "Traceback" not in captured.err
    (tmp_path / "broken" / "metrics.json").write_text("not json")
    (tmp_path / "list" / "metrics.json").write_text('{"history": [1]}')
    assert main(["results", str(tmp_path / "broken"), "--at-epochs", "1"]) == 1
    assert main(["results", str(tmp_path / "list"), "--at-epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert f"skipping {tmp_path / 'broken' / 'metrics.json'}: not readable JSON" in err
    assert f"skipping {tmp_path / 'list' / 'metrics.json'}: not the metrics of a recipe run" in err


def test_results_refuse_a_metric_no_run_records(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    history = [{"epoch": 1, "lr": 0.1, "train_loss": 2.0, "test_top1": 0.5, "train_seconds": 1.0}]
    (tmp_path / "run" / "metrics.json").write_text(json.dumps({"history": history}))
    assert main(["results", str(tmp_path), "--at-epochs", "1"]) == 0
    assert "| run | 50.00 | 1 | 1 s |" in capsys.readouterr().out
    assert main(["results", str(tmp_path), "--at-epochs", "1", "--metric", "test_top5"]) == 2
    err = capsys.readouterr().err
    assert "error: --metric test_top5: no run under" in err and "choose one of test_top1, train_loss, train_seconds" in err


def test_an_iris_file_too_small_to_split_is_one_line(tmp_path, capsys):
    """Three rows leave a split empty: a DatasetError naming the file, exit code 2, no traceback."""
    (tmp_path / "iris").mkdir()
    (tmp_path / "iris" / "iris.csv").write_text("3,2,a,b,c\n1.0,2.0,0\n3,4,1\n5,6,2\n")
    code = main(["train", "iris", "--data-root", str(tmp_path), "--out", str(tmp_path / "run"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "iris.csv: 3 rows leave the training, validation or test split empty" in err
    assert "Traceback" not in err
