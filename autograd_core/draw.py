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
* `"neurons"`: one box per innermost module (a neuron), inside a cluster per layer;
* `"layers"`: one box per top-level module (a layer) with its width, activation and number
  of parameters.

Unlabelled leaves are the inputs: they are drawn as `x0, x1, ...` in the order the graph uses
them, or with the names given in `input_names`. The constant 1 a `dot` node multiplies with a
bias (a parameter labelled `b` or `*.b`, the way `nn` writes `w . x + b`) is drawn as `1`.

With `color="grad"` each box is filled by log10 |grad| on a colour scale, with a legend, and
what stops learning is marked: a ReLU whose output is 0 for every sample in the graph (dead:
no gradient passes), a tanh or sigmoid whose slope is under 1% of its maximum (saturated), and
a layer whose parameters' mean |grad| is over 100 times smaller (vanishing) or larger
(exploding) than that of the layer nearest the output.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .backward import topological_order
from .value import Value

if TYPE_CHECKING:
    import graphviz

RANKDIRS = ("LR", "RL", "TB", "BT")
LEVELS = ("scalars", "neurons", "layers")
COLORS = (None, "grad")
# An op is a small ellipse that grows only as much as its name needs.
OP_STYLE = {"shape": "ellipse", "fontsize": "11", "width": "0.3", "height": "0.3", "margin": "0.04"}
TABLE = '<table border="0" cellborder="1" cellspacing="0" cellpadding="4"'
# Blue (small gradients) to red (large ones): ColorBrewer's RdYlBu, reversed.
PALETTE = (
    "#313695",
    "#4575b4",
    "#74add1",
    "#abd9e9",
    "#e0f3f8",
    "#fee090",
    "#fdae61",
    "#f46d43",
    "#d73027",
    "#a50026",
)
DARK = {"#313695", "#4575b4", "#d73027", "#a50026"}  # white text reads better on these
ZERO_COLOR = "#d9d9d9"  # a gradient of exactly 0 has no logarithm: grey
MARK_COLOR = "#c00000"
FOCUS_COLOR = "#e6550d"
# A unit is saturated where its slope is under this fraction of the activation's largest slope.
SATURATION = 0.01
MAX_SLOPE = {"tanh": 1.0, "sigmoid": 0.25}
# A layer's gradient this many times smaller (or larger) than the output layer's is marked.
VANISHING_RATIO = 1e-2
EXPLODING_RATIO = 1e2
# At the "neurons" level, more inputs than this are drawn as one box.
MAX_INPUT_BOXES = 64


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
    anyway. The coarse levels (`"neurons"`, `"layers"`) draw a box per module, so any size is
    fine. `color="grad"` fills boxes by log10 |grad| and marks dead and saturated units and
    vanishing or exploding layers. `edge_labels=True` writes on each edge into an op the local
    partial d(out)/d(in) of that op (at the scalars level, where every edge is one partial).
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
    if level == "scalars":
        size = len(_collect(root))
        if size > max_nodes:
            raise ValueError(
                f"the graph has {size} values, more than max_nodes={max_nodes}; "
                f"pass max_nodes={size} (or more) to draw it anyway, though Graphviz will be "
                "slow and the picture hard to read; or draw it with level='neurons' or "
                "level='layers'"
            )

    graph = analyse(root, input_names)
    dot = graphviz.Digraph(graph_attr={"rankdir": rankdir}, node_attr={"fontname": "Helvetica"})
    scale = ColorScale.of(graph.order) if color == "grad" else None
    if level == "scalars":
        draw_scalars(dot, graph, show_grad=show_grad, scale=scale, edge_labels=edge_labels)
    else:
        draw_modules(dot, graph, level, show_grad=show_grad, scale=scale)
    if scale is not None:
        dot.node("legend", scale.legend(), shape="plaintext")
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
    modules = _modules(order)
    ones = _bias_constants(order)
    inputs = [n for n in order if not n.inputs and not n.label and n not in ones]
    constants = set(ones)
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
    for i, node in enumerate(inputs):
        names[node] = given[i] if i < len(given) else f"x{i}"
    for node in ones:
        names[node] = "1"  # other constants show just their number
    graph = Graph(root, order, names, modules, constants, inputs)
    graph.marks = _unit_marks(order)
    graph.layer_marks = _layer_marks(graph)
    return graph


def module_of(label: str) -> str:
    """'layer1.neuron3' for 'layer1.neuron3.w0': a label up to its last dot ('' if none)."""
    return label.rpartition(".")[0]


def _bias_constants(order: list[Value]) -> set[Value]:
    """The unlabelled leaves a `dot` node pairs with a bias (w . x + b = dot([w, b], [x, 1]))."""
    constants = set()
    for node in order:
        if node.op == "dot":
            half = len(node.inputs) // 2
            for w, x in zip(node.inputs[:half], node.inputs[half:], strict=True):
                is_bias = w.label == "b" or w.label.endswith(".b")
                if is_bias and not x.inputs and not x.label:
                    constants.add(x)
    return constants


def _modules(order: list[Value]) -> dict[Value, str]:
    """Each node's module: from its label, else (op nodes) the one module all consumers share."""
    consumers: dict[Value, set[str]] = {}
    modules: dict[Value, str] = {}
    for node in reversed(order):  # every consumer comes before its inputs
        if "." in node.label:
            module = module_of(node.label)
        elif node.inputs and len(consumers.get(node, ())) == 1:
            (module,) = consumers[node]
        else:
            module = ""
        modules[node] = module
        for child in node.inputs:
            consumers.setdefault(child, set()).add(module)
    return modules


def _unit_marks(order: list[Value]) -> dict[Value, str]:
    """'dead ReLU' on ReLUs that output 0 for every sample; 'saturated tanh/sigmoid' likewise.

    Nodes with the same label are the same unit on different samples of a batch, so a unit
    is dead only if it is 0 on all of them. An unlabelled node is a unit of its own.
    """
    units: dict[object, list[Value]] = {}
    for node in order:
        if node.op == "relu" or node.op in MAX_SLOPE:
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


@dataclass(frozen=True)
class ColorScale:
    """log10 |grad| to a colour, one colour per band of `step` decades from `low` up."""

    low: int
    bands: int
    step: int

    @classmethod
    def of(cls, nodes: Sequence[Value]) -> ColorScale:
        """A scale spanning the nonzero gradients of `nodes` (1e-1 to 1e1 if there are none)."""
        logs = [math.log10(abs(g)) for g in map(_grad, nodes) if g != 0.0 and math.isfinite(g)]
        low, high = (math.floor(min(logs)), math.floor(max(logs)) + 1) if logs else (-1, 1)
        step = max(1, math.ceil((high - low) / len(PALETTE)))
        return cls(low, math.ceil((high - low) / step), step)

    def color(self, grad: float) -> str:
        if grad == 0.0 or not math.isfinite(grad):
            return ZERO_COLOR
        band = (math.floor(math.log10(abs(grad))) - self.low) // self.step
        return self.colors()[min(max(band, 0), self.bands - 1)]

    def colors(self) -> list[str]:
        """`bands` colours spread evenly over the palette, blue to red."""
        if self.bands == 1:
            return [PALETTE[len(PALETTE) // 2]]
        last = len(PALETTE) - 1
        return [PALETTE[round(i * last / (self.bands - 1))] for i in range(self.bands)]

    def legend(self) -> str:
        """A table: one cell per band labelled by its lowest power of ten, and the marks."""
        cells = [f'<td bgcolor="{ZERO_COLOR}">0</td>']
        for i, fill in enumerate(self.colors()):
            cells.append(f'<td bgcolor="{fill}">{_on(fill, f"1e{self.low + i * self.step}")}</td>')
        width = len(cells)
        marks = (
            "dead ReLU: 0 on every sample; saturated: slope under 1% of its peak;<br/>"
            "vanishing / exploding: mean |grad| 100x below / above the output layer's"
        )
        return (
            f'<{TABLE}><tr><td colspan="{width}"><b>|grad|</b></td></tr>'
            f"<tr>{''.join(cells)}</tr>"
            f'<tr><td colspan="{width}"><font color="{MARK_COLOR}">{marks}</font></td></tr>'
            "</table>>"
        )


def _grad(node: Value) -> float:
    return float(node.grad)


def _on(fill: str, text: str) -> str:
    """Text that stays readable on the fill colour."""
    return f'<font color="white">{text}</font>' if fill in DARK else text


# -- the scalars level: every value and op ----------------------------------------------------


def draw_scalars(
    dot: graphviz.Digraph,
    graph: Graph,
    *,
    show_grad: bool = True,
    scale: ColorScale | None = None,
    edge_labels: bool = False,
    grad_text: Callable[[Value], str] | None = None,
    focus: Value | None = None,
) -> None:
    """Every value as a box and every op as an ellipse, each inside its module's cluster.

    `grad_text(node)` replaces the grad cell (the stepper shows running sums this way); the
    `focus` node and the edges into its op are highlighted.
    """
    ids = {node: str(i) for i, node in enumerate(reversed(graph.order))}
    members: dict[str, list[tuple[str, str, dict]]] = {}
    for node in reversed(graph.order):
        fill = scale.color(_grad(node)) if scale is not None else None
        mark = graph.marks.get(node, "") if scale is not None else ""
        if grad_text is not None:
            grad = grad_text(node)
        else:
            grad = f"grad {float(node.grad):.4f}" if show_grad else None
        label = _value_label(graph.names[node], node.data, grad, fill, mark, node is focus)
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
        dot.edge(ids[node] + "op", ids[node])
        for child, local in zip(node.inputs, node.local_grads, strict=True):
            attrs = {}
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
                text = _escape(title(child))
                if child in marks:
                    text += f'<br/><font color="{MARK_COLOR}">{_escape(marks[child])}</font>'
                cluster.attr(label=f"<{text}>", style="rounded", color="#888888")
                fill(cluster, child)

    fill(dot, "")


def _cluster_id(module: str) -> str:
    """A cluster name dot accepts unquoted: letters, digits and underscores."""
    return "".join(c if c.isalnum() else "_" for c in module)


def _value_label(
    name: str, data: float, grad: str | None, fill: str | None, mark: str, focus: bool
) -> str:
    """An HTML-like table: name | data | grad (| mark), each cell escaped."""
    cells = []
    if name:
        cells.append(f"<b>{_escape(name)}</b>")
    cells.append(f"data {data:.4f}")
    if grad is not None:
        cells.append(_escape(grad))
    if fill is not None:
        cells = [_on(fill, cell) for cell in cells]
    if mark:
        cells.append(f'<font color="{MARK_COLOR}"><b>{_escape(mark)}</b></font>')
    background = f' bgcolor="{fill}"' if fill is not None else ""
    row = "".join(f"<td{background}>{cell}</td>" for cell in cells)
    # The focus of a stepper frame: a thick coloured frame around the whole box.
    table = TABLE.replace('border="0"', f'border="3" color="{FOCUS_COLOR}"') if focus else TABLE
    return f"<{table}><tr>{row}</tr></table>>"


# -- the coarse levels: one box per neuron or per layer ---------------------------------------


def draw_modules(
    dot: graphviz.Digraph,
    graph: Graph,
    level: str,
    *,
    show_grad: bool = True,
    scale: ColorScale | None = None,
) -> None:
    """One box per module (a neuron or a layer), for the inputs, and for what follows the model.

    An edge joins two boxes when any value of one is an input of any value of the other.
    """
    many_inputs = level == "layers" or len(graph.inputs) > MAX_INPUT_BOXES
    groups: dict[Value, str] = {}
    for node in graph.order:
        module = graph.modules[node]
        if module:
            groups[node] = module if level == "neurons" else module.split(".")[0]
        elif node in graph.constants:
            continue  # a number, not a box: the bias's 1 belongs to its neuron
        elif not node.inputs:
            groups[node] = "inputs" if many_inputs and not node.label else "in:" + graph.names[node]
        else:
            groups[node] = "output"
    shared_by = _group_shared_leaves(groups, graph) if level == "layers" else []
    members: dict[str, list[Value]] = {}
    for node, group in groups.items():
        members.setdefault(group, []).append(node)
    modules = {group for node, group in groups.items() if graph.modules[node]}
    ids = {group: f"g{i}" for i, group in enumerate(members)}
    grads = {group: _group_grad(nodes) for group, nodes in members.items()}

    boxes: dict[str, list[tuple[str, str, dict]]] = {}
    for group, nodes in members.items():
        fill = scale.color(grads[group]) if scale is not None else None
        lines = _box_lines(group, nodes, graph, level, show_grad, grads[group], shared_by)
        mark = _box_mark(group, nodes, graph, level) if scale is not None else ""
        label = _box_label(lines, fill, mark)
        cluster = module_of(group) if level == "neurons" and group in modules else ""
        boxes.setdefault(cluster, []).append((ids[group], label, {"shape": "plaintext"}))
    _add_clusters(dot, boxes, lambda module: module, graph.layer_marks)

    edges: dict[tuple[str, str], None] = {}  # a dict keeps the first-seen order
    for node in graph.order:
        for child in node.inputs:
            source, target = groups.get(child), groups.get(node)
            if source is not None and target is not None and source != target:
                edges[(ids[source], ids[target])] = None
    for source, target in edges:
        dot.edge(source, target)


def _group_shared_leaves(groups: dict[Value, str], graph: Graph) -> list[str]:
    """Named leaves outside every module that several modules read (the weights a recurrent
    cell shares across its time steps) become one box, "shared", instead of a box each.
    Returns the boxes that read them, in the graph's order."""
    readers: dict[Value, dict[str, None]] = {}
    for node in graph.order:
        for child in node.inputs:
            if graph.modules[node] and groups.get(child, "").startswith("in:"):
                readers.setdefault(child, {})[groups[node]] = None
    shared_by: dict[str, None] = {}
    for leaf, modules in readers.items():
        if len(modules) > 1:
            groups[leaf] = "shared"
            shared_by.update(modules)
    return list(shared_by)


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
    if group == "inputs":
        return ["<b>inputs</b>", f"{len(nodes)} values"]
    if group.startswith("in:"):
        if len(nodes) > 1:  # leaves of one name: an input read at several time steps, say
            return [f"<b>{_escape(group[3:])}</b>", f"{len(nodes)} values"]
        (node,) = nodes
        lines = [f"<b>{_escape(group[3:])}</b>", f"data {node.data:.4f}"]
        return lines + ([f"grad {_grad(node):.4f}"] if show_grad else [])
    if group == "shared":
        readers = ", ".join(map(_escape, shared_by))
        if len(shared_by) > 4:
            readers = f"{len(shared_by)} boxes, {_escape(shared_by[0])} to {_escape(shared_by[-1])}"
        lines = ["<b>shared</b>", f"{len(nodes)} values, read by {readers}"]
        return lines + ([f"mean |grad| {grad:.2e}"] if show_grad else [])
    if group == "output":
        root = graph.root
        lines = [f"<b>{_escape(root.label or 'output')}</b>", f"data {root.data:.4f}"]
        ops = len(nodes)
        return lines + [f"{ops} {'op' if ops == 1 else 'ops'} after the model"]
    parameters = [n for n in nodes if not n.inputs]
    outputs = [n for n in nodes if n.label.endswith(".out")]
    width, unit = len({module_of(n.label) for n in outputs}), "neuron"
    if not outputs:  # units named by their results: a recurrent step's h0, h1, ...
        outputs = [n for n in nodes if n.inputs and n.label]
        width, unit = len({n.label for n in outputs}), "unit"  # one label however many samples
    activation = _activation(outputs)
    lines = [f"<b>{_escape(group)}</b>"]
    if level == "layers":
        width = width or 1
        lines.append(f"{width} {unit if width == 1 else unit + 's'}, {activation}")
    else:
        lines.append(activation)
        if len(outputs) == 1:
            lines.append(f"out {outputs[0].data:.4f}")
        elif outputs:
            lines.append(f"{len(outputs)} samples")
    lines.append(f"{len(parameters)} parameters")
    if show_grad:
        lines.append(f"mean |grad| {grad:.2e}")
    return lines


def _activation(outputs: Sequence[Value]) -> str:
    """The op that makes a module's outputs; a `dot` (or a sum or a product, as a batch norm's
    scale and shift) with nothing after it is linear."""
    ops = sorted({"linear" if n.op in ("dot", "", "+", "-", "*") else n.op for n in outputs})
    return "/".join(ops) or "no outputs"


def _box_mark(group: str, nodes: list[Value], graph: Graph, level: str) -> str:
    """What stops learning in this box: dead or saturated units, a vanishing layer."""
    if level == "layers" and group in graph.layer_marks:
        unit_marks = _count_units(nodes, graph)
        return "; ".join(filter(None, [graph.layer_marks[group], unit_marks]))
    return _count_units(nodes, graph) if level == "layers" else _unit_mark(nodes, graph)


def _unit_mark(nodes: list[Value], graph: Graph) -> str:
    marks = {graph.marks[n] for n in nodes if n in graph.marks and n.label.endswith(".out")}
    return ", ".join(sorted(marks))


def _count_units(nodes: list[Value], graph: Graph) -> str:
    """'3 of 16 dead ReLU': how many of a layer's neurons carry each mark."""
    units: dict[str, str] = {}
    for node in nodes:
        if node.label.endswith(".out"):
            units.setdefault(module_of(node.label), graph.marks.get(node, ""))
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
    note = f'<tr><td><font color="{MARK_COLOR}"><b>{_escape(mark)}</b></font></td></tr>'
    return f"<{TABLE}><tr><td{background}>{body}</td></tr>{note if mark else ''}</table>>"


def _escape(text: str) -> str:
    """User text as HTML-like label content: printed as typed, one line per line of text.

    Graphviz parses the label as XML, which forbids control codes: one in a label would make
    `dot` fail, so those (and other unprintable characters) are written out as escapes.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    return "<br/>".join(html.escape("".join(map(_printable, line))) for line in lines)


def _printable(char: str) -> str:
    return char if char.isprintable() else repr(char)[1:-1]
