"""Draw the pictures the README shows, into docs/images/.

    python scripts/make_readme_figures.py

* `neuron_graph.svg`: the computation graph of one tanh neuron after `backward()`, every
  value with its data and gradient (needs Graphviz's `dot` program);
* `moons_boundary.png`: the decision boundary of micrograd's moons model, an MLP 2-16-16-1
  trained with `nn.fit`.

Everything is seeded, so running it again gives the same pictures.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from autograd_core import Value
from nn import MLP, fit, optim, plot
from nn.data import make_moons

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"


def neuron_graph(path: Path) -> None:
    """o = tanh(x1*w1 + x2*w2 + b), with the weights micrograd's lecture uses (o = 1/sqrt(2))."""
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    x1w1 = x1 * w1
    x1w1.label = "x1*w1"
    x2w2 = x2 * w2
    x2w2.label = "x2*w2"
    n = x1w1 + x2w2 + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    o.backward()
    path.write_bytes(o.draw().pipe(format="svg"))


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


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    for name, draw in (("neuron_graph.svg", neuron_graph), ("moons_boundary.png", moons_boundary)):
        draw(IMAGES / name)
        print(f"wrote {(IMAGES / name).relative_to(IMAGES.parent.parent)}")


if __name__ == "__main__":
    main()
