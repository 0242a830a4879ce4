"""Command line: `python -m tinygrad_course train circles` and friends."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

# Reported (train %, test %) per step of the circles lesson, COURSE.md section 1.
CIRCLES_REPORTED = {"manual": (96.5, 94.0), "autograd": (96.5, 94.5), "nn": (98.0, 94.5), "optim": (97.0, 95.0)}


def _train_circles(args) -> int:
    from .checkpoint import write_atomically
    from .course import circles

    cfg = circles.CirclesConfig(dataset=args.dataset, n_samples=args.n_samples, noise=args.noise, lr=args.lr,
                                batch_size=args.batch_size, epochs=args.epochs, seed=args.seed)
    data = circles.load_data(cfg)
    if args.sweep:  # one step ("optim" unless --step names another) per value of lr or batch size
        step = "optim" if args.step == "all" else args.step
        field = {"lr": "lr", "batch": "batch_size"}[args.sweep]
        cast = float if field == "lr" else int
        runs = {f"{args.sweep}={v:g}": (step, dataclasses.replace(cfg, **{field: cast(v)})) for v in args.values}
    else:
        runs = {step: (step, cfg) for step in (circles.STEPS if args.step == "all" else (args.step,))}
    results, trainers = {}, {}
    for label, (step, run_cfg) in runs.items():
        results[label], trainers[label] = circles.train(step, run_cfg, data=data, show_progress=not args.quiet)
    steps = list(runs)

    print(f"\n{cfg.dataset}: {len(data[0])} train / {len(data[1])} test points, lr {cfg.lr}, batch {cfg.batch_size}, "
          f"{cfg.epochs} epochs, backend {_backend_name()}")
    print(f"{'step':<10}{'loss':>8}{'train %':>9}{'test %':>8}{'reported train/test':>21}{'time s':>8}")
    for step, h in results.items():
        rep = CIRCLES_REPORTED.get(step) if cfg.dataset == "circles" else None
        rep_s = f"{rep[0]:.1f} / {rep[1]:.1f}" if rep else "-"
        print(f"{step:<10}{h.train_loss[-1]:>8.4f}{100 * h.final_train_acc:>9.1f}{100 * h.final_test_acc:>8.1f}"
              f"{rep_s:>21}{h.seconds:>8.1f}")

    os.makedirs(args.out, exist_ok=True)
    metrics_path = os.path.join(args.out, "metrics.json")
    document = {"config": vars(cfg), "sweep": args.sweep, "results": {k: h.as_dict() for k, h in results.items()}}
    write_atomically(metrics_path, lambda f: json.dump(document, f, indent=1), "w")
    print(f"metrics: {metrics_path}")
    _write_circles_summary(args, cfg, results)
    if not args.no_plots:
        try:
            from . import plots
        except ImportError:
            return 0
        try:
            curve = plots.plot_curves({k: h.as_dict() for k, h in results.items()},
                                      os.path.join(args.out, "curves.png"), title=f"{cfg.dataset} training")
            last = steps[-1]
            boundary = plots.plot_decision_boundary(trainers[last].logits, data[1], data[3],
                                                    os.path.join(args.out, "decision_boundary.png"),
                                                    title=f"{cfg.dataset}, step '{last}', test points")
            print(f"plots: {curve}, {boundary}")
        except ImportError as e:
            print(f"plots skipped: {e}", file=sys.stderr)
    return 0


def _results(args) -> int:
    from .course import results
    if args.at_epochs:
        table, needed = results.at_epochs_markdown(args.root, args.at_epochs, args.metric), "metrics.json"
    else:
        summaries, needed = results.collect(args.root), "summary.json"
        table = results.markdown(summaries) if summaries else ""
    print(table or f"no {needed} under {args.root!r}; run a recipe first (python -m tinygrad_course train ...)")
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
    opts = recipes.RunOptions(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                              data_root=args.data_root, subset=args.subset, test_subset=args.test_subset,
                              out=args.out, resume=args.resume, plots=not args.no_plots, progress=not args.quiet,
                              device=args.device)
    kwargs = {k: getattr(args, k) for k in args.recipe_kwargs}
    if "size" in kwargs:
        kwargs["size"] = tuple(kwargs["size"])
    if getattr(args, "zca_eps", None) is not None:
        opts.extra["zca_eps"] = args.zca_eps
    summary = args.recipe_fn(opts, **kwargs)
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
                      if k not in ("epoch", "lr", "seconds", "train_seconds"))
    print(f"  after {summary.get('epochs')} epochs ({summary.get('train_seconds_total')} s): {shown}")
    print(f"  reported: {summary.get('reported')}")
    for path in summary.get("plots", []):
        print(f"  plot: {path}")


def _common_options(p, default_epochs_note: str) -> None:
    p.add_argument("--epochs", type=int, help=f"number of epochs (default: {default_epochs_note})")
    p.add_argument("--batch-size", type=int, help="mini-batch size (default: the course's)")
    p.add_argument("--lr", type=float, help="learning rate (default: the course's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", help="folder holding the data sets (default: $TINYGRAD_COURSE_DATA, "
                                       "else the per-user cache)")
    p.add_argument("--subset", type=int, help="train on the first N training samples only (quick runs)")
    p.add_argument("--test-subset", type=int, help="evaluate on the first N test samples only")
    p.add_argument("--out", help="output folder (default: runs/<recipe>)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output folder")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_recipe_parsers(recipes_parser) -> None:
    from .course import recipes as r

    def add(name, fn, help_text, epochs_note, **fixed):
        p = recipes_parser.add_parser(name, help=help_text, description=help_text)
        _common_options(p, epochs_note)
        p.set_defaults(func=_run_recipe, recipe_fn=fn, recipe_kwargs=[], **fixed)
        return p

    def option(p, flag, **kw):
        action = p.add_argument(flag, **kw)
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
    p.add_argument("--zca-eps", type=float, help="ZCA epsilon (rung zca; default 1e-2)")
    add("iris", r.iris, "COURSE.md section 4: the 4-8-3 MLP on Iris", "100")
    p = add("homework", r.homework, "COURSE.md section 5: the homework MLP / CNN on Fashion-MNIST or CIFAR-10", "25")
    option(p, "--part", choices=["mlp", "cnn"], default="cnn")
    option(p, "--dataset", choices=["fashion-mnist", "mnist", "cifar10"], default="fashion-mnist")
    option(p, "--act", choices=["relu", "leaky_relu", "sigmoid", "tanh"], default="relu")
    option(p, "--batch-norm", action="store_true")
    option(p, "--small", action="store_true", help="fewer filters: [32, 64, 64, 128, 128]")
    p = add("horizon", r.horizon, "COURSE.md section 6: sky segmentation with an encoder-decoder", "40")
    option(p, "--loss", choices=sorted(r.SEG_LOSSES), default="bce")
    option(p, "--size", type=int, nargs=2, metavar=("H", "W"), default=[96, 128])
    p = add("svm-circles", r.svm_circles, "COURSE.md section 1 bonus: kernel SVMs on circles, with a C sweep", "-")
    option(p, "--kernels", nargs="+", choices=sorted(r.SVM_REPORTED), default=list(r.SVM_REPORTED))
    option(p, "--cs", nargs="+", type=float, default=[0.1, 1.0, 10.0], help="values of C")



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
    c.add_argument("--n-samples", type=int, default=1000)
    c.add_argument("--noise", type=float, default=0.1)
    c.add_argument("--lr", type=float, default=0.03)
    c.add_argument("--batch-size", type=int, default=10)
    c.add_argument("--epochs", type=int, default=150)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", default=os.path.join("runs", "circles"), help="folder for metrics.json and plots")
    c.add_argument("--no-plots", action="store_true")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.add_argument("--sweep", choices=["lr", "batch"], help="train one step once per value of --values")
    c.add_argument("--values", type=float, nargs="+", default=[0.003, 0.03, 0.3, 3.0],
                   help="the learning rates or batch sizes of --sweep")
    c.set_defaults(func=_train_circles)

    _add_recipe_parsers(recipes)

    res = sub.add_parser("results", help="markdown table of the recipe runs (summary.json files) under a folder")
    res.add_argument("root", nargs="?", default="runs")
    res.add_argument("--at-epochs", type=int, nargs="+", metavar="E",
                     help="instead: one metric (--metric) at these epochs for every run, e.g. 25 40")
    res.add_argument("--metric", default="test_top1", help="the metric of --at-epochs (default: test_top1)")
    res.set_defaults(func=_results)

    info = sub.add_parser("info", help="version, backends and native build flags")
    info.set_defaults(func=_info)
    return parser


CPU_ONLY_RECIPES = ("circles", "svm-circles")  # tiny models: a GPU would only add launch overhead


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.device != "cpu" and getattr(args, "recipe", None) in CPU_ONLY_RECIPES:
        parser.error(f"--device {args.device}: the {args.recipe} recipe runs on the CPU only")
    if args.backend:
        from .backend import set_backend
        set_backend(args.backend)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
