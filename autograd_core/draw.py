"""Drawing a computation graph with Graphviz: every value, every op, and the gradients.

Each Value is a box showing its label, data and grad; each op is a small ellipse between its
inputs and its output. Labels are user text, so they go through HTML escaping: quotes,
braces, `<`, `|` and `&` show as typed, a newline starts a new line, and any other character
that cannot be printed (a tab, a control code) is shown as its Python escape (`\\t`), so no
label can break the dot source.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from .value import Value

if TYPE_CHECKING:
    import graphviz

RANKDIRS = ("LR", "RL", "TB", "BT")
# An op is a small ellipse that grows only as much as its name needs.
OP_STYLE = {"shape": "ellipse", "fontsize": "11", "width": "0.3", "height": "0.3", "margin": "0.04"}


def draw_dot(
    root: Value, rankdir: str = "LR", show_grad: bool = True, max_nodes: int = 500
) -> graphviz.Digraph:
    """A `graphviz.Digraph` of root's graph: it renders inline in Jupyter.

    `.render()` or `.pipe(format="svg")` turn it into a file or bytes (needs Graphviz's `dot`
    program). A graph of more than `max_nodes` values is refused at once with a ValueError:
    dot takes minutes on graphs that large, and the picture is unreadable anyway.
    """
    import graphviz

    if not isinstance(root, Value):
        raise TypeError(f"draw_dot draws a Value, got {type(root).__name__}")
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    nodes = _collect(root)
    if len(nodes) > max_nodes:
        raise ValueError(
            f"the graph has {len(nodes)} values, more than max_nodes={max_nodes}; "
            f"pass max_nodes={len(nodes)} (or more) to draw it anyway, though Graphviz will be "
            "slow and the picture hard to read"
        )

    dot = graphviz.Digraph(graph_attr={"rankdir": rankdir}, node_attr={"fontname": "Helvetica"})
    ids = {node: str(i) for i, node in enumerate(nodes)}
    for node in nodes:
        dot.node(ids[node], _value_label(node, show_grad), shape="plaintext")
        if node.inputs:
            op_id = ids[node] + "op"
            dot.node(op_id, html.escape(node.op), **OP_STYLE)
            dot.edge(op_id, ids[node])
            for child in node.inputs:
                dot.edge(ids[child], op_id)
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


def _value_label(node: Value, show_grad: bool) -> str:
    """An HTML-like table: label | data | grad, each cell escaped."""
    cells = []
    if node.label:
        cells.append(f"<b>{_escape(node.label)}</b>")
    cells.append(f"data {node.data:.4f}")
    if show_grad:
        cells.append(f"grad {float(node.grad):.4f}")
    row = "".join(f"<td>{cell}</td>" for cell in cells)
    table = '<table border="0" cellborder="1" cellspacing="0" cellpadding="4">'
    return f"<{table}<tr>{row}</tr></table>>"


def _escape(text: str) -> str:
    """User text as HTML-like label content: printed as typed, one line per line of text.

    Graphviz parses the label as XML, which forbids control codes: one in a label would make
    `dot` fail, so those (and other unprintable characters) are written out as escapes.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    return "<br/>".join(html.escape("".join(map(_printable, line))) for line in lines)


def _printable(char: str) -> str:
    return char if char.isprintable() else repr(char)[1:-1]
