"""Array speed: `fit(jit=True)` on the batched back-end, a hand-written NumPy step, PyTorch.

    python -m benchmarks.arrays             # the report; `benchmarks.run` adds it to RESULTS.md
    python -m benchmarks.arrays resources   # only tracing, a batched call and fit's epoch

Each workload is one training step (forward, backward, optimizer update) of a ReLU MLP, timed
side by side in one process:

* this engine: the step `fit(jit=True)` takes (the traced scalar program run as matrix code by
  `autograd_core.compiler.batched`, the l2 term, the finiteness check and the optimizer's array
  update);
* a hand-written NumPy step of the same network: the array floor;
* PyTorch on the CPU (when installed), float64, and float32 with its default threads where
  the goal names it.

BLAS is held to one thread for our step and the NumPy step, as `fit` holds it.
"""

from __future__ import annotations

import functools
import gc
import linecache
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import nn
from autograd_core import Value, jit, vsum
from nn.train import _BatchedStep


def per_call(f: Callable[[], Any], budget: float = 0.3, repeats: int = 5) -> float:
    """Median seconds per call of f over `repeats` runs of about `budget` / repeats seconds."""
    f()
    start = time.perf_counter()
    n = 1
    while time.perf_counter() - start < 0.02:
        f()
        n += 1
    per = (time.perf_counter() - start) / n
    loops = max(1, int(budget / repeats / per))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(loops):
            f()
        times.append((time.perf_counter() - t) / loops)
    return statistics.median(times)


# -- the three implementations of one step ------------------------------------------------------


def ours(w: Workload) -> Callable[[], Any]:
    widths, (X, y), loss, optimizer, lr, l2, batch = w.unpacked()
    model = nn.MLP(widths[0], widths[1:], seed=0)
    opt = _optimizer(nn.optim, optimizer, model.parameters(), lr)
    step = _BatchedStep(model, model.parameters(), loss, widths[-1], opt)
    data = step.data(X.tolist(), y.tolist())
    index = list(range(batch))
    return lambda: step.run(data, index, l2, "")


def _optimizer(module: Any, name: str, params: Any, lr: float) -> Any:
    return module.SGD(params, lr=lr) if name == "sgd" else module.Adam(params, lr=lr)


def numpy_step(w: Workload) -> Callable[[], Any]:
    """The same network written by hand as matrix code: the array floor."""
    widths, (X, y), loss, optimizer, lr, l2, batch = w.unpacked()
    rng = np.random.default_rng(0)
    Ws = [rng.normal(0, np.sqrt(2 / a), (b, a)) for a, b in pairwise(widths)]
    bs = [np.zeros(b) for b in widths[1:]]
    params = [p for pair in zip(Ws, bs, strict=True) for p in pair]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    Xb, yb = X[:batch], y[:batch]
    onehot = np.eye(widths[-1])[yb] if loss == "cross_entropy" else None
    sign = (2.0 * yb - 1.0)[:, None]
    t = [0]

    def step() -> None:
        n = len(Xb)
        activations, pre = [Xb], []
        for i, (W, b) in enumerate(zip(Ws, bs, strict=True)):
            z = activations[-1] @ W.T + b
            pre.append(z)
            activations.append(np.maximum(z, 0.0) if i < len(Ws) - 1 else z)
        z = activations[-1]
        if loss == "hinge":
            margin = 1.0 - sign * z
            dz = np.where(margin > 0, -sign, 0.0) / n
        else:
            shifted = z - z.max(1, keepdims=True)
            p = np.exp(shifted)
            p /= p.sum(1, keepdims=True)
            dz = (p - onehot) / n
        grads: list[np.ndarray] = []
        for i in range(len(Ws) - 1, -1, -1):
            gW = dz.T @ activations[i] + 2 * l2 * Ws[i]
            gb = dz.sum(0) + 2 * l2 * bs[i]
            grads[:0] = [gW, gb]
            if i:
                dz = (dz @ Ws[i]) * (pre[i - 1] > 0)
        t[0] += 1
        for k, (p, g) in enumerate(zip(params, grads, strict=True)):
            if optimizer == "sgd":
                p -= lr * g
            else:
                m[k] = 0.9 * m[k] + 0.1 * g
                v[k] = 0.999 * v[k] + 0.001 * g * g
                p -= (
                    lr
                    / (1 - 0.9 ** t[0])
                    * m[k]
                    / (np.sqrt(v[k]) / np.sqrt(1 - 0.999 ** t[0]) + 1e-8)
                )

    return step


_default_threads: int | None = None


def torch_step(
    w: Workload, dtype: str = "float64", threads: int | None = None
) -> Callable[[], Any] | None:
    """PyTorch's step; `threads=None` leaves torch its default number of threads."""
    widths, (X, y), loss, optimizer, lr, l2, batch = w.unpacked()
    try:
        import torch
    except ImportError:
        return None
    global _default_threads
    if _default_threads is None:  # torch's own choice, read before anything changes it
        _default_threads = torch.get_num_threads()
    torch.set_num_threads(threads or _default_threads)
    torch.manual_seed(0)
    kind = getattr(torch, dtype)
    layers: list[Any] = []
    for i, (a, b) in enumerate(pairwise(widths)):
        layers.append(torch.nn.Linear(a, b, dtype=kind))
        if i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    opt = _optimizer(torch.optim, optimizer, net.parameters(), lr)
    Xt = torch.tensor(X[:batch], dtype=kind)
    yt = torch.tensor(y[:batch])
    sign = (2.0 * yt.to(kind) - 1.0)[:, None]

    def step() -> None:
        opt.zero_grad()
        z = net(Xt)
        if loss == "hinge":
            value = torch.clamp(1.0 - sign * z, min=0).mean()
        else:
            value = torch.nn.functional.cross_entropy(z, yt)
        if l2:
            value = value + l2 * sum((p * p).sum() for p in net.parameters())
        value.backward()
        opt.step()

    return step


# -- workloads ------------------------------------------------------------------------------------


def workloads() -> list[Workload]:
    X, y = nn.data.make_moons(100, noise=0.1, seed=0)
    moons = (np.array(X), np.array(y))
    digits = nn.data.load_digits()
    digits = (np.array(digits[0]), np.array(digits[1]))
    rng = np.random.default_rng(0)
    wide = (rng.normal(size=(100, 40)), rng.integers(0, 10, 100))
    return [
        Workload(
            "moons 2-16-16-1, full batch (100), hinge + l2, SGD",
            moons,
            [2, 16, 16, 1],
            "hinge",
            "sgd",
            0.1,
            1e-4,
            100,
            goal_ms=0.1,
        ),
        Workload(
            "digits 64-32-10, batch 32, cross-entropy, Adam",
            digits,
            [64, 32, 10],
            "cross_entropy",
            "adam",
            1e-3,
            0.0,
            32,
            goal_ms=0.1,
        ),
        Workload(
            "digits 64-32-10, full batch (1797), cross-entropy, Adam",
            digits,
            [64, 32, 10],
            "cross_entropy",
            "adam",
            1e-3,
            0.0,
            1797,
        ),
        Workload(
            "40-100-100-10, batch 100, cross-entropy, Adam",
            wide,
            [40, 100, 100, 10],
            "cross_entropy",
            "adam",
            1e-3,
            0.0,
            100,
            torch32=True,
        ),
    ]


@dataclass
class Workload:
    """One training step to time: the network, its data, its loss and optimizer."""

    name: str
    data: tuple[np.ndarray, np.ndarray]
    widths: list[int]
    loss: str
    optimizer: str
    lr: float
    l2: float
    batch: int
    goal_ms: float | None = None
    torch32: bool = False

    def unpacked(self) -> tuple:
        return (self.widths, self.data, self.loss, self.optimizer, self.lr, self.l2, self.batch)


def measure_steps() -> list[dict[str, Any]]:
    rows = []
    for w in workloads():
        row = {"name": w.name, "goal_ms": w.goal_ms}
        with threadpool_limits(1):
            row["ours"] = per_call(ours(w))
            row["numpy"] = per_call(numpy_step(w))
            torch64 = torch_step(w, threads=1)
            row["torch64"] = per_call(torch64) if torch64 else None
        if w.torch32:
            torch32 = torch_step(w, dtype="float32")
            row["torch32"] = per_call(torch32) if torch32 else None
            with threadpool_limits(1):
                step = ours(w)
                start = time.perf_counter()
                for _ in range(6000):
                    step()
                row["ours_6000"] = time.perf_counter() - start
        rows.append(row)
    return rows


def digits_fit() -> dict[str, float]:
    """fit(jit=True) of notebook 12's MLP on digits (64-64-10 ReLU), 75/25 stratified split,
    40 epochs of batch 32, Adam at 0.002."""
    X, y = nn.data.load_digits()
    X_train, X_test, y_train, y_test = nn.data.train_test_split(X, y, test_size=0.25, seed=0)
    model = nn.MLP(64, [64, 10], seed=0)
    optimizer = nn.optim.Adam(model.parameters(), lr=2e-3)
    start = time.perf_counter()
    nn.fit(
        model,
        X_train,
        y_train,
        loss="cross_entropy",
        optimizer=optimizer,
        epochs=40,
        batch_size=32,
        seed=0,
        progress=False,
        jit=True,
    )
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "test_accuracy": nn.train.accuracy(model, X_test, y_test)}


def digits_cnn_fit() -> dict[str, float]:
    """fit(jit=True) of notebook 12's small CNN on digits, 75/25 stratified split.

    Conv1d(1, 32, 19, stride=2) on the 64 pixels row by row (a window of 19 pixels covers a
    3 x 3 patch), ReLU, Flatten, Layer(736, 10); trained on the training images and four
    copies shifted by one pixel, 20 epochs of batch 32, Adam 0.003 with a cosine decay.
    The seconds include making the shifted copies and the trace.
    """
    X, y = nn.data.load_digits()
    X_train, X_test, y_train, y_test = nn.data.train_test_split(X, y, test_size=0.25, seed=0)
    model = nn.Sequential(
        nn.Conv1d(1, 32, 19, stride=2, seed=1),
        nn.Activation("relu"),
        nn.Flatten(),
        nn.Layer(32 * 23, 10, activation="linear", seed=3),
    )
    epochs = 20
    optimizer = nn.optim.Adam(model.parameters(), lr=0.003)
    schedule = nn.optim.CosineDecay(optimizer, total_epochs=epochs)
    start = time.perf_counter()
    X_shifted, y_shifted = nn.data.shifted_copies(X_train, y_train)
    nn.fit(
        model,
        X_shifted,
        y_shifted,
        loss="cross_entropy",
        optimizer=optimizer,
        epochs=epochs,
        batch_size=32,
        seed=0,
        progress=False,
        jit=True,
        callbacks=[lambda epoch, model, history: schedule.step()],
    )
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "test_accuracy": nn.train.accuracy(model, X_test, y_test)}


def _regularised(seed: int = 0) -> nn.Sequential:
    """A digits MLP with batch norm and dropout: 64-64-10, BatchNorm1d(64), ReLU, Dropout(0.2)."""
    return nn.Sequential(
        nn.Layer(64, 64, "linear", seed=seed),
        nn.BatchNorm1d(64),
        nn.Activation("relu"),
        nn.Dropout(0.2, seed=seed + 1),
        nn.Layer(64, 10, "linear", seed=seed + 2),
    )


def regularised_steps() -> dict[str, float]:
    """One training step of `_regularised()` on 32 digits (cross-entropy, Adam), seconds: the
    eager graph, the batched back-end (batch norm's means over the batch axis, dropout's masks
    fed in), and PyTorch float64 on one thread; then 20 epochs of `fit(jit=True)`."""
    from nn.train import _EagerStep, _objective

    X, y = nn.data.load_digits()
    times: dict[str, float] = {}
    for name, make_step in (("eager", _EagerStep), ("batched", _BatchedStep)):
        model = _regularised()
        params = model.parameters()
        optimizer = nn.optim.Adam(params, lr=1e-3)
        if make_step is _EagerStep:
            step = _EagerStep(model, params, _objective("cross_entropy"), optimizer)
        else:
            step = _BatchedStep(model, params, "cross_entropy", 10, optimizer)
        data = step.data(X[:32], y[:32])
        batch = list(range(32))
        with threadpool_limits(1):
            run = functools.partial(step.run, data, batch, 0.0, "")
            times[name] = per_call(run, budget=1.0, repeats=3)
    times["torch64"] = _torch_regularised_step(X[:32], y[:32])
    X_train, X_test, y_train, y_test = nn.data.train_test_split(X, y, test_size=0.25, seed=0)
    model = _regularised()
    start = time.perf_counter()
    nn.fit(
        model,
        X_train,
        y_train,
        loss="cross_entropy",
        optimizer=nn.optim.Adam(model.parameters(), lr=5e-3),
        epochs=20,
        batch_size=32,
        seed=0,
        progress=False,
        jit=True,
    )
    times["fit_seconds"] = time.perf_counter() - start
    times["test_accuracy"] = nn.train.accuracy(model, X_test, y_test)
    return times


def _torch_regularised_step(X: list, y: list) -> float:
    try:
        import torch
    except ImportError:
        return float("nan")
    torch.set_num_threads(1)
    net = nn.to_torch(_regularised()).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    Xt, yt = torch.tensor(X, dtype=torch.float64), torch.tensor(y)

    def step() -> None:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(Xt), yt).backward()
        optimizer.step()

    seconds = per_call(step)
    torch.set_num_threads(_default_threads or torch.get_num_threads())
    return seconds


def _chain(n_nodes: int) -> Callable[[Value], Value]:
    """A function whose graph has about n_nodes nodes: a chain of tanh units and their sum."""

    def chain(x: Value) -> Value:
        terms = [x]
        for _ in range(n_nodes // 3):
            terms.append((terms[-1] * 0.999 + 0.001).tanh())
        return vsum(terms)

    return chain


def trace_seconds(n_nodes: int, repeats: int = 3) -> tuple[float, int]:
    """Median seconds to trace and compile the chain (first call of its jit, forward and
    backward), and its equations."""
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        j = jit(_chain(n_nodes))
        j.value_and_grad(0.3)
        times.append(time.perf_counter() - start)
        equations = len(j.program.equations)
        del j
    return statistics.median(times), equations


def _in_fresh_process(n_nodes: int, measured: str) -> str:
    """What a fresh Python prints after defining `peak()` (the process's peak memory so far,
    KiB) and `chain` (`_chain(n_nodes)`'s function), then running `measured`."""
    code = f"""
import time
import numpy as np
from autograd_core import jit, vsum

def peak():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))

def chain(x):
    terms = [x]
    for _ in range({n_nodes} // 3):
        terms.append((terms[-1] * 0.999 + 0.001).tanh())
    return vsum(terms)

{measured}
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return run.stdout


def trace_peak_mib(n_nodes: int) -> float:
    """How far tracing and compiling the chain raises a fresh process's peak memory, in MiB.

    Read from Linux's VmHWM (the peak resident set of this program image); `ru_maxrss` would
    not do, as a child started from a big parent keeps the parent's peak across exec.
    """
    measured = "before = peak()\njit(chain).value_and_grad(0.3)\nprint(peak() - before)"
    return int(_in_fresh_process(n_nodes, measured)) / 1024


def chain_batched(n_nodes: int = 100_000, n_points: int = 1000, repeats: int = 3) -> dict:
    """The first call of `jit(chain).batched` over n_points (trace, lowering, backward pass and
    the run, by a walk over its equations for a program this long), each in a fresh process:
    median seconds and median growth of the peak memory (VmHWM, as `trace_peak_mib`), MiB."""
    measured = f"""
x = np.linspace(-1.0, 1.0, {n_points})
before = peak()
start = time.perf_counter()
values, grads = jit(chain).batched(x)
print(time.perf_counter() - start, peak() - before)
"""
    runs = []
    for _ in range(repeats):
        seconds, kib = _in_fresh_process(n_nodes, measured).split()
        runs.append((float(seconds), int(kib) / 1024))
    return {
        "seconds": statistics.median(seconds for seconds, _ in runs),
        "peak_mib": statistics.median(mib for _, mib in runs),
    }


def tracing() -> dict[str, Any]:
    """Time against graph size, peak memory at 100,000 nodes, and what linecache keeps."""
    sizes = [25_000, 50_000, 100_000]
    timed = {n: trace_seconds(n) for n in sizes}
    j = jit(_chain(3000))
    j(0.3)
    key = next(k for k in linecache.cache if k.startswith("<jit-"))
    del j
    gc.collect()
    freed = key not in linecache.cache
    X, y = nn.data.make_moons(20, seed=0)
    for _ in range(200):
        model = nn.MLP(2, [4, 1], seed=0)
        optimizer = nn.optim.SGD(model.parameters(), lr=0.1)
        nn.fit(model, X, y, loss="hinge", optimizer=optimizer, epochs=1, progress=False, jit=True)
    gc.collect()
    kept = sum(1 for key in linecache.cache if key.startswith("<jit-"))
    return {"timed": timed, "peak_mib": trace_peak_mib(100_000), "freed": freed, "kept": kept}


def _five_ops(x: Any, y: Any) -> Any:
    """Five ops: a product, a tanh, a difference, an exp and a sum."""
    return (x * y).tanh() + (x - y).exp()


def five_op_call(n: int = 1001) -> dict[str, float]:
    """Seconds per call of `jit(_five_ops).batched` over n points, beside the same NumPy
    expression: its value alone, and its value and gradient written by hand (what `.batched`
    returns). The results are checked equal first."""
    x, y = np.linspace(-2.0, 2.0, n), np.linspace(1.0, 3.0, n)
    traced = jit(_five_ops)

    def by_hand() -> tuple[Any, Any]:
        t, e = np.tanh(x * y), np.exp(x - y)
        dt = 1.0 - t * t
        return t + e, (dt * y + e, dt * x - e)

    values, (dx, dy) = traced.batched(x, y)
    expected, (ex, ey) = by_hand()
    error = max(abs(values - expected).max(), abs(dx - ex).max(), abs(dy - ey).max())
    assert error < 1e-12, error
    with threadpool_limits(1):
        return {
            "batched": per_call(lambda: traced.batched(x, y), repeats=9),
            "numpy_value": per_call(lambda: np.tanh(x * y) + np.exp(x - y), repeats=9),
            "numpy_value_and_grad": per_call(by_hand, repeats=9),
        }


def fit_epoch_overhead(extra_epochs: int = 1000, repeats: int = 3) -> dict[str, float]:
    """What an epoch of `fit(jit=True)` costs beyond its training step, on full-batch moons
    (the demo's 2-16-16-1 MLP, 100 points, hinge + 1e-4 l2, SGD), seconds.

    An epoch's time is the difference of two runs of `fit`, 1 and 1 + extra_epochs epochs
    (medians of `repeats`), so the trace and the setup cancel; the step's is timed alone, as
    `fit` runs it (`_BatchedStep.run` on the same data), then the hand-written NumPy step."""
    X, y = nn.data.make_moons(100, noise=0.1, seed=0)

    def fit_seconds(epochs: int) -> float:
        model = nn.MLP(2, [16, 16, 1], seed=0)
        optimizer = nn.optim.SGD(model.parameters(), lr=0.1)
        start = time.perf_counter()
        nn.fit(model, X, y, loss="hinge", optimizer=optimizer, epochs=epochs, l2=1e-4,
               progress=False, jit=True)  # fmt: skip
        return time.perf_counter() - start

    one = statistics.median(fit_seconds(1) for _ in range(repeats))
    many = statistics.median(fit_seconds(1 + extra_epochs) for _ in range(repeats))
    moons = workloads()[0]
    with threadpool_limits(1):
        step = per_call(ours(moons), repeats=9)
        numpy = per_call(numpy_step(moons), repeats=9)
    return {"epoch": (many - one) / extra_epochs, "step": step, "numpy": numpy}


def resources() -> list[str]:
    """The report's lines on tracing, a batched call's overhead and fit's own epoch work."""
    traced = tracing()
    lines = [
        "Tracing and compiling (the first call of `jit(f)`, Python back-end, forward and backward,",
        "median of 3) a chain of tanh units, against the number of nodes of its graph; a program",
        "of over 20,000 equations runs by the interpreter loop instead of compiled source:",
        "",
        "| nodes | equations | seconds | µs per node |",
        "|---:|---:|---:|---:|",
    ]
    for n, (seconds, equations) in traced["timed"].items():
        lines.append(f"| {n:,} | {equations:,} | {seconds:.2f} | {seconds / n * 1e6:.1f} |")
    lines += [
        "",
        f"Tracing the 100,000-node graph raises a process's peak memory by "
        f"{traced['peak_mib']:.0f} MiB (from autograd_core loaded to the first call's result; "
        "goal: under 2 s and 250 MB). A program's source leaves `linecache` "
        f"when the program is collected ({'yes' if traced['freed'] else 'NO'}); after 200 "
        f"`fit(jit=True)` calls, {traced['kept']} sources are kept.",
    ]
    chain = chain_batched()
    lines += [
        "",
        "`jit(f).batched` over 1,000 points of the 100,000-node chain (its first call: trace, "
        "lowering, backward pass and run; a program this long is run by a walk over its "
        f"equations, not compiled; fresh process, median of 3): {chain['seconds']:.1f} s, "
        f"peak memory +{chain['peak_mib']:.0f} MiB (goal: under 5 s and 500 MB).",
    ]
    call = five_op_call()
    batched, value = call["batched"], call["numpy_value"]
    both = call["numpy_value_and_grad"]
    lines += [
        "",
        "A call of `jit(f).batched(x, y)` on five ops, `tanh(x * y) + exp(x - y)`, over 1,001 "
        f"points (median of 9): {batched * 1e6:.1f} µs; the same NumPy expression "
        f"{value * 1e6:.1f} µs ({batched / value:.2f}x), its value and gradient by hand "
        f"{both * 1e6:.1f} µs ({batched / both:.2f}x; goal: within 3x).",
    ]
    fitted = fit_epoch_overhead()
    epoch, step, numpy = fitted["epoch"], fitted["step"], fitted["numpy"]
    lines += [
        "",
        "`fit(jit=True)`'s own work per epoch on full-batch moons (2-16-16-1, 100 points, hinge, "
        f"SGD): an epoch {epoch * 1e6:.0f} µs, its step alone {step * 1e6:.0f} µs, so "
        f"{(epoch - step) * 1e6:.0f} µs of the epoch ({(epoch - step) / step:.2f}x the step; "
        f"goal: within 0.5x) is fit's; the hand-written NumPy step {numpy * 1e6:.0f} µs.",
        "",
    ]
    return lines


def report() -> str:
    rows = measure_steps()
    lines = [
        "## Array speed: the batched back-end",
        "",
        "One training step (forward, backward, optimizer update), ms per step, median of 5; our",
        "step and the NumPy step with BLAS on one thread, as `fit` runs; PyTorch float64 on one",
        "thread too, and float32 with its default threads where the goal names it.",
        "",
        "| workload | this engine (fit, jit) | hand-written NumPy | PyTorch float64 "
        "| ours / NumPy | ours / PyTorch |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        t64 = r["torch64"]
        lines.append(
            f"| {r['name']} | {r['ours'] * 1e3:.3f} | {r['numpy'] * 1e3:.3f} | "
            f"{t64 * 1e3:.3f} | {r['ours'] / r['numpy']:.2f}x | {r['ours'] / t64:.2f}x |"
        )
    wide = rows[-1]
    lines += [
        "",
        f"40-100-100-10 against PyTorch float32 with its default threads: ours "
        f"{wide['ours'] * 1e3:.3f} ms, PyTorch {wide['torch32'] * 1e3:.3f} ms "
        f"({wide['ours'] / wide['torch32']:.2f}x the time); 6000 of our steps took "
        f"{wide['ours_6000']:.2f} s.",
    ]
    fitted = digits_fit()
    lines += [
        "",
        f"`fit(jit=True)` of notebook 12's MLP on digits (64-64-10 ReLU, 75/25 stratified split, "
        f"40 epochs, batch 32, Adam at 0.002): {fitted['seconds']:.2f} s including the trace, "
        f"test accuracy {fitted['test_accuracy']:.3f} (goal: >= 0.97 in under 10 s).",
    ]
    cnn = digits_cnn_fit()
    lines += [
        "",
        f"`fit(jit=True)` of a small CNN on digits (notebook 12: Conv1d(1, 32, 19, stride=2), "
        f"ReLU, Layer(736, 10); 20 epochs over the training images and 4 shifted copies, batch "
        f"32, Adam with cosine decay): {cnn['seconds']:.2f} s including the trace, test "
        f"accuracy {cnn['test_accuracy']:.3f} (goal: >= 0.98 in under 10 s).",
    ]
    regular = regularised_steps()
    lines += [
        "",
        "Batch norm and dropout (digits, 64-64-10 with BatchNorm1d(64), ReLU, Dropout(0.2); one "
        "step of batch 32, cross-entropy, Adam): the eager graph "
        f"{regular['eager'] * 1e3:.1f} ms, the batched back-end {regular['batched'] * 1e3:.3f} ms "
        f"({regular['eager'] / regular['batched']:.0f}x faster), PyTorch float64 "
        f"{regular['torch64'] * 1e3:.3f} ms. 20 epochs of `fit(jit=True)`: "
        f"{regular['fit_seconds']:.2f} s, test accuracy {regular['test_accuracy']:.3f}.",
    ]
    lines += ["", *resources()]
    return "\n".join(lines)


if __name__ == "__main__":
    # `python -m benchmarks.arrays resources`: only the section on resources.
    print("\n".join(resources()) if sys.argv[1:] == ["resources"] else report())
