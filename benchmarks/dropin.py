"""Our `Value` as a drop-in: a loop written for a minimal micrograd-style Value, run on both.

    python -m benchmarks.dropin                # from the repository root; prints a report
    python -m benchmarks.dropin --repeats 2    # a quicker run

`MinimalValue` below is the smallest engine of its kind (about 40 lines): each op stores its
inputs and its local partial derivatives, computed in the forward pass, and `backward` sorts
the graph by recursion, then applies the chain rule. `gpt_loss` is a scalar GPT the size of
microgpt's (one layer, 16-wide embeddings, 4 heads, RMSNorm, ReLU MLP 16-64-16, no biases)
written for such a Value: `sum(w * x ...)`, `.exp()`, `.log()`, `.relu()`, `**`, on five
positions of one name. The same function runs with `MinimalValue` and with
`autograd_core.Value` swapped in, from the same weights.

Both runs must give the same loss and the same gradient of every weight (to 1e-12). The
forward pass (building the graph) and the backward pass are timed separately, with Python's
garbage collector on, as a user has it (its time is part of the step's); a step is both and
letting the graph go. The two engines take turns of several steps in a row, and the medians
of the steps' CPU times are reported.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import statistics
import time
from typing import Any

import autograd_core
from autograd_core.engine.backward import topological_order

TOKENS = [0, 5, 13, 13, 1, 0]  # a name between two boundary tokens
EMBED, HEADS, VOCAB = 16, 4, 27
REPEATS = 6  # turns of each engine
STEPS = 10  # steps in a row in each turn


class MinimalValue:
    """The reference: a 40-line micrograd-style Value with the local partials stored in the
    forward pass and a recursive topological sort."""

    __slots__ = ("data", "grad", "_children", "_local_grads")

    def __init__(self, data: float, children: tuple = (), local_grads: tuple = ()) -> None:
        self.data = data
        self.grad = 0
        self._children = children
        self._local_grads = local_grads

    def __add__(self, other: Any) -> MinimalValue:
        other = other if isinstance(other, MinimalValue) else MinimalValue(other)
        return MinimalValue(self.data + other.data, (self, other), (1, 1))

    def __mul__(self, other: Any) -> MinimalValue:
        other = other if isinstance(other, MinimalValue) else MinimalValue(other)
        return MinimalValue(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, other: float) -> MinimalValue:
        return MinimalValue(self.data**other, (self,), (other * self.data ** (other - 1),))

    def log(self) -> MinimalValue:
        return MinimalValue(math.log(self.data), (self,), (1 / self.data,))

    def exp(self) -> MinimalValue:
        return MinimalValue(math.exp(self.data), (self,), (math.exp(self.data),))

    def relu(self) -> MinimalValue:
        return MinimalValue(max(0, self.data), (self,), (float(self.data > 0),))

    def __neg__(self) -> MinimalValue:
        return self * -1

    def __radd__(self, other: Any) -> MinimalValue:
        return self + other

    def __sub__(self, other: Any) -> MinimalValue:
        return self + (-other)

    def __rsub__(self, other: Any) -> MinimalValue:
        return other + (-self)

    def __rmul__(self, other: Any) -> MinimalValue:
        return self * other

    def __truediv__(self, other: Any) -> MinimalValue:
        return self * other**-1

    def __rtruediv__(self, other: Any) -> MinimalValue:
        return other * self**-1

    def backward(self) -> None:
        topo, visited = [], set()

        def build_topo(v: MinimalValue) -> None:
            if v not in visited:
                visited.add(v)
                for child in v._children:
                    build_topo(child)
                topo.append(v)

        build_topo(self)
        self.grad = 1
        for v in reversed(topo):
            for child, local_grad in zip(v._children, v._local_grads):  # noqa: B905
                child.grad += local_grad * v.grad


# -- the model, written for any such Value -------------------------------------------------------


def weights(value_class: type, seed: int = 0) -> dict[str, list[list[Any]]]:
    """microgpt's parameters, Gaussian with standard deviation 0.08 (the same for every class)."""
    rng = random.Random(seed)

    def matrix(rows: int, columns: int) -> list[list[Any]]:
        return [[value_class(rng.gauss(0, 0.08)) for _ in range(columns)] for _ in range(rows)]

    return {
        "wte": matrix(VOCAB, EMBED),
        "wpe": matrix(len(TOKENS), EMBED),
        "lm_head": matrix(VOCAB, EMBED),
        "wq": matrix(EMBED, EMBED),
        "wk": matrix(EMBED, EMBED),
        "wv": matrix(EMBED, EMBED),
        "wo": matrix(EMBED, EMBED),
        "fc1": matrix(4 * EMBED, EMBED),
        "fc2": matrix(EMBED, 4 * EMBED),
    }


def linear(x: list[Any], w: list[list[Any]]) -> list[Any]:
    return [sum(wi * xi for wi, xi in zip(wo, x)) for wo in w]  # noqa: B905


def softmax(logits: list[Any]) -> list[Any]:
    largest = max(v.data for v in logits)
    exps = [(v - largest).exp() for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


def rmsnorm(x: list[Any]) -> list[Any]:
    mean_square = sum(xi * xi for xi in x) / len(x)
    scale = (mean_square + 1e-5) ** -0.5
    return [xi * scale for xi in x]


def gpt(sd: dict, token: int, pos: int, keys: list, values: list) -> list[Any]:
    """The logits at one position; `keys` and `values` collect the positions so far."""
    x = rmsnorm([t + p for t, p in zip(sd["wte"][token], sd["wpe"][pos], strict=True)])
    residual = x
    x = rmsnorm(x)
    q, k, v = linear(x, sd["wq"]), linear(x, sd["wk"]), linear(x, sd["wv"])
    keys.append(k)
    values.append(v)
    width = EMBED // HEADS
    heads = []
    for h in range(HEADS):
        lo, hi = h * width, (h + 1) * width
        qh, kh, vh = q[lo:hi], [ki[lo:hi] for ki in keys], [vi[lo:hi] for vi in values]
        logits = [sum(qh[j] * kt[j] for j in range(width)) / width**0.5 for kt in kh]
        w = softmax(logits)
        heads.extend(sum(w[t] * vh[t][j] for t in range(len(vh))) for j in range(width))
    x = [a + b for a, b in zip(linear(heads, sd["wo"]), residual, strict=True)]
    residual = x
    x = [xi.relu() for xi in linear(rmsnorm(x), sd["fc1"])]
    x = [a + b for a, b in zip(linear(x, sd["fc2"]), residual, strict=True)]
    return linear(x, sd["lm_head"])


def gpt_loss(sd: dict) -> Any:
    """The mean cross-entropy of predicting each next token of `TOKENS`."""
    keys: list = []
    values: list = []
    losses = []
    for pos in range(len(TOKENS) - 1):
        probs = softmax(gpt(sd, TOKENS[pos], pos, keys, values))
        losses.append(-probs[TOKENS[pos + 1]].log())
    return (1 / len(losses)) * sum(losses)


def parameters(sd: dict) -> list[Any]:
    return [p for matrix in sd.values() for row in matrix for p in row]


# -- measuring -------------------------------------------------------------------------------------


def check_same_numbers(tolerance: float = 1e-12) -> float:
    """The loss and every weight's gradient from both engines; the largest difference found.

    Raises SystemExit when one is over `tolerance` (relative to the number's size, at least 1).
    """
    results = []
    for value_class in (MinimalValue, autograd_core.Value):
        sd = weights(value_class)
        loss = gpt_loss(sd)
        loss.backward()
        results.append([loss.data] + [p.grad for p in parameters(sd)])
    worst = max(abs(a - b) / max(1.0, abs(a)) for a, b in zip(*results, strict=True))
    if worst > tolerance:
        raise SystemExit(f"the two engines differ by {worst:g}: not the same numbers")
    return worst


def time_step(value_class: type, sd: dict) -> tuple[float, float, float]:
    """CPU seconds of one forward pass, of its backward pass, and of letting the graph go.

    Letting go counts: a training loop drops each step's graph, and what that costs (freeing
    every node, or leaving them to the garbage collector, which then frees them during a later
    forward pass, as the 40-line Value's recursive sort does) is part of its step.
    CPU time of this process, not the clock: on a shared machine the time other processes
    take the CPU would otherwise count, and it comes and goes within a run.
    """
    for p in parameters(sd):
        p.grad = 0
    start = time.process_time()
    loss = gpt_loss(sd)
    built = time.process_time()
    loss.backward()
    done = time.process_time()
    del loss
    return built - start, done - built, time.process_time() - done


def measure(repeats: int = REPEATS, steps: int = STEPS) -> dict[str, Any]:
    """Forward and backward times of both engines; medians over every step, and ratios.

    The engines take turns, `steps` steps in a row each time, `repeats` times: within a turn
    nothing is collected by hand, so the garbage collector runs when its counters say, as in
    a user's training loop (a `gc.collect()` before every step would reset them, and each
    step would then pay for the same collections, or miss the same ones, every time). A step
    is the forward pass, the backward pass and letting the graph go.
    """
    difference = check_same_numbers()
    engines = {"minimal": MinimalValue, "ours": autograd_core.Value}
    models = {name: weights(value_class) for name, value_class in engines.items()}
    times: dict[str, list[tuple[float, float, float]]] = {name: [] for name in engines}
    nodes = _count_nodes(gpt_loss(models["ours"]))
    for _ in range(repeats):
        for name, value_class in engines.items():
            gc.collect()  # what the other engine left is not this one's to collect
            for _ in range(steps):
                times[name].append(time_step(value_class, models[name]))
    medians = {
        name: {
            "forward": statistics.median(f for f, _, _ in parts),
            "backward": statistics.median(b for _, b, _ in parts),
            "step": statistics.median(sum(step) for step in parts),
        }
        for name, parts in times.items()
    }
    ratios = {part: medians["ours"][part] / medians["minimal"][part] for part in medians["ours"]}
    return {
        "medians": medians,
        "ratios": ratios,
        "difference": difference,
        "repeats": repeats,
        "steps": steps,
        "nodes": nodes,
    }


def _count_nodes(root: Any) -> int:
    return len(topological_order(root))


def report(results: dict[str, Any] | None = None) -> str:
    """The section of RESULTS.md (measured now unless `results` are given)."""
    results = results or measure()
    m, r = results["medians"], results["ratios"]
    lines = [
        "## Drop-in: a loop written for a minimal micrograd-style Value",
        "",
        "A scalar GPT the size of microgpt's, written for a 40-line Value (local partials "
        "stored in the forward pass, a recursive topological sort), one forward and backward "
        f"pass over 5 positions ({results['nodes']:,} nodes), run on that Value and on "
        "`autograd_core.Value`, from the same weights. Both give the same loss and gradients "
        f"(largest difference {results['difference']:.1e}). Garbage collector on, as in a "
        f"training loop: the engines take turns of {results['steps']} steps in a row, "
        f"{results['repeats']} turns each; medians of the steps' CPU times (`time.process_time`); "
        "a step is the forward pass, the backward pass and letting the graph go.",
        "",
        "| pass | 40-line Value, ms | autograd_core.Value, ms | ours / 40-line |",
        "|---|---:|---:|---:|",
    ]
    for part in ("forward", "backward", "step"):
        lines.append(
            f"| {part} | {m['minimal'][part] * 1e3:.1f} | {m['ours'][part] * 1e3:.1f} | "
            f"{r[part]:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS, help="turns of each engine")
    parser.add_argument("--steps", type=int, default=STEPS, help="steps in a row in a turn")
    args = parser.parse_args(argv)
    print(report(measure(args.repeats, args.steps)))


if __name__ == "__main__":
    main()
