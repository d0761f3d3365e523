"""A traced program as data: a list of equations, printed like a jaxpr and lowered by back-ends.

`trace` runs a function on Values once and turns the graph it built into a `Program`:

    { lambda p0 p1 ; x0 x1 .
      v0 = dot p0 p1 x0 x1
      v1 = tanh v0
      ...
      in (v1) }

Each variable is a parameter (`p`, the same for every sample), an input (`x`, one per
sample), a constant (a number written in place) or the result of one equation. An equation
is one op of the table applied to variables and numbers.

`with_gradients` gives a new program: the traced one followed by the backward pass, as more
equations of the same kind. The chain rule runs node by node from the output back (the walk
eager `backward` runs, `backward.reverse_walk`, taken step for step on the program's
variables), each local partial written down by evaluating the op table's own rule on them:
`Var` has the arithmetic of a number, and what is done to it is recorded in the program being
written, as JAX records into its current trace. So the same table entry that gives eager mode
its partials gives the traced program its backward pass, and a back-end only runs equations.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from ..engine import ops
from ..engine.arithmetic import Arithmetic
from ..engine.backward import NOTHING, counts
from ..engine.modes import enable_grad, mode
from ..engine.value import Value, hooked_nodes
from .batch import Feed, Report, batch_trace

Operand = Any  # a Var or a float constant

_PREFIX = {"param": "p", "input": "x", "temp": "v", "grad": "t"}  # each kind's printed names


class Var(Arithmetic):
    """A variable of a traced program; arithmetic on it records equations in the program being
    written (`Program.recording`)."""

    # `inputs`, `_op`, `params` and `grad` make a variable a node for the chain rule's walk
    # (`_chain_rule`): the inputs, op and op parameters of the equation that computes it (none
    # for a parameter or an input), and its gradient while `with_gradients` writes the backward
    # pass.
    __slots__ = ("name", "kind", "inputs", "_op", "params", "grad")

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        # "param", "input", "temp" (a forward equation's result) or "grad" (the backward
        # pass's: a term, a sum or a partial of the chain rule)
        self.kind = kind
        self.inputs: tuple[Operand, ...] = ()
        self._op: ops.Op | None = None
        self.params: tuple = ()
        self.grad: Operand = 0.0

    def __repr__(self) -> str:
        return self.name

    @staticmethod
    def apply_op(op: ops.Op, args: Sequence[Operand], params: tuple = ()) -> Operand:
        program = _RECORDING.get()
        if program is None:
            raise RuntimeError(
                f"{op.name!r} on a traced variable, while no program is being written: a "
                "variable's arithmetic is recorded as equations of a program, inside "
                "`program.recording()` (as `with_gradients` writes the backward pass)"
            )
        return program.emit(op, [a if isinstance(a, Var) else float(a) for a in args], params)

    @staticmethod
    def _number(x: Operand) -> float:
        # A comparison is where a branch on data starts: refuse it as `bool` does.
        raise TypeError(_NO_TRUTH_VALUE)

    def __bool__(self) -> bool:
        raise TypeError(_NO_TRUTH_VALUE)


_NO_TRUTH_VALUE = (
    "a traced variable has no truth value: a rule or function that branches on data cannot be "
    "traced (write the branch with ops such as STEP or SIGN)"
)


@dataclass(eq=False, slots=True)
class Equation:
    """`out = op(*inputs)`: one op of the table on variables and constants, with the op's
    parameters, if it takes any (`x ** 3` is `power_of` of x with exponent 3.0)."""

    op: ops.Op
    inputs: tuple[Operand, ...]
    out: Var
    params: tuple = ()


@dataclass(eq=False)
class Program:
    """A straight-line program: parameters and inputs in, equations, outputs out.

    `outputs` are the function's results; after `with_gradients`, `gradients[i]` is the
    gradient of `outputs[0]` with respect to `wrt[i]` (a Var, or the constant 0.0), and
    `products` holds the chain rule's products partial * d(user), where eager `backward` takes
    0 times anything (inf, nan) as 0.

    A program traced with `batch=True` may end its inputs with the `feeds` its modules asked
    for and its outputs with their `reports` (see `autograd_core.compiler.batch`).
    """

    params: list[Var] = field(default_factory=list)
    inputs: list[Var] = field(default_factory=list)
    equations: list[Equation] = field(default_factory=list)
    outputs: list[Operand] = field(default_factory=list)
    wrt: list[Var] = field(default_factory=list)
    gradients: list[Operand] = field(default_factory=list)
    products: set[Var] = field(default_factory=set)
    feeds: list[Feed] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    _count: int = 0

    def new_var(self, kind: str) -> Var:
        """A new variable of this kind, named p0.. (parameters), x0.. (inputs), v0.. (forward
        results) or t0.. (the backward pass's); only the printed text reads the names."""
        if kind == "param":
            return Var(f"{_PREFIX[kind]}{len(self.params)}", kind)
        if kind == "input":
            return Var(f"{_PREFIX[kind]}{len(self.inputs)}", kind)
        self._count += 1
        return Var(f"{_PREFIX[kind]}{self._count - 1}", kind)

    @contextmanager
    def recording(self) -> Iterator[Program]:
        """Within the block, arithmetic on variables appends equations to this program."""
        token = _RECORDING.set(self)
        try:
            yield self
        finally:
            _RECORDING.reset(token)

    def emit(self, op: ops.Op, inputs: Sequence[Operand], params: tuple = ()) -> Operand:
        """Record `op(*inputs)` and return its result, folding what needs no equation where it
        is exact: an op of constants is computed, x * 1.0 is x, x + 0.0 is x."""
        for x in inputs:
            if type(x) is Var:
                break
        else:
            return op.forward(*inputs, *params)
        if op is ops.MUL or op is ops.ADD:
            x, y = inputs
            unit = 1.0 if op is ops.MUL else 0.0
            if type(y) is not Var and y == unit:
                return x
            if type(x) is not Var and x == unit:
                return y
        return self.equation(op, tuple(inputs), self.new_var("grad"), params)

    def equation(
        self, op: ops.Op, inputs: tuple[Operand, ...], out: Var, params: tuple = ()
    ) -> Var:
        """Append `out = op(*inputs)` (with the op's parameters) and return `out`."""
        out.inputs, out._op, out.params = inputs, op, params
        self.equations.append(Equation(op, inputs, out, params))
        return out

    def product(self, local: Operand, g: Operand) -> Operand:
        """`local * g` as a product of the chain rule (see `products`)."""
        term = self.emit(ops.MUL, (local, g))
        if term is not local and term is not g and type(term) is Var:  # not folded away
            self.products.add(term)
        return term

    def __str__(self) -> str:
        """The jaxpr-like text; the inputs a batch trace feeds follow `; fed`, and the outputs
        it reports `; reported`."""
        n_fed = sum(len(feed.values) for feed in self.feeds)
        n_reported = sum(len(report.values) for report in self.reports)
        own_inputs = self.inputs[: len(self.inputs) - n_fed]
        params = " ".join(v.name for v in self.params)
        inputs = " ".join(v.name for v in own_inputs)
        if n_fed:
            inputs += " ; fed " + " ".join(v.name for v in self.inputs[len(own_inputs) :])
        lines = [f"{{ lambda {params} ; {inputs} ."]
        for eq in self.equations:
            operands = " ".join(map(_text, eq.inputs))
            lines.append(f"    {eq.out.name} = {op_label(eq.op, eq.params)} {operands}")
        outputs = self.outputs[: len(self.outputs) - n_reported]
        results = ", ".join(map(_text, [*outputs, *self.gradients]))
        if n_reported:
            reported = self.outputs[len(outputs) :]
            results += " ; reported " + " ".join(map(_text, reported))
        lines.append(f"  in ({results}) }}")
        return "\n".join(lines)


_RECORDING: ContextVar[Program | None] = ContextVar("recording", default=None)
"""The program that arithmetic on variables writes to (`Program.recording`)."""


def op_label(op: ops.Op, params: tuple = ()) -> str:
    """The op's name in the table, with its parameters: `tanh`, `power_of[exponent=3.0]`."""
    key = ops.key_of(op)
    if not params:
        return key
    named = ", ".join(
        f"{name}={value!r}" for name, value in zip(op.parameters, params, strict=True)
    )
    return f"{key}[{named}]"


def _text(x: Operand) -> str:
    return x.name if isinstance(x, Var) else repr(x)


def _is(x: Operand, number: float) -> bool:
    return not isinstance(x, Var) and x == number


# -------------------------------------------------------------------------------------------
# Tracing


@contextmanager
def without_gc() -> Iterator[None]:
    """Hold the cyclic garbage collector while a program is built.

    Tracing makes a few objects per node and frees none, so the collector would run over and
    over, each time walking every object made so far: quadratic time on a large graph. The
    program holds no reference cycles; anything cyclic is collected after the block.

    What the block made is mostly the program, which lives as long as its function: it goes
    straight to the collector's oldest generation (`gc.freeze` then `gc.unfreeze`, which only
    moves lists), where it would arrive anyway after the collector had walked each of its
    objects twice on the way (half a second for a program of 266,664 equations). Not done if
    the application keeps objects frozen: unfreezing would release them too.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def trace(
    f: Callable[..., Any],
    n_inputs: int,
    params: Sequence[Value] = (),
    input_values: Sequence[float] | None = None,
    *,
    batch: bool = False,
) -> Program:
    """Trace `f(*inputs) -> Value or list of Values` into a forward `Program`.

    The inputs are fresh leaves (given `input_values` or 0.5); the Values in `params` that `f`
    reads become parameters of the program; every other leaf becomes a constant. Python
    control flow on data is frozen as it went on this call, as in JAX.

    `batch=True` traces the sample as a stand-in for each sample of a batch, for the batched
    back-end: inside, modules may ask for feeds and reports, which the program's inputs and
    outputs end with (`Program.feeds`, `Program.reports`).
    """
    values = input_values if input_values is not None else [0.5] * n_inputs
    args = [Value(x) for x in values]
    with enable_grad(), batch_trace() if batch else nullcontext() as axis:
        result = f(*args)
    roots = result if isinstance(result, (list, tuple)) else [result]
    roots = [r if isinstance(r, Value) else Value(r) for r in roots]
    if axis is None:
        return from_graph(roots, args, params)
    program = from_graph([*roots, *axis.outputs], [*args, *axis.inputs], params)
    program.feeds, program.reports = axis.feeds, axis.reports
    return program


def from_graph(roots: Sequence[Value], args: Sequence[Value], params: Sequence[Value]) -> Program:
    """The program computing `roots` from the leaves `args` (inputs) and `params`.

    The nodes are written in `backward.topological_order` (of a root joining all `roots`), each
    as it comes: the same depth-first walk with an explicit stack, each node's equation
    appended once all its inputs have theirs. Only computed nodes go on the stack: a leaf
    needs no equation (it is a parameter, an input, or a constant written in place), and a
    layer's nodes read a million weights, which a walk that stacked them would visit one by
    one; a node's inputs are looked up together when it is met (in C), and again when it is
    written only if some were not written then. The parameters' variables are made in one go,
    for the same reason.
    """
    program = Program()
    program.params = _new_vars("param", len(params))
    program.inputs = _new_vars("input", len(args))
    variables: dict[Value, Operand] = dict(zip(params, program.params, strict=True))
    variables.update(zip(args, program.inputs, strict=True))
    stack: list[Any] = list(reversed(roots))
    pop, push, variable = stack.pop, stack.append, variables.__getitem__
    equation, new_var = program.equation, program.new_var
    while stack:
        node = pop()
        if node is _INPUTS_DONE:
            node, inputs = pop(), pop()
            if inputs is None:  # some were not written when the node was met
                inputs = tuple(map(variable, node.inputs))
            variables[node] = equation(node._op, inputs, new_var("temp"), node.params)
        elif node not in variables:  # (not written, and not on the way: a first visit)
            inputs = node.inputs  # (read once: a slice of the node's edges)
            if not inputs:  # a root that is a leaf: a constant
                variables[node] = node.data
                continue
            variables[node] = _ON_THE_WAY
            try:  # every input written already, as a layer's weights and inputs (in C)
                stack += (tuple(map(variable, inputs)), node, _INPUTS_DONE)
            except KeyError:  # some met first: walk them
                stack += (None, node, _INPUTS_DONE)
                # Reversed, so that the first input is walked first (one written already by
                # then is passed over when it comes off the stack).
                for x in reversed(inputs):
                    if x not in variables:
                        if x._edges:  # computed
                            push(x)
                        else:  # a leaf that is not an argument: a constant
                            variables[x] = x.data
    hooked = hooked_nodes()
    if hooked is not None:
        _refuse_hooks(roots, variables, hooked)
    program.outputs = [variables[r] for r in roots]
    return program


def _new_vars(kind: str, n: int) -> list[Var]:
    """n new variables of kind "param" or "input" of a new program, named as `new_var` names
    them (p0.., x0..), made in one go."""
    names = [f"{_PREFIX[kind]}{i}" for i in range(n)]
    return list(map(Var, names, itertools.repeat(kind)))


# Pushed onto the stack just above a node whose inputs are being written (and the inputs'
# variables found when it was met): when it comes off again, every input has its variable.
_INPUTS_DONE = object()

# A node's variable while its inputs are being written (a node on the way is never an input
# of one written then: the graph has no cycles).
_ON_THE_WAY = object()


def _refuse_hooks(
    roots: Sequence[Value], variables: dict[Value, Operand], hooked: dict[int, Any]
) -> None:
    """Refuse a hook on any Value the program reads: a root, a computed node or an input of
    one (see `_refuse_hook`)."""
    computed = [v for v, x in variables.items() if isinstance(x, Var) and x.kind == "temp"]
    read = {x for node in computed for x in node.inputs}
    for node in (*roots, *computed, *read):
        if id(node) in hooked:
            _refuse_hook(node)


def _refuse_hook(node: Value) -> None:
    """A hook is Python run on a gradient during a backward pass: generated code has no place
    for it, and a program that silently skipped it would differentiate another function."""
    made_by = f"computed by {node.op!r}" if node.inputs else "an input or a parameter"
    raise ValueError(
        f"cannot trace a gradient hook: a Value the function uses has one ({made_by}"
        f"{f', labelled {node.label!r}' if node.label else ''}), and the traced program would "
        "skip it. Differentiate this function without jit (grad, value_and_grad, backward), "
        "or remove the hook"
    )


# -------------------------------------------------------------------------------------------
# Sums of products as dot products


def fold_sums_of_products(program: Program) -> Program:
    """A new program in which each sum of products is one `dot` equation (`program` itself when
    none is).

    Code written for a micrograd-style Value builds a neuron as a chain of two-input nodes,
    `sum(w * x for w, x in zip(ws, xs)) + b`: n products and n additions, where `nn` writes one
    `dot`. This pass finds such chains (`+` and `sum` over `*`, each intermediate read by the
    chain alone) and writes each as `dot(w1 .. wn, b, x1 .. xn, 1.0)`, so the batched back-end
    sees the layer's matrix product. A term that is not a product joins as itself times 1.0
    (exact); a constant 0.0 term (Python's `sum` starts at 0) is dropped. The dot adds its
    terms left to right, as the chain did, so the numbers are those of the chain (up to the
    order of additions where the chain was a tree). A sum of fewer than two products is left
    as it is, except Python's `sum` of one product (`0 + w * x`, the first position of
    causal attention), a dot of one pair like its longer siblings, and a chain of sums without
    products, which is one `vsum` of all its terms.
    """
    sums = (ops.ADD, ops.VSUM)
    made_by = {eq.out: eq for eq in program.equations}
    # The sums and products a sum reads, then those of them read once (and not a result):
    # their terms join that sum's. Only these are counted, so a program without such sums
    # (a network of `dot` neurons) costs one look at its sums' inputs.
    candidates = {
        x
        for eq in program.equations
        if eq.op in sums
        for x in eq.inputs
        if x in made_by and made_by[x].op in (*sums, ops.MUL)
    }
    if not candidates:
        return program
    uses = dict.fromkeys(candidates, 0)
    for eq in program.equations:
        for x in eq.inputs:
            if x in uses:
                uses[x] += 1
    results = {x for x in (*program.outputs, *program.gradients) if isinstance(x, Var)}
    absorbed = {x for x, count in uses.items() if count == 1 and x not in results}
    folded = _with_equations(program, [])
    changed = False
    for eq in program.equations:
        if eq.op in sums and eq.out not in absorbed:
            written = _folded_sum(eq, absorbed, made_by, folded)
            changed = changed or written is not eq
            eq = written
        folded.equations.append(eq)
    if not changed:  # sums of one product each (a chain of `w * x + b`): nothing to fold
        return program
    eliminate_dead_code(folded)
    return folded


def _folded_sum(
    eq: Equation, absorbed: set[Var], made_by: dict[Var, Equation], folded: Program
) -> Equation:
    """The sum `eq` as a dot of its terms' (w, x) pairs, or eq itself (see
    `fold_sums_of_products`); a dot it needs first is appended to `folded`."""
    pairs = []
    stack = list(reversed(eq.inputs))  # left to right, as the chain adds
    while stack:
        x = stack.pop()
        if x in absorbed and made_by[x].op is ops.MUL:
            pairs.append(made_by[x].inputs)
        elif x in absorbed:
            stack.extend(reversed(made_by[x].inputs))
        elif not (not isinstance(x, Var) and x == 0.0 and repr(x) == "0.0"):
            pairs.append((x, 1.0))
    products = sum(not _is(x, 1.0) for _, x in pairs)
    python_sum = products == len(pairs) == 1 and any(_is(x, 0.0) for x in eq.inputs)
    if products == 0 and len(pairs) > len(eq.inputs):  # a chain of sums: one sum of all terms
        return Equation(ops.VSUM, tuple(w for w, _ in pairs), eq.out)
    if not (products >= 2 or python_sum):
        return eq
    # A computed term (a residual) is added after the dot, so that the dot pairs only
    # weights and biases with the operands: a layer's matrix product.
    kept, rest = [], []
    for w, x in pairs:
        computed = _is(x, 1.0) and isinstance(w, Var) and w.kind != "param"
        (rest.append(w) if computed else kept.append((w, x)))
    weights, operands = zip(*kept, strict=True)
    if not rest:
        return Equation(ops.DOT, (*weights, *operands), eq.out)
    dot = folded.new_var("temp")
    folded.equations.append(Equation(ops.DOT, (*weights, *operands), dot))
    return Equation(ops.VSUM, (dot, *rest), eq.out)


def by_depth(program: Program, depth: dict[Var, int] | None = None) -> Program:
    """A new program with the same equations ordered by depth: the number of equations on the
    longest path from the parameters and inputs to each (ties in program order). `depth` is
    `depths(program)`, if it is known already.

    Equations of one depth do not read each other, so a back-end may run them together; and
    the copies of one computation over different positions of a sequence (a layer applied to
    each token) have the same depth, so they come side by side, each one's inputs computed.
    """
    depth = depths(program) if depth is None else depth
    order = sorted(range(len(program.equations)), key=lambda i: depth[program.equations[i].out])
    return _with_equations(program, [program.equations[i] for i in order])


def depths(program: Program) -> dict[Var, int]:
    """Each equation's result's depth (see `by_depth`); what is not computed has depth 0."""
    depth: dict[Any, int] = {}
    zeros = itertools.repeat(0)
    for eq in program.equations:
        # (map with a default walks a neuron's thousand inputs in C, not in Python)
        depth[eq.out] = 1 + max(map(depth.get, eq.inputs, zeros), default=0)
    return depth


def _with_equations(program: Program, equations: list[Equation]) -> Program:
    """A copy of the program with other equations (the same variables)."""
    return dataclasses.replace(program, equations=equations)


# -------------------------------------------------------------------------------------------
# Reverse mode on programs


def with_gradients(program: Program, wrt: Sequence[Var]) -> Program:
    """A new program: `program` followed by the backward pass of `outputs[0]` with respect to
    `wrt` (`program` itself is left as it was; the two share the forward pass's variables).

    The chain rule is the walk eager `backward(create_graph=True)` runs
    (`backward.reverse_walk`), here on the program's variables (`_chain_rule`): each partial is
    the op table's rule evaluated on them, and each product and sum is an equation. So the
    terms are the same, added in the same order, and a term that is 0 times inf or nan is left
    out alike. Each variable's gradient is named d<var>; equations nothing needs are dropped.
    """
    out = program.outputs[0]
    order: list[Var] = [*program.params, *program.inputs]
    if isinstance(out, Var) and out.kind == "temp":
        # The output's equation and the ones before it (its equation is found by identity).
        last = next(i for i, eq in enumerate(program.equations) if eq.out is out)
        order += [eq.out for eq in program.equations[: last + 1]]
    elif isinstance(out, Var):
        order.remove(out)
        order.append(out)
    result = dataclasses.replace(
        program, equations=list(program.equations), products=set(program.products), wrt=list(wrt)
    )
    if isinstance(out, Var):
        with result.recording():
            _chain_rule(result, order)
    named: set[Var] = set()  # a gradient shared by several variables is named after the first
    for node in reversed(order):
        grad = node.grad
        if isinstance(grad, Var) and grad.kind == "grad" and grad not in named:
            grad.name = "d" + node.name
            named.add(grad)
    result.gradients = [w.grad if isinstance(out, Var) else 0.0 for w in wrt]
    eliminate_dead_code(result)
    return result


def _chain_rule(program: Program, order: list[Var]) -> None:
    """Set `.grad` of every variable of `order` (the output last) to d(output)/d(variable),
    recording the products and sums as equations of `program`.

    This is `backward.reverse_walk(order, 1.0, create_graph=True, product=program.product)`
    taken step for step: a gradient starts as NOTHING, so the first term is the gradient itself;
    each variable with a gradient adds `local * g` to each input's, the terms filtered by
    `backward.counts`, the 0 * inf policy. Written out here because a program knows what the
    general walk must find out at every node: a variable has no number (only a constant does,
    and `counts` only drops a term with a factor 0, so it is asked only where a factor is the
    constant 0), no hook and no stop; on a program of a few hundred thousand equations that is
    most of the walk's time.
    """
    for node in order:
        node.grad = NOTHING
    order[-1].grad = 1.0
    checked = mode.anomaly
    mode.anomaly = False  # as in `_partials_on_graph`: a rule's ops on variables check nothing
    try:
        for node in reversed(order):
            g = node.grad
            if g is NOTHING or not node.inputs:
                continue
            local_grads = node._op.partials(node, *node.inputs, *node.params)  # type: ignore[union-attr]
            g_is_zero = _is(g, 0.0)
            for child, local in zip(node.inputs, local_grads, strict=True):
                if type(child) is not Var:  # a constant: it needs no gradient
                    continue
                if g_is_zero or (type(local) is not Var and local == 0.0):
                    if not counts(child, local, g):
                        continue
                term = program.product(local, g)
                total = child.grad
                child.grad = term if total is NOTHING else program.emit(ops.ADD, [total, term])
    finally:
        mode.anomaly = checked
    for node in order:
        if node.grad is NOTHING:
            node.grad = 0.0


def eliminate_dead_code(program: Program) -> None:
    """Drop the equations whose results no output or gradient needs."""
    live = {x for x in (*program.outputs, *program.gradients) if type(x) is Var}
    kept = []
    for eq in reversed(program.equations):
        if eq.out in live:
            kept.append(eq)
            live.update(eq.inputs)  # constants too: a number is never an equation's result
    program.equations = kept[::-1]
