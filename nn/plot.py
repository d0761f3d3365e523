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
from autograd_core.pictures.draw import GRAD_COLORMAP, GRAD_DECADES

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap, LogNorm

# Class k gets colour k (matplotlib's "tab10"), in the regions and on the points alike.
CLASS_COLORS = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]  # fmt: skip


def grad_scale() -> tuple[Colormap, LogNorm]:
    """The colour scale of gradients, for matplotlib: `cmap(norm(abs(g)))` is the colour of a
    gradient g, the same as `draw_dot(color="grad")` gives its box (1e-8 .. 1e2 on YlOrRd)."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm

    low, high = GRAD_DECADES
    return colormaps[GRAD_COLORMAP], LogNorm(10.0**low, 10.0**high, clip=True)


def grad_colorbar(ax: Axes) -> Any:
    """A colour bar of the gradient scale beside `ax`, labelled |grad| in decades."""
    from matplotlib.cm import ScalarMappable

    colormap, norm = grad_scale()
    bar = ax.figure.colorbar(ScalarMappable(norm, colormap), ax=ax, fraction=0.08, pad=0.02)
    bar.set_label("|grad|")
    return bar


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def _class_color(k: int) -> str:
    return CLASS_COLORS[k % len(CLASS_COLORS)]


def class_scores(output: Value | Sequence[Value], threshold: float = 0.0) -> list[float]:
    """One score per class from a model output; the predicted class has the largest.

    Several outputs are already per-class scores. One output s is a binary score that means
    class 1 when s > threshold: it becomes the scores [threshold, s].
    """
    if isinstance(output, Value):
        return [threshold, output.data]
    return [score.data for score in output]


def decision_boundary(
    model: Callable[[list[float]], Any],
    X: Sequence[Sequence[float]],
    y: Sequence[int],
    ax: Axes | None = None,
    resolution: int = 60,
    threshold: float = 0.0,
) -> Axes:
    """Colour the plane by the class `model` predicts and scatter the data (X, y) on top.

    The model is evaluated on a `resolution` x `resolution` grid covering the data plus a
    margin, under `no_grad` (no graph is recorded for the grid points). Works for a binary
    model (one output: class 1 when it is > `threshold`, which is 0 for a hinge score or a
    logit and 0.5 for a model trained with mse on 0/1 labels) and a multi-class one (the
    largest output wins).

    Class k's region is where its margin s_k - max_(j != k) s_j is positive. The margin is
    continuous, so contouring it at 0 draws a smooth boundary from a coarse grid (the class
    numbers themselves would draw a staircase).
    """
    if not X or len(X) != len(y):
        raise ValueError(f"need as many labels as points, got {len(X)} points, {len(y)} labels")
    if any(len(x) != 2 for x in X):
        raise ValueError("decision_boundary draws 2-D inputs; some points have another size")
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")
    xs = _grid_axis([x[0] for x in X], resolution)
    ys = _grid_axis([x[1] for x in X], resolution)
    with no_grad():
        scores = [[class_scores(model([a, b]), threshold) for a in xs] for b in ys]

    ax = _axes(ax)
    for k in range(len(scores[0][0])):
        margin = [[s[k] - max(s[:k] + s[k + 1 :]) for s in row] for row in scores]
        top = max(max(row) for row in margin)
        if top > 0.0:  # class k wins somewhere on the grid
            ax.contourf(xs, ys, margin, levels=[0.0, top], colors=[_class_color(k)], alpha=0.3)
    ax.scatter(
        [x[0] for x in X],
        [x[1] for x in X],
        c=[_class_color(label) for label in y],
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


def history(history: Any, ax: Axes | None = None, held_out: str = "validation") -> Axes:
    """The loss per epoch on `ax` and, on a second y axis, the accuracy (or R^2).

    `history` is what `fit` returns (a `History`): `.loss` and `.accuracy` lists, one entry
    per epoch, accuracy as a fraction in [0, 1]; for regression `.r2` takes its place. With
    validation data the validation curves are drawn dashed beside the training ones, named
    `held_out` in the legend ("test" when the held-out data is a test set). An empty score
    list draws the losses alone. Where an epoch took several steps, `.step_loss` (each step's
    loss, if the history has it) is drawn faintly behind the epochs' means, each epoch's steps
    spread over its width, so that a run of a few long epochs still shows its course.
    """
    losses = list(history.loss)
    if not losses:
        raise ValueError("the history is empty: there is no epoch to plot")
    regression = bool(getattr(history, "r2", None))
    score_name = "R^2" if regression else "accuracy"
    scores = list(history.r2 if regression else history.accuracy)
    val_losses = list(getattr(history, "val_loss", []))
    val_scores = list(getattr(history, "val_r2" if regression else "val_accuracy", []))
    epochs = range(1, len(losses) + 1)
    ax = _axes(ax)
    lines = []
    steps = list(getattr(history, "step_loss", []))
    if len(steps) > len(losses):
        per_epoch = len(steps) / len(losses)
        at = [(k + 1) / per_epoch for k in range(len(steps))]
        faint = {"color": _class_color(0), "alpha": 0.3, "linewidth": 0.7}
        lines += ax.plot(at, steps, label="loss per step", **faint)
    lines += ax.plot(epochs, losses, color=_class_color(0), label="loss")
    if val_losses:
        dashed = {"linestyle": "--", "color": _class_color(0), "label": f"{held_out} loss"}
        lines += ax.plot(range(1, len(val_losses) + 1), val_losses, **dashed)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if scores:
        score_ax = ax.twinx()
        lines += score_ax.plot(
            range(1, len(scores) + 1), scores, color=_class_color(1), label=score_name
        )
        if val_scores:
            dashed = {
                "linestyle": "--",
                "color": _class_color(1),
                "label": f"{held_out} {score_name}",
            }
            lines += score_ax.plot(range(1, len(val_scores) + 1), val_scores, **dashed)
        score_ax.set_ylabel(score_name)
        if not regression:
            score_ax.set_ylim(0.0, 1.05)
    # Below the axes, never over the curves (a rising validation loss is what one looks for).
    ax.legend(
        lines, [line.get_label() for line in lines], loc="upper center",
        bbox_to_anchor=(0.5, -0.15), ncol=len(lines) if len(lines) <= 4 else 3, frameon=False,
    )  # fmt: skip
    ax.set_title("training")
    return ax
