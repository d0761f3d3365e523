"""What `fit(jit=True)` costs before its first step, per weight, beside PyTorch's setup.

    python -m benchmarks.setup   # prints the report; `benchmarks.run` adds it to RESULTS.md

Before the first step `fit(jit=True)` checks the data, runs the model eagerly on a few samples
(to find Python control flow on the data, which a trace would freeze), traces one sample's
loss into a program and lowers it to matrix code. That work grows with the number of weights;
this module measures it on MLPs for MNIST (784 inputs, 10 classes) of growing width.

Each figure comes from a fresh process (so that its peak memory is its own): the model and
32 random samples are made first, then the clock and the resident-memory high-water mark
(Linux's VmHWM) are read around `fit(..., epochs=1, batch_size=32)` (the model and optimizer
built before), one step, whose own time (about a millisecond) is part of the figure.
PyTorch's figure is its whole way to the same step: building the `nn.Sequential` and the
optimizer, then the step. Each library first
takes one step of a 784-1-10 model, so that neither pays its once-per-process start-up (lazy
imports, PyTorch's first kernels) in the figure. Median of `repeats`.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

HIDDEN = (128, 1024)
"""The hidden widths measured: 784-128-10 (101,770 weights) and 784-1024-10 (814,090)."""


def _peak_mib() -> float:
    """This process's peak resident size. Linux's `ru_maxrss` keeps the parent's peak across
    fork and exec (run from `benchmarks.run`, which holds gigabytes by then, every growth read
    0), so the kernel's own high-water mark of this process's memory is read where there is
    one."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _samples() -> tuple[list[list[float]], list[int]]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 784)).tolist(), rng.integers(0, 10, 32).tolist()


def ours(hidden: int) -> dict[str, float]:
    """Seconds and MiB of `fit(jit=True)` up to and with its first step, in this process."""
    import warnings

    from nn import MLP, fit, optim

    X, y = _samples()

    def first_step(model: MLP, optimizer: optim.SGD) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no fallback to the eager engine
            fit(model, X, y, loss="cross_entropy", optimizer=optimizer, epochs=1, batch_size=32,
                progress=False, jit=True)  # fmt: skip

    model = MLP(784, [1, 10], seed=0)
    first_step(model, optim.SGD(model.parameters(), lr=0.1))
    model = MLP(784, [hidden, 10], seed=0)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    before, start, cpu = _peak_mib(), time.perf_counter(), time.process_time()
    first_step(model, optimizer)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    weights = len(model.parameters())
    return {"seconds": seconds, "cpu": cpu, "mib": _peak_mib() - before, "weights": weights}


def phases(hidden: int) -> dict[str, float]:
    """CPU seconds of the parts of `fit(jit=True)`'s setup, in this process, each timed alone
    on the same model: one eager forward pass without a graph (fit runs two: the count of
    outputs and the check on a second sample), the trace (a forward pass building the graph,
    then `ir.from_graph`), the lowering to matrix code (`batched.TrainingStep`), and the
    whole `fit` to its first step as `ours` times it."""
    from autograd_core.compiler import batched, ir
    from autograd_core.engine.modes import no_grad
    from nn import MLP, optim, train

    X, y = _samples()
    ours(1)  # the once-per-process start-up, as in `ours`
    model = MLP(784, [hidden, 10], seed=0)
    params = model.parameters()
    step = train._BatchedStep(model, params, "cross_entropy", 10, optim.SGD(params, lr=0.1))
    sample_loss, n_labels = step._sample_loss(784)
    n_inputs = 784 + n_labels

    def cpu(work: Any) -> tuple[float, Any]:
        start = time.process_time()
        result = work()
        return time.process_time() - start, result

    with no_grad():
        eager, _ = cpu(lambda: model(X[0]))
    with ir.without_gc():
        trace, traced = cpu(lambda: ir.trace(sample_loss, n_inputs, params, batch=True))
        lowering, _ = cpu(lambda: batched.TrainingStep(traced, n_labels=n_labels))
    whole = ours(hidden)["cpu"]
    return {"eager": eager, "trace": trace, "lowering": lowering, "whole": whole}


def torch(hidden: int) -> dict[str, float]:
    """The same span in PyTorch: the model and optimizer built, then one step."""
    import torch as pytorch

    X, y = _samples()
    X_t, y_t = pytorch.tensor(X, dtype=pytorch.float64), pytorch.tensor(y)

    def first_step(width: int) -> Any:
        model = pytorch.nn.Sequential(
            pytorch.nn.Linear(784, width), pytorch.nn.ReLU(), pytorch.nn.Linear(width, 10)
        ).double()
        optimizer = pytorch.optim.SGD(model.parameters(), lr=0.1)
        optimizer.zero_grad()
        pytorch.nn.functional.cross_entropy(model(X_t), y_t).backward()
        optimizer.step()
        return model

    first_step(1)
    before, start, cpu = _peak_mib(), time.perf_counter(), time.process_time()
    model = first_step(hidden)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    weights = sum(p.numel() for p in model.parameters())
    return {"seconds": seconds, "cpu": cpu, "mib": _peak_mib() - before, "weights": weights}


def _in_fresh_process(which: str, hidden: int) -> dict[str, float]:
    command = [sys.executable, "-m", "benchmarks.setup", "--one", which, str(hidden)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(hidden: Sequence[int] = HIDDEN, repeats: int = 3) -> dict[int, dict[str, Any]]:
    """For each width, ours and PyTorch's medians: seconds, peak MiB, and the weights."""
    results: dict[int, dict[str, Any]] = {}
    for width in hidden:
        runs: dict[str, list[dict[str, float]]] = {"ours": [], "torch": []}
        for _ in range(repeats):  # in turn, so a slower minute of the machine hits both
            for which in runs:
                runs[which].append(_in_fresh_process(which, width))
        results[width] = {
            which: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
            for which, rs in runs.items()
        }
    return results


def report() -> str:
    r = measure()
    lines = [
        "## Setup of fit(jit=True), per weight",
        "",
        "From the call of `fit(jit=True)` to the end of its first step (the checks, the eager "
        "run of a few samples, the trace and the lowering; the one step is about 1 ms), on an "
        "MLP 784-h-10 with 32 random samples; PyTorch float64's setup (model, optimizer, the "
        "same step) beside it. Each figure a fresh process, median of 3; memory is the growth of "
        "the process's peak resident size (`benchmarks/setup.py`). CPU seconds beside the wall "
        "clock's, as the machine is shared: us / weight from the CPU seconds (on a quiet "
        "machine the two agree).",
        "",
        "| model | weights | ours, s | ours, CPU s | ours, us / weight | ours, MiB | PyTorch, s | "
        "PyTorch, us / weight | PyTorch, MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for width, figures in r.items():
        ours_, theirs = figures["ours"], figures["torch"]
        n = ours_["weights"]
        lines.append(
            f"| 784-{width}-10 | {n:,.0f} | {ours_['seconds']:.2f} | {ours_['cpu']:.2f} | "
            f"{ours_['cpu'] / n * 1e6:.2f} | {ours_['mib']:.0f} | {theirs['seconds']:.3f} | "
            f"{theirs['cpu'] / n * 1e6:.3f} | {theirs['mib']:.0f} |"
        )
    lines += [
        "",
        "Where the time goes (CPU seconds, each part timed alone in one process, median of 3; "
        "fit runs two eager passes: the count of outputs, the check on a second sample): every "
        "part is work per weight, a Python object or a dict entry for each.",
        "",
        "| model | one eager pass | trace | lowering | the rest | fit, whole |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for width in r:
        runs = [_in_fresh_process("phases", width) for _ in range(3)]
        t = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        rest = t["whole"] - 2 * t["eager"] - t["trace"] - t["lowering"]
        lines.append(
            f"| 784-{width}-10 | {t['eager']:.2f} | {t['trace']:.2f} | {t['lowering']:.2f} | "
            f"{rest:.2f} | {t['whole']:.2f} |"
        )
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        which, width = sys.argv[2], int(sys.argv[3])
        print(json.dumps({"ours": ours, "torch": torch, "phases": phases}[which](width)))
    else:
        print(report())
