"""autograd_core.compiler.jit: traced once into a program, replayed as generated Python, with the
eager engine's numbers exactly (==, not approximately).

Every op of the op table is enumerated and random expression graphs are drawn over all of them
(the graphs of test_properties), so a new op is checked here without a new test.
"""

import gc
import importlib
import io
import keyword
import linecache
import math
import re
import tokenize

import numpy as np
import pytest
from helpers import (
    DOMAIN_ERRORS,
    build,
    every_node_counts,
    leaf_values,
    points_for,
    steps,
    table_op,
)
from hypothesis import HealthCheck, given, settings

from autograd_core import OPS, Value, dot, jit, ops, value_and_grad, vsum

# The module (the package's `jit` is the function of the same name).
jit_module = importlib.import_module("autograd_core.compiler.jit")


def identical(a: float, b: float) -> bool:
    """The same float: equal, or both nan (an op such as log_or_nan gives nan on purpose)."""
    return a == b or (math.isnan(a) and math.isnan(b))


def as_tuple(grads) -> tuple:
    return grads if isinstance(grads, tuple) else (grads,)


def assert_same(jitted: tuple, eager: tuple) -> None:
    """The jitted (value, grads) are exactly the eager ones."""
    (value, grads), (eager_value, eager_grads) = jitted, eager
    grads, eager_grads = as_tuple(grads), as_tuple(eager_grads)
    assert identical(value, eager_value), (value, eager_value)
    assert len(grads) == len(eager_grads)
    for g, e in zip(grads, eager_grads, strict=True):
        assert identical(g, e), (grads, eager_grads)


# -- the same numbers as the eager engine ------------------------------------------------------


@pytest.fixture(params=["compiled", "interpreted"])
def back_end(request, monkeypatch):
    """Run each test on the compiled source, and again by the interpreter (every program
    counted as long)."""
    if request.param == "interpreted":
        monkeypatch.setattr(jit_module, "LONG_PROGRAM", 0)
    return request.param


@pytest.mark.parametrize("name", sorted(OPS))
def test_jit_gives_eager_value_and_grad_for_every_op(name, back_end):
    op = table_op(name)
    points = points_for(op)
    assert points, f"no sample point is in the domain of {name}"
    for size in {len(xs) for xs in points}:

        def f(*xs):
            return op(*xs)  # an op applied to Values makes a node

        traced = jit(f)  # traced at the first point, replayed at the others
        for xs in (xs for xs in points if len(xs) == size):
            assert_same(traced.value_and_grad(*xs), value_and_grad(f)(*xs))
            assert identical(traced(*xs), f(*map(Value, xs)).data)


# (The back end is the same for every example: the fixture's patch holds for all of them.)
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(leaf_values, steps)
def test_jit_gives_eager_value_and_grad_exactly_on_random_graphs(back_end, leaves, steps):
    f = every_node_counts(build(leaves, steps))
    traced = jit(f)
    # The trace point, then points it was not traced at, infinities and all: the program is
    # replayed there.
    for xs in (leaves, [0.9 * x for x in leaves], [x + 0.25 for x in leaves], [-x for x in leaves]):
        try:
            eager = value_and_grad(f)(*xs)
        except DOMAIN_ERRORS as error:
            # The equations run in the order eager made the nodes: the same first error.
            with pytest.raises(type(error)) as raised:
                traced.value_and_grad(*xs)
            assert str(raised.value) == str(error)
            continue
        assert_same(traced.value_and_grad(*xs), eager)
        assert identical(traced(*xs), eager[0])


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
def test_jit_gives_eager_value_and_grad_for_composite_functions(f, points, back_end):
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
    assert "v0 = x0 + inf" in traced.source
    minus = jit(lambda x: x * Value(-math.inf))
    assert minus.value_and_grad(2.0) == (-math.inf, -math.inf)
    assert "x0 * (-inf)" in minus.source


def test_inf_and_nan_flow_through_jitted_code_as_in_eager():
    # No domain check fires on inf or nan (only on finite numbers outside a domain), so both
    # engines carry them through: the same non-numbers in the same places.
    def f(x, y):
        return (x * y).tanh() + (x - y).relu()

    traced = jit(f)
    traced(0.5, 0.25)
    for xs in ((math.inf, 1.0), (math.nan, 1.0), (1.0, -math.inf), (math.inf, math.inf)):
        assert_same(traced.value_and_grad(*xs), value_and_grad(f)(*xs))


@pytest.mark.parametrize(
    ("f", "xs", "expected"),
    [
        (lambda x: x.relu().sqrt(), (-1.0,), (0.0, 0.0)),  # relu' = 0 times sqrt'(0) = inf
        (lambda x: ops.INV(x.relu()) + x, (-2.0,), (math.inf, 1.0)),  # 0 times -inf
        (lambda x, y: (x * y).tanh(), (math.inf, 2.0), (1.0, (0.0, 0.0))),  # tanh' = 0 times inf
        # Gradients inf and -inf: no nan, though their sum (the quick test for one) is nan.
        (
            lambda x, y: x * Value(math.inf) - y * Value(math.inf),
            (1.0, -1.0),
            (math.inf, (math.inf, -math.inf)),
        ),
    ],
    ids=["relu-sqrt", "relu-inv", "tanh-inf", "inf-and-minus-inf"],
)
def test_zero_times_an_infinity_in_the_chain_rule_is_zero_as_in_eager(f, xs, expected, back_end):
    traced = jit(f)
    assert traced.value_and_grad(*xs) == value_and_grad(f)(*xs) == expected
    assert "if" not in traced.source  # the readable source is the plain one


def test_a_partial_that_is_the_number_zero_stops_an_infinite_gradient_as_in_eager():
    # step' is the constant 0: eager adds no term for it, so 1/step(x) at x < 0, whose
    # gradient is -inf, gives d/dx = 0, not 0 * -inf = nan. The program writes no term either.
    def f(x):
        return ops.INV(ops.STEP(x)) + x

    traced = jit(f)
    assert traced.value_and_grad(-1.0) == value_and_grad(f)(-1.0) == (math.inf, 1.0)
    assert "step" not in traced.source.split("# backward")[1]


def test_graph_deeper_than_the_recursion_limit_compiles():
    def deep(x):
        for _ in range(5_000):
            x = x * 1.0001
        return x

    value, grad = jit(deep).value_and_grad(1.0)
    assert value == value_and_grad(deep)(1.0)[0]
    assert value == pytest.approx(1.0001**5_000, rel=1e-9)
    assert grad == pytest.approx(1.0001**5_000, rel=1e-9)


def test_wide_dot_is_one_forward_line_that_compiles():
    def wide(x):
        return dot([x] * 10_000, [Value(0.5)] * 10_000)

    traced = jit(wide)
    assert traced.value_and_grad(2.0) == (10_000.0, 5_000.0)
    forward = traced.source.split("\n\n\n")[0].splitlines()
    assert len(forward) == 3  # def, the sum of 10,000 products, return


# -- the source: printed from the program, readable, made only of generated text ---------------


def test_source_reads_as_the_chain_rule():
    traced = jit(lambda x, y: x * y + y.exp())
    traced(1.0, 2.0)
    # The backward pass of a sum passes the gradient 1.0 on unchanged, so d(v0) = d(v1) = 1.0
    # need no line; dx0 = 1.0 * x1 is x1 itself; dx1 = 1.0 * v1 + 1.0 * x0.
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
        "    dx1 = v1 + x0\n"
        "    return v2, (x1, dx1)\n"
    )


def test_dot_is_written_out_as_a_sum_without_products_by_one():
    # A neuron's bias pairs with the constant input 1.0: neither `b * 1.0` nor `dv * 1.0`.
    traced = jit(neuron)
    traced(0.3, -0.8, 0.1, 1.2, -0.5)
    assert "v0 = sum((x0 * x3, x1 * x4, x2))" in traced.source
    assert "dv0 = 1.0 - t2\n" in traced.source  # tanh' = 1 - tanh^2, from the op table's rule
    assert "return v1, (dx0, dx1, dv0, dx3, dx4)\n" in traced.source  # d(bias) is d(dot)
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
    for text in (traced.source, str(traced.program)):
        for fragment in ("evil", "import", "os", "exit", "__", '"', "'", "label"):
            assert fragment not in text


@pytest.mark.parametrize(("f", "points"), COMPOSITES, ids=[f.__name__ for f, _ in COMPOSITES])
def test_source_holds_only_generated_names_numbers_and_op_table_keys(f, points):
    traced = jit(f)
    traced(*points[0])
    names, strings = names_and_strings(traced.source)
    assert strings == []
    generated = {n for n in names if re.fullmatch(r"d?[xvt]\d+", n)}
    allowed = set(OPS) | {"sum", "inf", "nan", "forward", "value_and_grad"}
    python = {n for n in names if keyword.iskeyword(n)}
    assert python <= {"def", "return"}
    rest = names - generated - python
    assert rest <= allowed, rest - allowed


def test_an_op_with_parameters_is_called_with_them_after_its_inputs():
    traced = jit(everything)
    traced(0.7, 1.3)
    assert "v7 = power_of(v6, 1.5)" in traced.source
    assert "v7 = power_of[exponent=1.5] v6" in str(traced.program)
    (equation,) = [eq for eq in traced.program.equations if eq.out.name == "v7"]
    assert (equation.op, equation.params) == (ops.POWER_OF, (1.5,))


def test_a_function_of_several_outputs_is_refused_as_grad_refuses_it():
    def f(x):
        return [x * 2.0, x * 3.0]

    with pytest.raises(TypeError, match="the function must return a Value or a number, got list"):
        value_and_grad(f)(1.0)
    for call in (jit(f), jit(f).value_and_grad):
        with pytest.raises(TypeError, match="must return a Value or a number, got list"):
            call(1.0)


def test_a_gradient_hook_inside_the_function_is_refused_not_skipped():
    def f(x):
        y = x.sin()
        y.register_hook(lambda g: 0.0)  # cut the path through y
        return y * x

    assert value_and_grad(f)(1.5)[1] == math.sin(1.5)  # only the direct path counts
    message = r"cannot trace a gradient hook: a Value the function uses has one \(computed by 'sin'"
    with pytest.raises(ValueError, match=message):
        jit(f).value_and_grad(1.5)
    with pytest.raises(ValueError, match=message):
        jit(f).batched(np.array([1.5]))


def test_the_backward_pass_takes_zero_times_inf_as_zero_as_eager_does():
    def f(x):
        return x.relu().sqrt()  # at x = -1: relu'(x) = 0 times sqrt'(0) = inf

    assert jit(f).value_and_grad(-1.0) == value_and_grad(f)(-1.0) == (0.0, 0.0)


def test_source_and_program_before_the_first_call_raise():
    with pytest.raises(RuntimeError, match="nothing traced yet: call the jitted function once"):
        _ = jit(lambda x: x * x).source
    with pytest.raises(RuntimeError, match="nothing traced yet: call the jitted function once"):
        _ = jit(lambda x: x * x).program


# -- what tracing freezes, and what it keeps ---------------------------------------------------


def test_wrong_number_of_arguments_raises_type_error():
    traced = jit(lambda x, y: x * y)
    traced(1.0, 2.0)
    with pytest.raises(TypeError, match=r"traced with 2 argument\(s\), got 3"):
        traced.value_and_grad(1.0, 2.0, 3.0)
    with pytest.raises(TypeError, match=r"traced with 2 argument\(s\), got 1"):
        traced(1.0)
    with pytest.raises(TypeError, match=r"traced with 2 argument\(s\), got 1"):
        traced.batched(np.array([1.0, 2.0]))


@pytest.mark.parametrize(
    ("argument", "type_name"),
    [(True, "bool"), (np.bool_(False), "bool"), (3 + 0j, "complex"), (Value(2.0), "Value")],
    ids=["bool", "numpy-bool", "complex", "Value"],
)
def test_jit_refuses_what_the_tracing_call_refuses(argument, type_name):
    traced = jit(lambda x: x * x)
    traced(1.5)
    with pytest.raises(TypeError, match=f"takes real numbers .*got {type_name}"):
        traced(argument)
    with pytest.raises(TypeError, match=f"takes real numbers .*got {type_name}"):
        traced.value_and_grad(argument)
    # Refused as the first call too, before anything is traced.
    fresh = jit(lambda x: x * x)
    with pytest.raises(TypeError, match=f"takes real numbers .*got {type_name}"):
        fresh(argument)
    with pytest.raises(RuntimeError, match="nothing traced yet"):
        _ = fresh.source


def test_an_int_too_large_for_a_float_is_refused_with_a_value_error():
    traced = jit(lambda x: x * 2.0)
    with pytest.raises(ValueError, match="too large for a float"):
        traced(10**400)  # refused by the tracing call
    assert traced(3) == 6.0
    with pytest.raises(ValueError, match="too large for a float"):
        traced.value_and_grad(-(10**400))  # and after it
    with pytest.raises(TypeError, match="takes arrays of real numbers .*array of object"):
        traced.batched([10**400])


def test_numpy_float32_is_computed_in_float64_and_returns_python_floats():
    def f(x):
        return x * x + x.tanh()

    x = np.float32(0.3)  # 0.30000001192092896 as a float64
    traced = jit(f)
    value = traced(x)
    jitted_value, jitted_grad = traced.value_and_grad(x)
    assert type(value) is float and type(jitted_value) is float and type(jitted_grad) is float
    eager_value, eager_grad = value_and_grad(f)(float(x))
    assert value == jitted_value == eager_value
    assert jitted_grad == eager_grad
    # float32 arithmetic would round to 24 bits: the float64 answer is not a float32 number.
    assert float(np.float32(eager_value)) != eager_value


def test_python_control_flow_on_data_is_frozen_at_trace_time():
    # As in JAX: the branch taken by the first call is the one the generated code replays.
    def f(x):
        return x * x if x > 0 else -x

    traced = jit(f)
    assert traced.value_and_grad(2.0) == (4.0, 4.0)
    assert traced.value_and_grad(-3.0) == (9.0, -6.0)  # f itself would give (3.0, -1.0)
    assert value_and_grad(f)(-3.0) == (3.0, -1.0)


def test_f_is_called_once_by_the_first_call_and_never_again():
    calls = []

    def f(x, y):
        calls.append((x, y))
        return (x * y).tanh() + x

    traced = jit(f)
    traced.value_and_grad(2.0, 0.5)
    traced(1.0, 3.0)
    traced.batched(np.array([2.0, 1.0]), 0.5)  # the batched back-end reuses the trace
    assert len(calls) == 1


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
    assert "v0 = x0 * 2.0" in traced.source


def test_domain_errors_still_raise_in_jitted_code():
    log = jit(lambda x: x.log())
    assert log(1.0) == 0.0
    with pytest.raises(ValueError, match=r"log domain error: log\(-1.0\)"):
        log.value_and_grad(-1.0)
    sqrt = jit(lambda x: (x - 1.0).sqrt())
    sqrt(2.0)
    with pytest.raises(ValueError, match=r"sqrt domain error: sqrt\(-1.0\)"):
        sqrt(0.0)
    divide = jit(lambda x, y: x / y)
    divide(1.0, 2.0)
    with pytest.raises(ZeroDivisionError, match="division by zero: 1.0 / 0.0"):
        divide.value_and_grad(1.0, 0.0)
    exp = jit(lambda x: x.exp())
    exp(1.0)
    with pytest.raises(OverflowError, match=r"exp overflow: exp\(1000.0\)"):
        exp(1000.0)


def test_errors_point_at_the_generated_line():
    log = jit(lambda x: (x * 2.0).log())
    log(1.0)
    with pytest.raises(ValueError) as error:
        log(-1.0)
    generated = [frame for frame in error.traceback if str(frame.path).startswith("<jit-")]
    assert generated
    assert "log(v0)" in str(generated[0].statement)


# -- long programs: run by the interpreter, the same numbers -----------------------------------


def test_a_long_program_compiles_no_source_but_still_prints_one():
    def chain(x):
        for _ in range(jit_module.LONG_PROGRAM // 2):
            x = (x * 0.5 + 0.25).tanh()
        return x

    before = _jit_sources()
    traced = jit(chain)
    assert traced.value_and_grad(0.3) == value_and_grad(chain)(0.3)
    assert len(traced.program.equations) > jit_module.LONG_PROGRAM
    assert not _jit_sources() - before  # nothing compiled
    assert traced.source.startswith("def forward(x0):")  # printed when asked for


# -- resources ----------------------------------------------------------------------------------


def _jit_sources() -> set[str]:
    return {name for name in linecache.cache if name.startswith("<jit-")}


def test_source_leaves_linecache_when_the_jitted_function_is_collected():
    before = _jit_sources()
    traced = jit(lambda x, y: (x * y).tanh())
    traced(0.5, 2.0)
    traced.batched(np.array([0.5, 1.0]), np.array([2.0, 3.0]))  # compiles the batched back-end
    mine = _jit_sources() - before
    assert len(mine) >= 2  # the Python source and the batched one
    for name in mine:
        assert "tanh" in "".join(linecache.getlines(name))
    del traced
    gc.collect()
    assert mine.isdisjoint(linecache.cache)


def causal_attention(*x):
    """Four tokens of two numbers, causal self-attention with q = k = v = x (the README's)."""
    tokens = [x[2 * t : 2 * t + 2] for t in range(4)]
    out = 0.0
    for t in range(4):
        logits = [dot(tokens[t], tokens[s]) for s in range(t + 1)]
        total = ops.LOGSUMEXP(*logits)
        weights = [(logit - total).exp() for logit in logits]
        out = out + sum(dot(weights, [tokens[s][j] for s in range(t + 1)]) for j in range(2))
    return out


def test_matrix_source_is_the_batched_program_of_attention_as_two_batched_products():
    f = jit(causal_attention)
    with pytest.raises(RuntimeError, match="nothing traced yet"):
        print(f.matrix_source)
    point = [0.1 * i for i in range(8)]
    assert f(*point) == causal_attention(*map(Value, point)).data
    source = f.matrix_source
    assert "S1 = X.reshape(n, 1, 4, 2) @ X.reshape(n, 1, 4, 2).transpose(0, 1, 3, 2)" in source
    assert "S2 = A2.reshape(n, 1, 4, 4) @ A3.reshape(n, 1, 2, 4).transpose(0, 1, 3, 2)" in source
    assert len(source.splitlines()) < 45
    values, grads = f.batched(*[np.array([x, -x]) for x in point])
    for k, sign in enumerate((1.0, -1.0)):
        value, expected = value_and_grad(causal_attention)(*[sign * x for x in point])
        assert values[k] == pytest.approx(value, abs=1e-12)
        assert [g[k] for g in grads] == pytest.approx(list(expected), abs=1e-12)
