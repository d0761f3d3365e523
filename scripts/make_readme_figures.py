"""Draw the pictures the README shows, into docs/images/.

    python scripts/make_readme_figures.py

* `neuron_graph.svg`: the computation graph of one tanh neuron after `backward()`, every
  value with its data and gradient (needs Graphviz's `dot` program);
* `moons_boundary.png`: the decision boundary of micrograd's moons model, an MLP 2-16-16-1
  trained with `nn.fit`;
* `mlp_neurons.png`: the digits MLP 64-32-10 drawn a box per neuron, clustered by layer,
  coloured by gradient size on the scale every gradient picture shares;
* `gradient_health.png`: a deep sigmoid MLP drawn a box per layer, its first layers marked
  as vanishing;
* `backward_steps.gif`: the backward pass through the neuron, one step per frame;
* `validation_curves.png`: training against validation loss and accuracy of an MLP that
  overfits a small noisy moons set;
* `playground.png`: the notebook playground after 60 epochs on moons.

Everything is seeded, so running it again gives the same pictures.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from autograd_core import Value, draw_dot
from autograd_core.pictures.stepper import save_gif
from nn import MLP, fit, losses, optim, plot
from nn.data import load_digits, make_moons, train_test_split

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"


def lecture_neuron() -> Value:
    """o = tanh(x1*w1 + x2*w2 + b), with the weights micrograd's lecture uses (o = 1/sqrt(2))."""
    inputs = {"x1": 2.0, "x2": 0.0}
    weights = {"w1": -3.0, "w2": 1.0}
    terms = []
    for (x_name, x), (w_name, w) in zip(inputs.items(), weights.items(), strict=True):
        term = Value(x, label=x_name) * Value(w, label=w_name)
        term.label = f"{x_name}*{w_name}"
        terms.append(term)
    n = terms[0] + terms[1] + Value(6.8813735870195432, label="b")
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    return o


def neuron_graph(path: Path) -> None:
    """The lecture neuron after `backward()`: every value with its data and gradient."""
    o = lecture_neuron()
    o.backward()
    path.write_bytes(o.draw().pipe(format="svg"))


def backward_animation(path: Path) -> None:
    """The lecture neuron's backward pass, one step a frame, as an animated GIF."""
    save_gif(lecture_neuron(), path, seconds_per_frame=2.0)


def mlp_neurons(path: Path) -> None:
    """The digits MLP 64-32-10 at the neurons level after one backward on 32 digits: its
    seven largest-gradient neurons a layer, in order, and a box for the others."""
    X, y = load_digits()
    model = MLP(64, [32, 10], seed=0)
    loss = losses.cross_entropy([model(x) for x in X[:32]], y[:32])
    loss.backward()
    graph = draw_dot(loss, level="neurons", color="grad")
    path.write_bytes(graph.pipe(format="png"))


def playground(path: Path) -> None:
    """The notebook playground on moons after 60 epochs, as its widget shows it."""
    from nn.playground import Playground

    game = Playground(dataset="moons", hidden="6, 6", activation="tanh", lr=0.1, seed=0)
    game.step(60, draw=False)
    path.write_bytes(game.figure_png())


def gradient_health(path: Path) -> None:
    """A deep sigmoid MLP on moons at the layers level: the first layers' gradients vanish."""
    X, y = make_moons(n_samples=50, noise=0.1, seed=0)
    model = MLP(2, [8] * 6 + [1], activation="sigmoid", seed=0)
    loss = losses.binary_cross_entropy([model(x) for x in X], y)
    loss.backward()
    graph = draw_dot(loss, level="layers", color="grad", rankdir="TB")
    path.write_bytes(graph.pipe(format="png"))


def moons_boundary(path: Path) -> None:
    """Train the moons model as the README's quick start does and draw where it puts class 1."""
    X, y = make_moons(n_samples=100, noise=0.1, seed=0)
    model = MLP(2, [16, 16, 1], seed=0)
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = fit(
        model, X, y, loss="hinge", optimizer=optimizer, epochs=100, l2=1e-4, progress=False
    )
    figure = Figure(figsize=(5, 4), layout="constrained")  # no pyplot: no GUI backend needed
    ax = figure.add_subplot()
    plot.decision_boundary(model, X, y, ax=ax)
    ax.set_title(f"MLP 2-16-16-1 on moons: {history.accuracy[-1]:.0%} accuracy")
    figure.savefig(path, dpi=100)


def validation_curves(path: Path) -> None:
    """A 64-64 MLP on 100 noisy moons points, validated on 100 others: the gap opens."""
    X, y = make_moons(n_samples=200, noise=0.3, seed=0)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.5, seed=0)
    model = MLP(2, [64, 64, 1], seed=0)
    history = fit(
        model, X_train, y_train, loss="hinge", optimizer=optim.Adam(model.parameters(), lr=0.02),
        epochs=150, progress=False, jit=True, validation_data=(X_val, y_val),
    )  # fmt: skip
    figure = Figure(figsize=(7, 4), layout="constrained")
    ax = figure.add_subplot()
    plot.history(history, ax=ax)
    ax.set_title("64-64 MLP, 100 noisy moons points: training against validation")
    figure.savefig(path, dpi=100)


FIGURES = {
    "neuron_graph.svg": neuron_graph,
    "moons_boundary.png": moons_boundary,
    "mlp_neurons.png": mlp_neurons,
    "gradient_health.png": gradient_health,
    "backward_steps.gif": backward_animation,
    "playground.png": playground,
    "validation_curves.png": validation_curves,
}


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    for name, draw in FIGURES.items():
        draw(IMAGES / name)
        print(f"wrote {(IMAGES / name).relative_to(IMAGES.parent.parent)}")


if __name__ == "__main__":
    main()
