"""`Value`: one real number and the node of the computation graph that produced it."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from math import isfinite
from typing import TYPE_CHECKING, Any, Union

from . import numeric, ops
from .arithmetic import Arithmetic
from .arithmetic import is_real as _is_real
from .modes import mode, usual

if TYPE_CHECKING:
    import graphviz

Number = int | float
Operand = Union["Value", int, float]  # noqa: UP007 (a forward reference cannot use |)


class Value(Arithmetic):
    """A scalar in a computation graph.

    `data` is the number; `grad` is d(root)/d(self) after `root.backward()`. A node made by
    an op remembers the op, its `inputs` and `local_grads`, the partial derivative of its
    output with respect to each input, computed once in the forward pass from the op table.
    Both are kept in one tuple, each input followed by its partial (`_edges`): see `inputs`.

    `==` and `hash` are identity, not numeric equality: a graph is a set of nodes, and two
    different nodes holding the same number must stay two keys in the sets and dicts that
    `backward` and the transforms use. Compare numbers with `a.data == b.data`.
    `<`, `<=`, `>` and `>=` compare `data` and return a bool.

    `bool` is refused as data: `Value(x > 0)` is nearly always a slip, and a number is clearer.
    `bool(v)` is `v.data != 0`, as for a PyTorch scalar, so `if v:` tests the number.
    """

    # `_params` is set only on a node of an op with parameters (x ** 3), `_hooks` only on a
    # node with hooks: most nodes leave both empty.
    __slots__ = ("data", "grad", "label", "_edges", "_op", "_params", "_hooks")
    # Makes NumPy scalars defer to us: np.float64(2) * v calls v.__rmul__ and gives a Value.
    __array_ufunc__ = None

    data: float
    grad: Any
    label: str
    _edges: tuple[Any, ...]

    def __init__(self, data: Number, label: str = "") -> None:
        if type(data) is not float:
            data = _real_as_float(data)
        if type(label) is not str:
            raise TypeError(f"Value label must be a str, got {type(label).__name__}")
        self.data = data
        self.grad = 0.0
        self.label = label
        self._edges = ()
        # The op that computed a leaf under `no_grad` (so `backward` can say so); None otherwise.
        self._op = None

    @property
    def inputs(self) -> tuple[Value, ...]:
        """The nodes this one was computed from, in order; () for a leaf."""
        # One tuple per node holds the inputs and the partials, (a, da, b, db), not two: a
        # node is then two objects for the garbage collector to count and follow, not three,
        # and a training loop that leaves the collector on spends about a quarter less time
        # in it (benchmarks.dropin).
        return self._edges[::2]

    @property
    def local_grads(self) -> tuple[float, ...]:
        """d(self)/d(input) for each of `inputs`, computed in the forward pass."""
        return self._edges[1::2]

    @property
    def op(self) -> str:
        """The name of the op that made this node, e.g. '*', 'tanh' or '**3'; '' for a leaf."""
        return self._op.title(self.params) if self._edges else ""

    @property
    def params(self) -> tuple:
        """The parameters of the op that made this node: `(3.0,)` for `x ** 3`, else `()`."""
        # (asked of the op, not by catching the empty slot's AttributeError: a trace asks every
        # node, and raising costs a microsecond)
        op = self._op
        return self._params if op is not None and op.parameters else ()

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{label})"

    def __float__(self) -> float:
        return self.data

    def __bool__(self) -> bool:
        # As PyTorch: `if v:` asks whether the number is non-zero (Python's default would make
        # every Value true, so `if Value(0.0):` would silently take the branch).
        return self.data != 0.0

    # -- arithmetic: the operators and functions of `Arithmetic` apply their op through these --
    # They are `_apply` for one and two inputs, without its list of the inputs' data: every
    # method and operator comes through them, and building that list, then spreading it into
    # the calls, costs a tenth of an MLP's forward pass.

    @staticmethod
    def _unary(op: ops.Op, a: Value) -> Value:
        """`op(a)` for the one-input ops (the methods)."""
        x = a.data
        data = op.forward(x)
        if usual.everywhere:
            return _node(op, data, (a,), op.partials(data, x))
        return _node_in_mode(op, data, (a,))

    @staticmethod
    def _binary(op: ops.Op, a: object, b: object) -> Value:
        """`a op b` for the operators + - * / **, a real number on either side made a constant
        leaf. NotImplemented when a side is neither, so Python tries the other operand's method.
        """
        if type(a) is not Value or type(b) is not Value:
            a, b = _operand(a, op), _operand(b, op)
            if a is None or b is None:
                return NotImplemented
        x = a.data
        y = b.data
        data = op.forward(x, y)
        if not usual.everywhere:
            return _node_in_mode(op, data, (a, b))
        # `_node`, written out: a model's every `+` and `*` comes here, and the call would cost
        # a tenth of the node.
        da, db = op.partials(data, x, y)
        out = _new_value(Value)
        out.data = data
        out.grad = 0.0
        out.label = ""
        out._edges = (a, da, b, db)
        out._op = op
        return out

    @staticmethod
    def _number(x: Operand) -> float:
        """What a comparison compares: `data` (`<` and the others return a bool)."""
        return _data(x)

    @staticmethod
    def apply_op(op: ops.Op, args: Sequence[Any], params: tuple = ()) -> Value:
        """`op(*args)` as a node, numbers in `args` made constant leaves (`ops.Op` calls this)."""
        return _apply(op, *[_coerce(arg, op.name) for arg in args], params=params)

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

    def register_hook(self, hook: Callable[[Any], Any]) -> HookHandle:
        """Call `hook(grad)` with this node's gradient during every backward pass, as soon as
        the gradient is complete and before it flows on to the node's inputs (or, for a leaf,
        is added to `.grad`). A hook that returns a number or Value replaces the gradient; one
        that returns None only looks. As PyTorch's `Tensor.register_hook`.

        Returns a handle whose `.remove()` unregisters the hook.
        """
        if not callable(hook):
            raise TypeError(f"register_hook needs a function, got {type(hook).__name__}")
        try:
            hooks = self._hooks
        except AttributeError:  # the slot is only filled on nodes that have hooks
            hooks = self._hooks = _Hooks(self)
        if not hooks:
            hooks.enter()
        handle = HookHandle(hooks)
        hooks[handle] = hook
        return handle

    def draw(self, **options: Any) -> graphviz.Digraph:
        """The same as `draw_dot(self, **options)`."""
        from ..pictures.draw import draw_dot

        return draw_dot(self, **options)


def _real_as_float(x: object) -> float:
    """x as a float, or a clear error: TypeError for what is not a real number, ValueError for
    a number no float can hold (an int like 10**400 would otherwise raise a bare OverflowError).
    """
    if not _is_real(x):
        raise TypeError(
            "Value needs a real number (int, float or NumPy real scalar), "
            f"got {type(x).__name__}: {x!r}"
        )
    try:
        return float(x)
    except OverflowError:
        # Not repr(x): an int's repr can be thousands of digits long.
        raise ValueError(
            "Value got a number too large for a float (its size is over 1.8e308)"
        ) from None


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


# -- applying an op: every node of every graph is made by `_node` ------------------------------


def _apply(op: ops.Op, *inputs: Value, params: tuple = ()) -> Value:
    """`op(*inputs)` for any number of inputs (vsum, dot, and ops called on Values)."""
    xs = [v.data for v in inputs]
    data = op.forward(*xs, *params)
    if usual.everywhere:
        out = _node(op, data, inputs, op.partials(data, *xs, *params))
    else:
        out = _node_in_mode(op, data, inputs, params)
    if params:
        out._params = params
    return out


_new_value = object.__new__


def _node(op: ops.Op, data: float, inputs: Sequence[Value], local_grads: Sequence) -> Value:
    """The Value `op` made from `inputs`, with the local partials the op table gave for them."""
    # Every op but the binary operators comes through here (see `Value._binary`): the slots
    # are set directly, without `__init__` and its checks of what a user may pass (data here
    # is a float by construction).
    edges = [None] * (2 * len(inputs))
    edges[::2] = inputs
    edges[1::2] = local_grads
    out = _new_value(Value)
    out.data = data
    out.grad = 0.0
    out.label = ""
    out._edges = tuple(edges)
    out._op = op
    return out


def _node_in_mode(op: ops.Op, data: float, inputs: tuple[Value, ...], params: tuple = ()) -> Value:
    """`_node` while some thread is in `no_grad` or `detect_anomaly`: this thread's mode decides.

    Under `detect_anomaly` a non-finite result raises. Under `no_grad` the Value is a leaf that
    only remembers which op made it, so that `backward` can say why no gradient reaches
    anything from there.
    """
    if mode.anomaly and not isfinite(data):
        raise FloatingPointError(
            f"{op.title(params)} produced {data!r} in the forward pass from inputs "
            f"{describe(inputs)}"
        )
    if not mode.grad_enabled:
        return _node(op, data, (), ())
    return _node(op, data, inputs, op.partials(data, *[v.data for v in inputs], *params))


def _operand(x: object, op: ops.Op) -> Value | None:
    """An operand of `op` as a Value; None for what Python should offer the other side."""
    value = _as_value(x)
    if value is None and hasattr(x, "__array__"):
        # NumPy would go on to say "operand does not support ufuncs", which helps no one.
        raise TypeError(
            f"cannot apply {op.name!r} to a Value and a NumPy array ({type(x).__name__}): a "
            "Value holds one number. Apply it to each element (e.g. [v * x for x in array]), "
            "or take one number out of the array first (float(array[i]))"
        )
    return value


# -- gradient hooks ---------------------------------------------------------------------------
# The hooks of every node that has some, by the node's id. While it is empty a backward pass does
# not look for hooks at all, so hooks cost nothing until someone uses one. A node's hooks live as
# long as the node (a handle holds them weakly), and leave this registry when it is freed.
HOOKED: dict[int, weakref.ref] = {}


class _Hooks(dict):
    """One node's hooks, by handle, in the order they were registered."""

    def __init__(self, node: Value) -> None:
        super().__init__()
        self.node_id = id(node)

    def enter(self) -> None:
        """Put these hooks in the registry; they leave it when freed with their node."""
        key = self.node_id

        def forget(ref: weakref.ref) -> None:
            if HOOKED.get(key) is ref:
                del HOOKED[key]

        HOOKED[key] = weakref.ref(self, forget)

    def leave(self) -> None:
        HOOKED.pop(self.node_id, None)


class HookHandle:
    """What `Value.register_hook` returns: `.remove()` unregisters the hook (twice is harmless)."""

    def __init__(self, hooks: _Hooks) -> None:
        # Weakly: the node's hooks hold this handle, and a handle must keep no node alive.
        self._hooks = weakref.ref(hooks)

    def remove(self) -> None:
        hooks = self._hooks()
        if hooks is not None and hooks.pop(self, None) is not None and not hooks:
            hooks.leave()  # no hooks left on that node


def hooked_nodes() -> dict[int, weakref.ref] | None:
    """The hooked nodes' hooks (weakly) by node id, or None when no Value has a hook (the
    usual case)."""
    return HOOKED or None


def run_hooks(hooks: _Hooks, grad: Any) -> Any:
    """Pass `grad` through a node's hooks in the order they were registered.

    In a plain backward pass gradients are floats: a hook's Value gives its number there.
    """
    on_graph = isinstance(grad, Value)
    for hook in list(hooks.values()):
        result = hook(grad)
        if result is None:
            continue
        if isinstance(result, Value):
            grad = result if on_graph else result.data
        elif _is_real(result):
            try:
                number = float(result)
            except OverflowError:  # an int such as 10**400 (not repr: thousands of digits)
                raise ValueError(
                    f"a gradient hook returned a number too large for a float (its size is "
                    f"over 1.8e308), from {hook!r}"
                ) from None
            grad = number
        else:
            raise TypeError(
                f"a gradient hook must return None, a number or a Value, got "
                f"{type(result).__name__} from {hook!r}"
            )
    return grad


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


def take(table: Sequence[Any], index: Operand) -> Any:
    """Row `index` of `table` (a list of rows, or of Values): an embedding's row for a token.

    With a number as the index, the row itself: its own Values, no new node, so the gradient
    reaches them directly. With a Value as the index (a token id that is an input of a traced
    function), one `take` node per column, `take(i, v0 .. vn-1) = v_i`, which the trace keeps
    as an equation: the batched back-end runs a layer of them as one `W[ids]`. The gradient
    goes to the chosen row (d/dv_j = 1 where j = i, else 0); the index gets none.

    An index that is not a whole number from 0 to len(table) - 1 raises IndexError.
    """
    if not isinstance(index, Value):
        if not _is_real(index):
            raise TypeError(f"take: the index must be a number or a Value, got {index!r}")
        return table[numeric.row_index(float(index), len(table))]
    if table and isinstance(table[0], Sequence):
        return [
            _apply(ops.TAKE, index, *_values(column, "take")) for column in zip(*table, strict=True)
        ]
    return _apply(ops.TAKE, index, *_values(table, "take"))


def _values(xs: Iterable[Operand], where: str) -> list[Value]:
    """The operands as a new list of Values; a model's every dot comes here, so a list that is
    all Values already (a neuron's weights) is checked in C."""
    xs = list(xs)
    if all(map(isinstance, xs, repeat(Value))):
        return xs
    return [x if isinstance(x, Value) else _coerce(x, where) for x in xs]


def _coerce(x: Operand, where: str) -> Value:
    value = _as_value(x)
    if value is None:
        raise TypeError(f"{where} takes Values or real numbers, got {type(x).__name__}: {x!r}")
    return value
