"""The command line: train an MLP on a toy data set, then save it and its plots.

    python -m nn train                                  # moons, 2-16-16-1 relu, Adam: ~100%
    python -m nn train --dataset spiral --hidden 32,32 --epochs 200 --out spiral
    python -m nn train --optimizer sgd --lr 0.1 --momentum 0.9 --batch-size 1

`train` prints the data, the model and the settings, shows a progress bar while `fit` runs,
prints the final loss and accuracy, and writes DIR/model.json (`nn.load` reads it back),
DIR/loss.png (loss and accuracy per epoch) and DIR/boundary.png (the decision boundary).
A bad argument prints the usage and exits with status 2; a training run that diverges
(a non-finite loss) prints the error and exits with status 1.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from . import data, optim, plot
from .modules import ACTIVATIONS, MLP
from .serialize import save
from .train import LOSSES, accuracy, fit

if TYPE_CHECKING:
    from matplotlib.axes import Axes

DATASETS: dict[str, Callable[[int, int], data.Dataset]] = {
    "moons": lambda n, seed: data.make_moons(n, noise=0.1, seed=seed),
    "circles": lambda n, seed: data.make_circles(n, seed=seed),
    "blobs": lambda n, seed: data.make_blobs(n, centers=3, seed=seed),
    "spiral": lambda n, seed: data.make_spiral(n, n_classes=3, seed=seed),
    "xor": lambda n, seed: data.make_xor(n, seed=seed),
}
"""Each data set by name, as a function of (number of samples, seed)."""

OPTIMIZERS: dict[str, tuple[type[optim.Optimizer], float]] = {
    "sgd": (optim.SGD, 0.1),
    "adam": (optim.Adam, 0.05),
    "rmsprop": (optim.RMSprop, 0.01),
}
"""Each optimizer by name, with the learning rate used when --lr is not given."""

BINARY_LOSSES = ("hinge", "bce")  # losses that read one score per sample


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on `argv` (default: `sys.argv[1:]`); return the exit status."""
    args = build_parser().parse_args(argv)
    return args.run(args)


def build_parser() -> argparse.ArgumentParser:
    """The parser of `python -m nn`: one subcommand, `train`."""
    parser = argparse.ArgumentParser(
        prog="python -m nn", description="Train small neural networks built on autograd_core."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train_parser = commands.add_parser(
        "train",
        help="train an MLP on a toy data set and save the model and its plots",
        description="Train an MLP on a 2-D toy data set; write DIR/model.json, DIR/loss.png "
        "and DIR/boundary.png.",
    )
    train_parser.set_defaults(run=lambda args: train(args, train_parser))
    add = train_parser.add_argument
    add("--dataset", choices=DATASETS, default="moons", help="the data set (default: %(default)s)")
    add("--samples", type=_whole_number, default=100, help="data set size (default: %(default)s)")
    add(
        "--hidden",
        type=_layer_sizes,
        default="16,16",
        metavar="SIZES",
        help="hidden layer sizes, comma separated (default: %(default)s)",
    )
    add(
        "--activation",
        choices=ACTIVATIONS,
        default="relu",
        help="activation of the hidden layers (default: %(default)s)",
    )
    add(
        "--loss",
        choices=LOSSES,
        help="the loss (default: bce for two classes, cross_entropy for more)",
    )
    add("--optimizer", choices=OPTIMIZERS, default="adam", help="(default: %(default)s)")
    default_rates = ", ".join(f"{name} {lr}" for name, (_, lr) in OPTIMIZERS.items())
    add("--lr", type=_positive_number, help=f"learning rate (default: {default_rates})")
    add(
        "--momentum",
        type=_non_negative_number,
        default=0.0,
        help="momentum of sgd or rmsprop (default: %(default)s)",
    )
    add("--l2", type=_non_negative_number, default=0.0, help="L2 penalty (default: %(default)s)")
    add(
        "--epochs",
        type=_whole_number,
        default=100,
        help="passes over the data (default: %(default)s)",
    )
    add(
        "--batch-size",
        type=_whole_number,
        default=16,
        help="samples per step: 1 is stochastic, the data set size is full-batch "
        "(default: %(default)s)",
    )
    add("--seed", type=int, default=0, help="seeds data, weights and batch order (default: 0)")
    add(
        "--jit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run each step as traced straight-line Python: the same numbers, faster (default: on)",
    )
    add("--out", default="out", metavar="DIR", help="where the files go (default: %(default)s)")
    return parser


def train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """The `train` command: data, model, optimizer, `fit`, then the three files."""
    try:
        X, y = DATASETS[args.dataset](args.samples, args.seed)
    except ValueError as error:
        parser.error(f"argument --samples: {error}")
    n_classes = max(y) + 1
    loss = args.loss or ("bce" if n_classes == 2 else "cross_entropy")
    if loss in BINARY_LOSSES and n_classes != 2:
        parser.error(
            f"argument --loss: {loss} is for two classes and {args.dataset} has {n_classes}; "
            "use cross_entropy or mse"
        )
    # One score per sample for the binary losses (and mse on two classes), else one per class.
    one_output = loss in BINARY_LOSSES or (loss == "mse" and n_classes == 2)
    model = MLP(2, [*args.hidden, 1 if one_output else n_classes], args.activation, args.seed)

    optimizer_class, default_lr = OPTIMIZERS[args.optimizer]
    options = {"lr": default_lr if args.lr is None else args.lr}
    if args.momentum:
        if args.optimizer == "adam":
            parser.error("argument --momentum: adam takes no momentum (its beta1 plays that part)")
        options["momentum"] = args.momentum
    optimizer = optimizer_class(model.parameters(), **options)

    print(f"data: {args.dataset}, {len(X)} samples, {n_classes} classes")
    print(f"model: {model!r}")
    print(
        f"training: {loss} loss, {optimizer!r}, {args.epochs} epochs, "
        f"batch size {args.batch_size}{', jit' if args.jit else ''}"
    )
    try:
        history = fit(
            model,
            X,
            y,
            loss=loss,
            optimizer=optimizer,
            epochs=args.epochs,
            batch_size=args.batch_size,
            l2=args.l2,
            seed=args.seed,
            jit=args.jit,
        )
    except FloatingPointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    # The loss is the last epoch's mean; the accuracy is the trained model's, on the data.
    final_accuracy = accuracy(model, X, y, loss=loss)
    print(f"final loss {history.loss[-1]:.4f}, accuracy {100.0 * final_accuracy:.1f}%")

    os.makedirs(args.out, exist_ok=True)
    paths = [os.path.join(args.out, name) for name in ("model.json", "loss.png", "boundary.png")]
    save(model, paths[0])
    _save_figure(lambda ax: plot.history(history, ax=ax), paths[1])
    # An mse model on 0/1 labels means class 1 above 0.5, as `fit` counts its accuracy.
    threshold = 0.5 if loss == "mse" and one_output else 0.0
    _save_figure(
        lambda ax: plot.decision_boundary(model, X, y, ax=ax, threshold=threshold), paths[2]
    )
    print("wrote " + ", ".join(paths))
    return 0


def _save_figure(draw: Callable[[Axes], Axes], path: str) -> None:
    # A bare Figure, not pyplot: no GUI backend is started and nothing is left open.
    figure = Figure(figsize=(6.4, 4.8), layout="constrained")
    draw(figure.subplots())
    figure.savefig(path, dpi=100)


def _whole_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _positive_number(text: str) -> float:
    value = _number(text)
    if value <= 0.0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _non_negative_number(text: str) -> float:
    value = _number(text)
    if value < 0.0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _layer_sizes(text: str) -> list[int]:
    """'16,16' -> [16, 16]; '' -> [] (no hidden layer: a linear model)."""
    if not text.strip():
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = [0]
    if min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected layer sizes >= 1 separated by commas, like 16,16; got {text!r}"
        )
    return sizes
