"""Equations as source text, and source text as running code: what both back-ends share.

`Printer` writes one equation of a traced program as a line of Python: `+ - *` inline, `dot`
and `vsum` as Python's `sum` of the terms, every other op as a call of its name in the op
table. The same line runs on floats (the Python back-end binds each name to the op's forward)
and on NumPy arrays (the batched back-end binds it to the op's array kernel).
`compile_source` turns the text into functions, registered with `linecache` for tracebacks
for as long as their owner lives.
"""

from __future__ import annotations

import itertools
import linecache
import math
import weakref
from collections.abc import Sequence
from typing import Any

from ..engine import ops
from . import ir

_compiled_count = itertools.count()
_INFIX = {ops.ADD: "+", ops.SUB: "-", ops.MUL: "*"}


def compile_source(
    source: str, owner: object, bindings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Execute generated source in a namespace holding the op table's forward functions.

    The text is registered with `linecache` so tracebacks show the generated lines, and
    removed again when `owner` is garbage collected, so programs do not leak their source.
    """
    filename = f"<jit-{next(_compiled_count)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    weakref.finalize(owner, linecache.cache.pop, filename, None)
    namespace: dict[str, Any] = {"inf": math.inf, "nan": math.nan}
    namespace.update(bindings or {})
    exec(compile(source, filename, "exec"), namespace)
    return namespace


class Printer:
    """Prints equations as Python; each op the source calls gets a name of its own.

    An op of the built-in table is called by its key (`tanh(v0)`), which the tests check
    against every name generated code uses; an op declared with `defop` is called `op_<name>`
    (no other generated name starts so), so what a user calls an op (`np`, `sum`, `x0`, `if`)
    never meets a name of the generated code. An op's parameters follow its inputs as
    numbers (`power_of(v0, 3.0)`), as its functions take them.
    """

    def __init__(self) -> None:
        self.names: dict[ops.Op, str] = {}

    def name_of(self, op: ops.Op) -> str:
        if op in self.names:
            return self.names[op]
        key = ops.key_of(op)
        name = key if key in ops.BUILT_IN else f"op_{key}"
        self.names[op] = name
        return name

    def ops_by_name(self) -> dict[str, ops.Op]:
        """Each op the source calls, by the name it calls it."""
        return {name: op for op, name in self.names.items()}

    def operand(self, x: ir.Operand) -> str:
        if isinstance(x, ir.Var):
            return x.name
        if math.isfinite(x):
            return repr(x)
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "(-inf)")

    def line(self, eq: ir.Equation) -> str:
        return f"{eq.out.name} = {self.expression(eq.op, eq.inputs, eq.params)}"

    def expression(self, op: ops.Op, inputs: Sequence[ir.Operand], params: tuple = ()) -> str:
        args = [self.operand(x) for x in (*inputs, *params)]
        if op in _INFIX:
            return f"{args[0]} {_INFIX[op]} {args[1]}"
        if op is ops.NEG:
            return f"-{args[0]}"
        if op is ops.DOT:
            # Written out as Python's sum of the products, the same numbers as the op's forward.
            half = len(args) // 2
            products = [_product(w, x) for w, x in zip(args[:half], args[half:], strict=True)]
            return _python_sum(products)
        if op is ops.VSUM:
            return _python_sum(args)
        return f"{self.name_of(op)}({', '.join(args)})"


def _product(w: str, x: str) -> str:
    if x == "1.0":
        return w
    if w == "1.0":
        return x
    return f"{w} * {x}"


def _python_sum(terms: list[str]) -> str:
    return f"sum(({', '.join(terms)}{',' if len(terms) == 1 else ''}))"
