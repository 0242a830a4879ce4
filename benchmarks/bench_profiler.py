"""What the profiler costs: a training step timed outside and inside `tinygrad_course.profile()`.

    python benchmarks/bench_profiler.py [--steps 50]

Three steps from the course, from overhead-bound to compute-bound: the circles MLP 2-4-2 at batch
10, the MNIST MLP 784-256-10 at batch 128 and the CIFAR network (batch norm) at batch 128, each with
SGD. For each: the median step time with no profile active and inside an active profile (the two
alternate, step by step), the number of recorded events (ops and primitives) per step, and the cost
per event. With no profile active nothing is wrapped (entering a profile patches Function.apply, each
backward and the primitives; leaving restores the original functions, which tests check), so "off"
is the library's own speed, and "on" minus "off" is the whole overhead.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import tinygrad_course as tg
from tinygrad_course import nn, optim
from tinygrad_course.models import CifarNet, circles_mlp, mnist_mlp


def workloads():
    rng = np.random.default_rng(0)
    yield "circles MLP 2-4-2, batch 10", circles_mlp(), rng.standard_normal((10, 2)), rng.integers(0, 2, 10)
    yield "MNIST MLP 784-256-10, batch 128", mnist_mlp(), rng.standard_normal((128, 784)), rng.integers(0, 10, 128)
    yield ("CifarNet (batch norm), batch 128", CifarNet(batch_norm=True), rng.standard_normal((128, 3, 32, 32)),
           rng.integers(0, 10, 128))


def step_fn(model, x, y):
    x, y = tg.tensor(x.astype(np.float32)), tg.tensor(y)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def off_and_on(step, steps: int) -> tuple[float, float, int]:
    """Median step times with no profile and inside one, alternating step by step (so that drift of
    the machine's speed hits both alike), and the events one profiled step records."""
    off, on = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        off.append(time.perf_counter() - t0)
        with tg.profile() as prof:
            t0 = time.perf_counter()
            step()
            on.append(time.perf_counter() - t0)
    return statistics.median(off), statistics.median(on), len(prof.events)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=50, help="timed steps per case (CifarNet: a fifth of them)")
    args = p.parse_args()
    print("| step | off ms | on ms | events/step | overhead per event µs | overhead % |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, model, x, y in workloads():
        step = step_fn(model, x, y)
        steps = max(5, args.steps // 5) if "Cifar" in name else args.steps
        for _ in range(3):
            step()  # warm-up: allocations, caches
        off, on, events = off_and_on(step, steps)
        print(f"| {name} | {1e3 * off:.3f} | {1e3 * on:.3f} | {events} | {1e6 * (on - off) / events:.1f} "
              f"| {100 * (on - off) / off:.1f} |", flush=True)


if __name__ == "__main__":
    main()
