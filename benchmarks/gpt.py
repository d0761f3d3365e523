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
from autograd_core.compiler.batched import TrainingStep

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


def numpy_model(weights: dict[str, np.ndarray]) -> Callable[[np.ndarray], tuple[float, dict]]:
    """The same model's loss and gradients written by hand as NumPy matrix code: the floor."""
    W = weights
    causal = np.tril(np.ones((BLOCK, BLOCK), dtype=bool))

    def rmsnorm(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scale = ((x * x).mean(-1, keepdims=True) + 1e-5) ** -0.5
        return x * scale, scale

    def rmsnorm_back(dy: np.ndarray, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
        # y = x s, s = (mean x^2 + eps)^-1/2: dx = s dy - x s^3 mean(x dy)
        return scale * dy - x * scale**3 * (x * dy).mean(-1, keepdims=True)

    def split(x: np.ndarray) -> np.ndarray:  # (n, T, E) -> (n, H, T, D)
        return x.reshape(len(x), BLOCK, HEADS, HEAD).transpose(0, 2, 1, 3)

    def merge(x: np.ndarray) -> np.ndarray:  # (n, H, T, D) -> (n, T, E)
        return x.transpose(0, 2, 1, 3).reshape(len(x), BLOCK, EMBED)

    def loss_and_grads(X: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        n = len(X)
        ids, targets = X[:, :BLOCK].astype(int), X[:, BLOCK : 2 * BLOCK].astype(int)
        weights = X[:, 2 * BLOCK :] / n
        x0 = W["wte"][ids] + W["wpe"]
        x1, s1 = rmsnorm(x0)
        x2, s2 = rmsnorm(x1)
        q, k, v = (split(x2 @ W[name].T) for name in ("attn_wq", "attn_wk", "attn_wv"))
        logits = np.where(causal, q @ k.transpose(0, 1, 3, 2) / math.sqrt(HEAD), -np.inf)
        a = np.exp(logits - logits.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        mixed = merge(a @ v)
        x3 = mixed @ W["attn_wo"].T + x1
        x4, s4 = rmsnorm(x3)
        h = np.maximum(x4 @ W["mlp_fc1"].T, 0.0)
        x5 = h @ W["mlp_fc2"].T + x3
        z = x5 @ W["lm_head"].T
        p = np.exp(z - z.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        picked = np.take_along_axis(p, targets[..., None], -1)[..., 0]
        loss = float(-(np.log(picked) * weights).sum())
        # backward
        G: dict[str, np.ndarray] = {}
        dz = p * weights[..., None]
        np.put_along_axis(
            dz, targets[..., None], (picked - 1.0)[..., None] * weights[..., None], -1
        )
        G["lm_head"] = dz.reshape(-1, VOCAB).T @ x5.reshape(-1, EMBED)
        dx5 = dz @ W["lm_head"]
        G["mlp_fc2"] = dx5.reshape(-1, EMBED).T @ h.reshape(-1, 4 * EMBED)
        dh = (dx5 @ W["mlp_fc2"]) * (h > 0.0)
        G["mlp_fc1"] = dh.reshape(-1, 4 * EMBED).T @ x4.reshape(-1, EMBED)
        dx3 = rmsnorm_back(dh @ W["mlp_fc1"], x3, s4) + dx5
        G["attn_wo"] = dx3.reshape(-1, EMBED).T @ mixed.reshape(-1, EMBED)
        dmixed = split(dx3 @ W["attn_wo"])
        da = dmixed @ v.transpose(0, 1, 3, 2)
        dv = a.transpose(0, 1, 3, 2) @ dmixed
        dlogits = a * (da - (da * a).sum(-1, keepdims=True)) / math.sqrt(HEAD)
        dq, dk = dlogits @ k, dlogits.transpose(0, 1, 3, 2) @ q
        dx2 = np.zeros_like(x2)
        for name, d in (("attn_wq", dq), ("attn_wk", dk), ("attn_wv", dv)):
            d = merge(d)
            G[name] = d.reshape(-1, EMBED).T @ x2.reshape(-1, EMBED)
            dx2 += d @ W[name]
        dx1 = rmsnorm_back(dx2, x1, s2) + dx3
        dx0 = rmsnorm_back(dx1, x0, s1)
        G["wpe"] = dx0.sum(0)
        G["wte"] = np.zeros_like(W["wte"])
        np.add.at(G["wte"], ids, dx0)
        return loss, {name: G[name] for name in SHAPES}

    return loss_and_grads


class Adam:
    """Adam over a flat array, as `nn.optim.Adam` and `torch.optim.Adam` step."""

    def __init__(self, size: int, lr: float = 0.01, betas: tuple = (0.85, 0.99)) -> None:
        self.lr, (self.b1, self.b2), self.t = lr, betas, 0
        self.m, self.v = np.zeros(size), np.zeros(size)

    def update(self, theta: np.ndarray, grad: np.ndarray) -> None:
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * grad
        self.v = self.b2 * self.v + (1 - self.b2) * grad * grad
        m_hat, v_hat = self.m / (1 - self.b1**self.t), self.v / (1 - self.b2**self.t)
        theta -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def measure(sizes: Sequence[int] = (32, 128)) -> dict[str, Any]:
    """Each implementation's step at each batch size (seconds, median of 5), checked first to
    compute the same loss and gradients as the eager engine and PyTorch."""
    import torch
    from threadpoolctl import threadpool_limits

    from benchmarks.arrays import per_call

    weights = initial_weights()
    results: dict[str, Any] = {"lowered": {}, "steps": {n: {} for n in sizes}}
    steps = {}
    for style in ("dot", "sum"):
        step, params, seconds = lowered_step(sum_style=style == "sum")
        results["lowered"][style] = (statements(step), seconds)
        steps[style] = (step, np.array([p.data for p in params]))
    # the same loss and gradients: ours against eager and PyTorch, the NumPy floor against PyTorch
    X = batch(9, seed=1)
    sample_loss, params = scalar_gpt(weights)
    eager = vsum([sample_loss(*map(Value, row))[0] for row in X.tolist()]) / len(X)
    eager.backward()
    torch_loss, tensors = torch_model(weights)
    theirs = torch_loss(torch.tensor(X))
    theirs.backward()
    reference = np.concatenate([t.grad.numpy().ravel() for t in tensors])
    by_hand, hand_grads = numpy_model(weights)(X)
    errors = [abs(by_hand - theirs.item())]
    errors.append(
        np.abs(np.concatenate([g.ravel() for g in hand_grads.values()]) - reference).max()
    )
    for step, theta in steps.values():
        loss, _, grad = step(theta, X)
        errors += [abs(loss - eager.data), abs(loss - theirs.item())]
        errors.append(np.abs(grad - np.array([p.grad for p in params])).max())
        errors.append(np.abs(grad - reference).max())
    results["largest_difference"] = max(errors)

    torch.set_num_threads(1)
    with threadpool_limits(1):
        for n in sizes:
            X = batch(n, seed=n)
            times = results["steps"][n]
            for style, (step, theta) in steps.items():
                times[style] = per_call(our_step(step, theta.copy(), X))
            times["numpy"] = per_call(numpy_step(weights, X))
            times["torch"] = per_call(torch_step(weights, X))
    return results


def our_step(step: TrainingStep, theta: np.ndarray, X: np.ndarray) -> Callable[[], None]:
    """The lowered step and the array update of `nn.optim.Adam`, as `fit(jit=True)` runs them."""
    from nn.optim import Adam as OurAdam

    optimizer = OurAdam([Value(0.0) for _ in theta], lr=0.01, betas=(0.85, 0.99))

    def run() -> None:
        _, _, grad = step(theta, X)
        optimizer.update(theta, grad)

    return run


def numpy_step(weights: dict[str, np.ndarray], X: np.ndarray) -> Callable[[], None]:
    loss_and_grads = numpy_model({name: m.copy() for name, m in weights.items()})
    adam = Adam(sum(m.size for m in weights.values()))
    flat = np.concatenate([m.ravel() for m in weights.values()])

    def run() -> None:
        _, grads = loss_and_grads(X)
        adam.update(flat, np.concatenate([g.ravel() for g in grads.values()]))

    return run


def torch_step(weights: dict[str, np.ndarray], X: np.ndarray) -> Callable[[], None]:
    import torch

    loss, tensors = torch_model(weights)
    optimizer = torch.optim.Adam(tensors, lr=0.01, betas=(0.85, 0.99))
    Xt = torch.tensor(X)

    def run() -> None:
        optimizer.zero_grad()
        loss(Xt).backward()
        optimizer.step()

    return run


def report() -> str:
    r = measure()
    dot, sums = r["lowered"]["dot"], r["lowered"]["sum"]
    lines = [
        "## A scalar GPT, batched",
        "",
        "microgpt's model (1 layer, 16-wide embeddings, 4 heads, block 16, RMSNorm, ReLU MLP "
        "16-64-16, no biases, 27 characters; `benchmarks/gpt.py`) written over Values, one "
        "name per sample padded to 16 with a loss weight. One step: forward, backward and Adam, "
        "ms per step, median of 5, everything on one thread.",
        "",
        f"Lowered step: {dot[0]} statements, traced and lowered in {dot[1]:.2f} s (written "
        f"with `dot`); {sums[0]} statements in {sums[1]:.2f} s (written with Python's "
        f"`sum(w * x ...)`). Largest difference in the loss and gradients between ours (both "
        f"styles), the eager engine, the hand-written NumPy step and PyTorch: "
        f"{r['largest_difference']:.1e}.",
        "",
        "| batch | ours (dot) | ours (sum) | hand-written NumPy | PyTorch float64 | ours / NumPy "
        "| ours / PyTorch |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, t in r["steps"].items():
        ms = {name: f"{seconds * 1e3:.2f}" for name, seconds in t.items()}
        lines.append(
            f"| {n} | {ms['dot']} | {ms['sum']} | {ms['numpy']} | {ms['torch']} | "
            f"{t['dot'] / t['numpy']:.2f}x | {t['dot'] / t['torch']:.2f}x |"
        )
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    print(report())
