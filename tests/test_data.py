"""nn.data: the toy data sets (shape, geometry, seeding), digits, the held-out split, batching."""

import math
import random
import re
import sys
from collections import Counter

import pytest

from nn.data import (
    batches,
    load_digits,
    make_blobs,
    make_circles,
    make_moons,
    make_spiral,
    make_xor,
    shift_image,
    shifted_copies,
    train_test_split,
)

GENERATORS = {
    "moons": (make_moons, 2),
    "circles": (make_circles, 2),
    "blobs": (make_blobs, 3),
    "spiral": (make_spiral, 3),
    "xor": (make_xor, 2),
}


# -- every generator ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", GENERATORS)
def test_a_data_set_is_lists_of_2d_float_points_and_int_labels(name):
    make, n_classes = GENERATORS[name]
    X, y = make(n_samples=61, seed=0)
    assert len(X) == len(y) == 61
    assert type(X) is list and all(type(p) is list and len(p) == 2 for p in X)
    assert all(type(c) is float and math.isfinite(c) for p in X for c in p)
    assert all(type(label) is int for label in y)
    assert set(y) == set(range(n_classes))
    counts = Counter(y).values()
    assert max(counts) - min(counts) <= 1  # balanced classes


@pytest.mark.parametrize("name", GENERATORS)
def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(name):
    make, _ = GENERATORS[name]
    assert make(n_samples=40, seed=7) == make(n_samples=40, seed=7)
    assert make(n_samples=40, seed=7) != make(n_samples=40, seed=8)


@pytest.mark.parametrize("name", GENERATORS)
def test_generators_leave_the_global_random_state_alone(name):
    make, _ = GENERATORS[name]
    state = random.getstate()
    make(n_samples=20, seed=1)
    make(n_samples=20)
    assert random.getstate() == state


@pytest.mark.parametrize("name", GENERATORS)
def test_samples_come_shuffled(name):
    make, _ = GENERATORS[name]
    _, y = make(n_samples=60, seed=0)
    assert y != sorted(y)


# -- geometry, without noise ------------------------------------------------------------------


def test_moons_lie_on_two_half_circles():
    X, y = make_moons(50, noise=0.0, seed=0)
    for (x0, x1), label in zip(X, y, strict=True):
        center = (0.0, 0.0) if label == 0 else (1.0, 0.5)
        assert math.dist((x0, x1), center) == pytest.approx(1.0)
        assert (x1 >= -1e-12) if label == 0 else (x1 <= 0.5 + 1e-12)


def test_circles_have_radius_one_and_factor():
    X, y = make_circles(40, noise=0.0, factor=0.3, seed=0)
    for point, label in zip(X, y, strict=True):
        assert math.hypot(*point) == pytest.approx(1.0 if label == 0 else 0.3)


def test_blobs_gather_around_the_given_centers():
    centers = [[0.0, 0.0], [10.0, 10.0], [-10.0, 5.0]]
    X, y = make_blobs(300, centers=centers, cluster_std=0.5, seed=0)
    for c, center in enumerate(centers):
        members = [p for p, label in zip(X, y, strict=True) if label == c]
        mean = [sum(coordinates) / len(members) for coordinates in zip(*members, strict=True)]
        assert math.dist(mean, center) < 0.3


def test_blobs_with_a_number_of_centers_draw_them_from_the_box():
    X, _ = make_blobs(90, centers=4, cluster_std=0.0, center_box=(-1.0, 1.0), seed=0)
    assert len({tuple(p) for p in X}) == 4
    assert all(-1.0 <= c <= 1.0 for p in X for c in p)


def test_spiral_arms_start_at_the_center_and_reach_radius_one():
    X, y = make_spiral(90, n_classes=3, noise=0.0, seed=0)
    radii = [math.hypot(*p) for p in X]
    assert min(radii) == 0.0 and max(radii) == pytest.approx(1.0)
    assert set(y) == {0, 1, 2}


def test_xor_labels_are_one_where_the_coordinates_differ_in_sign():
    X, y = make_xor(100, noise=0.1, seed=0)
    assert all(label == int(x0 * x1 < 0) for (x0, x1), label in zip(X, y, strict=True))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: make_moons(1), "make_moons expected n_samples to be an int >= 2, got 1"),
        (lambda: make_moons(10, noise=-0.1), "noise to be a finite number >= 0, got -0.1"),
        (lambda: make_moons(10.5), "got 10.5"),
        (lambda: make_circles(10, factor=1.0), "0 < factor < 1, got 1.0"),
        (lambda: make_blobs(10, centers=0), "centers to be an int >= 1, got 0"),
        (lambda: make_blobs(10, centers=[]), "centers to be an int >= 1 or a list of points"),
        (lambda: make_blobs(2, centers=3), "n_samples to be an int >= 3, got 2"),
        (lambda: make_spiral(10, n_classes=0), "n_classes to be an int >= 1, got 0"),
        (lambda: make_spiral(10, noise=float("nan")), "got nan"),
        (lambda: make_xor(3), "make_xor expected n_samples to be an int >= 4, got 3"),
    ],
)
def test_bad_generator_arguments_say_what_was_expected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# -- batches ----------------------------------------------------------------------------------

X10 = [[float(i), -float(i)] for i in range(10)]
Y10 = list(range(10))


def _sizes(epoch):
    return [len(X_batch) for X_batch, _ in epoch]


def test_no_batch_size_is_one_batch_of_everything():
    assert _sizes(batches(X10, Y10)) == [10]


def test_batch_size_one_is_stochastic():
    assert _sizes(batches(X10, Y10, batch_size=1, seed=0)) == [1] * 10


def test_batch_size_k_gives_batches_of_k_and_the_rest():
    assert _sizes(batches(X10, Y10, batch_size=4, seed=0)) == [4, 4, 2]
    assert _sizes(batches(X10, Y10, batch_size=50, seed=0)) == [10]


@pytest.mark.parametrize("batch_size", [None, 1, 3, 10])
def test_every_sample_is_in_exactly_one_batch_with_its_own_label(batch_size):
    epoch = batches(X10, Y10, batch_size=batch_size, seed=0)
    pairs = [
        (tuple(x), label)
        for X_batch, y_batch in epoch
        for x, label in zip(X_batch, y_batch, strict=True)
    ]
    assert sorted(pairs) == sorted((tuple(x), label) for x, label in zip(X10, Y10, strict=True))


def test_shuffle_is_reproducible_with_a_seed():
    assert batches(X10, Y10, batch_size=3, seed=5) == batches(X10, Y10, batch_size=3, seed=5)
    assert batches(X10, Y10, batch_size=3, seed=5) != batches(X10, Y10, batch_size=3, seed=6)


def test_a_shared_random_source_draws_a_new_order_each_epoch():
    rng = random.Random(0)
    first, second = (batches(X10, Y10, batch_size=2, seed=rng) for _ in range(2))
    assert first != second


def test_without_shuffle_the_order_is_kept():
    epoch = batches(X10, Y10, batch_size=4, shuffle=False)
    assert [label for _, y_batch in epoch for label in y_batch] == Y10


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: batches(X10, Y10[:9]), "as many labels as samples, got 10 and 9"),
        (lambda: batches([], []), "at least one sample"),
        (lambda: batches(X10, Y10, batch_size=0), "batch_size to be an int >= 1, got 0"),
        (lambda: batches(X10, Y10, batch_size=2.0), "batch_size to be an int >= 1, got 2.0"),
    ],
)
def test_bad_batch_arguments_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- train_test_split ---------------------------------------------------------------------------

X100 = [[float(i), float(i % 7)] for i in range(100)]
Y100 = [0] * 50 + [1] * 30 + [2] * 20  # unbalanced, and in blocks: a split must mix them


def _pairs(X, y):
    return sorted((tuple(x), label) for x, label in zip(X, y, strict=True))


@pytest.mark.parametrize("stratify", [True, False])
def test_split_puts_every_sample_in_exactly_one_part_with_its_own_label(stratify):
    X_train, X_test, y_train, y_test = train_test_split(X100, Y100, stratify=stratify, seed=3)
    assert (len(X_train), len(X_test)) == (75, 25)
    assert _pairs(X_train + X_test, y_train + y_test) == _pairs(X100, Y100)


def test_stratified_split_gives_each_class_its_share_largest_remainder_first():
    # Exact shares 12.5, 7.5, 5: floors 12 + 7 + 5 = 24; the 25th goes to the first of the
    # classes tied on the largest remainder (class 0).
    _, _, y_train, y_test = train_test_split(X100, Y100, test_size=0.25, seed=0)
    assert Counter(y_test) == {0: 13, 1: 7, 2: 5}
    assert Counter(y_train) == {0: 37, 1: 23, 2: 15}


def test_stratified_split_of_digits_keeps_every_class_within_one_sample_of_its_share():
    _, _, y_train, y_test = train_test_split(*load_digits(), test_size=0.25, seed=0)
    counts, test_counts = Counter(y_train + y_test), Counter(y_test)
    assert len(y_test) == math.ceil(0.25 * 1797)
    for label, n_c in counts.items():
        assert abs(test_counts[label] - n_c * len(y_test) / 1797) < 1.0


def test_unstratified_split_takes_any_labels_even_regression_targets():
    targets = [[0.5 * i, -float(i)] for i in range(100)]  # lists: not hashable, not classes
    X_train, X_test, y_train, y_test = train_test_split(X100, targets, stratify=False, seed=0)
    assert len(y_test) == 25
    assert sorted(y_train + y_test) == sorted(targets)
    assert all(y[0] == 0.5 * x[0] for x, y in zip(X_train, y_train, strict=True))


@pytest.mark.parametrize(
    ("test_size", "n_test"), [(0.25, 25), (0.1, 10), (0.333, 34), (0.99, 99), (1, 1), (40, 40)]
)
def test_test_size_is_a_fraction_rounded_up_or_a_count(test_size, n_test):
    _, X_test, _, _ = train_test_split(X100, Y100, test_size=test_size, stratify=False)
    assert len(X_test) == n_test


def test_a_fraction_is_not_rounded_up_by_binary_noise():
    assert 0.07 * 100 > 7  # 7.000000000000001
    _, X_test, _, _ = train_test_split(X100, Y100, test_size=0.07)
    assert len(X_test) == 7


def test_split_is_reproducible_with_a_seed_and_shuffles_both_parts():
    assert train_test_split(X100, Y100, seed=5) == train_test_split(X100, Y100, seed=5)
    assert train_test_split(X100, Y100, seed=5) != train_test_split(X100, Y100, seed=6)
    _, _, y_train, y_test = train_test_split(X100, Y100, seed=5)
    assert y_train != sorted(y_train) and y_test != sorted(y_test)


def test_split_leaves_the_global_random_state_and_its_inputs_alone():
    state = random.getstate()
    X, y = [list(x) for x in X100], list(Y100)
    train_test_split(X, y, seed=None)
    assert random.getstate() == state
    assert (X, y) == (X100, Y100)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: train_test_split(X100, Y100[:99]), ValueError, "got 100 and 99"),
        (lambda: train_test_split([], []), ValueError, "at least one sample"),
        (lambda: train_test_split(X100, Y100, test_size=0.0), ValueError, "test_size=0.0"),
        (lambda: train_test_split(X100, Y100, test_size=1.0), ValueError, "test_size=1.0"),
        (lambda: train_test_split(X100, Y100, test_size=-0.2), ValueError, "test_size=-0.2"),
        (lambda: train_test_split(X100, Y100, test_size=100), ValueError, "out 100 of the 100"),
        (lambda: train_test_split(X100, Y100, test_size="0.2"), ValueError, "test_size='0.2'"),
        (lambda: train_test_split(X100, Y100, test_size=True), ValueError, "test_size=True"),
        (lambda: train_test_split(X100, Y100, test_size=math.nan), ValueError, "test_size=nan"),
        (lambda: train_test_split(X100, Y100, stratify="yes"), ValueError, "True or False"),
        (
            lambda: train_test_split(X100, Y100[:99] + [3]),
            ValueError,
            "at least 2 samples of each class, class 3 has 1 (sample 99)",
        ),
        (
            lambda: train_test_split(X100, [[0.0]] * 100),
            TypeError,
            "needs class labels, got list [0.0] for sample 0; pass stratify=False",
        ),
    ],
)
def test_bad_split_arguments_are_refused_by_name(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()


# -- digits -------------------------------------------------------------------------------------


def test_digits_are_1797_images_of_64_pixels_in_0_1_with_labels_0_to_9():
    X, y = load_digits()
    assert len(X) == len(y) == 1797
    assert type(X) is list and all(type(x) is list and len(x) == 64 for x in X)
    assert all(type(pixel) is float and 0.0 <= pixel <= 1.0 for x in X for pixel in x)
    assert min(min(x) for x in X) == 0.0 and max(max(x) for x in X) == 1.0
    assert all(type(label) is int for label in y)
    assert set(y) == set(range(10))


def test_digits_are_scikit_learns_pixels_divided_by_16():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    X, y = load_digits()
    assert X == (digits.data / 16.0).tolist()
    assert y == digits.target.tolist()


def test_digits_without_scikit_learn_name_the_extra_to_install(monkeypatch):
    # None in sys.modules makes `import sklearn...` raise ImportError, as if it were absent.
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=re.escape('pip install -e ".[digits]"')):
        load_digits()


# -- shifted copies of images ------------------------------------------------------------------


def test_shift_image_moves_the_pixels_and_lets_zeros_in():
    image = [float(i) for i in range(1, 7)]  # 2 rows of 3: [1 2 3] [4 5 6]
    assert shift_image(image, 0, 1, (2, 3)) == [0.0, 1.0, 2.0, 0.0, 4.0, 5.0]
    assert shift_image(image, 0, -1, (2, 3)) == [2.0, 3.0, 0.0, 5.0, 6.0, 0.0]
    assert shift_image(image, 1, 0, (2, 3)) == [0.0, 0.0, 0.0, 1.0, 2.0, 3.0]
    assert shift_image(image, -1, 0, (2, 3)) == [4.0, 5.0, 6.0, 0.0, 0.0, 0.0]
    assert shift_image(image, 0, 0, (2, 3)) == image


def test_shifted_copies_follow_the_originals_with_their_labels():
    X = [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0]]  # two 2 x 2 images
    X_all, y_all = shifted_copies(X, [3, 7], shape=(2, 2), moves=[(0, 1), (1, 0)])
    assert X_all[:2] == X
    assert X_all[2:] == [
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0] * 4,
    ]
    assert y_all == [3, 7, 3, 7, 3, 7]
    assert len(shifted_copies(X, [3, 7], shape=(2, 2))[0]) == 2 * 5  # four one-pixel moves


def test_shift_image_refuses_an_image_of_another_size():
    with pytest.raises(ValueError, match="expected 8 x 8 = 64 pixels, got 63"):
        shift_image([0.0] * 63, 0, 1, (8, 8))
    with pytest.raises(ValueError, match="as many labels as samples, got 1 and 2"):
        shifted_copies([[0.0] * 64], [1, 2])
