"""The arithmetic of a number, written once for every kind of node: `Value`, the traced `Var`
and the block program's arrays.

Each operator applies one op of the table: `a * b` is `MUL` on a and b, `-a` is `NEG` on a.
A class that mixes `Arithmetic` in says how an op is applied to it with
`apply_op(op, args, params)` (`params`: the op's parameters, such as a power's exponent) and
what a comparison compares with `_number(x)`. `Value` records a node of the graph, `Var`
an equation of its program, a block an array expression. (`Value` also has its own `_binary`
and `_unary`, the operators' fast path: a number on either side, NotImplemented when Python
should offer the other operand.)
"""

from __future__ import annotations

import numbers
from typing import Any

from . import ops


def is_real(x: object) -> bool:
    """int, float or another real number type (NumPy scalars, Fraction), but not bool."""
    return (
        type(x) is float
        or type(x) is int
        or (isinstance(x, numbers.Real) and not isinstance(x, bool))
    )


class Arithmetic:
    """The operators + - * / ** (a number on either side), unary - + abs, the comparisons, and
    the functions exp, log, sqrt, tanh, sigmoid, relu, leaky_relu, sin, cos."""

    __slots__ = ()

    # Each class's own: `Value.apply_op` makes a node, `Var.apply_op` an equation.
    apply_op: Any
    _number: Any

    @classmethod
    def _binary(cls, op: ops.Op, a: Any, b: Any) -> Any:
        return cls.apply_op(op, (a, b))

    @classmethod
    def _unary(cls, op: ops.Op, a: Any) -> Any:
        return cls.apply_op(op, (a,))

    @classmethod
    def _parametrised(cls, op: ops.Op, a: Any, params: tuple) -> Any:
        return cls.apply_op(op, (a,), params)

    def __add__(self, other: Any) -> Any:
        return self._binary(ops.ADD, self, other)

    def __radd__(self, other: Any) -> Any:
        return self._binary(ops.ADD, other, self)

    def __sub__(self, other: Any) -> Any:
        return self._binary(ops.SUB, self, other)

    def __rsub__(self, other: Any) -> Any:
        return self._binary(ops.SUB, other, self)

    def __mul__(self, other: Any) -> Any:
        return self._binary(ops.MUL, self, other)

    def __rmul__(self, other: Any) -> Any:
        return self._binary(ops.MUL, other, self)

    def __truediv__(self, other: Any) -> Any:
        return self._binary(ops.DIV, self, other)

    def __rtruediv__(self, other: Any) -> Any:
        return self._binary(ops.DIV, other, self)

    def __pow__(self, exponent: Any) -> Any:
        if is_real(exponent):
            # A constant exponent is the op's parameter: no node, no d/d(exponent) to compute.
            return self._parametrised(ops.POWER_OF, self, (float(exponent),))
        return self._binary(ops.POW, self, exponent)

    def __rpow__(self, base: Any) -> Any:
        return self._binary(ops.POW, base, self)

    def __neg__(self) -> Any:
        return self._unary(ops.NEG, self)

    def __pos__(self) -> Any:
        return self

    def __abs__(self) -> Any:
        return self._unary(ops.ABS, self)

    # -- comparisons look at numbers only -------------------------------------------------------

    def __lt__(self, other: Any) -> bool:
        return self._number(self) < self._number(other)

    def __le__(self, other: Any) -> bool:
        return self._number(self) <= self._number(other)

    def __gt__(self, other: Any) -> bool:
        return self._number(self) > self._number(other)

    def __ge__(self, other: Any) -> bool:
        return self._number(self) >= self._number(other)

    # -- functions ------------------------------------------------------------------------------

    def exp(self) -> Any:
        return self._unary(ops.EXP, self)

    def log(self) -> Any:
        return self._unary(ops.LOG, self)

    def sqrt(self) -> Any:
        return self._unary(ops.SQRT, self)

    def tanh(self) -> Any:
        return self._unary(ops.TANH, self)

    def sigmoid(self) -> Any:
        return self._unary(ops.SIGMOID, self)

    def relu(self) -> Any:
        return self._unary(ops.RELU, self)

    def leaky_relu(self, slope: float = 0.01) -> Any:
        return self._parametrised(ops.LEAKY_RELU, self, (float(slope),))

    def sin(self) -> Any:
        return self._unary(ops.SIN, self)

    def cos(self) -> Any:
        return self._unary(ops.COS, self)
