"""nn.plot: the decision boundary and the training history draw on matplotlib Axes."""

import matplotlib.pyplot as plt
import pytest
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure

from autograd_core import Value
from nn.data import make_blobs, make_moons
from nn.modules import MLP
from nn.plot import class_scores, decision_boundary, history
from nn.train import History

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def agg_backend():
    plt.switch_backend("Agg")  # no display: figures draw to files only
    yield
    plt.close("all")


def new_axes():
    return Figure().subplots()


def filled_regions(ax):
    return [artist for artist in ax.collections if isinstance(artist, ContourSet)]


def test_binary_decision_boundary_draws_both_regions_and_every_point(tmp_path):
    X, y = make_moons(30, seed=0)
    ax = new_axes()
    # class 1 right of x1 = 0.5: both classes own part of the grid
    assert decision_boundary(lambda x: Value(x[0] - 0.5), X, y, ax=ax, resolution=10) is ax
    assert len(filled_regions(ax)) == 2
    (points,) = [artist for artist in ax.collections if not isinstance(artist, ContourSet)]
    assert len(points.get_offsets()) == len(X)
    ax.figure.savefig(tmp_path / "boundary.png")
    assert (tmp_path / "boundary.png").read_bytes().startswith(PNG_SIGNATURE)


def test_multi_class_decision_boundary_draws_a_region_per_class():
    X, y = make_blobs(30, centers=3, seed=0)

    def three_scores(x):
        return [Value(-x[0]), Value(x[0]), Value(x[1])]

    ax = decision_boundary(three_scores, X, y, ax=new_axes(), resolution=20)
    assert len(filled_regions(ax)) == 3


def test_a_class_the_model_never_predicts_gets_no_region():
    X, y = make_moons(20, seed=0)
    ax = decision_boundary(lambda x: Value(-100.0), X, y, ax=new_axes(), resolution=5)
    assert len(filled_regions(ax)) == 1


def test_the_grid_is_evaluated_without_recording_a_graph():
    X, y = make_moons(20, seed=0)
    model = MLP(2, [4, 1], seed=0)
    outputs = []

    def recording_model(x):
        outputs.append(model(x))
        return outputs[-1]

    decision_boundary(recording_model, X, y, ax=new_axes(), resolution=4)
    assert len(outputs) == 16
    assert all(out.inputs == () for out in outputs)


def test_without_ax_it_draws_on_a_new_pyplot_figure():
    X, y = make_moons(20, seed=0)
    ax = decision_boundary(MLP(2, [4, 1], seed=0), X, y, resolution=5)
    assert ax.figure is plt.gcf()


def test_class_scores_of_one_output_compare_it_with_the_threshold():
    assert class_scores(Value(0.3)) == [0.0, 0.3]  # 0.3 > 0: class 1
    assert class_scores(Value(0.3), threshold=0.5) == [0.5, 0.3]  # 0.3 < 0.5: class 0
    assert class_scores([Value(1.0), Value(2.0)]) == [1.0, 2.0]


@pytest.mark.parametrize(
    ("X", "y", "problem"),
    [
        ([[0.0, 1.0, 2.0]], [0], "2-D inputs"),
        ([[0.0, 1.0]], [0, 1], "as many labels as points"),
        ([], [], "as many labels as points"),
    ],
)
def test_decision_boundary_refuses_data_it_cannot_draw(X, y, problem):
    with pytest.raises(ValueError, match=problem):
        decision_boundary(MLP(2, [1], seed=0), X, y, ax=new_axes())


def test_history_draws_loss_and_accuracy_per_epoch(tmp_path):
    record = History(loss=[0.9, 0.5, 0.2], accuracy=[0.5, 0.75, 1.0])
    ax = new_axes()
    assert history(record, ax=ax) is ax
    (loss_line,) = ax.get_lines()
    assert list(loss_line.get_xdata()) == [1, 2, 3]
    assert list(loss_line.get_ydata()) == record.loss
    (accuracy_ax,) = [other for other in ax.figure.axes if other is not ax]
    (accuracy_line,) = accuracy_ax.get_lines()
    assert list(accuracy_line.get_ydata()) == record.accuracy
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["loss", "accuracy"]
    ax.figure.savefig(tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes().startswith(PNG_SIGNATURE)


def test_history_draws_each_steps_loss_faintly_behind_a_few_long_epochs():
    # two epochs of three steps: the epochs' means at 1 and 2, the steps at 1/3 .. 2
    record = History(loss=[0.8, 0.5], accuracy=[0.5, 0.7], step_loss=[1.0, 0.8, 0.6, 0.5, 0.5, 0.5])
    ax = history(record, ax=new_axes())
    by_label = {line.get_label(): line for line in ax.get_lines()}
    steps = by_label["loss per step"]
    assert list(steps.get_ydata()) == record.step_loss
    assert list(steps.get_xdata()) == pytest.approx([1 / 3, 2 / 3, 1.0, 4 / 3, 5 / 3, 2.0])
    assert steps.get_alpha() < 1.0 and by_label["loss"].get_alpha() in (None, 1.0)
    assert list(by_label["loss"].get_xdata()) == [1, 2]
    plt.close(ax.figure)
    # one step an epoch (full batch): nothing more to draw than the means
    ax = history(History(loss=[0.8, 0.5], accuracy=[], step_loss=[0.8, 0.5]), ax=new_axes())
    assert [line.get_label() for line in ax.get_lines()] == ["loss"]
    plt.close(ax.figure)


def test_history_without_accuracy_draws_the_loss_alone():
    ax = history(History(loss=[1.0, 0.5], accuracy=[]), ax=new_axes())
    assert len(ax.figure.axes) == 1
    assert len(ax.get_lines()) == 1


def test_empty_history_is_refused():
    with pytest.raises(ValueError, match="empty"):
        history(History(), ax=new_axes())


def test_history_draws_validation_curves_dashed_beside_the_training_ones():
    record = History(loss=[0.9, 0.5], accuracy=[0.6, 0.8], val_loss=[1.0, 0.7],
                     val_accuracy=[0.5, 0.7])  # fmt: skip
    ax = history(record)
    labels = {line.get_label(): line for axis in ax.figure.axes for line in axis.get_lines()}
    assert set(labels) == {"loss", "validation loss", "accuracy", "validation accuracy"}
    assert list(labels["validation loss"].get_ydata()) == [1.0, 0.7]
    assert labels["validation accuracy"].get_linestyle() == "--"
    plt.close(ax.figure)
    ax = history(record, held_out="test")  # the command line's held-out part is a test set
    labels = {line.get_label() for axis in ax.figure.axes for line in axis.get_lines()}
    assert labels == {"loss", "test loss", "accuracy", "test accuracy"}
    plt.close(ax.figure)


def test_history_of_a_regression_draws_r2():
    ax = history(History(loss=[0.5, 0.2], r2=[0.3, 0.8], val_loss=[0.6, 0.3], val_r2=[0.2, 0.7]))
    labels = {line.get_label() for axis in ax.figure.axes for line in axis.get_lines()}
    assert labels == {"loss", "validation loss", "R^2", "validation R^2"}
    plt.close(ax.figure)


def test_the_gradient_scale_gives_matplotlib_the_colours_draw_dot_gives_boxes():
    from matplotlib.colors import to_hex

    from autograd_core.pictures.draw import grad_color
    from nn.plot import grad_scale

    colormap, norm = grad_scale()
    for grad in (1e-9, 1e-8, 3e-4, 0.15, 0.69, 12.0, 1e2, 1e5):
        ours = [int(grad_color(grad)[i : i + 2], 16) for i in (1, 3, 5)]
        theirs = [int(to_hex(colormap(norm(grad)))[i : i + 2], 16) for i in (1, 3, 5)]
        assert all(abs(a - b) <= 2 for a, b in zip(ours, theirs, strict=True)), grad


def test_grad_colorbar_is_labelled_in_decades_of_grad():
    from nn.plot import grad_colorbar

    ax = new_axes()
    bar = grad_colorbar(ax)
    assert bar.ax.get_ylabel() == "|grad|"
    assert bar.norm.vmin == 1e-8 and bar.norm.vmax == 1e2
