"""draw_dot: the picture of a computation graph, rendered by the real Graphviz `dot` program."""

import html
import math
import random
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from autograd_core import Value, dot, draw_dot, vsum
from autograd_core.pictures.draw import grad_color, module_of

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module", autouse=True)
def dot_program():
    if shutil.which("dot") is None:
        pytest.fail("Graphviz's `dot` program is missing: install the graphviz system package")


def render(v: Value, **options) -> ET.Element:
    """The SVG that `dot` makes of v's graph, parsed: it must be well-formed XML."""
    return ET.fromstring(draw_dot(v, **options).pipe(format="svg"))


def texts(svg: ET.Element) -> list[str]:
    """Every line of text in the picture, unescaped by the XML parser."""
    return [t.text for t in svg.iter(SVG + "text")]


def nodes(svg: ET.Element) -> list[ET.Element]:
    return [g for g in svg.iter(SVG + "g") if g.get("class") == "node"]


def edges(svg: ET.Element) -> list[ET.Element]:
    return [g for g in svg.iter(SVG + "g") if g.get("class") == "edge"]


def neuron() -> tuple[Value, list[Value]]:
    """tanh(w1*x1 + w2*x2 + b) with every node labelled, after backward."""
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    x1w1 = x1 * w1
    x1w1.label = "x1*w1"
    x2w2 = x2 * w2
    x2w2.label = "x2*w2"
    n = x1w1 + x2w2 + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    o.backward()
    return o, [x1, x2, w1, w2, b, x1w1, x2w2, n, o]


def test_every_value_shows_its_label_data_and_grad_to_four_decimals():
    o, values = neuron()
    shown = texts(render(o))
    for v in values:
        assert v.label in shown
        assert f"data {v.data:.4f}" in shown
        assert f"grad {v.grad:.4f}" in shown
    assert "grad 0.5000" in shown  # d tanh(n)/dn at tanh(n) = 1/sqrt(2): the textbook number


def test_each_op_is_its_own_node_between_its_inputs_and_its_output():
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c = (a * b).tanh()
    svg = render(c)
    # values a, b, a*b, c and ops *, tanh; edges a->*, b->*, *->ab, ab->tanh, tanh->c
    assert len(nodes(svg)) == 6
    assert len(edges(svg)) == 5
    assert len(list(svg.iter(SVG + "ellipse"))) == 2
    assert "*" in texts(svg) and "tanh" in texts(svg)


def test_a_value_used_twice_is_drawn_once_with_the_sum_of_its_paths():
    a = Value(3.0, label="a")
    y = a * a + a
    y.backward()
    svg = render(y)
    assert texts(svg).count("a") == 1
    assert "grad 7.0000" in texts(svg)  # d(a^2 + a)/da = 2a + 1
    assert len(nodes(svg)) == 5  # a, a*a, y and ops *, +


def test_show_grad_false_draws_data_only():
    o, _ = neuron()
    shown = texts(render(o, show_grad=False))
    assert "data 0.7071" in shown
    assert not any(t.startswith("grad") for t in shown)


@pytest.mark.parametrize(("rankdir", "wide"), [("LR", True), ("RL", True), ("TB", False)])
def test_rankdir_sets_the_direction_the_graph_grows(rankdir, wide):
    v = Value(0.5, label="x")
    for _ in range(5):
        v = v.sin()
    svg = render(v, rankdir=rankdir)
    width, height = float(svg.get("width")[:-2]), float(svg.get("height")[:-2])
    assert (width > height) is wide


def test_an_unknown_rankdir_is_refused():
    with pytest.raises(ValueError, match="rankdir must be one of LR, RL, TB, BT, got 'up'"):
        draw_dot(Value(1.0), rankdir="up")


def test_only_a_value_can_be_drawn():
    with pytest.raises(TypeError, match="draw_dot draws a Value, got float"):
        draw_dot(1.0)


def test_a_graph_over_max_nodes_is_refused_with_its_size_and_the_way_out():
    v = Value(1.0)
    for _ in range(39_999):
        v = -v
    with pytest.raises(ValueError, match=r"has 40000 values.*max_nodes=500.*pass max_nodes=40000"):
        draw_dot(v)


def test_max_nodes_is_the_largest_graph_drawn():
    v = Value(1.0)
    for _ in range(9):
        v = -v
    assert "data -1.0000" in draw_dot(v, max_nodes=10).source
    with pytest.raises(ValueError, match="has 10 values, more than max_nodes=9"):
        draw_dot(v, max_nodes=9)


@pytest.mark.parametrize(
    "label",
    ['say "hi"', "it's", "{a|b}", "<x> & y", "a -> b; }", "\\n is not a newline", "α ∂ ∇"],
)
def test_labels_with_dot_and_html_syntax_render_as_typed(label):
    a = Value(1.0, label=label)
    b = a * 2
    b.label = label
    shown = texts(render(b))
    assert shown.count(label) == 2


def test_a_newline_in_a_label_starts_a_new_line():
    shown = texts(render(Value(1.0, label="first\nsecond")))
    assert "first" in shown and "second" in shown


def test_unprintable_characters_in_a_label_show_as_escapes():
    # A raw control code is not allowed in XML: dot would fail on the whole graph.
    shown = texts(render(Value(1.0, label="tab\there\x01")))
    assert "tab\\there\\x01" in shown


def test_the_draw_method_is_draw_dot():
    o, _ = neuron()
    options = {"rankdir": "TB", "show_grad": False, "max_nodes": 20}
    assert o.draw(**options).source == draw_dot(o, **options).source
    assert o.draw().source == draw_dot(o).source


def test_a_create_graph_gradient_is_drawn_as_its_number():
    x = Value(3.0, label="x")
    y = x * x * x
    y.backward(create_graph=True)
    assert isinstance(x.grad, Value)
    assert "grad 27.0000" in texts(render(y))  # d(x^3)/dx = 3x^2
    x.grad.label = "dy/dx"
    assert "dy/dx" in texts(render(x.grad))  # the gradient's own graph can be drawn too


# -- modules, levels, colours -------------------------------------------------------------------


def labelled_mlp(
    sizes: list[int], x: list[float], activation: str = "tanh", seed: int = 0
) -> tuple[Value, list[Value]]:
    """A hand-built MLP labelled as `nn` labels one: layer<i>.neuron<j>.w<k> / .b / .out.

    Each neuron is one `dot` node over [w, b] and [x, 1] and an activation (the last layer is
    linear). Returns the output (the sum of the outputs if there are several) and the
    parameters.
    """
    rng = random.Random(seed)
    signal = [Value(v) for v in x]
    one = Value(1.0)
    parameters = []
    for i, width in enumerate(sizes[1:], start=1):
        last = i == len(sizes) - 1
        outputs = []
        for j in range(1, width + 1):
            name = f"layer{i}.neuron{j}"
            ws = [Value(rng.gauss(0, 1), f"{name}.w{k}") for k in range(len(signal))]
            b = Value(0.1, f"{name}.b")
            parameters += [*ws, b]
            out = dot([*ws, b], [*signal, one])
            out = out if last else getattr(out, activation)()
            out.label = f"{name}.out"
            outputs.append(out)
        signal = outputs
    return (signal[0] if len(signal) == 1 else vsum(signal)), parameters


def titles(svg: ET.Element, kind: str) -> list[str]:
    """The titles (dot names) of the SVG groups of one class: 'node', 'edge' or 'cluster'."""
    return [g.find(SVG + "title").text for g in svg.iter(SVG + "g") if g.get("class") == kind]


def line_of(source: str, text: str) -> str:
    """The line of dot source that defines the node showing `text`."""
    (line,) = [line for line in source.splitlines() if text in line]
    return line


def test_module_of_a_label_is_the_label_up_to_its_last_dot():
    assert module_of("layer1.neuron3.w0") == "layer1.neuron3"
    assert module_of("layer1.neuron3") == "layer1"
    assert module_of("w0") == ""


def test_each_module_is_a_cluster_inside_its_parent_module():
    out, _ = labelled_mlp([2, 2, 1], [0.5, -1.0])
    out.backward()
    svg = render(out)
    assert sorted(titles(svg, "cluster")) == [
        "cluster_layer1",
        "cluster_layer1_neuron1",
        "cluster_layer1_neuron2",
        "cluster_layer2",
        "cluster_layer2_neuron1",
    ]
    clusters = {g.find(SVG + "title").text: g for g in svg.iter(SVG + "g")}
    assert [t.text for t in clusters["cluster_layer1_neuron2"].iter(SVG + "text")] == ["neuron2"]
    # In the dot source the neuron's subgraph is written inside its layer's.
    layer1 = draw_dot(out).source.split("subgraph cluster_layer1 {")[1]
    assert "subgraph cluster_layer1_neuron2 {" in layer1


def test_the_weighted_sum_of_a_neuron_is_drawn_inside_the_neuron():
    out, _ = labelled_mlp([2, 2, 1], [0.5, -1.0])
    source = draw_dot(out).source
    cluster = source.split("subgraph cluster_layer1_neuron1 {")[1].split("}")[0]
    assert "layer1.neuron1.w0" in cluster and "layer1.neuron1.out" in cluster
    assert "label=dot" in cluster and "label=tanh" in cluster


def test_unlabelled_inputs_are_named_x0_x1_and_the_bias_input_is_1():
    out, _ = labelled_mlp([2, 1], [0.5, -1.0])
    shown = texts(render(out))
    assert "x0" in shown and "x1" in shown and "x2" not in shown
    assert "1" in shown


def test_inputs_can_be_given_names():
    out, _ = labelled_mlp([2, 1], [0.5, -1.0])
    shown = texts(render(out, input_names=["petal length", "petal width"]))
    assert "petal length" in shown and "petal width" in shown and "x0" not in shown


def test_more_input_names_than_inputs_is_refused():
    out, _ = labelled_mlp([2, 1], [0.5, -1.0])
    with pytest.raises(ValueError, match="input_names has 3 names but the graph has 2"):
        draw_dot(out, input_names=["a", "b", "c"])


def test_edge_labels_show_each_local_partial():
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c = (a * b).tanh()
    edge_texts = [t for g in edges(render(c, edge_labels=True)) for t in texts(g)]
    # d(ab)/da = b = -3, d(ab)/db = a = 2, d tanh(u)/du = 1 - tanh(-6)^2
    assert sorted(edge_texts) == sorted(["-3", "2", f"{1 - math.tanh(-6.0) ** 2:.4g}"])


def test_neurons_level_draws_one_box_per_neuron_with_its_activation_and_parameters():
    out, _ = labelled_mlp([2, 3, 1], [0.5, -1.0])
    out.backward()
    svg = render(out, level="neurons")
    assert len(nodes(svg)) == 2 + 3 + 1  # x0, x1, three hidden neurons, the output neuron
    assert not list(svg.iter(SVG + "ellipse"))  # no op nodes
    shown = texts(svg)
    for j in (1, 2, 3):  # named inside their layer's cluster
        assert f"neuron{j}" in shown
    assert shown.count("tanh") == 3 and shown.count("linear") == 1
    assert shown.count("3 parameters") == 3 and shown.count("4 parameters") == 1
    assert f"out {out.data:.4f}" in shown
    assert len(edges(svg)) == 2 * 3 + 3  # every input to every neuron, every neuron to the output
    assert sorted(titles(svg, "cluster")) == ["cluster_layer1", "cluster_layer2"]


def test_layers_level_draws_one_box_per_layer_with_width_activation_and_parameter_count():
    out, _ = labelled_mlp([64, 32, 10], [0.01 * i for i in range(64)], activation="relu")
    out.backward()
    svg = render(out, level="layers", max_nodes=10)  # coarse levels ignore the node limit
    shown = texts(svg)
    assert "32 neurons, relu" in shown and "64 * 32 + 32 = 2080 parameters" not in shown
    assert "2080 parameters" in shown  # 64 weights and a bias for each of 32 neurons
    assert "10 neurons, linear" in shown and "330 parameters" in shown
    assert "64 values" in shown
    assert "1 op after the model" in shown  # the sum of the ten outputs
    assert len(nodes(svg)) == 4 and len(edges(svg)) == 3  # inputs, layer1, layer2, output


def test_an_unknown_level_or_color_is_refused():
    with pytest.raises(ValueError, match="level must be one of scalars, neurons, layers, got 'x'"):
        draw_dot(Value(1.0), level="x")
    with pytest.raises(ValueError, match="color must be None or 'grad', got 'red'"):
        draw_dot(Value(1.0), color="red")


def test_color_grad_fills_each_value_by_its_gradient_on_the_fixed_scale():
    p, q, z = Value(1.0, label="p"), Value(1.0, label="q"), Value(1.0, label="z")
    y = 0.001 * p + 10 * q + 0 * z
    y.backward()  # p.grad = 1e-3, q.grad = 10, y.grad = 1, z.grad = 0
    source = draw_dot(y, color="grad").source
    assert f'bgcolor="{grad_color(1e-3)}"' in line_of(source, "<b>p</b>")
    assert f'bgcolor="{grad_color(10.0)}"' in line_of(source, "<b>q</b>")
    assert 'bgcolor="#d9d9d9"' in line_of(source, "<b>z</b>")  # 0 has no logarithm: grey
    legend = line_of(source, "|grad|")
    for decade in range(-8, 3):
        assert f'<td bgcolor="{grad_color(10.0**decade)}">' in legend and f"1e{decade}<" in legend


def test_the_grad_scale_is_matplotlibs_ylorrd_over_ten_decades():
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm

    colormap, norm = colormaps["YlOrRd"], LogNorm(1e-8, 1e2)
    for grad in (3e-9, 1e-8, 2e-6, 0.15, 0.69, 1.0, -7.0, 1e2, 5e3):
        expected = colormap(float(min(max(norm(abs(grad)), 0.0), 1.0)))[:3]
        got = [int(grad_color(grad)[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        assert got == pytest.approx(expected, abs=2 / 255), grad


def test_larger_gradients_are_darker_in_every_picture_alike():
    def brightness(color: str) -> float:
        r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
        return 0.299 * r + 0.587 * g + 0.114 * b

    decades = [brightness(grad_color(10.0**k)) for k in range(-8, 3)]
    assert decades == sorted(decades, reverse=True) and len(set(decades)) == len(decades)
    assert grad_color(0.15) != grad_color(0.69)  # no bands: a factor of 4.6 shows
    # An exploding layer's 1e1 is darker than a healthy output layer's 1e-1, whatever else
    # is in the picture: the scale does not stretch to each graph.
    fills = []
    for others in (0.0, 10.0, 1e-6):
        a, b = Value(1.0, label="a"), Value(1.0, label="b")
        y = 0.1 * a + others * b
        y.backward()
        fills.append(
            re.search(r'bgcolor="(#\w+)"', line_of(draw_dot(y, color="grad").source, "<b>a</b>"))
        )
    assert [fill.group(1) for fill in fills] == [grad_color(0.1)] * 3


def test_a_relu_that_is_zero_on_every_sample_is_marked_dead():
    w = Value(-1.0, label="layer1.neuron1.w0")
    outs = []
    for x in (1.0, 2.0, 3.0):
        out = (w * x).relu()
        out.label = "layer1.neuron1.out"
        outs.append(out)
    total = outs[0] + outs[1] + outs[2]
    total.backward()
    assert texts(render(total, color="grad")).count("dead ReLU") == 3
    assert "dead ReLU" not in texts(render(total))  # marks come with the colours
    alive = (w * -1.0).relu()
    alive.label = "layer1.neuron1.out"  # the same unit, positive on one more sample
    assert "dead ReLU" not in texts(render(total + alive, color="grad"))


def test_a_tanh_with_a_slope_under_one_percent_is_marked_saturated():
    flat, steep = Value(5.0, label="flat"), Value(0.5, label="steep")
    y = flat.tanh() + steep.tanh()  # tanh'(5) = 1.8e-4, tanh'(0.5) = 0.79
    y.backward()
    assert texts(render(y, color="grad")).count("saturated tanh") == 1


def test_a_layer_far_below_the_output_layers_gradient_is_marked_vanishing():
    w1 = Value(1.0, label="layer1.neuron1.w0")
    w2 = Value(1e-4, label="layer2.neuron1.w0")
    h = w1 * 1.0
    h.label = "layer1.neuron1.out"
    out = w2 * h
    out.label = "layer2.neuron1.out"
    out.backward()  # w1.grad = 1e-4, w2.grad = 1
    shown = texts(render(out, color="grad"))
    assert "vanishing: 1e-04 x output layer" in shown
    assert any("vanishing" in t for t in texts(render(out, level="layers", color="grad")))
    assert not any(t.startswith("exploding") for t in shown)


def test_input_names_must_be_strings():
    with pytest.raises(TypeError, match="input_names must be a list of str"):
        draw_dot(Value(1.0) * 2, input_names="x")


def test_an_nn_mlp_is_drawn_by_layer_from_its_own_labels():
    from nn import MLP, losses

    model = MLP(64, [32, 10], seed=0)
    loss = losses.cross_entropy([model([0.01 * i for i in range(64)])], [3])
    loss.backward()
    shown = texts(render(loss, level="layers", color="grad"))
    assert {"layer1", "32 neurons, relu", "2080 parameters"} <= set(shown)
    assert {"layer2", "10 neurons, linear", "330 parameters", "64 values"} <= set(shown)


@pytest.mark.parametrize("level", ["neurons", "layers"])
def test_an_unrolled_recurrent_graph_draws_at_the_coarse_levels(level):
    import nn

    cell = nn.RNNCell(1, 3, seed=0)
    states = nn.unroll(cell, [[1.0], [0.0], [1.0]])
    root = states[-1][0] + states[-1][1]
    root.backward()
    shown = box_texts(draw_dot(root, level=level).source)
    assert [box[0] for box in shown.values() if box[0].startswith("t")] == ["t1", "t2", "t3"]
    # 3 input weights, 3 x 3 recurrent ones and two biases of 3, read at every step.
    assert ["shared", "18 values, read by t1, t2, t3"] in [box[:2] for box in shown.values()]
    assert not any(box[0] == "1" for box in shown.values())  # the bias's 1 is no input


def test_an_unrolled_cell_at_the_layers_level_is_a_box_per_step_and_one_for_its_weights():
    import nn

    cell = nn.RNNCell(2, 3, seed=0)
    states = nn.unroll(cell, [[0.5, -0.2], [0.1, 0.3], [-0.4, 0.9]])
    root = vsum(states[-1])
    root.backward()
    shown = texts(render(root, level="layers"))
    # 3 x 2 input weights, 3 x 3 recurrent ones and two biases of 3, read at every step.
    assert {"shared", "21 values, read by t1, t2, t3"} <= set(shown)
    assert [text for text in shown if text.startswith("weight_")] == []
    for step in ("t1", "t2", "t3"):
        assert step in shown
    assert shown.count("3 units, tanh") == 3


def test_named_leaves_two_layers_read_are_one_shared_box_naming_its_readers():
    from nn.modules import Layer

    x = [Value(0.5, label="x0"), Value(-1.0, label="x1")]  # named inputs: a skip connection
    first, skip = Layer(2, 2, "tanh", seed=0), Layer(2, 1, "linear", seed=1)
    first.set_labels("first.")
    skip.set_labels("skip.")
    out = vsum(first(x)) + skip(x)
    out.backward()
    shown = texts(render(out, level="layers"))
    assert {"shared", "2 values, read by first, skip"} <= set(shown)


# -- every nn module at the coarse levels, read from the dot source ----------------------------


def box_texts(source: str) -> dict[str, list[str]]:
    """Each box of the dot source by its id: the lines of text it shows, tags stripped."""
    boxes = {}
    for match in re.finditer(r"^\s*(\w+) \[label=<(.*)> shape=plaintext\]$", source, re.M):
        lines = re.split(r"<br/>|</td>", match.group(2))
        text = [html.unescape(re.sub(r"<[^>]+>", "", line)).strip() for line in lines]
        boxes[match.group(1)] = [line for line in text if line]
    return boxes


def arrows(source: str) -> list[tuple[str, str]]:
    return re.findall(r"^\s*(\w+) -> (\w+)", source, re.M)


def chain(source: str) -> list[str]:
    """The boxes' titles along the arrows, from the one nothing points at; each must have one
    arrow out (a chain, no cycle)."""
    boxes, out = box_texts(source), dict(arrows(source))
    assert len(out) == len(arrows(source))  # one arrow out of each box
    (start,) = set(out) - set(out.values())
    titles = [boxes[start][0]]
    while start in out:
        start = out[start]
        titles.append(boxes[start][0])
        assert len(titles) <= len(boxes), "the arrows make a cycle"
    return titles


def conv_net(pool: str = "max", activation: str = "tanh") -> tuple[Value, object]:
    """Conv1d(1 -> 2 channels, kernel 3) on 10 numbers, an activation, a pool of 2, Flatten and
    a linear head of 2 classes, under a cross-entropy loss, after backward."""
    from nn import Layer, Sequential, losses
    from nn.conv import AvgPool1d, Conv1d, Flatten, MaxPool1d
    from nn.modules import Activation

    pooling = MaxPool1d(2) if pool == "max" else AvgPool1d(2)
    model = Sequential(
        Conv1d(1, 2, 3, seed=0), Activation(activation), pooling, Flatten(), Layer(8, 2, "linear")
    )
    x = [0.1, -0.2, 0.3, 0.5, -0.4, 0.2, 0.0, 0.1, 0.3, 0.2]
    loss = losses.cross_entropy([model(x)], [1])
    loss.backward()
    return loss, model


def test_a_convolutional_net_at_the_layers_level_is_its_chain_of_steps():
    loss, _ = conv_net()
    source = draw_dot(loss, level="layers", color="grad").source
    assert chain(source) == ["inputs", "layer1", "layer2", "layer3", "layer5", "loss"]
    boxes = {box[0]: box[1:] for box in box_texts(source).values()}
    assert boxes["inputs"][0] == "10 values"
    assert boxes["layer1"][:2] == ["2 feature maps of 8, convolution", "8 parameters"]
    assert boxes["layer2"][0] == "2 feature maps of 8, tanh"
    assert boxes["layer3"][0] == "2 feature maps of 4, max pool"
    assert boxes["layer5"][:2] == ["2 neurons, linear", "18 parameters"]
    # The relus a max-pool compares with are no units: nothing is marked (the legend aside).
    assert not any("dead" in line for box in box_texts(source).values() for line in box)


def test_an_average_pool_says_so():
    loss, _ = conv_net(pool="avg")
    titles = [box[:2] for box in box_texts(draw_dot(loss, level="layers").source).values()]
    assert ["layer3", "2 feature maps of 4, average pool"] in titles


def test_a_convolutional_net_at_the_neurons_level_is_a_box_per_feature_map_with_its_kernel():
    loss, model = conv_net()
    source = draw_dot(loss, level="neurons").source
    boxes = box_texts(source)
    ids = {f"{_cluster(source, i)}.{box[0]}": i for i, box in boxes.items()}
    assert boxes[ids["layer1.map0"]][:3] == ["map0", "convolution", "8 positions"]
    assert boxes[ids["layer1.map0"]][3] == "4 parameters"  # kernel 0: 3 weights and a bias
    assert boxes[ids["layer3.max1"]][:3] == ["max1", "max pool", "4 positions"]
    drawn = set(arrows(source))
    for c in ("0", "1"):  # each channel flows on through its own activation and pool
        assert (ids[f"layer1.map{c}"], ids[f"layer2.map{c}"]) in drawn
        assert (ids[f"layer2.map{c}"], ids[f"layer3.max{c}"]) in drawn
    assert (ids["layer1.map0"], ids["layer2.map1"]) not in drawn
    # Flattened, every pooled map feeds every neuron of the head.
    for c, j in [("0", "1"), ("0", "2"), ("1", "1"), ("1", "2")]:
        assert (ids[f"layer3.max{c}"], ids[f"layer5.neuron{j}"]) in drawn


def _cluster(source: str, box: str) -> str:
    """The innermost cluster the box is written in ('' for none)."""
    before = source[: source.index(f"\t{box} [label")]
    opened = re.findall(r"subgraph cluster_(\w+) \{|(\})", before)
    stack = []
    for name, close in opened:
        if close:
            stack.pop()
        else:
            stack.append(name)
    return stack[-1].replace("_", ".") if stack else ""


def test_a_convolution_is_drawn_with_its_feature_maps_as_clusters_at_the_scalars_level():
    loss, _ = conv_net()
    source = draw_dot(loss, max_nodes=1000).source
    cluster = source.split("subgraph cluster_layer1_map0 {")[1].split("}")[0]
    assert "layer1.map0.0" in cluster and "layer1.map0.7" in cluster and "label=dot" in cluster


def test_an_unrolled_gru_at_the_neurons_level_is_a_box_per_step_with_its_gates():
    import nn

    cell = nn.GRUCell(2, 3, seed=0)
    states = nn.unroll(cell, [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]])
    root = vsum(states[-1])
    root.backward()
    source = draw_dot(root, level="neurons").source
    boxes = box_texts(source)
    steps = {box[0]: (i, box[1:]) for i, box in boxes.items() if box[0].startswith("t")}
    assert list(steps) == ["t1", "t2", "t3", "t4"]
    for _, lines in steps.values():
        assert lines[:2] == ["gated: sigmoid gates, tanh candidate", "3 units"]
        assert not any("samples" in line or line == "linear" for line in lines)
    inputs = {box[0]: i for i, box in boxes.items() if box[0].startswith("x")}
    # x0 and x1 are the first step's inputs, x6 and x7 the last one's.
    assert (inputs["x0"], steps["t1"][0]) in arrows(source)
    assert (inputs["x7"], steps["t4"][0]) in arrows(source)
    assert (steps["t1"][0], steps["t2"][0]) in arrows(source)


def mlp_64_32_10(samples: int) -> Value:
    from nn import MLP, losses

    rng = random.Random(0)
    model = MLP(64, [32, 10], seed=0)
    X = [[rng.random() for _ in range(64)] for _ in range(samples)]
    loss = losses.cross_entropy([model(x) for x in X], [k % 10 for k in range(samples)])
    loss.backward()
    return loss


def test_the_neurons_level_of_a_64_32_10_mlp_shows_a_bounded_number_of_boxes_in_order():
    from autograd_core.pictures.draw import MAX_UNITS

    source = draw_dot(mlp_64_32_10(8), level="neurons", color="grad").source
    boxes = box_texts(source)
    assert len(boxes) == 1 + 2 * MAX_UNITS + 1  # inputs, 8 boxes per layer, the loss
    layer1 = [box[0] for i, box in boxes.items() if _cluster(source, i) == "layer1"]
    numbers = [int(title.removeprefix("neuron")) for title in layer1[:-1]]
    assert numbers == sorted(numbers) and len(numbers) == MAX_UNITS - 1
    assert layer1[-1] == "the other 25 neurons"
    # Three bundled arrows: inputs -> layer1 -> layer2 -> loss, each drawn once.
    assert len(arrows(source)) == 3
    assert source.count("lhead=cluster_layer1") == 1
    # Seven neurons kept for their |grad|: the folded ones have the smallest.
    grads = {
        box[0]: float(line.split()[-1])
        for box in boxes.values()
        for line in box
        if line.startswith("mean |grad|")
    }
    kept = [grads[t] for t in layer1[:-1]]
    assert min(kept) >= grads["the other 25 neurons"]


def test_a_large_graph_at_the_neurons_level_renders_small_enough_to_read():
    svg = render(mlp_64_32_10(4), level="neurons", color="grad")
    width, height = (float(svg.get(side)[:-2]) for side in ("width", "height"))
    assert width < 1100 and height < 1100  # points; the 64-32-10 MLP was 1592 x 6797 px


def test_dead_relus_judged_on_one_sample_say_so():
    one = draw_dot(mlp_64_32_10(1), level="layers", color="grad").source
    assert re.search(r"\d+ of 32 dead ReLU \(1 sample\)", one)
    many = draw_dot(mlp_64_32_10(16), level="layers", color="grad").source
    assert "(1 sample)" not in many


def test_activation_and_pool_outputs_are_labelled_by_their_place():
    _, model = conv_net()
    out = model[1]([[0.5, -0.5], [1.0, 2.0]])
    assert [v.label for v in out[1]] == ["layer2.map1.0", "layer2.map1.1"]
    pooled = model[2]([[0.5, -0.5], [1.0, 2.0]])
    assert [c[0].label for c in pooled] == ["layer3.max0.0", "layer3.max1.0"]


# -- hostile input -----------------------------------------------------------------------------


@pytest.mark.parametrize("label", [".lead", ".out", "a..b", "layer1.", "..", "nul\x00", "esc\x1b"])
@pytest.mark.parametrize("level", ["scalars", "neurons", "layers"])
def test_odd_labels_draw_at_every_level(label, level):
    w = Value(2.0, label=label)
    y = (w * Value(3.0)).tanh()
    y.label = label
    y.backward()
    svg = render(y, level=level, color="grad")  # dot refuses an empty <b></b> or a control code
    assert nodes(svg)
    assert "<b></b>" not in draw_dot(y, level=level).source


def test_a_label_over_graphvizs_limit_is_cut_and_says_its_length():
    a = Value(1.0, label="x" * 20_000)
    shown = texts(render(a * 2))
    assert "x" * 120 + "... (20000 characters)" in shown


def test_an_empty_input_name_is_refused():
    out, _ = labelled_mlp([2, 1], [0.5, -1.0])
    with pytest.raises(ValueError, match=r"must not be empty strings: input_names\[1\] is ''"):
        draw_dot(out, input_names=["a", ""])


def test_the_layers_level_of_a_200_step_gru_folds_the_middle_steps_into_one_box():
    import nn
    from autograd_core.pictures.draw import MAX_LAYERS

    cell = nn.GRUCell(2, 3, seed=0)
    states = nn.unroll(cell, [[0.01 * t, -0.01 * t] for t in range(200)])
    root = vsum(states[-1])
    root.backward()
    source = draw_dot(root, level="layers").source
    boxes = box_texts(source)
    titles = [box[0] for box in boxes.values()]
    steps = [t for t in titles if re.fullmatch(r"t\d+", t)]
    assert steps == ["t1", "t2", "t3", "t4", "t5", "t6", "t196", "t197", "t198", "t199", "t200"]
    assert len(steps) == MAX_LAYERS - 1
    (folded,) = [box for box in boxes.values() if box[0] == "t7 ... t195"]
    assert folded[1] == "189 more boxes"
    (shared,) = [box for box in boxes.values() if box[0] == "shared"]
    assert shared[1] == "63 values, read by 200 boxes, t1 to t200"
    assert nodes(render(root, level="layers"))  # and dot lays it out (in well under a second)


def test_a_huge_graph_without_modules_is_summarised_at_the_coarse_levels():
    v = Value(1.0, label="start")
    for _ in range(200_000):
        v = -v
    for level in ("neurons", "layers"):
        boxes = list(box_texts(draw_dot(v, level=level).source).values())
        assert boxes[0] == ["leaves", "1 value"]
        assert boxes[1][-1] == "200000 ops, no modules (labels like layer1.w0)"


def test_a_neuron_of_three_inputs_fits_a_notebook_column_at_full_text_size():
    xs = [Value(v, label=f"x{k}") for k, v in enumerate((2.0, 0.0, -1.0), start=1)]
    ws = [Value(v, label=f"w{k}") for k, v in enumerate((-3.0, 1.0, 0.5), start=1)]
    n = Value(7.0, label="b")
    for w, x in zip(ws, xs, strict=True):
        n = n + w * x
    o = n.tanh()
    o.backward()
    svg = render(o)
    assert float(svg.get("width")[:-2]) < 900  # points at 12 pt text; it was 1240
    assert 'font-size="12.00"' in ET.tostring(svg).decode().replace("ns0:", "")


def test_an_unlabelled_input_is_not_given_the_name_of_a_labelled_one():
    x0 = Value(2.0, label="x0")
    other = Value(3.0)
    source = draw_dot(x0 * other).source
    assert source.count("<b>x0</b>") == 1
    assert "<b>x1</b>" in source


def test_an_unrolled_lstm_is_a_box_per_step_counting_its_hidden_units_and_one_for_its_weights():
    import nn

    cell = nn.LSTMCell(1, 3, seed=0)
    states = nn.unroll(cell, [[0.5], [0.1], [-0.4]])
    root = vsum(states[-1])
    root.backward()
    shown = texts(render(root, level="layers"))
    # 4 gates of 3 units: 12 x 1 input weights, 12 x 3 recurrent ones, two biases of 12.
    assert {"shared", "72 values, read by t1, t2, t3"} <= set(shown)
    assert [text for text in shown if text.startswith(("weight_", "bias_"))] == []
    assert shown.count("3 units, gated: sigmoid gates, tanh candidate, a cell state per unit") == 3


def test_a_norms_and_attentions_constants_are_numbers_not_parameters_of_their_module():
    import nn

    model = nn.GPT(5, block_size=3, n_embd=4, n_head=2, seed=0)
    root = vsum(model([1, 2, 3])[-1])
    root.backward()
    shown = texts(render(root, level="layers"))
    # ln_f is an RMSNorm of width 4: its 4 weights, not its eps and 1/n as well.
    assert "4 parameters" in shown
    # The block: attention 4 x (4 x 4), the MLP 4 x 16 twice, two norms of 4 weights.
    assert "200 parameters" in shown
    assert not {"0", "0.25", "0.5", "1e-05"} & set(shown)  # no box named by a constant

    norm = nn.RMSNorm(4, eps=1e-5)
    root = vsum(norm([Value(1.0), Value(2.0), Value(-1.0), Value(0.5)]))
    root.backward()
    shown = texts(render(root))
    assert {"0.25", "1e-05"} <= set(shown)  # 1/n and eps drawn as their numbers
    assert {"x0", "x1", "x2", "x3"} <= set(shown)  # the four inputs, and nothing else named x
    assert "x4" not in shown
