"""The block program: the lowering's output as data, and the one printer that makes it NumPy.

A traced program describes one sample; the lowering (`autograd_core.compiler.lowering`) turns it
into a program over whole arrays: its variables (`Array`) are matrices with a batch axis `n` (a
layer's pre-activations `Z1`, shape (n, 32)), parameter matrices read from `theta` (`W1`,
(32, 64)), rows the same for every sample ((1, k)) and index constants; its equations
(`Equation`) assign an expression (`Expr`: an op of a small set, such as `matmul`, `take`,
`sum`, or `map` of an op of the table over columns, with its parameters as fields) to an
array, add it into one (`+=`, through an index where it updates columns), or call an effect
(`scatter_add`). Nothing in it is source text: as a jaxpr, it is printed by separate code.

Two printers read it:

* `str(program)`, the "matrix jaxpr": one line per equation, each array with its shape;
* `numpy_source(program, ...)`: the NumPy source the batched back-end compiles. `_FORMATS`
  below is the one place where a block op becomes NumPy text.

Names are the printer's: an array has a kind (a letter: `Z` for a layer's pre-activations,
`H` for an elementwise op's result) and a number, or is the gradient `of` another array
(printed `d` + its name).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..engine import ops
from ..engine.arithmetic import Arithmetic
from .codegen import Printer
from .ir import op_label

# ------------------------------------------------------------------------------------------
# The data


class BlockValue(Arithmetic):
    """A value of the block program: the operators of `Arithmetic` write `map` expressions on
    it, so the op table's partial rules, written with ordinary operators, evaluate on whole
    blocks."""

    __slots__ = ()

    @staticmethod
    def apply_op(op: ops.Op, args: Sequence[Any], params: tuple = ()) -> Any:
        folded = _fold(op, args, params)
        return map_op(op, *args, params=params) if folded is None else folded

    @staticmethod
    def _number(x: Any) -> float:
        raise TypeError("a block of the program holds a number per sample: it has no one number")


def _fold(op: ops.Op, args: Sequence[Any], params: tuple) -> Any:
    """The result without an expression, where it is exact: x * 1.0 = x, x + 0.0 = x, f(c)."""
    if not any(isinstance(x, BlockValue) for x in args):
        return op.forward(*map(float, args), *params)
    if op is ops.MUL or op is ops.ADD:
        unit = 1.0 if op is ops.MUL else 0.0
        x, y = args
        if _is_number(y, unit):
            return x
        if _is_number(x, unit):
            return y
    return None


def _is_number(x: Any, number: float) -> bool:
    return not isinstance(x, BlockValue) and x == number


@dataclass(eq=False, slots=True)
class Array(BlockValue):
    """A variable of the block program. `shape` counts the batch axis as "n"; () is a
    number. A constant (an index array) carries its `value`."""

    kind: str
    number: int | None = None
    shape: tuple | None = None
    of: Array | None = None  # a gradient: the array it is the gradient of
    suffix: str = ""  # a second array of the same kind and number (`dZ2w`, `dH1p`)
    value: Any = None  # a constant's numbers
    dtype: str = "f64"  # "i64" for row numbers and index constants
    # The printed name: the kind and number, or `d` and the name of the array it is the
    # gradient of; then the suffix. (Worked out once: a walk reads it at every use.)
    name: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.value is not None and self.value.dtype.kind != "f":
            self.dtype = "i64"
        base = "d" + self.of.name if self.of is not None else self.kind
        if self.of is None and self.number is not None:
            base += str(self.number)
        self.name = base + self.suffix

    def __str__(self) -> str:
        return self.name


BATCH = Array("n", shape=())  # the number of samples, known when the program runs
ALL = slice(None)  # `:` in an index


@dataclass(frozen=True, eq=False, slots=True)
class Expr(BlockValue):
    """`op(*args)` with parameters `params` (an axis, a shape, an op of the table)."""

    op: str
    args: tuple
    params: tuple = ()


Operand = Array | Expr | float


@dataclass(eq=False, slots=True)
class Equation:
    """`out = value`, `out += value` (or `-=`), `out[key] += value` (or `-=`) or
    `out[key] = value`, or an effect (`out` None: `value` is a call that writes into its first
    argument)."""

    out: Array | None
    value: Operand
    update: str = "="  # "=", "+=" or "-="
    key: tuple | None = None


@dataclass(eq=False)
class Program:
    """A block program: its arguments, equations and results. Transforms build new ones."""

    arguments: list[Array] = field(default_factory=list)
    equations: list[Equation] = field(default_factory=list)
    results: list[Operand] = field(default_factory=list)
    constants: list[Array] = field(default_factory=list)  # index arrays the equations read

    def bindings(self) -> dict[str, Any]:
        """The constants' numbers, by the names the printer gives them."""
        return {str(c): c.value for c in self.constants}

    def __str__(self) -> str:
        return matrix_jaxpr(self)


# ------------------------------------------------------------------------------------------
# Building expressions: one function per block op


def expr(op: str, *args: Any, params: tuple = ()) -> Expr:
    return Expr(op, args, params)


def matmul(a: Operand, b: Operand) -> Expr:
    """a @ b (batched over leading axes)."""
    return expr("matmul", a, b)


def transpose(a: Operand, axes: tuple | None = None) -> Expr:
    """a.T for a matrix; the axes permuted as given."""
    return expr("transpose", a, params=(axes,))


def add(a: Operand, b: Operand) -> Expr:
    return expr("add", a, b)


def sub(a: Operand, b: Operand) -> Expr:
    return expr("sub", a, b)


def div(a: Operand, b: Operand) -> Expr:
    return expr("div", a, b)


def times(a: Operand, b: Operand, careful: bool = False) -> Expr:
    """A product of the chain rule; careful: 0 where either factor is 0 (see `_times`)."""
    return expr("careful_times" if careful else "times", a, b)


def index(a: Operand, *key: Any) -> Expr:
    """a[key]: `ALL` for `:`, None for a new axis, an int, a (start, stop) slice, a list, or
    an index `Array`."""
    return expr("index", a, params=key)


def columns(a: Operand, cols: Any) -> Expr:
    return index(a, ALL, cols)


def reshape(a: Operand, *shape: Any) -> Expr:
    return expr("reshape", a, params=shape)


def reduce(kind: str, a: Operand, axis: Any = None, keepdims: bool = False) -> Expr:
    """`sum`, `max` or `mean` of a over an axis (or several, or all for None)."""
    return expr(kind, a, params=(axis, keepdims))


def zeros(*shape: Any) -> Expr:
    return expr("zeros", params=shape)


def full(shape: tuple, value: Operand) -> Expr:
    return expr("full", value, params=shape)


def broadcast(a: Operand, *shape: Any) -> Expr:
    return expr("broadcast_to", a, params=shape)


def concatenate(parts: Sequence[Operand], axis: int = 1) -> Expr:
    return expr("concatenate", *parts, params=(axis,))


def map_op(op: ops.Op, *args: Operand, params: tuple = ()) -> Expr:
    """An op of the table applied element by element, as the generated code calls it, with
    the op's own parameters (a power's exponent) after it."""
    return expr("map", *args, params=(op, *params))


# ------------------------------------------------------------------------------------------
# The NumPy printer

# Python's precedences, as far as the printed expressions go.
_ATOM, _UNARY, _PRODUCT, _SUM = 100, 90, 80, 70


class NumpyPrinter:
    """Prints equations as NumPy source; `names` are the op table's kernels it calls."""

    def __init__(self, op_printer: Printer | None = None) -> None:
        self.ops = op_printer or Printer()

    def line(self, eq: Equation) -> str:
        value = self.text(eq.value)
        if eq.out is None:
            return value
        target = str(eq.out)
        if eq.key is not None:
            target += "[" + self.key_text(eq.key) + "]"
        return f"{target} {eq.update} {value}"

    def text(self, x: Any) -> str:
        return self._printed(x)[0]

    def _printed(self, x: Any) -> tuple[str, int]:
        if isinstance(x, Array):
            return str(x), _ATOM
        if isinstance(x, Expr):
            return _FORMATS[x.op](self, x)
        return self.ops.operand(x), (_ATOM if x == x and x >= 0 else _UNARY)

    def at(self, x: Any, least: int) -> str:
        """x's text, in parentheses if it binds less tightly than `least`."""
        text, precedence = self._printed(x)
        return text if precedence >= least else f"({text})"

    def key_text(self, key: Sequence[Any]) -> str:
        return ", ".join(self._key_item(item) for item in key)

    def _key_item(self, item: Any) -> str:
        if item is ALL:
            return ":"
        if item is None:
            return "None"
        if isinstance(item, tuple):  # (start, stop), a slice
            start, stop = item
            return f"{'' if start is None else start}:{'' if stop is None else stop}"
        if isinstance(item, list):
            return repr(item)
        return self.text(item)

    def args(self, xs: Sequence[Any]) -> str:
        return ", ".join(self.text(x) for x in xs)


def _shape_text(shape: Sequence[Any]) -> str:
    items = [str(x) for x in shape]
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _binary(symbol: str, level: int) -> Callable[[NumpyPrinter, Expr], tuple[str, int]]:
    def printed(p: NumpyPrinter, e: Expr) -> tuple[str, int]:
        a, b = e.args
        return f"{p.at(a, level)} {symbol} {p.at(b, level + 1)}", level

    return printed


def _method(name: str) -> Callable[[NumpyPrinter, Expr], tuple[str, int]]:
    """a.name(axis[, keepdims=True]) for a reduction."""

    def printed(p: NumpyPrinter, e: Expr) -> tuple[str, int]:
        axis, keepdims = e.params
        args = [] if axis is None else [repr(axis)]
        if keepdims:
            args.append("keepdims=True")
        return f"{p.at(e.args[0], _ATOM)}.{name}({', '.join(args)})", _ATOM

    return printed


def _call(name: str) -> Callable[[NumpyPrinter, Expr], tuple[str, int]]:
    def printed(p: NumpyPrinter, e: Expr) -> tuple[str, int]:
        extra = [str(x) for x in e.params]
        return f"{name}({', '.join([p.text(a) for a in e.args] + extra)})", _ATOM

    return printed


def _map(p: NumpyPrinter, e: Expr) -> tuple[str, int]:
    op, *numbers = e.params
    if numbers:  # the op's parameters follow its inputs, as its array kernel takes them
        return f"{p.ops.name_of(op)}({p.args([*e.args, *numbers])})", _ATOM
    if op in _INFIX_OPS:
        symbol, level = _INFIX_OPS[op]
        a, b = e.args
        return f"{p.at(a, level)} {symbol} {p.at(b, level + 1)}", level
    if op is ops.NEG:
        return f"-{p.at(e.args[0], _UNARY)}", _UNARY
    return f"{p.ops.name_of(op)}({p.args(e.args)})", _ATOM


_INFIX_OPS = {ops.ADD: ("+", _SUM), ops.SUB: ("-", _SUM), ops.MUL: ("*", _PRODUCT)}

_FORMATS: dict[str, Callable[[NumpyPrinter, Expr], tuple[str, int]]] = {
    "matmul": _binary("@", _PRODUCT),
    "add": _binary("+", _SUM),
    "sub": _binary("-", _SUM),
    "div": _binary("/", _PRODUCT),
    "times": lambda p, e: (
        f"({p.at(e.args[0], _PRODUCT)} * {p.at(e.args[1], _PRODUCT + 1)})",
        _ATOM,
    ),
    "careful_times": _call("_times"),
    "transpose": lambda p, e: (
        f"{p.at(e.args[0], _ATOM)}."
        + ("T" if e.params[0] is None else f"transpose{_shape_text(e.params[0])}"),
        _ATOM,
    ),
    "index": lambda p, e: (f"{p.at(e.args[0], _ATOM)}[{p.key_text(e.params)}]", _ATOM),
    "reshape": lambda p, e: (
        f"{p.at(e.args[0], _ATOM)}.reshape({', '.join(map(str, e.params))})",
        _ATOM,
    ),
    "copy": lambda p, e: (f"{p.at(e.args[0], _ATOM)}.copy()", _ATOM),
    "sum": _method("sum"),
    "max": _method("max"),
    "mean": _method("mean"),
    "zeros": lambda p, e: (f"np.zeros({_shape_text(e.params)}, dtype)", _ATOM),
    "zeros_like": _call("np.zeros_like"),
    "full": lambda p, e: (f"np.full({_shape_text(e.params)}, {p.text(e.args[0])}, dtype)", _ATOM),
    "broadcast_to": lambda p, e: (
        f"np.broadcast_to({p.text(e.args[0])}, {_shape_text(e.params)})",
        _ATOM,
    ),
    "concatenate": lambda p, e: (
        f"np.concatenate(({p.args(e.args)}), axis={e.params[0]})",
        _ATOM,
    ),
    "outer": _call("np.outer"),
    "exp": _call("np.exp"),
    "log": _call("np.log"),
    # a row's max where it is finite, else 0: the shift of a log-sum-exp (see RowReduce)
    "finite_or_zero": lambda p, e: (
        f"np.where(np.isinf({p.text(e.args[0])}), 0.0, {p.text(e.args[0])})",
        _ATOM,
    ),
    "take_along": _call("np.take_along_axis"),
    "put_along": _call("np.put_along_axis"),
    "add_at": _call("np.add.at"),
    "row_indices": _call("_row_indices"),
    "scatter_add": _call("_scatter_add"),
    "scatter_rows": _call("_scatter_rows"),
    "check": _call("_check"),
    "tuple": lambda p, e: (f"({p.args(e.args)},)", _ATOM),
    "rows": lambda p, e: (f"{p.at(e.args[0], _ATOM)}.shape[0]", _ATOM),
    "map": _map,
}


# ------------------------------------------------------------------------------------------
# The matrix jaxpr


def matrix_jaxpr(program: Program) -> str:
    """The program as text: `{ lambda constants ; arguments . equations in (results) }`, one
    equation a line, each array's shape where it is first assigned, the ops by their names."""
    constants = " ".join(_typed(c) for c in program.constants)
    arguments = " ".join(_typed(a) for a in program.arguments)
    lines = [f"{{ lambda {constants + ' ' if constants else ''}; {arguments} ."]
    assigned = {str(a) for a in program.arguments}
    for eq in program.equations:
        lines.append("    " + _jaxpr_line(eq, assigned))
    results = ", ".join(_jaxpr(x) for x in program.results)
    lines.append(f"  in ({results}) }}")
    return "\n".join(lines)


def _typed(a: Array) -> str:
    """`Z1:f64[n,4]`: the array's name, its type and its shape, `n` the batch axis."""
    if a.shape is None:
        return str(a)
    return f"{a}:{a.dtype}[{','.join(map(str, a.shape))}]"


def _jaxpr_line(eq: Equation, assigned: set[str]) -> str:
    value = _jaxpr(eq.value)
    if eq.out is None:
        return value
    target = str(eq.out)
    if eq.key is not None:
        target += "[" + NumpyPrinter().key_text(eq.key) + "]"
    elif target not in assigned:
        assigned.add(target)
        target = _typed(eq.out)
    return f"{target} {eq.update} {value}"


def _jaxpr(x: Any) -> str:
    if isinstance(x, Array):
        return str(x)
    if not isinstance(x, Expr):
        return NumpyPrinter().text(x)
    args = ", ".join(_jaxpr(a) for a in x.args)
    if x.op == "index":
        return f"{args}[{NumpyPrinter().key_text(x.params)}]"
    params = [_param(p) for p in x.params]
    if x.op in ("sum", "max", "mean"):
        axis, keepdims = x.params
        params = ([] if axis is None else [f"axis={axis}"]) + (["keepdims"] if keepdims else [])
    elif x.op == "concatenate":
        params = [f"axis={x.params[0]}"]
    elif x.op == "transpose" and x.params == (None,):
        params = []
    elif x.op == "map":
        op, *numbers = x.params
        params = [op_label(op, tuple(numbers))]
    head = x.op + (f"[{', '.join(params)}]" if params else "")
    return f"{head}({args})"


def _param(p: Any) -> str:
    if isinstance(p, tuple):
        return "(" + ", ".join(map(str, p)) + ")"
    return str(p)


# ------------------------------------------------------------------------------------------
# What each equation needs: dead equations, and when an array is read for the last time


def arrays_read(x: Any, names: list[str]) -> None:
    """Append to `names` the name of every array that the operand, key or parameters x read."""
    kind = type(x)
    if kind is Array:
        names.append(x.name)
    elif kind is Expr:
        for arg in x.args:
            if type(arg) is Array:
                names.append(arg.name)
            elif type(arg) is Expr:
                arrays_read(arg, names)
        if x.op != "map":  # (a map's one parameter is an op of the table)
            arrays_read(x.params, names)
    elif kind is tuple or kind is list:
        for item in x:
            arrays_read(item, names)


def live_equations(
    equations: Sequence[Equation], results: Sequence[str]
) -> tuple[list[Equation], list[list[str]]]:
    """The equations that count, in order, and after each the arrays no later one reads.

    One pass from the end, as a compiler's liveness analysis: an assignment `x = ...` of an
    array that nothing after it reads (nor the `results`) is dropped; every other equation
    stays (an update writes into an array, an effect into its first argument). An array is
    released after the last equation that reads or assigns it, so a long program run by a
    walk holds only the arrays still to be read, not all it ever made.
    """
    live = set(results)
    kept: list[Equation] = []
    released: list[list[str]] = []
    for eq in reversed(equations):  # `live`: what the equations after eq read
        read: list[str] = []
        arrays_read(eq.value, read)
        assigned = None
        if eq.out is not None:
            if eq.update == "=" and eq.key is None:
                assigned = eq.out.name
                if assigned not in live:
                    continue
            else:  # an update reads the array it writes into
                read.append(eq.out.name)
                if eq.key is not None:
                    arrays_read(eq.key, read)
        kept.append(eq)
        if len(read) > 1:
            read = list(dict.fromkeys(read))
        released.append([name for name in read if name not in live])
        live.discard(assigned)
        live.update(read)
    return kept[::-1], released[::-1]


# ------------------------------------------------------------------------------------------
# Running a long program by walking it


class Walk:
    """A block program run by a loop over its equations, instead of compiled as source.

    CPython compiles a few MB of source a second and holds the whole syntax tree meanwhile, so
    a long program (a chain of 100,000 nodes: over 200,000 equations) would cost more to
    compile than to build. Walked, each expression is computed by a small function made from
    the printer's own text for its op (`_FORMATS`), with its arguments as placeholders:
    `map[tanh](v2)` is computed by `def kernel(_0): return tanh(_0)`, made once per op and
    parameters and kept.
    So the numbers are those of the printed source, op for op, and what a block op means is
    written in one place. The values live in a dict by array name, each released after its
    last use (`live_equations`), so memory holds what is still to be read.
    """

    def __init__(
        self, printer: NumpyPrinter, namespace: dict[str, Any], on_arrays: Callable[[Any], Any]
    ) -> None:
        self.printer = printer
        self.namespace = namespace  # what the printed text reads (`np`, `dtype`, ...)
        self.on_arrays = on_arrays  # an op of the table -> its function on arrays
        self._kernels: dict[Any, Callable[..., Any]] = {}

    def run(
        self, equations: Sequence[Equation], released: Sequence[list[str]], values: dict
    ) -> dict:
        """Run the equations on `values` (arguments and constants by name), which it updates."""
        value = self.value
        for eq, done in zip(equations, released, strict=True):
            x = eq.value
            result = value(x, values) if type(x) is Expr else _leaf(x, values)
            out = eq.out
            if out is not None:
                if eq.key is None and eq.update == "=":
                    values[out.name] = result
                elif eq.key is None:
                    values[out.name] = _IN_PLACE[eq.update](values[out.name], result)
                else:
                    self._update(eq, values)(values[out.name], result)
            for name in done:
                del values[name]
        return values

    def value(self, x: Expr, values: dict) -> Any:
        """An expression's value: its kernel applied to the values of its arguments."""
        args = [
            values[a.name] if type(a) is Array else self.value(a, values) if type(a) is Expr else a
            for a in x.args
        ]
        if x.op == "map":  # (most expressions: keyed by the op alone, its parameters plain)
            key = (x.params, len(args) if len(args) <= 3 else "*")
            kernel = self._kernels.get(key) or self._new_kernel(key, x)
            return kernel(*args)
        extra: list[Any] = []  # what the parameters hold that is an argument of the kernel
        if x.op == "index":
            key = ("index", len(args), _key_shape(x.params, extra))
        else:
            key = (x.op, len(args), _shape_of(x.params, extra))
        kernel = self._kernels.get(key) or self._new_kernel(key, x)
        if extra:
            args += [_argument(item, values) for item in extra]
        return kernel(*args)

    def _update(self, eq: Equation, values: dict) -> Callable[[Any, Any], None]:
        """`out[key] = value` or `out[key] += value`, as a function of out and value."""
        extra: list[Any] = []
        key = ("update", eq.update, _key_shape(eq.key, extra))
        kernel = self._kernels.get(key)
        if kernel is None:
            slots = _Slots()
            target, value = slots.new(), slots.new()
            line = self.printer.line(Equation(target, value, eq.update, slots.put_key(eq.key)))
            kernel = self._kernels[key] = self._compiled(f"def kernel({slots}):\n    {line}\n")
        items = [_argument(item, values) for item in extra]
        return lambda out, value: kernel(out, value, *items)

    def _new_kernel(self, key: Any, x: Expr) -> Callable[..., Any]:
        """The function for the expressions of x's key: x printed with placeholders for its
        arguments (one starred for an op of the table on many, `vsum(*_0)`), compiled."""
        slots = _Slots()
        if x.op == "map" and len(x.args) > 3:
            args: tuple = (slots.new("*_"),)
        else:
            args = tuple(slots.new() for _ in x.args)
        params = slots.put_key(x.params) if x.op == "index" else slots.put(x.params)
        text = self.printer.text(Expr(x.op, args, params))
        kernel = self._kernels[key] = self._compiled(f"def kernel({slots}):\n    return {text}\n")
        return kernel

    def _compiled(self, source: str) -> Callable[..., Any]:
        namespace = dict(self.namespace)
        for name, op in self.printer.ops.ops_by_name().items():  # (named as they are printed)
            namespace[name] = self.on_arrays(op)
        exec(compile(source, "<block op>", "exec"), namespace)
        return namespace["kernel"]


class _Slots:
    """The placeholders `_0, _1, ..` a kernel's text is printed with, in argument order."""

    def __init__(self) -> None:
        self.arrays: list[Array] = []

    def new(self, kind: str = "_") -> Array:
        self.arrays.append(Array(kind, len(self.arrays)))
        return self.arrays[-1]

    def put(self, params: Any) -> Any:
        """The parameters with a new placeholder for each array among them, in order."""
        if isinstance(params, Array):
            return self.new()
        if isinstance(params, tuple):
            return tuple(self.put(p) for p in params)
        if isinstance(params, list):
            return [self.put(p) for p in params]
        return params

    def put_key(self, key: tuple) -> tuple:
        """An index key with a new placeholder for each item but `:` and None (see
        `_key_shape`)."""
        return tuple(item if item is ALL or item is None else self.new() for item in key)

    def __str__(self) -> str:
        return ", ".join(map(str, self.arrays))


def _key_shape(key: tuple, extra: list[Any]) -> tuple:
    """A key for an index that tells kernels apart: where it has `:` and None. Its other
    items (a slice's bounds, a column, a list or an index array) are appended to `extra`, as
    arguments of the kernel: `dA[:, 9:10]` and `dA[:, 10:11]` share `_0[:, _1]`."""
    shape = []
    for item in key:
        if item is ALL or item is None:
            shape.append(item is ALL)
        else:
            extra.append(item)
            shape.append("argument")
    return tuple(shape)


_IN_PLACE = {"+=": operator.iadd, "-=": operator.isub}  # `x += t`, `x -= t`


def _leaf(x: Any, values: dict) -> Any:
    """The value of an operand that is no expression: an array's, or a number."""
    return values[x.name] if type(x) is Array else x


def _argument(item: Any, values: dict) -> Any:
    """The value of a parameter that is an argument of a kernel: an array's, a slice's
    (start, stop) as a slice, else itself."""
    if isinstance(item, Array):
        return values[item.name]
    if isinstance(item, tuple):
        return slice(*item)
    return item


def _shape_of(params: Any, arrays: list[Array]) -> Any:
    """A key for the parameters that tells kernels apart: the parameters as they are, with
    each array among them (appended to `arrays`) a placeholder and lists and slices as
    tuples; so `np.zeros((n, 3))` is one kernel for every n."""
    if isinstance(params, tuple):
        for p in params:
            if not isinstance(p, (int, float, str, ops.Op)) and p is not None:
                break
        else:
            return params
        return tuple(_shape_of(p, arrays) for p in params)
    if isinstance(params, Array):
        arrays.append(params)
        return _Slots
    if isinstance(params, list):
        return ("list", tuple(_shape_of(p, arrays) for p in params))
    if isinstance(params, slice):
        return ("slice", params.start, params.stop, params.step)
    return params
