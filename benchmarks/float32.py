"""The batched step in float32 beside float64, and PyTorch in both.

    python -m benchmarks.float32   # prints the report; `benchmarks.run` adds it to RESULTS.md

One training step (forward, backward; the loss of cross-entropy, no optimizer) of MLPs for
MNIST (784 inputs, 10 classes) on random data, run by `fit(jit=True)`'s program with theta and
the batch in float64, then in float32 (`fit(..., dtype="float32")`): every array of the program
and its constants in that type. The float32 gradients are checked against float64's (largest
relative difference, over the largest gradient). PyTorch runs the same network's step in both
types. Medians of `repeats`, everything on one thread (NumPy's BLAS and PyTorch's).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from nn import MLP
from nn.train import _BatchedStep

from .arrays import per_call

SHAPES = ((784, 256, 10, 128), (784, 1024, 10, 256))
"""(inputs, hidden, classes, batch) of the networks measured."""


def _median_ms(run: Callable[[], Any], repeats: int) -> float:
    """The median of `repeats` single calls, in ms (no budget: one call a run)."""
    return per_call(run, budget=0.0, repeats=repeats) * 1e3


def ours(shape: tuple[int, int, int, int], repeats: int) -> dict[str, float]:
    n_in, hidden, classes, batch = shape
    model = MLP(n_in, [hidden, classes], activation="relu", seed=0)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(batch, n_in)), rng.integers(0, classes, batch)
    step = _BatchedStep(model, model.parameters(), "cross_entropy", classes, None)
    program = step._step_for(n_in)
    features, targets = step.data(X, y).X
    figures, grads = {}, {}
    for dtype in (np.float64, np.float32):
        run = functools.partial(
            program, *(a.astype(dtype) for a in (step.theta, features, targets))
        )
        grads[dtype] = run()[2]
        figures[dtype.__name__] = _median_ms(run, repeats)
    difference = np.abs(grads[np.float32] - grads[np.float64]).max()
    figures["difference"] = float(difference / np.abs(grads[np.float64]).max())
    return figures


def torch_step(shape: tuple[int, int, int, int], repeats: int) -> dict[str, float] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    n_in, hidden, classes, batch = shape
    figures = {}
    for dtype in (torch.float64, torch.float32):
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes)
        ).to(dtype)
        X = torch.randn(batch, n_in, dtype=dtype)
        y = torch.randint(0, classes, (batch,))

        step = functools.partial(_torch_step, torch, net, X, y)
        figures[str(dtype).removeprefix("torch.")] = _median_ms(step, repeats)
    return figures


def _torch_step(torch: Any, net: Any, X: Any, y: Any) -> None:
    net.zero_grad()
    torch.nn.functional.cross_entropy(net(X), y).backward()


def report(repeats: int = 20) -> str:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _report(repeats)


def _report(repeats: int) -> str:
    lines = [
        "## float32",
        "",
        "One step (forward and backward of cross-entropy) of an MLP on random data, ms, median "
        f"of {repeats}, one thread (`benchmarks/float32.py`). Ours: `fit(jit=True)`'s program "
        "with theta and the batch in float64, then in float32 (`fit(dtype='float32')`); the "
        "difference is the float32 gradient's largest relative difference from float64's.",
        "",
        "| network, batch | ours f64 | ours f32 | f64 / f32 | PyTorch f64 | PyTorch f32 | "
        "f32 gradient difference |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for shape in SHAPES:
        r = ours(shape, repeats)
        t = torch_step(shape, repeats) or {"float64": float("nan"), "float32": float("nan")}
        lines.append(
            f"| {'-'.join(map(str, shape[:3]))}, {shape[3]} | {r['float64']:.2f} | "
            f"{r['float32']:.2f} | {r['float64'] / r['float32']:.2f}x | {t['float64']:.2f} | "
            f"{t['float32']:.2f} | {r['difference']:.1e} |"
        )
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    print(report())
