"""micrograd's `nn.py` on this engine's Value, and micrograd's moons demo for either engine.

`MLP` is micrograd's model line for line with `autograd_core.Value`, so it drives this engine
exactly as micrograd is driven: one node per `+` and `*` (the library's own `nn.MLP` makes one
`dot` node per neuron instead). `demo_step(value_class, ...)` is one iteration of the loop in
micrograd's `demo.ipynb`, the same code for micrograd's Value and for ours.
"""

# ruff: noqa: B905
# (micrograd's code as written: zip without strict=)

from __future__ import annotations

from typing import Any

from autograd_core import Value


class Neuron:
    def __init__(self, nin: int, nonlin: bool = True) -> None:
        self.w = [Value(0.0) for _ in range(nin)]
        self.b = Value(0.0)
        self.nonlin = nonlin

    def __call__(self, x: list[Any]) -> Any:
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.relu() if self.nonlin else act

    def parameters(self) -> list[Any]:
        return self.w + [self.b]


class Layer:
    def __init__(self, nin: int, nout: int, **kwargs: Any) -> None:
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x: list[Any]) -> Any:
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Any]:
        return [p for n in self.neurons for p in n.parameters()]


class MLP:
    """micrograd's MLP; the weights start at 0, for the benchmark to set."""

    def __init__(self, nin: int, nouts: list[int]) -> None:
        sz = [nin] + nouts
        self.layers = [
            Layer(sz[i], sz[i + 1], nonlin=i != len(nouts) - 1) for i in range(len(nouts))
        ]

    def __call__(self, x: list[Any]) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[Any]:
        return [p for layer in self.layers for p in layer.parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0


def demo_loss(value_class: type, model: Any, X: list[list[float]], y: list[int]) -> Any:
    """The demo's `loss()`, full batch: hinge loss plus 1e-4 L2, and the accuracy."""
    inputs = [list(map(value_class, xrow)) for xrow in X]
    # forward the model to get scores
    scores = list(map(model, inputs))
    # svm "max-margin" loss
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    # L2 regularization
    alpha = 1e-4
    reg_loss = alpha * sum(p * p for p in model.parameters())
    total_loss = data_loss + reg_loss
    # also get accuracy
    accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
    return total_loss, sum(accuracy) / len(accuracy)


def demo_step(
    value_class: type, model: Any, X: list[list[float]], y: list[int], lr: float
) -> float:
    """One iteration of the demo's loop (labels -1/+1, as the demo makes them); the loss."""
    # forward
    total_loss, acc = demo_loss(value_class, model, X, y)
    # backward
    model.zero_grad()
    total_loss.backward()
    # update (sgd)
    for p in model.parameters():
        p.data -= lr * p.grad
    return total_loss.data
