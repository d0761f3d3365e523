"""A scalar GPT, microgpt's size, run batched: our lowered step against PyTorch and NumPy.

    python -m benchmarks.gpt   # prints the report; `benchmarks.run` adds it to RESULTS.md

The model is microgpt's (one layer, 16-wide embeddings, 4 heads, block 16, RMSNorm without
weights, a ReLU MLP 16-64-16, no biases, 27 characters), written over Values the way a learner
writes it: lists of Values, `dot` for a product with a weight row, `logsumexp` for the
softmax's normaliser, `take` for an embedding's row and the target's logit. `sum_style=True`
writes every product as microgpt does, Python's `sum(w * x for ...)`.

A sample is a name padded to the block: 16 token ids, 16 targets and 16 loss weights (1 / the
batch's count of real positions, 0 on padding), so the mean over samples times n is the mean
loss per real position, as microgpt's. One step is the forward, the backward and Adam's update.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from autograd_core import Value, dot, ir, ops, take, vsum
from autograd_core.batched import TrainingStep

VOCAB, BLOCK, EMBED, HEADS, LAYERS = 27, 16, 16, 4, 1
HEAD = EMBED // HEADS
SHAPES = {  # microgpt's parameters, in its order
    "wte": (VOCAB, EMBED),
    "wpe": (BLOCK, EMBED),
    "attn_wq": (EMBED, EMBED),
    "attn_wk": (EMBED, EMBED),
    "attn_wv": (EMBED, EMBED),
    "attn_wo": (EMBED, EMBED),
    "mlp_fc1": (4 * EMBED, EMBED),
    "mlp_fc2": (EMBED, 4 * EMBED),
    "lm_head": (VOCAB, EMBED),
}


def initial_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(0.0, 0.08, shape) for name, shape in SHAPES.items()}


# -- the model on Values -------------------------------------------------------------------------


def scalar_gpt(
    weights: dict[str, np.ndarray], sum_style: bool = False
) -> tuple[Callable[..., list[Value]], list[Value]]:
    """The per-sample loss `f(*ids, *targets, *loss_weights) -> [loss]` and its parameters."""
    W = {name: [[Value(float(x)) for x in row] for row in m] for name, m in weights.items()}
    params = [v for m in W.values() for row in m for v in row]

    def product(row: Sequence[Value], x: Sequence[Any]) -> Any:
        return sum(w * xi for w, xi in zip(row, x, strict=True)) if sum_style else dot(row, x)

    def linear(x: Sequence[Any], m: list[list[Value]]) -> list[Any]:
        return [product(row, x) for row in m]

    def rmsnorm(x: Sequence[Any]) -> list[Any]:
        mean_square = vsum([xi * xi for xi in x]) / len(x)
        scale = (mean_square + 1e-5) ** -0.5
        return [xi * scale for xi in x]

    def sample_loss(*inputs: Value) -> list[Value]:
        ids, targets, loss_weights = inputs[:BLOCK], inputs[BLOCK : 2 * BLOCK], inputs[2 * BLOCK :]
        keys: list[list[Any]] = []
        values: list[list[Any]] = []
        losses = []
        for t in range(BLOCK):
            x = [a + b for a, b in zip(take(W["wte"], ids[t]), W["wpe"][t], strict=True)]
            x = rmsnorm(x)
            residual = x
            x = rmsnorm(x)
            q, k, v = (linear(x, W[name]) for name in ("attn_wq", "attn_wk", "attn_wv"))
            keys.append(k)
            values.append(v)
            heads = []
            for h in range(HEADS):
                part = slice(h * HEAD, (h + 1) * HEAD)
                logits = [product(q[part], key[part]) / math.sqrt(HEAD) for key in keys]
                normaliser = ops.LOGSUMEXP(*logits)
                attention = [(logit - normaliser).exp() for logit in logits]
                heads += [
                    product(attention, [value[j] for value in values])
                    for j in range(h * HEAD, (h + 1) * HEAD)
                ]
            x = [a + b for a, b in zip(linear(heads, W["attn_wo"]), residual, strict=True)]
            residual = x
            x = [h.relu() for h in linear(rmsnorm(x), W["mlp_fc1"])]
            x = [a + b for a, b in zip(linear(x, W["mlp_fc2"]), residual, strict=True)]
            logits = linear(x, W["lm_head"])
            nll = ops.LOGSUMEXP(*logits) - take(logits, targets[t])
            losses.append(nll * loss_weights[t])
        return [vsum(losses)]

    return sample_loss, params


def batch(n: int, seed: int = 0) -> np.ndarray:
    """n names of 2 to 12 letters, as the (n, 48) inputs: ids, targets, loss weights."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        name = [rng.randrange(1, VOCAB) for _ in range(rng.randrange(2, 13))]
        tokens = [0, *name, 0]  # the boundary token 0 starts and ends a name
        ids = tokens[:-1][:BLOCK]
        targets = tokens[1:][:BLOCK]
        counted = len(ids)
        pad = BLOCK - counted
        rows.append([*ids, *[0] * pad, *targets, *[0] * pad, *[1.0] * counted, *[0.0] * pad])
    X = np.array(rows, dtype=float)
    X[:, 2 * BLOCK :] *= n / X[:, 2 * BLOCK :].sum()
    return X


def lowered_step(sum_style: bool = False, seed: int = 0) -> tuple[TrainingStep, list[Value], float]:
    """The traced, lowered step; its parameters; seconds to trace and lower it."""
    sample_loss, params = scalar_gpt(initial_weights(seed), sum_style)
    start = time.perf_counter()
    with ir.without_gc():
        program = ir.trace(sample_loss, 3 * BLOCK, params, batch(1)[0].tolist())
        step = TrainingStep(program)
    return step, params, time.perf_counter() - start


def statements(step: TrainingStep) -> int:
    return sum(1 for line in step.source.splitlines()[1:] if line.strip() and "return" not in line)


def torch_model(weights: dict[str, np.ndarray]) -> tuple[Callable[[Any], Any], list[Any]]:
    """The same model in PyTorch, float64: `loss(X)` for the (n, 48) inputs, and its weights."""
    import torch

    W = {name: torch.tensor(m, requires_grad=True) for name, m in weights.items()}
    causal = torch.ones(BLOCK, BLOCK, dtype=torch.bool).tril()

    def rmsnorm(x: Any) -> Any:
        return x * ((x * x).mean(-1, keepdim=True) + 1e-5) ** -0.5

    def loss(X: Any) -> Any:
        ids, targets = X[:, :BLOCK].long(), X[:, BLOCK : 2 * BLOCK].long()
        weights = X[:, 2 * BLOCK :]
        n = len(X)
        x = rmsnorm(W["wte"][ids] + W["wpe"])
        residual = x
        x = rmsnorm(x)

        def heads(m: Any) -> Any:
            return (x @ m.T).view(n, BLOCK, HEADS, HEAD).transpose(1, 2)

        q, k, v = heads(W["attn_wq"]), heads(W["attn_wk"]), heads(W["attn_wv"])
        logits = (q @ k.transpose(-1, -2)) / math.sqrt(HEAD)
        attention = logits.masked_fill(~causal, -math.inf).softmax(-1)
        x = (attention @ v).transpose(1, 2).reshape(n, BLOCK, EMBED) @ W["attn_wo"].T + residual
        residual = x
        x = (rmsnorm(x) @ W["mlp_fc1"].T).relu() @ W["mlp_fc2"].T + residual
        logits = x @ W["lm_head"].T
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, VOCAB), targets.reshape(-1), reduction="none"
        )
        return (nll * weights.reshape(-1)).sum() / n

    return loss, list(W.values())


if __name__ == "__main__":
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    step, params, seconds = lowered_step()
    print(f"traced and lowered in {seconds:.2f} s: {statements(step)} statements")
    theta = np.array([p.data for p in params])
    for n in (1, 32, 128):
        X = batch(n)
        step(theta, X)
        start = time.perf_counter()
        for _ in range(5):
            step(theta, X)
        print(f"B = {n}: {(time.perf_counter() - start) / 5 * 1e3:.1f} ms per step")
