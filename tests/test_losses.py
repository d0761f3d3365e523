"""nn.losses: each loss equals PyTorch's in value and gradient, stays finite at huge logits,
is a small graph with no data-dependent branch, and refuses labels the model cannot output."""

import math

import pytest

from autograd_core import Value, gradcheck, jit, topological_order
from nn import losses

LOGITS = [0.3, -1.7, 2.5, 0.0, -0.2]
BINARY_LABELS = [1, 0, 0, 1, 1]
EXTREME_LOGITS = [1000.0, -1000.0, 1000.0, -1000.0, 40.0]
EXTREME_LABELS = [1, 0, 0, 1, 0]
ROWS = [[0.2, -1.0, 3.0], [1.5, 1.5, -0.5], [-2.0, 0.0, 0.7], [0.1, 0.2, 0.3]]
CLASS_LABELS = [2, 0, 1, 1]
EXTREME_ROWS = [[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0], [5.0, -1000.0, 1000.0]]
EXTREME_CLASS_LABELS = [1, 2, 0]


def _values(numbers):
    return [Value(x) for x in numbers]


def _tensor(torch, numbers):
    return torch.tensor(numbers, dtype=torch.float64, requires_grad=True)


def _assert_same(ours, inputs, reference, reference_input):
    """Our loss Value and its gradients match PyTorch's loss and gradients."""
    ours.backward()
    reference.backward()
    assert ours.data == pytest.approx(reference.item(), rel=1e-12, abs=1e-15)
    flat = [v.grad for row in inputs for v in (row if isinstance(row, list) else [row])]
    assert flat == pytest.approx(reference_input.grad.flatten().tolist(), rel=1e-12, abs=1e-15)


# -- the same numbers as PyTorch --------------------------------------------------------------


def test_mse_equals_torch_mse_loss(torch):
    preds, targets = _values(LOGITS), [0.0, 1.0, -2.0, 0.5, 3.0]
    reference_input = _tensor(torch, LOGITS)
    reference = torch.nn.functional.mse_loss(
        reference_input, torch.tensor(targets, dtype=torch.float64)
    )
    _assert_same(losses.mse(preds, targets), preds, reference, reference_input)


def test_mse_of_several_outputs_averages_over_every_output(torch):
    rows = [_values(row) for row in ROWS]
    targets = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.5]]
    reference_input = _tensor(torch, ROWS)
    reference = torch.nn.functional.mse_loss(
        reference_input, torch.tensor(targets, dtype=torch.float64)
    )
    _assert_same(losses.mse(rows, targets), rows, reference, reference_input)


def test_hinge_equals_the_torch_expression_with_labels_mapped_to_plus_minus_one(torch):
    scores = _values(LOGITS)
    reference_input = _tensor(torch, LOGITS)
    signs = torch.tensor([2.0 * y - 1.0 for y in BINARY_LABELS], dtype=torch.float64)
    reference = torch.clamp(1.0 - signs * reference_input, min=0.0).mean()
    _assert_same(losses.hinge(scores, BINARY_LABELS), scores, reference, reference_input)


@pytest.mark.parametrize(
    ("logits", "labels"), [(LOGITS, BINARY_LABELS), (EXTREME_LOGITS, EXTREME_LABELS)]
)
def test_binary_cross_entropy_equals_torch_with_logits(torch, logits, labels):
    zs = _values(logits)
    reference_input = _tensor(torch, logits)
    reference = torch.nn.functional.binary_cross_entropy_with_logits(
        reference_input, torch.tensor(labels, dtype=torch.float64)
    )
    loss = losses.binary_cross_entropy(zs, labels)
    assert math.isfinite(loss.data)
    _assert_same(loss, zs, reference, reference_input)


def test_binary_cross_entropy_gradient_at_a_zero_logit_is_sigmoid_minus_label():
    for label, expected in ((0, 0.5), (1, -0.5)):
        z = Value(0.0)
        losses.binary_cross_entropy([z], [label]).backward()
        assert z.grad == expected


@pytest.mark.parametrize(
    ("rows", "labels"), [(ROWS, CLASS_LABELS), (EXTREME_ROWS, EXTREME_CLASS_LABELS)]
)
def test_cross_entropy_equals_torch_cross_entropy(torch, rows, labels):
    values = [_values(row) for row in rows]
    reference_input = _tensor(torch, rows)
    reference = torch.nn.functional.cross_entropy(reference_input, torch.tensor(labels))
    loss = losses.cross_entropy(values, labels)
    assert math.isfinite(loss.data)
    _assert_same(loss, values, reference, reference_input)


def test_l2_is_alpha_times_the_sum_of_squares(torch):
    params = _values(LOGITS)
    reference_input = _tensor(torch, LOGITS)
    reference = 1e-2 * (reference_input**2).sum()
    _assert_same(losses.l2(params, 1e-2), params, reference, reference_input)


# -- derivatives against finite differences (no torch needed) ---------------------------------


@pytest.mark.parametrize(
    "loss",
    [
        lambda *z: losses.mse(list(z), [0.0, 1.0, -2.0, 0.5, 3.0]),
        lambda *z: losses.hinge(list(z), BINARY_LABELS),
        lambda *z: losses.binary_cross_entropy(list(z), BINARY_LABELS),
        lambda *z: losses.cross_entropy([list(z[:3]), list(z[2:])], [0, 2]),
        lambda *z: losses.l2(list(z), 0.3),
    ],
    ids=["mse", "hinge", "bce", "cross_entropy", "l2"],
)
def test_loss_gradients_match_central_differences(loss):
    # The logits stay away from the kinks of relu and abs, where differences are one-sided.
    assert gradcheck(loss, 0.3, -1.7, 2.5, 0.4, -0.2)


# -- shape of the graph -----------------------------------------------------------------------


def _op_nodes(root):
    return [v for v in topological_order(root) if v.inputs]


def test_the_loss_is_the_batch_mean():
    one = losses.cross_entropy([_values(ROWS[0])], [2])
    twice = losses.cross_entropy([_values(ROWS[0]), _values(ROWS[0])], [2, 2])
    assert twice.data == pytest.approx(one.data, rel=1e-15)


@pytest.mark.parametrize(
    ("make", "per_sample"),
    [
        (lambda n: losses.hinge(_values([0.5] * n), [1] * n), 2),
        (lambda n: losses.binary_cross_entropy(_values([0.5] * n), [1] * n), 3),
        (lambda n: losses.mse(_values([0.5] * n), [1.0] * n), 1),
        # one logsumexp node per sample; the picked logits feed the batch dot directly
        (lambda n: losses.cross_entropy([_values([0.5, 1.0, 2.0]) for _ in range(n)], [1] * n), 1),
    ],
    ids=["hinge", "bce", "mse", "cross_entropy"],
)
def test_a_loss_adds_a_few_nodes_per_sample_and_two_for_the_batch(make, per_sample):
    assert len(_op_nodes(make(10))) == 10 * per_sample + 2


@pytest.mark.parametrize(
    ("loss", "traced_at", "replayed_at"),
    [
        (
            lambda a, b, c: losses.cross_entropy([[a, b, c]], [1]),
            (0.0, 1.0, 2.0),
            (1000.0, -1000.0, 3.0),
        ),
        (
            lambda a, b, c: losses.binary_cross_entropy([a, b, c], [1, 0, 1]),
            (1.0, 2.0, 3.0),
            (-1000.0, 1000.0, -2.0),
        ),
        (lambda a, b, c: losses.hinge([a, b, c], [1, 0, 1]), (2.0, -2.0, 3.0), (0.5, 0.5, -0.5)),
    ],
    ids=["cross_entropy", "bce", "hinge"],
)
def test_losses_have_no_data_dependent_branch_so_jit_replays_them_exactly(
    loss, traced_at, replayed_at
):
    traced = jit(loss)
    traced(*traced_at)
    args = [Value(x) for x in replayed_at]
    eager = loss(*args)
    eager.backward()
    value, grads = traced.value_and_grad(*replayed_at)
    assert value == pytest.approx(eager.data, rel=1e-14)
    assert list(grads) == pytest.approx([a.grad for a in args], rel=1e-14, abs=1e-300)


# -- labels and bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: losses.hinge(_values([0.1, 0.2]), [1, -1]),
            "label -1 of sample 1 .* expected 0 or 1",
        ),
        (lambda: losses.hinge(_values([0.1]), [2]), "label 2 of sample 0"),
        (lambda: losses.binary_cross_entropy(_values([0.1]), [0.5]), "label 0.5 of sample 0"),
        (lambda: losses.binary_cross_entropy(_values([0.1]), [float("nan")]), "label nan"),
        (
            lambda: losses.cross_entropy([_values(ROWS[0])], [3]),
            "label 3 of sample 0 is not a class this model can output: expected a class index 0..2",
        ),
        (lambda: losses.cross_entropy([_values(ROWS[0])], ["1"]), "label '1' of sample 0"),
    ],
)
def test_a_label_the_model_cannot_output_is_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_labels_may_be_integral_floats_or_numpy_integers():
    np = pytest.importorskip("numpy")
    by_int = losses.cross_entropy([_values(ROWS[0])], [2]).data
    assert losses.cross_entropy([_values(ROWS[0])], [2.0]).data == by_int
    assert losses.cross_entropy([_values(ROWS[0])], [np.int64(2)]).data == by_int


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: losses.mse(_values([1.0, 2.0]), [1.0]), "mse got 2 predictions and 1 targets"),
        (lambda: losses.hinge([], []), "at least one sample"),
        (lambda: losses.hinge([_values([0.1, 0.2])], [1]), "one score per sample .* list of 2"),
        (lambda: losses.cross_entropy([Value(0.1)], [0]), "expected a list of logits"),
        (lambda: losses.mse([_values([1.0, 2.0])], [[1.0]]), "target must be a list of 2"),
        (lambda: losses.l2(_values([1.0]), -0.1), "alpha to be a finite number >= 0, got -0.1"),
    ],
)
def test_malformed_batches_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
