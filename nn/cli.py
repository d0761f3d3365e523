"""The command line: train an MLP on a data set, test it on held-out samples, save it and its plots.

    python -m nn train                                  # moons, 2-16-16-1 relu, Adam: ~100%
    python -m nn train --dataset spiral --hidden 32,32 --epochs 200 --out spiral
    python -m nn train --dataset digits --hidden 64 --lr 0.002 --batch-size 32 --epochs 40
    python -m nn train --dataset names                  # microgpt's GPT on 800 names
    python -m nn train --optimizer sgd --lr 0.1 --momentum 0.9 --batch-size 1

`train` holds out a stratified `--test-size` share of the data (0.25 by default), trains on
the rest with a progress bar, and prints the final loss and accuracy on the training part AND
on the held-out test part: only the second says how well the model does on data it has not
seen. It writes DIR/model.json (`nn.load` reads it back), DIR/loss.png (loss and accuracy per
epoch) and, for the 2-D data sets, DIR/boundary.png (the decision boundary).

`--dataset names` trains a character-level GPT instead of an MLP (`nn.GPT(27)`, microgpt's
configuration; --hidden and --activation do not apply) on `--samples` names drawn at random
(800 by default), with Adam's betas 0.85 / 0.99 and lr 0.01 unless told otherwise, two
epochs of batches of 4. It prints the held-out loss and perplexity, and 10 new names sampled
from the trained model, and writes DIR/model.json and DIR/loss.png. The GPT trains on the
eager engine (a graph per name): a minute or two.

Every file is written under a temporary name and renamed into place, so each is complete or
absent, never half-written, whatever stops the run. `--out` is checked before training starts.

Exit status: 0 done; 2 a bad argument (the usage is printed; nothing is trained); 1 a run that
diverged (a non-finite loss: the error is printed, nothing is written); 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import secrets
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from matplotlib.figure import Figure
from tqdm import tqdm

from . import data, optim, plot
from .modules import ACTIVATIONS, MLP
from .sequence import GPT, generate
from .serialize import save
from .train import LOSSES, History, accuracy, fit

if TYPE_CHECKING:
    from matplotlib.axes import Axes

DATASETS: dict[str, Callable[[int, int], data.Dataset]] = {
    "moons": lambda n, seed: data.make_moons(n, noise=0.1, seed=seed),
    "circles": lambda n, seed: data.make_circles(n, seed=seed),
    "blobs": lambda n, seed: data.make_blobs(n, centers=3, seed=seed),
    "spiral": lambda n, seed: data.make_spiral(n, n_classes=3, seed=seed),
    "xor": lambda n, seed: data.make_xor(n, seed=seed),
    "digits": lambda n, seed: _first_digits(n),
}
"""Each data set by name, as a function of (number of samples, seed)."""

DEFAULT_SAMPLES = {"digits": 1797}
"""--samples when it is not given: all of digits, else 100."""

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
    try:
        return args.run(args)
    except KeyboardInterrupt:
        # 130 = 128 + SIGINT, what a shell reports for a program stopped by Ctrl-C. Every file
        # is renamed into place only once complete, so there is nothing to clean up.
        print("\ninterrupted (Ctrl-C): stopped, no file left half-written", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The parser of `python -m nn`: one subcommand, `train`."""
    parser = argparse.ArgumentParser(
        prog="python -m nn", description="Train small neural networks built on autograd_core."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train_parser = commands.add_parser(
        "train",
        help="train an MLP on a data set, test it, and save the model and its plots",
        description="Train an MLP on part of a data set and test it on the rest; write "
        "DIR/model.json, DIR/loss.png and, for 2-D data, DIR/boundary.png.",
    )
    train_parser.set_defaults(run=lambda args: train(args, train_parser))
    _add_data_arguments(train_parser)
    _add_model_arguments(train_parser)
    _add_training_arguments(train_parser)
    return parser


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--dataset",
        choices=[*DATASETS, "names"],
        default="moons",
        help="the data set; names trains a GPT on first names (default: %(default)s)",
    )
    add(
        "--samples",
        type=_whole_number,
        help="data set size (default: 100; all 1797 for digits, of which it takes the first; "
        "800 names drawn at random)",
    )
    add(
        "--test-size",
        type=_fraction,
        default=0.25,
        help="share of the samples held out to test the model, stratified by class "
        "(default: %(default)s)",
    )
    add("--seed", type=int, default=0, help="seeds data, split, weights, batches (default: 0)")
    add("--out", default="out", metavar="DIR", help="where the files go (default: %(default)s)")


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
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


def _add_training_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--optimizer", choices=OPTIMIZERS, default="adam", help="(default: %(default)s)")
    default_rates = ", ".join(f"{name} {lr}" for name, (_, lr) in OPTIMIZERS.items())
    add("--lr", type=_positive_number, help=f"learning rate (default: {default_rates})")
    add(
        "--momentum",
        type=_momentum,
        default=0.0,
        help="momentum of sgd or rmsprop (default: %(default)s)",
    )
    add("--l2", type=_non_negative_number, default=0.0, help="L2 penalty (default: %(default)s)")
    add("--epochs", type=_whole_number, help="passes over the data (default: 100; 2 for names)")
    add(
        "--batch-size",
        type=_whole_number,
        help="samples per step: 1 is stochastic, the data set size is full-batch "
        "(default: 16; 4 for names)",
    )
    add(
        "--jit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run each batch as one traced program on NumPy arrays: the eager engine's "
        "numbers, many times faster (default: on; --no-jit builds a graph per sample)",
    )


class Setup(NamedTuple):
    """Everything `fit` needs, built from the arguments before training starts."""

    X_train: list[Any]
    X_test: list[Any]
    y_train: list[int]
    y_test: list[int]
    loss: str
    model: MLP
    optimizer: optim.Optimizer


def train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """The `train` command: check --out, build the run, `fit`, report, then write the files."""
    language = args.dataset == "names"
    args.epochs = args.epochs or (2 if language else 100)
    args.batch_size = args.batch_size or (4 if language else 16)
    if language:
        return _train_language(args, parser)
    names = ["model.json", "loss.png"] + ([] if args.dataset == "digits" else ["boundary.png"])
    _check_out(args.out, names, parser)
    setup = _setup(args, parser)
    _describe(args, setup)
    try:
        with _Progress(args.epochs) as progress:
            history = fit(
                setup.model,
                setup.X_train,
                setup.y_train,
                loss=setup.loss,
                optimizer=setup.optimizer,
                epochs=args.epochs,
                batch_size=args.batch_size,
                l2=args.l2,
                seed=args.seed,
                jit=args.jit,
                validation_data=(setup.X_test, setup.y_test),
                progress=False,
                callbacks=[progress],
            )
    except FloatingPointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    # The training loss is the last epoch's mean over its steps; the test loss and both
    # accuracies are the trained model's.
    train_accuracy = accuracy(setup.model, setup.X_train, setup.y_train, loss=setup.loss)
    print(
        f"final loss: training {history.loss[-1]:.4f}, test {history.val_loss[-1]:.4f}; "
        f"accuracy: training {100.0 * train_accuracy:.1f}%, "
        f"test {100.0 * history.val_accuracy[-1]:.1f}%"
    )
    writers = _writers(setup, history)
    paths = _write_all(args.out, {name: writers[name] for name in names})
    print("wrote " + ", ".join(paths))
    return 0


class _Progress:
    """The command's progress bar, a `fit` callback: it names the held-out figures "test", as the
    summary printed at the end does (`fit`'s own bar says `val_loss`). It appears once the first
    epoch is done, so a run refused or interrupted before that leaves no bar behind."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.bar: tqdm | None = None

    def __enter__(self) -> _Progress:
        return self

    def __call__(self, epoch: int, model: Any, history: History) -> None:
        if self.bar is None:
            self.bar = tqdm(total=self.epochs, desc="train", unit="epoch")
        figures = {name.replace("val_", "test_"): value for name, value in history.latest().items()}
        self.bar.set_postfix(figures, refresh=False)
        self.bar.update()

    def __exit__(self, *exception: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _train_language(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """`train --dataset names`: a GPT learns to spell names, then writes new ones."""
    _check_out(args.out, ["model.json", "loss.png"], parser)
    X, Y = data.names_dataset(16)
    n_samples = args.samples or 800
    if not 2 <= n_samples <= len(X):
        parser.error(f"argument --samples: names has {len(X)} samples, got {n_samples}")
    chosen = random.Random(args.seed).sample(range(len(X)), n_samples)
    try:
        X_train, X_test, Y_train, Y_test = data.train_test_split(
            [X[i] for i in chosen], [Y[i] for i in chosen], args.test_size, False, args.seed
        )
    except ValueError as error:
        parser.error(f"argument --test-size: cannot split {n_samples} names: {error}")
    model = GPT(len(data.names_tokenizer().vocab), seed=args.seed)
    optimizer_class, default_lr = OPTIMIZERS[args.optimizer]
    options: dict[str, Any] = {"lr": args.lr or (0.01 if args.optimizer == "adam" else default_lr)}
    if args.optimizer == "adam":
        options["betas"] = (0.85, 0.99)  # microgpt's
    elif args.momentum:
        options["momentum"] = args.momentum
    optimizer = optimizer_class(model.parameters(), **options)
    print(f"data: names, {n_samples} names ({len(X_train)} training, {len(X_test)} test)")
    print(f"model: {model!r}, {len(model.parameters())} parameters")
    print(
        f"training: cross_entropy per position, {optimizer!r}, {args.epochs} epochs, "
        f"batch size {args.batch_size}"
    )
    try:
        with _Progress(args.epochs) as progress:
            history = fit(
                model, X_train, Y_train, loss="cross_entropy", optimizer=optimizer,
                epochs=args.epochs, batch_size=args.batch_size, l2=args.l2, seed=args.seed,
                validation_data=(X_test, Y_test), progress=False, callbacks=[progress],
                jit=args.jit,
            )  # fmt: skip
    except FloatingPointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"final loss: training {history.loss[-1]:.4f}, test {history.val_loss[-1]:.4f} "
        f"(perplexity {history.val_perplexity[-1]:.2f} of {model.vocab_size} tokens)"
    )
    print("sampled names: " + ", ".join(generate(model, 10, seed=args.seed)))
    writers = {
        "model.json": lambda path: save(model, path),
        "loss.png": lambda path: _save_figure(
            lambda ax: plot.history(history, ax=ax, held_out="test"), path
        ),
    }
    print("wrote " + ", ".join(_write_all(args.out, writers)))
    return 0


def _setup(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Setup:
    """Data, held-out split, loss, model and optimizer; a usage error for what does not fit."""
    n_samples = args.samples or DEFAULT_SAMPLES.get(args.dataset, 100)
    _check_memory(args.dataset, n_samples, args.hidden, args.seed, parser)
    try:
        X, y = DATASETS[args.dataset](n_samples, args.seed)
    except ValueError as error:
        parser.error(f"argument --samples: {error}")
    try:
        X_train, X_test, y_train, y_test = data.train_test_split(
            X, y, test_size=args.test_size, seed=args.seed
        )
    except ValueError as error:
        parser.error(f"argument --test-size: cannot split {len(X)} samples: {error}")
    n_classes = max(y) + 1
    loss = args.loss or ("bce" if n_classes == 2 else "cross_entropy")
    if loss in BINARY_LOSSES and n_classes != 2:
        parser.error(
            f"argument --loss: {loss} is for two classes and {args.dataset} has {n_classes}; "
            "use cross_entropy or mse"
        )
    # One score per sample for the binary losses (and mse on two classes), else one per class.
    n_outputs = 1 if _one_output(loss, n_classes) else n_classes
    model = MLP(len(X[0]), [*args.hidden, n_outputs], args.activation, args.seed)

    optimizer_class, default_lr = OPTIMIZERS[args.optimizer]
    options = {"lr": default_lr if args.lr is None else args.lr}
    if args.momentum:
        if args.optimizer == "adam":
            parser.error("argument --momentum: adam takes no momentum (its beta1 plays that part)")
        options["momentum"] = args.momentum
    optimizer = optimizer_class(model.parameters(), **options)
    return Setup(X_train, X_test, y_train, y_test, loss, model, optimizer)


BYTES_PER_NUMBER = 200
"""Memory per number of the data set: a Python float in a list, the training and test lists,
and the arrays `fit` makes of them (about 150 bytes measured, with room)."""
BYTES_PER_PARAMETER = 400
"""Memory per weight: its Value, its float, the optimizer's state and the training arrays
(about 290 bytes measured with Adam, with room)."""


def _check_memory(
    dataset: str, n_samples: int, hidden: list[int], seed: int, parser: argparse.ArgumentParser
) -> None:
    """Refuse, before anything is made, a run that needs more memory than the machine has:
    it would otherwise work for minutes, then die with a MemoryError."""
    available = _physical_memory()
    if available is None:
        return
    X, _ = DATASETS[dataset](12, seed)  # a small draw, for the width of a sample
    n_features, n_outputs = len(X[0]), 10  # at most 10 classes
    sizes = [n_features, *hidden, n_outputs]
    n_parameters = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    held = min(n_samples, DEFAULT_SAMPLES.get(dataset, n_samples))  # digits has no more
    data_bytes = held * (n_features + 1) * BYTES_PER_NUMBER
    model_bytes = n_parameters * BYTES_PER_PARAMETER
    if data_bytes + model_bytes <= available:
        return
    argument = "--samples" if data_bytes >= model_bytes else "--hidden"
    parser.error(
        f"argument {argument}: {n_samples} samples and hidden layers {hidden} "
        f"({n_parameters:,} weights) need about {_size(data_bytes + model_bytes)} of memory; "
        f"this machine has {_size(available)}"
    )


def _physical_memory() -> int | None:
    """The machine's memory in bytes (POSIX); None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # Windows has no sysconf
        return None


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:,.1f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:,.0f} MB"


def _describe(args: argparse.Namespace, setup: Setup) -> None:
    n_train, n_test = len(setup.X_train), len(setup.X_test)
    n_classes = max(setup.y_train + setup.y_test) + 1
    print(
        f"data: {args.dataset}, {n_train + n_test} samples ({n_train} training, {n_test} test), "
        f"{n_classes} classes"
    )
    print(f"model: {setup.model!r}")
    print(
        f"training: {setup.loss} loss, {setup.optimizer!r}, {args.epochs} epochs, "
        f"batch size {args.batch_size}{', jit' if args.jit else ''}"
    )


def _one_output(loss: str, n_classes: int) -> bool:
    return loss in BINARY_LOSSES or (loss == "mse" and n_classes == 2)


def _first_digits(n: int) -> data.Dataset:
    """The first n of scikit-learn's 1797 digits (the file cycles through the ten classes)."""
    X, y = data.load_digits()
    if n > len(X):
        raise ValueError(f"digits has {len(X)} samples, got {n}")
    return X[:n], y[:n]


# -- output files --------------------------------------------------------------------------------


def _check_out(out: str, names: list[str], parser: argparse.ArgumentParser) -> None:
    """Refuse, before any training, an --out the files cannot be written to.

    The directory (or, if it does not exist yet, the nearest existing one above it, where it
    will be created) must be a directory we can create files in, and none of the file names
    may be taken by something other than a regular file (a directory called loss.png, say).
    """
    if not out:
        parser.error("argument --out: expected a directory name, got an empty one (. is here)")
    existing = os.path.abspath(out)
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        parser.error(f"argument --out: {existing} is not a directory")
    try:
        # Creating a file is the only test that holds for every kind of refusal: permissions,
        # a read-only file system, or access rules that os.access does not see (or root).
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        parser.error(f"argument --out: cannot write in {existing}: {error.strerror}")
    for name in names:
        path = os.path.join(out, name)
        if os.path.lexists(path) and not os.path.isfile(path):
            parser.error(f"argument --out: {path} exists and is not a file; move it away")


def _writers(setup: Setup, history: History) -> dict[str, Callable[[str], None]]:
    """For each output file, the function that writes it to a given path."""
    # An mse model on 0/1 labels means class 1 above 0.5, as `fit` counts its accuracy.
    n_outputs = setup.model.nouts[-1]
    threshold = 0.5 if setup.loss == "mse" and n_outputs == 1 else 0.0
    X = setup.X_train + setup.X_test
    y = setup.y_train + setup.y_test
    return {
        "model.json": lambda path: save(setup.model, path),
        "loss.png": lambda path: _save_figure(
            lambda ax: plot.history(history, ax=ax, held_out="test"), path
        ),
        "boundary.png": lambda path: _save_figure(
            lambda ax: plot.decision_boundary(setup.model, X, y, ax=ax, threshold=threshold),
            path,
        ),
    }


def _write_all(out: str, writers: dict[str, Callable[[str], None]]) -> list[str]:
    """Write every file under a temporary name in `out`, then rename each into place.

    `os.replace` is atomic, so whatever stops the run (an error, Ctrl-C) leaves each file
    complete or absent, and an existing file is replaced only by a complete new one.
    """
    os.makedirs(out, exist_ok=True)
    staged: list[tuple[str, str]] = []
    try:
        for name, write in writers.items():
            path = os.path.join(out, name)
            staged.append((os.path.join(out, f".{name}.{secrets.token_hex(4)}.tmp"), path))
            write(staged[-1][0])
        for temporary, path in staged:
            os.replace(temporary, path)
    finally:
        for temporary, _ in staged:
            if os.path.exists(temporary):
                os.unlink(temporary)
    return [path for _, path in staged]


def _save_figure(draw: Callable[[Axes], Axes], path: str) -> None:
    # A bare Figure, not pyplot: no GUI backend is started and nothing is left open.
    figure = Figure(figsize=(6.4, 4.8), layout="constrained")
    draw(figure.subplots())
    figure.savefig(path, format="png", dpi=100)


# -- argument types ------------------------------------------------------------------------------


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


def _momentum(text: str) -> float:
    # A momentum of 1 or more keeps every past step at full weight or more: the steps grow
    # without bound and the loss overflows.
    value = _number(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 and < 1, got {text!r}")
    return value


def _fraction(text: str) -> float:
    value = _number(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
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
