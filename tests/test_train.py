"""nn.train: fit trains real models, the jit path equals the eager one, and failures are clean."""

import gc
import linecache
import warnings

import numpy as np
import pytest
from helpers import assert_same_training, fit_both_ways

from autograd_core import Value, dot
from autograd_core.engine.modes import mode
from nn import losses, optim
from nn.data import make_blobs, make_moons, make_spiral, make_xor
from nn.modules import MLP, Module
from nn.train import (
    History,
    accuracy,
    fit,
    matrix_source,
    predict,
    predict_outputs,
    predict_proba,
)


def _weights(model):
    return [p.data for p in model.parameters()]


# -- it learns ------------------------------------------------------------------------------


def test_hinge_loss_learns_moons():
    X, y = make_moons(100, noise=0.1, seed=0)
    model = MLP(2, [16, 16, 1], seed=0)
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = fit(
        model,
        X,
        y,
        loss="hinge",
        optimizer=optimizer,
        epochs=100,
        l2=1e-4,
        progress=False,
        jit=True,
    )
    assert accuracy(model, X, y, loss="hinge") >= 0.97
    assert history.loss[-1] < 0.1 * history.loss[0]


def test_binary_cross_entropy_learns_moons():
    X, y = make_moons(100, noise=0.1, seed=0)
    model = MLP(2, [16, 16, 1], seed=0)
    optimizer = optim.Adam(model.parameters(), lr=0.05)
    history = fit(model, X, y, loss="bce", optimizer=optimizer, epochs=60, progress=False, jit=True)
    assert accuracy(model, X, y, loss="bce") >= 0.97
    assert history.loss[-1] < 0.1 * history.loss[0]


def test_cross_entropy_learns_three_blobs():
    X, y = make_blobs(150, centers=3, seed=0)
    model = MLP(2, [16, 3], seed=0)
    optimizer = optim.Adam(model.parameters(), lr=0.05)
    fit(model, X, y, loss="cross_entropy", optimizer=optimizer, epochs=40, progress=False, jit=True)
    assert accuracy(model, X, y) >= 0.90


def test_cross_entropy_learns_a_three_arm_spiral():
    X, y = make_spiral(90, n_classes=3, seed=0)
    model = MLP(2, [12, 12, 3], activation="tanh", seed=0)
    optimizer = optim.Adam(model.parameters(), lr=0.05)
    fit(
        model, X, y, loss="cross_entropy", optimizer=optimizer, epochs=100, progress=False, jit=True
    )
    assert accuracy(model, X, y) >= 0.90


def test_a_hidden_layer_learns_xor_perfectly():
    X, y = make_xor(40, seed=0)
    model = MLP(2, [8, 1], seed=0)
    optimizer = optim.Adam(model.parameters(), lr=0.1)
    fit(model, X, y, loss="bce", optimizer=optimizer, epochs=40, progress=False)
    assert accuracy(model, X, y, loss="bce") == 1.0


@pytest.mark.parametrize(
    ("batch_size", "lr", "epochs"),
    [(None, 0.1, 80), (8, 0.05, 20), (1, 0.01, 12)],
    ids=["full-batch", "mini-batch", "stochastic"],
)
def test_each_kind_of_gradient_descent_trains(batch_size, lr, epochs):
    X, y = make_moons(60, noise=0.1, seed=1)
    model = MLP(2, [16, 16, 1], seed=1)
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    history = fit(
        model, X, y, loss="bce", optimizer=optimizer, epochs=epochs,
        batch_size=batch_size, seed=0, progress=False, jit=True,
    )  # fmt: skip
    assert history.loss[-1] < 0.3 * history.loss[0]
    assert history.accuracy[-1] >= 0.9
    assert accuracy(model, X, y, loss="bce") >= 0.95


def test_the_eager_path_trains():
    X, y = make_moons(60, noise=0.1, seed=1)
    model = MLP(2, [16, 16, 1], seed=1)
    optimizer = optim.Adam(model.parameters(), lr=0.05)
    history = fit(model, X, y, loss="bce", optimizer=optimizer, epochs=30, progress=False)
    assert history.loss[-1] < 0.2 * history.loss[0]
    assert accuracy(model, X, y, loss="bce") >= 0.95


def test_mse_on_one_hot_targets_learns_blobs():
    X, y = make_blobs(60, centers=3, seed=0)
    model = MLP(2, [8, 3], seed=0)
    optimizer = optim.Adam(model.parameters(), lr=0.05)
    history = fit(model, X, y, loss="mse", optimizer=optimizer, epochs=60, progress=False, jit=True)
    assert history.loss[-1] < 0.1 * history.loss[0]
    assert accuracy(model, X, y, loss="mse") >= 0.9


# -- jit gives the eager numbers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "make_data", "nouts"),
    [
        ("hinge", lambda: make_moons(40, seed=1), [8, 8, 1]),
        ("bce", lambda: make_moons(40, seed=1), [8, 8, 1]),
        ("cross_entropy", lambda: make_blobs(40, centers=3, seed=1), [8, 3]),
        ("mse", lambda: make_blobs(40, centers=3, seed=1), [8, 3]),
    ],
)
def test_jit_gives_the_same_losses_and_weights_as_eager(loss, make_data, nouts):
    X, y = make_data()
    runs = fit_both_ways(
        lambda: MLP(2, nouts, seed=3), X, y, lambda params: optim.Adam(params, lr=0.05),
        loss=loss, epochs=6, batch_size=16, l2=1e-3, seed=5,
    )  # fmt: skip
    assert_same_training(runs)
    assert runs[0][1] != _weights(MLP(2, nouts, seed=3))  # it did train


# -- the History and the loop -----------------------------------------------------------------


def test_history_has_one_loss_and_one_accuracy_per_epoch():
    X, y = make_moons(20, seed=0)
    model = MLP(2, [4, 1], seed=0)
    history = fit(
        model, X, y, loss="hinge", optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=3,
        progress=False,
    )  # fmt: skip
    assert isinstance(history, History)
    assert len(history.loss) == len(history.accuracy) == 3
    assert all(0.0 <= a <= 1.0 for a in history.accuracy)


@pytest.mark.parametrize("jit", [False, True])
def test_history_has_every_steps_loss_whose_weighted_mean_is_the_epochs(jit):
    # 22 samples in batches of 8: steps of 8, 8 and 6 samples, three epochs
    X, y = make_moons(22, seed=0)
    model = MLP(2, [4, 1], seed=0)
    history = fit(
        model, X, y, loss="hinge", optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=3,
        batch_size=8, seed=1, progress=False, jit=jit,
    )  # fmt: skip
    assert len(history.step_loss) == 9
    for epoch, loss in enumerate(history.loss):
        steps = history.step_loss[3 * epoch : 3 * epoch + 3]
        assert loss == pytest.approx((8 * steps[0] + 8 * steps[1] + 6 * steps[2]) / 22, rel=1e-12)
    assert len(set(history.step_loss)) > 3  # each step measured its own batch


def test_full_batch_loss_is_the_loss_of_the_model_before_the_step():
    X, y = make_moons(20, seed=0)
    model = MLP(2, [4, 1], seed=0)
    expected = (losses.hinge([model(x) for x in X], y) + losses.l2(model.parameters(), 0.01)).data
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    history = fit(model, X, y, loss="hinge", optimizer=optimizer, epochs=1, l2=0.01, progress=False)
    assert history.loss == [pytest.approx(expected, rel=1e-14)]


def test_a_loss_function_can_be_passed_instead_of_a_name():
    X, y = make_moons(30, seed=0)
    results = []
    for loss in ("hinge", lambda scores, labels: losses.hinge(scores, labels)):
        model = MLP(2, [4, 1], seed=0)
        optimizer = optim.SGD(model.parameters(), lr=0.1)
        results.append(
            fit(model, X, y, loss=loss, optimizer=optimizer, epochs=3, progress=False, jit=False)
        )
    assert results[0] == results[1]


def test_the_same_seed_gives_the_same_mini_batch_training():
    X, y = make_moons(30, seed=0)
    results = []
    for _ in range(2):
        model = MLP(2, [4, 1], seed=0)
        optimizer = optim.SGD(model.parameters(), lr=0.1)
        fit(
            model, X, y, loss="hinge", optimizer=optimizer, epochs=2, batch_size=4, seed=9,
            progress=False,
        )  # fmt: skip
        results.append(_weights(model))
    assert results[0] == results[1]


def test_accuracy_counts_the_predicted_class():
    model = MLP(1, [1], seed=0)  # a single linear neuron: output = w x + b
    model.layers[0].neurons[0].w[0].data, model.layers[0].neurons[0].b.data = 1.0, -0.4
    X, y = [[0.0], [0.5], [1.0], [1.3]], [0, 1, 1, 1]  # outputs -0.4, 0.1, 0.6, 0.9
    assert accuracy(model, X, y, loss="hinge") == 1.0  # class 1 where the output is > 0
    assert accuracy(model, X, y, loss="mse") == 0.75  # the output rounded: 0.1 is class 0


def test_progress_bar_goes_to_stderr_unless_disabled(capsys):
    X, y = make_moons(10, seed=0)
    model = MLP(2, [2, 1], seed=0)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    fit(model, X, y, loss="hinge", optimizer=optimizer, epochs=2)
    assert "2/2" in capsys.readouterr().err
    fit(model, X, y, loss="hinge", optimizer=optimizer, epochs=2, progress=False)
    assert capsys.readouterr().err == ""


# -- failures -------------------------------------------------------------------------------


class RecordingOptimizer:
    """Steps an SGD optimizer and keeps the parameters after every step."""

    def __init__(self, model, lr):
        self.model = model
        self.sgd = optim.SGD(model.parameters(), lr=lr)
        self.after_each_step = [_weights(model)]

    def zero_grad(self):
        self.sgd.zero_grad()

    def step(self):
        self.sgd.step()
        self.after_each_step.append(_weights(self.model))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_a_non_finite_loss_stops_training_before_the_bad_step(jit):
    X, y = make_moons(20, seed=0)
    model = MLP(2, [4, 1], seed=0)
    optimizer = RecordingOptimizer(model, lr=1e4)  # far too large: the loss explodes
    with pytest.raises(FloatingPointError, match=r"at epoch (\d+)/50, step 1/1; training stopped"):
        fit(model, X, y, loss="mse", optimizer=optimizer, epochs=50, progress=False, jit=jit)
    assert len(optimizer.after_each_step) > 2  # a few good steps came first
    assert _weights(model) == optimizer.after_each_step[-1]


def test_the_error_names_the_epoch_where_the_loss_stopped_being_finite():
    X, y = make_moons(20, seed=0)
    model = MLP(2, [4, 1], seed=0)
    optimizer = RecordingOptimizer(model, lr=1e4)
    with pytest.raises(FloatingPointError) as error:
        fit(model, X, y, loss="mse", optimizer=optimizer, epochs=50, progress=False)
    good_steps = len(optimizer.after_each_step) - 1
    assert f"at epoch {good_steps + 1}/50" in str(error.value)


def _fit_with(**changes):
    X, y = make_moons(10, seed=0)
    model = MLP(2, [3, 1], seed=0)
    arguments = {
        "loss": "hinge",
        "optimizer": optim.SGD(model.parameters(), lr=0.1),
        "epochs": 1,
        "progress": False,
    }
    arguments.update(changes)
    model = arguments.pop("model", model)
    return fit(model, arguments.pop("X", X), arguments.pop("y", y), **arguments)


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"loss": "softmax"}, ValueError, "unknown loss 'softmax': expected one of hinge"),
        ({"model": MLP(2, [3, 3], seed=0)}, ValueError, "'hinge' needs a model with 1 output"),
        (
            {"loss": "cross_entropy"},
            ValueError,
            "'cross_entropy' needs a model with one output per class",
        ),
        ({"y": [0, 1, 2] + [0] * 7}, ValueError, "label 2 of sample 2 is not a class"),
        ({"y": [0, 1]}, ValueError, "as many labels as samples, got 10 and 2"),
        ({"epochs": -1}, ValueError, "epochs to be an int >= 0, got -1"),
        ({"l2": -1.0}, ValueError, "l2 to be a finite number >= 0, got -1.0"),
        ({"batch_size": 0}, ValueError, "batch_size to be an int >= 1, got 0"),
        ({"batch_size": 20.0, "epochs": 0}, ValueError, "batch_size to be an int >= 1, got 20.0"),
        ({"optimizer": object()}, TypeError, "an optimizer with step"),
        ({"X": [[1.0, 2.0, 3.0]] * 10}, ValueError, "expected 2 inputs, got 3"),
    ],
)
def test_bad_arguments_are_refused_before_any_step(changes, error, message):
    with pytest.raises(error, match=message):
        _fit_with(**changes)


@pytest.mark.parametrize("jit", [False, True])
def test_a_batch_of_every_sample_is_the_same_however_it_is_asked_for(jit):
    runs = []
    for batch_size in (None, 10, 1000):  # the data has 10 samples
        model = MLP(2, [3, 1], seed=0)
        optimizer = optim.SGD(model.parameters(), lr=0.1)
        history = _fit_with(
            model=model, optimizer=optimizer, batch_size=batch_size, epochs=3, seed=0, jit=jit
        )
        runs.append((history, _weights(model)))
    assert runs[0] == runs[1] == runs[2]
    assert runs[0][1] != _weights(MLP(2, [3, 1], seed=0))  # the steps did train


def test_zero_epochs_changes_nothing():
    X, y = make_moons(10, seed=0)
    model = MLP(2, [3, 1], seed=0)
    before = _weights(model)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    history = fit(model, X, y, loss="hinge", optimizer=optimizer, epochs=0, progress=False)
    assert history == History() and _weights(model) == before


# -- validation data, callbacks, predictions -------------------------------------------------


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_validation_loss_and_accuracy_are_those_of_the_model_after_each_epoch(jit):
    X, y = make_moons(40, noise=0.1, seed=2)
    X_val, y_val = make_moons(15, noise=0.1, seed=3)
    model = MLP(2, [6, 1], seed=0)
    expected_loss, expected_accuracy = [], []

    def measure(epoch, model, history):
        # The callback sees the weights the validation was measured with.
        expected_loss.append(losses.hinge([model(x) for x in X_val], y_val).data)
        expected_accuracy.append(accuracy(model, X_val, y_val, loss="hinge"))

    history = fit(
        model, X, y, loss="hinge", optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=4,
        batch_size=8, seed=0, progress=False, jit=jit, validation_data=(X_val, y_val),
        callbacks=[measure],
    )  # fmt: skip
    assert len(history.val_loss) == len(history.val_accuracy) == 4
    assert history.val_loss == pytest.approx(expected_loss, rel=0, abs=1e-12)
    assert history.val_accuracy == expected_accuracy
    assert history.val_loss[-1] < history.val_loss[0]  # it learned something


def test_without_validation_data_there_is_no_validation_history():
    X, y = make_moons(10, seed=0)
    model = MLP(2, [3, 1], seed=0)
    history = fit(
        model, X, y, loss="hinge", optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=2,
        progress=False, jit=True,
    )  # fmt: skip
    assert history.val_loss == [] and history.val_accuracy == []


def test_bad_validation_data_is_refused_before_any_step():
    X, y = make_moons(10, seed=0)
    model = MLP(2, [3, 1], seed=0)
    before = _weights(model)
    with pytest.raises(ValueError, match="label 2 of sample 1 is not a class"):
        fit(
            model, X, y, loss="hinge", optimizer=optim.SGD(model.parameters(), lr=0.1),
            epochs=1, progress=False, validation_data=(X[:2], [0, 2]),
        )  # fmt: skip
    assert _weights(model) == before


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_callbacks_run_after_every_epoch_with_the_trained_weights(jit):
    X, y = make_moons(20, seed=0)
    model = MLP(2, [4, 1], seed=0)
    calls = []

    def record(epoch, model, history):
        calls.append((epoch, len(history.loss), _weights(model)))

    fit(
        model, X, y, loss="bce", optimizer=optim.SGD(model.parameters(), lr=0.5), epochs=3,
        progress=False, jit=jit, callbacks=[record, lambda *arguments: None],
    )  # fmt: skip
    assert [(epoch, n) for epoch, n, _ in calls] == [(1, 1), (2, 2), (3, 3)]
    assert calls[0][2] != calls[1][2] != calls[2][2]  # each epoch's own weights
    assert calls[-1][2] == _weights(model)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_training_stopped_by_ctrl_c_keeps_the_trained_weights(jit):
    X, y = make_moons(20, seed=0)
    model = MLP(2, [4, 1], seed=0)
    seen = []

    def interrupt(epoch, model, history):
        seen.append(_weights(model))
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(
            model, X, y, loss="hinge", optimizer=optim.SGD(model.parameters(), lr=0.1),
            epochs=10, progress=False, jit=jit, callbacks=[interrupt],
        )  # fmt: skip
    assert len(seen) == 2
    assert _weights(model) == seen[-1] != seen[0]
    assert not model.training  # left in eval mode, as after a finished fit


def test_predict_outputs_are_the_eager_forward_pass_of_every_row():
    X, _ = make_blobs(13, centers=3, seed=0)
    model = MLP(2, [5, 3], activation="tanh", seed=1)
    outputs = predict_outputs(model, X)
    assert outputs.shape == (13, 3) and outputs.dtype == np.float64
    expected = np.array([[o.data for o in model(x)] for x in X])
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-12)


def test_predict_gives_the_class_accuracy_counts():
    X, y = make_blobs(30, centers=3, seed=0)
    model = MLP(2, [8, 3], seed=0)
    fit(
        model, X, y, loss="cross_entropy", optimizer=optim.Adam(model.parameters(), lr=0.05),
        epochs=20, progress=False, jit=True,
    )  # fmt: skip
    classes = predict(model, X, loss="cross_entropy")
    eager = [max(range(3), key=lambda j: model(x)[j].data) for x in X]
    assert classes == eager
    assert sum(c == label for c, label in zip(classes, y, strict=True)) / len(y) == accuracy(
        model, X, y, loss="cross_entropy"
    )


def test_predict_on_one_output_is_the_sign_or_the_rounded_output():
    model = MLP(1, [1], seed=0)  # a single linear neuron: output = w x + b
    model.layers[0].neurons[0].w[0].data, model.layers[0].neurons[0].b.data = 1.0, -0.4
    X = [[0.0], [0.5], [1.0], [1.3]]  # outputs -0.4, 0.1, 0.6, 0.9
    assert predict_outputs(model, X)[:, 0].tolist() == pytest.approx([-0.4, 0.1, 0.6, 0.9])
    assert predict(model, X, loss="hinge") == [0, 1, 1, 1]
    assert predict(model, X, loss="mse") == [0, 0, 1, 1]


def test_predict_keeps_the_mode_of_the_model_and_refuses_ragged_rows():
    model = MLP(2, [3, 1], seed=0)
    model.train()
    predict_outputs(model, [[0.1, 0.2]])
    assert model.training
    with pytest.raises(ValueError, match="sample 1 has 3 features, sample 0 has 2"):
        predict(model, [[0.1, 0.2], [0.1, 0.2, 0.3]])


def test_float32_input_trains_in_float64():
    X, y = make_moons(20, noise=0.1, seed=0)
    X32 = np.array(X, dtype=np.float32)
    runs = {}
    for name, data, jit in (
        ("float32-jit", X32, True),
        ("float64-jit", X32.astype(np.float64), True),
        ("float32-eager", X32, False),
        ("float64-eager", X32.astype(np.float64), False),
    ):
        model = MLP(2, [4, 1], seed=0)
        optimizer = optim.SGD(model.parameters(), lr=0.1)
        history = fit(
            model, data, y, loss="bce", optimizer=optimizer, epochs=3, progress=False, jit=jit
        )
        runs[name] = (history.loss, _weights(model))
        assert all(type(w) is float for w in _weights(model))
    # The same float32 numbers, computed in float64: exactly the float64 run, on either path.
    assert runs["float32-jit"] == runs["float64-jit"]
    assert runs["float32-eager"] == runs["float64-eager"]
    jit_loss, jit_weights = runs["float32-jit"]
    eager_loss, eager_weights = runs["float32-eager"]
    assert jit_loss == pytest.approx(eager_loss, rel=0, abs=1e-12)
    assert jit_weights == pytest.approx(eager_weights, rel=0, abs=1e-12)
    # float32 arithmetic would be ~1e-8 away: the float64 eager losses are not float32 numbers.
    assert any(float(np.float32(v)) != v for v in eager_loss)


def test_fit_with_jit_leaves_no_generated_source_behind():
    # Each fit(jit=True) compiles its programs; their source must go with them, or a notebook
    # that trains a thousand times keeps a thousand copies in linecache.
    def jit_sources():
        return {name for name in linecache.cache if name.startswith("<jit-")}

    X, y = make_moons(10, seed=0)
    gc.collect()
    before = jit_sources()
    for _ in range(3):
        model = MLP(2, [3, 1], seed=0)
        optimizer = optim.SGD(model.parameters(), lr=0.1)
        fit(model, X, y, loss="hinge", optimizer=optimizer, epochs=1, progress=False, jit=True)
        predict(model, X)
    gc.collect()
    assert jit_sources() <= before


# -- regression, probabilities, the matrix program ---------------------------------------------


def _noisy_sine(n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3.0, 3.0, (n, 1))
    y = np.sin(X[:, 0]) + rng.normal(0.0, 0.1, n)
    return X.tolist(), y.tolist()


def test_mse_on_float_targets_fits_a_noisy_sine_and_reports_r2():
    X, y = _noisy_sine()
    model = MLP(1, [32, 32, 1], activation="tanh", seed=0)
    history = fit(
        model,
        X,
        y,
        loss="mse",
        optimizer=optim.Adam(model.parameters(), lr=0.01),
        epochs=200,
        batch_size=32,
        seed=0,
        progress=False,
        jit=True,
        validation_data=_noisy_sine(50, seed=1),
    )
    assert history.r2[-1] >= 0.95
    assert history.val_r2[-1] >= 0.95
    assert history.accuracy == [] and history.val_accuracy == []
    assert all(type(value) is float for value in history.loss + history.r2)


def test_regression_with_several_outputs_takes_a_list_of_targets_per_sample():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1.0, 1.0, (60, 2)).tolist()
    y = [[a + b, a - b] for a, b in X]  # a linear map: a linear model fits it exactly
    runs = fit_both_ways(
        lambda: MLP(2, [2], seed=0), X, y, lambda params: optim.SGD(params, lr=0.5),
        loss="mse", epochs=60,
    )  # fmt: skip
    assert runs[1][0].r2[-1] > 0.999
    assert_same_training(runs)


def test_a_regression_target_of_the_wrong_length_is_refused_before_training():
    model = MLP(2, [3, 2], seed=0)
    with pytest.raises(ValueError, match=r"target \[1\.0\] of sample 1 has 1 number\(s\)"):
        fit(
            model,
            [[0.0, 1.0]] * 2,
            [[1.0, 2.0], [1.0]],
            loss="mse",
            optimizer=optim.SGD(model.parameters(), lr=0.1),
            epochs=1,
            progress=False,
        )


def test_predict_proba_is_the_softmax_or_the_sigmoid_of_the_outputs():
    X, _ = make_blobs(20, 3, seed=0)
    three = MLP(2, [4, 3], seed=0)
    outputs = predict_outputs(three, X)
    expected = np.exp(outputs) / np.exp(outputs).sum(axis=1, keepdims=True)
    assert np.allclose(predict_proba(three, X), expected, rtol=1e-12, atol=0)
    one = MLP(2, [4, 1], seed=0)
    logits = predict_outputs(one, X)[:, 0]
    assert np.allclose(predict_proba(one, X), 1.0 / (1.0 + np.exp(-logits)), rtol=1e-12)
    assert predict(three, X) == outputs.argmax(axis=1).tolist()


def test_matrix_source_shows_each_layer_as_one_matrix_product():
    source = matrix_source(MLP(2, [16, 16, 1], seed=0), loss="hinge")
    assert "Z1 = X @ W1.T + b1" in source
    assert "H1 = relu(Z1)" in source
    assert "Z2 = H1 @ W2.T + b2" in source
    assert "dW1 += dZ1.T @ X" in source
    assert "dH1 = dZ2 @ W2" in source


# -- the batched path keeps the model whole --------------------------------------------------


def test_the_optimizer_continues_where_the_last_fit_stopped():
    X, y = make_moons(40, noise=0.1, seed=0)
    once, twice = MLP(2, [8, 1], seed=0), MLP(2, [8, 1], seed=0)
    adam_once = optim.Adam(once.parameters(), lr=0.01)
    adam_twice = optim.Adam(twice.parameters(), lr=0.01)
    options = {"loss": "hinge", "progress": False, "jit": True}
    fit(once, X, y, optimizer=adam_once, epochs=4, **options)
    fit(twice, X, y, optimizer=adam_twice, epochs=2, **options)
    fit(twice, X, y, optimizer=adam_twice, epochs=2, **options)
    assert _weights(once) == _weights(twice)
    assert adam_once.steps == adam_twice.steps == 4


def test_ctrl_c_leaves_the_model_with_the_numbers_trained_so_far():
    X, y = make_moons(40, noise=0.1, seed=0)
    stopped, finished = MLP(2, [8, 1], seed=0), MLP(2, [8, 1], seed=0)

    def interrupt_after_two(epoch, model, history):
        if epoch == 2:
            raise KeyboardInterrupt

    options = {"loss": "hinge", "progress": False, "jit": True}
    with pytest.raises(KeyboardInterrupt):
        fit(
            stopped,
            X,
            y,
            optimizer=optim.SGD(stopped.parameters(), lr=0.1),
            epochs=5,
            callbacks=[interrupt_after_two],
            **options,
        )
    fit(finished, X, y, optimizer=optim.SGD(finished.parameters(), lr=0.1), epochs=2, **options)
    assert _weights(stopped) == _weights(finished)


def test_threads_training_one_model_leave_it_holding_its_own_values():
    import threading

    X, y = make_moons(40, noise=0.1, seed=0)
    model = MLP(2, [8, 1], seed=0)
    own = model.parameters()

    def train():
        fit(
            model,
            X,
            y,
            loss="hinge",
            optimizer=optim.SGD(model.parameters(), lr=0.1),
            epochs=3,
            progress=False,
            jit=True,
        )

    threads = [threading.Thread(target=train) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(a is b for a, b in zip(model.parameters(), own, strict=True))
    assert all(np.isfinite(_weights(model)))


# -- bad data, refused up front with the same message in both modes ------------------------------


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize(
    ("X", "error", "message"),
    [
        ([[0.0, 1.0], [0.0, 1.0, 2.0]], ValueError, r"sample 1 has 3 features, sample 0 has 2"),
        ([[0.0, 1.0], [0.0, "a"]], TypeError, r"sample 1, column 1 is not a real number: 'a'"),
        ([[0.0, 1.0], [float("nan"), 1.0]], ValueError, r"sample 1, column 0 is nan"),
        ([[0.0, 1.0], [0.0, float("inf")]], ValueError, r"sample 1, column 1 is inf"),
        ([[0.0, 1.0], [0.0, True]], TypeError, r"sample 1, column 1 is not a real number: True"),
        ([[0.0, 1.0], [10**400, 1.0]], ValueError, r"sample 1, column 0 is 1000.*not a finite"),
        (np.array([[0.0, 1.0], [np.nan, 1.0]]), ValueError, r"sample 1, column 0 is nan"),
    ],
)
def test_bad_features_are_named_by_sample_and_column_in_both_modes(X, error, message, jit):
    model = MLP(2, [1], seed=0)
    before = _weights(model)
    with pytest.raises(error, match=message):
        fit(
            model,
            X,
            [0, 1],
            loss="hinge",
            optimizer=optim.SGD(model.parameters(), lr=0.1),
            epochs=1,
            progress=False,
            jit=jit,
        )
    assert _weights(model) == before


@pytest.mark.parametrize("jit", [False, True])
def test_a_custom_loss_that_returns_a_float_is_refused_in_both_modes(jit):
    model = MLP(2, [1], seed=0)
    with pytest.raises(TypeError, match=r"the loss function must return a Value, got float"):
        fit(
            model,
            [[0.0, 1.0]],
            [0],
            loss=lambda preds, labels: 1.0,
            optimizer=optim.SGD(model.parameters(), lr=0.1),
            epochs=1,
            progress=False,
            jit=jit,
        )


def test_a_custom_loss_may_take_list_labels():
    model = MLP(2, [2], seed=0)

    def squared_error(preds, targets):
        return losses.mse(preds, targets)

    history = fit(
        model,
        [[0.0, 1.0], [1.0, 0.0]],
        [[1.0, 0.0], [0.0, 1.0]],
        loss=squared_error,
        optimizer=optim.SGD(model.parameters(), lr=0.1),
        epochs=2,
        progress=False,
        jit=True,
    )
    assert history.loss[1] < history.loss[0]


def test_patience_stops_early_and_restores_the_best_epochs_weights():
    X, y = make_moons(60, noise=0.3, seed=0)
    X_val, y_val = make_moons(60, noise=0.3, seed=1)
    model = MLP(2, [32, 32, 1], seed=0)
    snapshots = {}

    def keep(epoch, model, history):
        snapshots[epoch] = _weights(model)

    history = fit(
        model,
        X,
        y,
        loss="hinge",
        optimizer=optim.Adam(model.parameters(), lr=0.05),
        epochs=300,
        progress=False,
        jit=True,
        validation_data=(X_val, y_val),
        patience=5,
        callbacks=[keep],
    )
    best = int(np.argmin(history.val_loss)) + 1
    assert history.best_epoch == best
    assert len(history.loss) == best + 5 < 300  # stopped five epochs after the best
    assert _weights(model) == snapshots[best]


def test_patience_needs_validation_data():
    model = MLP(2, [1], seed=0)
    with pytest.raises(ValueError, match=r"patience .* pass validation_data"):
        fit(
            model,
            [[0.0, 1.0]],
            [1],
            loss="hinge",
            optimizer=optim.SGD(model.parameters(), lr=0.1),
            epochs=1,
            progress=False,
            patience=3,
        )


class _ExpNeuron(Module):
    """exp(w . x + b) - 1: one neuron whose exp overflows when the weights grow too large."""

    def __init__(self) -> None:
        self.w = [Value(0.5), Value(-0.3), Value(0.1)]

    def forward(self, x):
        return dot(self.w, [*x, 1.0]).exp() - 1.0


def test_an_overflow_stops_jit_training_with_the_eager_error():
    X, y = make_moons(20, seed=0)
    errors = []
    for jit in (False, True):
        model = _ExpNeuron()
        optimizer = optim.SGD(model.parameters(), lr=5.0)
        with pytest.raises((FloatingPointError, OverflowError)) as error:
            fit(model, X, y, loss="mse", optimizer=optimizer, epochs=50, progress=False, jit=jit)
        errors.append(error.value)
    eager, jitted = errors
    assert isinstance(eager, FloatingPointError)
    assert "exp overflow" in str(eager) and "at epoch 3/50, step 1/1" in str(eager)
    assert type(jitted) is type(eager)
    assert str(jitted).split(": exp(")[0] == str(eager).split(": exp(")[0]
    assert "at epoch 3/50, step 1/1" in str(jitted)


class _HalfUsed(MLP):
    """An MLP with one more parameter that its forward never reads."""

    def __init__(self) -> None:
        super().__init__(2, [4, 1], seed=0)
        self.forgotten = Value(0.5, "forgotten")


@pytest.mark.parametrize("jit", [False, True])
def test_parameters_the_loss_never_reads_are_named_in_one_warning(jit):
    import warnings

    X, y = make_moons(20, seed=0)
    model = _HalfUsed()
    assert any(p is model.forgotten for p in model.parameters())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(model, X, y, loss="hinge", optimizer=optim.SGD(model.parameters(), lr=0.1),
            epochs=3, progress=False, jit=jit)  # fmt: skip
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1
    assert "1 of the optimizer's 18 parameters do not affect the loss" in messages[0]
    assert "'forgotten'" in messages[0]


# -- nothing silently wrong -------------------------------------------------------------------


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_a_nan_weight_stops_hinge_training_on_both_paths(jit):
    # relu(nan) was 0, so the hinge loss of a nan score read 0: no error, nothing learnt
    X, y = [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], [0, 1, 1, 0]
    model = MLP(2, [4, 1], seed=0)
    model.parameters()[0].data = float("nan")
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError, match=r"the loss is nan at epoch 1/2, step 1/1"):
        fit(model, X, y, loss="hinge", optimizer=optimizer, epochs=2, progress=False, jit=jit)


def test_a_model_trained_for_regression_predicts_numbers():
    X, y = _noisy_sine(100)
    model = MLP(1, [16, 1], activation="tanh", seed=0)
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    history = fit(model, X, y, loss="mse", optimizer=optimizer, epochs=100, progress=False)
    predicted = predict(model, X)
    assert predicted == predict_outputs(model, X)[:, 0].tolist()
    assert len(set(predicted)) == len(X)  # numbers, not the classes 0 and 1
    residual = sum((p - t) ** 2 for p, t in zip(predicted, y, strict=True))
    total = sum((t - np.mean(y)) ** 2 for t in y)
    assert 1.0 - residual / total == pytest.approx(history.r2[-1], abs=0.05)
    assert history.r2[-1] > 0.8


def test_mse_on_integer_targets_that_are_no_classes_is_regression():
    X = [[x / 10.0] for x in range(20)]
    y = [3 * i + 2 for i in range(20)]  # counts, not 0/1 classes
    model = MLP(1, [1], seed=0)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    history = fit(model, X, y, loss="mse", optimizer=optimizer, epochs=300, progress=False)
    assert history.accuracy == [] and history.r2[-1] > 0.999
    assert predict(model, [[0.5]])[0] == pytest.approx(17.0, abs=0.05)


def test_overflow_gives_the_eager_numbers_on_the_batched_path():
    from nn import Layer

    model = Layer(3, 1, "linear")
    for p, w in zip(model.parameters(), [1e300, -1e300, 1e300, 0.0], strict=True):
        p.data = w
    X = [[1e10] * 3] * 4  # 1e310 - 1e310 + 1e310: inf - inf is nan, added left to right
    eager = model(X[0]).data
    assert np.isnan(eager)
    with np.errstate(all="ignore"):
        assert np.isnan(predict_outputs(model, X)).all()


# -- labels as NumPy and PyTorch users give them -----------------------------------------------


@pytest.mark.parametrize(
    ("loss", "given", "expected"),
    [
        ("bce", np.array([0.0, 1.0, 1.0, 0.0]), [0, 1, 1, 0]),
        ("bce", np.array([[0], [1], [1], [0]]), [0, 1, 1, 0]),
        ("hinge", [-1, 1, 1, -1], [0, 1, 1, 0]),
        ("hinge", np.array([[-1.0], [1.0], [1.0], [-1.0]]), [0, 1, 1, 0]),
        ("cross_entropy", np.array([0, 2, 1, 0], dtype=np.int64), [0, 2, 1, 0]),
    ],
)
def test_labels_are_taken_as_scikit_learn_and_pytorch_give_them(loss, given, expected):
    X = [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    n_outputs = 3 if loss == "cross_entropy" else 1
    runs = []
    for labels in (given, expected):
        model = MLP(2, [4, n_outputs], seed=0)
        optimizer = optim.SGD(model.parameters(), lr=0.1)
        runs.append(fit(model, X, labels, loss=loss, optimizer=optimizer, epochs=3, progress=False))
    assert runs[0] == runs[1]


def test_regression_targets_as_an_n_by_1_array_are_taken():
    X, y = _noisy_sine(40)
    runs = []
    for targets in (np.array(y).reshape(-1, 1), y):
        model = MLP(1, [4, 1], activation="tanh", seed=0)
        optimizer = optim.SGD(model.parameters(), lr=0.1)
        history = fit(model, X, targets, loss="mse", optimizer=optimizer, epochs=3, progress=False)
        runs.append(history)
    assert runs[0] == runs[1] and runs[0].r2


# -- the default path -------------------------------------------------------------------------


def test_fit_runs_batched_by_default_with_the_eager_numbers():
    X, y = make_moons(60, noise=0.1, seed=0)
    runs = []
    for jit in (None, False):
        model = MLP(2, [8, 8, 1], seed=0)
        optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        history = fit(model, X, y, loss="hinge", optimizer=optimizer, epochs=5, progress=False,
                      jit=jit)  # fmt: skip
        runs.append((history, _weights(model)))
    assert_same_training(runs)
    # and it says nothing: no fallback note
    model = MLP(2, [8, 1], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(model, X, y, loss="hinge", optimizer=optim.SGD(model.parameters(), lr=0.1),
            epochs=1, progress=False)  # fmt: skip


class _Branchy(Module):
    """A model with Python control flow on the data: a trace would freeze the branch."""

    def __init__(self):
        self.w = Value(0.5)

    def forward(self, x):
        return self.w * x[0] if x[0] > 0.0 else self.w * x[0] * 3.0


def test_fit_falls_back_to_eager_with_a_note_where_a_trace_gives_other_numbers():
    X, y = [[-1.0], [0.5], [2.0], [-0.3]], [0, 1, 1, 0]
    model = _Branchy()
    with pytest.warns(UserWarning, match=r"fit trains on the eager engine .*frozen by a trace"):
        history = fit(model, X, y, loss="hinge", optimizer=optim.SGD([model.w], lr=0.1),
                      epochs=2, progress=False)  # fmt: skip
    eager = _Branchy()
    expected = fit(eager, X, y, loss="hinge", optimizer=optim.SGD([eager.w], lr=0.1), epochs=2,
                   progress=False, jit=False)  # fmt: skip
    assert history == expected


def _count_traces(monkeypatch):
    import nn.train

    traced = []
    trace = nn.train.ir.trace

    def counted(*args, **options):
        traced.append(args[1])
        return trace(*args, **options)

    monkeypatch.setattr(nn.train.ir, "trace", counted)
    return traced


def test_fit_traces_a_model_once_the_check_on_the_data_runs_its_training_program(monkeypatch):
    traced = _count_traces(monkeypatch)
    X, y = make_moons(40, seed=1)
    model = MLP(2, [8, 1], seed=0)
    fit(model, X, y, loss="hinge", optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=2,
        progress=False)  # fmt: skip
    assert len(traced) == 1
    # validation runs in eval mode: its own program (batch norm and dropout differ there)
    fit(model, X, y, loss="hinge", optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=2,
        progress=False, validation_data=(X[:5], y[:5]))  # fmt: skip
    assert len(traced) == 3


def test_a_model_of_many_weights_is_checked_on_fewer_samples_and_a_branch_is_still_found(
    monkeypatch,
):
    import nn.train

    monkeypatch.setattr(nn.train, "_CHECKED_WEIGHTS", 1)  # as for a model of a million weights
    X, y = [[-1.0], [0.5], [2.0], [-0.3]], [0, 1, 1, 0]
    model = _Branchy()
    checked = []  # the rows the model is run on without a graph: the checks before training
    forward = model.forward

    def recorded(x):
        if not mode.grad_enabled:
            checked.append(list(x))
        return forward(x)

    monkeypatch.setattr(model, "forward", recorded)
    with pytest.warns(UserWarning, match=r"fit trains on the eager engine .*frozen by a trace"):
        fit(model, X, y, loss="hinge", optimizer=optim.SGD([model.w], lr=0.1), epochs=1,
            progress=False)  # fmt: skip
    # the count of outputs, then 2 samples, not 4: the trace ran the first, the second runs alone
    assert checked == [X[0], X[1]]


def test_fit_in_float32_trains_the_float64_steps_to_float32s_precision():
    X, y = make_blobs(60, centers=3, seed=0)
    models = {}
    for dtype in ("float64", "float32"):
        model = MLP(2, [8, 3], activation="tanh", seed=0)
        opt = optim.Adam(model.parameters(), lr=0.05)
        history = fit(
            model,
            X,
            y,
            loss="cross_entropy",
            optimizer=opt,
            epochs=5,
            batch_size=16,
            seed=0,
            progress=False,
            dtype=dtype,
        )
        models[dtype] = (model, history)
    (model64, history64), (model32, history32) = models["float64"], models["float32"]
    assert history32.loss != history64.loss  # computed in float32: not the same bits
    assert np.allclose(history32.loss, history64.loss, rtol=1e-5)
    for p32, p64 in zip(model32.parameters(), model64.parameters(), strict=True):
        assert float(np.float32(p32.data)) == p32.data  # the trained numbers are float32's
        assert abs(p32.data - p64.data) < 1e-4


def test_fit_refuses_a_dtype_it_does_not_compute_in():
    X, y = make_moons(20, seed=0)
    model = MLP(2, [4, 1], seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="dtype 'float64' or 'float32', got 'float16'"):
        fit(model, X, y, loss="bce", optimizer=opt, epochs=1, progress=False, dtype="float16")
    with pytest.raises(ValueError, match="dtype='float32' runs on the batched back-end"):
        fit(
            model,
            X,
            y,
            loss="bce",
            optimizer=opt,
            epochs=1,
            progress=False,
            dtype="float32",
            jit=False,
        )
