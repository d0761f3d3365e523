"""Data to train on: small 2-D data sets, real digits, a held-out split, and batching.

Every toy generator is pure Python, returns `(X, y)` with `X` a list of `[x0, x1]` points and
`y` a list of int class labels 0..k-1, and is reproducible: the same `seed` gives the same data.
The samples come shuffled, so any slice of them mixes the classes. `load_digits` gives real
data in the same form: scikit-learn's bundled 8x8 images of handwritten digits.

`load_names` gives text: 32,033 first names, with a character tokenizer (`CharTokenizer`,
`names_tokenizer`) and `names_dataset`, the names as next-character prediction per position.

`train_test_split` holds out part of the data, so that accuracy is measured on samples the
model never trained on. `batches` chooses the kind of gradient descent: the whole data set per
step (batch), one sample per step (stochastic), or k samples per step (mini-batch).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Hashable, Sequence
from importlib import resources
from typing import Any

from ._checks import is_integer, is_real

Seed = int | random.Random | None
Point = list[float]
Dataset = tuple[list[Point], list[int]]


def as_rng(seed: Seed) -> random.Random:
    """A random source: `seed` itself if it is a `random.Random`, else a new one seeded with it.

    Never the global `random` module, so results do not depend on what else drew from it.
    None seeds from the operating system (different every time).
    """
    return seed if isinstance(seed, random.Random) else random.Random(seed)


def make_moons(n_samples: int = 100, noise: float = 0.1, seed: Seed = None) -> Dataset:
    """Two interleaving half circles, as `sklearn.datasets.make_moons`.

    Class 0 is the upper moon (cos t, sin t) and class 1 the lower one (1 - cos t, 1/2 - sin t),
    for t evenly spaced in [0, pi]; then N(0, noise^2) is added to each coordinate.
    """
    _check_count("make_moons", "n_samples", n_samples, 2)
    _check_noise("make_moons", noise)
    n_upper = n_samples // 2
    n_lower = n_samples - n_upper
    points = [[math.cos(t), math.sin(t)] for t in _linspace(0.0, math.pi, n_upper)]
    points += [[1.0 - math.cos(t), 0.5 - math.sin(t)] for t in _linspace(0.0, math.pi, n_lower)]
    return _noisy_and_shuffled(points, [0] * n_upper + [1] * n_lower, noise, as_rng(seed))


def make_circles(
    n_samples: int = 100, noise: float = 0.05, factor: float = 0.5, seed: Seed = None
) -> Dataset:
    """A circle of radius 1 (class 0) around one of radius `factor` (class 1).

    As `sklearn.datasets.make_circles`: points evenly spaced in angle, then N(0, noise^2) added
    to each coordinate.
    """
    _check_count("make_circles", "n_samples", n_samples, 2)
    _check_noise("make_circles", noise)
    if not _is_finite_real(factor) or not 0.0 < factor < 1.0:
        raise ValueError(f"make_circles expected 0 < factor < 1, got {factor!r}")
    n_outer = n_samples // 2
    n_inner = n_samples - n_outer
    points = [
        [radius * math.cos(t), radius * math.sin(t)]
        for radius, n in ((1.0, n_outer), (factor, n_inner))
        for t in _linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    ]
    return _noisy_and_shuffled(points, [0] * n_outer + [1] * n_inner, noise, as_rng(seed))


def make_blobs(
    n_samples: int = 100,
    centers: int | Sequence[Sequence[float]] = 3,
    seed: Seed = None,
    cluster_std: float = 1.0,
    center_box: tuple[float, float] = (-10.0, 10.0),
) -> Dataset:
    """Gaussian blobs, one class per center, as `sklearn.datasets.make_blobs`.

    `centers` is a number of 2-D centers drawn uniformly from `center_box`, or the list of
    centers itself. Each class gets n_samples / k points (the first classes one more when it
    does not divide), each its center plus N(0, cluster_std^2) per coordinate.
    """
    rng = as_rng(seed)
    if is_integer(centers):
        _check_count("make_blobs", "centers", centers, 1)
        low, high = center_box
        centers = [[rng.uniform(low, high), rng.uniform(low, high)] for _ in range(centers)]
    elif not centers or not all(len(c) == len(centers[0]) for c in centers):
        raise ValueError(
            f"make_blobs expected centers to be an int >= 1 or a list of points of one "
            f"dimension, got {centers!r}"
        )
    k = len(centers)
    _check_count("make_blobs", "n_samples", n_samples, k)
    _check_noise("make_blobs", cluster_std, "cluster_std")
    labels = [c for c in range(k) for _ in range(_share(n_samples, k, c))]
    points = [[float(coordinate) for coordinate in centers[c]] for c in labels]
    return _noisy_and_shuffled(points, labels, cluster_std, rng)


def make_spiral(
    n_samples: int = 100, n_classes: int = 3, noise: float = 0.2, seed: Seed = None
) -> Dataset:
    """Interleaved spiral arms, one class per arm (the CS231n spiral).

    Arm j has points at radius r evenly spaced in [0, 1] and angle t = 4 j + 4 r, plus
    N(0, noise^2) on the angle: (r sin t, r cos t). Not linearly separable for n_classes >= 2.
    """
    _check_count("make_spiral", "n_classes", n_classes, 1)
    _check_count("make_spiral", "n_samples", n_samples, n_classes)
    _check_noise("make_spiral", noise)
    rng = as_rng(seed)
    points, labels = [], []
    for arm in range(n_classes):
        for r in _linspace(0.0, 1.0, _share(n_samples, n_classes, arm)):
            t = 4.0 * arm + 4.0 * r + rng.gauss(0.0, noise)
            points.append([r * math.sin(t), r * math.cos(t)])
            labels.append(arm)
    return _noisy_and_shuffled(points, labels, 0.0, rng)


def make_xor(n_samples: int = 100, noise: float = 0.2, seed: Seed = None) -> Dataset:
    """XOR: four clusters at (+-1, +-1); class 1 where the two coordinates differ in sign.

    No straight line separates the classes: the problem a single neuron cannot learn. Each point
    is its corner plus N(0, noise^2) per coordinate; the corners take turns, so each gets
    n_samples / 4 points.
    """
    _check_count("make_xor", "n_samples", n_samples, 4)
    _check_noise("make_xor", noise)
    corners = [(-1.0, -1.0), (1.0, 1.0), (-1.0, 1.0), (1.0, -1.0)]
    points = [list(corners[i % 4]) for i in range(n_samples)]
    labels = [0 if i % 4 < 2 else 1 for i in range(n_samples)]
    return _noisy_and_shuffled(points, labels, noise, as_rng(seed))


def load_digits() -> Dataset:
    """scikit-learn's bundled handwritten digits: 1797 images of 8x8 pixels, labels 0..9.

    Each sample is the image's 64 pixels row by row, scaled from the file's 0..16 grey levels
    to [0, 1] (pixel / 16), as plain floats; `y[i]` is the digit drawn. The images come in the
    order of the file (no download: the data ships inside scikit-learn), so split them with
    `train_test_split`, which shuffles. Needs the optional extra: `pip install -e ".[digits]"`.
    """
    try:
        # Imported here, not at the top: scikit-learn is optional and slow to import.
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError as error:
        raise ImportError(
            "load_digits needs scikit-learn, which is not installed: "
            'pip install -e ".[digits]" (or pip install scikit-learn)'
        ) from error
    digits = sklearn_load_digits()
    X = [[float(pixel) / 16.0 for pixel in image] for image in digits.data.tolist()]
    return X, [int(label) for label in digits.target.tolist()]


ONE_PIXEL = ((0, 1), (0, -1), (1, 0), (-1, 0))
"""The four moves of one pixel (down, right): right, left, down, up."""


def shift_image(image: Sequence[float], down: int, right: int, shape: tuple[int, int]) -> Point:
    """A flat image (its rows one after the other) moved `down` rows and `right` columns;
    the pixels that come in from outside are 0 and those pushed out are lost."""
    rows, columns = shape
    if len(image) != rows * columns:
        raise ValueError(
            f"shift_image expected {rows} x {columns} = {rows * columns} pixels, got {len(image)}"
        )
    return [
        float(image[(r - down) * columns + c - right])
        if 0 <= r - down < rows and 0 <= c - right < columns
        else 0.0
        for r in range(rows)
        for c in range(columns)
    ]


def shifted_copies(
    X: Sequence[Sequence[float]],
    y: Sequence[Any],
    shape: tuple[int, int] = (8, 8),
    moves: Sequence[tuple[int, int]] = ONE_PIXEL,
) -> tuple[list[Point], list[Any]]:
    """The images and, after them, a copy of every image for each (down, right) in `moves`,
    with the same labels: more training images for a network to learn that a digit moved a
    pixel is the same digit (data augmentation). Shift only the training images."""
    _check_samples("shifted_copies", X, y)
    images = [list(map(float, image)) for image in X]
    copies = [shift_image(image, down, right, shape) for down, right in moves for image in images]
    return images + copies, list(y) * (1 + len(moves))


# -- text: names, characters as tokens ---------------------------------------------------------

BOUNDARY = "."
"""The token that starts and ends every name, written as a dot (id 0), as in makemore."""

IGNORE = -1
"""The target of a position with nothing to predict (padding): `fit` leaves it out."""


def load_names() -> list[str]:
    """The 32,033 first names of makemore (lower case a-z, one per name), in the file's order.

    They ship inside the package (`nn/datasets/names.txt`, with the MIT licence notice of
    their source, `names.LICENSE`), so no download is needed.
    """
    text = resources.files("nn").joinpath("datasets/names.txt").read_text(encoding="utf-8")
    return text.split()


class CharTokenizer:
    """Characters as token ids: id 0 is the boundary token ".", then each character, sorted.

    `encode("emma")` is [5, 13, 13, 1] and `decode` undoes it (the boundary decodes to ".").
    A name is read as `[boundary, *encode(name), boundary]`: the first boundary says "a name
    starts", the last "it ends", so a model trained on them learns where names stop too.
    """

    def __init__(self, chars: str | Sequence[str]) -> None:
        characters = sorted(set(chars))
        if BOUNDARY in characters:
            raise ValueError(f"the characters may not include the boundary token {BOUNDARY!r}")
        if not characters or any(not isinstance(c, str) or len(c) != 1 for c in characters):
            raise ValueError(f"CharTokenizer expected single characters, got {chars!r}")
        self.vocab: list[str] = [BOUNDARY, *characters]
        self.boundary = 0
        self._ids = {c: i for i, c in enumerate(self.vocab)}

    def encode(self, text: str) -> list[int]:
        """The id of each character of `text`; a character not in the vocabulary is refused."""
        try:
            return [self._ids[c] for c in text]
        except KeyError as error:
            raise ValueError(
                f"cannot encode {text!r}: {error.args[0]!r} is not in the vocabulary"
            ) from None

    def decode(self, ids: Sequence[int]) -> str:
        """The characters of `ids`, the boundary written as "."."""
        n = len(self.vocab)
        for i in ids:
            if not is_integer(i) or not 0 <= i < n:
                raise ValueError(f"cannot decode {i!r}: expected a token id 0..{n - 1}")
        return "".join(self.vocab[i] for i in ids)

    def __repr__(self) -> str:
        return f"CharTokenizer({''.join(self.vocab[1:])!r})"


def names_tokenizer() -> CharTokenizer:
    """The tokenizer of `load_names()`: the boundary and a..z, 27 tokens."""
    return CharTokenizer("".join(load_names()))


def names_dataset(
    block_size: int = 16, names: Sequence[str] | None = None
) -> tuple[list[list[int]], list[list[int]]]:
    """Next-character prediction on the names: `(X, Y)`, one sample per name.

    A name is the ids [boundary, c_1, ..., c_n, boundary]; X holds its first `block_size` ids
    and Y, for each position, the id that follows it (Y[t] = ids[t + 1]), so the last target
    of "emma" is the boundary: the name ends there. A short name is padded to `block_size`
    with the boundary in X and `IGNORE` (-1) in Y, a position with nothing to predict that
    `fit` does not count. A name longer than block_size - 1 characters loses its end.
    `names` defaults to `load_names()`, in its order.
    """
    _check_count("names_dataset", "block_size", block_size, 1)
    tokenizer = names_tokenizer()
    X, Y = [], []
    for name in load_names() if names is None else names:
        ids = [tokenizer.boundary, *tokenizer.encode(name), tokenizer.boundary]
        inputs, targets = ids[:-1][:block_size], ids[1:][:block_size]
        padding = block_size - len(inputs)
        X.append(inputs + [tokenizer.boundary] * padding)
        Y.append(targets + [IGNORE] * padding)
    return X, Y


def train_test_split(
    X: Sequence[Any],
    y: Sequence[Any],
    test_size: float = 0.25,
    stratify: bool = True,
    seed: Seed = 0,
) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """Hold out part of (X, y) for testing: `(X_train, X_test, y_train, y_test)`.

    The order of `sklearn.model_selection.train_test_split`. `test_size` is the fraction held
    out, 0 < test_size < 1, with n_test = ceil(test_size * n) samples; or an int, the number
    of samples itself. Every sample lands in exactly one part, with its own label.

    `stratify=True` keeps each class's share in both parts: class c, with n_c of the n
    samples, gets n_c * n_test / n of the test samples, rounded down, and the samples left
    over go to the classes with the largest remainders, so the counts add up to n_test. It
    needs class labels (hashable) and at least 2 samples of each class, one for each part.
    `stratify=False` draws the test samples at random whatever the labels (regression).

    Which samples are held out, and the order of each part (shuffled), come from `seed`.
    """
    _check_samples("train_test_split", X, y)
    n_test = _test_count(test_size, len(X))
    if not isinstance(stratify, bool):
        raise ValueError(
            f"train_test_split expected stratify to be True or False, got {stratify!r}"
        )
    rng = as_rng(seed)
    if stratify:
        test = _stratified_test_indices(y, n_test, rng)
    else:
        test = set(rng.sample(range(len(X)), n_test))
    train_order = [i for i in range(len(X)) if i not in test]
    test_order = sorted(test)
    rng.shuffle(train_order)
    rng.shuffle(test_order)
    return (
        [X[i] for i in train_order],
        [X[i] for i in test_order],
        [y[i] for i in train_order],
        [y[i] for i in test_order],
    )


def _test_count(test_size: Any, n: int) -> int:
    """How many of the n samples `test_size` (a fraction or a count) holds out."""
    expected = f"a fraction 0 < test_size < 1 or a count 1 <= test_size < {n}"
    if is_integer(test_size):
        n_test = int(test_size)
    elif is_real(test_size) and 0.0 < test_size < 1.0:
        # round() first: 0.07 * 100 is 7.000000000000001 in binary, which must hold out 7, not 8.
        n_test = math.ceil(round(test_size * n, 9))
    else:
        raise ValueError(f"train_test_split expected {expected}, got test_size={test_size!r}")
    if not 1 <= n_test < n:
        raise ValueError(
            f"train_test_split expected {expected}, got test_size={test_size!r}, which holds "
            f"out {n_test} of the {n} samples: each part needs at least one"
        )
    return n_test


def _stratified_test_indices(y: Sequence[Any], n_test: int, rng: random.Random) -> set[int]:
    """n_test indices, each class's share of them in proportion to its size (see above)."""
    members: dict[Hashable, list[int]] = {}
    for i, label in enumerate(y):
        if not isinstance(label, Hashable):
            raise TypeError(
                f"train_test_split with stratify=True needs class labels, got "
                f"{type(label).__name__} {label!r} for sample {i}; pass stratify=False"
            )
        members.setdefault(label, []).append(i)
    for label, indices in members.items():
        if len(indices) < 2:
            raise ValueError(
                f"train_test_split with stratify=True needs at least 2 samples of each class, "
                f"class {label!r} has 1 (sample {indices[0]}); for regression targets pass "
                "stratify=False"
            )
    n = len(y)
    # Exact integer shares: class c gets floor(n_c * n_test / n), plus one of the samples left
    # over if its remainder is among the largest (ties to the class seen first).
    shares = Counter({label: len(indices) * n_test // n for label, indices in members.items()})
    remainders = sorted(members, key=lambda label: -(len(members[label]) * n_test % n))
    for label in remainders[: n_test - sum(shares.values())]:
        shares[label] += 1
    return {i for label, indices in members.items() for i in rng.sample(indices, shares[label])}


def batches(
    X: Sequence[Any],
    y: Sequence[Any],
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: Seed = None,
) -> list[tuple[list[Any], list[Any]]]:
    """One epoch of `(X_batch, y_batch)` pairs; every sample is in exactly one batch.

    `batch_size=None` gives one batch of everything (batch gradient descent), `1` one sample
    per batch (stochastic gradient descent), `k` batches of k (mini-batch; the last one holds
    what is left). `shuffle` visits the samples in a random order drawn from `seed`: pass one
    `random.Random` to draw a new order each epoch, reproducibly.
    """
    _check_samples("batches", X, y)
    if batch_size is None:
        batch_size = len(X)
    _check_count("batches", "batch_size", batch_size, 1)
    order = list(range(len(X)))
    if shuffle:
        as_rng(seed).shuffle(order)
    return [
        ([X[i] for i in chunk], [y[i] for i in chunk])
        for chunk in (order[start : start + batch_size] for start in range(0, len(X), batch_size))
    ]


def _linspace(start: float, stop: float, n: int, endpoint: bool = True) -> list[float]:
    """n evenly spaced numbers from start to stop (stop included if `endpoint`), as NumPy's."""
    steps = (n - 1 if endpoint else n) or 1
    return [start + (stop - start) * i / steps for i in range(n)]


def _share(n_samples: int, k: int, index: int) -> int:
    """How many of n_samples the class `index` of k gets: equal parts, the first ones +1."""
    return n_samples // k + (1 if index < n_samples % k else 0)


def _noisy_and_shuffled(
    points: list[Point], labels: list[int], noise: float, rng: random.Random
) -> Dataset:
    X = [[coordinate + rng.gauss(0.0, noise) for coordinate in p] for p in points]
    order = list(range(len(X)))
    rng.shuffle(order)
    return [X[i] for i in order], [labels[i] for i in order]


def _is_finite_real(x: Any) -> bool:
    return is_real(x) and math.isfinite(x)


def _check_count(function: str, name: str, n: Any, minimum: int) -> None:
    if not is_integer(n) or n < minimum:
        raise ValueError(f"{function} expected {name} to be an int >= {minimum}, got {n!r}")


def _check_samples(function: str, X: Sequence[Any], y: Sequence[Any]) -> None:
    if len(X) != len(y):
        raise ValueError(
            f"{function} expected as many labels as samples, got {len(X)} and {len(y)}"
        )
    if len(X) == 0:
        raise ValueError(f"{function} expected at least one sample, got none")


def _check_noise(function: str, noise: Any, name: str = "noise") -> None:
    if not _is_finite_real(noise) or noise < 0.0:
        raise ValueError(f"{function} expected {name} to be a finite number >= 0, got {noise!r}")
