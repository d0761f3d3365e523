"""The batched back-end: a traced scalar program run over a whole batch as NumPy array code.

`autograd_core.compiler.block_ops` says which scalar equations of a one-sample program become which
matrix ops, `autograd_core.compiler.lowering` groups them so into a block program (forward
equations, then the backward ones of `autograd_core.compiler.block_calculus`); this module runs it:
`jit(f).batched` (`BatchedFunction`) and a training step of `fit(jit=True)` (`TrainingStep`),
with the feeds and reports of a batch trace (`autograd_core.compiler.batch`).

The program is kept as `.block_program` (data; `str()` prints it as a matrix jaxpr) and as
`.source`, the NumPy source it is printed to and run as: the matrix form a learner can read.
A program of more than `lowering.LONG_PROGRAM` equations (a long chain, which nothing packs)
is run by a walk over its equations instead (`block_program.Walk`): compiling its source
would cost more than building it. Its `.source` is printed only when asked for.

Errors: the arrays are computed without NumPy's warnings. If a result is not finite, the batch
is run again with a check after every op, and the first element that went wrong is recomputed
by the op's own forward on floats, which raises the eager engine's error (a log of a negative
number names the op and the number).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from . import block_program as bp
from . import ir
from .block_program import BATCH, Array
from .blocks import DTHETA, THETA, numpy
from .lowering import Compiler


class _Compiled:
    """What the two runners share: their program as data (`block_program`) and as NumPy source
    (`source`), both made when first asked for, and the function `run` it is compiled to."""

    _compiler: Compiler
    _header: str  # the function's first line, `def run(X):`
    _returned: str  # what it returns, `value[:, 0], dX`
    _arguments: list[Array]
    _results: list[bp.Operand]

    @functools.cached_property
    def block_program(self) -> bp.Program:
        """The program as data: `str(block_program)` reads it as a matrix jaxpr."""
        return self._compiler.block_program(self._arguments, self._results)

    @functools.cached_property
    def source(self) -> str:
        """The NumPy source the program is printed to: the function `run`."""
        return self._compiler.source(self._header, self._returned)

    def _compile_run(self, dtype: Any) -> Any:
        """`run` for arrays of `dtype`: the source compiled, or a long program's walk."""
        with ir.without_gc():  # (a long program's walk is prepared with lists per equation)
            return self._compiler.function(self._header, self._returned, self, dtype=dtype)


class BatchedFunction(_Compiled):
    """`f` and its gradient over a batch: `(values, grads)` for an (n, n_args) array `X`."""

    def __init__(self, program: ir.Program) -> None:
        self.program = program
        compiler, forward_end = self._compiler_for(careful=False)
        compiler.forget_the_scalars()
        self._header, self._returned = "def run(X):", "value[:, 0], dX"
        self._arguments, self._results = [compiler.X.array], [_VALUE, compiler.X.grad]
        self._compiler, self._forward_end = compiler, forward_end
        self._runs: dict[Any, Any] = {}  # by the float type of X (see `_compiled`)
        self._ones: Any = None  # a vector of ones for the check, as long as the largest dX
        # Compiled the first time a value or gradient comes out inf or nan.
        self._checked: Any = None
        self._careful: dict[Any, Any] = {}

    def _compiler_for(self, careful: bool) -> tuple[Compiler, int]:
        compiler = Compiler(self.program, input_grads=True, careful=careful)
        compiler.lower()
        forward_end = len(compiler.equations)
        out = self.program.outputs[0]
        compiler.emit(_VALUE, compiler.output(out))
        ones = bp.full((BATCH, 1), 1.0)
        compiler.backward([(out, ones)] if isinstance(out, ir.Var) else [])
        if compiler.X.grad is None:  # f does not depend on its arguments: zeros
            compiler.own(compiler.X)
        return compiler, forward_end

    def __call__(self, X: Any) -> tuple[Any, Any]:
        """f and its gradient at each row of X, in X's float type (float32 or float64)."""
        np = numpy()
        run = self._runs.get(X.dtype) or _compiled(self._runs, X.dtype, self._compile_run)
        with np.errstate(all="ignore"):
            value, dX = run(X)
            # One sum of both (a product with ones, the quickest): inf or nan if any element
            # is (or, rarely, if finite numbers overflow it: then the check finds nothing).
            ones = self._ones
            if ones is None or ones.size < dX.size or ones.dtype != dX.dtype:
                ones = self._ones = np.ones(dX.size, dX.dtype)  # the largest batch's, sliced
            total = value.dot(ones[: value.size]) + dX.ravel("K").dot(ones[: dX.size])
        if not math.isfinite(total):
            if self._checked is None:
                self._checked = self._compiler.function(
                    self._header, "None", self, self._forward_end, checked=True
                )
            with np.errstate(all="ignore"):
                self._checked(X)
                if np.isnan(dX).any():  # 0 * inf in the chain rule: eager takes it as 0
                    value, dX = self._run_carefully(X)
        return value, dX

    def _run_carefully(self, X: Any) -> tuple[Any, Any]:
        return _compiled(self._careful, X.dtype, self._compile_careful)(X)

    def _compile_careful(self, dtype: Any) -> Any:
        compiler, _ = self._compiler_for(careful=True)
        return compiler.function(self._header, self._returned, self, dtype=dtype)


class TrainingStep(_Compiled):
    """The loss of a batch and its gradient for every parameter, from a per-sample program.

    `program` computes, for one sample, `outputs[0]` = the sample's loss and then any other
    outputs (the model's, for the accuracy), from parameters (`theta`, one flat array) and
    the sample's inputs: its features (a row of `X`) and then, if `n_labels`, its label as
    numbers (a row of `Y`). `step(theta, X, Y)` returns the mean loss over the rows, the other
    outputs as an (n, k) array, and d(mean loss)/d(theta).

    A program traced in a `batch_trace` may also read feeds and end with reports (see
    `autograd_core.compiler.batch`): each run asks the feeds for their numbers first and gives the
    reports theirs after, so a module's random masks and running estimates stay its own.
    """

    def __init__(self, program: ir.Program, n_labels: int = 0) -> None:
        compiler = Compiler(program, input_grads=False, n_labels=n_labels)
        compiler.lower()
        forward_end = len(compiler.equations)
        n_reported = sum(len(report.values) for report in program.reports)
        loss, *others = program.outputs[: len(program.outputs) - n_reported]
        reported = program.outputs[len(program.outputs) - n_reported :]
        results = [Array("loss", shape=("n", 1)), Array("outputs", shape=("n", len(others)))]
        compiler.emit(results[0], compiler.output(loss))
        compiler.emit(results[1], self._joined(compiler, others, BATCH))
        if program.reports:  # the numbers handed back to the modules after the step
            results.append(Array("reports", shape=(n_reported,)))
            compiler.emit(results[-1], bp.index(self._joined(compiler, reported, 1), 0))
        self._outputs_end = len(compiler.equations)
        compiler.emit(DTHETA, bp.expr("zeros_like", THETA))
        if isinstance(loss, ir.Var):
            compiler.backward([(loss, bp.full((BATCH, 1), bp.div(1.0, BATCH)))])
        header = "def run(theta, X, Y=None, F=None):"
        returned = f"loss, outputs, dtheta, {'reports' if program.reports else 'None'}"
        compiler.forget_the_scalars()
        theta = Array("theta", shape=(len(program.params),))
        self._arguments = [theta, *(block.array for block in compiler.inputs)]
        self._results = [*results[:2], DTHETA, *results[2:]]
        self.feeds, self.reports = program.feeds, program.reports
        self._compiler, self._forward_end = compiler, forward_end
        self._header, self._returned = header, returned
        # Compiled when first needed, for each float type of theta: the whole step and the
        # forward alone (`evaluate`); and the forward with a check after every op (the first
        # time a loss comes out inf or nan).
        self._runs: dict[Any, Any] = {}
        self._forwards: dict[Any, Any] = {}
        self._checked: Any = None

    @staticmethod
    def _joined(compiler: Compiler, xs: list[ir.Operand], rows: Any) -> bp.Operand:
        """One (rows, len(xs)) array of the values xs, each a column."""
        if xs and all(compiler.is_batched(x) for x in xs):
            if len({compiler.where[x][0].wide for x in xs}) == 1 and (
                compiler.where[xs[0]][0].wide == (rows == 1)
            ):
                return compiler.assemble(xs).value
        columns = [compiler.output(x, rows) for x in xs]
        if not columns:
            return bp.zeros(rows, 0)
        if len(columns) == 1:
            return columns[0]
        return bp.concatenate(columns)

    def __call__(self, theta: Any, X: Any, Y: Any = None) -> tuple[float, Any, Any]:
        """The mean loss, the outputs and d(mean loss)/d(theta); then the reports are given."""
        run = _compiled(self._runs, theta.dtype, self._compile_run)
        F = self._feeds(len(X))
        with numpy().errstate(all="ignore"):
            loss, outputs, dtheta, reports = run(theta, X, Y, F)
            self._check(loss, theta, X, Y, F)
        start = 0
        for report in self.reports:
            report.receive(reports[start : start + len(report.values)], len(X))
            start += len(report.values)
        return float(loss.mean()), outputs, dtheta

    def evaluate(self, theta: Any, X: Any, Y: Any = None) -> tuple[float, Any]:
        """The mean loss and the outputs, from the forward pass alone; no report is given.
        The feeds are asked as for a step: meant for a program traced in eval mode, where
        batch norm feeds its running estimates and dropout draws nothing."""
        forward = _compiled(self._forwards, theta.dtype, self._compile_forward)
        F = self._feeds(len(X))
        with numpy().errstate(all="ignore"):
            loss, outputs = forward(theta, X, Y, F)
            self._check(loss, theta, X, Y, F)
        return float(loss.mean()), outputs

    def _compile_forward(self, dtype: Any) -> Any:
        return self._compiler.function(
            self._header, "loss, outputs", self, self._outputs_end, dtype=dtype
        )

    def _feeds(self, n: int) -> Any:
        """The numbers each feed supplies for a batch of n, side by side: the array F."""
        if not self.feeds:
            return None
        np = numpy()
        columns = [np.broadcast_to(feed.supply(n), (n, len(feed.values))) for feed in self.feeds]
        return np.concatenate(columns, axis=1)

    def _check(self, loss: Any, theta: Any, X: Any, Y: Any, F: Any) -> None:
        """Raise the eager error of the op that went wrong, if the loss is not finite."""
        if numpy().isfinite(loss).all():
            return
        if self._checked is None:
            self._checked = self._compiler.function(
                self._header, "None", self, self._forward_end, checked=True
            )
        self._checked(theta, X, Y, F)


_VALUE = Array("value", shape=("n", 1))


def _compiled(cache: dict[Any, Any], dtype: Any, compile_for: Callable[[Any], Any]) -> Any:
    """The function of `cache` for arrays of `dtype` (float64 or float32), compiled the first
    time that float type comes: its constants and the arrays it makes are of that type."""
    function = cache.get(dtype)
    if function is None:
        function = cache[dtype] = compile_for(dtype)
    return function


def compile_function(program: ir.Program) -> BatchedFunction:
    """The batched back-end for a function of n numbers (`jit(f).batched`)."""
    return BatchedFunction(program)
