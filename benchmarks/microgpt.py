"""microgpt's recipe on `nn.GPT`, beside its PyTorch twin and a micrograd-style scalar engine.

    python -m benchmarks.microgpt              # from the repository root; prints a report
    python -m benchmarks.microgpt --steps 200  # a shorter run

The recipe: the character-level GPT of microgpt (`GPT(27)`: 1 layer, n_embd 16, 4 heads,
block 16, RMSNorm, ReLU MLP, no biases) trained on one name per step, the names shuffled with
seed 42, Adam (lr 0.01, betas 0.85 / 0.99, eps 1e-8) with the learning rate decayed linearly
to 0, the loss the mean cross-entropy over the name's positions. Three runs of it:

- `nn.GPT` on the eager engine;
- its PyTorch twin (`nn.to_torch`, float64) from the same starting weights;
- the same model on a minimal micrograd-style Value (one node per `+` and `*`, a closure per
  node), written out below, for the first steps only: it is slow.

Each run's final loss, mean loss over the last 100 steps and time per step are printed.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from typing import Any

import nn
from autograd_core import Value
from nn.data import load_names, names_tokenizer


def names_in_order(seed: int = 42) -> list[list[int]]:
    """Each name as [boundary, *characters, boundary], shuffled as microgpt shuffles them."""
    tokenizer = names_tokenizer()
    names = load_names()
    random.Random(seed).shuffle(names)
    return [[tokenizer.boundary, *tokenizer.encode(name), tokenizer.boundary] for name in names]


def _window(tokens: list[int], block_size: int) -> tuple[list[int], list[int]]:
    n = min(block_size, len(tokens) - 1)
    return tokens[:n], tokens[1 : n + 1]


def train_ours(model: nn.GPT, docs: list[list[int]], steps: int) -> tuple[list[float], float]:
    """microgpt's loop on the eager engine: the loss of every step, and seconds per step."""
    optimizer = nn.optim.Adam(model.parameters(), lr=0.01, betas=(0.85, 0.99), eps=1e-8)
    losses = []
    start = time.perf_counter()
    for step in range(steps):
        ids, targets = _window(docs[step % len(docs)], model.block_size)
        loss = nn.losses.cross_entropy(model(ids), targets)
        optimizer.lr = 0.01 * (1.0 - step / steps)
        model.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.data)
    return losses, (time.perf_counter() - start) / steps


def train_torch(net: Any, docs: list[list[int]], steps: int, block_size: int) -> tuple[list, float]:
    """The same loop on the PyTorch twin."""
    import torch

    torch.set_num_threads(1)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01, betas=(0.85, 0.99), eps=1e-8)
    losses = []
    start = time.perf_counter()
    for step in range(steps):
        ids, targets = _window(docs[step % len(docs)], block_size)
        logits = net(torch.tensor([ids]))[0]
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(targets))
        for group in optimizer.param_groups:
            group["lr"] = 0.01 * (1.0 - step / steps)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, (time.perf_counter() - start) / steps


# -- the same model on a micrograd-style engine ------------------------------------------------


class ScalarValue:
    """micrograd's Value with the ops microgpt needs: a closure per node, binary + and *."""

    __slots__ = ("data", "grad", "_backward", "_prev")

    def __init__(self, data: float, children: tuple = ()) -> None:
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = children

    def __add__(self, other: Any) -> ScalarValue:
        other = other if isinstance(other, ScalarValue) else ScalarValue(other)
        out = ScalarValue(self.data + other.data, (self, other))

        def _backward() -> None:
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other: Any) -> ScalarValue:
        other = other if isinstance(other, ScalarValue) else ScalarValue(other)
        out = ScalarValue(self.data * other.data, (self, other))

        def _backward() -> None:
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, exponent: float) -> ScalarValue:
        out = ScalarValue(self.data**exponent, (self,))

        def _backward() -> None:
            self.grad += exponent * self.data ** (exponent - 1) * out.grad

        out._backward = _backward
        return out

    def exp(self) -> ScalarValue:
        out = ScalarValue(math.exp(self.data), (self,))

        def _backward() -> None:
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self) -> ScalarValue:
        out = ScalarValue(math.log(self.data), (self,))

        def _backward() -> None:
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    def relu(self) -> ScalarValue:
        out = ScalarValue(max(self.data, 0.0), (self,))

        def _backward() -> None:
            self.grad += (out.data > 0) * out.grad

        out._backward = _backward
        return out

    def __radd__(self, other: Any) -> ScalarValue:
        return self + other

    def __rmul__(self, other: Any) -> ScalarValue:
        return self * other

    def __neg__(self) -> ScalarValue:
        return self * -1.0

    def __sub__(self, other: Any) -> ScalarValue:
        return self + (-other)

    def __truediv__(self, other: Any) -> ScalarValue:
        return self * other**-1.0

    def backward(self) -> None:
        order, seen, stack = [], set(), [(self, False)]
        while stack:  # iterative: a deep graph would exceed Python's recursion limit
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif node not in seen:
                seen.add(node)
                stack.append((node, True))
                stack.extend((child, False) for child in node._prev)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()


def _matrix(rows: list[list[Value]]) -> list[list[ScalarValue]]:
    return [[ScalarValue(w.data) for w in row] for row in rows]


def scalar_weights(model: nn.GPT) -> dict[str, Any]:
    """The GPT's parameters as ScalarValues, by their state_dict names."""
    return {
        name: [ScalarValue(p.data) for p in tensor]
        if isinstance(tensor[0], Value)
        else _matrix(tensor)
        for name, tensor in model.named_parameters()
    }


def _linear(x: list, w: list[list]) -> list:
    return [sum(wi * xi for wi, xi in zip(row, x, strict=True)) for row in w]


def _rmsnorm(x: list, weight: list) -> list:
    scale = (sum(xi * xi for xi in x) / len(x) + 1e-5) ** -0.5
    return [xi * (scale * w) for xi, w in zip(x, weight, strict=True)]


def _softmax_cross_entropy(logits: list, target: int) -> ScalarValue:
    top = max(z.data for z in logits)
    exps = [(z - top).exp() for z in logits]
    return -(exps[target] / sum(exps)).log()


def scalar_loss(w: dict[str, Any], ids: list[int], targets: list[int], n_head: int) -> Any:
    """The GPT's mean loss on one name, computed one `+` and `*` at a time."""
    dim = len(w["wte.weight"][0])
    d = dim // n_head
    keys, values, losses = [], [], []
    for t, (token, target) in enumerate(zip(ids, targets, strict=True)):
        x = [a + b for a, b in zip(w["wte.weight"][token], w["wpe.weight"][t], strict=True)]
        h = _rmsnorm(x, w["blocks.0.ln_1.weight"])
        qkv = _linear(h, w["blocks.0.attn.in_proj_weight"])
        q, k, v = qkv[:dim], qkv[dim : 2 * dim], qkv[2 * dim :]
        keys.append(k)
        values.append(v)
        heads = []
        for head in range(n_head):
            s = slice(head * d, (head + 1) * d)
            scores = [
                sum(qi * ki for qi, ki in zip(q[s], key[s], strict=True)) * d**-0.5 for key in keys
            ]
            top = max(z.data for z in scores)
            exps = [(z - top).exp() for z in scores]
            total = sum(exps)
            weights = [e / total for e in exps]
            heads += [
                sum(a * value[j] for a, value in zip(weights, values, strict=True))
                for j in range(s.start, s.stop)
            ]
        x = [
            a + b
            for a, b in zip(x, _linear(heads, w["blocks.0.attn.out_proj.weight"]), strict=True)
        ]
        h = [
            z.relu()
            for z in _linear(_rmsnorm(x, w["blocks.0.ln_2.weight"]), w["blocks.0.fc.weight"])
        ]
        x = [a + b for a, b in zip(x, _linear(h, w["blocks.0.proj.weight"]), strict=True)]
        logits = _linear(_rmsnorm(x, w["ln_f.weight"]), w["lm_head.weight"])
        losses.append(_softmax_cross_entropy(logits, target))
    return sum(losses) * (1.0 / len(losses))


def time_scalar_steps(model: nn.GPT, docs: list[list[int]], steps: int) -> tuple[float, float]:
    """Seconds per forward + backward of the micrograd-style model (no update: the time is all
    in the graph), and its first loss (equal to ours: the same model, the same numbers)."""
    weights = scalar_weights(model)
    n_head = model.blocks[0].attn.n_head
    start = time.perf_counter()
    first = None
    for step in range(steps):
        ids, targets = _window(docs[step % len(docs)], model.block_size)
        loss = scalar_loss(weights, ids, targets, n_head)
        loss.backward()
        first = loss.data if first is None else first
    return (time.perf_counter() - start) / steps, first


def report(steps: int, scalar_steps: int) -> str:
    docs = names_in_order()
    model = nn.GPT(27, seed=0)
    net = nn.to_torch(model).train()
    ids, targets = _window(docs[0], model.block_size)
    first_ours = nn.losses.cross_entropy(model(ids), targets).data
    scalar_time, first_scalar = time_scalar_steps(model, docs, scalar_steps)
    ours, ours_time = train_ours(model, docs, steps)
    theirs, torch_time = train_torch(net, docs, steps, model.block_size)
    last = min(100, steps)
    lines = [
        f"microgpt's recipe, {steps} steps of one name (GPT(27): {len(model.parameters())} "
        "parameters)",
        f"first loss: ours {first_ours:.12f}, micrograd-style {first_scalar:.12f}",
        "",
        "| run | final loss | mean of the last 100 | ms / step |",
        "|---|---:|---:|---:|",
        f"| nn.GPT, eager | {ours[-1]:.4f} | {statistics.fmean(ours[-last:]):.4f} | "
        f"{1000 * ours_time:.1f} |",
        f"| PyTorch twin, float64 | {theirs[-1]:.4f} | {statistics.fmean(theirs[-last:]):.4f} | "
        f"{1000 * torch_time:.1f} |",
        f"| micrograd-style Value ({scalar_steps} steps, forward + backward) | | | "
        f"{1000 * scalar_time:.1f} |",
        "",
        "largest difference between the two runs' losses, step for step: "
        f"{max(abs(a - b) for a, b in zip(ours, theirs, strict=True)):.1e}",
        f"nn.GPT eager is {scalar_time / ours_time:.1f}x faster than the micrograd-style engine "
        "(whose time leaves out the update).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--scalar-steps", type=int, default=30)
    args = parser.parse_args()
    print(report(args.steps, args.scalar_steps))


if __name__ == "__main__":
    main()
