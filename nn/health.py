"""Gradient health: is every layer of a network still learning?

Three things stop a layer learning, and each can be measured after `loss.backward()`:

* **vanishing gradients**: backpropagation multiplies local slopes layer after layer, and a
  sigmoid's slope is at most 1/4, so in a deep sigmoid net the first layers' gradients are
  orders of magnitude below the last layer's;
* **dead ReLUs**: a ReLU unit whose weighted sum is negative for every sample outputs 0 with
  slope 0: no gradient reaches its weights, and nothing brings it back;
* **saturated tanh / sigmoid units**: far from 0 these are flat, so their slope (and the
  gradient through them) is nearly 0.

`gradient_report(model, X)` measures all three per layer; `GradientTracker` records the
gradient size of every layer after each training epoch, for a plot over training, and
`HistogramTracker` every weight and gradient, for their histograms over training.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autograd_core import no_grad
from autograd_core.pictures.draw import (
    EXPLODING_RATIO,
    MAX_SLOPE,
    SATURATION,
    VANISHING_RATIO,
    grad_color,
    is_dark,
)

from .modules import Layer, Module

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@dataclass(frozen=True)
class LayerHealth:
    """One layer: its gradient size and the fractions of its units that cannot learn.

    `mean_abs_grad` is the mean |d loss / d p| over the layer's parameters p. `dead` is the
    fraction of ReLU units that output 0 for every sample, `saturated` the fraction of tanh or
    sigmoid units whose slope is under 1% of its peak for every sample (None without data).
    `note` says 'vanishing' or 'exploding' when `mean_abs_grad` is 100 times below or above
    the output layer's.
    """

    name: str
    width: int
    activation: str
    mean_abs_grad: float
    dead: float | None
    saturated: float | None
    note: str = ""


@dataclass(frozen=True)
class GradientReport:
    """Per-layer gradient health, input side first; prints as a table."""

    layers: tuple[LayerHealth, ...]

    def __getitem__(self, index: int) -> LayerHealth:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        rows = [("layer", "width", "activation", "mean |grad|", "dead", "saturated", "")]
        for layer in self.layers:
            rows.append(
                (
                    layer.name,
                    str(layer.width),
                    layer.activation,
                    f"{layer.mean_abs_grad:.2e}",
                    _fraction(layer.dead),
                    _fraction(layer.saturated),
                    layer.note,
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
        ]
        return "\n".join(line.rstrip() for line in lines)

    def _repr_html_(self) -> str:
        """The table for a notebook, each layer's mean |grad| cell filled with its colour on
        the scale every gradient picture uses (`draw_dot(color="grad")`)."""
        head = ("layer", "width", "activation", "mean |grad|", "dead", "saturated", "")
        cells = ["".join(f"<th>{name}</th>" for name in head)]
        for layer in self.layers:
            fill = grad_color(layer.mean_abs_grad)
            text = "white" if is_dark(fill) else "black"
            values = [
                html.escape(layer.name),
                str(layer.width),
                html.escape(layer.activation),
                f'<span style="color: {text}">{layer.mean_abs_grad:.2e}</span>',
                _fraction(layer.dead),
                _fraction(layer.saturated),
                layer.note,
            ]
            styles = ["", "", "", f' style="background: {fill}"', "", "", ""]
            cells.append(
                "".join(f"<td{style}>{v}</td>" for v, style in zip(values, styles, strict=True))
            )
        return "<table>" + "".join(f"<tr>{row}</tr>" for row in cells) + "</table>"


def _fraction(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def gradient_report(model: Module, X: Sequence[Sequence[float]] | None = None) -> GradientReport:
    """Per layer of `model`: mean |grad| of its parameters, the dead and saturated fractions.

    Call it after `loss.backward()`. The gradients are read from the parameters; whether a
    unit is dead or saturated depends on the data, so pass the batch `X` the loss was computed
    on (the model is run on it without recording a graph; its parameters are not touched).
    """
    layers = _layers(model)
    units = _unit_states(layers, X) if X is not None else [None] * len(layers)
    sizes = [_mean_abs_grad(layer.parameters()) for layer in layers]
    top = sizes[-1]
    health = []
    for i, (layer, size, states) in enumerate(zip(layers, sizes, units, strict=True), start=1):
        note = ""
        if top > 0.0 and i < len(layers):
            if size / top < VANISHING_RATIO:
                note = "vanishing"
            elif size / top > EXPLODING_RATIO:
                note = "exploding"
        dead = saturated = None
        if states is not None:
            dead = states.count("dead") / len(states)
            saturated = states.count("saturated") / len(states)
        health.append(
            LayerHealth(f"layer{i}", layer.nout, layer.activation, size, dead, saturated, note)
        )
    return GradientReport(tuple(health))


def _layers(model: Module) -> list[Layer]:
    if isinstance(model, Layer):
        return [model]
    layers = getattr(model, "layers", None)
    if not layers or not all(isinstance(layer, Layer) for layer in layers):
        raise TypeError(
            f"gradient_report reads a Layer or a model made of Layers (an MLP), "
            f"got {type(model).__name__}"
        )
    return list(layers)


def _mean_abs_grad(parameters: Sequence[Any]) -> float:
    return sum(abs(float(p.grad)) for p in parameters) / len(parameters)


def _unit_states(layers: list[Layer], X: Sequence[Sequence[float]]) -> list[list[str]]:
    """For each layer, each unit's state over the whole batch: 'dead', 'saturated' or ''."""
    if len(X) == 0:
        raise ValueError("gradient_report needs at least one sample in X, got none")
    # stuck[l][j]: unit j of layer l has been dead (or saturated) on every sample so far.
    stuck = [[True] * layer.nout for layer in layers]
    with no_grad():
        for x in X:
            signal: Any = list(x)
            for layer, flags in zip(layers, stuck, strict=True):
                out = layer(signal)
                signal = out if isinstance(out, list) else [out]
                for j, unit in enumerate(signal):
                    flags[j] = flags[j] and _stuck(layer.activation, unit.data)
    states = []
    for layer, flags in zip(layers, stuck, strict=True):
        word = "dead" if layer.activation == "relu" else "saturated"
        can_stick = layer.activation == "relu" or layer.activation in MAX_SLOPE
        states.append([word if flag and can_stick else "" for flag in flags])
    return states


def _stuck(activation: str, out: float) -> bool:
    """Whether a unit with this output passes (almost) no gradient: slope 0 or nearly 0."""
    if activation == "relu":
        return out == 0.0
    if activation == "tanh":
        return 1.0 - out * out < SATURATION * MAX_SLOPE["tanh"]
    if activation == "sigmoid":
        return out * (1.0 - out) < SATURATION * MAX_SLOPE["sigmoid"]
    return False


class GradientTracker:
    """A training callback: the mean |grad| of every layer, recorded after each epoch.

    Pass it to `fit(..., callbacks=[tracker])`, or call `tracker(epoch, model)` from your own
    loop after the epoch's last `backward()`. `tracker.sizes[name]` is the list of one layer's
    sizes, epoch by epoch; `tracker.plot()` draws them on a log scale.
    """

    def __init__(self) -> None:
        self.epochs: list[int] = []
        self.sizes: dict[str, list[float]] = {}

    def __call__(self, epoch: int, model: Module, history: Any = None) -> None:
        report = gradient_report(model)
        self.epochs.append(epoch)
        for layer in report.layers:
            self.sizes.setdefault(layer.name, []).append(layer.mean_abs_grad)

    def plot(self, ax: Axes | None = None, title: str = "") -> Axes:
        """Gradient size of each layer against the epoch, log scale (matplotlib)."""
        if ax is None:
            from matplotlib.figure import Figure

            ax = Figure(figsize=(6, 4), layout="constrained").add_subplot()
        for name, sizes in self.sizes.items():
            ax.plot(self.epochs, sizes, label=name)
        ax.set(xlabel="epoch", ylabel="mean |grad| of the layer's parameters", yscale="log")
        if title:
            ax.set_title(title)
        ax.legend(fontsize="small", ncol=2)
        return ax


class HistogramTracker:
    """A training callback: every layer's weights and gradients, kept after each epoch, for
    their histograms over training (as TensorBoard's histograms).

    Pass it to `fit(..., callbacks=[tracker])`. `tracker.values("weights", "layer1")` is one
    array of that layer's weights per epoch (`"grads"` for the gradients of the epoch's last
    step); `tracker.plot("grads")` draws each layer's histograms, one curve per epoch, stacked
    from the first epoch (back, light) to the last (front, dark).
    """

    KINDS = ("weights", "grads")

    def __init__(self) -> None:
        self.epochs: list[int] = []
        self._kept: dict[str, dict[str, list[Any]]] = {kind: {} for kind in self.KINDS}

    def __call__(self, epoch: int, model: Module, history: Any = None) -> None:
        import numpy as np

        self.epochs.append(epoch)
        for i, layer in enumerate(_layers(model), start=1):
            params = layer.parameters()
            numbers = {
                "weights": [p.data for p in params],
                "grads": [float(p.grad) for p in params],
            }
            for kind in self.KINDS:
                self._kept[kind].setdefault(f"layer{i}", []).append(np.array(numbers[kind]))

    def values(self, kind: str, layer: str) -> list[Any]:
        """One array per epoch: the layer's weights, or their gradients."""
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        if layer not in self._kept[kind]:
            raise KeyError(f"no layer {layer!r} recorded; recorded: {sorted(self._kept[kind])}")
        return self._kept[kind][layer]

    def plot(self, kind: str = "grads", epochs: int = 12, bins: int = 40) -> Any:
        """A figure, a panel per layer: the histogram of each of (at most) `epochs` epochs,
        evenly spread over training, as a filled curve offset upwards by epoch."""
        import numpy as np
        from matplotlib import colormaps
        from matplotlib.figure import Figure

        layers = list(self._kept[kind])
        if not layers:
            raise ValueError("nothing recorded yet: pass the tracker to fit(callbacks=[...])")
        columns = min(4, len(layers))
        rows = -(-len(layers) // columns)
        figure = Figure(figsize=(3.2 * columns, 2.8 * rows), layout="constrained")
        axes = figure.subplots(rows, columns, squeeze=False).ravel()
        for ax in axes[len(layers) :]:
            ax.set_visible(False)
        shown = sorted(set(np.linspace(0, len(self.epochs) - 1, epochs).round().astype(int)))
        colours = colormaps["viridis_r"]
        for ax, layer in zip(axes, layers, strict=False):
            series = self.values(kind, layer)
            low = min(float(series[e].min()) for e in shown)
            high = max(float(series[e].max()) for e in shown)
            # fewer bins for a small layer, so each holds a few numbers
            n_bins = min(bins, max(8, int(2 * np.sqrt(series[0].size))))
            edges = np.linspace(low, high if high > low else low + 1.0, n_bins + 1)
            centres = (edges[:-1] + edges[1:]) / 2
            step = 1.0 / len(shown)
            for k, e in enumerate(shown):
                counts, _ = np.histogram(series[e], edges)
                height = counts / max(counts.max(), 1) * 2.5 * step
                base = k * step
                colour = colours(0.15 + 0.85 * k / max(len(shown) - 1, 1))
                ax.fill_between(centres, base, base + height, color=colour, alpha=0.85, lw=0.6,
                                edgecolor="white", zorder=len(shown) - k)  # fmt: skip
            ax.set_yticks([k * step for k in (0, len(shown) - 1)])
            ax.set_yticklabels(
                [f"epoch {self.epochs[shown[0]]}", f"epoch {self.epochs[shown[-1]]}"]
            )
            ax.set_title(f"{layer}: {kind}", fontsize=10)
            ax.tick_params(labelsize=8)
        return figure
