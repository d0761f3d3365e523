"""The op table, entry by entry.

Every op in `autograd_core.ops.OPS` is enumerated from the table: its local partials are checked
against central differences of its own forward (always), and its value, gradient, second and
third derivatives against PyTorch in float64. A new op is covered by adding it to `OPS` and its
PyTorch twin to `TORCH_TWINS`; no new test is needed.
"""

import inspect
import itertools
import math

import pytest

from autograd_core import OPS, Op, Value, gradients
from autograd_core.value import _apply

# Sample inputs, away from the kinks of relu/abs at 0. Points where an op is undefined
# (log of a negative, a negative base to a fractional power) are dropped per op, below.
POINTS = (-1.3, -0.4, 0.6, 1.7)
# n-ary ops (vsum, dot) are sampled with two and with four inputs.
NARY_POINTS = ((0.6, -1.3), POINTS)
STEP = 1e-6  # central-difference step

# The same function in PyTorch, called as twin(torch, *input_tensors). Parametrised ops appear
# in OPS with one representative parameter: power_of(3.0) and leaky_relu_of(0.01).
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


def arity(op: Op) -> int | None:
    """How many inputs op takes, read from its rule `partials(out, *inputs)`; None if n-ary."""
    inputs = list(inspect.signature(op.partials).parameters.values())[1:]
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in inputs):
        return None
    return len(inputs)


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
    pytest.param(name, xs, id=f"{name}{xs}") for name, op in OPS.items() for xs in sample_points(op)
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


def test_every_op_has_a_pytorch_twin():
    assert set(TORCH_TWINS) == set(OPS)


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_is_checked_at_some_point(name):
    assert sample_points(OPS[name]), f"no sample point where {name} is defined"


@pytest.mark.parametrize(("name", "xs"), OP_CASES)
def test_partials_match_central_differences(name, xs):
    op = OPS[name]
    out = _apply(op, *leaves_for(xs))
    assert len(out.local_grads) == len(xs)
    for index, partial in enumerate(out.local_grads):
        numeric = central_difference(op, xs, index)
        assert math.isclose(partial, numeric, rel_tol=1e-6, abs_tol=1e-8), f"d/dx{index}"


@pytest.mark.parametrize(("name", "xs"), OP_CASES)
def test_backward_puts_the_partials_on_the_inputs(name, xs):
    leaves = leaves_for(xs)
    out = _apply(OPS[name], *leaves)
    out.backward()
    assert [leaf.grad for leaf in leaves] == list(out.local_grads)


@pytest.mark.parametrize(("name", "xs"), OP_CASES)
def test_partials_on_values_equal_partials_on_floats(name, xs):
    # The create_graph path re-evaluates the same rule on the graph; it must agree.
    op = OPS[name]
    leaves = leaves_for(xs)
    out = _apply(op, *leaves)
    on_values = op.partials(out, *leaves)
    for on_value, on_float in zip(on_values, out.local_grads, strict=True):
        assert float(on_value) == pytest.approx(on_float, rel=1e-15, abs=1e-15)


@pytest.mark.parametrize(("name", "xs"), OP_CASES)
def test_value_and_gradient_match_pytorch(torch, name, xs):
    leaves = leaves_for(xs)
    out = _apply(OPS[name], *leaves)
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
    ours = [_apply(OPS[name], *leaves)]
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
