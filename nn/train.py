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
from autograd_core import Value, dot, no_grad

from . import losses
from .data import Seed, _check_count, _check_samples, as_rng, batches
from .modules import Module, functional_call

LossFunction = Callable[[list[Any], list[Any]], Value]


def _mse_of_labels(preds: list[Any], labels: list[Any]) -> Value:
    """`losses.mse` against the labels: the label itself for one output, one-hot for several."""
    targets = [
        [1.0 if j == label else 0.0 for j in range(len(p))] if isinstance(p, list) else label
        for p, label in zip(preds, labels, strict=True)
    ]
    return losses.mse(preds, targets)


LOSSES: dict[str, LossFunction] = {
    "hinge": losses.hinge,
    "bce": losses.binary_cross_entropy,
    "cross_entropy": losses.cross_entropy,
    "mse": _mse_of_labels,
}
"""The losses `fit` knows by name."""


class Optimizer(Protocol):
    """What `fit` needs of an optimizer (`nn.optim.SGD`, `Adam`, `RMSprop` all fit)."""

    def step(self) -> None: ...

    def zero_grad(self) -> None: ...


@dataclass
class History:
    """What `fit` measured, one entry per epoch.

    `loss[e]`: the training loss (l2 penalty included) averaged over the steps of epoch e,
    each weighted by its batch size. `accuracy[e]`: the fraction of the samples classified
    right by the same forward passes, so both are measured before each step's update (as in
    Keras). For the accuracy of the trained model, call `accuracy(model, X, y)`.
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
    `nn.losses.l2(model.parameters(), l2)`. The progress bar (tqdm: a widget in notebooks, a
    text bar in terminals) shows the latest epoch's loss and accuracy; `progress=False` hides it.

    Accuracy counts the predicted class: the argmax for several outputs; for one output,
    class 1 where the score or logit is > 0, except with "mse", which rounds the output to the
    nearest class. A custom loss function is counted like "hinge" and "bce".

    A loss or a gradient that is not finite (or that overflows) stops training with a
    `FloatingPointError` naming the epoch and step; the check comes before `optimizer.step()`,
    so the parameters are those from before the bad step.

    `jit=True` traces the loss of one sample once per class label (the label is a constant of
    the trace, the parameters and inputs are its arguments) and gives the same result as the
    eager path, several times faster. Python control flow in a custom loss or model is frozen
    by the trace, as in `autograd_core.jit`.
    """
    objective = _objective(loss)
    _check_samples("fit", X, y)
    _check_count("fit", "epochs", epochs, 0)
    if isinstance(l2, bool) or not isinstance(l2, numbers.Real) or not 0.0 <= l2 < math.inf:
        raise ValueError(f"fit expected l2 to be a finite number >= 0, got {l2!r}")
    if not all(callable(getattr(optimizer, name, None)) for name in ("step", "zero_grad")):
        raise TypeError(f"fit expected an optimizer with step() and zero_grad(), got {optimizer!r}")
    with no_grad():
        n_outputs = _n_outputs(model(X[0]))
    if isinstance(loss, str):
        _check_loss_fits(loss, n_outputs, y)
    predicted_class = _rounded_class if loss == "mse" else _predicted_class

    params = model.parameters()
    if jit:
        step: _EagerStep | _JitStep = _JitStep(model, params, objective, n_outputs)
    else:
        step = _EagerStep(model, params, objective)
    rng = as_rng(seed)
    shuffle = batch_size is not None and batch_size < len(X)
    history = History()
    bar = tqdm(range(1, epochs + 1), desc="fit", unit="epoch", disable=not progress)
    for epoch in bar:
        loss_sum, correct = 0.0, 0
        epoch_batches = batches(X, y, batch_size, shuffle=shuffle, seed=rng)
        for number, (X_batch, y_batch) in enumerate(epoch_batches, start=1):
            where = f"epoch {epoch}/{epochs}, step {number}/{len(epoch_batches)}"
            try:
                value, outputs = step.gradients(X_batch, y_batch, l2)
            except OverflowError as error:
                raise FloatingPointError(f"{error} at {where}; {_ADVICE}") from error
            _check_finite(value, params, where)
            optimizer.step()
            loss_sum += value * len(X_batch)
            correct += sum(map(operator.eq, map(predicted_class, outputs), y_batch))
        history.loss.append(loss_sum / len(X))
        history.accuracy.append(correct / len(X))
        bar.set_postfix(loss=history.loss[-1], accuracy=history.accuracy[-1], refresh=False)
    return history


def accuracy(
    model: Module, X: Sequence[Sequence[float]], y: Sequence[Any], *, loss: str = "hinge"
) -> float:
    """The fraction of (X, y) that `model` classifies right, counted as `fit` counts it.

    The predicted class is the argmax for a model with several outputs; for one output, 1
    where the score is > 0, except for loss="mse", which rounds the output to the nearest class.
    """
    _check_samples("accuracy", X, y)
    predicted_class = _rounded_class if loss == "mse" else _predicted_class
    with no_grad():
        outputs = [_floats(model(x)) for x in X]
    return sum(map(operator.eq, map(predicted_class, outputs), y)) / len(X)


_ADVICE = (
    "training stopped before this step, so the parameters are those from before it "
    "(a smaller learning rate usually helps)"
)

Outputs = list[Any]
"""The model's outputs for each sample of a batch, as floats (a list of them per sample when
the model has several outputs): what the accuracy is counted from."""


class _EagerStep:
    """Build the graph of the batch's loss, then backward: gradients land in `p.grad`."""

    def __init__(self, model: Module, params: list[Value], objective: LossFunction) -> None:
        self.model = model
        self.params = params
        self.objective = objective

    def gradients(self, X_batch: list[Any], y_batch: list[Any], l2: float) -> tuple[float, Outputs]:
        predictions = [self.model(x) for x in X_batch]
        total = self.objective(predictions, y_batch)
        if l2:
            total = total + losses.l2(self.params, l2)
        self.model.zero_grad()
        if math.isfinite(total.data):
            total.backward()
        return total.data, [_floats(p) for p in predictions]


class _JitStep:
    """The same step from the traced per-sample loss: no graph is built after the first call.

    The traced function is f(params..., x..., probes...) = loss + sum_j probe_j * output_j,
    called with every probe 0: its value is the loss, its gradient for each parameter is the
    loss's, and its gradient for probe j is output j. So one replay also returns the model's
    outputs, which the accuracy needs (JAX's `value_and_grad(has_aux=True)` does this job).
    """

    def __init__(
        self, model: Module, params: list[Value], objective: LossFunction, n_outputs: int
    ) -> None:
        self.model = model
        self.params = params
        self.objective = objective
        self.probes = [0.0] * n_outputs
        self.traced: dict[Any, autograd_core.Jitted] = {}

    def _sample_loss(self, label: Any) -> autograd_core.Jitted:
        """The jitted loss of one sample with this label, as a function of (params..., x...)."""
        if label not in self.traced:
            n_params, n_outputs = len(self.params), len(self.probes)

            def sample_loss(*arguments: Value) -> Value:
                x, probes = arguments[n_params:-n_outputs], arguments[-n_outputs:]
                prediction = functional_call(self.model, arguments[:n_params], x)
                outputs = prediction if isinstance(prediction, list) else [prediction]
                return self.objective([prediction], [label]) + dot(probes, outputs)

            self.traced[label] = autograd_core.jit(sample_loss)
        return self.traced[label]

    def gradients(self, X_batch: list[Any], y_batch: list[Any], l2: float) -> tuple[float, Outputs]:
        values = [p.data for p in self.params]
        grad_sums = [0.0] * len(values)
        sample_losses, outputs = [], []
        for x, label in zip(X_batch, y_batch, strict=True):
            value, grads = self._sample_loss(label).value_and_grad(*values, *x, *self.probes)
            sample_losses.append(value)
            # map stops at the shorter list: the gradients for x and the probes drop out.
            grad_sums = list(map(operator.add, grad_sums, grads))
            output = grads[len(grads) - len(self.probes) :]
            outputs.append(output[0] if len(output) == 1 else list(output))
        n = len(X_batch)
        total = sum(sample_losses) / n
        for p, g in zip(self.params, grad_sums, strict=True):
            p.grad = g / n
        if l2:
            # d/dp alpha sum p^2 = 2 alpha p, as losses.l2 gives it in the eager path.
            total = total + l2 * sum(map(operator.mul, values, values))
            for p, v in zip(self.params, values, strict=True):
                p.grad += 2.0 * l2 * v
        return total, outputs


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


def _check_finite(value: float, params: list[Value], where: str) -> None:
    if not math.isfinite(value):
        raise FloatingPointError(f"the loss is {value!r} at {where}; {_ADVICE}")
    for p in params:
        if not math.isfinite(p.grad):
            raise FloatingPointError(f"a gradient is {p.grad!r} at {where}; {_ADVICE}")


def _floats(output: Value | list[Value]) -> float | list[float]:
    return [o.data for o in output] if isinstance(output, list) else output.data


def _predicted_class(output: float | list[float]) -> int:
    """argmax of several outputs; for one output (a score or a logit), class 1 where it is > 0."""
    if isinstance(output, list):
        return output.index(max(output))
    return 1 if output > 0.0 else 0


def _rounded_class(output: float | list[float]) -> int:
    """For "mse": the nearest class to a single output (argmax of several)."""
    if isinstance(output, list):
        return _predicted_class(output)
    return math.floor(output + 0.5)
