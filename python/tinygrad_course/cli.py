"""Command line: `python -m tinygrad_course train circles` and friends."""
from __future__ import annotations

import argparse
import json
import os
import sys

# Reported (train %, test %) per step of the circles lesson, COURSE.md section 1.
CIRCLES_REPORTED = {"manual": (96.5, 94.0), "autograd": (96.5, 94.5), "nn": (98.0, 94.5), "optim": (97.0, 95.0)}


def _train_circles(args) -> int:
    from .course import circles

    cfg = circles.CirclesConfig(dataset=args.dataset, n_samples=args.n_samples, noise=args.noise, lr=args.lr,
                                batch_size=args.batch_size, epochs=args.epochs, seed=args.seed)
    steps = circles.STEPS if args.step == "all" else (args.step,)
    data = circles.load_data(cfg)
    results, trainers = {}, {}
    for step in steps:
        results[step], trainers[step] = circles.train(step, cfg, data=data, show_progress=not args.quiet)

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
    with open(metrics_path, "w") as f:
        json.dump({"config": vars(cfg), "results": {k: h.as_dict() for k, h in results.items()}}, f, indent=1)
    print(f"metrics: {metrics_path}")
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
        print(f"native build: {_C.build_info()}")
    except ImportError as e:
        print(f"native extension not available: {e}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tinygrad_course", description=__doc__)
    parser.add_argument("--backend", choices=["numpy", "native"], help="CPU backend for the heavy ops")
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
    c.set_defaults(func=_train_circles)

    info = sub.add_parser("info", help="version, backends and native build flags")
    info.set_defaults(func=_info)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.backend:
        from .backend import set_backend
        set_backend(args.backend)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
