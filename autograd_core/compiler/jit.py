"""`jit`: trace a function once, then run it as generated code instead of building graphs.

Tracing calls `f` on Values and records its graph as a `Program` (`autograd_core.compiler.ir`): one
equation per node, then the backward pass as more equations, written by the op table's own
partial rules. Two back-ends run a program:

* the Python back-end (this module) prints it as straight-line Python on floats: one line per
  equation, each op calling the same forward function the eager engine calls, and gradient
  terms added in the order `backward` adds them, so the numbers are exactly the eager ones. A
  program of more than `LONG_PROGRAM` equations is run by `Interpreter`, a loop over the same
  equations calling the same functions, because compiling its source would cost more than
  the trace itself (see there);
* the batched back-end (`autograd_core.compiler.batched`, NumPy) runs it over a whole batch of
  inputs at once: `jitted.batched(*arrays)`.

As in JAX, Python control flow that depends on the data (`if x > 0:`) is frozen at trace
time: the generated code replays the branch taken by the first call, whatever later inputs
are. Numbers `f` reads from elsewhere (a Value it closes over) are frozen as constants too;
pass anything that changes as an argument.

The generated source holds only numbers, generated names (x0.., v0.., dx0..), the names of
the built-in ops, `op_<name>` for an op declared with `defop` (so that no name a user gives an
op can clash with the code's own) and Python's `sum`: never a label or any other string.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ..engine.value import Value, _is_real
from ..transforms.reverse import _output
from . import ir
from .codegen import Printer, compile_source


class Jitted:
    """A traced function: call it for the value, `.value_and_grad(*xs)` for both.

    The first call traces `f`; later calls must pass as many real numbers as it did.
    `.program` is the traced program (print it), `.source` the generated Python, and
    `.batched(*arrays)` evaluates f and its gradient over arrays of inputs at once.
    """

    def __init__(self, f: Callable[..., Any]) -> None:
        self._f = f
        self._arity: int | None = None  # None until the first call traces f
        # Compiled when first needed: the forward alone, and the careful version for 0 * inf.
        self._forward: Callable[..., float] | None = None
        self._careful: Callable[..., tuple[float, Any]] | None = None
        self._traced: ir.Program | None = None  # f's forward program, from the first call
        self._batched: Any = None

    @property
    def source(self) -> str:
        """The generated Python source (available after the first call). A program longer than
        `LONG_PROGRAM` runs by `Interpreter`, equation by equation as these lines are written;
        its text is printed when asked for."""
        self._check_traced()
        return self._generated.text

    @functools.cached_property
    def _generated(self) -> Generated:
        return python_source(self._program)

    @functools.cached_property
    def _program(self) -> ir.Program:
        """The traced program with its backward pass, written when first needed (`.batched`
        lowers the forward program and differentiates it by itself). One thread at a time:
        the chain rule keeps each gradient on the traced program's variables as it goes."""
        with _WRITING_GRADIENTS, ir.without_gc():
            return ir.with_gradients(self._traced, self._traced.inputs)  # type: ignore[arg-type]

    @functools.cached_property
    def _value_and_grad(self) -> Callable[..., tuple[float, Any]]:
        return self._function("value_and_grad")

    def _function(self, name: str, careful: bool = False) -> Callable[..., Any]:
        """The program's `forward` or `value_and_grad` (`careful`: with the chain rule's
        products as eager takes them): the generated source compiled, or for a program longer
        than `LONG_PROGRAM`, the interpreter's."""
        program = self._program
        if len(program.equations) > LONG_PROGRAM:
            return getattr(Interpreter(program, careful), name)
        generated = python_source(program, careful=True) if careful else self._generated
        return compile_source(getattr(generated, name), self, generated.bindings)[name]

    @property
    def program(self) -> ir.Program:
        """The traced program, forward and backward equations (after the first call)."""
        self._check_traced()
        return self._program

    @property
    def matrix_source(self) -> str:
        """The batched back-end's NumPy source for the traced program (after the first call):
        what `.batched` runs, the chain rule over whole arrays."""
        self._check_traced()
        return self._batched_function().source

    @property
    def matrix_program(self) -> Any:
        """The batched back-end's block program (after the first call), printed as a "matrix
        jaxpr": one equation per array op, each array with its shape (`n` the batch axis); the
        program `.matrix_source` is the NumPy source of."""
        self._check_traced()
        return self._batched_function().block_program

    def _batched_function(self) -> Any:
        from . import batched

        if self._batched is None:
            with ir.without_gc():  # (as for tracing: the lowering makes objects, frees few)
                self._batched = batched.compile_function(self._traced)  # type: ignore[arg-type]
        return self._batched

    def __call__(self, *xs: float) -> float:
        floats = self._floats(xs)
        if self._forward is None:  # compiled on first use: value_and_grad may be all one needs
            self._forward = self._function("forward")
        return self._forward(*floats)

    def value_and_grad(self, *xs: float) -> tuple[float, Any]:
        """(f(*xs), grads) exactly as `autograd_core.value_and_grad(f)` gives them."""
        floats = self._floats(xs)
        value, grads = self._value_and_grad(*floats)
        # Only where a product of the chain rule met 0 * inf does a nan appear that eager
        # `backward` (0 times anything is 0) would not give: then the careful version decides.
        total = sum(grads) if isinstance(grads, tuple) else grads  # nan if any is (or inf - inf)
        if total != total:
            if self._careful is None:
                self._careful = self._function("value_and_grad", careful=True)
            return self._careful(*floats)
        return value, grads

    def batched(self, *arrays: Any) -> tuple[Any, Any]:
        """f and its gradient at every point of the given arrays (one array per argument).

        Returns `(values, grads)`: `values` has the arrays' (broadcast) shape, `grads` one
        array of that shape per argument (a single array when f takes one argument).
        """
        import numpy as np

        given = [np.asarray(a) for a in arrays]
        if not given:  # no array, no batch: not even its size is known
            raise TypeError("jit(f).batched takes one array per argument of f, got none")
        dtypes = {a.dtype for a in given}
        for dtype in dtypes:
            if dtype.kind not in "iuf":  # as a call refuses bool, complex, Value and str
                a = next(a for a in given if a.dtype == dtype)
                raise TypeError(
                    "jit(f).batched takes arrays of real numbers (int or float), got an array "
                    f"of {a.dtype}: {a!r}"
                )
        shapes = {a.shape for a in given}
        shape = shapes.pop() if len(shapes) == 1 else np.broadcast_shapes(*shapes)
        # One column per argument, each contiguous (Fortran order), so that the program's
        # slices X[:, i:i+1] are too; in float32 where every array is, else in float64.
        dtype = np.float32 if dtypes == {np.dtype(np.float32)} else np.float64
        X = np.empty((math.prod(shape), len(given)), dtype, order="F")
        for i, a in enumerate(given):
            X[:, i] = (a if a.shape == shape else np.broadcast_to(a, shape)).reshape(-1)
        if self._arity is None:
            self._trace([float(x) for x in X[0]] if len(X) else [0.5] * len(given))
        if len(given) != self._arity:
            self._check_arity(len(given))
        values, grads = (self._batched or self._batched_function())(X)
        if len(shape) == 1:  # a row of points: the columns have its shape already
            columns = list(grads.T)
        else:
            values, columns = values.reshape(shape), [g.reshape(shape) for g in grads.T]
        return values, columns[0] if len(columns) == 1 else tuple(columns)

    def _check_traced(self) -> None:
        if self._traced is None:
            raise RuntimeError("nothing traced yet: call the jitted function once first")

    def _check_arity(self, n: int) -> None:
        if n != self._arity:
            raise TypeError(
                f"this jitted function was traced with {self._arity} argument(s), got {n}; "
                "jit the function again for a different number of arguments"
            )

    def _floats(self, xs: Sequence[Any]) -> list[float]:
        """The arguments as floats, refused as the tracing call refuses them."""
        floats = []
        for x in xs:
            if type(x) is not float:
                if not _is_real(x) or isinstance(x, Value):
                    raise TypeError(
                        "a jitted function takes real numbers (int, float or NumPy real "
                        f"scalar), got {type(x).__name__}: {x!r}"
                    )
                try:
                    x = float(x)
                except OverflowError:  # an int such as 10**400 (not repr: thousands of digits)
                    raise ValueError(
                        "a jitted function got a number too large for a float (its size is "
                        "over 1.8e308)"
                    ) from None
            floats.append(x)
        if self._arity is None:
            self._trace(floats)
        self._check_arity(len(floats))
        return floats

    def _one_output(self, *xs: Value) -> Value:
        """f's result, which must be one Value or number, as for `grad` and `value_and_grad`
        (a program of several outputs would differentiate only the first)."""
        return _output(self._f(*xs))

    def _trace(self, xs: Sequence[float]) -> None:
        # f is called once, as the first call promises: its forward program serves both
        # back-ends (the backward pass is appended to a copy, `_program`).
        with ir.without_gc():
            self._traced = ir.trace(self._one_output, len(xs), input_values=xs)
        self._arity = len(xs)


def jit(f: Callable[..., Any]) -> Jitted:
    """Trace `f` (n numbers -> Value) on its first call and compile it to plain Python."""
    return Jitted(f)


class Generated(NamedTuple):
    """The Python back-end's output: two functions' source, and what they call by name."""

    forward: str
    value_and_grad: str
    bindings: dict[str, Any]

    @property
    def text(self) -> str:
        return self.forward + "\n\n" + self.value_and_grad


def python_source(program: ir.Program, careful: bool = False) -> Generated:
    """Python source defining `forward(x0, ..)` and `value_and_grad(x0, ..)` for `program`,
    and the ops' forward functions it calls, by the names it calls them (`Printer`).

    `careful=True` writes each product of the chain rule as eager `backward` takes it, 0 when
    either factor is 0 (so 0 * inf is 0, not nan): `a * b if a and b else 0.0`.
    """
    printer = Printer()
    forward, backward = [], []
    for eq in program.equations:
        line = printer.line(eq)
        if careful and eq.out in program.products:
            a, b = (printer.operand(x) for x in eq.inputs)
            line = f"{eq.out.name} = {a} * {b} if {a} and {b} else 0.0"
        if _in_forward(eq):
            forward.append(line)
        else:
            backward.append(line)
    params = ", ".join(v.name for v in program.inputs)
    out = printer.operand(program.outputs[0])
    grads = [printer.operand(g) for g in program.gradients]
    returned = grads[0] if len(grads) == 1 else f"({', '.join(grads)})"
    forward_source = "\n".join(
        [f"def forward({params}):", *_indent(forward), f"    return {out}", ""]
    )
    value_and_grad_source = "\n".join(
        [
            f"def value_and_grad({params}):",
            "    # forward: one line per node",
            *_indent(forward),
            "    # backward: the chain rule, from the output back: d(node) = sum over its users",
            "    # of d(user) * d(user)/d(node)",
            *_indent(backward),
            f"    return {out}, {returned}",
            "",
        ]
    )
    bindings = {name: op.forward for name, op in printer.ops_by_name().items()}
    return Generated(forward_source, value_and_grad_source, bindings)


def _in_forward(eq: ir.Equation) -> bool:
    """Whether the equation belongs to the forward pass (the output depends on it alone)."""
    return eq.out.kind != "grad"


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


_WRITING_GRADIENTS = threading.Lock()

LONG_PROGRAM = 20_000
"""A program of more equations than this runs by `Interpreter`, not as compiled source."""


class Interpreter:
    """A program run by a loop over its equations: the Python back-end for long programs.

    CPython compiles about 2 MB of source a second and holds the whole syntax tree meanwhile:
    the 266,664 lines of a 100,000-node graph take seconds and over 500 MB to compile, more
    than tracing and differentiating it. So a long program is run as data, as JAX's
    `eval_jaxpr` runs a jaxpr: each equation's result is the op's forward applied to the
    values of its inputs, kept in a dict by variable. The function is the op's forward, the
    one the eager engine and the generated source call (`x + y` is `float.__add__(x, y)`,
    `sum((w0 * x0, ..))` is `dot(w0, .., x0, ..)`), so the numbers are those of the compiled
    source, bit for bit. Nothing is prepared, so the first call costs no more than the
    others; each costs a few times what the compiled source would.
    """

    def __init__(self, program: ir.Program, careful: bool = False) -> None:
        self.program = program
        self.careful = careful
        self._forward_equations: list[ir.Equation] | None = None  # found on first use

    def _run(self, xs: Sequence[float], equations: list[ir.Equation]) -> _Values:
        values = _Values(zip(self.program.inputs, xs, strict=True))
        read = values.__getitem__
        if not self.careful:
            for eq in equations:
                values[eq.out] = eq.op.forward(*map(read, eq.inputs), *eq.params)
            return values
        for eq in equations:
            forward = _careful_product if eq.out in self.program.products else eq.op.forward
            values[eq.out] = forward(*map(read, eq.inputs), *eq.params)
        return values

    def forward(self, *xs: float) -> float:
        if self._forward_equations is None:
            self._forward_equations = [eq for eq in self.program.equations if _in_forward(eq)]
        return self._run(xs, self._forward_equations)[self.program.outputs[0]]

    def value_and_grad(self, *xs: float) -> tuple[float, Any]:
        values = self._run(xs, self.program.equations)
        grads = tuple(map(values.__getitem__, self.program.gradients))
        return values[self.program.outputs[0]], grads[0] if len(grads) == 1 else grads


class _Values(dict):
    """The interpreter's values by variable; a constant, which is no key, is its own value."""

    def __missing__(self, constant: float) -> float:
        return constant


def _careful_product(a: float, b: float) -> float:
    """A product of the chain rule as eager `backward` takes it: 0 if either factor is 0."""
    return a * b if a and b else 0.0
