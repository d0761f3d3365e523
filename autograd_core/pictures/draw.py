"""Drawing a computation graph with Graphviz: every value, every op, and the gradients.

Each Value is a box showing its label, data and grad; each op is a small ellipse between its
inputs and its output. Labels are user text, so they go through HTML escaping: quotes,
braces, `<`, `|` and `&` show as typed, a newline starts a new line, and any other character
that cannot be printed (a tab, a control code) is shown as its Python escape (`\\t`), so no
label can break the dot source.

Nodes are grouped by the module they live in, read from dotted labels: a node labelled
`layer1.neuron3.w0` belongs to the module `layer1.neuron3`, which is inside `layer1` (what a
label says up to its last dot). An unlabelled op node belongs to the module of its consumers
when they all share one (the weighted sum inside a neuron is the neuron's). Each module is a
Graphviz cluster, like TensorFlow's name scopes. Three levels of detail:

* `"scalars"`: every value and op (the default);
* `"neurons"`: one box per innermost module (a neuron, a convolution's feature map with its
  kernel, a recurrent time step), inside a cluster per layer; a layer of more than MAX_UNITS
  units shows those with the largest gradients and one box for the rest;
* `"layers"`: one box per top-level module (a layer) with its width, what it computes and its
  number of parameters.

Either coarse level draws more than MAX_LAYERS top-level modules (a long unrolled sequence) as
the first and last few and one box for the middle, and a graph with no module labels as one
box for its leaves and one for its ops, so any graph is drawn in seconds.

Unlabelled leaves are the inputs: they are drawn as `x0, x1, ...` in the order the graph uses
them (those read furthest from the root first), or with the names given in `input_names`.
Constants are not inputs: the 1 a `dot` node multiplies with a bias (a parameter labelled `b`
or `bias...`, the way `nn` writes `w . x + b`), drawn as `1`, and any leaf labelled with its
own number.

With `color="grad"` each box is filled by log10 |grad| on one fixed colour scale (1e-8 .. 1e2,
yellow to dark red, the same in every picture), with a legend below the graph, and
what stops learning is marked: a ReLU whose output is 0 for every sample in the graph (dead:
no gradient passes), a tanh or sigmoid whose slope is under 1% of its maximum (saturated), and
a layer whose parameters' mean |grad| is over 100 times smaller (vanishing) or larger
(exploding) than that of the layer nearest the output.
"""

from __future__ import annotations

import html
import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine.backward import topological_order
from ..engine.value import Value

if TYPE_CHECKING:
    import graphviz

RANKDIRS = ("LR", "RL", "TB", "BT")
LEVELS = ("scalars", "neurons", "layers")
COLORS = (None, "grad")
# Compact, so that a small graph fits a notebook's column with its text at full size: boxes
# without a margin (edges end at their frame), ranks and neighbours close together.
GRAPH_STYLE = {"fontname": "Helvetica", "ranksep": "0.3", "nodesep": "0.15"}
BOX_STYLE = {"fontname": "Helvetica", "fontsize": "12", "margin": "0"}
# An op is a small ellipse that grows only as much as its name needs.
OP_STYLE = {"shape": "ellipse", "fontsize": "11", "width": "0.3", "height": "0.3", "margin": "0.04"}
TABLE = '<table border="0" cellborder="1" cellspacing="0" cellpadding="4"'
# One colour scale for every picture of gradients: log10 |grad| from 1e-8 to 1e2, fixed, on
# matplotlib's "YlOrRd" (ColorBrewer's nine yellow-orange-red steps, interpolated), whose
# lightness falls steadily: the larger a gradient, the darker and redder, in every picture.
GRAD_DECADES = (-8, 2)
GRAD_COLORMAP = "YlOrRd"
YLORRD = (
    "#ffffcc",
    "#ffeda0",
    "#fed976",
    "#feb24c",
    "#fd8d3c",
    "#fc4e2a",
    "#e31a1c",
    "#bd0026",
    "#800026",
)
ZERO_COLOR = "#d9d9d9"  # a gradient of exactly 0 has no logarithm: grey
NAN_COLOR = "#4d4d4d"  # nan or inf: dark grey
MARK_COLOR = "#c00000"
FOCUS_COLOR = "#e6550d"
# A unit is saturated where its slope is under this fraction of the activation's largest slope.
SATURATION = 0.01
MAX_SLOPE = {"tanh": 1.0, "sigmoid": 0.25}
# A layer's gradient this many times smaller (or larger) than the output layer's is marked.
VANISHING_RATIO = 1e-2
EXPLODING_RATIO = 1e2
# At the "neurons" level, more inputs than this are drawn as one box, and a layer of more
# units than this shows its MAX_UNITS - 1 largest gradients and one box for the rest.
MAX_INPUT_BOXES = 8
MAX_UNITS = 8
ONE_SAMPLE = " (1 sample)"
MAX_TEXT = 120  # characters of a label shown


def draw_dot(
    root: Value,
    rankdir: str = "LR",
    show_grad: bool = True,
    max_nodes: int = 500,
    *,
    level: str = "scalars",
    color: str | None = None,
    edge_labels: bool = False,
    input_names: Sequence[str] | None = None,
) -> graphviz.Digraph:
    """A `graphviz.Digraph` of root's graph: it renders inline in Jupyter.

    `.render()` or `.pipe(format="svg")` turn it into a file or bytes (needs Graphviz's `dot`
    program). At `level="scalars"` a graph of more than `max_nodes` values is refused at once
    with a ValueError: dot takes minutes on graphs that large, and the picture is unreadable
    anyway. The coarse levels (`"neurons"`, `"layers"`) draw a box per module and summarise
    what would not be read (wide layers, long sequences), so any size is fine. `color="grad"`
    fills boxes by log10 |grad| on the fixed scale of `grad_color` and marks dead and
    saturated units and vanishing or exploding layers. `edge_labels=True` writes on each edge
    into an op the local partial d(out)/d(in) of that op (at the scalars level, where every
    edge is one partial).
    `input_names` names the unlabelled inputs, in the order the graph uses them.
    """
    import graphviz

    if not isinstance(root, Value):
        raise TypeError(f"draw_dot draws a Value, got {type(root).__name__}")
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    if color not in COLORS:
        raise ValueError(f"color must be None or 'grad', got {color!r}")
    if input_names is not None and (
        isinstance(input_names, str) or not all(isinstance(n, str) for n in input_names)
    ):
        raise TypeError("input_names must be a list of str, one per unlabelled input")
    if input_names is not None and not all(input_names):
        empty = [i for i, name in enumerate(input_names) if not name]
        raise ValueError(f"input_names must not be empty strings: input_names[{empty[0]}] is ''")
    if level == "scalars":
        size = len(_collect(root))
        if size > max_nodes:
            raise ValueError(
                f"the graph has {size} values, more than max_nodes={max_nodes}; "
                f"pass max_nodes={size} (or more) to draw it anyway, though Graphviz will be "
                "slow and the picture hard to read; or draw it with level='neurons' or "
                "level='layers'"
            )

    dot = graphviz.Digraph(graph_attr=GRAPH_STYLE | {"rankdir": rankdir}, node_attr=BOX_STYLE)
    if level != "scalars":
        nodes = _collect(root)
        if not any("." in node.label for node in nodes):
            # Nothing to group by: say so at once, however large (a plain walk, no analysis).
            draw_summary(dot, nodes, root, show_grad=show_grad)
            return dot
    graph = analyse(root, input_names)
    colored = color == "grad"
    if level == "scalars":
        fill = (lambda node: grad_color(_grad(node))) if colored else None
        draw_scalars(
            dot, graph, show_grad=show_grad, fill=fill, marks=colored, edge_labels=edge_labels
        )
    else:
        draw_modules(dot, graph, level, show_grad=show_grad, colored=colored)
    if colored:  # below the graph, not beside it: no column of its own
        dot.attr(label=grad_legend(), labelloc="b", labeljust="l")
    return dot


def _collect(root: Value) -> list[Value]:
    """Every value root depends on, in discovery order (a plain walk: counting must be cheap)."""
    seen = {root}
    nodes = [root]
    for node in nodes:  # `nodes` grows while we walk it: a breadth-first search
        for child in node.inputs:
            if child not in seen:
                seen.add(child)
                nodes.append(child)
    return nodes


def draw_summary(dot: graphviz.Digraph, nodes: list[Value], root: Value, show_grad: bool) -> None:
    """A graph with no module labels at a coarse level: a box for its leaves, one for its ops."""
    leaves = sum(1 for node in nodes if not node.inputs)
    root_lines = [_title(root.label or "output"), f"data {root.data:.4f}"]
    if show_grad:
        root_lines.append(f"grad {_grad(root):.4f}")
    ops = len(nodes) - leaves
    root_lines.append(f"{ops} {'op' if ops == 1 else 'ops'}, no modules (labels like layer1.w0)")
    count = f"{leaves} {'value' if leaves == 1 else 'values'}"
    dot.node("leaves", _box_label(["<b>leaves</b>", count], None, ""), shape="plaintext")
    dot.node("ops", _box_label(root_lines, None, ""), shape="plaintext")
    dot.edge("leaves", "ops")


# -- reading the graph: names, modules, and the units that stop learning ----------------------


@dataclass
class Graph:
    """What the drawing needs to know about root's graph, worked out once."""

    root: Value
    order: list[Value]  # topological: inputs first, root last
    names: dict[Value, str]  # what each box is called ('' for an unlabelled op node)
    modules: dict[Value, str]  # the module path of each node, '' outside every module
    constants: set[Value]  # unlabelled leaves that are not inputs: the 1s biases multiply, ...
    inputs: list[Value]  # unlabelled leaves, in the order the graph uses them
    marks: dict[Value, str] = field(default_factory=dict)  # 'dead ReLU', 'saturated tanh'
    layer_marks: dict[str, str] = field(default_factory=dict)  # 'vanishing ...' per layer


def analyse(root: Value, input_names: Sequence[str] | None = None) -> Graph:
    """Name, group and diagnose every node of root's graph."""
    order = topological_order(root)
    constants = _constants(order)
    modules = _modules(order, constants)
    inputs = [n for n in order if not n.inputs and not n.label and n not in constants]
    # Inputs read further from the root come first: an unrolled sequence's x of step 1 before
    # step 2's (the walk from the root meets the last step's first).
    depth = _depths(order)
    inputs.sort(key=lambda leaf: -depth[leaf])
    if any(modules.values()):
        # A model's inputs are what its modules read; other leaves are the loss's constants.
        read = {child for node in order if modules[node] for child in node.inputs}
        constants.update(leaf for leaf in inputs if leaf not in read)
        inputs = [leaf for leaf in inputs if leaf in read]
    given = list(input_names or ())
    if len(given) > len(inputs):
        raise ValueError(
            f"input_names has {len(given)} names but the graph has {len(inputs)} unlabelled inputs"
        )
    names = {node: node.label for node in order}
    # x0, x1, ... for the others, skipping a name a labelled node already has
    taken = set(names.values())
    fresh = (name for name in (f"x{k}" for k in itertools.count()) if name not in taken)
    for i, node in enumerate(inputs):
        names[node] = given[i] if i < len(given) else next(fresh)
    for node in constants:
        if not node.label and _is_one(node):
            names[node] = "1"  # other constants show just their number
    graph = Graph(root, order, names, modules, constants, inputs)
    graph.marks = _unit_marks(order, modules)
    graph.layer_marks = _layer_marks(graph)
    return graph


def module_of(label: str) -> str:
    """'layer1.neuron3' for 'layer1.neuron3.w0': a label up to its last dot ('' if none)."""
    return label.rpartition(".")[0]


def _constants(order: list[Value]) -> set[Value]:
    """The leaves that are numbers, not inputs.

    A leaf labelled with its own number is one (`nn` names the 1 a bias multiplies `1`, a
    zero padding or a zero starting state `0`), and so is the unlabelled 1 a `dot` pairs with
    a bias (a parameter named `b` or `bias...`: w . x + b = dot([w, b], [x, 1])).
    """
    constants = {n for n in order if not n.inputs and n.label and n.label == f"{n.data:g}"}
    for node in order:
        if node.op == "dot":
            half = len(node.inputs) // 2
            for w, x in zip(node.inputs[:half], node.inputs[half:], strict=True):
                name = w.label.rpartition(".")[2]
                if (name == "b" or name.startswith("bias")) and _is_one(x) and not x.label:
                    constants.add(x)
    return constants


def _depths(order: list[Value]) -> dict[Value, int]:
    """The longest path from each node to the root (0 for the root)."""
    depth = dict.fromkeys(order, 0)
    for node in reversed(order):
        for child in node.inputs:
            depth[child] = max(depth[child], depth[node] + 1)
    return depth


def _is_one(node: Value) -> bool:
    return not node.inputs and node.data == 1.0


def _modules(order: list[Value], constants: set[Value]) -> dict[Value, str]:
    """Each node's module: from its label, else (op nodes) the one module all consumers share.
    A constant belongs to none (its label is its number: the dot of 0.5 is no module's)."""
    consumers: dict[Value, set[str]] = {}
    modules: dict[Value, str] = {}
    for node in reversed(order):  # every consumer comes before its inputs
        if node in constants:
            module = ""
        elif "." in node.label:
            module = module_of(node.label)
        elif node.inputs and len(consumers.get(node, ())) == 1:
            (module,) = consumers[node]
        else:
            module = ""
        modules[node] = module
        for child in node.inputs:
            consumers.setdefault(child, set()).add(module)
    return modules


def _unit_marks(order: list[Value], modules: Mapping[Value, str]) -> dict[Value, str]:
    """'dead ReLU' on ReLUs that output 0 for every sample; 'saturated tanh/sigmoid' likewise.

    Nodes with the same label are the same unit on different samples of a batch, so a unit
    is dead only if it is 0 on all of them; judged on one sample, the mark says so. An
    unlabelled node outside every module is a unit of its own; one inside a module is part
    of the module's machinery (the relus a max-pool compares with), not a unit.
    """
    units: dict[object, list[Value]] = {}
    for node in order:
        if (node.op == "relu" or node.op in MAX_SLOPE) and (node.label or not modules[node]):
            units.setdefault(node.label or node, []).append(node)
    marks = {}
    for nodes in units.values():
        op = nodes[0].op
        if op == "relu" and all(float(n.local_grads[0]) == 0.0 for n in nodes):
            mark = "dead ReLU"
        elif op in MAX_SLOPE and all(
            float(n.local_grads[0]) < SATURATION * MAX_SLOPE[op] for n in nodes
        ):
            mark = f"saturated {op}"
        else:
            continue
        if len(nodes) == 1 and nodes[0].label:
            mark += ONE_SAMPLE  # a unit seen once: dead on this sample, maybe not on others
        for node in nodes:
            marks[node] = mark
    return marks


def _layer_marks(graph: Graph) -> dict[str, str]:
    """'vanishing' / 'exploding' for each layer far below / above the output layer's gradient."""
    grads = layer_gradients(graph)
    if len(grads) < 2:
        return {}
    top = grads[list(grads)[-1]]
    marks = {}
    for layer, size in grads.items():
        if top == 0.0 or size == 0.0:
            continue
        ratio = size / top
        if ratio < VANISHING_RATIO:
            marks[layer] = f"vanishing: {ratio:.0e} x output layer"
        elif ratio > EXPLODING_RATIO:
            marks[layer] = f"exploding: {ratio:.0e} x output layer"
    return marks


def layer_gradients(graph: Graph) -> dict[str, float]:
    """Mean |grad| of each top-level module's parameters, from the input side to the output."""
    members: dict[str, list[Value]] = {}
    last_seen: dict[str, int] = {}
    for index, node in enumerate(graph.order):
        layer = graph.modules[node].split(".")[0]
        if layer:
            last_seen[layer] = index
            if not node.inputs:
                members.setdefault(layer, []).append(node)
    ordered = sorted(members, key=last_seen.__getitem__)
    return {layer: _mean_abs_grad(members[layer]) for layer in ordered}


def _mean_abs_grad(nodes: Sequence[Value]) -> float:
    return sum(abs(float(n.grad)) for n in nodes) / len(nodes) if nodes else 0.0


# -- the colour scale -------------------------------------------------------------------------


def grad_color(grad: float) -> str:
    """The colour of a gradient: log10 |grad| placed on 1e-8 .. 1e2 (clamped at the ends) and
    read off YlOrRd, blending its two nearest steps; grey for 0, dark grey for nan or inf."""
    if grad == 0.0:
        return ZERO_COLOR
    if not math.isfinite(grad):
        return NAN_COLOR
    low, high = GRAD_DECADES
    where = (min(max(math.log10(abs(grad)), low), high) - low) / (high - low)
    position = where * (len(YLORRD) - 1)
    k = min(int(position), len(YLORRD) - 2)
    a, b = _rgb(YLORRD[k]), _rgb(YLORRD[k + 1])
    t = position - k
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def grad_legend() -> str:
    """The scale as an HTML-like table: a cell per decade 1e-8 .. 1e2, 0 in grey, the marks."""
    low, high = GRAD_DECADES
    cells = [f'<td bgcolor="{ZERO_COLOR}">0</td>']
    for decade in range(low, high + 1):
        fill = grad_color(10.0**decade)
        cells.append(f'<td bgcolor="{fill}">{_on(fill, f"1e{decade}")}</td>')
    width = len(cells)
    marks = (
        "dead ReLU: 0 on every sample; saturated: slope under 1% of its peak;<br/>"
        "vanishing / exploding: mean |grad| 100x below / above the output layer's"
    )
    return (
        f'<{TABLE}><tr><td colspan="{width}"><b>|grad|</b> (the same scale in every picture)'
        f"</td></tr><tr>{''.join(cells)}</tr>"
        f'<tr><td colspan="{width}"><font color="{MARK_COLOR}">{marks}</font></td></tr>'
        "</table>>"
    )


def _grad(node: Value) -> float:
    return float(node.grad)


def is_dark(fill: str) -> bool:
    """Whether white text reads better than black on the colour '#rrggbb' (its perceived
    brightness, 0.299 R + 0.587 G + 0.114 B, is under 110 of 255)."""
    red, green, blue = _rgb(fill)
    return 0.299 * red + 0.587 * green + 0.114 * blue < 110


def _on(fill: str, text: str) -> str:
    """Text that stays readable on the fill colour."""
    return f'<font color="white">{text}</font>' if is_dark(fill) else text


# -- the scalars level: every value and op ----------------------------------------------------


def draw_scalars(
    dot: graphviz.Digraph,
    graph: Graph,
    *,
    show_grad: bool = True,
    fill: Callable[[Value], str | None] | None = None,
    marks: bool = False,
    edge_labels: bool = False,
    grad_text: Callable[[Value], str] | None = None,
    focus: Value | None = None,
    backward_arrows: bool = False,
) -> None:
    """Every value as a box and every op as an ellipse, each inside its module's cluster.

    `fill(node)` is a box's colour (None: white); `marks` shows dead and saturated units.
    `grad_text(node)` replaces the grad cell (the stepper shows running sums this way); the
    `focus` node and the edges into its op are highlighted. `backward_arrows` (a stepper's
    frame) points the arrows from each node back to its inputs, the way the gradient flows
    (Graphviz still ranks inputs before outputs), and frames every box alike, so that the
    focus's frame does not change its size.
    """
    ids = {node: str(i) for i, node in enumerate(reversed(graph.order))}
    members: dict[str, list[tuple[str, str, dict]]] = {}
    for node in reversed(graph.order):
        color = fill(node) if fill is not None else None
        mark = graph.marks.get(node, "") if marks else ""
        if grad_text is not None:
            grad = grad_text(node)
        else:
            grad = f"grad {float(node.grad):.4f}" if show_grad else None
        framed = node is focus if backward_arrows else None
        label = _value_label(graph.names[node], node.data, grad, color, mark, framed)
        box = members.setdefault(graph.modules[node], [])
        box.append((ids[node], label, {"shape": "plaintext"}))
        if node.inputs:
            op_style = dict(OP_STYLE)
            if node is focus:
                op_style.update(color=FOCUS_COLOR, penwidth="2.5")
            box.append((ids[node] + "op", html.escape(node.op), op_style))
    _add_clusters(dot, members, lambda module: module.rpartition(".")[2], graph.layer_marks)
    for node in reversed(graph.order):
        if not node.inputs:
            continue
        back = {"dir": "back"} if backward_arrows else {}
        dot.edge(ids[node] + "op", ids[node], **back)
        for child, local in zip(node.inputs, node.local_grads, strict=True):
            attrs = dict(back)
            if edge_labels:
                attrs["label"] = f"{float(local):.4g}"
                attrs["fontsize"] = "10"
            if node is focus:
                attrs.update(color=FOCUS_COLOR, penwidth="2.5", fontcolor=FOCUS_COLOR)
            dot.edge(ids[child], ids[node] + "op", **attrs)


def _add_clusters(
    dot: graphviz.Digraph,
    members: Mapping[str, list[tuple[str, str, dict]]],
    title: Callable[[str], str],
    marks: Mapping[str, str],
) -> None:
    """Put each module's nodes in a cluster nested inside its parent module's cluster."""
    children: dict[str, list[str]] = {}
    for module in members:
        # Make every ancestor exist, so that `a.b.c` sits inside `a.b`, inside `a`.
        while module:
            parent = module_of(module)
            siblings = children.setdefault(parent, [])
            if module in siblings:
                break
            siblings.append(module)
            module = parent

    def fill(graph: graphviz.Digraph, module: str) -> None:
        for node_id, label, attrs in members.get(module, ()):
            graph.node(node_id, label, **attrs)
        for child in children.get(module, ()):
            with graph.subgraph(name="cluster_" + _cluster_id(child)) as cluster:
                text = escape_text(title(child))
                if child in marks:
                    text += f'<br/><font color="{MARK_COLOR}">{escape_text(marks[child])}</font>'
                cluster.attr(label=f"<{text}>", style="rounded", color="#888888")
                fill(cluster, child)

    fill(dot, "")


def _cluster_id(module: str) -> str:
    """A cluster name dot accepts unquoted: letters, digits and underscores."""
    return "".join(c if c.isalnum() else "_" for c in module)


def _value_label(
    name: str, data: float, grad: str | None, fill: str | None, mark: str, focus: bool | None
) -> str:
    """A box of lines, name over data over grad, each escaped (stacked, so that a graph drawn
    left to right stays narrow); the mark, if any, below on white. `focus` True or False
    frames the box (in colour if True: every box of a stepper frame has the frame's width);
    None draws none."""
    lines = [f"<b>{escape_text(name)}</b>"] if name else []
    lines.append(f"data {data:.4f}")
    if grad is not None:
        lines.append(escape_text(grad))
    label = _box_label(lines, fill, mark)
    if focus is not None:  # a stepper frame: a thick frame, coloured around its focus only
        color = FOCUS_COLOR if focus else "white"
        label = label.replace('border="0"', f'border="3" color="{color}"', 1)
    return label


# -- the coarse levels: one box per neuron or per layer ---------------------------------------

INPUTS, SHARED, LOSS, LONG_RUN = "inputs", "shared", "loss", "~long run"
MAX_LAYERS = 12  # more top-level modules than this: the middle ones are one box
# The word a unit's name starts with (`neuron3`, `map0`, `max1`) says what kind of unit it is.
UNIT_WORDS = {"neuron": "neuron", "map": "feature map", "max": "feature map", "avg": "feature map"}
POOLS = {"max": "max pool", "avg": "average pool"}
ACTIVATION_OPS = ("relu", "leaky_relu", "tanh", "sigmoid")


def draw_modules(
    dot: graphviz.Digraph,
    graph: Graph,
    level: str,
    *,
    show_grad: bool = True,
    colored: bool = False,
) -> None:
    """One box per module (a neuron or a layer), for the inputs, and for what follows the model.

    An edge joins two boxes when any value of one is an input of any value of the other. At
    the neurons level a layer of more than MAX_UNITS units shows the units with the largest
    gradients, in their order, and one box counting the others; edges between the same
    clusters are merged (Graphviz's `concentrate`).
    """
    groups = _groups(graph, level)
    shared_by = _group_shared_leaves(groups, graph)
    long_run = _fold_long_run(groups, graph)
    members: dict[str, list[Value]] = {}
    for node, group in groups.items():
        members.setdefault(group, []).append(node)
    grads = {group: _group_grad(nodes) for group, nodes in members.items()}
    folded: dict[str, list[str]] = {}  # a box of many units: the units it stands for
    if level == "neurons":
        folded = _fold_wide_layers(members, grads, graph)
        for box, units in folded.items():
            for unit in units:
                for node in members.pop(unit):
                    groups[node] = box
            members[box] = [node for node, group in groups.items() if group == box]
            grads[box] = _group_grad(members[box])
        dot.attr(compound="true", ordering="out")
    modules = {group for node, group in groups.items() if graph.modules[node]} | set(folded)
    ordered = sorted(members, key=_natural_key)
    ids = {group: f"g{i}" for i, group in enumerate(ordered)}

    boxes: dict[str, list[tuple[str, str, dict]]] = {}
    for group in ordered:
        nodes = members[group]
        fill = grad_color(grads[group]) if colored else None
        if group in folded:
            lines = _folded_lines(folded[group], members[group], show_grad)
        elif group == LONG_RUN:
            lines = _long_run_lines(long_run, nodes, show_grad)
        else:
            lines = _box_lines(group, nodes, graph, level, show_grad, grads[group], shared_by)
        mark = _box_mark(group, nodes, graph, level) if colored else ""
        label = _box_label(lines, fill, mark)
        cluster = module_of(group) if level == "neurons" and group in modules else ""
        boxes.setdefault(cluster, []).append((ids[group], label, {"shape": "plaintext"}))
    _add_clusters(dot, boxes, lambda module: module, graph.layer_marks)

    edges: dict[tuple[str, str], None] = {}  # a dict keeps the first-seen order
    for node in graph.order:
        target = groups.get(node)
        if target is None:
            continue
        for child in node.inputs:
            source = groups.get(child)
            if source is not None and source != target:
                edges[(source, target)] = None
    clusters = {group: module_of(group) if group in modules else "" for group in ordered}
    for source, target, attrs in _bundle(list(edges), clusters, ordered):
        dot.edge(ids[source], ids[target], **attrs)


def _bundle(
    edges: list[tuple[str, str]], clusters: Mapping[str, str], ordered: list[str]
) -> list[tuple[str, str, dict]]:
    """The edges to draw: where every box of one side reaches every box of a cluster (a
    fully connected layer) by MAX_UNITS arrows or more, one arrow between the two, drawn to
    the cluster's frame."""
    members: dict[str, list[str]] = {}
    for group in ordered:
        members.setdefault(clusters[group], []).append(group)
    pairs: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for source, target in edges:
        pairs.setdefault((clusters[source], clusters[target]), set()).add((source, target))
    drawn = []
    bundled: set[tuple[str, str]] = set()
    for source, target in edges:
        key = (clusters[source], clusters[target])
        if key in bundled:
            continue
        tail = members[key[0]] if key[0] else [source]
        head = members[key[1]] if key[1] else [target]
        complete = len(pairs[key]) == len(tail) * len(head) >= MAX_UNITS  # small: draw all
        if key[0] != key[1] and (key[0] or key[1]) and complete:
            bundled.add(key)
            attrs = {"penwidth": "2"}
            if key[0]:
                attrs["ltail"] = "cluster_" + _cluster_id(key[0])
            if key[1]:
                attrs["lhead"] = "cluster_" + _cluster_id(key[1])
            drawn.append((tail[len(tail) // 2], head[len(head) // 2], attrs))
        else:
            drawn.append((source, target, {}))
    return drawn


def _groups(graph: Graph, level: str) -> dict[Value, str]:
    """The box each node is drawn in (constants are in none: a number is not a box).

    At the neurons level a parameter read only by one unit of its module is that unit's (the
    weights of a convolution's kernel 0 belong with its feature map `map0`).
    """
    many_inputs = level == "layers" or len(graph.inputs) > MAX_INPUT_BOXES
    groups: dict[Value, str] = {}
    for node in graph.order:
        module = graph.modules[node]
        if module:
            groups[node] = module if level == "neurons" else module.split(".")[0]
        elif node in graph.constants:
            continue
        elif not node.inputs:
            groups[node] = INPUTS if many_inputs and not node.label else "in:" + graph.names[node]
        else:
            groups[node] = LOSS
    if level == "neurons":
        readers: dict[Value, set[str]] = {}
        for node in graph.order:
            for child in node.inputs:
                if not child.inputs and graph.modules[child]:
                    readers.setdefault(child, set()).add(groups[node])
        for leaf, units in readers.items():
            (unit, *others) = units
            if not others and module_of(unit) == groups[leaf]:
                groups[leaf] = unit
    return groups


def _natural_key(text: str) -> list[Any]:
    """'layer2.neuron10' after 'layer2.neuron9': digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _fold_wide_layers(
    members: Mapping[str, list[Value]], grads: Mapping[str, float], graph: Graph
) -> dict[str, list[str]]:
    """For each layer of more than MAX_UNITS units, a box for all but its MAX_UNITS - 1 units
    with the largest mean |grad| (the first ones on a tie): {box name: the units it holds}."""
    layers: dict[str, list[str]] = {}
    for group, nodes in members.items():
        if graph.modules[nodes[0]] and module_of(group):
            layers.setdefault(module_of(group), []).append(group)
    folded = {}
    for layer, units in layers.items():
        if len(units) > MAX_UNITS:
            units.sort(key=_natural_key)
            ranked = sorted(units, key=lambda unit: -grads[unit])  # stable: ties keep order
            kept = set(ranked[: MAX_UNITS - 1])
            folded[f"{layer}.~rest"] = [unit for unit in units if unit not in kept]
    return folded


def _folded_lines(units: list[str], nodes: list[Value], show_grad: bool) -> list[str]:
    lines = [f"<b>the other {len(units)} {_unit_word(units[0])}s</b>", "(smaller |grad|)"]
    return lines + _parameter_lines(nodes, _group_grad(nodes), show_grad)


def _fold_long_run(groups: dict[Value, str], graph: Graph) -> list[str]:
    """More than MAX_LAYERS top-level modules (a long unrolled sequence): all but the first
    and last few are drawn as one box. Returns the modules folded, in order."""
    last_seen: dict[str, int] = {}
    for index, node in enumerate(graph.order):
        if graph.modules[node]:
            last_seen[graph.modules[node].split(".")[0]] = index
    tops = sorted(last_seen, key=last_seen.__getitem__)
    if len(tops) <= MAX_LAYERS:
        return []
    keep = MAX_LAYERS // 2
    folded = tops[keep : len(tops) - keep + 1]
    inside = set(folded)
    for node, group in groups.items():
        if graph.modules[node] and group.split(".")[0] in inside:
            groups[node] = LONG_RUN
    return folded


def _long_run_lines(folded: list[str], nodes: list[Value], show_grad: bool) -> list[str]:
    title = escape_text(f"{folded[0]} ... {folded[-1]}")
    lines = [f"<b>{title}</b>", f"{len(folded)} more boxes"]
    return lines + _parameter_lines(nodes, _group_grad(nodes), show_grad)


def _parameter_lines(nodes: list[Value], grad: float, show_grad: bool) -> list[str]:
    """A box's last lines: how many parameters it holds (if any), its mean |grad|."""
    parameters = sum(1 for n in nodes if not n.inputs)
    lines = [f"{parameters} parameters"] if parameters else []
    return lines + ([f"mean |grad| {grad:.2e}"] if show_grad else [])


def _short(module: str) -> str:
    return module.rpartition(".")[2]


def _unit_word(unit: str) -> str:
    """'neuron' for 'layer1.neuron3', 'feature map' for 'layer1.map0', else 'unit'."""
    return UNIT_WORDS.get(_short(unit).rstrip("0123456789"), "unit")


def _group_shared_leaves(groups: dict[Value, str], graph: Graph) -> list[str]:
    """Named leaves outside every module that several modules read (the weights a recurrent
    cell shares across its time steps) become one box, "shared", instead of a box each.
    Returns the boxes that read them, in their names' order (t1, t2, ..., t10)."""
    readers: dict[Value, dict[str, None]] = {}
    for node in graph.order:
        for child in node.inputs:
            if graph.modules[node] and child.label and groups.get(child, "").startswith("in:"):
                readers.setdefault(child, {})[groups[node]] = None
    shared_by: dict[str, None] = {}
    for leaf, boxes in readers.items():
        if len({box.split(".")[0] for box in boxes}) > 1:  # read by several layers
            groups[leaf] = SHARED
            shared_by.update(boxes)
    return sorted(shared_by, key=_natural_key)


def _group_grad(nodes: Sequence[Value]) -> float:
    """A box's gradient: mean |grad| of its parameters (leaves), else of all its values."""
    leaves = [n for n in nodes if not n.inputs]
    return _mean_abs_grad(leaves or nodes)


def _box_lines(
    group: str,
    nodes: list[Value],
    graph: Graph,
    level: str,
    show_grad: bool,
    grad: float,
    shared_by: Sequence[str] = (),
) -> list[str]:
    if group == INPUTS:
        return ["<b>inputs</b>", f"{len(nodes)} values"]
    if group.startswith("in:"):
        if len(nodes) > 1:  # leaves of one name: an input read at several time steps, say
            return [_title(group[3:]), f"{len(nodes)} values"]
        (node,) = nodes
        lines = [_title(group[3:]), f"data {node.data:.4f}"]
        return lines + ([f"grad {_grad(node):.4f}"] if show_grad else [])
    if group == SHARED:
        readers = ", ".join(map(escape_text, shared_by))
        if len(shared_by) > 4:
            ends = escape_text(f"{shared_by[0]} to {shared_by[-1]}")
            readers = f"{len(shared_by)} boxes, {ends}"
        lines = ["<b>shared</b>", f"{len(nodes)} values, read by {readers}"]
        return lines + ([f"mean |grad| {grad:.2e}"] if show_grad else [])
    if group == LOSS:
        root = graph.root
        lines = [_title(root.label or "loss"), f"data {root.data:.4f}"]
        ops = len(nodes)
        return lines + [f"{ops} {'op' if ops == 1 else 'ops'} after the model"]
    parameters = [n for n in nodes if not n.inputs]
    outputs = [n for n in nodes if n.inputs and n.label]
    # Each output's unit: the module below the box its label names (layer1.neuron3 in the
    # box layer1), or, for a label right in the box (t1.h0, a neuron's out), the label.
    units: dict[str, dict[str, int]] = {}  # unit -> {label: how many samples}
    for n in outputs:
        unit = module_of(n.label)
        unit = n.label if unit == group else unit
        samples = units.setdefault(unit, {})
        samples[n.label] = samples.get(n.label, 0) + 1
    kind = _kind(group, nodes, outputs, parameters)
    words = {_short(unit).rstrip("0123456789") for unit in units}
    if words == {"h", "c"}:  # an LSTM's step: its units are the h; each has a cell state c
        units = {unit: labels for unit, labels in units.items() if _short(unit).startswith("h")}
        kind += ", a cell state per unit"
    lines = [_title(_short(group) if level == "neurons" else group)]  # its cluster names the rest
    if level == "layers" or not units:
        count = len(units) or 1
        word = _unit_word(next(iter(units), group))
        size = max((len(labels) for labels in units.values()), default=1)
        of = f" of {size}" if size > 1 else ""
        lines.append(f"{count} {word}{'' if count == 1 else 's'}{of}, {kind}")
    else:
        lines.append(kind)
        labels = {label: k for samples in units.values() for label, k in samples.items()}
        samples = max(labels.values())
        if len(labels) > 1:
            noun = "positions" if _unit_word(group) == "feature map" else "units"
            lines.append(f"{len(labels)} {noun}")
        elif samples == 1:
            lines.append(f"out {outputs[0].data:.4f}")
        if samples > 1:
            lines.append(f"{samples} samples")
    return lines + _parameter_lines(nodes, grad, show_grad)


def _title(text: str) -> str:
    """A box's bold first line; an empty name (a label '.out' has no module) reads '(no name)'."""
    return f"<b>{escape_text(text)}</b>" if text else "<i>(no name)</i>"


def _kind(group: str, nodes: list[Value], outputs: list[Value], parameters: list[Value]) -> str:
    """What a box computes: 'relu', 'linear', 'convolution', 'max pool', a GRU's gates."""
    words = {_short(module_of(n.label) or n.label).rstrip("0123456789") for n in outputs}
    pools = sorted(POOLS[word] for word in words & set(POOLS))
    if pools:
        return "/".join(pools)
    activations = sorted({n.op if n.op in ACTIVATION_OPS else "linear" for n in outputs})
    ops = {n.op for n in nodes}
    if activations == ["linear"] and {"sigmoid", "tanh"} <= ops:
        return "gated: sigmoid gates, tanh candidate"
    if "map" in words and parameters:
        activations = ["convolution" if a == "linear" else f"convolution, {a}" for a in activations]
    return "/".join(activations) or "no outputs"


def _box_mark(group: str, nodes: list[Value], graph: Graph, level: str) -> str:
    """What stops learning in this box: dead or saturated units, a vanishing layer."""
    if level == "layers" and group in graph.layer_marks:
        unit_marks = _count_units(nodes, graph)
        return "; ".join(filter(None, [graph.layer_marks[group], unit_marks]))
    return _count_units(nodes, graph) if level == "layers" else _unit_mark(nodes, graph)


def _unit_mark(nodes: list[Value], graph: Graph) -> str:
    """The marks of a box's units; a box of several units counts them."""
    units = {n.label for n in nodes if n.inputs and n.label}
    if len({module_of(label) for label in units}) > 1 or len(units) > 1:
        return _count_units(nodes, graph)
    marks = {graph.marks[n] for n in nodes if n in graph.marks}
    return ", ".join(sorted(marks))


def _count_units(nodes: list[Value], graph: Graph) -> str:
    """'3 of 16 dead ReLU': how many of a box's units carry each mark (a unit is a labelled
    output: a neuron's `out`, a recurrent step's `h0`)."""
    units: dict[str, str] = {}
    for node in nodes:
        if node.inputs and node.label and (node.op in ACTIVATION_OPS or node in graph.marks):
            units.setdefault(node.label, graph.marks.get(node, ""))
    counts: dict[str, int] = {}
    for mark in units.values():
        if mark:
            counts[mark] = counts.get(mark, 0) + 1
    return ", ".join(f"{k} of {len(units)} {mark}" for mark, k in sorted(counts.items()))


def _box_label(lines: list[str], fill: str | None, mark: str) -> str:
    background = f' bgcolor="{fill}"' if fill is not None else ""
    if fill is not None:
        lines = [_on(fill, line) for line in lines]
    body = "<br/>".join(lines)
    # The mark on white below the coloured cell: red on a red fill would not read.
    note = f'<tr><td><font color="{MARK_COLOR}"><b>{escape_text(mark)}</b></font></td></tr>'
    return f"<{TABLE}><tr><td{background}>{body}</td></tr>{note if mark else ''}</table>>"


def escape_text(text: str) -> str:
    """User text as HTML-like label content: printed as typed, one line per line of text.

    Graphviz parses the label as XML, which forbids control codes: one in a label would make
    `dot` fail, so those (and other unprintable characters) are written out as escapes. Text
    over MAX_TEXT characters is cut there, with its length said.
    """
    if len(text) > MAX_TEXT:  # Graphviz refuses an HTML label over 16384 characters
        text = f"{text[:MAX_TEXT]}... ({len(text)} characters)"
    lines = text.replace("\r\n", "\n").split("\n")
    return "<br/>".join(html.escape("".join(map(_printable, line))) for line in lines)


def _printable(char: str) -> str:
    return char if char.isprintable() else repr(char)[1:-1]
