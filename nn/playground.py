"""A training playground for Jupyter, in the spirit of TensorFlow Playground.

Choose a data set, the hidden layer widths, the activation, the learning rate, the batch size
and the L2 penalty; start, pause or single-step the training; watch the decision boundary,
the loss curve, the gradient health of each layer, and what every hidden neuron computes (its
output over the plane, as a small heatmap).

Training runs on the fast path (`fit(..., jit=True)`, one epoch per step), and the pictures
come from the model's traced program too (every layer's outputs over the whole grid at once,
`autograd_core.batched`), so a step and its redraw take a fraction of a second.
The widgets are ipywidgets; `Playground` can also be driven from code (`step`, `configure`,
`start`, `pause`), which is how the tests use it.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from autograd_core import Value, batched

from . import data, optim, plot
from ._checks import is_integer
from .health import GradientReport, gradient_report
from .modules import ACTIVATIONS, MLP, _as_list
from .train import fit, outputs_step

Dataset = tuple[list[list[float]], list[int]]
DATASETS: dict[str, Callable[[int, int], Dataset]] = {
    "moons": lambda n, seed: data.make_moons(n, noise=0.15, seed=seed),
    "circles": lambda n, seed: data.make_circles(n, noise=0.08, seed=seed),
    "xor": lambda n, seed: data.make_xor(n, noise=0.2, seed=seed),
    "spiral": lambda n, seed: data.make_spiral(n, n_classes=2, noise=0.1, seed=seed),
    "blobs": lambda n, seed: data.make_blobs(n, centers=2, seed=seed),
}
"""The two-class data sets the playground offers, by name: (n_samples, seed) -> (X, y)."""

BATCH_SIZES: list[tuple[str, int | None]] = [
    ("full batch", None),
    ("1", 1),
    ("5", 5),
    ("10", 10),
    ("25", 25),
]
L2_VALUES = [0.0, 1e-4, 1e-3, 1e-2]
GRID = 40  # heatmaps are GRID x GRID points
MAX_HEATMAPS = 8  # per layer: wider layers show their first 8 neurons


def parse_hidden(text: str | Sequence[int]) -> list[int]:
    """'8, 8' or [8, 8] -> [8, 8]: the hidden layer widths, each an int from 1 to 64."""
    if isinstance(text, str):
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not all(part.isdigit() for part in parts):
            raise ValueError(
                f"hidden widths must be whole numbers separated by commas, got {text!r}"
            )
        widths = [int(part) for part in parts]
    else:
        widths = list(text)
    if not all(is_integer(w) and 1 <= w <= 64 for w in widths):
        raise ValueError(f"each hidden width must be an int from 1 to 64, got {text!r}")
    return widths


class Playground:
    """Train an MLP on a 2-D, two-class data set and watch it learn, epoch by epoch.

    The model is `MLP(2, hidden + [1], activation)` trained with SGD on the binary
    cross-entropy. Changing the data set, the widths or the activation starts a new model;
    the learning rate, batch size and L2 apply from the next epoch on.
    """

    def __init__(
        self,
        dataset: str = "moons",
        hidden: str | Sequence[int] = (8, 8),
        activation: str = "tanh",
        lr: float = 0.1,
        batch_size: int | None = 10,
        l2: float = 0.0,
        n_samples: int = 200,
        seed: int = 0,
        draw_every: int = 5,
    ) -> None:
        import ipywidgets as widgets

        self.settings: dict[str, Any] = {}
        self.n_samples = n_samples
        self.seed = seed
        self.draw_every = draw_every
        self._running = False
        self._layers: tuple[MLP, batched.TrainingStep] | None = None  # hidden_outputs' program
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one epoch at a time, whoever asks for it
        self._make_controls(widgets)
        self.configure(
            dataset=dataset,
            hidden=hidden,
            activation=activation,
            lr=lr,
            batch_size=batch_size,
            l2=l2,
        )
        self.widget = self._connect(widgets)

    def _make_controls(self, widgets: Any) -> None:
        """One widget per setting, the buttons, and the outputs."""
        self.dataset_box = widgets.Dropdown(options=list(DATASETS), description="data")
        self.hidden_box = widgets.Text(description="hidden", continuous_update=False)
        self.activation_box = widgets.Dropdown(
            options=[a for a in ACTIVATIONS if a != "linear"], description="activation"
        )
        self.lr_box = widgets.FloatLogSlider(base=10, min=-4, max=1, step=0.1, description="lr")
        self.batch_box = widgets.Dropdown(options=BATCH_SIZES, description="batch")
        self.l2_box = widgets.Dropdown(options=L2_VALUES, description="L2")
        self.run_button = widgets.ToggleButton(description="run", icon="play")
        self.step_button = widgets.Button(description="step", icon="step-forward")
        self.reset_button = widgets.Button(description="reset", icon="refresh")
        self.status = widgets.HTML()
        self.picture = widgets.Image(format="png")
        self.health = widgets.HTML()

    def _connect(self, widgets: Any) -> Any:
        """Wire every control to what it changes; the controls beside the picture."""
        for box, key in (
            (self.dataset_box, "dataset"),
            (self.hidden_box, "hidden"),
            (self.activation_box, "activation"),
            (self.lr_box, "lr"),
            (self.batch_box, "batch_size"),
            (self.l2_box, "l2"),
        ):
            box.observe(self._on_change(key), names="value")
        self.run_button.observe(self._on_run, names="value")
        self.step_button.on_click(lambda _: self.step())
        self.reset_button.on_click(lambda _: self.reset())
        controls = widgets.VBox(
            [
                self.dataset_box,
                self.hidden_box,
                self.activation_box,
                self.lr_box,
                self.batch_box,
                self.l2_box,
                widgets.HBox([self.run_button, self.step_button, self.reset_button]),
                self.status,
                self.health,
            ]
        )
        return widgets.HBox([controls, self.picture])

    # -- settings ------------------------------------------------------------------------------

    def configure(self, **settings: Any) -> None:
        """Change settings by name: dataset, hidden, activation, lr, batch_size, l2.

        Everything is checked first; on a bad value a ValueError names it and nothing changes.
        A new data set, widths or activation starts a new model.
        """
        new = {**self.settings, **settings}
        unknown = set(settings) - {"dataset", "hidden", "activation", "lr", "batch_size", "l2"}
        if unknown:
            raise ValueError(f"unknown playground settings: {sorted(unknown)}")
        if new["dataset"] not in DATASETS:
            raise ValueError(
                f"dataset must be one of {', '.join(DATASETS)}, got {new['dataset']!r}"
            )
        new["hidden"] = parse_hidden(new["hidden"])
        if new["activation"] not in ACTIVATIONS or new["activation"] == "linear":
            raise ValueError(
                f"activation must be relu, tanh, sigmoid or leaky_relu, got {new['activation']!r}"
            )
        if not (isinstance(new["lr"], (int, float)) and 0.0 < new["lr"] <= 10.0):
            raise ValueError(f"lr must be a number in (0, 10], got {new['lr']!r}")
        if new["batch_size"] not in [size for _, size in BATCH_SIZES]:
            sizes = [size for _, size in BATCH_SIZES]
            raise ValueError(f"batch_size must be one of {sizes}, got {new['batch_size']!r}")
        if new["l2"] not in L2_VALUES:
            raise ValueError(f"l2 must be one of {L2_VALUES}, got {new['l2']!r}")
        rebuild = any(new[k] != self.settings.get(k) for k in ("dataset", "hidden", "activation"))
        self.settings = new
        self._show_settings()
        if rebuild:
            self.reset()
        else:
            self.optimizer.lr = new["lr"]

    def _show_settings(self) -> None:
        """Put the settings into the widgets (whose observers then see no change)."""
        s = self.settings
        self._updating = True
        try:
            self.dataset_box.value = s["dataset"]
            self.hidden_box.value = ", ".join(map(str, s["hidden"]))
            self.activation_box.value = s["activation"]
            self.lr_box.value = s["lr"]
            self.batch_box.value = s["batch_size"]
            self.l2_box.value = s["l2"]
        finally:
            self._updating = False

    def _on_change(self, key: str) -> Callable[[dict], None]:
        def changed(change: dict) -> None:
            if self._updating:
                return
            try:
                self.configure(**{key: change["new"]})
            except ValueError as error:
                self.status.value = f'<span style="color: #c00000">{error}</span>'

        return changed

    # -- training ------------------------------------------------------------------------------

    def reset(self) -> None:
        """A new data set and a new model from the settings; the history starts again."""
        with self._lock:
            s = self.settings
            self.X, self.y = DATASETS[s["dataset"]](self.n_samples, self.seed)
            self.model = MLP(2, [*s["hidden"], 1], activation=s["activation"], seed=self.seed)
            self.optimizer = optim.SGD(self.model.parameters(), lr=s["lr"])
            self.epoch = 0
            self.losses: list[float] = []
            self.accuracies: list[float] = []
            self.report: GradientReport | None = None
        self.draw()

    def step(self, epochs: int = 1, draw: bool = True) -> None:
        """Train `epochs` epochs (one `fit` call on the fast path), then redraw."""
        with self._lock:
            s = self.settings
            history = fit(
                self.model,
                self.X,
                self.y,
                loss="bce",
                optimizer=self.optimizer,
                epochs=epochs,
                batch_size=s["batch_size"],
                l2=s["l2"],
                seed=self.seed + self.epoch,  # a new shuffle every epoch, yet reproducible
                progress=False,
                jit=True,
            )
            self.epoch += epochs
            self.losses += history.loss
            self.accuracies += history.accuracy
            self.report = gradient_report(self.model, self.X)
        if draw:
            self.draw()
        else:
            self._show_status()

    def start(self) -> None:
        """Train in the background, epoch after epoch, until `pause()`."""
        if self._running:
            return
        self._running = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.run_button.value = True

    def pause(self) -> None:
        """Stop after the current epoch, and wait for it to finish."""
        self._running = False
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.run_button.value = False
        self.draw()

    def _run(self) -> None:
        # At least one epoch per start, so that a quick start/pause still trains.
        while True:
            self.step(draw=(self.epoch + 1) % self.draw_every == 0)
            if not self._running:
                break

    def _on_run(self, change: dict) -> None:
        self.run_button.description = "pause" if change["new"] else "run"
        self.run_button.icon = "pause" if change["new"] else "play"
        if change["new"]:
            self.start()
        elif self._running:
            self.pause()

    # -- pictures ------------------------------------------------------------------------------

    def hidden_outputs(self, points: np.ndarray) -> list[np.ndarray]:
        """Every layer's outputs at `points` (n x 2): one (n, width) array per layer, the last
        being the model's logit. The model is traced once (a sample in, every neuron's output
        out) and run over all the points at once by the batched back-end."""
        if self._layers is None or self._layers[0] is not self.model:
            model = self.model

            def every_layer(*x: Value) -> list[Any]:
                outputs, signal = [], list(x)
                for layer in model.layers:
                    signal = _as_list(layer(signal))
                    outputs += signal
                return outputs

            self._layers = (model, outputs_step(every_layer, 2, model.parameters()))
        theta = np.array([p.data for p in self.model.parameters()])
        _, outputs = self._layers[1].evaluate(theta, np.asarray(points, dtype=float))
        ends = np.cumsum([layer.nout for layer in self.model.layers])[:-1]
        return np.split(outputs, ends, axis=1)

    def draw(self) -> None:
        """Render the figure into the picture widget and update the status and health text."""
        self.picture.value = self.figure_png()
        self._show_status()

    def _show_status(self) -> None:
        if self.losses:
            self.status.value = (
                f"epoch {self.epoch}: loss {self.losses[-1]:.4f}, "
                f"accuracy {self.accuracies[-1]:.0%}"
            )
        else:
            self.status.value = "epoch 0: press step or run"
        self.health.value = f"<pre>{self.report!r}</pre>" if self.report else ""

    def figure_png(self) -> bytes:
        """The playground's picture as PNG bytes: boundary, loss, gradient health, neurons."""
        from matplotlib.figure import Figure

        X, y = np.array(self.X), np.array(self.y)
        low, high = X.min(axis=0) - 0.5, X.max(axis=0) + 0.5
        xs, ys = np.linspace(low[0], high[0], GRID), np.linspace(low[1], high[1], GRID)
        grid = np.array([(a, b) for b in ys for a in xs])
        outputs = self.hidden_outputs(grid)
        extent = (low[0], high[0], low[1], high[1])

        hidden = outputs[:-1]
        # Four axes on a fixed grid, no layout engine: each axes (and constrained layout) costs
        # more than the drawing, so the neurons' heatmaps are tiled into one image.
        figure = Figure(figsize=(11, 3.3 + 1.1 * len(hidden)))
        grid_spec = figure.add_gridspec(
            2,
            3,
            height_ratios=[3.0, 1.1 * len(hidden)],
            left=0.05,
            right=0.98,
            top=0.94,
            bottom=0.02,
            hspace=0.35,
            wspace=0.3,
        )
        boundary, loss_ax, health_ax = (figure.add_subplot(grid_spec[0, k]) for k in range(3))
        neurons_ax = figure.add_subplot(grid_spec[1, :])

        self._draw_boundary(boundary, X, y, xs, ys, outputs[-1], extent)
        loss_ax.plot(range(1, len(self.losses) + 1), self.losses)
        loss_ax.set(title="training loss (bce)", xlabel="epoch")

        self._draw_health(health_ax)
        _draw_neurons(neurons_ax, hidden)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=72)
        return buffer.getvalue()

    def _draw_boundary(
        self, boundary: Any, X: Any, y: Any, xs: Any, ys: Any, final: Any, extent: tuple
    ) -> None:
        """The model's logit over the plane, its zero line, and the data."""
        logits = final[:, 0].reshape(GRID, GRID)
        boundary.imshow(
            logits, origin="lower", extent=extent, cmap="RdBu", vmin=-4, vmax=4, aspect="auto"
        )
        boundary.contour(xs, ys, logits, levels=[0.0], colors="black", linewidths=1)
        boundary.scatter(
            X[:, 0],
            X[:, 1],
            c=y,
            cmap="RdBu",
            edgecolors="black",
            linewidths=0.4,
            s=16,
            vmin=0,
            vmax=1,
        )
        boundary.set_title(f"{self.settings['dataset']}: decision boundary")

    def _draw_health(self, health_ax: Any) -> None:
        """Mean |grad| per layer as bars in the gradient colours, hatched where units are
        dead or saturated."""
        if self.report is not None:
            colormap, norm = plot.grad_scale()
            names = [layer.name for layer in self.report.layers]
            sizes = [max(layer.mean_abs_grad, 1e-12) for layer in self.report.layers]
            bars = health_ax.bar(
                names, sizes, color=[colormap(norm(size)) for size in sizes], edgecolor="black"
            )
            for bar, layer in zip(bars, self.report.layers, strict=True):
                stuck = (layer.dead or 0.0) + (layer.saturated or 0.0)
                if stuck:
                    bar.set_hatch("//")
                    health_ax.annotate(
                        f"{stuck:.0%} stuck",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center",
                        va="bottom",
                        fontsize=10,
                    )
            _plain_log_scale(health_ax)
            health_ax.set_ylim(min(sizes) / 10, max(sizes) * 3)  # bars long enough to compare
        health_ax.set(title="mean |grad| per layer", xlabel="hatched: dead / saturated units")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _tiles(layers: list[np.ndarray]) -> np.ndarray:
    """One image: a row per layer, a GRID x GRID tile per neuron, each scaled into [-1, 1]."""
    gap = 4
    image = np.full((len(layers) * (GRID + gap), MAX_HEATMAPS * (GRID + gap)), np.nan)
    for i, outputs in enumerate(layers):
        for j in range(min(outputs.shape[1], MAX_HEATMAPS)):
            tile = outputs[:, j].reshape(GRID, GRID)[::-1]  # row 0 at the top: flip y
            peak = np.abs(tile).max()
            top, left = i * (GRID + gap), j * (GRID + gap)
            image[top : top + GRID, left : left + GRID] = tile / peak if peak > 0 else tile
    return image


def _plain_log_scale(ax: Any) -> None:
    """A log y axis labelled '1e-02': math-text labels (10^-2) take longer than the plot."""
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.0e"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _draw_neurons(neurons_ax: Any, hidden: list) -> None:
    """Each hidden neuron's output over the plane, tiled into one image, labelled layer.unit."""
    neurons_ax.imshow(_tiles(hidden), cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    neurons_ax.set_axis_off()
    neurons_ax.set_title(
        "each hidden neuron's output over the plane (rows: layers; scaled to its largest)",
        fontsize=9,
    )
    for i, layer_out in enumerate(hidden):
        for j in range(min(layer_out.shape[1], MAX_HEATMAPS)):
            neurons_ax.text(
                j * (GRID + 4) + 1,
                i * (GRID + 4) + 1,
                f"{i + 1}.{j + 1}",
                fontsize=7,
                va="top",
            )
