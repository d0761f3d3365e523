"""`jit`: trace a function once, then run it as generated straight-line Python.

Tracing calls `f` on Values and records its graph. Each node becomes one line of forward
code, printed by the op's `source`; the backward is the chain rule unrolled, one line per
edge, printed by calling the op table's own partial rules on symbols (`ops.Expr`). The result
is ordinary Python with no graph and no Value objects, which is why it is fast.

As in JAX, Python control flow that depends on the data (`if x > 0:`) is frozen at trace
time: the generated code replays the branch taken by the first call, whatever later inputs
are. Numbers `f` reads from elsewhere (a Value it closes over) are frozen as constants too;
pass anything that changes as an argument.

The generated source holds only numbers, generated names (x0.., v0.., dx0..), the rule
functions of the op table and Python's `abs` and `sum` (a `dot` or `vsum` node is written out
as a sum): never a label or any other string from the user.
"""

from __future__ import annotations

import itertools
import linecache
import math
from collections.abc import Callable, Sequence
from typing import Any

from . import ops
from .backward import topological_order
from .modes import enable_grad
from .transforms import _call
from .value import Value

_compiled_count = itertools.count()


class Jitted:
    """A traced function: call it for the value, `.value_and_grad(*xs)` for both."""

    def __init__(self, f: Callable[..., Any]) -> None:
        self._f = f
        self._arity: int | None = None  # None until the first call traces f
        self._forward: Callable[..., float]
        self._value_and_grad: Callable[..., tuple[float, Any]]
        self._source: str | None = None

    @property
    def source(self) -> str:
        """The generated Python source (available after the first call)."""
        if self._source is None:
            raise RuntimeError("nothing traced yet: call the jitted function once first")
        return self._source

    def __call__(self, *xs: float) -> float:
        if len(xs) != self._arity:
            self._trace_first_call(xs)
        return self._forward(*xs)

    def value_and_grad(self, *xs: float) -> tuple[float, Any]:
        """(f(*xs), grads) exactly as `autograd_core.value_and_grad(f)` gives them."""
        if len(xs) != self._arity:
            self._trace_first_call(xs)
        return self._value_and_grad(*xs)

    def _trace_first_call(self, xs: Sequence[float]) -> None:
        """Trace on the first call; later calls must pass as many arguments as it did."""
        if self._arity is not None:
            raise TypeError(
                f"this jitted function was traced with {self._arity} argument(s), got "
                f"{len(xs)}; jit the function again for a different number of arguments"
            )
        self._trace(xs)

    def _trace(self, xs: Sequence[float]) -> None:
        args = [Value(x) for x in xs]
        with enable_grad():
            out = _call(self._f, args)
        source = generate_source(out, args)
        filename = f"<jit-{next(_compiled_count)}>"
        # Registering the text lets tracebacks and `inspect` show the generated lines.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace: dict[str, Any] = dict(ops.RULE_FUNCTIONS, inf=math.inf, nan=math.nan)
        exec(compile(source, filename, "exec"), namespace)
        self._arity = len(args)
        self._source = source
        self._forward = namespace["forward"]
        self._value_and_grad = namespace["value_and_grad"]


def jit(f: Callable[..., Any]) -> Jitted:
    """Trace `f` (n numbers -> Value) on its first call and compile it to plain Python."""
    return Jitted(f)


def generate_source(out: Value, args: Sequence[Value]) -> str:
    """Python source defining `forward(x0, ..)` and `value_and_grad(x0, ..)` for out's graph."""
    order = topological_order(out)
    names: dict[Value, str] = {arg: f"x{i}" for i, arg in enumerate(args)}
    # The op table's rules are called on these symbols, one per node, to print the source.
    symbols: dict[Value, ops.Expr] = {arg: ops.Expr(name) for arg, name in names.items()}
    # The symbols that stand for a constant, with its number.
    constants: dict[ops.Expr, float] = {}
    forward = []
    for node in order:
        if node in names:
            continue
        if not node.inputs:  # a leaf that is not an argument: frozen as a constant
            names[node] = ops.literal(node.data)
            symbols[node] = ops.Expr(names[node])
            constants[symbols[node]] = node.data
            continue
        names[node] = f"v{len(forward)}"
        symbols[node] = ops.Expr(names[node])
        inputs = [symbols[child] for child in node.inputs]
        forward.append(f"{names[node]} = {_forward_source(node._op, inputs, constants)}")

    # Only nodes that depend on an argument need a gradient.
    needs_grad = set(args)
    for node in order:
        if any(child in needs_grad for child in node.inputs):
            needs_grad.add(node)
    # The chain rule: a node's gradient is the sum, over the nodes that use it, of their
    # gradient times the local partial. Walking back from the output, every user of a node
    # comes before the node itself, so its line can be written the moment it is reached.
    terms: dict[Value, list[str]] = {}
    backward = []
    if out in needs_grad:
        backward.append(f"d{names[out]} = 1.0")
    for node in reversed(order):
        if node not in needs_grad or not node.inputs:
            continue
        if node is not out:
            backward.append(f"d{names[node]} = {_total(terms.pop(node))}")
        grad = ops.Expr(f"d{names[node]}")
        local_grads = node._op.partials(symbols[node], *[symbols[c] for c in node.inputs])
        for child, local in zip(node.inputs, local_grads, strict=True):
            if child in needs_grad:
                # A partial that is a constant input (d(w * c)/dw = c) is used as its number,
                # so that a product with 1.0 folds away.
                term = grad * constants.get(local, local)
                terms.setdefault(child, []).append(_unwrap(ops.literal(term)))
    grads = []
    for arg in args:
        if arg in terms:
            backward.append(f"d{names[arg]} = {_total(terms[arg])}")
        # An argument the output does not depend on has gradient 0.
        grads.append(f"d{names[arg]}" if arg in terms or arg is out else "0.0")

    params = ", ".join(names[arg] for arg in args)
    returned = grads[0] if len(grads) == 1 else f"({', '.join(grads)})"
    return "\n".join(
        [
            f"def forward({params}):",
            *_indent(forward),
            f"    return {names[out]}",
            "",
            "",
            f"def value_and_grad({params}):",
            "    # forward: one line per node",
            *_indent(forward),
            "    # backward: the chain rule, from the output back: d(node) = sum over its users",
            "    # of d(user) * d(user)/d(node)",
            *_indent(backward),
            f"    return {names[out]}, {returned}",
            "",
        ]
    )


def _forward_source(op: ops.Op, inputs: list[ops.Expr], constants: dict[ops.Expr, float]) -> str:
    """The expression for one node's forward, from its inputs' symbols.

    The n-ary ops are written out, `sum((w0 * x0, w1 * x1))`, rather than called with every
    input as an argument, which is faster; `sum` adds the terms in the same order as the op
    table's forward, so the number is the same. A product with the constant 1.0 is dropped.
    """
    if op is ops.DOT:
        half = len(inputs) // 2
        numbers = [constants.get(symbol, symbol) for symbol in inputs]
        expression: Any = _sum([w * x for w, x in zip(numbers[:half], numbers[half:], strict=True)])
    elif op is ops.VSUM:
        expression = _sum(inputs)
    else:
        expression = op.source(*inputs)
    return _unwrap(ops.literal(expression))


def _total(terms: list[str]) -> str:
    """The sum of a node's gradient terms, in the order the eager backward adds them."""
    return terms[0] if len(terms) == 1 else f"sum(({', '.join(terms)}))"


def _sum(terms: list[Any]) -> ops.Expr:
    texts = [_unwrap(ops.literal(term)) for term in terms]
    return ops.Expr(f"sum(({', '.join(texts)}{',' if len(texts) == 1 else ''}))")


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


def _unwrap(text: str) -> str:
    """Drop one pair of parentheses around the whole expression, if there is one."""
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and i < len(text) - 1:
            return text  # the first parenthesis closes before the end: "(a) * (b)"
    return text[1:-1]
