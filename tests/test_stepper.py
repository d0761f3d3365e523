"""backward_steps, the stepper's frames, its files and its widget."""

import io
import json
import math
import re

import pytest
from PIL import Image

from autograd_core import Value, backward_steps
from autograd_core.pictures.stepper import Stepper, frames, save_gif, save_html
from nn import MLP, losses
from nn.data import make_moons


def diamond() -> tuple[Value, Value, Value, Value]:
    """y = u * v with u = x + 1 and v = x * 5 at x = 3: two paths from x to y."""
    x = Value(3.0, label="x")
    u = x + 1
    u.label = "u"
    v = x * 5
    v.label = "v"
    y = u * v
    y.label = "y"
    return x, u, v, y


def test_the_diamond_steps_in_backwards_order_with_the_hand_computed_numbers():
    x, u, v, y = diamond()
    steps = list(backward_steps(y))
    # By hand: dy/du = v = 15, dy/dv = u = 4; dv/dx = 5, du/dx = 1; so dy/dx = 4*5 + 15*1 = 35.
    assert [(s.number, s.node, s.upstream) for s in steps] == [
        (1, y, 1.0),
        (2, v, 4.0),
        (3, u, 15.0),
    ]
    table = [
        [(c.input.label, c.local, c.contribution, c.before, c.after) for c in s.contributions]
        for s in steps
    ]
    assert table[0] == [("u", 15.0, 15.0, 0.0, 15.0), ("v", 4.0, 4.0, 0.0, 4.0)]
    assert table[1][0] == ("x", 5.0, 20.0, 0.0, 20.0)
    assert table[2][0] == ("x", 1.0, 15.0, 20.0, 35.0)  # the running sum at the shared node
    assert [c.shared for s in steps for c in s.contributions] == [
        False,
        False,
        True,
        False,
        True,
        False,
    ]
    assert 10 * x.data + 5 == 35.0  # d/dx (x + 1)(5x) = 10x + 5


def test_the_steps_end_with_the_gradients_backward_computes():
    X, y = make_moons(n_samples=10, noise=0.1, seed=0)
    model = MLP(2, [4, 4, 1], activation="tanh", seed=0)
    loss = losses.binary_cross_entropy([model(x) for x in X], y)
    final = {}
    for step in backward_steps(loss):
        for c in step.contributions:
            final[c.input] = c.after
    assert all(node.grad == 0.0 for node in final)  # the steps write no .grad
    loss.backward()
    assert all(final[node] == node.grad for node in final)  # bit for bit
    assert all(final[p] == p.grad for p in model.parameters())


def test_the_seed_scales_every_step():
    _, _, _, y = diamond()
    (first, *_, last) = backward_steps(y, grad=2.0)
    assert first.upstream == 2.0 and last.contributions[0].after == 70.0


def test_bad_roots_and_seeds_are_refused():
    with pytest.raises(TypeError, match="backward_steps needs a Value, got float"):
        list(backward_steps(1.0))
    with pytest.raises(ValueError, match="backward seed must be finite, got nan"):
        list(backward_steps(Value(1.0), grad=math.nan))


def test_a_step_prints_local_times_upstream_and_the_running_sum():
    _, _, _, y = diamond()
    text = str(list(backward_steps(y))[2])
    assert text.splitlines()[0] == "step 3: u, upstream gradient 15"
    assert "d u / d x = 1:  1 x 15 = 15;  x.grad 20 + 15 = 35  (shared: the paths add up)" in text


def test_frames_show_the_seed_then_each_step_with_gradients_so_far():
    _, _, _, y = diamond()
    pictures = frames(y)
    assert len(pictures) == 4  # the seed and three steps
    seed, *_, last = [p.source for p in pictures]
    assert "grad ?" in seed and "grad 1.0000" in seed and "grad 35.0000" not in seed
    assert "grad ?" not in last and "grad 35.0000" in last
    assert "x.grad = 20 + 15 = 35" in last  # the caption of step 3
    assert re.search(r"label=\"?1\"? color=\"#e6550d\"", last)  # du/dx = 1, highlighted


def test_save_gif_writes_one_frame_per_moment(tmp_path):
    _, _, _, y = diamond()
    path = save_gif(y, tmp_path / "steps.gif", seconds_per_frame=0.5)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 4
        assert gif.info["duration"] == 500 and gif.info["loop"] == 0


def test_save_gif_refuses_a_bad_frame_time(tmp_path):
    _, _, _, y = diamond()
    with pytest.raises(ValueError, match="seconds_per_frame must be a positive number, got 0"):
        save_gif(y, tmp_path / "steps.gif", seconds_per_frame=0)
    assert not (tmp_path / "steps.gif").exists()


def test_save_html_holds_every_frame_in_one_file(tmp_path):
    _, _, _, y = diamond()
    page = save_html(y, tmp_path / "steps.html").read_text()
    svgs = json.loads(re.search(r"const frames = (.*);", page).group(1))
    assert len(svgs) == 4 and all(svg.lstrip().startswith("<?xml") for svg in svgs)
    assert "grad 35.0000" in svgs[-1] and "grad 35.0000" not in svgs[0]
    assert 'max="3"' in page


def test_the_widget_steps_forward_and_back_with_buttons_and_slider():
    x, u, v, y = diamond()
    stepper = Stepper(y)
    assert stepper.index == 0 and stepper.step is None
    assert stepper.back_button.disabled and not stepper.next_button.disabled
    seed_picture = stepper.picture.value
    stepper.next_button.click()
    assert stepper.index == 1 and stepper.slider.value == 1 and stepper.step.node is y
    assert stepper.picture.value != seed_picture and "<svg" in stepper.picture.value
    assert "15 x 1 = 15" in stepper.arithmetic.value
    stepper.slider.value = 3
    assert stepper.step.node is u and "x.grad 20 + 15 = 35" in stepper.arithmetic.value
    assert stepper.next_button.disabled
    stepper.next()  # past the end: stays on the last frame
    assert stepper.index == 3
    stepper.back_button.click()
    assert stepper.index == 2 and stepper.step.node is v and stepper.slider.value == 2
    assert x.grad == 0.0  # stepping never touches the gradients


def test_negative_terms_are_bracketed_and_minus_zero_is_written_zero():
    a, b = Value(-2.0, label="a"), Value(0.0, label="b")
    y = (a * b) * -1.0
    y.label = "y"
    second = str(list(backward_steps(y))[1])
    # upstream -1; d(ab)/da = b = 0 gives 0 x -1 = -0.0, shown as 0
    assert "d (*) / d a = 0:  0 x -1 = 0;  a.grad 0 + 0 = 0" in second
    assert "d (*) / d b = -2:  -2 x -1 = 2;  b.grad 0 + 2 = 2" in second
    first = str(list(backward_steps(y))[0])
    assert "(*).grad 0 + (-1) = -1" in first


def test_the_widget_names_nodes_as_the_picture_does():
    w = Value(2.0, label="layer1.neuron1.w0")
    out = (w * Value(3.0)).tanh()
    out.label = "layer1.neuron1.out"
    stepper = Stepper(out)
    stepper.show(2)
    assert "d v1 / d x0 = 2" in stepper.arithmetic.value  # the input drawn as x0, w*x as v1
    assert "x0" in stepper.picture.value and "v1" in stepper.picture.value


def test_save_html_keeps_unicode_labels_as_typed(tmp_path):
    x = Value(2.0, label="ünï ∂")
    y = x * x
    y.label = "y</script>"
    page = save_html(y, tmp_path / "steps.html").read_text(encoding="utf-8")
    assert "</script>" not in page.split("<script>")[1].removesuffix("</script></body></html>\n")
    svgs = json.loads(re.search(r"const frames = (.*);", page).group(1))
    assert "ünï ∂" in svgs[-1] and "y&lt;/script&gt;" in svgs[-1]


@pytest.mark.parametrize("label", ["nul\x00", "esc\x1b[31m", "x" * 20_000, ".lead"])
def test_hostile_labels_draw_in_every_frame(label):
    x = Value(2.0, label=label)
    y = (x * 3.0).tanh()
    y.label = label
    for frame in frames(y):
        svg = frame.pipe(format="svg").decode()  # dot fails on a label it cannot parse
        assert "<svg" in svg
    shown = frame.source
    if len(label) > 1000:
        assert "... (20000 characters)" in shown
    else:
        assert repr(label)[1:-1] in shown or label in shown


def node_positions(frame) -> dict[str, str]:
    """Where Graphviz puts each node of a frame (its 'x,y' in points), from a JSON layout."""
    layout = json.loads(frame.pipe(format="json"))
    return {item["name"]: item["pos"] for item in layout["objects"] if "pos" in item}


def test_every_frame_has_the_same_layout():
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    n = x1 * w1 + x2 * w2 + Value(6.88, label="b")  # the lecture's tanh neuron
    pictures = frames(n.tanh())
    first = node_positions(pictures[0])
    assert len(first) == 10 + 5  # ten values and five ops
    for picture in pictures[1:]:
        assert node_positions(picture) == first
    sizes = {Image.open(io.BytesIO(p.pipe(format="png"))).size for p in pictures}
    assert len(sizes) == 1  # and the pictures are the same size


def test_the_arrows_point_back_from_each_node_to_its_inputs():
    _, _, _, y = diamond()
    for picture in frames(y):
        edges = [line for line in picture.source.splitlines() if "->" in line]
        assert len(edges) == 3 + 6 and all("dir=back" in edge for edge in edges)


def test_unlabelled_nodes_get_names_no_two_boxes_share():
    x = Value(2.0, label="x")
    y = (x * 3.0 + 1.0).tanh()  # two unlabelled inputs (x0, x1) and three unlabelled ops
    pictures = frames(y)
    names = re.findall(r"<b>([^<]*)</b>", pictures[-1].source.split("\n", 2)[2])
    assert sorted(names) == ["v1", "v2", "v3", "x", "x0", "x1"]
    captions = [re.search(r"step \d+ of 3: [^<]*", p.source).group(0) for p in pictures[1:]]
    assert captions == [
        "step 1 of 3: v3 = tanh(...), upstream gradient 1",
        f"step 2 of 3: v2 = +(...), upstream gradient {1 - math.tanh(7.0) ** 2:.4g}",
        f"step 3 of 3: v1 = *(...), upstream gradient {1 - math.tanh(7.0) ** 2:.4g}",
    ]


def test_the_constant_1_of_every_layer_gets_a_name_of_its_own():
    from nn import Layer

    first, second = Layer(2, 2, "tanh", seed=0), Layer(2, 1, "linear", seed=1)
    first.set_labels("first.")
    second.set_labels("second.")
    out = second(first([0.5, -1.0]))  # each layer called alone makes its own constant 1
    names = re.findall(r"<b>([^<]*)</b>", frames(out)[0].source.split("\n", 2)[2])
    assert len(names) == len(set(names))
    assert "1" not in names and {"c1", "c2"} <= set(names)  # the biases' two constants


def test_boxes_take_the_gradient_colour_once_their_gradient_has_arrived():
    from autograd_core.pictures.draw import grad_color

    _, _, _, y = diamond()
    pictures = [p.source for p in frames(y)]
    x_box = [line for line in pictures[0].splitlines() if "<b>x</b>" in line][0]
    assert "bgcolor" not in x_box  # no gradient yet: white
    x_box = [line for line in pictures[-1].splitlines() if "<b>x</b>" in line][0]
    assert f'bgcolor="{grad_color(35.0)}"' in x_box


def test_the_html_player_scales_its_pictures_to_the_window(tmp_path):
    _, _, _, y = diamond()
    page = save_html(y, tmp_path / "steps.html").read_text()
    assert "#picture svg { max-width: 100%; height: auto; }" in page


def test_the_widget_scales_its_picture_to_the_column():
    _, _, _, y = diamond()
    stepper = Stepper(y)
    assert '<svg style="max-width: 100%; height: auto" ' in stepper.picture.value


def test_the_steps_take_zero_times_inf_as_zero_as_backward_does():
    x = Value(-1.0, label="x")
    y = x.relu().sqrt()  # relu'(-1) = 0 times sqrt'(0) = inf
    *_, last = backward_steps(y)
    (c,) = last.contributions
    assert (c.local, c.contribution, c.after) == (0.0, 0.0, 0.0)
    y.backward()
    assert x.grad == c.after == 0.0


def test_the_steps_leave_every_grad_as_it_was():
    x = Value(2.0, label="x")
    y = (x * x).tanh()
    x.grad = 5.0
    steps = list(backward_steps(y))
    assert x.grad == 5.0 and y.grad == 0.0
    assert steps[-1].contributions[-1].after == 2.0 * 2.0 * (1.0 - y.data**2)
