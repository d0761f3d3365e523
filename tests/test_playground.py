"""The training playground: built and driven from code, as a notebook user drives it by hand."""

import math

import pytest

from nn.playground import DATASETS, Playground, parse_hidden

PNG = b"\x89PNG"


@pytest.fixture(scope="module")
def playground() -> Playground:
    return Playground(n_samples=40, hidden=(4, 4), seed=0)


def test_it_starts_at_epoch_zero_with_a_picture(playground):
    fresh = Playground(n_samples=40, hidden=[3], seed=1)
    assert fresh.epoch == 0 and fresh.losses == []
    assert bytes(fresh.picture.value).startswith(PNG)
    assert "epoch 0" in fresh.status.value
    assert fresh.model.nouts == [3, 1]


def test_a_step_trains_one_epoch_and_redraws(playground):
    playground.reset()
    before = playground.picture.value
    playground.step_button.click()
    assert playground.epoch == 1 and len(playground.losses) == 1
    assert playground.picture.value != before
    assert "epoch 1: loss" in playground.status.value
    assert "layer1" in playground.health.value and "mean |grad|" in playground.health.value


def test_training_lowers_the_loss(playground):
    playground.reset()
    playground.step(30, draw=False)
    assert playground.epoch == 30
    assert playground.losses[-1] < 0.8 * playground.losses[0]


def test_the_neuron_heatmaps_are_the_models_own_outputs(playground):
    import numpy as np

    points = np.array([[0.3, -0.2], [1.5, 0.5], [-1.0, 0.8]])
    outputs = playground.hidden_outputs(points)
    assert [o.shape for o in outputs] == [(3, 4), (3, 4), (3, 1)]
    for point, logit in zip(points, outputs[-1][:, 0], strict=True):
        assert math.isclose(playground.model(list(point)).data, logit, rel_tol=1e-12, abs_tol=1e-12)


def test_new_widths_from_the_widget_start_a_new_model(playground):
    playground.step(2, draw=False)
    playground.hidden_box.value = "5, 3"
    assert playground.model.nouts == [5, 3, 1] and playground.epoch == 0


def test_a_new_learning_rate_keeps_the_model_and_its_history(playground):
    playground.reset()
    playground.step(2, draw=False)
    model = playground.model
    playground.lr_box.value = 0.01
    assert playground.model is model and playground.epoch == 2
    assert playground.optimizer.lr == pytest.approx(0.01)


def test_bad_widths_in_the_widget_are_reported_and_change_nothing(playground):
    model, settings = playground.model, dict(playground.settings)
    playground.hidden_box.value = "8, x"
    assert "hidden widths must be whole numbers" in playground.status.value
    assert playground.model is model and playground.settings == settings


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"dataset": "iris"}, "dataset must be one of moons, circles"),
        ({"hidden": [0]}, "each hidden width must be an int from 1 to 64"),
        ({"activation": "linear"}, "activation must be relu, tanh, sigmoid or leaky_relu"),
        ({"lr": -1.0}, r"lr must be a number in \(0, 10\]"),
        ({"batch_size": 7}, "batch_size must be one of"),
        ({"l2": 0.5}, "l2 must be one of"),
        ({"momentum": 0.9}, r"unknown playground settings: \['momentum'\]"),
        ({"noise": 0.9}, r"noise must be a number in \[0, 0.5\], got 0.9"),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(playground, setting, message):
    model, settings = playground.model, dict(playground.settings)
    with pytest.raises(ValueError, match=message):
        playground.configure(**setting)
    assert playground.model is model and playground.settings == settings


def test_run_trains_in_the_background_until_paused(playground):
    playground.reset()
    playground.run_button.value = True  # the run button
    assert playground.run_button.description == "pause"
    playground.run_button.value = False
    assert playground.epoch >= 1 and len(playground.losses) == playground.epoch
    assert playground.run_button.description == "run"


def test_every_data_set_is_two_classes_in_the_plane():
    for name, make in DATASETS.items():
        X, y = make(30, 0.1, 0)
        assert len(X) == len(y) > 0 and all(len(x) == 2 for x in X), name
        assert set(y) == {0, 1}, name


def test_hidden_widths_are_parsed_from_text():
    assert parse_hidden("8, 4,2") == [8, 4, 2]
    assert parse_hidden([3]) == [3]
    with pytest.raises(ValueError, match="each hidden width must be an int from 1 to 64"):
        parse_hidden("100")


def test_steps_without_drawing_still_update_the_status(playground):
    playground.reset()
    picture = playground.picture.value
    playground.step(2, draw=False)
    assert "epoch 2: loss" in playground.status.value
    assert playground.picture.value == picture


def test_the_health_bars_are_in_the_gradient_colours(playground):
    from matplotlib.figure import Figure

    from nn.plot import grad_scale

    playground.reset()
    playground.step(2, draw=False)
    ax = Figure().subplots()
    playground._draw_health(ax)
    colormap, norm = grad_scale()
    sizes = [layer.mean_abs_grad for layer in playground.report.layers]
    assert [tuple(bar.get_facecolor()) for bar in ax.patches] == [
        pytest.approx(colormap(norm(size))) for size in sizes
    ]


def test_the_samples_are_split_into_a_training_and_a_test_set(playground):
    playground.reset()
    assert len(playground.X) + len(playground.X_test) == 40
    assert len(playground.X_test) == 12  # 30% held out
    assert not {tuple(x) for x in playground.X} & {tuple(x) for x in playground.X_test}
    playground.step(3, draw=False)
    assert len(playground.test_losses) == len(playground.losses) == 3
    assert "test" in playground.status.value


def test_the_noise_slider_makes_a_new_data_set(playground):
    playground.configure(noise=0.0)
    calm = list(playground.X)
    playground.noise_box.value = 0.4
    assert playground.settings["noise"] == 0.4 and playground.X != calm and playground.epoch == 0
    playground.configure(noise=0.15)


def test_draw_every_must_be_a_positive_int():
    with pytest.raises(ValueError, match="draw_every must be an int >= 1"):
        Playground(n_samples=40, draw_every=0)


def test_an_error_in_the_training_thread_is_shown_in_the_widget(playground, monkeypatch):
    playground.reset()

    def broken(**options):
        raise FloatingPointError("the loss is nan")

    monkeypatch.setattr(playground, "step", broken)
    playground.start()
    playground._thread.join()
    assert "training stopped at epoch 1: the loss is nan" in playground.status.value
    assert not playground.run_button.value and playground.run_button.description == "run"


def test_the_network_is_drawn_with_a_line_per_weight_coloured_by_its_sign(playground):
    import numpy as np
    from matplotlib.colors import to_hex
    from matplotlib.figure import Figure

    from nn.plot import CLASS_COLORS

    playground.reset()
    ax = Figure().subplots()
    grid = np.zeros((40 * 40, 2))
    playground._draw_network(ax, [grid, *playground.hidden_outputs(grid)])
    weights = [w.data for layer in playground.model.layers for n in layer.neurons for w in n.w]
    assert len(ax.lines) == len(weights) == 2 * 4 + 4 * 4 + 4
    colors = [to_hex(line.get_color()) for line in ax.lines]
    assert colors == [CLASS_COLORS[0] if w < 0 else CLASS_COLORS[1] for w in weights]
    widths = [line.get_linewidth() for line in ax.lines]
    heaviest = max(range(len(weights)), key=lambda k: abs(weights[k]))
    assert widths[heaviest] == max(widths)  # width grows with |w|
    assert len(ax.images) == 2 + 4 + 4 + 1  # a heatmap per input, neuron and the output


def test_points_stand_out_from_the_regions_in_the_class_colours(playground):
    import numpy as np
    from matplotlib.colors import to_hex
    from matplotlib.figure import Figure

    from nn.plot import CLASS_COLORS

    playground.reset()
    ax = Figure().subplots()
    xs = ys = np.linspace(-1, 1, 40)
    playground._draw_boundary(ax, xs, ys, np.zeros((1600, 1)), (-1, 1, -1, 1))
    train, test = ax.collections[-2:]
    assert {to_hex(c) for c in train.get_edgecolors()} == {"#ffffff"}
    faces = [to_hex(c) for c in train.get_facecolors()]
    assert faces == [CLASS_COLORS[label] for label in playground.y]
    assert {to_hex(c) for c in test.get_facecolors()} == {"#ffffff"}  # hollow
