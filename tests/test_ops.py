"""The op table, entry by entry.

Every op in `autograd_core.engine.ops.OPS` is enumerated from the table: its local partials are
checked against central differences of its own forward (always), and its value, gradient, second and
third derivatives against PyTorch in float64. A new op is covered by adding it to `OPS` and its
PyTorch twin to `TORCH_TWINS`; no new test is needed.
"""

import math

import pytest
from helpers import (
    OP_CASES,
    TORCH_TWINS,
    arity,
    assert_close,
    central_difference,
    derivatives,
    leaves_for,
    sample_points,
    table_op,
    torch_derivatives,
    torch_leaves,
)

from autograd_core import OPS, Value, grad, hessian


def test_every_op_has_a_pytorch_twin():
    assert set(TORCH_TWINS) == set(OPS)


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_is_checked_at_some_point(name):
    assert sample_points(table_op(name)), f"no sample point where {name} is defined"


@pytest.mark.parametrize(("name", "xs"), OP_CASES)
def test_partials_match_central_differences(name, xs):
    op = table_op(name)
    out = op(*leaves_for(xs))
    assert len(out.local_grads) == len(xs)
    for index, partial in enumerate(out.local_grads):
        numeric = central_difference(op, xs, index)
        assert math.isclose(partial, numeric, rel_tol=1e-6, abs_tol=1e-8), f"d/dx{index}"


@pytest.mark.parametrize(("name", "xs"), OP_CASES)
def test_backward_puts_the_partials_on_the_inputs(name, xs):
    leaves = leaves_for(xs)
    out = table_op(name)(*leaves)
    out.backward()
    assert [leaf.grad for leaf in leaves] == list(out.local_grads)


@pytest.mark.parametrize(("name", "xs"), OP_CASES)
def test_partials_on_values_equal_partials_on_floats(name, xs):
    # The create_graph path re-evaluates the same rule on the graph; it must agree.
    op = table_op(name)
    leaves = leaves_for(xs)
    out = op(*leaves)
    on_values = op.partials(out, *leaves)
    for on_value, on_float in zip(on_values, out.local_grads, strict=True):
        assert float(on_value) == pytest.approx(on_float, rel=1e-15, abs=1e-15)


@pytest.mark.parametrize(("name", "xs"), OP_CASES)
def test_value_and_gradient_match_pytorch(torch, name, xs):
    leaves = leaves_for(xs)
    out = table_op(name)(*leaves)
    out.backward()
    tensors = torch_leaves(torch, xs)
    expected = TORCH_TWINS[name](torch, *tensors)
    expected.backward()
    assert_close(out.data, expected.item(), "value")
    for index, (leaf, tensor) in enumerate(zip(leaves, tensors, strict=True)):
        assert_close(leaf.grad, tensor.grad.item(), f"d/dx{index}")


@pytest.mark.parametrize(("name", "xs"), OP_CASES)
def test_second_and_third_derivatives_match_pytorch(torch, name, xs):
    leaves = leaves_for(xs)
    tensors = torch_leaves(torch, xs)
    ours = [table_op(name)(*leaves)]
    theirs = [TORCH_TWINS[name](torch, *tensors)]
    for order in (1, 2, 3):
        ours = [d for y in ours for d in derivatives(y, leaves)]
        theirs = [d for y in theirs for d in torch_derivatives(torch, y, tensors)]
        for index, (mine, reference) in enumerate(zip(ours, theirs, strict=True)):
            assert_close(mine, reference.item(), f"derivative of order {order}, entry {index}")


@pytest.mark.parametrize(
    ("exponent", "slope", "x"),
    [(-2.0, 0.2, 0.7), (0.5, 0.5, -1.1), (2.5, 0.0, 1.6), (7.0, 1.5, -0.3)],
)
def test_other_parameters_of_parametrised_ops_match_pytorch(torch, exponent, slope, x):
    base, leaky_input = Value(abs(x)), Value(x)
    (base**exponent + leaky_input.leaky_relu(slope)).backward()
    tensors = torch_leaves(torch, (abs(x), x))
    (tensors[0] ** exponent + torch.nn.functional.leaky_relu(tensors[1], slope)).backward()
    assert_close(base.grad, tensors[0].grad.item(), "d/dx x**exponent")
    assert_close(leaky_input.grad, tensors[1].grad.item(), "d/dx leaky_relu(x, slope)")


# -- domain errors are raised at the op, naming the op and the value --------------------------


@pytest.mark.parametrize("x", [0.0, -1.0])
def test_log_of_a_non_positive_number_raises_value_error(x):
    with pytest.raises(ValueError, match=rf"log.*log\({x!r}\)"):
        Value(x).log()


def test_sqrt_of_a_negative_number_raises_value_error():
    with pytest.raises(ValueError, match=r"sqrt.*sqrt\(-1\.0\)"):
        Value(-1.0).sqrt()


def test_division_by_zero_raises_zero_division_error():
    with pytest.raises(ZeroDivisionError, match=r"1\.0 / 0\.0"):
        Value(1.0) / 0


def test_zero_to_a_negative_power_raises_zero_division_error():
    with pytest.raises(ZeroDivisionError, match=r"0\.0 \*\* -1\.0"):
        Value(0.0) ** -1


def test_negative_base_to_a_fractional_power_raises_value_error():
    with pytest.raises(ValueError, match=r"pow.*negative base -2\.0.*0\.5"):
        Value(-2.0) ** 0.5


def test_negative_base_to_an_integer_power_is_allowed():
    assert (Value(-2.0) ** 3).data == -8.0


def test_exp_overflow_raises_overflow_error():
    with pytest.raises(OverflowError, match=r"exp.*exp\(1000\.0\)"):
        Value(1000.0).exp()


def test_pow_overflow_raises_overflow_error():
    with pytest.raises(OverflowError, match=r"pow overflow"):
        Value(10.0) ** 400


@pytest.mark.parametrize(
    ("method", "x", "value"),
    [
        ("tanh", 1000.0, 1.0),
        ("tanh", -1000.0, -1.0),
        ("sigmoid", 1000.0, 1.0),
        ("sigmoid", -1000.0, 0.0),
    ],
)
def test_tanh_and_sigmoid_are_finite_and_saturated_far_out(method, x, value):
    leaf = Value(x)
    out = getattr(leaf, method)()
    out.backward()
    assert (out.data, leaf.grad) == (value, 0.0)


def test_sigmoid_of_a_large_negative_number_keeps_its_tiny_value():
    # exp(-700) / (1 + exp(-700)), not 1 - 1/(1 + e^-700) rounded to zero.
    assert Value(-700.0).sigmoid().data == pytest.approx(math.exp(-700.0), rel=1e-12)


# -- edges where a derivative is inf or nan: the create_graph path agrees with PyTorch ---------


def edge_gradients(f, xs: tuple[float, ...], create_graph: bool) -> list[float]:
    leaves = leaves_for(xs)
    f(*leaves).backward(create_graph=create_graph)
    return [float(leaf.grad) for leaf in leaves]


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize(
    ("f", "xs", "twin"),
    [
        pytest.param(lambda x: x.sqrt(), (0.0,), lambda torch, x: torch.sqrt(x), id="sqrt(0)"),
        pytest.param(lambda x: x**0.5, (0.0,), lambda torch, x: x**0.5, id="0**0.5"),
        pytest.param(lambda x, y: x**y, (0.0, 0.5), TORCH_TWINS["pow"], id="0**y"),
        pytest.param(lambda x, y: x**y, (-2.0, 2.0), TORCH_TWINS["pow"], id="(-2)**y"),
    ],
)
def test_infinite_and_nan_derivatives_match_pytorch_on_both_paths(torch, f, xs, twin, create_graph):
    tensors = torch_leaves(torch, xs)
    twin(torch, *tensors).backward()
    expected = [tensor.grad.item() for tensor in tensors]
    ours = edge_gradients(f, xs, create_graph)
    assert [str(g) for g in ours] == [str(g) for g in expected]


# -- singular points where the rule masks, as PyTorch does (each once gave nan or a wrong sign) --


def nth_derivative(f, n: int):
    for _ in range(n):
        f = grad(f)
    return f


@pytest.mark.parametrize(
    ("f", "twin", "x", "order"),
    [
        pytest.param(lambda x: x**0, lambda x: x**0, 0.0, 1, id="d/dx x**0 at 0"),
        pytest.param(lambda x: (x - x) ** 0, lambda x: (x - x) ** 0, 1.3, 1, id="(x-x)**0"),
        pytest.param(lambda x: x**2, lambda x: x**2, 0.0, 3, id="d3/dx3 x**2 at 0"),
        pytest.param(lambda x: x**3, lambda x: x**3, 0.0, 3, id="d3/dx3 x**3 at 0"),
        pytest.param(lambda x: x.sqrt(), lambda x: x.sqrt(), 0.0, 2, id="sqrt'' at 0 is -inf"),
        pytest.param(lambda x: x.sqrt(), lambda x: x.sqrt(), -0.0, 1, id="sqrt' at -0.0 is -inf"),
        pytest.param(
            lambda x: x.relu().sqrt(), lambda x: x.relu().sqrt(), -1.0, 1, id="relu(-1).sqrt()"
        ),
        pytest.param(
            lambda x: x.relu().sqrt(), lambda x: x.relu().sqrt(), -1.0, 2, id="relu(-1).sqrt()''"
        ),
    ],
)
def test_derivatives_at_singular_points_match_torch_func(torch, f, twin, x, order):
    reference = torch.tensor(x, dtype=torch.float64)
    g = twin
    for _ in range(order):
        g = torch.func.grad(g)
    expected = g(reference).item()
    ours = nth_derivative(f, order)(x)
    assert str(float(ours)) == str(expected), f"ours {ours!r}, PyTorch {expected!r}"


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize(("x", "y"), [(0.0, 0.0), (0.0, 2.0), (0.0, 1.0), (2.0, 0.0), (-2.0, 2.0)])
def test_both_partials_of_pow_match_pytorch_at_zero(torch, create_graph, x, y):
    leaves = leaves_for((x, y))
    (leaves[0] ** leaves[1]).backward(create_graph=create_graph)
    tensors = torch_leaves(torch, (x, y))
    torch.pow(*tensors).backward()
    for ours, theirs in zip(leaves, tensors, strict=True):
        assert str(float(ours.grad)) == str(theirs.grad.item())


@pytest.mark.parametrize(("x", "y"), [(0.0, 0.0), (0.0, 1.0), (0.0, 2.0), (0.0, 3.0)])
def test_the_hessian_of_pow_at_a_zero_base_matches_pytorch(torch, x, y):
    ours = hessian(lambda a, b: a**b)(x, y)
    theirs = torch.func.hessian(lambda v: torch.pow(v[0], v[1]))(
        torch.tensor([x, y], dtype=torch.float64)
    )
    assert ours == theirs.tolist()


def test_zero_times_inf_in_the_chain_rule_is_zero_where_the_partial_is_exactly_zero(torch):
    # relu is flat below 0: nothing flows back through it, however steep what follows is.
    x = Value(-1.0)
    x.relu().sqrt().backward()
    t = torch.tensor(-1.0, dtype=torch.float64, requires_grad=True)
    t.relu().sqrt().backward()
    assert x.grad == t.grad.item() == 0.0


@pytest.mark.parametrize(
    ("f", "order"),
    [
        pytest.param(lambda x: 0.0 * x.sqrt(), 1, id="0 * sqrt(x)"),
        pytest.param(lambda x: x ** Value(0.0), 2, id="(x**y)'' with y = 0"),
    ],
)
def test_a_function_constant_near_zero_has_derivative_zero_where_pytorch_gives_nan(f, order):
    # Both are constant functions of x (0 and 1), so every derivative is 0. PyTorch multiplies
    # 0 by sqrt'(0) = inf here, and gets nan; the chain rule here takes 0 times anything as 0.
    assert nth_derivative(f, order)(0.0) == 0.0


# -- a custom op, declared with defop, on every path ------------------------------------------


@pytest.fixture
def softplus():
    """softplus(x) = log(1 + e^x), declared as a user would; removed from the table after."""
    from autograd_core import ops

    op = ops.defop(
        "softplus",
        lambda x: math.log1p(math.exp(-abs(x))) + max(x, 0.0),  # stable for any x
        lambda out, x: (ops.SIGMOID(x),),  # d/dx softplus x = sigmoid x
        lambda np, x: np.logaddexp(0.0, x),
    )
    yield op
    del ops.OPS["softplus"]


def test_defop_refuses_a_name_that_exists_or_is_no_identifier():
    from autograd_core import ops

    with pytest.raises(ValueError, match=r"an op named 'tanh' already exists"):
        ops.defop("tanh", math.tanh, lambda out, x: (1.0 - out * out,))
    with pytest.raises(ValueError, match=r"must be a Python identifier, got 'soft plus'"):
        ops.defop("soft plus", math.tanh, lambda out, x: (1.0,))


def check_on_every_path(torch, f, twin, x):
    """f (a function of one Value) against PyTorch's `twin` at x: eagerly (value and first
    derivative), under create_graph (second derivative), by gradcheck, by jit's Python back-end
    (exactly the eager numbers) and by its batched back-end. Returns the traced function."""
    import numpy as np

    from autograd_core import gradcheck, jit

    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    expected = twin(t)
    (first,) = torch.autograd.grad(expected, t, create_graph=True)
    (second,) = torch.autograd.grad(first, t)
    leaf = Value(x)
    out = f(leaf)
    out.backward()
    assert_close(out.data, expected.item(), "value")
    assert_close(leaf.grad, first.item(), "first derivative")
    assert_close(grad(grad(f))(x), second.item(), "second derivative")
    assert gradcheck(f, x)
    traced = jit(f)
    assert traced.value_and_grad(x) == (out.data, leaf.grad)
    values, grads = traced.batched(np.array([x, x / 2.0]))
    assert_close(values[0], expected.item(), "batched value")
    assert_close(grads[0], first.item(), "batched first derivative")
    return traced


@pytest.mark.parametrize("x", [-30.0, -1.3, 0.0, 0.6, 25.0])
def test_a_defop_op_works_eagerly_under_create_graph_gradcheck_jit_and_batched(torch, softplus, x):
    def f(v):
        return softplus(v) * softplus(v * 0.5)

    def twin(t):
        # threshold: PyTorch's softplus returns x itself above 20; ours is the formula everywhere
        softplus_t = torch.nn.functional.softplus
        return softplus_t(t, threshold=100.0) * softplus_t(t * 0.5, threshold=100.0)

    traced = check_on_every_path(torch, f, twin, x)
    assert "softplus(" in traced.source


@pytest.fixture
def softplus_beta():
    """PyTorch's softplus(x, beta) = log(1 + e^(beta x)) / beta: an op with a parameter."""
    from autograd_core import ops

    op = ops.defop(
        "softplus_beta",
        lambda x, beta: (math.log1p(math.exp(-abs(beta * x))) + max(beta * x, 0.0)) / beta,
        lambda out, x, beta: (ops.SIGMOID(beta * x),),
        lambda np, x, beta: np.logaddexp(0.0, beta * x) / beta,
        parameters=("beta",),
    )
    yield op
    del ops.OPS["softplus_beta"]


@pytest.mark.parametrize("x", [-3.0, 0.0, 0.6, 4.0])
def test_an_op_with_a_parameter_works_on_every_path_and_two_parameters_stay_apart(
    torch, softplus_beta, x
):
    def f(v):
        # two parameters of one op at one depth: packed apart by the batched back-end
        return softplus_beta(v, beta=2.0) * softplus_beta(v, beta=0.5)

    def twin(t):
        softplus_t = torch.nn.functional.softplus
        return softplus_t(t, beta=2.0, threshold=100.0) * softplus_t(t, beta=0.5, threshold=100.0)

    traced = check_on_every_path(torch, f, twin, x)
    assert [node.params for node in f(Value(x)).inputs] == [(2.0,), (0.5,)]
    assert "op_softplus_beta(x0, 2.0)" in traced.source
    assert "op_softplus_beta(x0, 0.5)" in traced.source
    assert softplus_beta(x, beta=2.0) == softplus_beta.forward(x, 2.0)


def test_an_op_refuses_a_parameter_missing_unknown_or_not_a_number():
    from autograd_core import ops

    with pytest.raises(TypeError, match=r"op '\*\*' takes the parameters \(exponent\), got \(\)"):
        ops.POWER_OF(Value(2.0))
    with pytest.raises(TypeError, match=r"takes the parameters \(exponent\), got \(power\)"):
        ops.POWER_OF(2.0, power=3.0)
    with pytest.raises(TypeError, match=r"op 'tanh' takes the parameters \(none\), got \(slope\)"):
        ops.TANH(Value(1.0), slope=0.1)
    with pytest.raises(TypeError, match=r"parameter 'slope' must be a number, got True"):
        ops.LEAKY_RELU(Value(-1.0), slope=True)
    assert ops.POWER_OF(Value(2.0), exponent=3).data == 8.0
    assert ops.LEAKY_RELU(-2.0, slope=0.25) == -0.5


def test_defop_refuses_a_parameter_name_that_is_no_identifier():
    from autograd_core import ops

    with pytest.raises(ValueError, match=r"a parameter's name must be an identifier, got 'a b'"):
        ops.defop("scaled", lambda x, a: a * x, lambda out, x, a: (a,), parameters=("a b",))
    assert "scaled" not in ops.OPS


@pytest.fixture
def declare():
    """Declare ops with defop for one test; every one is removed from the table after."""
    from autograd_core import ops

    declared = []

    def declare_op(name, forward, partials, array=None):
        declared.append(name)
        return ops.defop(name, forward, partials, array)

    yield declare_op
    for name in declared:
        del ops.OPS[name]


def test_a_defop_rule_with_too_few_or_too_many_partials_is_refused_on_every_path(declare):
    from autograd_core import jit, jvp

    short = declare("times_short", float.__mul__, lambda out, x, y: (y,))
    extra = declare("times_extra", float.__mul__, lambda out, x, y: (y, x, 1.0))
    for op, got in ((short, "1 partial"), (extra, "3 partials")):
        message = rf"op '{op.name}': its partials gave {got} for 2 input\(s\); they must return"
        with pytest.raises(ValueError, match=message):
            grad(op)(2.0, 3.0)
        with pytest.raises(ValueError, match=message):
            jit(op).value_and_grad(2.0, 3.0)
        with pytest.raises(ValueError, match=message):
            jvp(op, (2.0, 3.0), (1.0, 0.0))


def test_a_defop_rule_that_returns_no_tuple_is_refused(declare):
    twice = declare("twice_bare", lambda x: 2.0 * x, lambda out, x: 2.0)
    with pytest.raises(ValueError, match=r"'twice_bare': its partials gave a float for 1 input"):
        grad(lambda a: twice(a))(1.0)


# Names a user may well give an op, each also a name that generated code uses or Python
# reserves: none may change what jit computes.
CLASHING_NAMES = ["np", "sum", "forward", "run", "value_and_grad", "inf", "nan", "x0", "v0",
                  "t1", "dx0", "X", "n", "theta", "Z1", "_check", "_times", "lambda", "if",
                  "None", "op_np"]  # fmt: skip


@pytest.mark.parametrize("name", CLASHING_NAMES)
def test_what_an_op_is_called_does_not_change_what_jit_computes(declare, name):
    import numpy as np

    from autograd_core import jit

    cube = declare(name, lambda x: x**3, lambda out, x: (3.0 * x * x,))

    def f(x):
        return cube(x) * x.tanh() + x

    eager = grad(f)(0.7), grad(f)(-1.2)
    traced = jit(f)
    assert traced.value_and_grad(0.7)[1] == eager[0]
    values, grads = traced.batched(np.array([0.7, -1.2]))
    assert_close(grads[0], eager[0], "batched gradient")
    assert_close(grads[1], eager[1], "batched gradient")
    assert f"op_{name}(" in traced.source


def test_the_ops_of_the_table_are_called_by_names_no_generated_code_uses():
    import keyword

    from autograd_core import ops

    generated = {"np", "sum", "forward", "run", "value_and_grad", "inf", "nan", "theta", "X", "Y",
                 "F", "n", "value", "dX", "loss", "outputs", "reports", "dtheta"}  # fmt: skip
    for key in ops.BUILT_IN:
        assert key not in generated and not keyword.iskeyword(key), key
        assert not key.startswith("op_"), key  # the prefix of the ops defop declares
        assert not any(ch.isdigit() for ch in key), key  # x0, v3, Z1, dA2: no clash


def _twin_is_nan(key, xs):
    import torch

    tensors = [torch.tensor(x, dtype=torch.float64) for x in xs]
    return math.isnan(TORCH_TWINS[key](torch, *tensors).item())


# The twins of the flat ops add `0.0 * x` only to give PyTorch a gradient path, which turns a
# nan input into a nan: ours are the functions themselves (step(nan) is 0 as (nan > 0) is, and
# mask(c, v) is v wherever c is not 0, a nan c too).
_FLAT = {("step", 0), ("mask", 0)}


@pytest.mark.parametrize("key", sorted(OPS))
def test_a_nan_input_gives_nan_where_pytorch_gives_nan_on_floats_and_arrays(torch, key):
    import numpy as np

    op = table_op(key)
    n = arity(op) or 4
    for position in range(n):
        xs = [0.7] * n
        xs[position] = math.nan
        if (key, position) in _FLAT:
            continue
        expected = _twin_is_nan(key, xs)
        assert math.isnan(op(*xs)) == expected, (key, position, "float")
        with np.errstate(all="ignore"):
            on_arrays = op(*[np.array([x, x]) for x in xs])
        assert np.isnan(on_arrays).tolist() == [expected, expected], (key, position, "array")


def test_relu_of_nan_is_nan_as_in_pytorch():
    import numpy as np

    from autograd_core import ops

    assert math.isnan(Value(math.nan).relu().data)
    assert np.isnan(ops.RELU(np.array([math.nan, -1.0]))).tolist() == [True, False]
    assert math.isnan(ops.LOGSUMEXP(math.inf, math.nan))
