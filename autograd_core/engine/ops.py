"""The op table: every primitive's forward pass and local partial derivatives, in one place.

Each primitive is one `Op`: its `forward` on floats (from `numeric`, with the domain checks)
and its `partials(out, *inputs)`, the derivative of the output with respect to each input.
A rule is written with ordinary operators and calls to other ops, so the one rule serves every
kind of number it meets:

* floats: the eager engine evaluates it once per node, in the forward pass;
* `Value`s: `backward(create_graph=True)` evaluates it on the graph, so the derivative is
  itself differentiable (higher-order derivatives for free);
* the variables of a traced program (`autograd_core.compiler.ir`): `jit` evaluates it on them to
  write the backward pass down as equations, which its back-ends then run;
* NumPy arrays: the batched back-end evaluates it on a whole batch at once.

Adding an op is one entry here (or one call to `defop`); the tests enumerate `OPS`, and eager
mode, `create_graph`, `jit` and its batched back-end all read the same entry.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any

from . import numeric


@dataclass(frozen=True, eq=False, slots=True)
class Op:
    """One primitive: its name as drawn, its forward on floats, its local partials.

    `forward(*input_floats) -> float` raises a clear error on a domain violation.
    `partials(out, *inputs) -> tuple` gives d(out)/d(input) for each input.
    `array(np, *arrays)`, optional, is the forward on NumPy arrays for the batched back-end
    (without it, that back-end applies `forward` element by element: right, only slower).

    An op may take `parameters`: numbers fixed where the op is applied, which are neither
    inputs nor differentiated (a power's exponent, a leaky relu's slope), as a JAX primitive
    takes its params. Each function above takes them after the inputs, `forward(x, exponent)`,
    and the node or equation that applies the op keeps them beside it; `label` formats them
    for drawings (`**{exponent:g}` draws x ** 3 as `**3`).

    Calling an op applies it to whatever it is given: floats give a float, a `Value` gives a
    node of the graph, a traced variable gives an equation, NumPy arrays give an array. The
    parameters come by name: `POWER_OF(x, exponent=3.0)`.
    """

    name: str
    forward: Callable[..., float]
    partials: Callable[..., tuple]
    array: Callable[..., Any] | None = None
    parameters: tuple[str, ...] = ()
    label: str = ""

    def __call__(self, *args: Any, **params: Any) -> Any:
        if params or self.parameters:
            return self.apply(args, self.params_from(params))
        for arg in args:
            if type(arg) is not float:
                return self._apply_to(args, ())
        return self.forward(*args)

    def apply(self, args: tuple, params: tuple = ()) -> Any:
        """The op on `args` with its parameters as a tuple, in the order of `parameters`."""
        for arg in args:
            if type(arg) is not float:
                return self._apply_to(args, params)
        return self.forward(*args, *params)

    def params_from(self, given: dict[str, Any]) -> tuple:
        """The parameters given by name, as the tuple the op's functions take after the inputs."""
        if given.keys() != set(self.parameters):
            wanted = ", ".join(self.parameters) or "none"
            raise TypeError(
                f"op {self.name!r} takes the parameters ({wanted}), got ({', '.join(given)})"
            )
        params = []
        for name in self.parameters:
            value = given[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(
                    f"op {self.name!r}: parameter {name!r} must be a number, got {value!r}"
                )
            params.append(float(value))
        return tuple(params)

    def _apply_to(self, args: tuple, params: tuple) -> Any:
        for arg in args:
            # Value and the traced variables of `ir` know how to record an op applied to them.
            apply_op = getattr(type(arg), "apply_op", None)
            if apply_op is not None:
                return apply_op(self, args, params)
        if any(getattr(arg, "ndim", 0) for arg in args):
            return self.on_arrays(*args, *params)
        return self.forward(*(float(arg) for arg in args), *params)

    def on_arrays(self, *xs: Any) -> Any:
        """The forward on NumPy arrays (and numbers, the parameters last), element by element."""
        import numpy

        if self.array is not None:
            return self.array(numpy, *xs)
        return numpy.vectorize(self.forward, otypes=[float])(*xs)

    def title(self, params: tuple = ()) -> str:
        """What a node of this op is called in drawings and messages: `tanh`, `**3`."""
        if not self.label:
            return self.name
        return self.label.format(**dict(zip(self.parameters, params, strict=True)))

    def __repr__(self) -> str:
        return f"<op {self.name}>"


# ---------------------------------------------------------------------------------------------
# The table. `out` is the op's result; each rule returns one partial per input.

# (operator.add rather than float.__add__: on two floats the same number, in a third of the time)
ADD = Op("+", operator.add, lambda out, x, y: (1.0, 1.0), lambda np, x, y: x + y)
SUB = Op("-", operator.sub, lambda out, x, y: (1.0, -1.0), lambda np, x, y: x - y)
MUL = Op("*", operator.mul, lambda out, x, y: (y, x), lambda np, x, y: x * y)
# d/dx x/y = 1/y, d/dy x/y = -x/y^2 = -out/y
DIV = Op("/", numeric.checked_div, lambda out, x, y: (1.0 / y, -out / y), lambda np, x, y: x / y)
NEG = Op("neg", operator.neg, lambda out, x: (-1.0,), lambda np, x: -x)


# d/dx x^y = y x^(y-1), exactly 0 where y = 0 (x^0 is the constant 1, even at x = 0);
# d/dy x^y = x^y log x, exactly 0 where x = 0 and y >= 0 (0^y is constant there); nan for a
# negative base. These are PyTorch's masks (pow_backward); MASK keeps 0 * inf from making nan.
def _power_partials(out: Any, x: Any, y: Any) -> tuple:
    return (
        MASK(y, y * IEEE_POW(x, y - 1.0)),
        MASK(ABS(x) + STEP(-y), out * LOG_OR_NAN(x)),
    )


POW = Op("pow", numeric.checked_pow, _power_partials, lambda np, x, y: np.power(x, y))
EXP = Op("exp", numeric.checked_exp, lambda out, x: (out,), lambda np, x: np.exp(x))  # e^x
LOG = Op("log", numeric.checked_log, lambda out, x: (1.0 / x,), lambda np, x: np.log(x))  # 1/x
# d/dx sqrt x = 1 / (2 sqrt x): infinite at 0, as in PyTorch, and -inf at -0.0 (sqrt(-0.0)
# is -0.0, and 1 / -0.0 is -inf).
SQRT = Op(
    "sqrt",
    numeric.checked_sqrt,
    lambda out, x: (0.5 * INV(out),),
    lambda np, x: np.sqrt(x),
)
TANH = Op("tanh", math.tanh, lambda out, x: (1.0 - out * out,), lambda np, x: np.tanh(x))
# s' = s (1 - s); on arrays the same stable form as on floats: only exp of a number <= 0.
SIGMOID = Op(
    "sigmoid",
    numeric.stable_sigmoid,
    lambda out, x: (out * (1.0 - out),),
    lambda np, x: np.where(x >= 0.0, 1.0, np.exp(x)) / (1.0 + np.exp(-np.abs(x))),
)
# 1 where x > 0, else 0 (0 at the kink, as PyTorch). relu(nan) is nan, as in PyTorch, on
# floats and arrays alike: `maximum` returns a nan it meets (`fmax` would pass over it).
RELU = Op("relu", numeric.relu, lambda out, x: (STEP(x),), lambda np, x: np.maximum(x, 0.0))
ABS = Op("abs", abs, lambda out, x: (SIGN(x),), lambda np, x: np.abs(x))  # sign(x); 0 at 0
SIN = Op("sin", math.sin, lambda out, x: (COS(x),), lambda np, x: np.sin(x))
COS = Op("cos", math.cos, lambda out, x: (-SIN(x),), lambda np, x: np.cos(x))
# n-ary: one node for a whole sum or dot product, however many inputs.
VSUM = Op("sum", numeric.vsum, lambda out, *xs: (1.0,) * len(xs), lambda np, *xs: sum(xs))
# dot(w1..wn, x1..xn): d/dwi = xi and d/dxi = wi, so the partials are the inputs, halves swapped.
DOT = Op(
    "dot",
    numeric.dot,
    lambda out, *wx: wx[len(wx) // 2 :] + wx[: len(wx) // 2],
    lambda np, *wx: sum(w * x for w, x in zip(wx[: len(wx) // 2], wx[len(wx) // 2 :])),  # noqa: B905
)

# log sum_i e^xi, the log-partition of softmax: d/dxi = e^(xi - out) = softmax(x)_i.
LOGSUMEXP = Op(
    "logsumexp",
    numeric.logsumexp,
    lambda out, *xs: tuple(EXP(x - out) for x in xs),
    lambda np, *xs: np.logaddexp.reduce(np.broadcast_arrays(*xs), axis=0),
)


# take(i, v0 .. vn-1) = v_i: the row of a table an integer index chooses (an embedding's row
# for a token id). Flat in i (d/di = 0, as an index has no gradient in PyTorch either);
# d/dv_j = 1 where j = i, else 0: `indicator(i, j)`.
def _take_partials(out: Any, i: Any, *rows: Any) -> tuple:
    return (0.0, *(INDICATOR(i, float(j)) for j in range(len(rows))))


def row_indices(np: Any, i: Any, n_rows: int) -> Any:
    """An array of indices as row numbers of a table of n_rows rows; the IndexError `take`
    raises on floats for the first that is not a whole number from 0 to n_rows - 1."""
    bad = ~((i == np.floor(i)) & (i >= 0) & (i < n_rows))
    if bad.any():
        numeric.row_index(float(i[bad][0]), n_rows)
    return i.astype(np.intp)


def _take_on_arrays(np: Any, i: Any, *rows: Any) -> Any:
    i, *rows = np.broadcast_arrays(i, *rows)
    index = row_indices(np, i, len(rows))[..., None]
    return np.take_along_axis(np.stack(rows, axis=-1), index, axis=-1)[..., 0]


TAKE = Op("take", numeric.take, _take_partials, _take_on_arrays)

# The mean of x over the samples of the batch a function is run on: what ties the samples of a
# batch together (batch normalisation). A function run on one sample is a batch of one, so on a
# float, a Value or a traced variable it is x itself, with partial 1; the batched back-end runs
# it as the column mean of a (batch, width) block, d mean / d x_i = 1 / n. On an array (a value
# the same for every sample) it is that value. See `autograd_core.compiler.batch`.
BATCH_MEAN = Op("batch_mean", float, lambda out, x: (1.0,), lambda np, x: x)


# x ** c for a constant c: d/dx x^c = c x^(c-1). x ** 0 is the constant 1: its derivative is
# exactly 0, even at x = 0 (not 0 * inf). (`c` is a parameter: a number here, never traced.)
POWER_OF = Op(
    "**",
    numeric.checked_pow,
    lambda out, x, c: (0.0,) if c == 0.0 else (c * IEEE_POW(x, c - 1.0),),
    lambda np, x, c: np.power(x, c),
    parameters=("exponent",),
    label="**{exponent:g}",
)
# max(x, slope x): the partial is 1 where x > 0, else slope.
LEAKY_RELU = Op(
    "leaky_relu",
    numeric.leaky_relu,
    lambda out, x, slope: (slope + (1.0 - slope) * STEP(x),),
    lambda np, x, slope: np.where(x > 0.0, x, slope * x),
    parameters=("slope",),
)


def _floats(np: Any, mask: Any, *like: Any) -> Any:
    """A boolean array as 0.0 and 1.0, in the float type of the arrays it was computed from
    (float32 stays float32: a float64 mask would make every product it enters float64)."""
    return mask.astype(np.result_type(*like, 0.0))


# Ops the rules above use. Each is piecewise smooth, with the partials PyTorch gives.
STEP = Op(
    "step", numeric.step, lambda out, x: (0.0,), lambda np, x: _floats(np, np.greater(x, 0.0), x)
)
SIGN = Op(
    "sign",
    numeric.sign,
    lambda out, x: (0.0,),
    lambda np, x: _floats(np, np.greater(x, 0.0), x) - _floats(np, np.less(x, 0.0), x),
)
# 1 where i = j, else 0: the partial of `take` for each row. Flat in both.
INDICATOR = Op(
    "indicator",
    lambda i, j: 1.0 if i == j else 0.0,
    lambda out, i, j: (0.0, 0.0),
    lambda np, i, j: _floats(np, np.equal(i, j), i, j),
)
# x ** y with IEEE results where `pow` would raise: 0 ** -1 is inf, so sqrt'(0) is inf.
IEEE_POW = Op(
    "ieee_pow",
    numeric.ieee_power,
    _power_partials,
    # nan for a negative base to a non-integer power, as on floats (numpy gives inf at -inf)
    lambda np, x, y: np.where((x < 0.0) & (y != np.floor(y)), np.nan, np.power(x, y)),
)
LOG_OR_NAN = Op(
    "log_or_nan",
    numeric.log_or_nan,
    lambda out, x: (IEEE_POW(x, -1.0),),
    # log where x > 0 (of 1 elsewhere, so no warning), 0 at 0, nan below
    lambda np, x: np.where(
        x > 0.0, np.log(np.where(x > 0.0, x, 1.0)), np.where(x == 0.0, np.zeros_like(x), np.nan)
    ),
)
# mask(c, v) is v where c != 0 and exactly 0 where c == 0, even when v is inf or nan (PyTorch's
# masked_fill): how a rule says "this partial is 0 here" without an `if` on the data.
MASK = Op(
    "mask",
    lambda c, v: v if c != 0.0 else 0.0,
    lambda out, c, v: (0.0, MASK(c, 1.0)),
    lambda np, c, v: np.where(c != 0.0, v, 0.0),
)
# 1 / x with IEEE results at zero: 1 / 0.0 is inf and 1 / -0.0 is -inf. d/dx 1/x = -1/x^2.
INV = Op(
    "inv",
    lambda x: 1.0 / x if x != 0.0 else math.copysign(math.inf, x),
    lambda out, x: (-(out * out),),
    lambda np, x: np.divide(1.0, x),
)


OPS: dict[str, Op] = {
    "add": ADD,
    "sub": SUB,
    "mul": MUL,
    "div": DIV,
    "neg": NEG,
    "pow": POW,
    "power_of": POWER_OF,
    "exp": EXP,
    "log": LOG,
    "sqrt": SQRT,
    "tanh": TANH,
    "sigmoid": SIGMOID,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "abs": ABS,
    "sin": SIN,
    "cos": COS,
    "vsum": VSUM,
    "dot": DOT,
    "logsumexp": LOGSUMEXP,
    "step": STEP,
    "sign": SIGN,
    "ieee_pow": IEEE_POW,
    "log_or_nan": LOG_OR_NAN,
    "mask": MASK,
    "inv": INV,
}
"""Every primitive on one sample, by name. Parametrised ops appear with one representative
parameter."""

BATCH_OPS: dict[str, Op] = {"batch_mean": BATCH_MEAN}
"""The ops over the batch axis, by name: their result for a sample depends on the whole batch,
so they are not checked sample by sample as the ops of `OPS` are."""

INDEX_OPS: dict[str, Op] = {"take": TAKE, "indicator": INDICATOR}
"""The ops whose first input is an integer index (a row of a table, a token id): flat in it
and defined at whole numbers only, so they are not checked by central differences in it."""

_KEYS: dict[Op, str] = {
    op: key for table in (OPS, BATCH_OPS, INDEX_OPS) for key, op in table.items()
}

BUILT_IN: frozenset[str] = frozenset(_KEYS.values())
"""The keys of the ops above (not those `defop` adds): generated code calls these by name."""


def by_name() -> dict[str, Op]:
    """Every op, per sample, over the batch axis and by index, by name."""
    return {**OPS, **BATCH_OPS, **INDEX_OPS}


def key_of(op: Op) -> str:
    """The name `op` has in `OPS`, `BATCH_OPS` or `INDEX_OPS`."""
    try:
        return _KEYS[op]
    except KeyError:
        raise KeyError(f"{op!r} is not in the op table: declare it with defop") from None


def defop(
    name: str,
    forward: Callable[..., float],
    partials: Callable[..., tuple],
    array: Callable[..., Any] | None = None,
    parameters: Sequence[str] = (),
) -> Op:
    """Declare a new primitive and return it; call the result to apply it.

    `forward(*floats) -> float`; `partials(out, *inputs) -> tuple`, written with ordinary
    operators and other ops (`autograd_core.engine.ops.EXP(x)`, not `x.exp()`), so that it works on
    floats, Values, traced variables and arrays alike; `array(np, *arrays)` optionally gives the
    batched back-end a vectorised forward. The op joins `OPS`, so eager mode, `create_graph`,
    `gradcheck`, `jit` and the batched back-end all use it. `parameters` names numbers the op
    takes by keyword where it is applied, which each function gets after the inputs (see `Op`).

    >>> softplus = defop("softplus", lambda x: math.log1p(math.exp(x)),
    ...                  lambda out, x: (SIGMOID(x),))
    >>> softplus(Value(0.0))  # a node of the graph
    """
    if not (isinstance(name, str) and name.isidentifier()):
        raise ValueError(f"an op's name must be a Python identifier, got {name!r}")
    if name in by_name():
        raise ValueError(f"an op named {name!r} already exists")
    for what, function in (("forward", forward), ("partials", partials)):
        if not callable(function):
            raise TypeError(f"defop {name!r}: {what} must be a function, got {function!r}")
    parameters = tuple(parameters)
    for parameter in parameters:
        if not (isinstance(parameter, str) and parameter.isidentifier()):
            raise ValueError(
                f"defop {name!r}: a parameter's name must be an identifier, got {parameter!r}"
            )
    op = Op(name, forward, _one_per_input(name, partials, len(parameters)), array, parameters)
    OPS[name] = op
    _KEYS[op] = name
    return op


def _one_per_input(
    name: str, partials: Callable[..., tuple], n_params: int
) -> Callable[..., tuple]:
    """`partials`, checked each time it runs to give exactly one partial per input (the
    arguments but the last `n_params`): a rule with one too few would otherwise leave an input's
    gradient silently 0."""

    @wraps(partials)
    def checked(out: Any, *args: Any) -> tuple:
        local_grads = partials(out, *args)
        inputs = args[: len(args) - n_params]
        if not isinstance(local_grads, (tuple, list)) or len(local_grads) != len(inputs):
            got = (
                f"{len(local_grads)} partial" + ("" if len(local_grads) == 1 else "s")
                if isinstance(local_grads, (tuple, list))
                else f"a {type(local_grads).__name__}"
            )
            raise ValueError(
                f"op {name!r}: its partials gave {got} for {len(inputs)} input(s); they must "
                "return a tuple of one partial per input, in the order of the inputs"
            )
        return tuple(local_grads)

    return checked
