"""Command line: `python -m tinygrad_course train circles` and friends."""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys

# Reported (train %, test %) per step of the circles lesson, COURSE.md section 1.
CIRCLES_REPORTED = {"manual": (96.5, 94.0), "autograd": (96.5, 94.5), "nn": (98.0, 94.5), "optim": (97.0, 95.0)}


# --- option types: each option's type and bounds, declared once -----------------------------------------
# argparse calls these on the text given; their ArgumentTypeError becomes "argument --subset: must be a
# positive integer, got -5" and exit code 2, before any work is done.
def int_in_range(lo: int, hi: int | None = None, multiple_of: int = 1, what: str = ""):
    """An option type: an integer with lo <= value (<= hi), a multiple of `multiple_of`."""
    what = what or (f"an integer from {lo} to {hi}" if hi is not None else f"an integer >= {lo}")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < lo or (hi is not None and value > hi) or value % multiple_of:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value
    return parse


def float_in_range(lo: float, hi: float | None = None, lo_included: bool = True, what: str = ""):
    """An option type: a finite number above lo (or equal to it, if lo_included) and at most hi."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if (not math.isfinite(value) or value < lo or (value == lo and not lo_included)
                or (hi is not None and value > hi)):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value
    return parse


def existing_folder(text: str) -> str:
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"no folder {text!r}" + (" (it is a file)" if os.path.exists(text) else ""))
    return text


def output_folder(text: str) -> str:
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a file, not a folder; choose another --out")
    return text


positive_int = int_in_range(1, what="a positive integer")
positive_float = float_in_range(0.0, lo_included=False, what="a positive finite number")
# 0 <= seed < 2**32: the range every seeding API accepts (np.random.seed stops there; default_rng and
# torch.manual_seed take more), so a seed means the same thing wherever it is passed on.
SEED_LIMIT = 2 ** 32

OPTIONS = {  # flag -> (type, help); every command that takes a flag declares it from here (see _add)
    "--epochs": (positive_int, "number of epochs"),
    "--batch-size": (positive_int, "mini-batch size"),
    "--lr": (positive_float, "learning rate"),
    "--seed": (int_in_range(0, SEED_LIMIT - 1, what="an integer from 0 to 2**32 - 1"),
               "random seed, 0 to 2**32 - 1 (default: 0)"),
    "--subset": (positive_int, "train on the first N training samples only (quick runs; at most the data set's "
                               "size)"),
    "--test-subset": (positive_int, "evaluate on the first N test samples only (at most the test set's size)"),
    "--data-root": (existing_folder, "folder holding the data sets (default: $TINYGRAD_COURSE_DATA, else the "
                                     "per-user cache)"),
    "--out": (output_folder, "output folder"),
    "--n-samples": (int_in_range(10, 1_000_000), "number of points generated, 10 to 1,000,000"),
    "--noise": (float_in_range(0.0, 10.0, what="a number from 0 to 10"), "standard deviation of the noise, 0 to 10"),
    "--zca-eps": (positive_float, "ZCA epsilon (rung zca only; default 1e-2)"),
    "--cs": (positive_float, "values of C"),
    # SegNet halves the image twice
    "--size": (int_in_range(4, 1024, multiple_of=4, what="a multiple of 4 from 4 to 1024"),
               "image height and width, multiples of 4"),
    "--at-epochs": (positive_int, "instead: one metric (--metric) at these epochs for every run, e.g. 25 40"),
}
SWEEPS = {"lr": "--lr", "batch": "--batch-size"}  # --sweep NAME: the option whose values --values lists
SWEEP_VALUES = {"lr": ["0.003", "0.03", "0.3", "3"], "batch": ["1", "10", "100"]}


def _add(p, flag: str, **kwargs):
    """Declare `flag` on parser `p` with its type from OPTIONS (and its help, unless given)."""
    option_type, help_text = OPTIONS[flag]
    kwargs.setdefault("help", help_text)
    return p.add_argument(flag, type=option_type, **kwargs)


def _parse_sweep_values(args) -> None:
    """--values as the typed values of the swept option (a batch size of 2.5 is refused, not truncated)."""
    if args.sweep is None:
        if args.values is not None:
            raise argparse.ArgumentTypeError("--values lists the values of --sweep lr|batch; add --sweep")
        return
    flag = SWEEPS[args.sweep]
    option_type = OPTIONS[flag][0]
    try:
        args.values = [option_type(v) for v in (args.values or SWEEP_VALUES[args.sweep])]
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"argument --values: each --sweep {args.sweep} value ({flag}) {e}") from None


# --- commands ------------------------------------------------------------------------------------------
def _train_circles(args) -> int:
    from . import plots
    from .checkpoint import write_atomically
    from .course import circles
    from .training import output_lock

    graph_step = "autograd" if args.step == "all" else args.step
    if args.draw_graph and graph_step == "manual":
        args.command_parser.error("--draw-graph: step 'manual' computes its gradients by hand, without an autograd "
                                  "graph; use --step autograd, nn or optim")
    if args.sweep and (args.profile or args.draw_graph):
        args.command_parser.error("--profile and --draw-graph look at one run; leave --sweep out")
    profile_step = "optim" if args.step == "all" else args.step
    if args.profile and profile_step == "manual":
        args.command_parser.error("--profile: step 'manual' is NumPy code outside the engine, nothing to profile; "
                                  "use --step autograd, nn or optim")
    cfg = circles.CirclesConfig(dataset=args.dataset, n_samples=args.n_samples, noise=args.noise, lr=args.lr,
                                batch_size=args.batch_size, epochs=args.epochs, seed=args.seed)
    data = circles.load_data(cfg)
    if args.sweep:  # one step ("optim" unless --step names another) per value of lr or batch size
        step = "optim" if args.step == "all" else args.step
        field = {"lr": "lr", "batch": "batch_size"}[args.sweep]
        runs = {f"{args.sweep}={v:g}": (step, dataclasses.replace(cfg, **{field: v})) for v in args.values}
    else:
        runs = {step: (step, cfg) for step in (circles.STEPS if args.step == "all" else (args.step,))}
    with output_lock(args.out):
        results, trainers = {}, {}
        for label, (step, run_cfg) in runs.items():
            results[label], trainers[label] = circles.train(step, run_cfg, data=data, show_progress=not args.quiet)
        steps = list(runs)

        print(f"\n{cfg.dataset}: {len(data[0])} train / {len(data[1])} test points, lr {cfg.lr}, "
              f"batch {cfg.batch_size}, {cfg.epochs} epochs, backend {_backend_name()}")
        print(f"{'step':<10}{'loss':>8}{'train %':>9}{'test %':>8}{'reported train/test':>21}{'time s':>8}")
        for step, h in results.items():
            rep = CIRCLES_REPORTED.get(step) if cfg.dataset == "circles" else None
            rep_s = f"{rep[0]:.1f} / {rep[1]:.1f}" if rep else "-"
            print(f"{step:<10}{h.train_loss[-1]:>8.4f}{100 * h.final_train_acc:>9.1f}{100 * h.final_test_acc:>8.1f}"
                  f"{rep_s:>21}{h.seconds:>8.1f}")

        metrics_path = os.path.join(args.out, "metrics.json")
        document = {"config": vars(cfg), "sweep": args.sweep, "results": {k: h.as_dict() for k, h in results.items()}}
        write_atomically(metrics_path, lambda f: json.dump(document, f, indent=1), "w")
        print(f"metrics: {metrics_path}")
        _write_circles_summary(args, cfg, results)

        def draw():
            last = steps[-1]
            return [plots.plot_curves({k: h.as_dict() for k, h in results.items()},
                                      os.path.join(args.out, "curves.png"), title=f"{cfg.dataset} training"),
                    plots.plot_decision_boundary(trainers[last].logits, data[1], data[3],
                                                 os.path.join(args.out, "decision_boundary.png"),
                                                 title=f"{cfg.dataset}, step '{last}', test points")]
        drawn = [] if args.no_plots else plots.optional(draw)
        if drawn:
            print(f"plots: {', '.join(drawn)}")
        if args.draw_graph:  # the first step's loss with values and gradients; the text always, the SVG with Graphviz
            from .viz import GraphvizUnavailable
            graph = circles.step_graph(graph_step, cfg, data)
            written = [graph.save(os.path.join(args.out, "graph.txt"))]
            try:
                written.append(graph.save(os.path.join(args.out, "graph.svg")))
            except GraphvizUnavailable as e:
                print(f"graph.svg skipped: {e}", file=sys.stderr)
            print(f"graph: {', '.join(written)}")
        if args.profile:
            from .profiler import write_report
            prof = circles.profile_steps(profile_step, args.profile, cfg, data)
            text, paths = write_report(prof, f"Profile of {args.profile} training steps of step '{profile_step}' "
                                             "(after 2 warm-up steps)", args.out)
            print(text + "\nprofile: " + ", ".join(paths))
    return 0


def _results(args) -> int:
    from .course import results
    if args.at_epochs:
        table, needed = results.at_epochs_markdown(args.root, args.at_epochs, args.metric), "metrics.json"
    else:
        summaries, needed = results.collect(args.root), "summary.json"
        table = results.markdown(summaries) if summaries else ""
    print(table or f"no readable {needed} under {args.root!r}; run a recipe first "
                   "(python -m tinygrad_course train ...)")
    return 0 if table else 1


def _write_circles_summary(args, cfg, results) -> None:
    """summary.json for `python -m tinygrad_course results`: test accuracy per step (or per sweep value)."""
    from .checkpoint import write_atomically
    from .course.results import machine
    name = "circles" if not args.sweep else f"circles --sweep {args.sweep}"
    reported = (", ".join(f"{k} {v[1]:.1f}" for k, v in CIRCLES_REPORTED.items())
                if cfg.dataset == "circles" and not args.sweep else "-")
    summary = {"recipe": name if cfg.dataset == "circles" else f"{name} ({cfg.dataset})",
               "figure": ", ".join(f"{k} {100 * h.final_test_acc:.1f}" for k, h in results.items()),
               "reported": reported, "epochs": cfg.epochs, "train_seconds_total": sum(h.seconds for h in results.values()),
               "backend": _backend_name(), "machine": machine(), "out": args.out}
    write_atomically(os.path.join(args.out, "summary.json"), lambda f: json.dump(summary, f, indent=1), "w")


def _backend_name():
    from .backend import get_backend_name
    return get_backend_name()


def _info(_args) -> int:
    from . import __version__
    from .backend import available_backends, get_backend_name
    print(f"tinygrad_course {__version__}")
    print(f"backends available: {', '.join(available_backends())}; selected: {get_backend_name()}")
    try:
        from . import _C
        isas = _C.isas()
        print(f"native kernels: ISA {_C.isa()} ({isas[_C.isa()]['simd']} vectors)"
              + ("" if _C.isa() == _C.best_isa() else f", forced by TINYGRAD_COURSE_ISA (best here: {_C.best_isa()})"))
        print("  compiled in: " + ", ".join(
            f"{name} ({'runs here' if e['available'] else 'not supported by this CPU'})" for name, e in isas.items()))
        print("  choose a lower one with TINYGRAD_COURSE_ISA=" + "|".join(isas))
        print(f"native build: {_C.build_info()}")
    except ImportError as e:
        print(f"native extension not available: {e}")
    return 0


def _run_recipe(args) -> int:
    from .course import recipes
    given = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "data_root", "subset", "test_subset")
             if hasattr(args, k)}  # svm-circles has no epochs, data or subsets
    distributed = getattr(args, "distributed", False)
    if distributed:
        from . import distributed as dist
        dist.init_process_group("nccl" if args.device == "cuda" else "mpi")  # nccl: one GPU per rank, now
    opts = recipes.RunOptions(**given, seed=args.seed, out=args.out, resume=getattr(args, "resume", False),
                              force=getattr(args, "force", False), plots=not args.no_plots, progress=not args.quiet,
                              device=args.device, distributed=distributed,
                              sync_batch_norm=getattr(args, "sync_batch_norm", False),
                              profile=getattr(args, "profile", 0))
    kwargs = {k: getattr(args, k) for k in args.recipe_kwargs}
    if "size" in kwargs:
        kwargs["size"] = tuple(kwargs["size"])
    if getattr(args, "zca_eps", None) is not None:
        opts.extra["zca_eps"] = args.zca_eps
    summary = args.recipe_fn(opts, **kwargs)
    if opts.writes:
        _print_summary(summary)
    return 0


def _print_summary(summary: dict) -> None:
    print(f"\n{summary['recipe']} (backend {summary.get('backend')}), output in {summary.get('out')}")
    if "rows" in summary:  # svm-circles
        for row in summary["rows"]:
            rep, svc = row.get("reported_test_acc"), row.get("sklearn_test_acc")
            print(f"  {row['kernel']:>8} C={row['C']:<6g} test {100 * row['test_acc']:5.1f}%"
                  + (f"  (SVC {100 * svc:.1f}%)" if svc is not None else "")
                  + (f"  (reported {rep:.1f}%)" if rep is not None else ""))
        return
    final = summary.get("final", {})
    shown = ", ".join(f"{k} {v:.4f}" for k, v in final.items()
                      if k not in ("epoch", "lr", "seconds", "train_seconds", "ranks"))
    print(f"  after {summary.get('epochs')} epochs ({summary.get('train_seconds_total')} s): {shown}")
    print(f"  reported: {summary.get('reported')}")
    for path in summary.get("plots", []):
        print(f"  plot: {path}")


# --- parsers -------------------------------------------------------------------------------------------
def _output_options(p, default_out: str | None = None) -> None:
    _add(p, "--seed", default=0)
    _add(p, "--out", default=default_out, help=f"output folder (default: {default_out or 'runs/<recipe>'})")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _training_options(p, default_epochs_note: str) -> None:
    _add(p, "--epochs", help=f"number of epochs (default: {default_epochs_note})")
    _add(p, "--batch-size", help="mini-batch size (default: the course's)")
    _add(p, "--lr", help="learning rate (default: the course's)")
    _add(p, "--data-root")
    _add(p, "--subset")
    _add(p, "--test-subset")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output folder")
    p.add_argument("--force", action="store_true",
                   help="with --resume: continue even from a checkpoint written with other settings")
    p.add_argument("--distributed", action="store_true",
                   help="train with every process of `mpiexec -n N` (data parallel; --batch-size is the "
                        "global batch, divided among the ranks; rank 0 writes the output)")
    p.add_argument("--profile", type=positive_int, nargs="?", const=5, default=0, metavar="STEPS",
                   help="profile STEPS training steps (default 5) after 2 warm-up steps: a table per op and "
                        "kernel with %% of peak on stdout and in profile.txt, and trace.json for Perfetto")
    p.add_argument("--sync-batch-norm", action="store_true",
                   help="with --distributed: batch norm over the global batch (SyncBatchNorm), as one process")


def _add_recipe_parsers(recipes_parser) -> None:
    from .course import recipes as r

    def add(name, fn, help_text, epochs_note, **fixed):
        p = recipes_parser.add_parser(name, help=help_text, description=help_text)
        if epochs_note is not None:
            _training_options(p, epochs_note)
        _output_options(p)
        p.set_defaults(func=_run_recipe, recipe_fn=fn, recipe_kwargs=[], command_parser=p, **fixed)
        return p

    def option(p, flag, **kw):
        action = _add(p, flag, **kw) if flag in OPTIONS else p.add_argument(flag, **kw)
        p.set_defaults(recipe_kwargs=p.get_default("recipe_kwargs") + [action.dest])

    for model, note, what in (("mlp", "10", "the 784-256-10 MLP"),
                              ("classic", "10", "the 784-16-16-10 sigmoid MLP with squared error"),
                              ("cnn", "5", "the CNN"), ("cifarnet", "50", "the CIFAR network")):
        p = add(f"mnist-{model}", lambda o, model=model, **k: r.mnist(o, model, **k),
                f"COURSE.md section 2: {what} on MNIST (or --dataset fashion-mnist)", note)
        option(p, "--dataset", choices=sorted(r.MNIST_SETS), default="mnist")
    p = add("cifar10", r.cifar10, "COURSE.md section 3: the CIFAR network on one rung of the improvement ladder",
            "40")
    option(p, "--rung", choices=r.CIFAR_RUNGS, default="batchnorm")
    _add(p, "--zca-eps")
    add("iris", r.iris, "COURSE.md section 4: the 4-8-3 MLP on Iris", "100")
    p = add("homework", r.homework, "COURSE.md section 5: the homework MLP / CNN on Fashion-MNIST or CIFAR-10", "25")
    option(p, "--part", choices=["mlp", "cnn"], default="cnn")
    option(p, "--dataset", choices=["fashion-mnist", "mnist", "cifar10"], default="fashion-mnist")
    option(p, "--act", choices=["relu", "leaky_relu", "sigmoid", "tanh"], default="relu")
    option(p, "--batch-norm", action="store_true")
    option(p, "--small", action="store_true", help="fewer filters: [32, 64, 64, 128, 128]")
    p = add("horizon", r.horizon, "COURSE.md section 6: sky segmentation with an encoder-decoder", "40")
    option(p, "--loss", choices=sorted(r.SEG_LOSSES), default="bce")
    option(p, "--size", nargs=2, metavar=("H", "W"), default=[96, 128])
    # SVMs: no epochs, no data set to point at, no checkpoint; only the common output options
    p = add("svm-circles", r.svm_circles, "COURSE.md section 1 bonus: kernel SVMs on circles, with a C sweep", None)
    option(p, "--kernels", nargs="+", choices=sorted(r.SVM_REPORTED), default=list(r.SVM_REPORTED))
    option(p, "--cs", nargs="+", default=[0.1, 1.0, 10.0])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tinygrad_course", description=__doc__)
    parser.add_argument("--backend", choices=["numpy", "native"], help="CPU backend for the heavy ops")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="where recipes train: cpu (default) or cuda (our GPU kernels; needs CuPy and a GPU)")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a course model")
    recipes = train.add_subparsers(dest="recipe", required=True)
    c = recipes.add_parser("circles", help="COURSE.md section 1: the 2-4-2 tanh network, four ways")
    c.add_argument("--step", choices=["all", "manual", "autograd", "nn", "optim"], default="all")
    c.add_argument("--dataset", choices=["circles", "xor", "gaussians", "spirals"], default="circles")
    _add(c, "--n-samples", default=1000)
    _add(c, "--noise", default=0.1)
    _add(c, "--lr", default=0.03)
    _add(c, "--batch-size", default=10)
    _add(c, "--epochs", default=150)
    _output_options(c, os.path.join("runs", "circles"))
    c.add_argument("--sweep", choices=sorted(SWEEPS), help="train one step once per value of --values")
    c.add_argument("--values", nargs="+", metavar="V",
                   help="the learning rates or batch sizes of --sweep (default: 0.003 0.03 0.3 3, or 1 10 100)")
    c.add_argument("--profile", type=positive_int, nargs="?", const=5, default=0, metavar="STEPS",
                   help="after training, profile STEPS steps (default 5; step optim unless --step names another) "
                        "after 2 warm-up steps: profile.txt and trace.json")
    c.add_argument("--draw-graph", action="store_true",
                   help="also write the autograd graph of the first training step's loss, with values and gradients: "
                        "graph.txt, and graph.svg with Graphviz (step autograd unless --step names nn or optim)")
    c.set_defaults(func=_train_circles, command_parser=c, check=_parse_sweep_values)

    _add_recipe_parsers(recipes)

    res = sub.add_parser("results", help="markdown table of the recipe runs (summary.json files) under a folder")
    res.add_argument("root", nargs="?", default="runs", type=existing_folder)
    _add(res, "--at-epochs", nargs="+", metavar="E")
    res.add_argument("--metric", default="test_top1", help="the metric of --at-epochs (default: test_top1)")
    res.set_defaults(func=_results, command_parser=res)

    info = sub.add_parser("info", help="version, backends and native build flags")
    info.set_defaults(func=_info, command_parser=info)
    return parser


CPU_ONLY_RECIPES = ("circles", "svm-circles")  # tiny models: a GPU would only add launch overhead


def _check(args) -> None:
    """What a single option's type cannot see: options that only make sense together."""
    if args.device != "cpu" and getattr(args, "recipe", None) in CPU_ONLY_RECIPES:
        raise argparse.ArgumentTypeError(f"--device {args.device}: the {args.recipe} recipe runs on the CPU only")
    if getattr(args, "sync_batch_norm", False) and not args.distributed:
        raise argparse.ArgumentTypeError("--sync-batch-norm only applies with --distributed")
    if getattr(args, "force", False) and not args.resume:
        raise argparse.ArgumentTypeError("--force only applies with --resume")
    if getattr(args, "zca_eps", None) is not None and args.rung != "zca":
        raise argparse.ArgumentTypeError(f"--zca-eps only applies to --rung zca (got --rung {args.rung})")
    launched = _launched_ranks()
    if launched > 1 and args.command == "train" and not getattr(args, "distributed", False):
        raise argparse.ArgumentTypeError(
            f"this is one of {launched} processes started by mpiexec: add --distributed to train one model "
            "with all of them" + ("" if hasattr(args, "distributed") else f" (the {args.recipe} recipe cannot)")
            + ", or run without mpiexec")
    if getattr(args, "check", None):
        args.check(args)


def _share_cores_among_local_ranks() -> None:
    """Give each rank on this machine its share of the cores (OMP_NUM_THREADS, read when the native
    kernels load), unless the user chose: N ranks of all-core kernels would fight over the cores."""
    local = next((int(os.environ[k]) for k in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE")
                  if os.environ.get(k, "").isdigit()), 1)
    if "OMP_NUM_THREADS" not in os.environ and local > 1:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        os.environ["OMP_NUM_THREADS"] = str(max(1, cores // local))


def _launched_ranks() -> int:
    """How many processes the MPI launcher started (1 without one): MPICH's and Open MPI's variables."""
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 1


def _user_errors() -> tuple:
    """Errors that describe a mistake in the command, its data or its checkpoint, not in this program."""
    from .backend.cuda import CudaUnavailableError
    from .checkpoint import CheckpointError
    from .data import DatasetError
    from .distributed import DistributedSetupError
    from .training import SettingsError
    return (SettingsError, CheckpointError, DatasetError, FileNotFoundError, CudaUnavailableError, FloatingPointError,
            DistributedSetupError)


def _interrupted(e: KeyboardInterrupt) -> str:
    epoch = getattr(e, "epoch", None)  # a TrainingInterrupted knows the last epoch saved
    if epoch:
        return f"interrupted after epoch {epoch}; --resume continues from the checkpoint in {e.out_dir}"
    return "interrupted before the first epoch finished; nothing to resume" if epoch == 0 else "interrupted"


def main(argv=None) -> int:
    """Run a command. Mistakes (a bad option, data set, checkpoint or output folder) give one line on stderr
    and exit code 2, Ctrl-C gives "interrupted ..." and exit code 130; never a traceback for either."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check(args)
        if getattr(args, "distributed", False):
            _share_cores_among_local_ranks()
        from .backend import get_backend_name, set_backend
        if args.backend:
            set_backend(args.backend)  # ImportError: native without the compiled extension
        else:
            get_backend_name()  # ValueError: an unknown TINYGRAD_COURSE_BACKEND
    except (argparse.ArgumentTypeError, ImportError, ValueError) as e:
        args.command_parser.error(str(e))
    try:
        return args.func(args)
    except KeyboardInterrupt as e:
        from . import distributed as dist
        if not dist.is_initialized() or dist.get_rank() == 0:  # the others may be ahead of rank 0's checkpoint
            print(_interrupted(e), file=sys.stderr)
        return _stop_all_ranks(130)
    except _user_errors() as e:
        print(f"{args.command_parser.prog}: error: {_rank_prefix()}{e}", file=sys.stderr)
        return _stop_all_ranks(2)


def _rank_prefix() -> str:
    from . import distributed as dist
    return f"rank {dist.get_rank()} of {dist.get_world_size()}: " if dist.is_initialized() else ""


def _stop_all_ranks(code: int) -> int:
    """A rank that stops while the others go on would leave them waiting in a collective: end them all."""
    from . import distributed as dist
    if dist.is_initialized() and dist.get_world_size() > 1:
        sys.stderr.flush()
        dist._comm().Abort(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
