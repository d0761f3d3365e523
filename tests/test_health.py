"""nn.gradient_report and GradientTracker: gradient size, dead and saturated units per layer."""

import math

import numpy as np
import pytest

from nn import MLP, Layer, fit, losses, optim
from nn.data import make_moons
from nn.health import GradientTracker, HistogramTracker, gradient_report

X, Y = make_moons(n_samples=40, noise=0.1, seed=0)


def backward_on_moons(model: MLP) -> None:
    model.zero_grad()
    losses.binary_cross_entropy([model(x) for x in X], Y).backward()


def test_mean_abs_grad_is_the_mean_over_each_layers_parameters():
    model = MLP(2, [4, 3, 1], activation="tanh", seed=0)
    backward_on_moons(model)
    report = gradient_report(model)
    assert len(report) == 3
    for layer, health in zip(model.layers, report.layers, strict=True):
        grads = [abs(p.grad) for p in layer.parameters()]
        assert health.mean_abs_grad == pytest.approx(sum(grads) / len(grads), rel=1e-12)
    assert [h.name for h in report.layers] == ["layer1", "layer2", "layer3"]
    assert [(h.width, h.activation) for h in report.layers] == [
        (4, "tanh"),
        (3, "tanh"),
        (1, "linear"),
    ]


def test_a_relu_unit_negative_on_every_sample_counts_as_dead():
    model = MLP(2, [4, 1], activation="relu", seed=0)
    model.layers[0].neurons[2].b.data = -100.0  # its weighted sum is < 0 on every moon
    backward_on_moons(model)
    report = gradient_report(model, X)
    assert report[0].dead == 0.25 and report[0].saturated == 0.0
    assert all(p.grad == 0.0 for p in model.layers[0].neurons[2].parameters())


def test_a_tanh_unit_far_from_zero_on_every_sample_counts_as_saturated():
    model = MLP(2, [5, 1], activation="tanh", seed=0)
    for neuron in model.layers[0].neurons[:2]:
        neuron.b.data = 50.0  # tanh'(> 45) < 1e-38
    backward_on_moons(model)
    report = gradient_report(model, X)
    assert report[0].saturated == 0.4 and report[0].dead == 0.0


def test_without_data_the_unit_fractions_are_unknown():
    model = MLP(2, [3, 1], seed=0)
    backward_on_moons(model)
    report = gradient_report(model)
    assert report[0].dead is None and report[0].saturated is None
    assert "-" in repr(report).splitlines()[1].split()


def test_a_deep_sigmoid_net_has_vanishing_gradients_and_a_relu_net_does_not():
    sigmoid = MLP(2, [8] * 8 + [1], activation="sigmoid", seed=0)
    relu = MLP(2, [8] * 8 + [1], activation="relu", seed=0)
    backward_on_moons(sigmoid)
    backward_on_moons(relu)
    sigmoid_report, relu_report = gradient_report(sigmoid), gradient_report(relu)
    assert sigmoid_report[0].note == "vanishing"
    assert sigmoid_report[0].mean_abs_grad < 1e-2 * sigmoid_report[-1].mean_abs_grad
    assert [h.note for h in relu_report.layers] == [""] * 9


def test_the_report_prints_as_a_table_with_one_row_per_layer():
    model = MLP(2, [4, 1], activation="relu", seed=0)
    model.layers[0].neurons[0].b.data = -100.0
    backward_on_moons(model)
    lines = repr(gradient_report(model, X)).splitlines()
    assert lines[0].split() == [
        "layer",
        "width",
        "activation",
        "mean",
        "|grad|",
        "dead",
        "saturated",
    ]
    assert lines[1].split()[:3] == ["layer1", "4", "relu"]
    assert lines[1].split()[4:] == ["25%", "0%"]
    assert len(lines) == 3


def test_the_report_leaves_the_model_as_it_was():
    model = MLP(2, [4, 1], activation="relu", seed=0)
    backward_on_moons(model)
    before = [(p.data, p.grad) for p in model.parameters()]
    gradient_report(model, X)
    assert [(p.data, p.grad) for p in model.parameters()] == before


def test_a_single_layer_can_be_reported():
    layer = Layer(2, 3, activation="tanh", seed=0)
    for out in layer([0.5, -1.0]):
        out.backward()
    (health,) = gradient_report(layer, [[0.5, -1.0]]).layers
    assert health.width == 3 and health.saturated == 0.0
    assert math.isclose(health.mean_abs_grad, sum(abs(p.grad) for p in layer.parameters()) / 9)


def test_only_a_layer_or_a_model_of_layers_is_reported():
    with pytest.raises(TypeError, match="gradient_report reads a Layer or a model made of Layers"):
        gradient_report([1.0, 2.0])


def test_an_empty_batch_is_refused():
    model = MLP(2, [3, 1], seed=0)
    with pytest.raises(ValueError, match="needs at least one sample in X, got none"):
        gradient_report(model, [])


def test_the_tracker_records_each_layers_gradient_after_every_epoch():
    model = MLP(2, [4, 4, 1], activation="sigmoid", seed=0)
    tracker = GradientTracker()
    expected = []
    for epoch in range(3):
        backward_on_moons(model)
        for p in model.parameters():
            p.data -= 0.5 * p.grad
        tracker(epoch, model, None)
        expected.append([h.mean_abs_grad for h in gradient_report(model).layers])
    assert tracker.epochs == [0, 1, 2]
    assert list(tracker.sizes) == ["layer1", "layer2", "layer3"]
    assert [[tracker.sizes[name][e] for name in tracker.sizes] for e in range(3)] == expected
    ax = tracker.plot(title="sigmoid")
    assert [line.get_label() for line in ax.get_lines()] == ["layer1", "layer2", "layer3"]
    assert ax.get_yscale() == "log"


def test_the_tracker_is_a_fit_callback():
    model = MLP(2, [4, 1], activation="tanh", seed=0)
    tracker = GradientTracker()
    fit(
        model,
        X,
        Y,
        loss="bce",
        optimizer=optim.SGD(model.parameters(), lr=0.1),
        epochs=4,
        progress=False,
        callbacks=[tracker],
    )
    first = tracker.epochs[0]
    assert tracker.epochs == [first, first + 1, first + 2, first + 3]  # one record per epoch
    assert all(len(sizes) == 4 and all(s > 0.0 for s in sizes) for sizes in tracker.sizes.values())
    # After the last epoch the tracker holds the gradient the model has now.
    assert tracker.sizes["layer1"][-1] == gradient_report(model).layers[0].mean_abs_grad


def test_the_report_in_a_notebook_colours_each_layers_gradient_on_the_shared_scale():
    import re

    from autograd_core.pictures.draw import grad_color

    model = MLP(2, [4, 4, 1], activation="tanh", seed=0)
    X = [[0.5, -1.0], [1.5, 0.3]]
    losses.mse([model(x) for x in X], [0.0, 1.0]).backward()
    report = gradient_report(model, X)
    fills = re.findall(r'style="background: (#\w+)"', report._repr_html_())
    assert fills == [grad_color(layer.mean_abs_grad) for layer in report.layers]
    assert len(set(fills)) == 3  # three gradient sizes, three colours


def test_histogram_tracker_keeps_every_layers_weights_and_gradients_after_each_epoch():
    X, y = make_moons(40, noise=0.1, seed=0)
    model = MLP(2, [8, 1], activation="tanh", seed=0)
    tracker = HistogramTracker()
    fit(model, X, y, loss="bce", optimizer=optim.SGD(model.parameters(), lr=0.3), epochs=3,
        callbacks=[tracker], progress=False)  # fmt: skip
    assert tracker.epochs == [1, 2, 3]
    weights = tracker.values("weights", "layer1")
    assert [w.shape for w in weights] == [(24,)] * 3
    assert weights[-1].tolist() == [p.data for p in model.layers[0].parameters()]
    assert tracker.values("grads", "layer2")[-1].tolist() == [
        p.grad for p in model.layers[1].parameters()
    ]
    assert not np.array_equal(weights[0], weights[-1])  # training moved them
    figure = tracker.plot("weights", epochs=2)
    assert [ax.get_title() for ax in figure.axes] == ["layer1: weights", "layer2: weights"]
    assert len(figure.axes[0].collections) == 2  # one filled histogram per epoch shown


def test_histogram_tracker_refuses_an_unknown_kind_or_layer_and_an_empty_plot():
    tracker = HistogramTracker()
    with pytest.raises(ValueError, match="nothing recorded yet"):
        tracker.plot()
    with pytest.raises(ValueError, match="kind must be one of"):
        tracker.values("biases", "layer1")
    with pytest.raises(KeyError, match="no layer 'layer9' recorded"):
        tracker.values("weights", "layer9")
