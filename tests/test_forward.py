"""Forward mode: jvp, jacfwd and jacrev against torch.func, and composed with grad."""

import math

import pytest

from autograd_core import Value, grad, hessian, jacfwd, jacrev, jvp


def tensors(torch, xs):
    return tuple(torch.tensor(x, dtype=torch.float64) for x in xs)


# (ours, the same in PyTorch, point, direction): one output and two.
FUNCTIONS = [
    pytest.param(
        lambda x, y: x * y + x.sin(),
        lambda x, y: x * y + x.sin(),
        (0.7, -1.3),
        (1.0, 0.5),
        id="x*y + sin x",
    ),
    pytest.param(
        lambda x, y: ((x * y).exp() / y, (x - y).tanh(), x.sigmoid() * y.cos()),
        lambda x, y: ((x * y).exp() / y, (x - y).tanh(), x.sigmoid() * y.cos()),
        (0.4, 1.6),
        (-0.3, 2.0),
        id="three outputs",
    ),
    pytest.param(
        lambda x, y, z: (x**2 + y.relu() * z.log(), abs(x - z) ** 1.5),
        lambda x, y, z: (x**2 + y.relu() * z.log(), (x - z).abs() ** 1.5),
        (1.1, 0.8, 2.5),
        (1.0, -1.0, 0.25),
        id="pow relu log abs",
    ),
]


def flat(result) -> list[float]:
    return [float(r) for r in result] if isinstance(result, tuple) else [float(result)]


@pytest.mark.parametrize(("f", "twin", "xs", "vs"), FUNCTIONS)
def test_jvp_matches_torch_func_jvp(torch, f, twin, xs, vs):
    values, derivatives = jvp(f, xs, vs)
    expected_values, expected = torch.func.jvp(twin, tensors(torch, xs), tensors(torch, vs))
    assert flat(values) == pytest.approx(flat(expected_values), rel=1e-12, abs=1e-14)
    assert flat(derivatives) == pytest.approx(flat(expected), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("jacobian", [jacfwd, jacrev])
@pytest.mark.parametrize(("f", "twin", "xs", "vs"), FUNCTIONS)
def test_jacobians_match_torch_func(torch, jacobian, f, twin, xs, vs):
    ours = jacobian(f)(*xs)
    theirs = getattr(torch.func, jacobian.__name__)(twin, argnums=tuple(range(len(xs))))(
        *tensors(torch, xs)
    )
    rows = theirs if isinstance(theirs[0], tuple) else (theirs,)
    expected = [[float(d) for d in row] for row in rows]
    assert len(ours) == len(expected) and all(len(row) == len(xs) for row in ours)
    for row, expected_row in zip(ours, expected, strict=True):
        assert row == pytest.approx(expected_row, rel=1e-12, abs=1e-14)


def test_jacfwd_and_jacrev_agree_on_a_wide_and_a_tall_function():
    def wide(*xs):  # 4 inputs, 1 output
        return (xs[0] * xs[1]).sin() + xs[2] * xs[3].exp()

    def tall(x):  # 1 input, 3 outputs
        return (x.sin(), x * x, x.exp())

    for f, xs in ((wide, (0.1, 0.2, 0.3, 0.4)), (tall, (0.5,))):
        for forward_row, reverse_row in zip(jacfwd(f)(*xs), jacrev(f)(*xs), strict=True):
            assert forward_row == pytest.approx(reverse_row, rel=1e-14)


def test_forward_over_reverse_gives_hessian_vector_products(torch):
    def f(x, y):
        return x * x * y + (x * y).sin()

    point, direction = (0.3, -0.8), (1.0, 2.0)
    _, hvp = jvp(grad(f), point, direction)
    h = hessian(f)(*point)
    expected = [sum(h[i][j] * direction[j] for j in range(2)) for i in range(2)]
    assert list(hvp) == pytest.approx(expected, rel=1e-12)
    x = torch.tensor(point, dtype=torch.float64)
    v = torch.tensor(direction, dtype=torch.float64)
    _, theirs = torch.func.jvp(torch.func.grad(lambda p: f(p[0], p[1])), (x,), (v,))
    assert list(hvp) == pytest.approx(theirs.tolist(), rel=1e-12)


def test_grad_of_a_jvp_is_reverse_over_forward():
    # d/dx of (d/dt (x + t)^3 at t = 0) = d/dx 3x^2 = 6x
    assert grad(lambda x: jvp(lambda a: a**3, (x,), (1.0,))[1])(2.0) == 12.0


def test_nested_jvp_keeps_the_outer_variable_apart():
    # d/dx [ d/dy (x * y) at y = x, along 1 ] = d/dx x = 1 (perturbation confusion gives 2).
    assert grad(lambda x: jvp(lambda y: x * y, (x,), (1.0,))[1])(3.0) == 1.0


def test_jvp_of_a_constant_output_is_zero():
    assert jvp(lambda x: 5.0, (1.0,), (1.0,)) == (5.0, 0.0)


def test_jvp_with_a_wrong_number_of_tangents_raises_value_error():
    with pytest.raises(ValueError, match="one tangent per primal, got 2 primals and 1 tangents"):
        jvp(lambda x, y: x * y, (1.0, 2.0), (1.0,))


def test_jvp_with_a_tangent_that_is_not_a_number_raises_type_error():
    with pytest.raises(TypeError, match="tangent must be a real number, got str"):
        jvp(lambda x: x, (1.0,), ("1",))


def test_jvp_agrees_with_central_differences():
    def f(x, y):
        return (x * y.exp()).tanh()

    xs, vs, h = (0.3, 0.2), (0.7, -0.4), 1e-6

    def along(t):
        with_t = [Value(x + t * v) for x, v in zip(xs, vs, strict=True)]
        return f(*with_t).data

    numeric = (along(h) - along(-h)) / (2 * h)
    assert math.isclose(jvp(f, xs, vs)[1], numeric, rel_tol=1e-7)
