"""The pure-Python floor: one SGD step of a ReLU MLP with hinge loss, in plain floats.

No graph and no object per number: the weights are lists of floats, and the forward and
backward passes are written out by hand for this one model, as a competent engineer would
write them without a framework. Whatever a scalar engine does on top of this is overhead, so
this is the time the jitted step is measured against.

The model is `layers = [(W, b), ...]`: `W` a list of rows (one per neuron, as PyTorch's
`weight`), `b` a list of biases; every layer but the last applies relu. The loss is

    L = (1/n) sum_i max(0, 1 - s_i * score_i) + alpha * sum_p p^2,   s_i = +1 for class 1, -1 for 0

and the step is p <- p - lr * dL/dp.
"""

# ruff: noqa: B905
# (zip without strict=: a keyword call per zip would slow the floor's inner loops noticeably)

from __future__ import annotations

from operator import mul

Layer = tuple[list[list[float]], list[float]]


def train_step(
    layers: list[Layer], X: list[list[float]], y: list[int], lr: float, alpha: float
) -> float:
    """Update `layers` in place by one full-batch SGD step; return the loss before the step."""
    n = len(X)
    last = len(layers) - 1
    # Each layer's weights by column, to send a gradient back: d/da_k = sum_j delta_j W[j][k].
    columns = [[list(column) for column in zip(*W)] for W, _ in layers]
    grad_W = [[[0.0] * len(row) for row in W] for W, _ in layers]
    grad_b = [[0.0] * len(b) for _, b in layers]
    hinge_sum = 0.0
    for x, label in zip(X, y):
        # Forward, keeping every layer's input: activations[i] is what layer i reads.
        activations = [x]
        for i, (W, b) in enumerate(layers):
            a = activations[-1]
            z = [sum(map(mul, row, a)) + bias for row, bias in zip(W, b)]
            activations.append(z if i == last else [v if v > 0.0 else 0.0 for v in z])
        sign = 1.0 if label == 1 else -1.0
        margin = 1.0 - sign * activations[-1][0]
        if margin <= 0.0:
            continue  # the hinge is flat here: no loss and no gradient from this sample
        hinge_sum += margin
        # Backward: delta is dL/dz for the outputs of layer i.
        delta = [-sign / n]
        for i in range(last, -1, -1):
            a = activations[i]
            for j, d in enumerate(delta):
                if d != 0.0:
                    grad_b[i][j] += d
                    grad_W[i][j] = [g + d * ak for g, ak in zip(grad_W[i][j], a)]
            if i > 0:
                # Through the relu of layer i - 1: the gradient passes where its output is > 0.
                delta = [
                    sum(map(mul, column, delta)) if ak > 0.0 else 0.0
                    for column, ak in zip(columns[i], a)
                ]
    penalty = 0.0
    for (W, b), gW, gb in zip(layers, grad_W, grad_b):
        for j, (row, grow) in enumerate(zip(W, gW)):
            penalty += sum(map(mul, row, row)) + b[j] * b[j]
            # d/dp alpha p^2 = 2 alpha p, added to the hinge gradient before the update.
            W[j] = [w - lr * (g + 2.0 * alpha * w) for w, g in zip(row, grow)]
            b[j] -= lr * (gb[j] + 2.0 * alpha * b[j])
    return hinge_sum / n + alpha * penalty
