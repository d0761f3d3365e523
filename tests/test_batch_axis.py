"""The batch axis: `batch_mean`, feeds and reports, and batch norm and dropout on the batched path.

`batch_mean` is checked on one sample (where it is the sample itself) and over a batch against
PyTorch and central differences; a batch norm traced as one sample and run over a batch
against `torch.nn.BatchNorm1d` (loss, parameter gradients, running estimates); and `fit` with
batch norm and dropout on the batched path against the eager path, step for step.
"""

import random

import numpy as np
import pytest
from helpers import assert_same_training, fit_both_ways

from autograd_core import Value, batch, batch_mean, batched, ir, jit, value_and_grad
from nn import optim
from nn.conv import Conv1d, Flatten, Unflatten
from nn.data import make_moons
from nn.modules import Activation, BatchNorm1d, Dropout, Layer, Module, Sequential
from nn.train import _traceable, fit, matrix_source

TOLERANCE = 1e-12


# -- batch_mean ------------------------------------------------------------------------------


def test_batch_mean_of_one_sample_is_that_sample_with_gradient_one():
    assert batch_mean(2.5) == 2.5
    value, gradient = value_and_grad(lambda x: batch_mean(x * x))(3.0)
    assert (value, gradient) == (9.0, 6.0)
    traced = jit(lambda x: batch_mean(x * x))
    assert traced.value_and_grad(3.0) == (9.0, 6.0)
    assert "batch_mean" in str(traced.program)


def centred(x, y):
    """A function of one sample that reads the whole batch: through means of x, x * y, and
    a mean of a mean (which is the mean itself)."""
    m = batch_mean(x)
    return (x - m).tanh() * y + batch_mean(x * y) ** 2 + batch_mean(batch_mean(y)) * x


def torch_centred(torch, X, Y):
    m = X.mean()
    return torch.tanh(X - m) * Y + (X * Y).mean() ** 2 + Y.mean() * X


def test_batched_batch_mean_is_the_mean_over_the_batch_with_pytorchs_gradient(torch):
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=7), rng.normal(size=7)
    values, (dx, dy) = jit(centred).batched(xs, ys)
    X = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    Y = torch.tensor(ys, dtype=torch.float64, requires_grad=True)
    out = torch_centred(torch, X, Y)
    out.sum().backward()  # the batched gradient is that of the sum over the samples
    np.testing.assert_allclose(values, out.detach().numpy(), rtol=TOLERANCE, atol=TOLERANCE)
    np.testing.assert_allclose(dx, X.grad.numpy(), rtol=TOLERANCE, atol=TOLERANCE)
    np.testing.assert_allclose(dy, Y.grad.numpy(), rtol=TOLERANCE, atol=TOLERANCE)


def test_batched_batch_mean_gradient_matches_central_differences():
    rng = np.random.default_rng(1)
    xs, ys = rng.normal(size=5), rng.normal(size=5)
    traced = jit(centred)
    _, (dx, dy) = traced.batched(xs, ys)
    h = 1e-6
    for grads, which in ((dx, 0), (dy, 1)):
        for i in range(5):
            up = [xs.copy(), ys.copy()]
            down = [xs.copy(), ys.copy()]
            up[which][i] += h
            down[which][i] -= h
            numeric = (traced.batched(*up)[0].sum() - traced.batched(*down)[0].sum()) / (2 * h)
            assert abs(grads[i] - numeric) < 1e-7, (which, i, grads[i], numeric)


def test_the_batch_mean_of_a_value_the_same_for_every_sample_is_that_value():
    f = jit(lambda x: x * batch_mean(Value(2.0) * Value(3.0)))  # a constant of the program
    values, gradients = f.batched(np.array([1.0, 2.0]))
    assert values.tolist() == [6.0, 12.0] and gradients.tolist() == [6.0, 6.0]


def test_a_batch_norm_of_an_output_that_reads_only_padding_trains_as_eagerly():
    # The convolution's outer windows read only zeros: those outputs are the bias alone, the
    # same for every sample, and the batch norm's mean of them is a value, not a column mean.
    def model():
        return Sequential(
            Unflatten(1, 2),
            Conv1d(1, 1, 2, padding=2, seed=0),
            Flatten(),
            BatchNorm1d(5),
            Layer(5, 1, "linear", seed=1),
        )

    X, y = make_moons(20, noise=0.1, seed=0)
    runs = fit_both_ways(model, X, y, loss="hinge", epochs=2, batch_size=10, seed=0)
    assert_same_training(runs)


def test_a_batch_trace_prints_its_fed_inputs_and_reported_outputs_apart():
    model = Sequential(Layer(2, 2, "linear", seed=0), BatchNorm1d(2), Dropout(0.5, seed=0))
    text = str(ir.trace(lambda *x: model(list(x)), 2, model.parameters(), batch=True))
    first, *body, last = text.splitlines()
    assert first == "{ lambda p0 p1 p2 p3 p4 p5 p6 p7 p8 p9 ; x0 x1 ; fed x2 x3 ."
    assert sum("batch_mean" in line for line in body) == 4  # a mean and a variance per feature
    assert last.startswith("  in (") and " ; reported " in last


def test_a_report_must_be_the_same_for_every_sample():
    def sample(x):
        batch.current().report([x * 2.0], lambda numbers, n: None)  # x differs per sample
        return x

    program = ir.trace(sample, 1, batch=True)
    with pytest.raises(ValueError, match="reported value must be the same for every sample"):
        batched.TrainingStep(program)


def test_feeds_are_asked_at_every_run_and_reports_given_after_it():
    supplied, received = [], []

    def supply(n):
        supplied.append(n)
        return np.arange(n, dtype=float).reshape(n, 1)

    def sample(x):
        axis = batch.current()
        (f,) = axis.feed(1, supply)
        axis.report([batch_mean(x * f)], lambda numbers, n: received.append((numbers.tolist(), n)))
        return x * f

    step = batched.TrainingStep(ir.trace(sample, 1, batch=True))
    X = np.array([[1.0], [2.0], [3.0]])
    loss, _, _ = step(np.zeros(0), X)
    assert supplied == [3]
    assert loss == pytest.approx((0.0 * 1 + 1.0 * 2 + 2.0 * 3) / 3, abs=TOLERANCE)
    assert received == [([pytest.approx(8.0 / 3, abs=TOLERANCE)], 3)]


def test_evaluate_gives_the_steps_loss_and_outputs_without_gradient_or_reports():
    bn = BatchNorm1d(3)
    step = traced_batch_norm(bn)
    X = np.random.default_rng(3).normal(size=(6, 3))
    theta = np.array(GAMMA + BETA)
    loss, outputs = step.evaluate(theta, X)
    assert bn.num_batches_tracked == 0  # no report given
    assert "dtheta" not in step._compiler.source(step._header, "loss", end=step._outputs_end)
    expected_loss, expected_outputs, _ = step(theta, X)
    assert bn.num_batches_tracked == 1
    assert loss == expected_loss
    np.testing.assert_array_equal(outputs, expected_outputs)


def test_outside_a_batch_trace_a_batch_norm_in_train_mode_still_needs_a_batch():
    bn = BatchNorm1d(2)
    assert batch.current() is None
    with pytest.raises(ValueError, match="train mode normalises over a batch"):
        bn([1.0, 2.0])


# -- batch norm traced as one sample, run over a batch, against PyTorch ----------------------

GAMMA, BETA, WEIGHTS = [1.5, -0.5, 2.0], [0.1, 0.2, -0.3], [1.0, -2.0, 0.5]


def traced_batch_norm(bn):
    """A TrainingStep whose per-sample loss is sum_j WEIGHTS[j] * tanh(bn(x)_j)."""

    def sample_loss(*x):
        return sum(w * y.tanh() for w, y in zip(WEIGHTS, bn(list(x)), strict=True))

    return batched.TrainingStep(ir.trace(sample_loss, 3, bn.parameters(), batch=True))


@pytest.mark.parametrize("momentum", [0.1, None])
def test_a_traced_batch_norm_equals_pytorchs_in_train_and_eval_mode(torch, momentum):
    ours = BatchNorm1d(3, momentum=momentum)
    theirs = torch.nn.BatchNorm1d(3, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(GAMMA, dtype=torch.float64))
        theirs.bias.copy_(torch.tensor(BETA, dtype=torch.float64))
    theta = np.array(GAMMA + BETA)
    train_step = traced_batch_norm(ours)
    ours.eval()
    eval_step = traced_batch_norm(ours)  # one trace: it reads the estimates at every run
    rng = np.random.default_rng(2)
    weights = torch.tensor(WEIGHTS, dtype=torch.float64)
    for size in (6, 5, 9):
        X = rng.normal(0.5, 2.0, size=(size, 3))
        for step, training in ((train_step, True), (eval_step, False)):
            theirs.train(training)
            theirs.zero_grad()
            loss_t = (torch.tanh(theirs(torch.tensor(X))) @ weights).mean()
            loss_t.backward()
            loss, _, dtheta = step(theta, X)
            assert loss == pytest.approx(loss_t.item(), rel=TOLERANCE, abs=TOLERANCE)
            expected = torch.cat([theirs.weight.grad, theirs.bias.grad]).numpy()
            np.testing.assert_allclose(dtheta, expected, rtol=TOLERANCE, atol=TOLERANCE)
            for estimate in ("running_mean", "running_var"):
                np.testing.assert_allclose(
                    getattr(ours, estimate),
                    getattr(theirs, estimate).numpy(),
                    rtol=TOLERANCE,
                    atol=TOLERANCE,
                )
    assert ours.num_batches_tracked == int(theirs.num_batches_tracked) == 3


def test_a_traced_batch_norm_refuses_a_batch_of_one_as_the_eager_one_does():
    bn = BatchNorm1d(3)
    step = traced_batch_norm(bn)
    with pytest.raises(ValueError, match="more than one sample per batch, got 1"):
        step(np.array(GAMMA + BETA), np.ones((1, 3)))
    assert bn.running_mean == [0.0] * 3 and bn.num_batches_tracked == 0


# -- fit: batch norm and dropout on the batched path, the eager numbers ----------------------


def regularised(seed=0):
    return Sequential(
        Layer(2, 8, "linear", seed=seed),
        BatchNorm1d(8),
        Activation("tanh"),
        Dropout(0.3, seed=seed + 1),
        Layer(8, 8, seed=seed + 2),
        Dropout(0.1, seed=seed + 3),
        BatchNorm1d(8, momentum=None),
        Layer(8, 1, "linear", seed=seed + 4),
    )


def train(model, jit, X, y, **options):
    return fit(
        model,
        X,
        y,
        loss="hinge",
        optimizer=optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        epochs=4,
        batch_size=10,
        seed=0,
        progress=False,
        jit=jit,
        **options,
    )


def assert_same_state(a, b):
    np.testing.assert_allclose(
        [p.data for p in a.parameters()], [p.data for p in b.parameters()], rtol=0, atol=1e-12
    )
    for m, n in zip(a.modules(), b.modules(), strict=True):
        if isinstance(m, BatchNorm1d):
            np.testing.assert_allclose(m.running_mean, n.running_mean, rtol=0, atol=1e-12)
            np.testing.assert_allclose(m.running_var, n.running_var, rtol=0, atol=1e-12)
            assert m.num_batches_tracked == n.num_batches_tracked
        if isinstance(m, Dropout):  # the same number of draws: the same next draw
            assert m._rng.random() == n._rng.random()


def test_fit_runs_batch_norm_and_dropout_on_the_batched_path_with_the_eager_numbers(monkeypatch):
    X, y = make_moons(40, noise=0.1, seed=0)
    X_val, y_val = make_moons(20, noise=0.1, seed=1)
    eager, batched_model = regularised(), regularised()
    expected = train(eager, False, X, y, validation_data=(X_val, y_val))
    # The batched path must not fall back on the eager step.
    monkeypatch.setattr("nn.train._EagerStep.run", lambda *a: pytest.fail("eager step used"))
    history = train(batched_model, True, X, y, validation_data=(X_val, y_val))
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(
            getattr(history, name), getattr(expected, name), rtol=0, atol=1e-12
        )
    assert_same_state(eager, batched_model)
    assert expected.val_loss[0] != expected.val_loss[-1]  # the estimates did move


def test_the_matrix_program_shows_the_means_over_the_batch_and_the_fed_masks():
    source = matrix_source(regularised(), "hinge", n_inputs=2)
    assert "Z1.mean(0, keepdims=True)" in source  # the batch norm's mean
    assert "F[:, 0:8]" in source  # the first dropout's masks
    assert "reports = " in source


@pytest.mark.parametrize(
    ("n", "batch_size", "which"),
    [(21, 10, "the last batch of each epoch"), (1, None, "every batch"), (8, 1, "every batch")],
)
def test_fit_refuses_batches_of_one_sample_for_batch_norm_before_any_step(n, batch_size, which):
    X, y = make_moons(max(n, 2), noise=0.1, seed=0)
    for on_batches in (False, True):
        model = regularised()
        before = [p.data for p in model.parameters()]
        with pytest.raises(ValueError, match=f"batch_size={batch_size}, {which} holds one sample"):
            fit(
                model,
                X[:n],
                y[:n],
                loss="hinge",
                optimizer=optim.SGD(model.parameters(), lr=0.1),
                epochs=2,
                batch_size=batch_size,
                progress=False,
                jit=on_batches,
            )
        assert [p.data for p in model.parameters()] == before
        assert model[1].num_batches_tracked == 0


class TwoDropouts(Module):
    """Dropout inside a module that passes its batch on sample by sample: the eager path draws
    the masks sample by sample, so the batched path (module by module) would differ."""

    def __init__(self):
        self.first = Dropout(0.5, seed=0)
        self.layer = Layer(2, 4, seed=0)
        self.second = Dropout(0.5, seed=1)
        self.out = Layer(4, 1, "linear", seed=1)

    def forward(self, x):
        return self.out(self.second(self.layer(self.first(x))))


def test_dropout_outside_sequential_trains_on_the_eager_path_with_the_same_numbers():
    assert _traceable(regularised())
    assert not _traceable(TwoDropouts())
    X, y = make_moons(30, noise=0.1, seed=0)
    a, b = TwoDropouts(), TwoDropouts()
    np.testing.assert_array_equal(train(a, False, X, y).loss, train(b, True, X, y).loss)
    assert_same_state(a, b)


def test_dropout_masks_drawn_for_a_batch_are_the_eager_masks():
    rng_a, rng_b = random.Random(5), random.Random(5)
    eager, traced = Dropout(0.4, seed=rng_a), Dropout(0.4, seed=rng_b)
    rows = [[Value(1.0)] * 3 for _ in range(4)]
    expected = [[y.data for y in out] for out in eager.forward_batch(rows)]
    assert traced._masks(4, 3).tolist() == expected
    assert {m for row in expected for m in row} == {0.0, 1.0 / 0.6}
    assert rng_a.random() == rng_b.random()


def test_the_check_before_training_leaves_batch_norm_and_dropout_as_they_were():
    # fit compares the traced program with the eager model on the first samples; where the
    # program draws masks or reports statistics it compares in eval mode, changing nothing
    model = Sequential(Layer(2, 3, "linear", seed=0), BatchNorm1d(3), Dropout(0.5, seed=0))
    norm, dropout = model.layers[1], model.layers[2]
    masks = random.Random()
    masks.setstate(dropout._rng.getstate())
    X, y = make_moons(12, noise=0.1, seed=0)
    fit(model, X, y, loss="cross_entropy", optimizer=optim.SGD(model.parameters(), lr=0.1),
        epochs=0, progress=False)  # fmt: skip
    assert norm.running_mean == [0.0] * 3 and norm.running_var == [1.0] * 3
    assert dropout._rng.getstate() == masks.getstate()
