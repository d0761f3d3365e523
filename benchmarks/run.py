"""Speed and memory of one training step, side by side, in one process.

    python -m benchmarks.run            # from the repository root; writes benchmarks/RESULTS.md

The workload is micrograd's moons demo: one step (forward, loss, backward, SGD update) of a
2-16-16-1 ReLU MLP on 100 moons points (noise 0.1), hinge loss + 1e-4 L2, full batch. It runs
on micrograd (from PyPI), on this engine driven as micrograd is driven, through `nn.fit`
eager and jitted, and as the hand-written plain-float step of `benchmarks.floor`. Every
implementation starts from the same weights, and one step of each is first checked to give
the same loss and the same new weights, so all of them time the same arithmetic.

Then: time per step against the number of parameters, backward through a 1,000,000-node chain,
and memory per graph node (tracemalloc) on the micrograd-style graph.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import micrograd.engine
import micrograd.nn

import autograd_core
import nn
from nn.data import make_moons

from . import dropin, floor, micrograd_style

SEED = 0
LR = 0.1  # micrograd's demo decays its rate from 1.0; one fixed rate keeps all on one path
ALPHA = 1e-4
HIDDEN = [16, 16]
WIDTHS = [4, 8, 16, 32, 64]
CHAIN_NODES = 1_000_000
TRAINED_STEPS = 1_000
FLOOR = "floor, the first step"
TRAINED_FLOOR = f"floor, the step after {TRAINED_STEPS:,} steps of training"

# The goals: this engine driven like micrograd >= 5x faster than micrograd, fit eager >= 25x,
# fit(jit=True) within 2x of the plain-float floor, at most 250 bytes per node.
GOAL_MICROGRAD_STYLE = 5.0  # times faster than micrograd
GOAL_FIT_EAGER = 25.0  # times faster than micrograd
GOAL_JIT = 2.0  # at most this many times the floor's time
GOAL_BYTES = 250.0  # bytes per node at most

Run = Callable[[int], Any]
"""`run(n)` sets the starting weights, then takes n training steps; returns the last loss."""


@dataclass
class Timing:
    """One implementation's time per step, and what part of it the garbage collector took."""

    name: str
    steps: int  # k: each trial times run(1) and run(1 + k)
    one: list[float] = field(default_factory=list)  # seconds of run(1), one per trial
    many: list[float] = field(default_factory=list)  # seconds of run(1 + k), one per trial
    gc: list[float] = field(default_factory=list)  # seconds in the collector during run(1 + k)

    @property
    def per_step(self) -> float:
        return (statistics.median(self.many) - statistics.median(self.one)) / self.steps

    @property
    def best(self) -> float:
        return (min(self.many) - min(self.one)) / self.steps

    @property
    def gc_per_step(self) -> float:
        return statistics.median(self.gc) / (1 + self.steps)

    @property
    def once(self) -> float:
        """What a call costs once, beyond its steps (`fit`'s checks, the jit trace)."""
        return statistics.median(self.one) - self.per_step


class GcTimer:
    """Adds up the time the cyclic garbage collector runs (it runs inside allocations)."""

    def __init__(self) -> None:
        self.total = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._start


def measure(runs: dict[str, Run], trials: int, budget: float) -> dict[str, Timing]:
    """Time per step of each run: (time of run(1 + k) - time of run(1)) / k, medians of trials.

    Subtracting run(1) leaves out what a call costs once (`fit`'s checks, the jit trace); k is
    chosen from a first estimate so that run(1 + k) takes about `budget` seconds. The trials
    take turns across the runs, so that a busy spell of the machine falls on all of them alike.
    """
    timings = {}
    for name, run in runs.items():
        first = _timed(run, 1)
        m = max(2, min(50, round(0.5 * budget / first)))
        estimate = max((_timed(run, 1 + m) - _timed(run, 1)) / m, 1e-5)
        timings[name] = Timing(name, max(3, min(500, round(budget / estimate))))
    for _ in range(trials):
        for name, run in runs.items():
            timing = timings[name]
            timing.one.append(_timed(run, 1))
            timer = GcTimer()
            gc.callbacks.append(timer)
            try:
                timing.many.append(_timed(run, 1 + timing.steps))
            finally:
                gc.callbacks.remove(timer)
            timing.gc.append(timer.total)
    return timings


def _timed(run: Run, n: int) -> float:
    # Collect what earlier runs left (micrograd leaves cycles), so that no run pays for another.
    gc.collect()
    start = time.perf_counter()
    run(n)
    return time.perf_counter() - start


# -- the implementations of one step, each from the same starting weights ---------------------


def nn_model(widths: list[int]) -> nn.MLP:
    """The starting model: the same seed gives the same weights every time."""
    return nn.MLP(2, [*widths, 1], seed=SEED)


def set_weights(model: Any, weights: list[float]) -> None:
    """Set every weight, listed as micrograd and `nn` list them: per neuron w_1..w_n then b."""
    for p, w in zip(model.parameters(), weights, strict=True):
        p.data = w


def weights_of(model: Any) -> list[float]:
    """Every weight, in the order of `set_weights`."""
    if isinstance(model, list):  # the floor's layers
        return [v for W, b in model for row, bias in zip(W, b, strict=True) for v in (*row, bias)]
    return [p.data for p in model.parameters()]


def micrograd_run(X: list[list[float]], y: list[int]) -> tuple[Run, Any]:
    return _demo_run(micrograd.engine.Value, micrograd.nn.MLP(2, [*HIDDEN, 1]), X, y)


def micrograd_style_run(X: list[list[float]], y: list[int]) -> tuple[Run, Any]:
    return _demo_run(autograd_core.Value, micrograd_style.MLP(2, [*HIDDEN, 1]), X, y)


def _demo_run(value_class: type, model: Any, X: list[list[float]], y: list[int]) -> tuple:
    start = weights_of(nn_model(HIDDEN))
    signs = [2 * label - 1 for label in y]

    def run(n: int) -> float:
        set_weights(model, start)
        for _ in range(n):
            loss = micrograd_style.demo_step(value_class, model, X, signs, LR)
        return loss

    return run, model


def fit_run(X: list[list[float]], y: list[int], jit: bool, widths: list[int] = HIDDEN) -> tuple:
    model = nn_model(widths)
    start = weights_of(model)
    optimizer = nn.optim.SGD(model.parameters(), lr=LR)

    def run(n: int) -> float:
        set_weights(model, start)
        history = nn.fit(
            model, X, y, loss="hinge", optimizer=optimizer, epochs=n, l2=ALPHA, progress=False,
            jit=jit,
        )  # fmt: skip
        return history.loss[-1]

    return run, model


def floor_run(
    X: list[list[float]], y: list[int], trained_steps: int = 0
) -> tuple[Run, list[floor.Layer]]:
    """The floor's step, always from the same weights: the starting ones, or those after
    `trained_steps` steps.

    The floor skips the backward pass of a sample the hinge already classifies with a margin,
    so its time depends on how far training has gone (the graph engines compute every sample
    whatever the weights); starting every step from the same weights pins that down.
    """
    state = nn_model(HIDDEN).state_dict()
    start = [
        (state[f"layers.{i}.weight"], state[f"layers.{i}.bias"]) for i in range(len(HIDDEN) + 1)
    ]
    for _ in range(trained_steps):
        floor.train_step(start, X, y, LR, ALPHA)
    layers: list[floor.Layer] = []

    def run(n: int) -> float:
        for _ in range(n):
            layers[:] = [([row[:] for row in W], b[:]) for W, b in start]
            loss = floor.train_step(layers, X, y, LR, ALPHA)
        return loss

    return run, layers


def check_same_step(implementations: dict[str, tuple[Run, Any]]) -> float:
    """One step of each from the same weights must give the same loss and the same new weights.

    Returns the largest difference found; raises SystemExit when one is over 1e-9.
    """
    reference_loss = reference_weights = None
    worst = 0.0
    for name, (run, model) in implementations.items():
        loss = run(1)
        weights = weights_of(model)
        if reference_weights is None:
            reference_loss, reference_weights = loss, weights
            continue
        difference = max(
            abs(loss - reference_loss),
            max(abs(a - b) for a, b in zip(weights, reference_weights, strict=True)),
        )
        if difference > 1e-9:
            raise SystemExit(f"{name} does not compute the same step (difference {difference:g})")
        worst = max(worst, difference)
    return worst


# -- scaling, depth and memory ----------------------------------------------------------------


def chain_backward(n_nodes: int) -> tuple[float, float]:
    """Seconds to build, and to run backward through, v = x * w * w * ... (n_nodes nodes)."""
    start = time.perf_counter()
    x, w = autograd_core.Value(1.0), autograd_core.Value(0.999999)
    v = x
    for _ in range(n_nodes - 2):
        v = v * w
    built = time.perf_counter()
    v.backward()
    done = time.perf_counter()
    expected = w.data ** (n_nodes - 2)
    if not math.isclose(x.grad, expected, rel_tol=1e-9):
        raise SystemExit(f"chain: d/dx is {x.grad!r}, expected {expected!r}")
    return built - start, done - built


def micrograd_recursion_depth() -> str:
    """micrograd's recursive topological sort, on a chain of 2,000 nodes."""
    v = micrograd.engine.Value(1.0)
    for _ in range(2_000):
        v = v * 1.0
    try:
        v.backward()
    except RecursionError:
        return "RecursionError"
    return "ok"


def bytes_per_node(value_class: type, model: Any, X: list[list[float]], y: list[int]) -> tuple:
    """tracemalloc bytes per node of the demo's graph: after the forward, and after backward.

    Counts the memory the step allocates and keeps (nodes, their inputs and partials, and
    then their gradients), divided by the nodes the step made.
    """
    signs = [2 * label - 1 for label in y]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        loss, _ = micrograd_style.demo_loss(value_class, model, X, signs)
        after_forward = tracemalloc.get_traced_memory()[0]
        loss.backward()
        gc.collect()
        after_backward = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    nodes = _count_nodes(loss) - len(model.parameters())
    return nodes, (after_forward - before) / nodes, (after_backward - before) / nodes


def _count_nodes(root: Any) -> int:
    """Nodes of a micrograd graph (`_prev`) or of ours (`inputs`)."""
    seen, stack = {root}, [root]
    while stack:
        node = stack.pop()
        for child in getattr(node, "inputs", None) or getattr(node, "_prev", ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return len(seen)


# -- the report ---------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            names = [line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": f"{cpu}, {os.cpu_count()} logical CPUs",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def verdict(measured: float, goal: float, at_most: bool = False) -> str:
    met = measured <= goal if at_most else measured >= goal
    return "met" if met else "**missed**"


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares y = a + b x: returns (a, b, r^2)."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    syy = sum((y - mean_y) ** 2 for y in ys)
    b = sxy / sxx
    return mean_y - b * mean_x, b, sxy * sxy / (sxx * syy)


def report(results: dict[str, Any]) -> str:
    """RESULTS.md: the machine, one step side by side, the goals, scaling, depth, memory."""
    sections = (_step_section, _goals_section, _scaling_section, _depth_and_memory_section)
    return "\n".join(line for section in sections for line in section(results)) + HOW_MEASURED


def _step_section(results: dict[str, Any]) -> list[str]:
    t = results["timings"]
    micro, floor_time = t["micrograd"], t[FLOOR].per_step
    machine_ = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Written by `python -m benchmarks.run` on {machine_['date']}.",
        "",
        f"- Machine: {machine_['platform']}; {machine_['cpu']}",
        f"- Python: {machine_['python']}",
        f"- Load average (1, 5, 15 min) at start: {results['load'][0]}; at end: "
        f"{results['load'][1]}. Other processes share the machine, and the figures move with it.",
        "",
        "## One training step",
        "",
        "2-16-16-1 ReLU MLP, 100 moons points (noise 0.1), hinge loss + 1e-4 L2, full batch, "
        "one SGD step. All implementations start from the same weights, and one step of each "
        "gives the same loss and the same new weights (largest difference "
        f"{results['same_step']:.1e}).",
        "",
        "| implementation | ms / step | best | of which GC | vs micrograd | "
        "vs micrograd, GC left out of both | vs floor |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for timing in t.values():
        without_gc = (micro.per_step - micro.gc_per_step) / (timing.per_step - timing.gc_per_step)
        lines.append(
            f"| {timing.name} | {timing.per_step * 1e3:.2f} | {timing.best * 1e3:.2f} | "
            f"{timing.gc_per_step * 1e3:.2f} | {micro.per_step / timing.per_step:.1f}x | "
            f"{without_gc:.1f}x | {timing.per_step / floor_time:.2f}x the time |"
        )
    jit = t["nn.fit(jit=True)"]
    lines += [
        "",
        "micrograd's own time is mostly its garbage collection: each node holds a closure "
        "that refers back to the node, so every step leaves cycles for the collector. Our nodes "
        "make no cycles and are freed as soon as the step ends; the collector still walks them.",
        "`nn.fit(jit=True)` traces and compiles once per `fit` call, which the per-step time "
        f"leaves out: that costs {jit.once * 1e3:.0f} ms per call.",
        "",
        "The floor skips the backward pass of every sample the hinge already classifies with a "
        "margin: at the start of training about half of them, on a trained model nearly all. "
        "The graph engines compute every sample whatever the weights. So the floor's row times "
        "the first step from the starting weights, every time, and the goal compares with it; "
        f"the floor's step on the model after {TRAINED_STEPS:,} steps is faster, and against it "
        f"`nn.fit(jit=True)` takes {jit.per_step / t[TRAINED_FLOOR].per_step:.2f}x the time.",
    ]
    return lines


def _goals_section(results: dict[str, Any]) -> list[str]:
    t = results["timings"]
    micro, floor_time, jit = t["micrograd"], t[FLOOR].per_step, t["nn.fit(jit=True)"]
    ours_vs_micro = micro.per_step / t["this engine, micrograd-style"].per_step
    eager_vs_micro = micro.per_step / t["nn.fit eager"].per_step
    jit_vs_floor = jit.per_step / floor_time
    memory = results["memory"]["autograd_core"][2]
    return [
        "",
        "## Goals",
        "",
        "| goal | target | measured | |",
        "|---|---:|---:|---|",
        f"| this engine driven like micrograd, vs micrograd | >= 5x faster | "
        f"{ours_vs_micro:.1f}x | {verdict(ours_vs_micro, GOAL_MICROGRAD_STYLE)} |",
        f"| nn.fit eager vs micrograd | >= 25x faster | {eager_vs_micro:.1f}x | "
        f"{verdict(eager_vs_micro, GOAL_FIT_EAGER)} |",
        f"| nn.fit(jit=True) vs the plain-float floor, first step | within 2x | "
        f"{jit_vs_floor:.2f}x ({jit.per_step / t[TRAINED_FLOOR].per_step:.2f}x against the "
        f"floor on the trained model) | {verdict(jit_vs_floor, GOAL_JIT, at_most=True)} |",
        f"| bytes per node | <= 250 | {memory:.0f} | {verdict(memory, GOAL_BYTES, at_most=True)} |",
        "",
    ]


def _scaling_section(results: dict[str, Any]) -> list[str]:
    lines = [
        "## Time per step against the number of parameters",
        "",
        "2-w-w-1 ReLU MLP, the same workload otherwise. Linear cost: the time is a fixed part "
        "(per sample and per neuron) plus a steady cost per parameter; the straight line fitted "
        "through the points and its r^2 are below the table.",
        "",
        "| width | parameters | nn.fit eager ms / step | µs / parameter | "
        "nn.fit(jit=True) ms / step | µs / parameter |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    widths, params, eager, jitted = zip(*results["scaling"], strict=True)
    for width, n, e, j in results["scaling"]:
        lines.append(
            f"| {width} | {n} | {e * 1e3:.2f} | {e / n * 1e6:.2f} | {j * 1e3:.2f} | "
            f"{j / n * 1e6:.2f} |"
        )
    lines.append("")
    for name, times in (("nn.fit eager", eager), ("nn.fit(jit=True)", jitted)):
        a, b, r2 = linear_fit([float(n) for n in params], list(times))
        lines.append(f"- {name}: {a * 1e3:.2f} ms + {b * 1e6:.2f} µs per parameter, r^2 = {r2:.4f}")
    return lines


def _depth_and_memory_section(results: dict[str, Any]) -> list[str]:
    build, backward = results["chain"]
    lines = [
        "",
        "## Depth",
        "",
        f"A chain of {CHAIN_NODES:,} nodes (`v = v * w`): built in {build:.2f} s, backward in "
        f"{backward:.2f} s, no recursion limit. micrograd's recursive sort on a chain of 2,000 "
        f"nodes: {results['micrograd_depth']}.",
        "",
        "## Memory per node",
        "",
        "tracemalloc, on the graph of one micrograd-style step (the same graph in both engines): "
        "the bytes the step allocates and keeps, divided by the nodes it makes.",
        "",
        "| engine | nodes | bytes / node after forward | after backward |",
        "|---|---:|---:|---:|",
    ]
    for name, (nodes, forward, backward_bytes) in results["memory"].items():
        lines.append(f"| {name} | {nodes} | {forward:.0f} | {backward_bytes:.0f} |")
    return lines


HOW_MEASURED = "\n".join(
    [
        "",
        "",
        "## How it is measured",
        "",
        "`time.perf_counter`, everything in one process. `run(n)` sets the starting weights "
        "and takes n steps. For each implementation `run(1 + k)` and `run(1)` are timed, and "
        "the difference of their medians over the trials is divided by k, so what a call costs "
        "once (`fit`'s checks, the jit trace) drops out; k is chosen so that a trial takes about "
        'a second. "best" uses the fastest trials instead. The trials of the implementations '
        'take turns, so that a busy spell of the machine falls on all of them. "of which GC" '
        "is the time Python's cyclic garbage collector ran during the steps (`gc.callbacks`): "
        "it is part of the time, as it is for a user. Before each timed call `gc.collect()` "
        "clears what earlier calls left, so that no "
        "implementation pays for collecting another's garbage.",
        "",
    ]
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="trials per measurement")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per trial, about")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("RESULTS.md"), help="report file"
    )
    args = parser.parse_args(argv)
    start_load = load()
    X, y = make_moons(100, noise=0.1, seed=SEED)
    results: dict[str, Any] = {"machine": machine()}
    results.update(measure_steps(X, y, args.trials, args.budget))
    results["scaling"] = measure_scaling(X, y, args.trials, args.budget)
    results["chain"] = chain_backward(CHAIN_NODES)
    print(f"chain of {CHAIN_NODES:,} nodes: built in {results['chain'][0]:.2f} s, "
          f"backward in {results['chain'][1]:.2f} s")  # fmt: skip
    results["micrograd_depth"] = micrograd_recursion_depth()
    results["memory"] = measure_memory(X, y)
    results["load"] = (start_load, load())
    dropin_section = dropin.report()
    # Imported last: torch's many objects would make every garbage collection of the graph
    # engines above slower (the collector walks all live objects).
    from . import arrays, float32, gpt, lengths, setup

    sections = [dropin_section, arrays.report(), gpt.report(), lengths.report(), setup.report()]
    sections.append(float32.report())
    text = report(results).rstrip("\n") + "\n\n" + "\n".join(sections)
    args.out.write_text(text)
    print()
    print(text[text.index("## Goals") : text.index("## Time per step")].strip())
    print(f"\nwritten to {args.out}")


def measure_steps(X: list[list[float]], y: list[int], trials: int, budget: float) -> dict:
    """The moons step of every implementation, checked to be the same step, then timed."""

    def implementations() -> dict[str, tuple[Run, Any]]:
        return {
            FLOOR: floor_run(X, y),
            "micrograd": micrograd_run(X, y),
            "this engine, micrograd-style": micrograd_style_run(X, y),
            "nn.fit eager": fit_run(X, y, jit=False),
            "nn.fit(jit=True)": fit_run(X, y, jit=True),
        }

    same_step = check_same_step(implementations())
    print(f"all implementations compute the same step (largest difference {same_step:.1e})")
    runs = {name: run for name, (run, _) in implementations().items()}
    runs[TRAINED_FLOOR] = floor_run(X, y, trained_steps=TRAINED_STEPS)[0]
    timings = measure(runs, trials, budget)
    for name, timing in timings.items():
        print(f"{name:36s} {timing.per_step * 1e3:9.2f} ms / step")
    order = ["micrograd", "this engine, micrograd-style", "nn.fit eager", "nn.fit(jit=True)"]
    return {
        "same_step": same_step,
        "timings": {name: timings[name] for name in [*order, FLOOR, TRAINED_FLOOR]},
    }


def measure_scaling(X: list[list[float]], y: list[int], trials: int, budget: float) -> list:
    """(width, parameters, eager seconds, jit seconds) per step of 2-w-w-1 MLPs."""
    scaling = []
    for width in WIDTHS:
        eager_run, model = fit_run(X, y, jit=False, widths=[width, width])
        jit_run, _ = fit_run(X, y, jit=True, widths=[width, width])
        pair = measure({"eager": eager_run, "jit": jit_run}, max(1, trials // 2), budget)
        params = len(model.parameters())
        eager, jitted = pair["eager"].per_step, pair["jit"].per_step
        scaling.append((width, params, eager, jitted))
        print(f"width {width:3d}: {params:5d} parameters, eager {eager * 1e3:8.2f} ms, "
              f"jit {jitted * 1e3:8.2f} ms")  # fmt: skip
    return scaling


def measure_memory(X: list[list[float]], y: list[int]) -> dict:
    """Bytes per node of the same micrograd-style step in this engine and in micrograd."""
    ours = micrograd_style.MLP(2, [*HIDDEN, 1])
    theirs = micrograd.nn.MLP(2, [*HIDDEN, 1])
    for model in (ours, theirs):
        set_weights(model, weights_of(nn_model(HIDDEN)))
    memory = {
        "autograd_core": bytes_per_node(autograd_core.Value, ours, X, y),
        "micrograd": bytes_per_node(micrograd.engine.Value, theirs, X, y),
    }
    for name, (_, forward, backward) in memory.items():
        print(
            f"{name:14s} {forward:6.0f} bytes / node after forward, {backward:6.0f} after backward"
        )
    return memory


if __name__ == "__main__":
    sys.exit(main())
