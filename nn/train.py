"""`fit`: the training loop, with the steps every framework takes, in the order PyTorch takes them.

For each epoch, for each batch:

    loss = mean loss over the batch (+ l2 penalty)   # forward
    optimizer.zero_grad(); loss.backward()            # gradients of the mean
    optimizer.step()                                  # update the parameters

With `jit=True` the same step runs without building a graph: the loss of one sample, as a
function of (every parameter, the sample's inputs, its label as numbers), is traced once into
a program (`autograd_core.compiler.ir`) and the batched back-end (`autograd_core.compiler.batched`)
runs it over each batch as NumPy matrix code, one matrix product per layer. The parameters live in
one array, which the optimizer updates (`Optimizer.update`): the same numbers as the eager path,
to rounding. `matrix_source(model, loss)` prints that program.
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
import operator
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from autograd_core import Value, batched, dot, ir, no_grad, ops, take, topological_order, vsum

from . import losses
from ._checks import is_integer, is_real
from .data import IGNORE, Seed, _check_count, _check_samples, as_rng, batches
from .modules import BatchNorm1d, Dropout, Module, Sequential
from .optim import Optimizer

LossFunction = Callable[[list[Any], list[Any]], Value]


def _mse_of_labels(preds: list[Any], labels: list[Any]) -> Value:
    """`losses.mse` against the labels: a class index one-hot for several outputs, any other
    label (a number, a list of numbers for regression) as it is."""
    targets = [
        _one_hot(label, len(p))
        if isinstance(p, list) and isinstance(label, numbers.Integral)
        else label
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


@dataclass
class History:
    """What `fit` measured, one entry per epoch, as plain floats.

    `loss[e]`: the training loss (l2 penalty included) averaged over the steps of epoch e,
    each weighted by its batch size. `accuracy[e]`: the fraction of the samples classified
    right by the same forward passes, so both are measured before each step's update (as in
    Keras). For regression (`loss="mse"` with float targets) `r2[e]` and `val_r2[e]`, the
    coefficient of determination, take the place of the accuracies. For a sequence model
    (per-position targets) the accuracy is that of the next-token predictions over the
    counted positions, and `perplexity[e]` = exp(loss[e]) (`val_perplexity` likewise): the
    number of tokens the model is, on average, as unsure between. With `validation_data`,
    `val_loss[e]` and `val_accuracy[e]` are measured on it after epoch e, in eval mode. For
    the accuracy of the trained model, call `accuracy(model, X, y)`.

    `step_loss` has the loss of every step, in order (each batch's mean, before its update):
    `loss[e]` is the mean of epoch e's, each weighted by its batch size.
    """

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    r2: list[float] = field(default_factory=list)
    val_r2: list[float] = field(default_factory=list)
    perplexity: list[float] = field(default_factory=list)
    val_perplexity: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    best_epoch: int | None = None

    def latest(self) -> dict[str, float]:
        """The last epoch's figures, by name (what the progress bar shows)."""
        names = (
            "loss",
            "accuracy",
            "r2",
            "perplexity",
            "val_loss",
            "val_accuracy",
            "val_r2",
            "val_perplexity",
        )
        return {name: getattr(self, name)[-1] for name in names if getattr(self, name)}


Callback = Callable[[int, Module, History], Any]


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
    jit: bool | None = None,
    validation_data: tuple[Sequence[Sequence[float]], Sequence[Any]] | None = None,
    callbacks: Sequence[Callback] = (),
    patience: int | None = None,
    dtype: str = "float64",
) -> History:
    """Train `model` on (X, y) for `epochs` passes and return the `History`.

    `loss` is "hinge", "bce" (binary cross-entropy from logits) or "mse" for a model with one
    output, "cross_entropy" or "mse" for one output per class, or a function
    `loss(predictions, labels) -> Value` giving the batch mean. `batch_size`: None for batch
    gradient descent, 1 for stochastic, k for mini-batches (see `nn.data.batches`); `seed`
    draws the order in which mini-batches visit the samples. `l2` adds
    `nn.losses.l2(model.parameters(), l2)`. The progress bar (tqdm: a widget in notebooks, a
    text bar in terminals) shows the latest epoch's loss and accuracy; `progress=False` hides it.
    Each of `callbacks` is called as `callback(epoch, model, history)` after every epoch.
    `patience=k` (with `validation_data`) stops early when the validation loss has not improved
    for k epochs, and gives the model back the weights of its best epoch (`History.best_epoch`).

    Accuracy counts the predicted class: the argmax for several outputs; for one output,
    class 1 where the score or logit is > 0, except with "mse", which rounds the output to the
    nearest class. A custom loss function is counted like "hinge" and "bce".

    A loss or a gradient that is not finite (or that overflows) stops training with a
    `FloatingPointError` naming the epoch and step; the check comes before `optimizer.step()`,
    so the parameters are those from before the bad step.

    By default (`jit=None`, or `jit=True`) `fit` traces the loss of one sample once, as a
    function of the parameters, the sample's inputs and its label (encoded as numbers: a sign,
    a one-hot row), and runs it over each batch with `autograd_core.compiler.batched`: NumPy matrix
    code in which each layer is one matrix product. Where that path would not take the eager steps
    (see `_why_not_batched`: a loss function; `_why_traced_differs`: a trace that gives other
    numbers on the first samples), `fit` trains eagerly and says why in a `UserWarning`.
    `jit=False` builds the graph of every step: slower, for looking at it. On the batched path
    the parameters live in one array, the optimizer updates the array, and the model's Values
    receive the numbers at the end (also when training stops on an error or Ctrl-C). The
    numbers equal the eager path's to rounding (1e-12). Python control flow in the model is
    frozen by the trace, as in `autograd_core.compiler.jit`. Batch norm traces as means over the
    batch axis and dropout's masks as inputs drawn at each step (see
    `autograd_core.compiler.batch`); the program is traced once in train mode, and once in eval mode
    for the validation data (for a model with batch norm or dropout, also for the check on the first
    samples).

    `dtype="float32"` runs the batched step in float32: the parameters, the data, every array
    of the program and its constants (the optimizer's running averages stay float64). Its
    matrix products take about half the time of float64 ones on a wide layer, and the numbers
    agree with float64 to about 1e-6 relative; the model's Values receive the float32 numbers.
    The eager engine computes on Python floats (float64) only.

    Sequences: for a model that gives a row of logits per position (a `GPT`), X holds token
    ids and each label is a list of one target per position, -1 where there is nothing to
    predict (`nn.data.names_dataset` makes such data). With loss="cross_entropy" the loss is
    the mean over the counted positions of the batch (PyTorch's `ignore_index`), the accuracy
    that of the next-token predictions, and the `History` has `perplexity` beside the loss.
    Such a model runs batched too (by default, as every model), the positions whose target is
    -1 weighted 0 in the loss (the same numbers). A causal model (a `GPT`) in batches of 16
    or more runs each batch cut after its longest sample, one program per length met: on the
    names an epoch at batch 32 or 128 takes 30% to 50% less time than with every sample padded
    to the block, as smaller batches and other models run.
    """
    objective = _objective(loss)
    _check_fit_arguments(X, y, epochs, l2, optimizer)
    if dtype not in ("float64", "float32"):
        raise ValueError(f"fit expected dtype 'float64' or 'float32', got {dtype!r}")
    if dtype == "float32" and jit is False:
        raise ValueError(
            "fit: dtype='float32' runs on the batched back-end; jit=False trains on the eager "
            "engine, which computes in Python floats (float64)"
        )
    _check_batch_norm_batches(model, len(X), batch_size)
    with _eval_mode(model), no_grad():
        first_output = model(X[0])
    sequence = _check_sequence_targets(first_output, loss, X, y, validation_data)
    if sequence and loss == "cross_entropy":
        objective = functools.partial(losses.cross_entropy, ignore_index=IGNORE)
    n_outputs = len(first_output) if isinstance(first_output, list) else 1
    regression = False
    if isinstance(loss, str) and not sequence:
        y, regression = _labels(loss, y, n_outputs, "fit")
    if patience is not None and (not is_integer(patience) or patience < 1):
        raise ValueError(f"fit expected patience to be an int >= 1 or None, got {patience!r}")
    if patience is not None and validation_data is None:
        raise ValueError("fit: patience stops on the validation loss: pass validation_data too")
    for i, callback in enumerate(callbacks):
        if not callable(callback):
            raise TypeError(
                f"fit: callback {i} is not a function, got {type(callback).__name__}: "
                f"{callback!r}; a callback is called as callback(epoch, model, history)"
            )
    if validation_data is not None:
        X_val, y_val = _validation(validation_data, None if sequence else len(X[0]))
        if isinstance(loss, str) and not sequence:
            y_val, _ = _labels(loss, y_val, n_outputs, "fit validation_data", regression)
        validation_data = X_val, y_val

    # What `predict` reads when not told: a model trained for regression predicts numbers.
    model._trained_for = "regression" if regression else loss if isinstance(loss, str) else "hinge"
    params = model.parameters()
    step: _EagerStep | _BatchedStep | _CausalSequenceStep
    if sequence and loss == "cross_entropy" and getattr(model, "causal", False):
        step = _CausalSequenceStep(model, params, objective, optimizer)
    else:
        step = _EagerStep(model, params, objective, optimizer)
    if jit is not False:
        why_not = _why_not_batched(model, loss, optimizer, params, sequence)
        if why_not is None:
            candidate: _BatchedStep
            if sequence:
                lengths = "longest" if _cuts_batches(model, batch_size) else "padding"
                candidate = _BatchedSequenceStep(
                    model, params, loss, n_outputs, optimizer, lengths=lengths
                )
            else:
                candidate = _BatchedStep(model, params, loss, n_outputs, optimizer)
            why_not = None if sequence else _why_traced_differs(candidate, model, X, y)
        if why_not is None:
            step = candidate
            step.theta = step.theta.astype(dtype)
        else:
            in_float64 = ", in float64" if dtype == "float32" else ""
            warnings.warn(
                f"fit trains on the eager engine (the same steps, slower{in_float64}): {why_not}",
                stacklevel=2,
            )
    score = _r2 if regression else functools.partial(_accuracy_of, loss)
    if sequence:
        score = _token_accuracy
    history = History()
    train = _Loop(step, step.data(X, y), score, batch_size, l2, as_rng(seed), epochs)
    validation = step.data(*validation_data) if validation_data is not None else None
    bar = tqdm(range(1, epochs + 1), desc="fit", unit="epoch", disable=not progress)
    best = _Best(params) if patience is not None else None  # (it copies every weight)
    model.train()
    # Small matrices: a second BLAS thread only fights the first for 2 shared cores.
    limits = threadpool_limits(1)
    try:
        for epoch in bar:
            value, measured, step_losses = train.epoch(epoch)
            history.loss.append(value)
            history.step_loss += step_losses
            (history.r2 if regression else history.accuracy).append(measured)
            if sequence:
                history.perplexity.append(_perplexity(value))
            if validation is not None:
                with _eval_mode(model):
                    value, outputs = step.evaluate(validation)
                history.val_loss.append(value)
                measured = score(outputs, validation.labels)
                (history.val_r2 if regression else history.val_accuracy).append(measured)
                if sequence:
                    history.val_perplexity.append(_perplexity(value))
            if callbacks or patience is not None:  # they read the model's Values
                step.finish()
            for callback in callbacks:
                callback(epoch, model, history)
            if progress:
                bar.set_postfix(history.latest(), refresh=False)
            if best is not None and best.stop_after(epoch, history.val_loss[-1], patience):
                break
    finally:
        limits.restore_original_limits()
        step.finish()
        model.eval()
    if best is not None:
        best.restore()
        history.best_epoch = best.epoch
    return history


class _Best:
    """The weights of the epoch with the lowest validation loss so far (for `patience`)."""

    def __init__(self, params: list[Value]) -> None:
        self.params = params
        self.loss = math.inf
        self.epoch = 0
        self.weights = [p.data for p in params]

    def stop_after(self, epoch: int, loss: float, patience: int) -> bool:
        """Record the epoch; True when `patience` epochs have passed without a better one."""
        if loss < self.loss:
            self.loss, self.epoch = loss, epoch
            self.weights = [p.data for p in self.params]
        return epoch - self.epoch >= patience

    def restore(self) -> None:
        for p, number in zip(self.params, self.weights, strict=True):
            p.data = number


class _Loop:
    """One epoch after another over the batches of one data set."""

    def __init__(
        self,
        step: Any,
        data: Any,
        score: Callable,
        batch_size: int | None,
        l2: float,
        rng: Any,
        epochs: int,
    ) -> None:
        self.step, self.data, self.score = step, data, score
        self.batch_size, self.l2, self.rng, self.epochs = batch_size, l2, rng, epochs
        self.indices = list(range(len(data.labels)))
        if batch_size is not None:
            _check_count("fit", "batch_size", batch_size, 1)
        # One batch of every sample in order (batch gradient descent) is the same every epoch.
        self.whole = batch_size is None or batch_size >= len(self.indices)

    def epoch(self, epoch: int) -> tuple[float, float, list[float]]:
        """Train one epoch: the mean loss and the score, measured before each step's update,
        and each step's loss."""
        n = len(self.indices)
        if self.whole:
            epoch_batches = [self.indices]
        else:  # shuffled mini-batches, drawn as `nn.data.batches` draws them
            mixed = batches(self.indices, self.indices, self.batch_size, True, self.rng)
            epoch_batches = [batch for batch, _ in mixed]
        loss_sum, outputs, step_losses = 0.0, [], []
        for number, batch in enumerate(epoch_batches, start=1):
            where = f"epoch {epoch}/{self.epochs}, step {number}/{len(epoch_batches)}"
            value, batch_outputs = self.step.run(self.data, batch, self.l2, where)
            loss_sum += value * len(batch)
            outputs.append(batch_outputs)
            step_losses.append(value)
        if self.whole:  # the outputs are in the labels' order already
            return loss_sum / n, self.score(outputs[0], self.data.labels), step_losses
        order = [i for batch in epoch_batches for i in batch]
        joined = np.concatenate(outputs)
        return loss_sum / n, self.score(joined, self.data.labels[order]), step_losses


def accuracy(
    model: Module, X: Sequence[Sequence[float]], y: Sequence[Any], *, loss: str = "hinge"
) -> float:
    """The fraction of (X, y) that `model` classifies right, counted as `fit` counts it.

    The predicted class is the argmax for a model with several outputs; for one output, 1
    where the score is > 0, except for loss="mse", which rounds the output to the nearest class.
    """
    _check_samples("accuracy", X, y)
    return _count_correct(loss, predict_outputs(model, X), np.asarray(y)) / len(X)


def predict_outputs(
    model: Module, X: Sequence[Sequence[float]], *, function: str = "predict_outputs"
) -> np.ndarray:
    """The model's outputs for every row of X, as an (n, outputs) array, from the batched
    back-end (one trace of the model, then matrix code), in eval mode.

    A row whose outputs come out inf or nan is computed again by the eager engine, which adds
    in the order the model writes (a matrix product may add in another and overflow to -inf
    where the eager sum gives nan), so both paths give the same non-finite numbers.
    """
    _check_rows(function, X)
    X = np.asarray(X, dtype=np.float64)
    params = model.parameters()
    theta = np.array([p.data for p in params])
    with _eval_mode(model):
        step = outputs_step(lambda *x: _as_list(model(list(x))), X.shape[1], params)
    _, outputs = step.evaluate(theta, X)
    bad = np.flatnonzero(~np.isfinite(outputs).all(axis=1))
    if bad.size:
        with _eval_mode(model), no_grad():
            outputs[bad] = [[o.data for o in _as_list(model(X[i].tolist()))] for i in bad]
    return outputs


def outputs_step(
    function: Callable[..., list[Any]], n_inputs: int, params: list[Value]
) -> batched.TrainingStep:
    """`function(*sample)`'s outputs, traced once as a step with no loss (its loss is 0): run it
    over many samples at once with `.evaluate(theta, X)`."""
    return batched.TrainingStep(ir.trace(lambda *x: [0.0, *function(*x)], n_inputs, params))


def predict(model: Module, X: Sequence[Sequence[float]], *, loss: str | None = None) -> list[Any]:
    """What the model predicts for each row of X: the class, as `accuracy` counts it, or, for
    a model `fit` trained for regression, the numbers (a float per row for one output, a list
    for several), as scikit-learn's `predict`.

    `loss` names how to read the outputs ("hinge", "bce", "cross_entropy", "mse"); by default
    the loss the model was trained with by `fit` ("hinge" for a model never trained).
    """
    trained_for = getattr(model, "_trained_for", "hinge")
    if loss is None:
        loss = trained_for
    elif loss not in LOSSES:
        raise ValueError(f"predict: unknown loss {loss!r}: expected one of {', '.join(LOSSES)}")
    outputs = predict_outputs(model, X, function="predict")
    if loss == "regression" or (loss == "mse" and trained_for == "regression"):
        return outputs[:, 0].tolist() if outputs.shape[1] == 1 else outputs.tolist()
    return _predicted_classes(loss, outputs).tolist()


def matrix_source(model: Module, loss: str = "hinge", n_inputs: int | None = None) -> str:
    """The program `fit(model, ..., loss=loss, jit=True)` runs for each batch, as NumPy source.

    The per-sample loss is traced once, in train mode, and lowered to matrix code: each layer
    is one matrix product `Z = X @ W.T + b`, each activation one array op, a batch norm's
    means over the batch `Z.mean(0, keepdims=True)`, then the backward pass
    (`dW += dZ.T @ A`, `dA = dZ @ W`): the "transpose of the weight matrices" of backprop.
    `n_inputs` is the length of a sample (read off an MLP, a Layer or a Neuron if not given).
    """
    _objective(loss)
    if n_inputs is None:
        n_inputs = getattr(model, "nin", None)
    if not isinstance(n_inputs, int):
        raise ValueError(
            f"matrix_source cannot tell how many inputs a {type(model).__name__} reads: "
            "pass n_inputs"
        )
    n_outputs = _count_outputs(model, [0.0] * n_inputs)
    step = _BatchedStep(model, model.parameters(), loss, n_outputs, None)
    with _in_mode(model, True):
        return step._step_for(n_inputs).source


def predict_proba(model: Module, X: Sequence[Sequence[float]]) -> list[Any]:
    """Class probabilities for each row of X: the softmax of several outputs (a list per
    sample), the sigmoid of one output (the probability of class 1)."""
    outputs = predict_outputs(model, X, function="predict_proba")
    if outputs.shape[1] == 1:
        return (0.5 * (1.0 + np.tanh(0.5 * outputs[:, 0]))).tolist()  # sigmoid, stable
    shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).tolist()


_ADVICE = (
    "training stopped before this step, so the parameters are those from before it "
    "(a smaller learning rate usually helps)"
)


@dataclass
class _Data:
    """A data set as a step reads it: the features, the labels, and what the step made of them."""

    X: Any
    labels: np.ndarray


class _EagerStep:
    """Build the graph of the batch's loss, then backward: gradients land in `p.grad`."""

    def __init__(
        self, model: Module, params: list[Value], objective: LossFunction, optimizer: Optimizer
    ) -> None:
        self.model = model
        self.params = params
        self.objective = objective
        self.optimizer = optimizer
        self.checked_use = False

    def data(self, X: Sequence[Any], y: Sequence[Any]) -> _Data:
        return _Data(list(X), np.asarray(list(y), dtype=object))

    def forward(self, X_batch: list[Any], y_batch: list[Any]) -> tuple[Value, list[Any]]:
        predictions = self.model.forward_batch(X_batch)
        total = self.objective(predictions, y_batch)
        if not isinstance(total, Value):
            raise TypeError(
                f"the loss function must return a Value, got {type(total).__name__}: {total!r}"
            )
        return total, predictions

    def run(self, data: _Data, batch: list[int], l2: float, where: str) -> tuple[float, Any]:
        try:
            total, predictions = self.forward(
                [data.X[i] for i in batch], data.labels[batch].tolist()
            )
            if l2:
                total = total + losses.l2(self.params, l2)
        except OverflowError as error:
            raise FloatingPointError(f"{error} at {where}; {_ADVICE}") from error
        if not self.checked_use:
            self.checked_use = True
            _warn_unused(self.optimizer, set(topological_order(total)))
        self.model.zero_grad()
        if math.isfinite(total.data):
            total.backward()
        _check_finite(total.data, [p.grad for p in self.params], where)
        self.optimizer.step()
        return total.data, _outputs(predictions)

    def evaluate(self, data: _Data) -> tuple[float, Any]:
        with no_grad():
            total, predictions = self.forward(data.X, data.labels.tolist())
        return total.data, _outputs(predictions)

    def finish(self) -> None:
        pass


class _CausalSequenceStep(_EagerStep):
    """The eager step of a causal sequence model (a GPT): the positions after a sample's last
    counted target (padding) are not computed at all. Position t of a causal model reads only
    positions 1..t, so the counted positions' logits, the loss and its gradients are the same
    as with the padding; the left-out positions' outputs are reported as zeros."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        # An embedding row no token of the first batch reads has no gradient at that step, and
        # rightly so: no warning that it "does not affect the loss".
        self.checked_use = True

    def forward(self, X_batch: list[Any], y_batch: list[Any]) -> tuple[Value, list[Any]]:
        lengths = [_counted_length(targets) for targets in y_batch]
        trimmed = [list(x[:n]) for x, n in zip(X_batch, lengths, strict=True)]
        predictions = self.model.forward_batch(trimmed)
        targets = [list(t[:n]) for t, n in zip(y_batch, lengths, strict=True)]
        total = self.objective(predictions, targets)
        width = len(predictions[0][0])
        padded = [
            p + [[0.0] * width] * (len(x) - n)
            for p, x, n in zip(predictions, X_batch, lengths, strict=True)
        ]
        return total, padded


def _counted_length(targets: Sequence[int]) -> int:
    """1 + the last position whose target is counted (at least 1: a model reads one id)."""
    counted = [t for t, target in enumerate(targets) if target != IGNORE]
    return counted[-1] + 1 if counted else 1


class _BatchedStep:
    """The same step on the batched back-end: one traced program, run over each batch."""

    def __init__(
        self, model: Module, params: list[Value], loss: str, n_outputs: int, optimizer: Optimizer
    ) -> None:
        self.params = params
        self.loss = loss
        self.n_outputs = n_outputs
        self.optimizer = optimizer
        self.theta = np.fromiter(map(_data, params), np.float64, len(params))
        self.grad = np.zeros_like(self.theta)
        # An optimizer of nn.optim updates the array; any other steps the Values. `fit` comes
        # here only with an optimizer of the model's own parameters (`_updates_only`).
        self.arrays = isinstance(optimizer, Optimizer)
        self.in_order = self.arrays and _same_values(optimizer.params, params)
        self.order: list[int] = []
        if self.arrays and not self.in_order:
            position = {id(p): i for i, p in enumerate(params)}
            self.order = [position[id(p)] for p in optimizer.params]
        self.model = model
        self.warns_unused = True  # about parameters the loss never reads, with the first program
        # One program per sample length and mode: in train mode batch norm uses the batch's
        # statistics and dropout its masks, in eval mode neither.
        self._program_for: dict[tuple[int, bool], batched.TrainingStep] = {}
        self.traced_outputs: dict[tuple[int, bool], list[float]] = {}

    def _step_for(self, n_features: int, at: Sequence[float] | None = None) -> batched.TrainingStep:
        """The program for samples of `n_features` features in the model's mode, traced when
        first asked for: at the numbers `at` (a sample's features, then its label's), or at
        zeros. A trace runs the model eagerly on the way: the outputs it computed at `at` are
        kept in `traced_outputs`, by the same key as the program."""
        key = (n_features, self.model.training)
        if key not in self._program_for:
            sample_loss, n_labels = self._sample_loss(n_features)
            n_inputs = n_features + n_labels
            outputs: list[float] = []

            def recorded(*inputs: Value) -> list[Value]:
                loss_and_outputs = sample_loss(*inputs)
                outputs.extend(float(v) for v in loss_and_outputs[1:])
                return loss_and_outputs

            warn = self.optimizer is not None and self.warns_unused and not self._program_for
            values = [0.0] * n_inputs if at is None else list(at)
            with ir.without_gc():
                program = ir.trace(recorded, n_inputs, self.params, values, batch=True)
                unread = _parameters_unread(program, self.params) if warn else []
                step = batched.TrainingStep(program, n_labels=n_labels)
            if unread:  # (the optimizer updates the model's parameters only: `_updates_only`)
                _warn_unused(self.optimizer, set(self.params).difference(unread))
            self._program_for[key] = step
            if at is not None:
                self.traced_outputs[key] = outputs
        return self._program_for[key]

    def _sample_loss(self, n_features: int) -> tuple[Callable[..., list[Value]], int]:
        """The per-sample loss and outputs, as a function of the sample's features and then its
        label's numbers; how many numbers the label is."""
        n_targets = len(_targets(self.loss, [0], self.n_outputs)[0])

        def sample_loss(*inputs: Value) -> list[Value]:
            x, targets = inputs[:n_features], inputs[n_features:]
            outputs = _as_list(self.model(list(x)))
            return [_sample_loss(self.loss, outputs, targets), *outputs]

        return sample_loss, n_targets

    def data(self, X: Sequence[Any], y: Sequence[Any]) -> _Data:
        features = np.asarray(X, dtype=np.float64)
        targets = np.asarray(_targets(self.loss, y, self.n_outputs), dtype=np.float64)
        return _Data((features, targets), np.asarray(list(y)))

    def _inputs(self, data: _Data, batch: list[int] | None) -> tuple[Any, Any]:
        """The program's features X and label numbers Y for the samples `batch` (all: None)."""
        X, Y = data.X
        if batch is not None and len(batch) != len(X):  # a full batch: no copy
            X, Y = X[batch], Y[batch]
        return X, Y

    def _outputs(self, outputs: np.ndarray, X: np.ndarray) -> np.ndarray:
        return outputs

    def _in_float_type(self, inputs: tuple[Any, Any]) -> tuple[Any, Any]:
        """The program's inputs in the float type of the parameters (float64 or float32)."""
        return tuple(a.astype(self.theta.dtype, copy=False) for a in inputs)  # type: ignore[return-value]

    def run(self, data: _Data, batch: list[int], l2: float, where: str) -> tuple[float, Any]:
        X, Y = self._in_float_type(self._inputs(data, batch))
        step = self._step_for(X.shape[1])
        try:
            value, outputs, grad = step(self.theta, X, Y)
        except OverflowError as error:
            raise FloatingPointError(f"{error} at {where}; {_ADVICE}") from error
        if l2:
            value += l2 * float(self.theta @ self.theta)
            grad += (2.0 * l2) * self.theta
        _check_finite(value, grad, where)
        self.grad = grad
        self._update(grad)
        return value, self._outputs(outputs, X)

    def _update(self, grad: np.ndarray) -> None:
        if not self.arrays:
            self.finish()
            self.optimizer.step()
            self.theta = np.array([p.data for p in self.params], self.theta.dtype)
        elif self.in_order:
            self.optimizer.update(self.theta, grad)
        else:
            part = self.theta[self.order]
            self.optimizer.update(part, grad[self.order])
            self.theta[self.order] = part

    def evaluate(self, data: _Data) -> tuple[float, Any]:
        X, Y = self._in_float_type(self._inputs(data, None))
        value, outputs = self._step_for(X.shape[1]).evaluate(self.theta, X, Y)
        return value, self._outputs(outputs, X)

    def finish(self) -> None:
        """Give the model's Values the trained numbers and the last step's gradients."""
        for p, number, g in zip(self.params, self.theta.tolist(), self.grad.tolist(), strict=True):
            p.data = number
            p.grad = g


class _BatchedSequenceStep(_BatchedStep):
    """The batched step of a model that predicts per position (a GPT), cross-entropy per
    position.

    Per sample the program reads the token ids, the targets (IGNORE read as 0) and a weight
    per position: 0 where the target is IGNORE, else n / (the batch's counted positions), so
    that the mean over the n samples of sum_t weight_t * loss_t is the mean over the batch's
    counted positions, as on the eager path. Its outputs are every position's logits.

    Samples of different lengths (names padded to the block) run one of two ways:

    * `lengths="longest"`, `fit`'s way for a causal model in batches of 16 samples or more
      (`_cuts_batches`): each batch is cut after the last position any of its samples counts,
      and runs the program of that length (one program per length met, traced when first
      needed). Position t of a causal model reads positions 1..t only, so the counted
      positions' logits, the loss and its gradients are those of the whole rows; the
      positions cut off are reported as zeros (as `_CausalSequenceStep` does). A parameter
      only longer samples read (a late position's embedding) is no sign of a mistake, so no
      warning names it.
    * `lengths="padding"`, otherwise: one program for X's whole rows, every position
      computed, the padding weighted 0.

    On the names (`benchmarks/lengths.py`, 8,000 names) the cut takes 30% to 50% off an epoch
    at batches of 32 and 128, and about nothing at 4; its price is a program per length met
    (5 to 10, each about half a second to trace, lower and compile, and 6.6 MiB), earned back
    within a few epochs of 8,000 names. Splitting a batch into one group per length instead
    (a program per group) is slower than padding at batches of 4 and 32 (2.1x, 1.7x).
    """

    def __init__(self, *args: Any, lengths: str = "padding") -> None:
        super().__init__(*args)
        if lengths not in ("padding", "longest"):
            raise ValueError(f"lengths must be 'padding' or 'longest', got {lengths!r}")
        self.lengths = lengths
        self.warns_unused = lengths == "padding"

    def _sample_loss(self, n_features: int) -> tuple[Callable[..., list[Value]], int]:
        def sample_loss(*inputs: Value) -> list[Value]:
            ids = inputs[:n_features]
            targets, weights = inputs[n_features : 2 * n_features], inputs[2 * n_features :]
            logits = self.model(list(ids))
            terms = [
                (ops.LOGSUMEXP(*row) - take(row, target)) * weight
                for row, target, weight in zip(logits, targets, weights, strict=True)
            ]
            return [vsum(terms), *(z for row in logits for z in row)]

        return sample_loss, 2 * n_features

    def data(self, X: Sequence[Any], y: Sequence[Any]) -> _Data:
        ids = np.asarray(X, dtype=np.float64)
        targets = np.asarray(y, dtype=np.int64)
        counted = targets != IGNORE
        return _Data((ids, np.where(counted, targets, 0), counted), targets)

    def _inputs(self, data: _Data, batch: list[int] | None) -> tuple[Any, Any]:
        ids, targets, counted = data.X
        if batch is not None and len(batch) != len(ids):
            ids, targets, counted = ids[batch], targets[batch], counted[batch]
        if self.lengths == "longest":
            positions = np.flatnonzero(counted.any(axis=0))
            length = int(positions[-1]) + 1 if positions.size else 1
            ids, targets, counted = ids[:, :length], targets[:, :length], counted[:, :length]
        weights = counted * (len(ids) / max(int(counted.sum()), 1))
        return ids, np.hstack([targets, weights])

    def _outputs(self, outputs: np.ndarray, X: np.ndarray) -> np.ndarray:
        return outputs.reshape(len(X), X.shape[1], -1)  # (samples, positions, classes)

    def run(self, data: _Data, batch: list[int], l2: float, where: str) -> tuple[float, Any]:
        value, outputs = super().run(data, batch, l2, where)
        return value, _padded(outputs, data.X[0].shape[1])

    def evaluate(self, data: _Data) -> tuple[float, Any]:
        value, outputs = super().evaluate(data)
        return value, _padded(outputs, data.X[0].shape[1])


_CUT_BATCHES = 16
"""The batch size from which a causal model's batches are cut to their longest sample."""


def _cuts_batches(model: Module, batch_size: Any) -> bool:
    """Whether `fit` runs the model's batches cut after their longest sample (see
    `_BatchedSequenceStep`): for a causal model, in batches of `_CUT_BATCHES` samples or
    more. A smaller batch's step is mostly the fixed cost of running a program, the same at
    every length, so the programs per length would not earn back their tracing."""
    large = batch_size is None or (is_integer(batch_size) and batch_size >= _CUT_BATCHES)
    return bool(getattr(model, "causal", False)) and large


def _padded(outputs: np.ndarray, width: int) -> np.ndarray:
    """(samples, positions, classes) outputs with zeros for the positions up to `width`."""
    missing = width - outputs.shape[1]
    return np.pad(outputs, ((0, 0), (0, missing), (0, 0))) if missing else outputs


def _targets(loss: str, y: Sequence[Any], n_outputs: int) -> list[list[float]]:
    """Each label as the numbers the traced per-sample loss reads (inputs of the program)."""
    if loss == "hinge":
        return [[1.0 if label == 1 else -1.0] for label in y]
    if loss == "bce":
        return [[float(label)] for label in y]
    if loss == "cross_entropy":
        return [_one_hot(label, n_outputs) for label in y]
    return [_mse_target(label, n_outputs) for label in y]


def _mse_target(label: Any, n_outputs: int) -> list[float]:
    if isinstance(label, (list, tuple)):
        return [float(t) for t in label]
    if n_outputs > 1:
        return _one_hot(label, n_outputs)
    return [float(label)]


def _one_hot(label: int, n: int) -> list[float]:
    """Class `label` of n as numbers: 1.0 in its place, 0.0 elsewhere."""
    return [1.0 if j == label else 0.0 for j in range(n)]


def _sample_loss(loss: str, outputs: list[Value], targets: Sequence[Value]) -> Value:
    """One sample's loss, the labels given as numbers (see `_targets`), as `losses` defines it."""
    if loss == "hinge":
        return (1.0 - targets[0] * outputs[0]).relu()
    if loss == "bce":
        z = outputs[0]
        magnitude = abs(z)
        return magnitude * 0.5 + (0.5 - targets[0]) * z - magnitude.sigmoid().log()
    if loss == "cross_entropy":
        return ops.LOGSUMEXP(*outputs) - dot(list(targets), outputs)
    differences = [o - t for o, t in zip(outputs, targets, strict=True)]
    return dot(differences, differences) / len(differences)


def _objective(loss: str | LossFunction) -> LossFunction:
    if callable(loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]
    raise ValueError(f"unknown loss {loss!r}: expected one of {', '.join(LOSSES)} or a function")


def _count_outputs(model: Module, x: Sequence[Any]) -> int:
    """How many numbers the model gives for one sample (asked in eval mode, without a graph)."""
    with _eval_mode(model), no_grad():
        output = model(x)
    return len(output) if isinstance(output, list) else 1


@contextmanager
def _in_mode(model: Module, training: bool) -> Iterator[None]:
    """The model in train or eval mode for the block, then back in the mode it was in."""
    was_training = model.training
    model.train(training)
    try:
        yield
    finally:
        model.train(was_training)


def _eval_mode(model: Module) -> Any:
    """The model in eval mode for the block, then back in the mode it was in."""
    return _in_mode(model, False)


def _parameters_unread(program: ir.Program, params: list[Value]) -> list[Value]:
    """The parameters no equation of the program reads (in C loops: a layer's equation reads a
    million weights)."""
    read: set[Any] = set()
    for eq in program.equations:
        read.update(eq.inputs)
    unread = map(operator.not_, map(read.__contains__, program.params))
    return list(itertools.compress(params, unread))


def _same_values(these: Sequence[Value], those: Sequence[Value]) -> bool:
    """Whether the two lists hold the same Values in the same order."""
    return len(these) == len(those) and all(map(operator.is_, these, those))


def _updates_only(optimizer: Any, params: list[Value]) -> bool:
    """Whether the optimizer updates the model's parameters and nothing else (the batched path
    keeps exactly those in its array; anything else trains on the eager path)."""
    theirs = getattr(optimizer, "params", params)
    if _same_values(theirs, params):
        return True  # the model's own list, in its order: no set of a million ids to build
    own = {id(p) for p in params}
    return all(id(p) in own for p in theirs)


def _warn_unused(optimizer: Any, used: Any) -> None:
    """Warn, once per fit, about parameters the optimizer updates that the loss never reads:
    their gradient is always 0, so they do not learn (PyTorch leaves their .grad None)."""
    unused = [p for p in getattr(optimizer, "params", []) if p not in used]
    if unused:
        named = f" (the first: {unused[0].label!r})" if unused[0].label else ""
        warnings.warn(
            f"{len(unused)} of the optimizer's {len(optimizer.params)} parameters do not affect "
            f"the loss{named}: their gradient is 0 and they will not learn. Was the optimizer "
            "built on another model's parameters (build it on model.parameters() of the model "
            "you train), or does the model hold a module its forward never uses?",
            stacklevel=4,
        )


def _why_not_batched(
    model: Module, loss: Any, optimizer: Any, params: list[Value], sequence: bool
) -> str | None:
    """None when the batched back-end can take the eager path's steps, else why not (what it
    cannot take at all; `_why_traced_differs` then compares the numbers)."""
    if not isinstance(loss, str):
        return "a loss function (not a loss named by a string) is differentiated on the graph"
    if sequence and loss != "cross_entropy":
        return f"sequences train batched with loss='cross_entropy', not {loss!r}"
    if not _traceable(model):
        return (
            "a BatchNorm1d or Dropout sits in a module that passes its batch on sample by "
            "sample (put it in a Sequential)"
        )
    if not _updates_only(optimizer, params):
        return "the optimizer updates Values that are not this model's parameters"
    return None


def _why_traced_differs(
    step: _BatchedStep, model: Module, X: Sequence[Any], y: Sequence[Any]
) -> str | None:
    """None when the step's program gives the eager outputs on the first samples, else why not:
    Python control flow on the data (`if x > 0`) is frozen by a trace, and then they differ.
    The first 16 samples are compared, fewer for a model of many weights (`_CHECKED_WEIGHTS`).

    The program compared is the one `fit` then trains with, traced in train mode at the first
    sample, so the model is traced once and that trace is the first sample's eager run (the
    others run eagerly without a graph). Where that program reads feeds or gives reports
    (dropout's masks, batch norm's statistics: see `autograd_core.compiler.batch`), its
    train-mode outputs depend on random numbers or on the batch and running it would change a
    module's state, so the comparison is made in eval mode (on the program for the validation
    data), every sample run eagerly. Nothing changes: no update, no report. A row the program
    computes as inf or nan is left out, as `predict_outputs` recomputes such rows eagerly.
    """
    n = min(len(X), max(2, min(_CHECKED_SAMPLES, _CHECKED_WEIGHTS // max(len(step.params), 1))))
    sample = [list(map(float, row)) for row in X[:n]]
    inputs = step._inputs(step.data(sample, y[:n]), None)
    first = [*inputs[0][0].tolist(), *inputs[1][0].tolist()]  # its features, its label's numbers
    try:
        with _in_mode(model, True):
            program = step._step_for(len(sample[0]), at=first)  # the one fit trains with
        training = not (program.feeds or program.reports)
        if not training:
            with _eval_mode(model):
                program = step._step_for(len(sample[0]))
    except (TypeError, ValueError) as error:  # a trace that refuses: a hook, a branch on a Var
        return f"the model cannot be traced ({error})"
    with _in_mode(model, training):
        try:
            theta = step.theta.astype(np.float64)  # a trace is checked in float64
            if training:
                _, traced, _ = program(theta, *inputs)
            else:
                _, traced = program.evaluate(theta, *inputs)
        except (ArithmeticError, ValueError):  # a loss that is not finite: the first step says so
            return None
        first_run = step.traced_outputs.get((len(sample[0]), True)) if training else None
        with no_grad():
            if first_run is None:
                eager = _outputs([model(row) for row in sample])
            else:
                eager = _outputs([first_run, *(model(row) for row in sample[1:])])
    finite = np.isfinite(traced).all(axis=1)
    if not np.allclose(traced[finite], eager[finite], rtol=1e-12, atol=1e-12, equal_nan=True):
        return (
            "traced, the model gives other numbers than run eagerly (Python control flow on "
            "the data, such as `if x > 0`, is frozen by a trace)"
        )
    return None


_CHECKED_SAMPLES = 16
"""How many samples `fit` runs both ways before it trains on the batched back-end, at most."""

_CHECKED_WEIGHTS = 400_000
"""Samples times weights that check runs, at most: a model of more than 25,000 weights is
checked on fewer samples (2 at least, the first of them run by the trace), so that the eager
runs cost less than the trace itself (each sample is a forward pass through every weight, in
Python: about a third of a microsecond per weight, where tracing and lowering cost about
three)."""


def _traceable(model: Module) -> bool:
    """Whether a trace of one sample, run over each batch, is the eager training step.

    Batch norm and dropout trace as ops over the batch axis and fed masks (see
    `autograd_core.compiler.batch`); the eager step matches them where it passes the whole batch
    through each such module at once, in order, as `Sequential.forward_batch` does (masks are
    then drawn module by module, as the batched step draws them). Other models with them
    train on the eager path.
    """
    whole_batch, stack = set(), [model]
    while stack:
        module = stack.pop()
        if isinstance(module, Sequential):
            stack.extend(module.layers)
        else:
            whole_batch.add(id(module))
    return all(
        id(m) in whole_batch for m in model.modules() if isinstance(m, (BatchNorm1d, Dropout))
    )


def _check_fit_arguments(
    X: Sequence[Any], y: Sequence[Any], epochs: Any, l2: Any, optimizer: Any
) -> None:
    _check_samples("fit", X, y)
    _check_count("fit", "epochs", epochs, 0)
    if not is_real(l2) or not 0.0 <= l2 < math.inf:
        raise ValueError(f"fit expected l2 to be a finite number >= 0, got {l2!r}")
    if not all(callable(getattr(optimizer, name, None)) for name in ("step", "zero_grad")):
        raise TypeError(
            f"fit expected an optimizer with step() and zero_grad() (an nn.optim.Optimizer), "
            f"got {optimizer!r}"
        )
    _check_features("fit", X)


def _validation(validation_data: Any, width: int | None) -> tuple[Any, Any]:
    """(X_val, y_val), checked before any step: pairs, rows as wide as the training rows
    (`width`; None for sequences, whose lengths may differ)."""
    if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
        raise TypeError(
            "fit expected validation_data to be a pair (X_val, y_val), got "
            f"{type(validation_data).__name__}"
        )
    X_val, y_val = validation_data
    _check_samples("fit validation_data", X_val, y_val)
    _check_features("fit validation_data", X_val)
    if width is not None and len(X_val[0]) != width:
        raise ValueError(
            f"fit validation_data: its samples have {len(X_val[0])} features, the training "
            f"samples {width}"
        )
    return X_val, y_val


def _check_batch_norm_batches(model: Module, n: int, batch_size: Any) -> None:
    """Refuse, before any step, batches that would leave a batch norm one sample to normalise
    over (it has no variance; PyTorch refuses it too): one epoch in, it would stop mid-way."""
    if not any(isinstance(m, BatchNorm1d) for m in model.modules()):
        return
    if batch_size is not None and not (is_integer(batch_size) and batch_size >= 1):
        return  # `_Loop` names the bad batch size
    last = n if batch_size is None or batch_size >= n else (n % batch_size or batch_size)
    if last == 1:
        which = "every batch" if batch_size == 1 or n == 1 else "the last batch of each epoch"
        raise ValueError(
            f"fit: with {n} samples and batch_size={batch_size}, {which} holds one sample, and "
            "BatchNorm1d in train mode needs more than one per batch: choose another batch_size"
        )


def _labels(
    loss: str, y: Sequence[Any], n_outputs: int, where: str, regression: bool | None = None
) -> tuple[list[Any], bool]:
    """The labels as `fit` reads them, and whether the task is regression, or an error naming
    the first label at fault and what to pass instead.

    Accepted as scikit-learn and PyTorch accept them: a class as an int, a NumPy int or a
    whole float (`1.0`), a label or target as a row of one (a NumPy (n, 1) array), and for
    "hinge" labels -1/+1 as well as 0/1. With "mse", a target of several numbers is a list (or
    array row) of them; a single number is regression unless every label is a class index (an
    int in 0..1 for one output, in 0..outputs-1 for several, one-hot), as for a classifier.
    `regression`, when given, is the training labels' answer (for the validation labels).
    """
    rows = [_one_of_row(label) for label in y]
    if loss == "mse":
        if regression is None:
            regression = not all(
                _is_class(label, max(n_outputs, 2)) and is_integer(label) for label in rows
            )
        if regression:
            targets = [_regression_target(t, i, n_outputs, where) for i, t in enumerate(rows)]
            return targets, True
    if loss in ("hinge", "bce") and n_outputs != 1:
        raise ValueError(f"loss {loss!r} needs a model with 1 output, this one has {n_outputs}")
    if loss == "cross_entropy" and n_outputs < 2:
        raise ValueError(
            "loss 'cross_entropy' needs a model with one output per class (>= 2), this one has "
            "1: use 'bce' or 'hinge' for two classes"
        )
    n_classes = max(n_outputs, 2)
    labels = []
    for i, label in enumerate(rows):
        if not (is_real(label) and _is_finite(label) and float(label).is_integer()):
            raise ValueError(
                f"{where}: label {label!r} of sample {i} is not a class index (an int, or a "
                "whole float such as 1.0)"
            )
        labels.append(int(label))
    if loss == "hinge" and -1 in labels:
        if any(label not in (-1, 1) for label in labels):
            bad = next(label for label in labels if label not in (-1, 1))
            raise ValueError(
                f"{where}: loss 'hinge' takes labels 0/1 or -1/+1, got -1 and {bad} together"
            )
        labels = [(label + 1) // 2 for label in labels]  # -1 -> 0, +1 -> 1
    for i, label in enumerate(labels):
        if not 0 <= label < n_classes:
            also = " (or -1/+1 for hinge)" if loss == "hinge" else ""
            raise ValueError(
                f"{where}: label {rows[i]!r} of sample {i} is not a class this model can "
                f"output: expected 0..{n_classes - 1}{also}"
            )
    return labels, False


def _one_of_row(label: Any) -> Any:
    """A label given as a row of one number (a NumPy (n, 1) array's rows), as that number; a
    NumPy row of several as a list."""
    if isinstance(label, np.ndarray):
        label = label.tolist()
    if isinstance(label, (list, tuple)) and len(label) == 1:
        return label[0]
    return label


def _is_class(label: Any, n_classes: int) -> bool:
    return is_real(label) and _is_finite(label) and label in range(n_classes)


def _regression_target(target: Any, i: int, n_outputs: int, where: str) -> Any:
    """One regression target as a float (one output) or a list of floats (several)."""
    numbers_ = list(target) if isinstance(target, (list, tuple)) else [target]
    if n_outputs > 1 and len(numbers_) == 1:
        target = numbers_  # as given: a row of one
    if len(numbers_) != n_outputs:
        raise ValueError(
            f"{where}: target {target!r} of sample {i} has {len(numbers_)} number(s); the model "
            f"has {n_outputs} output(s)"
        )
    for t in numbers_:
        if not is_real(t) or not _is_finite(t):
            raise ValueError(f"{where}: target {target!r} of sample {i} is not a finite number")
    floats = [float(t) for t in numbers_]
    return floats[0] if n_outputs == 1 else floats


def _check_finite(value: float, grads: Any, where: str) -> None:
    if not math.isfinite(value):
        raise FloatingPointError(f"the loss is {value!r} at {where}; {_ADVICE}")
    grads = np.asarray(grads, dtype=np.float64)
    if not np.isfinite(grads).all():
        bad = grads[~np.isfinite(grads)][0]
        raise FloatingPointError(f"a gradient is {float(bad)!r} at {where}; {_ADVICE}")


def _check_rows(function: str, X: Any) -> None:
    """The samples a prediction is asked for: at least one, each a row of numbers."""
    if (isinstance(X, np.ndarray) and X.ndim == 1) or (
        isinstance(X, Sequence) and len(X) > 0 and is_real(X[0])
    ):
        raise ValueError(
            f"{function}: X is one row of numbers; pass a list of samples, e.g. [x] for one "
            "sample (a NumPy array: x.reshape(1, -1))"
        )
    if len(X) == 0:
        raise ValueError(f"{function}: X has no samples; pass at least one row")
    _check_features(function, X)


def _check_features(function: str, X: Sequence[Any]) -> None:
    """Every row a list of the same number of finite real numbers, or an error naming the
    sample and column (a NaN in the data is not the learning rate's fault)."""
    width = None
    for i, row in enumerate(X):
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence | np.ndarray):
            raise TypeError(f"{function}: sample {i} is not a list of numbers: {row!r}")
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise ValueError(
                f"{function}: sample {i} has {len(row)} features, sample 0 has {width}"
            )
    # The common case at array speed: only real types, all finite. Otherwise find the first
    # number at fault, one by one, to name it.
    kinds = set(map(type, itertools.chain.from_iterable(X)))
    if all(issubclass(kind, numbers.Real) and not issubclass(kind, bool) for kind in kinds):
        try:
            if np.isfinite(np.asarray(X, dtype=np.float64)).all():
                return
        except OverflowError:  # an int too large for a float: named below
            pass
    for i, row in enumerate(X):
        for j, x in enumerate(row):
            if not is_real(x):
                raise TypeError(f"{function}: sample {i}, column {j} is not a real number: {x!r}")
            if not _is_finite(x):
                raise ValueError(f"{function}: sample {i}, column {j} is {x}, not a finite number")


def _is_finite(x: Any) -> bool:
    """Finite as a float: an int too large for a float is not."""
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


_data = operator.attrgetter("data")


def _as_list(output: Any) -> list[Any]:
    return list(output) if isinstance(output, list) else [output]


def _outputs(predictions: list[Any]) -> np.ndarray:
    """The model's outputs for each sample, as an (n, outputs) array of floats; (n, positions,
    classes) for a sequence model."""
    return np.array([_floats(p) for p in predictions])


def _floats(output: Any) -> list[Any]:
    return [_floats(o) if isinstance(o, list) else float(o) for o in _as_list(output)]


def _predicted_classes(loss: Any, outputs: np.ndarray) -> np.ndarray:
    """argmax of several outputs; for one output (a score or a logit), class 1 where it is
    > 0, except for "mse", which rounds a single output to the nearest class."""
    if outputs.shape[1] > 1:
        return outputs.argmax(axis=1)
    if loss == "mse":
        rounded = np.floor(outputs[:, 0] + 0.5)
        # A non-finite or huge output is no class: -1 matches no label.
        return np.where(np.abs(rounded) < 2.0**31, rounded, -1.0).astype(int)
    return (outputs[:, 0] > 0.0).astype(int)


def _accuracy_of(loss: Any, outputs: np.ndarray, labels: Any) -> float:
    return _count_correct(loss, outputs, labels) / len(outputs)


def _r2(outputs: np.ndarray, targets: Any) -> float:
    """The coefficient of determination 1 - SS_res / SS_tot, averaged over the outputs (as
    scikit-learn's `r2_score`); 0 for a target that does not vary."""
    targets = np.asarray(targets, dtype=np.float64).reshape(outputs.shape)
    residual = ((targets - outputs) ** 2).sum(0)
    total = ((targets - targets.mean(0)) ** 2).sum(0)
    scores = np.where(total > 0.0, 1.0 - residual / np.where(total > 0.0, total, 1.0), 0.0)
    return float(scores.mean())


def _count_correct(loss: Any, outputs: np.ndarray, labels: Any) -> int:
    predicted = _predicted_classes(loss, outputs)
    if isinstance(labels, np.ndarray) and labels.dtype.kind in "iuf":  # fit's labels: numbers
        return int(np.count_nonzero(predicted == labels))
    return sum(map(operator.eq, predicted.tolist(), list(labels)))


# -- sequences: a target per position ----------------------------------------------------------


def _check_sequence_targets(
    output: Any,
    loss: Any,
    X: Sequence[Any],
    y: Sequence[Any],
    validation_data: tuple[Sequence[Any], Sequence[Any]] | None,
) -> bool:
    """Whether the model predicts per position (a row of logits for each position of a sample,
    as a GPT does: its `output` for X[0] is a list of lists); if so, check the loss and that
    every target is a class or `IGNORE`."""
    if not (isinstance(output, list) and output and isinstance(output[0], list)):
        return False
    if not (loss == "cross_entropy" or callable(loss)):
        raise ValueError(
            f"loss {loss!r} does not fit a model that predicts per position: use 'cross_entropy'"
        )
    n_classes = len(output[0])
    parts = [("fit", X, y)]
    if validation_data is not None:
        parts.append(("fit validation_data", *validation_data))
    for where, samples, targets in parts:
        _check_samples(where, samples, targets)
        for i, (x, row) in enumerate(zip(samples, targets, strict=True)):
            if isinstance(row, (str, bytes)) or not isinstance(row, Sequence | np.ndarray):
                raise ValueError(
                    f"{where}: the model predicts per position, so the target of sample {i} "
                    f"must be a list of one class per position, got {row!r}"
                )
            if len(row) != len(x):
                raise ValueError(
                    f"{where}: sample {i} has {len(x)} positions but {len(row)} targets"
                )
            for t, target in enumerate(row):
                if not is_integer(target) or not (target == IGNORE or 0 <= target < n_classes):
                    raise ValueError(
                        f"{where}: target {target!r} of sample {i}, position {t} is not a "
                        f"class this model can output: expected 0..{n_classes - 1}, or "
                        f"{IGNORE} for a position with nothing to predict"
                    )
    return True


def _token_accuracy(outputs: np.ndarray, targets: Any) -> float:
    """The share of counted positions (target != IGNORE) whose likeliest token is the target."""
    targets = np.asarray(targets.tolist() if hasattr(targets, "tolist") else targets)
    counted = targets != IGNORE
    predicted = outputs.argmax(axis=-1)
    return float((predicted == targets)[counted].mean())


def _perplexity(loss: float) -> float:
    """exp(loss): inf where it overflows."""
    return math.exp(loss) if loss < 709.0 else math.inf
