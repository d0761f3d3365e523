"""The backward pass one node at a time: what `backward()` does, step by step, to look at.

`backward()` visits the nodes from the output back to the inputs (reversed topological order),
and at each node applies the chain rule to every input:

    contribution = d(node)/d(input) * d(root)/d(node)        (local x upstream)
    input.grad  += contribution

The `+=` is the part that is easy to get wrong: an input used by several nodes (a shared node)
receives one contribution from each, and its gradient is their sum. `backward_steps(root)`
yields each of these steps with every number in it; `frames(root)` draws them; `Stepper(root)`
is an ipywidgets player for Jupyter (buttons and a slider); `save_gif` and `save_html` write
the same frames to a file that needs no Python to play.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine.backward import _check_seed, reverse_walk, topological_order
from ..engine.value import Value
from .draw import (
    BOX_STYLE,
    GRAPH_STYLE,
    Graph,
    analyse,
    draw_scalars,
    escape_text,
    grad_color,
)

if TYPE_CHECKING:
    import graphviz


@dataclass(frozen=True)
class Contribution:
    """What one input of a node receives in one step of the backward pass.

    `contribution = local * upstream`; the input's running gradient goes from `before` to
    `after = before + contribution`. `shared` is True when the input feeds more than one edge,
    so that its gradient is a sum of several contributions.
    """

    input: Value
    local: float
    contribution: float
    before: float
    after: float
    shared: bool


@dataclass(frozen=True)
class Step:
    """One node of the backward pass: its upstream gradient d(root)/d(node), sent to its inputs."""

    number: int  # 1 for the root, counting the nodes that have inputs
    node: Value
    upstream: float
    contributions: tuple[Contribution, ...]

    def __str__(self) -> str:
        return self.explain()

    def explain(self, name: Callable[[Value], str] | None = None) -> str:
        """The step as text, one line per input; `name(node)` names the nodes (`name_of`)."""
        name = name or name_of
        out, up = name(self.node), _num(self.upstream)
        lines = [f"step {self.number}: {out}, upstream gradient {up}"]
        for c in self.contributions:
            lines.append(
                f"  d {out} / d {name(c.input)} = {_num(c.local)}:  "
                f"{_num(c.local)} x {up} = {_num(c.contribution)};  "
                f"{name(c.input)}.grad {_sum(c)}"
                + ("  (shared: the paths add up)" if c.shared else "")
            )
        return "\n".join(lines)


def _num(x: float) -> str:
    """4 significant digits; -0.0 (a zero times a negative number) is written 0."""
    return f"{x + 0.0:.4g}"


def _sum(c: Contribution) -> str:
    """'0.04 + (-0.69) = -0.65': the running sum of an input's gradient."""
    term = _num(c.contribution)
    return f"{_num(c.before)} + {f'({term})' if term.startswith('-') else term} = {_num(c.after)}"


def name_of(node: Value) -> str:
    """A node's label, or the op that made it in brackets ('(tanh)'), or its number."""
    if node.label:
        return node.label
    return f"({node.op})" if node.op else f"{node.data:g}"


def backward_steps(root: Value, grad: float = 1.0) -> Iterator[Step]:
    """The steps of `root.backward(grad)`, in the order it runs, with the same numbers.

    The steps are those of the one reverse walk `backward` runs (`backward.reverse_walk`), so
    they take the same terms: a term that is 0 times inf or nan shows as 0 here as it counts
    as 0 there. Every `.grad` is put back as it was afterwards (run the steps to their end, or
    close the iterator); the running sums live in the steps. After the last step every `after`
    equals what `backward()` puts in that input's `.grad` (on a fresh graph).
    """
    if not isinstance(root, Value):
        raise TypeError(f"backward_steps needs a Value, got {type(root).__name__}")
    _check_seed(grad)
    order = topological_order(root)
    uses: dict[Value, int] = {}
    for node in order:
        for child in node.inputs:
            uses[child] = uses.get(child, 0) + 1
    earlier = [node.grad for node in order]
    try:
        walk = reverse_walk(order, float(grad), steps=True)
        for number, (node, upstream, terms) in enumerate(walk, start=1):
            yield Step(number, node, upstream, _contributions(node, upstream, terms, uses))
    finally:
        for node, before in zip(order, earlier, strict=True):
            node.grad = before


def _contributions(
    node: Value, upstream: float, terms: list[tuple[Value, Any]], uses: dict[Value, int]
) -> tuple[Contribution, ...]:
    """What each input of `node` receives, as the walk is about to add it: the terms it let
    through in order (`local * upstream`), 0 for the others."""
    counted = iter(terms)
    term = next(counted, None)
    running: dict[Value, float] = {}
    contributions = []
    for child, local in zip(node.inputs, node.local_grads, strict=True):
        before = running.get(child, child.grad)
        if term is not None and term[0] is child and term[1] is local:
            contribution = local * upstream
            # `before + contribution` as the walk's `child.grad += local * g`: the same float.
            after = before + contribution
            term = next(counted, None)
        else:
            contribution, after = 0.0, before
        running[child] = after
        contributions.append(
            Contribution(child, float(local), contribution, before, after, uses[child] > 1)
        )
    return tuple(contributions)


# -- drawing the steps ------------------------------------------------------------------------


def frames(root: Value, grad: float = 1.0, rankdir: str = "LR") -> list[graphviz.Digraph]:
    """One picture per moment of the backward pass: the seed, then after each step.

    Each value shows its gradient so far ('grad ?' where none has arrived yet), its box
    filled by that gradient on the colour scale of `draw_dot(color="grad")`; the node of the
    step and the edges into its op are highlighted, each edge labelled with its local
    partial, and the step's arithmetic is written above the graph. The arrows point from
    each node back to its inputs, the way the gradient flows.

    Every frame has the same layout: the boxes are sized once, from the last frame, and the
    caption is a box as large as the largest, so Graphviz puts each node at the same place
    in every frame and only the numbers and colours change.
    """
    steps = list(backward_steps(root, grad))
    graph = stepper_graph(root)
    moments = range(len(steps) + 1)
    captions = [_caption_lines(graph, steps[k - 1] if k else None, len(steps)) for k in moments]
    sizes, width = _layout_sizes(_frame(graph, steps, len(steps), rankdir))
    caption_box = _caption_box(captions, width)
    pictures = []
    for k in moments:
        picture = _frame(graph, steps, k, rankdir, caption_box(captions[k]))
        for node, (w, h) in sizes.items():
            picture.node(node, width=w, height=h, fixedsize="true")
        pictures.append(picture)
    return pictures


def stepper_graph(root: Value) -> Graph:
    """root's graph as `draw_dot` reads it, with a name for every node the steps talk about:
    unlabelled op nodes are v1, v2, ... (in the order the forward pass made them), constants
    their number (c1, c2, ... where two share one), so no two boxes have one name."""
    graph = analyse(root)
    names = dict(graph.names)
    ops = [node for node in graph.order if node.inputs and not names[node]]
    for k, node in enumerate(ops, start=1):
        names[node] = f"v{k}"
    constants = [node for node in graph.order if node in graph.constants]
    numbers = [names[node] or f"{node.data:g}" for node in constants]
    others = {names[node] for node in graph.order if node not in graph.constants}
    for k, (node, number) in enumerate(zip(constants, numbers, strict=True), start=1):
        unique = numbers.count(number) == 1 and number not in others
        names[node] = number if unique else f"c{k}"
    return replace(graph, names=names)


def _frame(
    graph: Graph, steps: list[Step], k: int, rankdir: str, caption: str | None = None
) -> graphviz.Digraph:
    """The picture after the first k steps (k = 0: only the seed on the root)."""
    import graphviz

    known: dict[Value, float] = {graph.root: steps[0].upstream if steps else float(graph.root.grad)}
    for step in steps[:k]:
        for c in step.contributions:
            known[c.input] = c.after

    def grad_text(node: Value) -> str:
        return f"grad {known[node]:.4f}" if node in known else "grad ?"

    def fill(node: Value) -> str | None:
        return grad_color(known[node]) if node in known else None

    focus = steps[k - 1] if k else None
    attributes = GRAPH_STYLE | {"rankdir": rankdir}
    if caption is not None:
        attributes.update(label=caption, labelloc="t", fontsize=str(CAPTION_POINTS))
    # No margin around a box (BOX_STYLE): the sizes fixed from one frame are the boxes' own.
    dot = graphviz.Digraph(graph_attr=attributes, node_attr=BOX_STYLE)
    draw_scalars(
        dot,
        graph,
        fill=fill,
        edge_labels=True,
        grad_text=grad_text,
        focus=focus.node if focus else None,
        backward_arrows=True,
    )
    return dot


def _layout_sizes(frame: graphviz.Digraph) -> tuple[dict[str, tuple[str, str]], float]:
    """The size Graphviz gives each node of `frame` (width and height in inches, as dot
    writes them) and the width of the drawing in points: one layout, read as JSON."""
    layout = json.loads(frame.pipe(format="json"))
    sizes = {
        item["name"]: (item["width"], item["height"])
        for item in layout.get("objects", ())
        if "width" in item and "nodes" not in item  # nodes, not clusters
    }
    width = float(layout["bb"].split(",")[2])
    return sizes, width


def graph_name(graph: Graph, node: Value) -> str:
    """The name the drawing gives a node (x0 for an input, v1 for an unlabelled op in the
    stepper), else `name_of(node)`."""
    return graph.names[node] or name_of(node)


def _title(graph: Graph, node: Value) -> str:
    """'n = tanh(...)': a node's name and the op that made it."""
    return f"{escape_text(graph_name(graph, node))} = {escape_text(node.op)}(...)"


def _caption_lines(graph: Graph, step: Step | None, total: int) -> list[str]:
    """The arithmetic of the step, one HTML-like line each: local x upstream = contribution."""

    def name(node: Value) -> str:
        return escape_text(graph_name(graph, node))

    if step is None:
        root = name(graph.root)
        return [f"<b>backward: {total} steps.</b> The seed: d {root} / d {root} = 1"]
    lines = [
        f"<b>step {step.number} of {total}: {_title(graph, step.node)}, "
        f"upstream gradient {_num(step.upstream)}</b>"
    ]
    for c in step.contributions:
        line = (
            f"{name(c.input)}: local {_num(c.local)} x upstream {_num(step.upstream)} "
            f"= {_num(c.contribution)}"
        )
        if c.shared:
            line += f";   shared: {name(c.input)}.grad = {_sum(c)}"
        lines.append(line)
    return lines


FIT_WIDTH = '<svg style="max-width: 100%; height: auto" '
CAPTION_POINTS = 14  # the caption's font size
CHAR_WIDTH = 0.6  # a wide guess at a Helvetica character's width, in font sizes


def _caption_box(captions: list[list[str]], drawing_width: float) -> Callable[[list[str]], str]:
    """A function making each caption a box of one fixed size: wide enough for the longest
    line (and the drawing), tall enough for the most lines, so no frame moves the graph."""
    longest = max(len(re.sub(r"<[^>]+>|&\w+;", "x", line)) for lines in captions for line in lines)
    width = round(max(drawing_width, longest * CHAR_WIDTH * CAPTION_POINTS))
    rows = max(len(lines) for lines in captions)
    height = round(rows * CAPTION_POINTS * 1.3 + 8)

    def box(lines: list[str]) -> str:
        text = "<br/>".join(lines + [" "] * (rows - len(lines)))
        return (
            f'<<table border="0" fixedsize="true" width="{width}" height="{height}">'
            f'<tr><td align="left" balign="left">{text}</td></tr></table>>'
        )

    return box


def save_gif(root: Value, path: str | Path, seconds_per_frame: float = 1.5) -> Path:
    """The frames as an animated GIF (needs Pillow and Graphviz's `dot`); returns the path.

    Every frame has the same size and layout, so only the numbers change from one to the next.
    """
    from PIL import Image

    if not (math.isfinite(seconds_per_frame) and seconds_per_frame > 0):
        raise ValueError(f"seconds_per_frame must be a positive number, got {seconds_per_frame!r}")
    canvases = [
        Image.open(io.BytesIO(frame.pipe(format="png"))).convert("RGB") for frame in frames(root)
    ]
    path = Path(path)
    canvases[0].save(
        path,
        save_all=True,
        append_images=canvases[1:],
        duration=round(seconds_per_frame * 1000),
        loop=0,
    )
    return path


def save_html(root: Value, path: str | Path) -> Path:
    """The frames in one self-contained HTML file: SVG pictures, back/next buttons, a slider."""
    svgs = [frame.pipe(format="svg").decode() for frame in frames(root)]
    # JSON strings in a script: ASCII escapes keep every character (base64 and atob would
    # read the UTF-8 bytes back as Latin-1), and "<\/" keeps the script from ending early.
    sources = json.dumps(svgs).replace("</", "<\\/")
    page = _HTML.replace("__FRAMES__", sources).replace("__LAST__", str(len(svgs) - 1))
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path


_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>backward, step by step</title></head>
<style>#picture svg { max-width: 100%; height: auto; }</style>
<body style="font-family: sans-serif">
<button id="back">&#9664; back</button> <button id="next">next &#9654;</button>
<input id="slider" type="range" min="0" max="__LAST__" value="0"> <span id="where"></span>
<div id="picture"></div>
<script>
const frames = __FRAMES__;
const slider = document.getElementById("slider");
function show(k) {
  k = Math.max(0, Math.min(frames.length - 1, k));
  slider.value = k;
  document.getElementById("picture").innerHTML = frames[k];
  document.getElementById("where").textContent = "frame " + k + " of " + (frames.length - 1);
}
document.getElementById("back").onclick = () => show(Number(slider.value) - 1);
document.getElementById("next").onclick = () => show(Number(slider.value) + 1);
slider.oninput = () => show(Number(slider.value));
show(0);
</script></body></html>
"""


class Stepper:
    """An ipywidgets player of the backward pass: back / next buttons and a slider.

    Frame 0 shows the seed; frame k the graph after step k, with that step's node and edges
    highlighted and its arithmetic above. Display it as the last line of a notebook cell.
    `stepper.next()`, `stepper.back()` and `stepper.show(k)` drive it from code.
    """

    def __init__(self, root: Value, rankdir: str = "LR") -> None:
        import ipywidgets as widgets

        self.steps = list(backward_steps(root))
        self.frames = frames(root, rankdir=rankdir)
        self._graph = stepper_graph(root)
        self.index = 0
        self._svgs: dict[int, str] = {}
        self.back_button = widgets.Button(description="back", icon="step-backward")
        self.next_button = widgets.Button(description="next", icon="step-forward")
        self.slider = widgets.IntSlider(
            value=0, min=0, max=len(self.steps), description="step", continuous_update=True
        )
        self.arithmetic = widgets.HTML()
        self.picture = widgets.HTML()
        self.back_button.on_click(lambda _: self.back())
        self.next_button.on_click(lambda _: self.next())
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.back_button, self.next_button, self.slider]),
                self.arithmetic,
                self.picture,
            ]
        )
        self.show(0)

    @property
    def step(self) -> Step | None:
        """The step the current frame shows (None on frame 0, the seed)."""
        return self.steps[self.index - 1] if self.index else None

    def show(self, index: int) -> None:
        """Go to frame `index` (clamped to the first and last frames)."""
        self.index = max(0, min(len(self.steps), index))
        self.slider.value = self.index  # re-enters `show` only when the value changes
        if self.index not in self._svgs:
            svg = self.frames[self.index].pipe(format="svg").decode()
            # Scaled down to the notebook's column when wider (its viewBox keeps the shape).
            self._svgs[self.index] = svg.replace("<svg ", FIT_WIDTH, 1)
        self.picture.value = self._svgs[self.index]
        if self.step is None:
            text = "the seed: d(root)/d(root) = 1"
        else:
            text = self.step.explain(self.name)
        self.arithmetic.value = f"<pre>{html.escape(text)}</pre>"
        self.back_button.disabled = self.index == 0
        self.next_button.disabled = self.index == len(self.steps)

    def name(self, node: Value) -> str:
        """What the picture calls `node`: its label, `x0` for an input, else `name_of(node)`."""
        return graph_name(self._graph, node)

    def next(self) -> None:
        self.show(self.index + 1)

    def back(self) -> None:
        self.show(self.index - 1)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
