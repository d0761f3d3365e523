"""The op table: every primitive's forward pass and local partial derivatives, in one place.

Each op is one `Op` entry. `forward` maps input floats to the output float and raises a clear
error on a domain violation. `partials(out, *inputs)` returns d(out)/d(input) for each input,
written with ordinary operators and the rule functions below, so that one rule serves three
kinds of argument:

* floats: the eager engine evaluates the rule once, in the forward pass;
* `Value`s: `backward(create_graph=True)` re-evaluates it on the graph, so the derivative is
  itself differentiable (higher-order derivatives for free);
* `Expr`s: `jit` evaluates it on symbols to print the chain rule as Python source.

Adding an op is one entry in `OPS` (plus a method on `Value` that calls it); the tests
enumerate `OPS`, so the new op is checked without writing a new test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


class Expr:
    """A symbol standing for a float in generated source; operators build source text.

    `jit` calls the op table's rules on `Expr`s to turn them into Python expressions.
    Multiplying by 1.0 is folded away so the printed chain rule stays short.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Expr({self.text!r})"

    def _binary(self, other: Any, symbol: str, reflected: bool = False) -> Expr:
        left, right = (literal(other), self.text) if reflected else (self.text, literal(other))
        return Expr(f"({left} {symbol} {right})")

    def __add__(self, other: Any) -> Expr:
        return self if other == 0.0 and isinstance(other, float) else self._binary(other, "+")

    def __radd__(self, other: Any) -> Expr:
        return self if other == 0.0 and isinstance(other, float) else self._binary(other, "+", True)

    def __sub__(self, other: Any) -> Expr:
        return self._binary(other, "-")

    def __rsub__(self, other: Any) -> Expr:
        return self._binary(other, "-", True)

    def __mul__(self, other: Any) -> Expr:
        if isinstance(other, float) and other == 1.0:
            return self
        if isinstance(other, float) and other == -1.0:
            return -self
        return self._binary(other, "*")

    def __rmul__(self, other: Any) -> Expr:
        if isinstance(other, float) and other == 1.0:
            return self
        if isinstance(other, float) and other == -1.0:
            return -self
        return self._binary(other, "*", True)

    def __truediv__(self, other: Any) -> Expr:
        return self._binary(other, "/")

    def __rtruediv__(self, other: Any) -> Expr:
        return self._binary(other, "/", True)

    def __neg__(self) -> Expr:
        return Expr(f"(-{self.text})")


def literal(x: Any) -> str:
    """Source text for a number or an `Expr`; inf and nan become names the jit defines."""
    if isinstance(x, Expr):
        return x.text
    x = float(x)
    if math.isfinite(x):
        return repr(x)
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "(-inf)")


class RuleFunction:
    """A function the rules may call on a float, a `Value` or an `Expr`.

    On a float it runs `on_float`; on a `Value` it runs `on_value` (building graph); on an
    `Expr` it prints a call `name(...)`, which the jit binds to `on_float`.
    """

    __slots__ = ("name", "on_float", "on_value")

    def __init__(
        self, name: str, on_float: Callable[..., float], on_value: Callable[..., Any]
    ) -> None:
        self.name = name
        self.on_float = on_float
        self.on_value = on_value

    def __call__(self, x: Any, *params: float) -> Any:
        if isinstance(x, float):
            return self.on_float(x, *params)
        if isinstance(x, Expr):
            return Expr(f"{self.name}({', '.join(map(literal, (x, *params)))})")
        return self.on_value(x, *params)

    def __repr__(self) -> str:
        return f"<rule function {self.name}>"


# ---------------------------------------------------------------------------------------------
# Forward functions on floats, with the domain checks of the spec. Errors name the op and value.


def _checked_exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        raise OverflowError(f"exp overflow: exp({x!r}) is larger than the largest float") from None


def _checked_log(x: float) -> float:
    if x <= 0.0:
        raise ValueError(f"log domain error: log({x!r}) needs an input > 0")
    return math.log(x)


def _checked_sqrt(x: float) -> float:
    if x < 0.0:
        raise ValueError(f"sqrt domain error: sqrt({x!r}) needs an input >= 0")
    return math.sqrt(x)


def _checked_div(x: float, y: float) -> float:
    if y == 0.0:
        raise ZeroDivisionError(f"division by zero: {x!r} / {y!r}")
    return x / y


def _checked_pow(x: float, y: float) -> float:
    if x < 0.0 and not y.is_integer():
        raise ValueError(f"pow domain error: negative base {x!r} to non-integer power {y!r}")
    if x == 0.0 and y < 0.0:
        raise ZeroDivisionError(f"pow: {x!r} ** {y!r} divides by zero")
    try:
        return x**y
    except OverflowError:
        raise OverflowError(
            f"pow overflow: {x!r} ** {y!r} is larger than the largest float"
        ) from None


def _stable_sigmoid(x: float) -> float:
    # Only ever exponentiate a non-positive number, so no input overflows.
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _relu(x: float) -> float:
    return x if x > 0.0 else 0.0


def _leaky_relu(x: float, slope: float) -> float:
    return x if x > 0.0 else slope * x


def _ieee_power(x: float, e: float) -> float:
    """x ** e, giving +-inf where Python raises (0 ** -1, overflow), as IEEE and PyTorch do."""
    try:
        return x**e
    except ZeroDivisionError:
        return math.inf
    except OverflowError:
        # Only a negative base to an odd integer power overflows to -inf.
        return -math.inf if x < 0.0 and e % 2.0 == 1.0 else math.inf


def _log_or_nan(x: float) -> float:
    """The factor log x of d/dy x^y = x^y log x, as PyTorch gives it: log x for x > 0; 0 at
    x = 0, where 0^y is 0 for every y > 0 so the derivative is 0 (not 0 * -inf = nan); nan below.
    """
    if x > 0.0:
        return math.log(x)
    return 0.0 if x == 0.0 else math.nan


def _ieee_power_of_value(v: Any, e: Any) -> Any:
    """v ** e on the graph where it is finite; elsewhere (0 ** -1, overflow) the constant +-inf
    that floats give, where the graph's own pow would raise."""
    power = _ieee_power(v.data, float(e))
    return v**e if math.isfinite(power) else power


def _log_or_nan_of_value(v: Any) -> Any:
    """log v on the graph where it is defined; elsewhere the same constant as on floats."""
    return v.log() if v.data > 0.0 else _log_or_nan(v.data)


def _sign(x: float) -> float:
    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)


def _step(x: float) -> float:
    return 1.0 if x > 0.0 else 0.0


def _vsum(*xs: float) -> float:
    return sum(xs)


def _dot(*ws_then_xs: float) -> float:
    half = len(ws_then_xs) // 2
    return sum(map(float.__mul__, ws_then_xs[:half], ws_then_xs[half:]))


def _constant(f: Callable[[float], float]) -> Callable[[Any], float]:
    """A piecewise-constant function of a Value: its derivative is 0, so it stays a float."""
    return lambda v: f(v.data)


# Rule functions: usable in partials and forwards alike (see RuleFunction).
exp = RuleFunction("exp", _checked_exp, lambda v: v.exp())
log = RuleFunction("log", _checked_log, lambda v: v.log())
sqrt = RuleFunction("sqrt", _checked_sqrt, lambda v: v.sqrt())
tanh = RuleFunction("tanh", math.tanh, lambda v: v.tanh())
sigmoid = RuleFunction("sigmoid", _stable_sigmoid, lambda v: v.sigmoid())
relu = RuleFunction("relu", _relu, lambda v: v.relu())
leaky_relu = RuleFunction("leaky_relu", _leaky_relu, lambda v, slope: v.leaky_relu(slope))
sin = RuleFunction("sin", math.sin, lambda v: v.sin())
cos = RuleFunction("cos", math.cos, lambda v: v.cos())
divide = RuleFunction("divide", _checked_div, lambda v, y: v / y)
power = RuleFunction("power", _checked_pow, lambda v, e: v**e)
ieee_power = RuleFunction("ieee_power", _ieee_power, _ieee_power_of_value)
log_or_nan = RuleFunction("log_or_nan", _log_or_nan, _log_or_nan_of_value)
sign = RuleFunction("sign", _sign, _constant(_sign))
step = RuleFunction("step", _step, _constant(_step))

RULE_FUNCTIONS: dict[str, Callable[..., float]] = {
    f.name: f.on_float
    for f in (exp, log, sqrt, tanh, sigmoid, relu, leaky_relu, sin, cos, divide, power)
    + (ieee_power, log_or_nan, sign, step)
}
RULE_FUNCTIONS.update(vsum=_vsum, dot=_dot)


@dataclass(frozen=True, eq=False, slots=True)
class Op:
    """One primitive: its name as drawn, its forward on floats, its local partials.

    `forward(*input_floats) -> float`; `partials(out, *inputs) -> tuple` with one entry per
    input. `infix` is the operator symbol for + - * (the jit prints those inline).
    `source(*input_exprs) -> Expr` prints the forward for the jit.
    """

    name: str
    forward: Callable[..., float]
    partials: Callable[..., tuple]
    source: Callable[..., Any]


def _nary_source(name: str) -> Callable[..., Expr]:
    return lambda *xs: Expr(f"{name}({', '.join(map(literal, xs))})")


def _unary(function: RuleFunction, partials: Callable[..., tuple]) -> Op:
    return Op(function.name, function.on_float, partials, function)


ADD = Op("+", float.__add__, lambda out, x, y: (1.0, 1.0), lambda x, y: x + y)
SUB = Op("-", float.__sub__, lambda out, x, y: (1.0, -1.0), lambda x, y: x - y)
MUL = Op("*", float.__mul__, lambda out, x, y: (y, x), lambda x, y: x * y)
DIV = Op("/", _checked_div, lambda out, x, y: (1.0 / y, -out / y), divide)
NEG = Op("neg", float.__neg__, lambda out, x: (-1.0,), lambda x: -x)
# x ** y with both sides Values; d/dy x^y = x^y log x is nan for a negative base, as in PyTorch.
POW = Op(
    "pow",
    _checked_pow,
    lambda out, x, y: (y * ieee_power(x, y - 1.0), out * log_or_nan(x)),
    power,
)
EXP = _unary(exp, lambda out, x: (out,))  # d/dx e^x = e^x
LOG = _unary(log, lambda out, x: (1.0 / x,))  # d/dx log x = 1/x
SQRT = _unary(sqrt, lambda out, x: (0.5 * ieee_power(out, -1.0),))  # d/dx sqrt x = 1/(2 sqrt x)
TANH = _unary(tanh, lambda out, x: (1.0 - out * out,))  # d/dx tanh x = 1 - tanh(x)^2
SIGMOID = _unary(sigmoid, lambda out, x: (out * (1.0 - out),))  # s' = s (1 - s)
RELU = _unary(relu, lambda out, x: (step(x),))  # 1 where x > 0, else 0 (0 at the kink)
ABS = Op("abs", abs, lambda out, x: (sign(x),), lambda x: Expr(f"abs({literal(x)})"))
SIN = _unary(sin, lambda out, x: (cos(x),))  # d/dx sin x = cos x
COS = _unary(cos, lambda out, x: (-sin(x),))  # d/dx cos x = -sin x
# n-ary: one node for a whole sum or dot product, however many inputs.
VSUM = Op("sum", _vsum, lambda out, *xs: (1.0,) * len(xs), _nary_source("vsum"))
# dot(w1..wn, x1..xn): d/dwi = xi and d/dxi = wi, so the partials are the inputs, halves swapped.
DOT = Op(
    "dot",
    _dot,
    lambda out, *wx: wx[len(wx) // 2 :] + wx[: len(wx) // 2],
    _nary_source("dot"),
)


@lru_cache(maxsize=256)
def power_of(c: float) -> Op:
    """x ** c for a constant c: d/dx x^c = c x^(c-1). One Op per exponent, shared by all nodes."""
    return Op(
        f"**{c:g}",
        lambda x: _checked_pow(x, c),
        lambda out, x: (c * ieee_power(x, c - 1.0),),
        lambda x: power(x, c),
    )


@lru_cache(maxsize=256)
def leaky_relu_of(slope: float) -> Op:
    """max(x, slope x): the partial is 1 where x > 0, else slope."""
    return Op(
        "leaky_relu",
        lambda x: _leaky_relu(x, slope),
        lambda out, x: (slope + (1.0 - slope) * step(x),),
        lambda x: leaky_relu(x, slope),
    )


OPS: dict[str, Op] = {
    "add": ADD,
    "sub": SUB,
    "mul": MUL,
    "div": DIV,
    "neg": NEG,
    "pow": POW,
    "power_of": power_of(3.0),
    "exp": EXP,
    "log": LOG,
    "sqrt": SQRT,
    "tanh": TANH,
    "sigmoid": SIGMOID,
    "relu": RELU,
    "leaky_relu": leaky_relu_of(0.01),
    "abs": ABS,
    "sin": SIN,
    "cos": COS,
    "vsum": VSUM,
    "dot": DOT,
}
"""Every primitive, by name. Parametrised ops appear with one representative parameter."""
