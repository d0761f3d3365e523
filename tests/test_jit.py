"""autograd_core.jit: traced once, replayed as generated Python, with the eager engine's numbers.

Every op of the op table is enumerated, so a new op is checked here without a new test.
"""

import inspect
import io
import itertools
import keyword
import math
import tokenize

import pytest

from autograd_core import OPS, Op, Value, dot, jit, value_and_grad, vsum
from autograd_core.ops import RULE_FUNCTIONS
from autograd_core.value import _apply

POINTS = (-1.3, -0.4, 0.6, 1.7)  # away from the kinks of relu and abs at 0
NARY_SIZES = (2, 4)  # vsum and dot take any number of inputs: tried with 2 and 4


def close(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


def assert_same(jitted: tuple, eager: tuple) -> None:
    (value, grads), (eager_value, eager_grads) = jitted, eager
    grads = grads if isinstance(grads, tuple) else (grads,)
    eager_grads = eager_grads if isinstance(eager_grads, tuple) else (eager_grads,)
    assert close(value, eager_value), (value, eager_value)
    assert len(grads) == len(eager_grads)
    for g, e in zip(grads, eager_grads, strict=True):
        assert close(g, e), (grads, eager_grads)


def arity(op: Op) -> int | None:
    """How many inputs op takes, from its rule `partials(out, *inputs)`; None if n-ary."""
    inputs = list(inspect.signature(op.partials).parameters.values())[1:]
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in inputs):
        return None
    return len(inputs)


def points_for(op: Op) -> list[tuple[float, ...]]:
    """Every combination of sample points the op is defined at (log needs x > 0, ...)."""
    n = arity(op)
    sizes = NARY_SIZES if n is None else (n,)
    points = []
    for size in sizes:
        for xs in itertools.product(POINTS, repeat=size):
            try:
                op.forward(*xs)
            except (ValueError, ZeroDivisionError, OverflowError):
                continue
            points.append(xs)
    return points


# -- the same numbers as the eager engine ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPS))
def test_jit_gives_eager_value_and_grad_for_every_op(name):
    op = OPS[name]
    points = points_for(op)
    assert points, f"no sample point is in the domain of {name}"
    for size in {len(xs) for xs in points}:

        def f(*xs):
            return _apply(op, *xs)

        traced = jit(f)  # traced at the first point, replayed at the others
        for xs in (xs for xs in points if len(xs) == size):
            assert_same(traced.value_and_grad(*xs), value_and_grad(f)(*xs))
            assert close(traced(*xs), f(*map(Value, xs)).data)


def neuron(w0, w1, b, x0, x1):
    return dot([w0, w1, b], [x0, x1, 1.0]).tanh()


def mlp_hinge(w0, w1, w2, w3, v0, v1, x0, x1):
    hidden = [dot([w0, w1], [x0, x1]).relu(), dot([w2, w3], [x0, x1]).relu()]
    score = dot([v0, v1], hidden)
    return (1.0 - score).relu() + 1e-4 * dot([w0, w1, w2, w3, v0, v1], [w0, w1, w2, w3, v0, v1])


def reused(a):
    return a * a * a + a  # a node used many times: the sum over all paths


def everything(x, y):
    z = (x * y - x / y + 2.0 ** (x * 0.3) + abs(x) ** 1.5 + (x * x + 1.0) ** y).sigmoid()
    return z * (x.sin() + y.cos() - (-y).exp().log() + vsum([x, y, z], start=3.0).sqrt())


def shared(a, b):
    # Nodes used several times, numbers on either side of every operator, both relu branches.
    c = a * b + 2.0
    d = c * c - 3 * a / (1 + b * b)
    e = (d - c).relu() + (c - d).relu() + abs(a - b)
    return e * c + d**2 / 10.0 - 2**b


COMPOSITES = [
    (neuron, [(0.3, -0.8, 0.1, 1.2, -0.5), (-1.1, 0.4, 0.9, 0.2, 0.7)]),
    (
        mlp_hinge,
        [(0.5, -0.3, 0.8, 0.2, 1.1, -0.7, 0.4, -1.2), (0.1, 0.9, -0.6, 0.3, -0.2, 1.4, 1.0, 0.5)],
    ),
    (reused, [(1.5,), (-0.7,)]),
    (everything, [(0.7, 1.3), (1.9, 0.4)]),
    (shared, [(-4.0, 2.0), (1.5, -0.5)]),
]


@pytest.mark.parametrize(("f", "points"), COMPOSITES, ids=[f.__name__ for f, _ in COMPOSITES])
def test_jit_gives_eager_value_and_grad_for_composite_functions(f, points):
    traced = jit(f)
    for xs in points:
        assert_same(traced.value_and_grad(*xs), value_and_grad(f)(*xs))


def test_argument_the_output_does_not_depend_on_gets_zero():
    assert jit(lambda x, y: 2.0 * x).value_and_grad(3.0, 4.0) == (6.0, (2.0, 0.0))


def test_function_returning_an_argument_or_a_constant():
    assert jit(lambda x: x).value_and_grad(3.0) == (3.0, 1.0)
    assert jit(lambda x: 5.0).value_and_grad(3.0) == (5.0, 0.0)


def test_non_finite_constant_is_printed_as_a_name_the_source_defines():
    traced = jit(lambda x: x + Value(math.inf))
    assert traced.value_and_grad(1.0) == (math.inf, 1.0)
    assert "inf" in traced.source


def test_graph_deeper_than_the_recursion_limit_compiles():
    def deep(x):
        for _ in range(5_000):
            x = x * 1.0001
        return x

    value, grad = jit(deep).value_and_grad(1.0)
    assert value == pytest.approx(1.0001**5_000, rel=1e-9)
    assert grad == pytest.approx(1.0001**5_000, rel=1e-9)


def test_wide_dot_is_one_forward_line_that_compiles():
    def wide(x):
        return dot([x] * 10_000, [Value(0.5)] * 10_000)

    traced = jit(wide)
    assert traced.value_and_grad(2.0) == (10_000.0, 5_000.0)
    forward = traced.source.split("\n\n\n")[0].splitlines()
    assert len(forward) == 3  # def, the sum of 10,000 products, return


# -- the source: readable, and made only of generated text -------------------------------------


def test_source_reads_as_the_chain_rule():
    traced = jit(lambda x, y: x * y + y.exp())
    traced(1.0, 2.0)
    assert traced.source == (
        "def forward(x0, x1):\n"
        "    v0 = x0 * x1\n"
        "    v1 = exp(x1)\n"
        "    v2 = v0 + v1\n"
        "    return v2\n"
        "\n"
        "\n"
        "def value_and_grad(x0, x1):\n"
        "    # forward: one line per node\n"
        "    v0 = x0 * x1\n"
        "    v1 = exp(x1)\n"
        "    v2 = v0 + v1\n"
        "    # backward: the chain rule, from the output back: d(node) = sum over its users\n"
        "    # of d(user) * d(user)/d(node)\n"
        "    dv2 = 1.0\n"
        "    dv1 = dv2\n"
        "    dv0 = dv2\n"
        "    dx0 = dv0 * x1\n"
        "    dx1 = sum((dv1 * v1, dv0 * x0))\n"
        "    return v2, (dx0, dx1)\n"
    )


def test_dot_is_written_out_as_a_sum_without_products_by_one():
    # A neuron's bias pairs with the constant input 1.0: neither `b * 1.0` nor `dv * 1.0`.
    traced = jit(neuron)
    traced(0.3, -0.8, 0.1, 1.2, -0.5)
    assert "v0 = sum((x0 * x3, x1 * x4, x2))" in traced.source
    assert "dx2 = dv0\n" in traced.source
    assert "* 1.0" not in traced.source
    assert "1.0 *" not in traced.source


EVIL = "evil'); import os #"


def labelled_with_evil(x, y):
    x.label = EVIL
    y.label = 'y"""\n__import__("os")'
    c = Value(2.0, label=EVIL + " constant")
    z = x * c + y
    z.label = "z); exit() #"
    out = z.tanh()
    out.label = EVIL
    return out


def names_and_strings(source: str) -> tuple[set[str], list[str]]:
    names, strings = set(), []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME:
            names.add(token.string)
        elif token.type == tokenize.STRING:
            strings.append(token.string)
    return names, strings


def test_source_contains_no_label_even_a_malicious_one():
    traced = jit(labelled_with_evil)
    assert traced.value_and_grad(0.5, -0.2) == value_and_grad(labelled_with_evil)(0.5, -0.2)
    source = traced.source
    for fragment in ("evil", "import", "os", "exit", "__", '"', "'", "label"):
        assert fragment not in source


@pytest.mark.parametrize(("f", "points"), COMPOSITES, ids=[f.__name__ for f, _ in COMPOSITES])
def test_source_holds_only_generated_names_numbers_and_rule_functions(f, points):
    traced = jit(f)
    traced(*points[0])
    names, strings = names_and_strings(traced.source)
    assert strings == []
    generated = {n for n in names if n[:1] in "xvd" and n.lstrip("dxv").isdigit()}
    allowed = set(RULE_FUNCTIONS) | {"abs", "sum", "inf", "nan", "forward", "value_and_grad"}
    python = {n for n in names if keyword.iskeyword(n)}
    assert python <= {"def", "return"}
    assert names - generated - python <= allowed, names - generated - python - allowed


def test_source_before_the_first_call_raises():
    with pytest.raises(RuntimeError, match="nothing traced yet: call the jitted function once"):
        _ = jit(lambda x: x * x).source


# -- what tracing freezes, and what it keeps ---------------------------------------------------


def test_wrong_number_of_arguments_raises_type_error():
    traced = jit(lambda x, y: x * y)
    traced(1.0, 2.0)
    with pytest.raises(TypeError, match=r"traced with 2 argument\(s\), got 3"):
        traced.value_and_grad(1.0, 2.0, 3.0)
    with pytest.raises(TypeError, match=r"traced with 2 argument\(s\), got 1"):
        traced(1.0)


def test_python_control_flow_on_data_is_frozen_at_trace_time():
    # As in JAX: the branch taken by the first call is the one the generated code replays.
    def f(x):
        return x * x if x > 0 else -x

    traced = jit(f)
    assert traced.value_and_grad(2.0) == (4.0, 4.0)
    assert traced.value_and_grad(-3.0) == (9.0, -6.0)  # f itself would give (3.0, -1.0)
    assert value_and_grad(f)(-3.0) == (3.0, -1.0)


def test_ops_with_a_kink_are_not_frozen():
    # relu chooses its branch inside the op, at run time: only Python `if`s are frozen.
    traced = jit(lambda x: x.relu())
    assert traced.value_and_grad(2.0) == (2.0, 1.0)
    assert traced.value_and_grad(-3.0) == (0.0, 0.0)


def test_closed_over_values_are_frozen_as_constants():
    scale = Value(2.0)
    offset = 1.0
    traced = jit(lambda x: x * scale + offset)
    assert traced.value_and_grad(3.0) == (7.0, 2.0)
    scale.data, offset = 5.0, 100.0
    assert traced.value_and_grad(3.0) == (7.0, 2.0)


def test_domain_errors_still_raise_in_jitted_code():
    log = jit(lambda x: x.log())
    assert log(1.0) == 0.0
    with pytest.raises(ValueError, match=r"log domain error: log\(-1.0\)"):
        log.value_and_grad(-1.0)
    sqrt = jit(lambda x: (x - 1.0).sqrt())
    sqrt(2.0)
    with pytest.raises(ValueError, match="sqrt domain error"):
        sqrt(0.0)
    divide = jit(lambda x, y: x / y)
    divide(1.0, 2.0)
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        divide.value_and_grad(1.0, 0.0)


def test_errors_point_at_the_generated_line():
    log = jit(lambda x: (x * 2.0).log())
    log(1.0)
    with pytest.raises(ValueError) as error:
        log(-1.0)
    generated = [frame for frame in error.traceback if str(frame.path).startswith("<jit-")]
    assert generated
    assert "log(v0)" in str(generated[0].statement)
