"""Plots of a trained model: its decision boundary and its loss and accuracy per epoch.

Each function draws on `ax` (a matplotlib Axes) if given, else on a new figure, and returns
the Axes, so plots combine in subplots:

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    plot.history(history, ax=left)
    plot.decision_boundary(model, X, y, ax=right)

pyplot is imported only when a new figure is needed, so code that passes its own Axes (the
command line draws on `matplotlib.figure.Figure`s) never starts a GUI backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from autograd_core import Value, no_grad

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# Class i gets colour i, in the regions and on the points alike.
CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def predict_class(output: Value | Sequence[Value]) -> int:
    """The class a model output stands for.

    One output is a binary score (hinge or logit): class 1 when it is > 0, else 0.
    Several outputs are per-class scores: the class with the largest.
    """
    if isinstance(output, Value):
        return int(output.data > 0.0)
    scores = [score.data for score in output]
    return max(range(len(scores)), key=scores.__getitem__)


def decision_boundary(
    model: Callable[[list[float]], Any],
    X: Sequence[Sequence[float]],
    y: Sequence[int],
    ax: Axes | None = None,
    resolution: int = 60,
) -> Axes:
    """Colour the plane by the class `model` predicts and scatter the data (X, y) on top.

    The model is evaluated on a `resolution` x `resolution` grid covering the data plus a
    margin, under `no_grad` (no graph is recorded for the grid points). Works for a binary
    model (one output: score > 0 is class 1) and a multi-class one (argmax of the outputs).
    """
    if not X or len(X) != len(y):
        raise ValueError(f"need as many labels as points, got {len(X)} points, {len(y)} labels")
    if any(len(x) != 2 for x in X):
        raise ValueError("decision_boundary draws 2-D inputs; some points have another size")
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")
    from matplotlib.colors import ListedColormap

    xs = _grid_axis([x[0] for x in X], resolution)
    ys = _grid_axis([x[1] for x in X], resolution)
    with no_grad():
        classes = [[predict_class(model([a, b])) for a in xs] for b in ys]

    n_classes = max(max(y), *(max(row) for row in classes)) + 1
    colors = ListedColormap(CLASS_COLORS[: max(n_classes, 2)])
    # Level boundaries halfway between class numbers: one band, one colour, per class.
    levels = [k - 0.5 for k in range(n_classes + 1)]
    ax = _axes(ax)
    ax.contourf(xs, ys, classes, levels=levels, cmap=colors, alpha=0.3)
    ax.scatter(
        [x[0] for x in X],
        [x[1] for x in X],
        c=list(y),
        cmap=colors,
        vmin=-0.5,
        vmax=n_classes - 0.5,
        edgecolors="black",
        linewidths=0.5,
        s=20,
    )
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title("decision boundary")
    return ax


def _grid_axis(values: list[float], resolution: int) -> list[float]:
    """`resolution` evenly spaced numbers over the values' range plus a 10% margin each side."""
    low, high = min(values), max(values)
    margin = 0.1 * (high - low) or 1.0
    low, high = low - margin, high + margin
    return [low + (high - low) * i / (resolution - 1) for i in range(resolution)]


def history(history: Any, ax: Axes | None = None) -> Axes:
    """The training loss per epoch on `ax` and, on a second y axis, the accuracy.

    `history` is what `fit` returns: anything with `.loss` and `.accuracy` lists, one entry
    per epoch (an empty `.accuracy` draws the loss alone).
    """
    losses, accuracies = list(history.loss), list(history.accuracy)
    if not losses:
        raise ValueError("the history is empty: there is no epoch to plot")
    epochs = range(1, len(losses) + 1)
    ax = _axes(ax)
    lines = ax.plot(epochs, losses, color=CLASS_COLORS[0], label="loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if accuracies:
        accuracy_ax = ax.twinx()
        lines += accuracy_ax.plot(
            range(1, len(accuracies) + 1), accuracies, color=CLASS_COLORS[1], label="accuracy"
        )
        accuracy_ax.set_ylabel("accuracy")
        accuracy_ax.set_ylim(0.0, 1.05 * max(1.0, max(accuracies)))
    ax.legend(lines, [line.get_label() for line in lines], loc="center right")
    ax.set_title("training")
    return ax
