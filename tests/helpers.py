"""Helpers and hypothesis strategies shared by the engine's tests (as minitorch's strategies).

* the op table's sample points and each op's PyTorch twin, so a new op is checked by adding
  its twin here;
* `assert_close`, the one comparison used against PyTorch;
* random expression programs: a list of steps replayed on Values and on torch tensors, so both
  libraries differentiate the same function;
* `fit_both_ways` and `assert_same_training`: a model trained by `nn.fit` on the eager graph
  and on the batched back-end, and the check that both took the same steps.

Ops are applied through the public API: an op of the table called on Values, `table_op(name)(*xs)`.
"""

import inspect
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import strategies as st

from autograd_core import OPS, Op, Value, gradients, vsum

# Sample inputs, away from the kinks of relu/abs at 0. Points where an op is undefined
# (log of a negative, a negative base to a fractional power) are dropped per op, below.
POINTS = (-1.3, -0.4, 0.6, 1.7)
# n-ary ops (vsum, dot) are sampled with two and with four inputs.
NARY_POINTS = ((0.6, -1.3), POINTS)
STEP = 1e-6  # central-difference step

# The same function in PyTorch, called as twin(torch, *input_tensors); a parametrised op with
# its SAMPLE_PARAMS (below).
TORCH_TWINS = {
    "add": lambda torch, x, y: x + y,
    "sub": lambda torch, x, y: x - y,
    "mul": lambda torch, x, y: x * y,
    "div": lambda torch, x, y: x / y,
    "neg": lambda torch, x: -x,
    "pow": lambda torch, x, y: torch.pow(x, y),
    "power_of": lambda torch, x: x**3.0,
    "exp": lambda torch, x: torch.exp(x),
    "log": lambda torch, x: torch.log(x),
    "sqrt": lambda torch, x: torch.sqrt(x),
    "tanh": lambda torch, x: torch.tanh(x),
    "sigmoid": lambda torch, x: torch.sigmoid(x),
    "relu": lambda torch, x: torch.relu(x),
    "leaky_relu": lambda torch, x: torch.nn.functional.leaky_relu(x, 0.01),
    "abs": lambda torch, x: torch.abs(x),
    "sin": lambda torch, x: torch.sin(x),
    "cos": lambda torch, x: torch.cos(x),
    "vsum": lambda torch, *xs: torch.stack(xs).sum(),
    "dot": lambda torch, *wx: torch.dot(
        torch.stack(wx[: len(wx) // 2]), torch.stack(wx[len(wx) // 2 :])
    ),
    "logsumexp": lambda torch, *xs: torch.logsumexp(torch.stack(xs), 0),
    # The ops the rules use. step and sign are flat: PyTorch gives them no gradient either.
    "step": lambda torch, x: (x > 0).to(x.dtype) + 0.0 * x,
    "sign": lambda torch, x: torch.sign(x),
    "ieee_pow": lambda torch, x, y: torch.pow(x, y),
    "log_or_nan": lambda torch, x: torch.log(x),
    # where(c != 0, v, 0): PyTorch's masked_fill; c gets a zero gradient, as in our rule.
    "mask": lambda torch, c, v: torch.where(c != 0, v, 0.0 * v) + 0.0 * c,
    "inv": lambda torch, x: torch.reciprocal(x),
}


# The parameters the table's parametrised ops are checked with (test_ops checks others too).
SAMPLE_PARAMS = {"power_of": (3.0,), "leaky_relu": (0.01,)}


@dataclass(frozen=True)
class TableOp:
    """An op of the table with its sample parameters, if it takes any, applied to its inputs
    alone: how the tests enumerate the table (`table_op("power_of")(x)` is x ** 3)."""

    op: Op
    params: tuple = ()

    @property
    def name(self) -> str:
        return self.op.name

    def __call__(self, *xs: Any) -> Any:
        return self.op.apply(xs, self.params)

    def forward(self, *xs: float) -> float:
        return self.op.forward(*xs, *self.params)

    def partials(self, out: Any, *xs: Any) -> tuple:
        return self.op.partials(out, *xs, *self.params)

    def on_arrays(self, *xs: Any) -> Any:
        return self.op.on_arrays(*xs, *self.params)


def table_op(name: str) -> TableOp:
    return TableOp(OPS[name], SAMPLE_PARAMS.get(name, ()))


def arity(op: TableOp) -> int | None:
    """How many inputs op takes, read from its rule `partials(out, *inputs, *params)`; None if
    n-ary."""
    inputs = list(inspect.signature(op.op.partials).parameters.values())[1:]
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in inputs):
        return None
    return len(inputs) - len(op.op.parameters)


def forward_or_none(op: Op, xs: tuple[float, ...]) -> float | None:
    """op's forward at xs, or None where the op refuses the input or overflows."""
    try:
        out = op.forward(*xs)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return out if math.isfinite(out) else None


def moved(xs: tuple[float, ...], index: int, by: float) -> tuple[float, ...]:
    return tuple(x + by if i == index else x for i, x in enumerate(xs))


def defined_around(op: Op, xs: tuple[float, ...]) -> bool:
    """op is finite at xs and one step either side in every argument, so it can be checked."""
    nearby = [xs] + [moved(xs, i, d) for i in range(len(xs)) for d in (STEP, -STEP)]
    return all(forward_or_none(op, p) is not None for p in nearby)


def sample_points(op: Op) -> list[tuple[float, ...]]:
    """The inputs op is checked at: every combination of POINTS where op is defined."""
    n = arity(op)
    candidates = NARY_POINTS if n is None else itertools.product(POINTS, repeat=n)
    return [xs for xs in candidates if defined_around(op, xs)]


OP_CASES = [
    pytest.param(name, xs, id=f"{name}{xs}") for name in OPS for xs in sample_points(table_op(name))
]


def central_difference(op: Op, xs: tuple[float, ...], index: int) -> float:
    """(f(x + h) - f(x - h)) / 2h in argument `index`: exact up to O(h^2) and rounding."""
    return (op.forward(*moved(xs, index, STEP)) - op.forward(*moved(xs, index, -STEP))) / (2 * STEP)


def relative_error(ours: float, theirs: float) -> float:
    """|ours - theirs| / max(1, |theirs|): relative for large numbers, absolute near zero."""
    if ours == theirs or (math.isnan(ours) and math.isnan(theirs)):  # agree on inf and nan too
        return 0.0
    return abs(ours - theirs) / max(1.0, abs(theirs))


def assert_close(ours: float, theirs: float, what: str, tolerance: float = 1e-12) -> None:
    """The check used for every comparison with PyTorch."""
    error = relative_error(float(ours), float(theirs))
    assert error <= tolerance, f"{what}: ours {float(ours)!r}, PyTorch {float(theirs)!r}"


def leaves_for(xs: tuple[float, ...]) -> list[Value]:
    return [Value(x) for x in xs]


def derivatives(y, xs: list[Value]) -> list:
    """dy/dx for each x, as differentiable Values; zeros when y is a constant (a float)."""
    if not isinstance(y, Value):
        return [0.0] * len(xs)
    return gradients(y, xs, create_graph=True)


def torch_derivatives(torch, y, xs: list) -> list:
    """The same with torch.autograd.grad(..., create_graph=True)."""
    if not y.requires_grad:
        return [torch.zeros((), dtype=torch.float64)] * len(xs)
    grads = torch.autograd.grad(y, xs, create_graph=True, allow_unused=True)
    return [torch.zeros((), dtype=torch.float64) if g is None else g for g in grads]


def torch_leaves(torch, xs: tuple[float, ...]) -> list:
    return [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]


# -- random expression programs ----------------------------------------------------------------
# Each is a small random graph over one to three leaves, built step by step from every op of the
# table, each step taking its inputs from any node made so far (so nodes are reused). Where a
# step would leave the op's safe domain (log of a negative, an overflow, an infinite partial),
# its inputs are first squashed into (0.5, 1.5) by sigmoid(x) + 0.5.

BOUND = 1e3  # largest |value| or |partial| a step may make before its inputs are squashed
# A program step: ("constant", number) or (op name, indices of its input nodes).
Step = tuple[str, Any]


def replay(program: list[Step], leaves: list, apply, constant) -> list:
    """Every node of the program's graph, leaves first, the root last."""
    nodes = list(leaves)
    for name, argument in program:
        if name == "constant":
            nodes.append(constant(argument))
        else:
            nodes.append(apply(name, [nodes[i] for i in argument]))
    return nodes


def on_values(program: list[Step], leaves: list) -> list[Value]:
    return replay(program, leaves, lambda name, xs: table_op(name)(*xs), Value)


def on_tensors(torch, program: list[Step], leaves: list) -> list:
    def apply(name, xs):
        return TORCH_TWINS[name](torch, *xs)

    def constant(c):
        return torch.tensor(c, dtype=torch.float64)

    return replay(program, leaves, apply, constant)


def safe_result(name: str, inputs: list[Value]) -> Value | None:
    """name applied to inputs, or None if it fails or makes a big, infinite or nan number."""
    try:
        out = table_op(name)(*inputs)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return out if all(abs(n) <= BOUND for n in (out.data, *out.local_grads)) else None


def build(leaves: list[float], steps: list[tuple[str, list[int]]]) -> list[Step]:
    """The program of a random graph: each step applies an op to nodes picked by index."""
    program: list[Step] = []
    nodes = [Value(x) for x in leaves]

    def record(step: Step, node: Value) -> int:
        program.append(step)
        nodes.append(node)
        return len(nodes) - 1

    def squashed(index: int) -> int:
        sigmoid = record(("sigmoid", (index,)), nodes[index].sigmoid())
        half = record(("constant", 0.5), Value(0.5))
        return record(("add", (sigmoid, half)), nodes[sigmoid] + nodes[half])

    for name, picks in steps:
        count = arity(table_op(name)) or len(picks)  # n-ary ops take all four picks
        inputs = tuple(pick % len(nodes) for pick in picks[:count])
        out = safe_result(name, [nodes[i] for i in inputs])
        if out is None:
            inputs = tuple(squashed(i) for i in inputs)
            out = table_op(name)(*(nodes[i] for i in inputs))
        record((name, inputs), out)
    return program


# Leaves are 0 or at least 1e-3 in size: a tiny leaf makes higher derivatives overflow, where
# the two libraries' inf * 0 = nan land in different places.
leaf = st.floats(-2.0, 2.0).filter(lambda x: x == 0.0 or abs(x) >= 1e-3)
leaf_values = st.lists(leaf, min_size=1, max_size=3)
steps = st.lists(
    st.tuples(st.sampled_from(sorted(OPS)), st.lists(st.integers(0, 99), min_size=4, max_size=4)),
    min_size=1,
    max_size=10,
)


# -- sample points and random functions for the jit's back-ends ---------------------------------

NARY_SIZES = (2, 4)  # vsum, dot and logsumexp take any number of inputs: tried with 2 and 4
DOMAIN_ERRORS = (ValueError, ZeroDivisionError, OverflowError)


def points_for(op: Op) -> list[tuple[float, ...]]:
    """Every combination of sample points the op is defined at (log needs x > 0, ...)."""
    n = arity(op)
    sizes = NARY_SIZES if n is None else (n,)
    points = []
    for size in sizes:
        for xs in itertools.product(POINTS, repeat=size):
            try:
                op.forward(*xs)
            except DOMAIN_ERRORS:
                continue
            points.append(xs)
    return points


def every_node_counts(program: list) -> Callable[..., Value]:
    """The sum of every node of a random graph: the graph's root alone may not depend on every
    node, and a node no output needs is not traced (as in JAX), so it could not fail there."""

    def f(*xs):
        return vsum(on_values(program, list(xs))[len(xs) :])

    return f


def fit_both_ways(
    make_model: Callable[[], Any],
    X: Any,
    y: Any,
    make_optimizer: Callable[[list[Value]], Any] | None = None,
    **options: Any,
) -> list[tuple[Any, list[float]]]:
    """(history, trained weights) of `nn.fit` on a fresh `make_model()`: eager, then jit=True.

    The optimizer is `make_optimizer(parameters)`, SGD with momentum by default."""
    from nn import fit, optim

    runs = []
    for use_jit in (False, True):
        model = make_model()
        params = model.parameters()
        if make_optimizer is None:
            optimizer = optim.SGD(params, lr=0.05, momentum=0.9)
        else:
            optimizer = make_optimizer(params)
        history = fit(model, X, y, optimizer=optimizer, progress=False, jit=use_jit, **options)
        runs.append((history, [p.data for p in params]))
    return runs


def assert_same_training(runs: list[tuple[Any, list[float]]], tolerance: float = 1e-12) -> None:
    """The eager and the jit run of `fit_both_ways` lost the same, epoch by epoch, ended with
    the same weights (to `tolerance`, relative above 1) and counted the same accuracies."""
    (eager, eager_weights), (jitted, jitted_weights) = runs
    assert len(jitted.loss) == len(eager.loss)
    for measured, expected in (
        (jitted.loss, eager.loss),
        (jitted.val_loss, eager.val_loss),
        (jitted_weights, eager_weights),
    ):
        assert measured == pytest.approx(expected, rel=tolerance, abs=tolerance)
    assert jitted.accuracy == eager.accuracy
    assert jitted.val_accuracy == eager.val_accuracy


def leaf_central_difference(loss: Callable[[], Value], leaf: Value, eps: float = 1e-6) -> float:
    """(loss(leaf + eps) - loss(leaf - eps)) / (2 eps), the loss rebuilt each time; the leaf
    is left as it was."""
    start = leaf.data
    leaf.data = start + eps
    above = loss().data
    leaf.data = start - eps
    below = loss().data
    leaf.data = start
    return (above - below) / (2.0 * eps)
