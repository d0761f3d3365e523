"""Names of different lengths, batched: padded to the block, or one program per length.

    python -m benchmarks.lengths   # prints the report; `benchmarks.run` adds it to RESULTS.md

`fit(jit=True)` trains `nn.GPT` on the names batched. A name's counted length (its letters and
the end) is 2 to 16 positions of the block of 16. Three ways to run a batch of them:

* padding: every name padded to the block, one program of 16 positions, the padding's loss
  weighted 0 (the sequence step's `lengths="padding"`);
* longest: the batch cut after its longest name, one program per such length
  (`lengths="longest"`, what `fit` does for a GPT in batches of 16 or more);
* per length: the batch split by length, one program per length, each group's loss weighted by
  its share of the batch's counted positions (`PerLengthStep`, here only: it lost).

A causal model's position t reads positions 1..t only, so all three give the same losses, the
same gradients and the same weights (to rounding); this checks it. Each way trains its own
`GPT(27, seed=0)` with Adam on the first `N_NAMES` names, the epochs of the three taken in turn
so that a slower minute of the shared machine hits each alike.
"""

from __future__ import annotations

import random
import statistics
import time
import tracemalloc
import warnings
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from nn import GPT, optim
from nn.data import names_dataset
from nn.train import _BatchedSequenceStep, _BatchedStep, _Loop, _token_accuracy

WAYS = ("padding", "longest", "per_length")
N_NAMES = 8000
EPOCHS = 4
BATCH_SIZES = (4, 32, 128)


class PerLengthStep(_BatchedSequenceStep):
    """The padded step run as one program per counted length: each batch split into groups
    of samples of one length, each group cut to it; losses and gradients added up. (Training
    steps only: no `evaluate`, as the measure takes no validation data.)"""

    def _step_for(self, n_features: int) -> Any:
        return _Grouped(super()._step_for)


class _Grouped:
    def __init__(self, step_for: Any) -> None:
        self.step_for = step_for

    def __call__(self, theta: Any, X: np.ndarray, Y: np.ndarray) -> tuple[float, Any, Any]:
        width, n = X.shape[1], len(X)
        counted = Y[:, width:] != 0.0
        lengths = np.where(counted.any(1), width - np.argmax(counted[:, ::-1], axis=1), 1)
        loss, dtheta, outputs = 0.0, 0.0, np.zeros((n, 0))
        for length in np.unique(lengths).tolist():
            rows = np.flatnonzero(lengths == length)
            # The weights were n / C for the batch's C counted positions: len(rows) / C here.
            weights = Y[rows, width : width + length] * (len(rows) / n)
            Yg = np.hstack([Y[rows, :length], weights])
            value, out, grad = self.step_for(length)(theta, X[rows, :length], Yg)
            if not outputs.size:
                outputs = np.zeros((n, width * (out.shape[1] // length)))
            loss, dtheta = loss + value, dtheta + grad
            outputs[rows, : out.shape[1]] = out
        return loss, outputs, dtheta


def _step(way: str) -> _BatchedSequenceStep:
    model = GPT(27, seed=0)
    model.train()
    params = model.parameters()
    optimizer = optim.Adam(params, lr=0.01, betas=(0.85, 0.99))
    if way == "per_length":
        return PerLengthStep(model, params, "cross_entropy", 27, optimizer)
    return _BatchedSequenceStep(model, params, "cross_entropy", 27, optimizer, lengths=way)


def measure(batch_size: int, n_names: int = N_NAMES, epochs: int = EPOCHS) -> dict[str, Any]:
    """Per way: seconds of the first epoch (with the programs' tracing), the later epochs'
    median, the programs built, and the losses of every epoch."""
    X, Y = names_dataset(16)
    X, Y = X[:n_names], Y[:n_names]
    loops, results = {}, {}
    for way in WAYS:
        step = _step(way)
        loops[way] = _Loop(
            step, step.data(X, Y), _token_accuracy, batch_size, 0.0, random.Random(0), epochs
        )
        results[way] = {"seconds": [], "losses": [], "step": step}
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # parameters a short program does not read
        for epoch in range(1, epochs + 1):
            for way in WAYS:
                start = time.perf_counter()
                loss, _, _ = loops[way].epoch(epoch)
                results[way]["seconds"].append(time.perf_counter() - start)
                results[way]["losses"].append(loss)
    for r in results.values():
        r["first"], r["later"] = r["seconds"][0], statistics.median(r["seconds"][1:])
        r["programs"] = len(r.pop("step")._program_for)
    padded = results["padding"]["losses"]
    results["largest_difference"] = max(
        abs(a - b) for way in WAYS for a, b in zip(results[way]["losses"], padded, strict=True)
    )
    return results


def programs() -> dict[str, tuple[int, float, float]]:
    """Per way, the programs that every length of the names needs: how many, seconds to trace
    and lower them, and MiB they hold once built (tracemalloc, in a second round, as it slows
    Python down)."""
    _, Y = names_dataset(16)
    lengths = sorted(set((np.asarray(Y) != -1).sum(axis=1).tolist()))
    needed = {"padding": [16], "longest": lengths, "per_length": lengths}
    figures = {}
    for way in WAYS:
        start = time.perf_counter()
        for length in needed[way]:
            _BatchedStep._step_for(_step(way), length)
        seconds = time.perf_counter() - start
        step = _step(way)
        tracemalloc.start()
        for length in needed[way]:
            _BatchedStep._step_for(step, length)
        held = tracemalloc.get_traced_memory()[0] / 2**20
        tracemalloc.stop()
        figures[way] = (len(needed[way]), seconds, held)
    return figures


def report() -> str:
    built = programs()
    runs = {n: measure(n) for n in BATCH_SIZES}
    difference = max(r["largest_difference"] for r in runs.values())
    lines = [
        "## Names of different lengths: padding or one program per length",
        "",
        f"`nn.GPT(27)` (microgpt's size) trained by `fit(jit=True)`'s batched step with Adam on "
        f"the first {N_NAMES:,} names, {EPOCHS} epochs, each way its own model from the same "
        "weights, the epochs taken in turn (`benchmarks/lengths.py`). Seconds per epoch: the "
        "first (with the tracing of every program it needs), then the median of the others. "
        f"Largest difference between the ways' epoch losses: {difference:.1e}.",
        "",
        "| batch | way | programs built | first epoch, s | later epochs, s | later / padding |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for n, r in runs.items():
        for way in WAYS:
            lines.append(
                f"| {n} | {way} | {r[way]['programs']} | {r[way]['first']:.2f} | "
                f"{r[way]['later']:.2f} | {r[way]['later'] / r['padding']['later']:.2f}x |"
            )
    lines += [
        "",
        "Every length the names need (counted lengths 2..16): programs, seconds to trace and "
        "lower them, MiB they hold.",
        "",
        "| way | programs | trace and lower, s | MiB held |",
        "|---|---:|---:|---:|",
    ]
    for way, (count, seconds, held) in built.items():
        lines.append(f"| {way} | {count} | {seconds:.2f} | {held:.1f} |")
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    print(report())
