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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .backward import _check_seed, topological_order
from .draw import Graph, analyse, draw_scalars, escape_text
from .value import Value

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

    Nothing is written to `.grad`: the running sums live in the steps. After the last step
    every `after` equals what `backward()` puts in that input's `.grad` (on a fresh graph).
    """
    if not isinstance(root, Value):
        raise TypeError(f"backward_steps needs a Value, got {type(root).__name__}")
    _check_seed(grad)
    order = topological_order(root)
    uses: dict[Value, int] = {}
    for node in order:
        for child in node.inputs:
            uses[child] = uses.get(child, 0) + 1
    grads: dict[Value, float] = {root: float(grad)}
    number = 0
    for node in reversed(order):
        if not node.inputs:
            continue
        number += 1
        upstream = grads.get(node, 0.0)
        contributions = []
        for child, local in zip(node.inputs, node.local_grads, strict=True):
            contribution = float(local) * upstream
            before = grads.get(child, 0.0)
            # `before + contribution` as backward's `child.grad += local * g`: the same float.
            grads[child] = before + contribution
            contributions.append(
                Contribution(
                    child, float(local), contribution, before, grads[child], uses[child] > 1
                )
            )
        yield Step(number, node, upstream, tuple(contributions))


# -- drawing the steps ------------------------------------------------------------------------


def frames(root: Value, grad: float = 1.0, rankdir: str = "LR") -> list[graphviz.Digraph]:
    """One picture per moment of the backward pass: the seed, then after each step.

    Each value shows its gradient so far ('grad ?' where none has arrived yet); the node of
    the step and the edges into its op are highlighted, each edge labelled with its local
    partial, and the step's arithmetic is written above the graph.
    """
    steps = list(backward_steps(root, grad))
    graph = analyse(root)
    return [_frame(graph, steps, k, rankdir) for k in range(len(steps) + 1)]


def _frame(graph: Graph, steps: list[Step], k: int, rankdir: str) -> graphviz.Digraph:
    """The picture after the first k steps (k = 0: only the seed on the root)."""
    import graphviz

    known: dict[Value, float] = {graph.root: steps[0].upstream if steps else float(graph.root.grad)}
    for step in steps[:k]:
        for c in step.contributions:
            known[c.input] = c.after

    def grad_text(node: Value) -> str:
        return f"grad {known[node]:.4f}" if node in known else "grad ?"

    focus = steps[k - 1] if k else None
    caption = _caption(graph, focus, len(steps))
    dot = graphviz.Digraph(
        graph_attr={
            "rankdir": rankdir,
            "label": caption,
            "labelloc": "t",
            "fontsize": "16",
            "fontname": "Helvetica",
        },
        node_attr={"fontname": "Helvetica"},
    )
    draw_scalars(
        dot, graph, edge_labels=True, grad_text=grad_text, focus=focus.node if focus else None
    )
    return dot


def graph_name(graph: Graph, node: Value) -> str:
    """The name the drawing gives a node (x0 for an input), else `name_of(node)`."""
    return graph.names[node] or name_of(node)


def _title(graph: Graph, node: Value) -> str:
    """'n (tanh)' for a named node, '(tanh)' for an unnamed one."""
    named = graph.names[node]
    op = escape_text(node.op)
    return f"{escape_text(named)} ({op})" if named else f"({op})"


def _caption(graph: Graph, step: Step | None, total: int) -> str:
    """The arithmetic of the step, as an HTML-like label: local x upstream = contribution."""

    def name(node: Value) -> str:
        return escape_text(graph_name(graph, node))

    if step is None:
        text = (
            f"<b>backward: {total} steps.</b> The seed: d {name(graph.root)} / "
            f"d {name(graph.root)} = 1"
        )
        return f"<{text}>"
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
    return "<" + "<br/>".join(lines) + ">"


def save_gif(root: Value, path: str | Path, seconds_per_frame: float = 1.5) -> Path:
    """The frames as an animated GIF (needs Pillow and Graphviz's `dot`); returns the path.

    Frames differ in size, so each is centred on a white canvas as large as the largest.
    """
    from PIL import Image

    if not (math.isfinite(seconds_per_frame) and seconds_per_frame > 0):
        raise ValueError(f"seconds_per_frame must be a positive number, got {seconds_per_frame!r}")
    images = [
        Image.open(io.BytesIO(frame.pipe(format="png"))).convert("RGB") for frame in frames(root)
    ]
    width = max(image.width for image in images)
    height = max(image.height for image in images)
    canvases = []
    for image in images:
        canvas = Image.new("RGB", (width, height), "white")
        canvas.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
        canvases.append(canvas)
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
        self._graph = analyse(root)
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
            self._svgs[self.index] = self.frames[self.index].pipe(format="svg").decode()
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
