"""A training playground for Jupyter, in the spirit of TensorFlow Playground.

Choose a data set, the hidden layer widths, the activation, the learning rate, the batch size
and the L2 penalty; start, pause or single-step the training; watch the decision boundary,
the loss curve, the gradient health of each layer, and what every hidden neuron computes (its
output over the plane, as a small heatmap).

Training runs on the fast path (`fit(..., jit=True)`, one epoch per step), and the pictures
come from the model's traced program too (every layer's outputs over the whole grid at once,
`autograd_core.compiler.batched`), so a step and its redraw take a fraction of a second.
The widgets are ipywidgets; `Playground` can also be driven from code (`step`, `configure`,
`start`, `pause`), which is how the tests use it.
"""

from __future__ import annotations

import functools
import html
import io
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from autograd_core import Value, batched

from . import data, losses, optim, plot
from ._checks import is_integer
from .health import GradientReport, gradient_report
from .modules import ACTIVATIONS, MLP, _as_list
from .train import fit, outputs_step

Dataset = tuple[list[list[float]], list[int]]
DATASETS: dict[str, Callable[[int, float, int], Dataset]] = {
    "moons": lambda n, noise, seed: data.make_moons(n, noise=noise, seed=seed),
    "circles": lambda n, noise, seed: data.make_circles(n, noise=noise / 2, seed=seed),
    "xor": lambda n, noise, seed: data.make_xor(n, noise=noise, seed=seed),
    "spiral": lambda n, noise, seed: data.make_spiral(n, n_classes=2, noise=noise, seed=seed),
    "blobs": lambda n, noise, seed: data.make_blobs(
        n, centers=2, seed=seed, cluster_std=10 * noise
    ),
}
"""The two-class data sets the playground offers, by name: (n_samples, noise, seed) -> (X, y).
`noise` is each set's own (half of it for circles, whose rings are close; a blob's standard
deviation is 10 times it, its centres being 20 wide)."""

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
TEST_SIZE = 0.3  # the fraction of the samples held out to test on
MAX_NOISE = 0.5


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
        noise: float = 0.15,
    ) -> None:
        import ipywidgets as widgets

        if not (is_integer(draw_every) and draw_every >= 1):
            raise ValueError(
                f"draw_every must be an int >= 1 (redraw every k-th epoch), got {draw_every!r}"
            )
        if not (is_integer(n_samples) and n_samples >= 10):
            raise ValueError(f"n_samples must be an int >= 10, got {n_samples!r}")
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
            noise=noise,
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
        self.noise_box = widgets.FloatSlider(
            min=0.0, max=MAX_NOISE, step=0.05, description="noise", continuous_update=False
        )
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
            (self.noise_box, "noise"),
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
                self.noise_box,
                widgets.HBox([self.run_button, self.step_button, self.reset_button]),
                self.status,
                self.health,
            ]
        )
        return widgets.HBox([controls, self.picture])

    # -- settings ------------------------------------------------------------------------------

    def configure(self, **settings: Any) -> None:
        """Change settings by name: dataset, hidden, activation, lr, batch_size, l2, noise.

        Everything is checked first; on a bad value a ValueError names it and nothing changes.
        A new data set, noise, widths or activation starts a new model.
        """
        new = {**self.settings, **settings}
        names = {"dataset", "hidden", "activation", "lr", "batch_size", "l2", "noise"}
        unknown = set(settings) - names
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
        noise = new["noise"]
        if not (isinstance(noise, (int, float)) and 0.0 <= noise <= MAX_NOISE):
            raise ValueError(f"noise must be a number in [0, {MAX_NOISE}], got {noise!r}")
        rebuild = any(
            new[k] != self.settings.get(k) for k in ("dataset", "hidden", "activation", "noise")
        )
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
            self.noise_box.value = s["noise"]
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
        """A new data set and a new model from the settings; the history starts again.

        The samples are split into a training set and a test set (TEST_SIZE of them, never
        trained on); the gradient health is measured at once, so the starting state shows.
        """
        with self._lock:
            s = self.settings
            X, y = DATASETS[s["dataset"]](self.n_samples, s["noise"], self.seed)
            self.X, self.X_test, self.y, self.y_test = data.train_test_split(
                X, y, test_size=TEST_SIZE, seed=self.seed
            )
            self.model = MLP(2, [*s["hidden"], 1], activation=s["activation"], seed=self.seed)
            self.optimizer = optim.SGD(self.model.parameters(), lr=s["lr"])
            self.epoch = 0
            self.losses: list[float] = []
            self.test_losses: list[float] = []
            self.accuracies: list[float] = []
            self.test_accuracies: list[float] = []
            self.error: str = ""
            losses.binary_cross_entropy([self.model(x) for x in self.X], self.y).backward()
            self.report: GradientReport = gradient_report(self.model, self.X)
            self.model.zero_grad()
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
                validation_data=(self.X_test, self.y_test),
            )
            self.epoch += epochs
            self.losses += history.loss
            self.test_losses += history.val_loss
            self.accuracies += history.accuracy
            self.test_accuracies += history.val_accuracy
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
        self.error = ""
        self.run_button.value = True  # before the thread: an error in it sets it back
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

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
        try:
            while True:
                self.step(draw=(self.epoch + 1) % self.draw_every == 0)
                if not self._running:
                    break
        except Exception as error:  # noqa: BLE001 - a thread's error would go to stderr only
            self._running = False
            self.error = f"training stopped at epoch {self.epoch + 1}: {error}"
            self._show_status()
            self.run_button.value = False

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
        if self.error:
            self.status.value = f'<span style="color: #c00000">{html.escape(self.error)}</span>'
        elif self.losses:
            self.status.value = (
                f"epoch {self.epoch}: loss {self.losses[-1]:.4f} (test {self.test_losses[-1]:.4f})"
                f", accuracy {self.accuracies[-1]:.0%} (test {self.test_accuracies[-1]:.0%})"
            )
        else:
            self.status.value = "epoch 0: press step or run"
        self.health.value = self.report._repr_html_() if self.report else ""

    def figure_png(self) -> bytes:
        """The playground's picture as PNG bytes: the network, the boundary, the losses and
        the gradient health."""
        from matplotlib.figure import Figure

        X = np.array(self.X + self.X_test)
        low, high = X.min(axis=0) - 0.5, X.max(axis=0) + 0.5
        xs, ys = np.linspace(low[0], high[0], GRID), np.linspace(low[1], high[1], GRID)
        grid = np.array([(a, b) for b in ys for a in xs])
        outputs = [grid, *self.hidden_outputs(grid)]  # the inputs x1, x2 are a layer too
        extent = (low[0], high[0], low[1], high[1])

        # Axes on a fixed grid, no layout engine: each axes (and constrained layout) costs
        # more than the drawing.
        figure = Figure(figsize=(12, 7.5))
        spec = figure.add_gridspec(
            2, 6, height_ratios=[1.5, 1], left=0.04, right=0.94, top=0.93, bottom=0.07,
            hspace=0.35, wspace=0.9,
        )  # fmt: skip
        network = figure.add_subplot(spec[0, :4])
        boundary = figure.add_subplot(spec[0, 4:])
        loss_ax = figure.add_subplot(spec[1, :3])
        health_ax = figure.add_subplot(spec[1, 3:])
        self._draw_network(network, outputs)
        self._draw_boundary(boundary, xs, ys, outputs[-1], extent)
        self._draw_losses(loss_ax)
        self._draw_health(health_ax)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()

    def _draw_network(self, ax: Any, outputs: list[np.ndarray]) -> None:
        """TensorFlow Playground's picture: every neuron as its output over the plane, joined
        by its weights, a line's colour the weight's sign and its width its size."""
        signed = _signed_colormap()
        layers = self.model.layers
        shown = [min(out.shape[1], MAX_HEATMAPS) for out in outputs]
        size = 0.8 / max(shown)  # a tile's height, in axes units (the column is 1 high)
        wide = size * 1.6  # and its width, in columns
        places = [
            [(column, 1.0 - (j + 0.5) / count) for j in range(count)]
            for column, count in enumerate(shown)
        ]
        weights = [abs(w.data) for layer in layers for n in layer.neurons for w in n.w]
        heaviest = max(weights) or 1.0
        for k, layer in enumerate(layers, start=1):
            for j, neuron in enumerate(layer.neurons[: shown[k]]):
                for i, w in enumerate(neuron.w[: shown[k - 1]]):
                    (x0, y0), (x1, y1) = places[k - 1][i], places[k][j]
                    ax.plot(
                        [x0 + wide / 2, x1 - wide / 2], [y0, y1],
                        color=signed(0.0 if w.data < 0 else 1.0),
                        linewidth=0.3 + 3.5 * abs(w.data) / heaviest, zorder=1,
                    )  # fmt: skip
        names = ["x1, x2", *(f"layer {k}" for k in range(1, len(layers))), "output"]
        for column, (out, count) in enumerate(zip(outputs, shown, strict=True)):
            for j in range(count):
                tile = out[:, j].reshape(GRID, GRID)
                peak = np.abs(tile).max() or 1.0
                x, y = places[column][j]
                ax.imshow(
                    tile / peak, origin="lower", cmap=signed, vmin=-1, vmax=1, zorder=2,
                    extent=(x - wide / 2, x + wide / 2, y - size * 0.42, y + size * 0.42),
                )  # fmt: skip
            hidden = out.shape[1] - count
            note = f" (+{hidden} more)" if hidden > 0 else ""
            ax.text(column, 1.0, names[column] + note, ha="center", va="bottom", fontsize=11)
        ax.set(xlim=(-0.5, len(outputs) - 0.5), ylim=(0.0, 1.06), aspect="auto")
        ax.set_axis_off()
        ax.set_title(
            "each neuron's output over the plane; lines are weights (orange +, blue -, width |w|)",
            fontsize=11,
        )

    def _draw_boundary(self, boundary: Any, xs: Any, ys: Any, final: Any, extent: tuple) -> None:
        """The model's logit over the plane, its zero line, and the data: training points
        filled, test points hollow, each edged in white to stand out from its region."""
        logits = final[:, 0].reshape(GRID, GRID)
        boundary.imshow(
            logits, origin="lower", extent=extent, cmap=_signed_colormap(), vmin=-4, vmax=4,
            aspect="auto", alpha=0.7,
        )  # fmt: skip
        boundary.contour(xs, ys, logits, levels=[0.0], colors="black", linewidths=1)
        for X, y, test in ((self.X, self.y, False), (self.X_test, self.y_test, True)):
            colors = [plot.CLASS_COLORS[label] for label in y]
            boundary.scatter(
                [x[0] for x in X], [x[1] for x in X], s=30, linewidths=1.5 if test else 0.8,
                c="white" if test else colors, edgecolors=colors if test else "white",
            )  # fmt: skip
        title = f"{self.settings['dataset']}: train (filled), test (hollow)"
        boundary.set_title(title, fontsize=11)
        boundary.tick_params(labelsize=10)

    def _draw_losses(self, ax: Any) -> None:
        """Training and test loss per epoch; before the first epoch, what to do."""
        if self.losses:
            epochs = range(1, len(self.losses) + 1)
            ax.plot(epochs, self.losses, color=plot.CLASS_COLORS[0], label="training")
            ax.plot(epochs, self.test_losses, "--", color=plot.CLASS_COLORS[1], label="test")
            ax.legend(fontsize=10)
        else:
            ax.text(0.5, 0.5, "no epoch yet: press step or run", ha="center", fontsize=12)
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_title("loss (bce) per epoch", fontsize=11)
        ax.set_xlabel("epoch", fontsize=10)
        ax.tick_params(labelsize=10)

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
        plot.grad_colorbar(health_ax)  # the colours' numbers, as in every gradient picture

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


@functools.cache
def _signed_colormap() -> Any:
    """One diverging scale for everything signed: a negative number (a logit, a neuron's
    output, a weight) in class 0's blue, a positive one in class 1's orange, white at 0, as
    the classes are coloured in every plot."""
    from matplotlib.colors import LinearSegmentedColormap

    colors = [plot.CLASS_COLORS[0], "#ffffff", plot.CLASS_COLORS[1]]
    return LinearSegmentedColormap.from_list("class0_white_class1", colors)


def _plain_log_scale(ax: Any) -> None:
    """A log y axis labelled '1e-02': math-text labels (10^-2) take longer than the plot."""
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.0e"))
    ax.yaxis.set_minor_formatter(NullFormatter())
