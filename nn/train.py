"""`fit`: the training loop, with the steps every framework takes, in the order PyTorch takes them.

For each epoch, for each batch:

    loss = mean loss over the batch (+ l2 penalty)   # forward
    optimizer.zero_grad(); loss.backward()            # gradients of the mean
    optimizer.step()                                  # update the parameters

With `jit=True` the same step runs without building a graph per sample: the loss of one sample,
as a function of (every parameter, the sample's inputs), is traced once by `autograd_core.jit`
into straight-line Python and replayed for every sample and epoch. The per-sample gradients
are averaged over the batch, the l2 gradient added, the sum written into `p.grad` and the
optimizer stepped: the same numbers as the eager path, to rounding.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tqdm.auto import tqdm

import autograd_core
from autograd_core import Value, no_grad

from . import losses
from .data import Seed, _check_count, as_rng, batches
from .modules import Module, functional_call

LossFunction = Callable[[list[Any], list[Any]], Value]

LOSSES: dict[str, LossFunction] = {
    "hinge": losses.hinge,
    "bce": losses.binary_cross_entropy,
    "cross_entropy": losses.cross_entropy,
    "mse": lambda preds, labels: losses.mse(preds, _mse_targets(preds, labels)),
}
"""The losses `fit` knows by name. With "mse", a label is the target of a one-output model,
and a one-hot vector for a model with several outputs."""


class Optimizer(Protocol):
    def step(self) -> None: ...

    def zero_grad(self) -> None: ...


@dataclass
class History:
    """What `fit` measured, one entry per epoch.

    `loss[e]`: the training loss (l2 penalty included) averaged over the steps of epoch e,
    each weighted by its batch size. `accuracy[e]`: the fraction of (X, y) the model classifies
    right at the end of epoch e.
    """

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)


def fit(
    model: Module,
    X: Sequence[Sequence[float]],
    y: Sequence[Any],
    *,
    loss: str | LossFunction,
    optimizer: Optimizer,
    epochs: int,
    batch_size: int | None = None,
    l2: float = 0.0,
    seed: Seed = None,
    progress: bool = True,
    jit: bool = False,
) -> History:
    """Train `model` on (X, y) for `epochs` passes and return the `History`.

    `loss` is "hinge", "bce" (binary cross-entropy from logits) or "mse" for a model with one
    output, "cross_entropy" or "mse" for one output per class, or a function
    `loss(predictions, labels) -> Value` giving the batch mean. `batch_size`: None for batch
    gradient descent, 1 for stochastic, k for mini-batches (see `nn.data.batches`); `seed`
    draws the order in which mini-batches visit the samples. `l2` adds
    `nn.losses.l2(model.parameters(), l2)`.

    Accuracy counts the predicted class: argmax for several outputs; for one output, score > 0
    means class 1, except with "mse", which rounds the output to the nearest class.

    A loss or a gradient that is not finite (or that overflows) stops training with a
    `FloatingPointError` naming the epoch and step; the check comes before `optimizer.step()`,
    so the parameters are those from before the bad step.

    `jit=True` traces the loss of one sample once per class label (the label is a constant of
    the trace, the parameters and inputs are its arguments) and gives the same result as the
    eager path. Python control flow in a custom loss or model is frozen by the trace, as in
    `autograd_core.jit`.
    """
    objective = _objective(loss)
    _check_data(X, y)
    _check_count("fit", "epochs", epochs, 0)
    if isinstance(l2, bool) or not isinstance(l2, numbers.Real) or not 0.0 <= l2 < math.inf:
        raise ValueError(f"fit expected l2 to be a finite number >= 0, got {l2!r}")
    if not (callable(getattr(optimizer, "step", None)) and callable(optimizer.zero_grad)):
        raise TypeError(f"fit expected an optimizer with step() and zero_grad(), got {optimizer!r}")
    with no_grad():
        n_outputs = _n_outputs(model(X[0]))
    if isinstance(loss, str):
        _check_loss_fits(loss, n_outputs, y)
    mse_rounding = loss == "mse"

    params = model.parameters()
    step = _JitStep(model, params, objective) if jit else _EagerStep(model, params, objective)
    rng = as_rng(seed)
    shuffle = batch_size is not None and batch_size < len(X)
    history = History()
    bar = tqdm(range(1, epochs + 1), desc="fit", unit="epoch", disable=not progress)
    for epoch in bar:
        loss_sum = 0.0
        epoch_batches = batches(X, y, batch_size, shuffle=shuffle, seed=rng)
        for number, (X_batch, y_batch) in enumerate(epoch_batches, start=1):
            where = f"epoch {epoch}/{epochs}, step {number}/{len(epoch_batches)}"
            try:
                value = step.gradients(X_batch, y_batch, l2)
            except OverflowError as error:
                raise FloatingPointError(f"{error} at {where}; {_ADVICE}") from error
            _check_finite(value, params, where)
            optimizer.step()
            loss_sum += value * len(X_batch)
        history.loss.append(loss_sum / len(X))
        history.accuracy.append(_accuracy(model, X, y, mse_rounding))
        bar.set_postfix(loss=history.loss[-1], accuracy=history.accuracy[-1], refresh=False)
    return history


_ADVICE = (
    "training stopped before this step, so the parameters are those from before it "
    "(a smaller learning rate usually helps)"
)


class _EagerStep:
    """Build the graph of the batch's loss, then backward: gradients land in `p.grad`."""

    def __init__(self, model: Module, params: list[Value], objective: LossFunction) -> None:
        self.model = model
        self.params = params
        self.objective = objective

    def gradients(self, X_batch: list[Any], y_batch: list[Any], l2: float) -> float:
        total = self.objective([self.model(x) for x in X_batch], y_batch)
        if l2:
            total = total + losses.l2(self.params, l2)
        self.model.zero_grad()
        if math.isfinite(total.data):
            total.backward()
        return total.data


class _JitStep:
    """The same step from the traced per-sample loss: no graph is built after the first call."""

    def __init__(self, model: Module, params: list[Value], objective: LossFunction) -> None:
        self.model = model
        self.params = params
        self.objective = objective
        self.traced: dict[Any, autograd_core.Jitted] = {}

    def _sample_loss(self, label: Any) -> autograd_core.Jitted:
        """The jitted loss of one sample with this label, as a function of (params..., x...)."""
        if label not in self.traced:
            n_params = len(self.params)

            def sample_loss(*arguments: Value) -> Value:
                prediction = functional_call(self.model, arguments[:n_params], arguments[n_params:])
                return self.objective([prediction], [label])

            self.traced[label] = autograd_core.jit(sample_loss)
        return self.traced[label]

    def gradients(self, X_batch: list[Any], y_batch: list[Any], l2: float) -> float:
        values = [p.data for p in self.params]
        grad_sums = [0.0] * len(values)
        sample_losses = []
        for x, label in zip(X_batch, y_batch):
            value, grads = self._sample_loss(label).value_and_grad(*values, *x)
            sample_losses.append(value)
            # map stops at the shorter list: the gradients for x, after the parameters', drop out.
            grad_sums = list(map(operator.add, grad_sums, grads))
        n = len(X_batch)
        total = sum(sample_losses) / n
        for p, g in zip(self.params, grad_sums):
            p.grad = g / n
        if l2:
            # d/dp alpha sum p^2 = 2 alpha p, as losses.l2 gives it in the eager path.
            total = total + l2 * sum(map(operator.mul, values, values))
            for p, v in zip(self.params, values):
                p.grad += 2.0 * l2 * v
        return total


def _mse_targets(preds: list[Any], labels: list[Any]) -> list[Any]:
    return [
        [1.0 if j == label else 0.0 for j in range(len(p))] if isinstance(p, list) else label
        for p, label in zip(preds, labels)
    ]


def _objective(loss: str | LossFunction) -> LossFunction:
    if callable(loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]
    raise ValueError(f"unknown loss {loss!r}: expected one of {', '.join(LOSSES)} or a function")


def _n_outputs(output: Any) -> int:
    return len(output) if isinstance(output, list) else 1


def _check_loss_fits(loss: str, n_outputs: int, y: Sequence[Any]) -> None:
    """Refuse, before any step, a loss the model's outputs cannot feed or a label it cannot give."""
    if loss in ("hinge", "bce") and n_outputs != 1:
        raise ValueError(f"loss {loss!r} needs a model with 1 output, this one has {n_outputs}")
    if loss == "cross_entropy" and n_outputs < 2:
        raise ValueError(
            "loss 'cross_entropy' needs a model with one output per class (>= 2), this one has "
            "1: use 'bce' or 'hinge' for two classes"
        )
    n_classes = max(n_outputs, 2)
    for i, label in enumerate(y):
        if isinstance(label, bool) or not isinstance(label, numbers.Integral):
            raise ValueError(f"label {label!r} of sample {i} is not a class index (an int)")
        if not 0 <= label < n_classes:
            raise ValueError(
                f"label {label!r} of sample {i} is not a class this model can output: "
                f"expected 0..{n_classes - 1}"
            )


def _check_data(X: Sequence[Any], y: Sequence[Any]) -> None:
    if len(X) != len(y):
        raise ValueError(f"fit expected as many labels as samples, got {len(X)} and {len(y)}")
    if len(X) == 0:
        raise ValueError("fit expected at least one sample, got none")


def _check_finite(value: float, params: list[Value], where: str) -> None:
    if not math.isfinite(value):
        raise FloatingPointError(f"the loss is {value!r} at {where}; {_ADVICE}")
    for p in params:
        if not math.isfinite(p.grad):
            raise FloatingPointError(f"a gradient is {p.grad!r} at {where}; {_ADVICE}")


def _predicted_class(output: Any, mse_rounding: bool) -> int:
    if isinstance(output, list):
        scores = [o.data for o in output]
        return scores.index(max(scores))
    if mse_rounding:
        return math.floor(output.data + 0.5)
    return 1 if output.data > 0.0 else 0


def _accuracy(model: Module, X: Sequence[Any], y: Sequence[Any], mse_rounding: bool) -> float:
    with no_grad():
        correct = sum(_predicted_class(model(x), mse_rounding) == label for x, label in zip(X, y))
    return correct / len(X)

