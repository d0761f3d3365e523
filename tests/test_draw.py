"""draw_dot: the picture of a computation graph, rendered by the real Graphviz `dot` program."""

import shutil
import xml.etree.ElementTree as ET

import pytest

from autograd_core import Value, draw_dot

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
