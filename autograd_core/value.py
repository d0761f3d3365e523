"""`Value`: one real number and the node of the computation graph that produced it."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from math import isfinite
from typing import TYPE_CHECKING, Any, Union

from . import ops
from .modes import mode

if TYPE_CHECKING:
    import graphviz

Number = int | float
Operand = Union["Value", int, float]  # noqa: UP007 (a forward reference cannot use |)


class Value:
    """A scalar in a computation graph.

    `data` is the number; `grad` is d(root)/d(self) after `root.backward()`. A node made by
    an op remembers the op, its `inputs` and `local_grads`, the partial derivative of its
    output with respect to each input, computed once in the forward pass from the op table.

    `==` and `hash` are identity, not numeric equality: a graph is a set of nodes, and two
    different nodes holding the same number must stay two keys in the sets and dicts that
    `backward` and the transforms use. Compare numbers with `a.data == b.data`.
    `<`, `<=`, `>` and `>=` compare `data` and return a bool.

    `bool` is refused as data: `Value(x > 0)` is nearly always a slip, and a number is clearer.
    """

    __slots__ = ("data", "grad", "label", "inputs", "local_grads", "_op")
    # Makes NumPy scalars defer to us: np.float64(2) * v calls v.__rmul__ and gives a Value.
    __array_ufunc__ = None

    data: float
    grad: Any
    label: str
    inputs: tuple[Value, ...]
    local_grads: tuple[Any, ...]

    def __init__(self, data: Number, label: str = "") -> None:
        if not _is_real(data):
            raise TypeError(
                "Value needs a real number (int, float or NumPy real scalar), "
                f"got {type(data).__name__}: {data!r}"
            )
        if not isinstance(label, str):
            raise TypeError(f"Value label must be a str, got {type(label).__name__}")
        self.data = float(data)
        self.grad = 0.0
        self.label = label
        self.inputs = ()
        self.local_grads = ()
        self._op = None

    @property
    def op(self) -> str:
        """The name of the op that made this node, e.g. '*' or 'tanh'; '' for a leaf."""
        return "" if self._op is None else self._op.name

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{label})"

    def __float__(self) -> float:
        return self.data

    # -- arithmetic: a Value or a real number on either side ----------------------------------

    def __add__(self, other: Operand) -> Value:
        return _binary(ops.ADD, self, other)

    def __radd__(self, other: Number) -> Value:
        return _binary(ops.ADD, other, self)

    def __sub__(self, other: Operand) -> Value:
        return _binary(ops.SUB, self, other)

    def __rsub__(self, other: Number) -> Value:
        return _binary(ops.SUB, other, self)

    def __mul__(self, other: Operand) -> Value:
        return _binary(ops.MUL, self, other)

    def __rmul__(self, other: Number) -> Value:
        return _binary(ops.MUL, other, self)

    def __truediv__(self, other: Operand) -> Value:
        return _binary(ops.DIV, self, other)

    def __rtruediv__(self, other: Number) -> Value:
        return _binary(ops.DIV, other, self)

    def __pow__(self, exponent: Operand) -> Value:
        if isinstance(exponent, Value):
            return _binary(ops.POW, self, exponent)
        if _is_real(exponent):
            # A constant exponent is part of the op: no node, and no d/d(exponent) to compute.
            return _unary(ops.power_of(float(exponent)), self)
        return NotImplemented

    def __rpow__(self, base: Number) -> Value:
        return _binary(ops.POW, base, self)

    def __neg__(self) -> Value:
        return _unary(ops.NEG, self)

    def __pos__(self) -> Value:
        return self

    def __abs__(self) -> Value:
        return _unary(ops.ABS, self)

    # -- comparisons look at data only --------------------------------------------------------

    def __lt__(self, other: Operand) -> bool:
        return self.data < _data(other)

    def __le__(self, other: Operand) -> bool:
        return self.data <= _data(other)

    def __gt__(self, other: Operand) -> bool:
        return self.data > _data(other)

    def __ge__(self, other: Operand) -> bool:
        return self.data >= _data(other)

    # -- functions ------------------------------------------------------------------------------

    def exp(self) -> Value:
        return _unary(ops.EXP, self)

    def log(self) -> Value:
        return _unary(ops.LOG, self)

    def sqrt(self) -> Value:
        return _unary(ops.SQRT, self)

    def tanh(self) -> Value:
        return _unary(ops.TANH, self)

    def sigmoid(self) -> Value:
        return _unary(ops.SIGMOID, self)

    def relu(self) -> Value:
        return _unary(ops.RELU, self)

    def leaky_relu(self, slope: float = 0.01) -> Value:
        return _unary(ops.leaky_relu_of(float(slope)), self)

    def sin(self) -> Value:
        return _unary(ops.SIN, self)

    def cos(self) -> Value:
        return _unary(ops.COS, self)

    @staticmethod
    def apply_op(op: ops.Op, args: Sequence[Any]) -> Value:
        """`op(*args)` as a node, numbers among `args` made constant leaves (`ops.Op` calls this)."""
        return _apply(op, *[_coerce(arg, op.name) for arg in args])

    # -- graph ----------------------------------------------------------------------------------

    def detach(self) -> Value:
        """A new leaf holding the same number: gradients do not flow through it."""
        return Value(self.data, self.label)

    def backward(self, grad: Number = 1.0, create_graph: bool = False) -> None:
        """Fill `.grad` of every node this one depends on with d(self)/d(node).

        Leaves accumulate (`+=`) across calls, as in PyTorch; every other node holds the
        gradient of this call only. With `create_graph=True` the gradients are Values whose
        graph can be differentiated again.
        """
        from .backward import backward

        backward(self, grad, create_graph)

    def draw(self, **options: Any) -> graphviz.Digraph:
        """The same as `draw_dot(self, **options)`."""
        from .draw import draw_dot

        return draw_dot(self, **options)


def _is_real(x: object) -> bool:
    """int, float or another real number type (NumPy scalars, Fraction), but not bool."""
    return (
        type(x) is float
        or type(x) is int
        or (isinstance(x, numbers.Real) and not isinstance(x, bool))
    )


def _as_value(x: object) -> Value | None:
    """x as a Value (a number becomes a constant leaf); None when x is not a real number."""
    if isinstance(x, Value):
        return x
    if _is_real(x):
        return Value(x)
    return None


def _data(x: Operand) -> float:
    if isinstance(x, Value):
        return x.data
    if _is_real(x):
        return float(x)
    raise TypeError(f"cannot compare a Value with {type(x).__name__}")


def _binary(op: ops.Op, a: object, b: object) -> Value:
    """`a op b` for the operators + - * / **, a real number on either side made a constant leaf.

    NotImplemented when a side is neither, so Python tries the other operand's method. This is
    `_apply` written out for two inputs: every operator in a graph comes through here.
    """
    if not (isinstance(a, Value) and isinstance(b, Value)):
        a, b = _as_value(a), _as_value(b)
        if a is None or b is None:
            return NotImplemented
    x, y = a.data, b.data
    data = op.forward(x, y)
    return _node(op, data, (a, b), op.partials(data, x, y) if mode.grad_enabled else None)


def _unary(op: ops.Op, a: Value) -> Value:
    """`op(a)` for the one-input ops (the methods): `_apply` written out for one input."""
    x = a.data
    data = op.forward(x)
    return _node(op, data, (a,), op.partials(data, x) if mode.grad_enabled else None)


def _apply(op: ops.Op, *inputs: Value) -> Value:
    """Run `op` forward on the inputs' data and, unless in `no_grad`, record the node."""
    xs = [v.data for v in inputs]
    data = op.forward(*xs)
    return _node(op, data, inputs, op.partials(data, *xs) if mode.grad_enabled else None)


def _node(op: ops.Op, data: float, inputs: tuple[Value, ...], local_grads: tuple | None) -> Value:
    """The Value `op` made from `inputs`; a leaf when `local_grads` is None (in `no_grad`)."""
    if not isfinite(data) and mode.anomaly:
        raise FloatingPointError(
            f"{op.name} produced {data!r} in the forward pass from inputs {describe(inputs)}"
        )
    out = Value.__new__(Value)
    out.data = data
    out.grad = 0.0
    out.label = ""
    if local_grads is None:
        out._op = None
        out.inputs = ()
        out.local_grads = ()
    else:
        out._op = op
        out.inputs = inputs
        out.local_grads = local_grads
    return out


def describe(nodes: Iterable[Value]) -> str:
    """'(a=1.0, 2.0)': each node's data, with its label where it has one (for error messages)."""
    parts = (f"{v.label}={v.data!r}" if v.label else repr(v.data) for v in nodes)
    return "(" + ", ".join(parts) + ")"


def vsum(values: Iterable[Operand], start: Operand = 0.0) -> Value:
    """sum(values) + start as ONE node with an input per term: d/dv_i = 1 for every term."""
    terms = _values(values, "vsum")
    # A Value start is always a term (its `!=` is identity), so its gradient flows as in sum().
    if start != 0.0:
        terms.append(_coerce(start, "vsum"))
    if not terms:
        return Value(0.0)
    return _apply(ops.VSUM, *terms)


def dot(ws: Sequence[Operand], xs: Sequence[Operand]) -> Value:
    """sum_i ws[i] * xs[i] as ONE node: d/dw_i = x_i and d/dx_i = w_i."""
    if len(ws) != len(xs):
        raise ValueError(f"dot needs two sequences of the same length, got {len(ws)} and {len(xs)}")
    if not ws:
        return Value(0.0)
    return _apply(ops.DOT, *_values(ws, "dot"), *_values(xs, "dot"))


def _values(xs: Iterable[Operand], where: str) -> list[Value]:
    """The operands as Values; the check is inline because a model's every dot comes here."""
    return [x if isinstance(x, Value) else _coerce(x, where) for x in xs]


def _coerce(x: Operand, where: str) -> Value:
    value = _as_value(x)
    if value is None:
        raise TypeError(f"{where} takes Values or real numbers, got {type(x).__name__}: {x!r}")
    return value
