"""Lowering: a traced per-sample program to a block program that runs it over a whole batch.

The `Compiler` walks the program's equations once, in order, and groups them into the block
ops of `autograd_core.compiler.block_ops` (matrix products, gathered convolutions, row reductions,
elementwise ops, means over the batch), each of which writes its forward equations of the
block program (`autograd_core.compiler.block_program`). It records where every scalar variable went
(`Blocks.where`: its block and column), so a later equation reads it from there. Then it walks
the block ops backwards: each writes the equations adding its terms to its inputs' gradients,
and `Blocks` keeps the books of those gradients (a block's first term names its gradient; the
next ones are added to it).

Nothing here knows about `nn`: a hand-written network of `dot` neurons is recognised the same.
The block program is printed as NumPy source only at the end (`source`): one function `run`,
compiled with the op table's array kernels.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from ..engine import ops
from . import block_calculus, ir
from . import block_program as bp
from .block_ops import (
    Convolution,
    Elementwise,
    Gather,
    MatMul,
    Pick,
    RowReduce,
    WindowSum,
)
from .block_program import BATCH, Array, NumpyPrinter
from .blocks import THETA, Blocks, numpy, shaped
from .codegen import Printer, compile_source


class Compiler(Blocks):
    """Lowers a forward scalar program to block ops, then writes their backward equations."""

    def lower(self) -> None:
        """Group the equations, in order, into block ops, each writing its forward equations:
        the windows of a convolution, a layer of dot neurons, a row reduction, else one op of
        the table over as many columns of a block as apply it alike."""
        done: set[int] = set()
        matmul_groups = MatMul.groups(self)
        convolutions = Convolution.find(self, matmul_groups)
        sums = WindowSum.candidates(self)
        for eq in self.program.equations:
            if id(eq) in done:
                continue
            windows = convolutions.get(id(eq))
            group = matmul_groups.get(id(eq))
            layout = Convolution.layout_of(self, windows) if windows is not None else None
            if layout is not None:
                Convolution.lower(self, windows, layout)
                done.update(id(member) for window in windows for member in window)
                continue
            if group is None and eq.op is ops.VSUM:
                group = WindowSum.lower(self, eq, sums, done)
                if group is not None:
                    done.update(id(member) for member in group)
                    continue
            if group is None and eq.op is ops.TAKE:
                group = Gather.group(self, eq, done)
                if group is not None:
                    Gather.lower(self, group)
                    done.update(id(member) for member in group)
                    continue
                group = Pick.group(self, eq, done)
                if group:
                    Pick.lower(self, group)
                    done.update(id(member) for member in group)
                    continue
                group = None
            if group is not None:
                MatMul.lower(self, group)
            elif eq.op in (ops.VSUM, ops.DOT, ops.LOGSUMEXP) and (
                group := RowReduce.group(self, eq, done)
            ):
                RowReduce.lower(self, group)
            else:
                group = Elementwise.group(self, eq, done)
                Elementwise.lower(self, group)
            if group and len(group) > 1:
                done.update(id(member) for member in group)
            else:
                done.add(id(eq))

    def backward(self, seeds: list[tuple[ir.Var, bp.Operand]]) -> None:
        """Seed the gradients of `seeds`, then let each block op, last first, write its own
        backward equations; an op whose result no gradient reached has none."""
        for var, seed in seeds:
            self.add_grad(self.operand(var), seed, shaped(1))
        for block_op in reversed(self.block_ops):
            if block_op.out.grad is not None:
                block_calculus.backward(block_op, self)

    # -- the program's results --------------------------------------------------------------

    def output(self, x: ir.Operand, rows: Any = BATCH) -> bp.Operand:
        """A (batch, 1) column holding `x` for every sample; with rows=1, the (1, 1) number of
        an `x` that is the same for every sample (a report)."""
        if not isinstance(x, ir.Var):
            return bp.full((rows, 1), x)
        if x in self.param_index:
            return bp.full((rows, 1), bp.index(THETA, self.param_index[x]))
        block, j = self.where[x]
        if block.scalar:
            return bp.full((rows, 1), block.array)
        if rows == 1 and not block.wide:
            raise ValueError(
                f"a reported value must be the same for every sample (a batch mean, or computed "
                f"from batch means and parameters); {x.name} differs from sample to sample"
            )
        column = self.columns_value(block, None if block.width == 1 else (j,))
        return bp.broadcast(column, BATCH, 1) if block.wide and rows is BATCH else column

    def block_program(self, arguments: list[Array], results: list[bp.Operand]) -> bp.Program:
        """The equations written so far as a block program (a copy: writing on goes on)."""
        return bp.Program(
            list(arguments), list(self.equations), list(results), list(self.constants)
        )

    # -- the generated function -------------------------------------------------------------

    def statements(self, end: int | None = None, checked: bool = False) -> list[bp.Equation]:
        """The function's equations: `n = X.shape[0]`, then the program's up to `end` (all by
        default). `checked` adds a check after every elementwise op of the forward pass, which
        raises the eager error at the first element that went wrong."""
        statements = [bp.Equation(BATCH, bp.expr("rows", self.X.array))]
        for number, eq in enumerate(self.equations[:end]):
            statements.append(eq)
            if checked and number in self.checks:
                block_op = self.checks[number]
                args = bp.expr("tuple", *[self.value_of(o) for o in block_op.operands])
                check = bp.expr("check", number, block_op.out.array, args)
                statements.append(bp.Equation(None, check))
        return statements

    def source(
        self, header: str, returned: str, end: int | None = None, checked: bool = False
    ) -> str:
        """The function: its equations (`statements`) but those whose result nothing reads,
        then `return returned`."""
        return self._printed(header, returned, self.statements(end, checked))

    def _printed(self, header: str, returned: str, statements: list[bp.Equation]) -> str:
        equations, _ = bp.live_equations(statements, _names_in(returned))
        printer = NumpyPrinter(self.printer)
        lines = [header, *["    " + printer.line(eq) for eq in equations]]
        return "\n".join([*lines, f"    return {returned}", ""])

    @functools.cached_property
    def printer(self) -> Printer:
        """The op table's names in the source, the same in every printing of the program."""
        return Printer()

    def function(
        self,
        header: str,
        returned: str,
        owner: object,
        end: int | None = None,
        checked: bool = False,
        dtype: Any = None,
    ) -> Any:
        """The generated function `run` (see `source`), compiled for arrays of `dtype`; for a
        program of more than `LONG_PROGRAM` equations, the same function run by a walk over
        its equations (`block_program.Walk`) instead of compiled."""
        statements = self.statements(end, checked)
        if len(statements) <= LONG_PROGRAM:
            source = self._printed(header, returned, statements)
            return compile_source(source, owner, self.namespace(dtype))["run"]
        equations, released = bp.live_equations(statements, _names_in(returned))
        namespace = self.namespace(dtype)
        walk = bp.Walk(NumpyPrinter(self.printer), namespace, _array_kernel)
        # The arguments by name, as `header` takes them; the result as `returned` reads them.
        stub: dict[str, Any] = {}
        exec(compile(f"{header}\n    return locals()\n", "<arguments>", "exec"), stub)
        arguments = stub["run"]
        result = compile(returned, "<returned>", "eval")
        constants = {c.name: namespace[c.name] for c in self.constants}

        def run(*args: Any, **kwargs: Any) -> Any:
            values = arguments(*args, **kwargs)
            values.update(constants)
            return eval(result, namespace, walk.run(equations, released, values))

        return run

    def namespace(self, dtype: Any = None) -> dict[str, Any]:
        """The names the source reads. `dtype` (float64 unless given) is the float type of the
        arrays it makes and of its constants, so a float32 batch stays float32 throughout."""
        np = numpy()
        dtype = np.dtype(dtype or np.float64)
        names: dict[str, Any] = {"np": np, "inf": math.inf, "nan": math.nan, "dtype": dtype}
        names.update((name, _array_kernel(op)) for name, op in self.printer.ops_by_name().items())
        for constant in self.constants:
            value = constant.value
            names[constant.name] = value.astype(dtype) if value.dtype.kind == "f" else value
        names["_check"] = self._check
        names["_times"] = _times
        names["_row_indices"] = _row_indices
        names["_scatter_add"] = _scatter_add
        names["_scatter_rows"] = _scatter_rows
        return names

    def _check(self, number: int, out: Any, args: tuple) -> None:
        """Raise the eager engine's error for the first element this op made non-finite."""
        np = numpy()
        block_op = self.checks[number]
        arrays = np.broadcast_arrays(out, *[np.asarray(a, dtype=float) for a in args])
        # Every non-finite element, in order, not only those with finite inputs: log(-inf) is
        # an error too, and a legitimate inf (x + inf) must not hide a later element's error.
        bad = ~np.isfinite(arrays[0])
        for row in np.stack([a[bad] for a in arrays[1:]], axis=1).tolist():
            block_op.op.forward(*row, *block_op.params)


LONG_PROGRAM = 20_000
"""A function of more equations than this is run by a walk over them, not compiled (as for
the Python back-end's `jit.LONG_PROGRAM`: compiling it would cost more than building it)."""


def _names_in(returned: str) -> tuple[str, ...]:
    """The arrays the text of a function's result reads: `value[:, 0], dX` reads value, dX."""
    return compile(returned, "<returned>", "eval").co_names


def _times(a: Any, b: Any) -> Any:
    """a * b, but 0 where either is 0: the chain rule's product as eager `backward` takes it."""
    np = numpy()
    return np.where((np.asarray(a) != 0.0) & (np.asarray(b) != 0.0), a * b, 0.0)


def _row_indices(x: Any, n_rows: int) -> Any:
    """The samples' indices x, (n,) or (n, Q), as row numbers of a table of n_rows rows;
    IndexError (as `take` raises on floats) for one that is not a whole number in range."""
    np = numpy()
    return ops.row_indices(np, np.asarray(x), n_rows)


def _scatter_add(grad: Any, cols: Any, term: Any) -> None:
    """grad[:, cols] += term for a (samples, width) gradient, an array of columns (of any
    shape) that may repeat, and a term shaped (samples, *cols.shape) or broadcast to it: every
    repeat counts, as with `np.add.at`, but as one `np.bincount` of the flattened positions."""
    np = numpy()
    n, width = grad.shape
    rows = np.arange(n).reshape(-1, *[1] * cols.ndim) * width
    weights = np.broadcast_to(term, (n, *cols.shape)).ravel()
    grad += np.bincount((rows + cols).ravel(), weights, n * width).reshape(n, width)


def _scatter_rows(grad: Any, index: Any, term: Any) -> None:
    """grad[index[s]] += term[s] for every sample s (rows read twice get both): the gradient
    of a table's rows gathered by `index`, as one `np.bincount`."""
    np = numpy()
    n_rows, width = grad.shape
    flat = (index[..., None] * width + np.arange(width)).ravel()
    grad += np.bincount(flat, term.ravel(), n_rows * width).reshape(n_rows, width)


def _array_kernel(op: ops.Op) -> Any:
    """The op on arrays, as the generated code calls it: `relu(Z1)`."""
    if op.array is not None:
        return functools.partial(op.array, numpy())
    return op.on_arrays
