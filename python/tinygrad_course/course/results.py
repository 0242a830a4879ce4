"""Collect the summary.json files that recipe runs write into one results table (markdown).

    python -m tinygrad_course results runs/                          # prints the table
    python -m tinygrad_course results runs/homework-grid --at-epochs 25 40   # one metric at chosen epochs
"""
from __future__ import annotations

import json
import os
import platform
import sys

from ..training import SettingsError


def machine() -> str:
    """CPU model and core count, e.g. 'AMD EPYC 9R14, 2 cores' (Linux; the platform name elsewhere)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores"


def _skip(path: str, problem: str) -> None:
    print(f"skipping {path}: {problem}", file=sys.stderr)


def _json_files(root: str, name: str):
    """(folder, path, document) for every file called `name` below `root`, in folder order; one that
    cannot be read is skipped with a line on stderr naming it."""
    for folder, _, files in sorted(os.walk(root)):
        if name not in files:
            continue
        path = os.path.join(folder, name)
        try:
            with open(path, encoding="utf-8") as f:
                document = json.load(f)
        except (OSError, ValueError, RecursionError) as e:  # ValueError: bad JSON or bad UTF-8
            _skip(path, f"not readable JSON ({type(e).__name__}: {e})")
            continue
        yield folder, path, document


def collect(root: str = "runs") -> list[dict]:
    """Every summary.json below `root`, sorted by recipe name; unreadable ones are skipped with a line on stderr."""
    found = []
    for _, path, summary in _json_files(root, "summary.json"):
        try:
            _row(summary)  # a summary that cannot be shown is reported here, where its file is known
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            _skip(path, f"not a summary written by a recipe ({type(e).__name__}: {e})")
            continue
        found.append(summary)
    return sorted(found, key=lambda s: s["recipe"])


def _figure(summary: dict) -> str:
    if "figure" in summary:  # circles: its own summary of several runs
        return summary["figure"]
    if "rows" in summary:  # svm-circles: test accuracy per kernel at C = 1 (scikit-learn's SVC in brackets)
        return ", ".join(f"{r['kernel']} {100 * r['test_acc']:.1f}"
                         + ("" if r.get("sklearn_test_acc") is None else f" (SVC {100 * r['sklearn_test_acc']:.1f})")
                         for r in summary["rows"] if r["C"] == 1.0)
    final = summary.get("final", {})
    if "val_iou" in final:
        return f"val IoU {final['val_iou']:.3f}, Dice {final['val_dice']:.3f}, pixel acc {final['val_pixel_acc']:.3f}"
    parts = [f"{100 * final['test_top1']:.2f}"] if "test_top1" in final else []
    if "test_top5" in final:
        parts.append(f"{100 * final['test_top5']:.2f}")
    if "test_loss" in final:
        parts.append(f"{final['test_loss']:.4f}")
    text = " / ".join(parts)
    if "test_exact_top1" in final:
        text += f" (exact 1,000: {100 * final['test_exact_top1']:.2f})"
    return text


def _row(s: dict) -> str:
    if not isinstance(s.get("recipe"), str):
        raise TypeError(f"its 'recipe' is {s.get('recipe')!r}, not a name")
    seconds = s.get("train_seconds_total", sum(r.get("seconds", 0.0) for r in s.get("rows", [])))
    return (f"| {s['recipe']} | {_figure(s)} | {s.get('reported', '-')} | {s.get('epochs', '-')} | {seconds:.0f} s "
            f"| {s.get('backend', '-')} | {s.get('machine', '-')} |")


def markdown(summaries: list[dict]) -> str:
    lines = ["| recipe | ours (test top-1 % / top-5 % / loss) | reported | epochs | train time | backend | machine |",
             "|---|---|---|---:|---:|---|---|"]
    return "\n".join(lines + [_row(s) for s in summaries])


def at_epochs_markdown(root: str, epochs: list[int], metric: str = "test_top1") -> str:
    """A table of `metric` at the given epochs for every run (metrics.json) below `root`: e.g. 25 vs 40 epochs
    read from one 40-epoch run. A run that has not reached an epoch shows '-'; no run at all gives "".
    A metric that no run records is a SettingsError that lists those they do record."""
    head = " | ".join(f"{metric} @ {e}" for e in epochs)
    lines = [f"| run | {head} | epochs run | train time |", "|---|" + "---:|" * (len(epochs) + 2)]
    recorded = set()
    for folder, path, document in _json_files(root, "metrics.json"):
        name = os.path.relpath(folder, root)
        name = os.path.basename(os.path.abspath(folder)) if name == "." else name
        try:
            lines.append(_epochs_row(name, document["history"], epochs, metric))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            _skip(path, f"not the metrics of a recipe run ({type(e).__name__}: {e})")
            continue
        recorded.update(k for row in document["history"] for k in row if k not in ("epoch", "lr"))
    if recorded and metric not in recorded:
        raise SettingsError(f"--metric {metric}: no run under {root!r} records it; choose one of "
                            + ", ".join(sorted(recorded)))
    return "\n".join(lines) if len(lines) > 2 else ""


def _epochs_row(name: str, history: list, epochs: list[int], metric: str) -> str:
    by_epoch = {h["epoch"]: h for h in history}
    cells = []
    for e in epochs:
        value = by_epoch.get(e, {}).get(metric)
        cells.append("-" if value is None else f"{100 * value:.2f}" if metric.endswith(("top1", "top5"))
                     else f"{value:.4f}")
    seconds = sum(h.get("train_seconds", 0.0) for h in history)
    return f"| {name} | {' | '.join(cells)} | {len(history)} | {seconds:.0f} s |"
