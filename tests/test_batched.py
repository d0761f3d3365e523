"""autograd_core.compiler.batched: a traced scalar program run over a whole batch as NumPy array
code.

Every number is checked against the eager engine, point by point, to 1e-12: every op of the
table, random expression graphs over all of them (the graphs of test_properties), every
activation, every loss of `fit`, a hand-written network of `dot` neurons, and batch sizes 1,
odd and full. Bad values raise the eager engine's errors, never a NumPy warning.
"""

import linecache
import math
import warnings

import numpy as np
import pytest
from helpers import (
    DOMAIN_ERRORS,
    assert_same_training,
    build,
    every_node_counts,
    fit_both_ways,
    leaf_values,
    on_values,
    points_for,
    steps,
    table_op,
)
from hypothesis import given, settings

from autograd_core import OPS, Value, batched, dot, grad, ir, jit, ops, take, value_and_grad, vsum
from nn import optim
from nn.data import make_blobs, make_moons
from nn.modules import ACTIVATIONS, MLP, Module

TOLERANCE = 1e-12


def close(a: float, b: float) -> bool:
    """a equals b to 1e-12 (relative above 1), or both are nan."""
    if math.isnan(b):
        return math.isnan(a)
    return a == b or abs(a - b) <= TOLERANCE * max(1.0, abs(b))


def run_batched(traced, points: list[tuple[float, ...]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """traced.batched over the points (one array per argument), warnings made errors."""
    columns = [np.array(column) for column in zip(*points, strict=True)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning (log of 0, overflow ...) may escape
        values, grads = traced.batched(*columns)
    return values, list(grads) if len(columns) > 1 else [grads]


def assert_batched_equals_eager(f, points: list[tuple[float, ...]], traced=None) -> None:
    """jit(f).batched over the points gives, at each, eager value_and_grad(f) to 1e-12."""
    values, grads = run_batched(traced or jit(f), points)
    assert values.shape == (len(points),)
    for k, xs in enumerate(points):
        value, eager_grads = value_and_grad(f)(*xs)
        eager_grads = eager_grads if isinstance(eager_grads, tuple) else (eager_grads,)
        assert close(float(values[k]), value), (xs, values[k], value)
        for g, e in zip(grads, eager_grads, strict=True):
            assert close(float(g[k]), e), (xs, [g[k] for g in grads], eager_grads)


# -- jit(f).batched: the eager numbers at every point ------------------------------------------


@pytest.mark.parametrize("name", sorted(OPS))
def test_batched_gives_eager_value_and_grad_for_every_op(name):
    op = table_op(name)
    points = points_for(op)
    for size in {len(xs) for xs in points}:

        def f(*xs):
            return op(*xs)  # an op applied to Values makes a node

        assert_batched_equals_eager(f, [xs for xs in points if len(xs) == size])


def nan_flows(program: list, xs: list[float]) -> bool:
    """Some node of the graph at xs is nan: where a nan flows, eager and the batch may part
    (the kernels at nan are checked one op at a time below)."""
    return any(math.isnan(node.data) for node in on_values(program, [Value(x) for x in xs]))


@settings(max_examples=100, deadline=None)
@given(leaf_values, steps)
def test_batched_gives_eager_value_and_grad_on_random_graphs(leaves, steps):
    program = build(leaves, steps)
    f = every_node_counts(program)
    points, refused = [], []
    for xs in (leaves, [0.9 * x for x in leaves], [x + 0.25 for x in leaves], [-x for x in leaves]):
        try:
            value_and_grad(f)(*xs)
        except DOMAIN_ERRORS:
            refused.append(tuple(xs))
        else:
            if xs is leaves or not nan_flows(program, xs):  # see nan_flows
                points.append(tuple(xs))
    traced = jit(f)
    traced(*leaves)  # traced at the leaves, where the graph was built
    assert_batched_equals_eager(f, points, traced)
    for xs in refused:
        # An eager domain error, not a NumPy warning or a silent number. Which one: the batch
        # groups equations into blocks, so where two ops fail it may meet the other first (the
        # exact error of each op is checked one op at a time below).
        try:
            values, grads = run_batched(traced, [xs])
        except DOMAIN_ERRORS:
            continue
        assert not np.isfinite([values[0], *(g[0] for g in grads)]).all(), (xs, values, grads)


@pytest.mark.parametrize(
    ("name", "xs"),
    [("relu", (math.nan,)), ("sign", (math.nan,)), ("ieee_pow", (-math.inf, 0.5))],
    ids=["relu-nan", "sign-nan", "ieee_pow-minus-inf"],
)
def test_every_op_on_arrays_gives_its_float_forward_at_nan_and_inf(name, xs):
    op = table_op(name)
    on_array = op.on_arrays(*[np.array([x]) for x in xs])
    expected = op.forward(*xs)
    assert close(float(np.asarray(on_array).ravel()[0]), expected)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_batched_gives_eager_value_and_grad_for_every_activation(name):
    activation = ACTIVATIONS[name]

    def f(w, x):
        return activation(w * x - 0.5)

    # Both sides of each kink (at 0: w * x = 0.5), the kink itself and saturated tails.
    points = [(w, x) for w in (-2.0, 0.5, 1.0) for x in (-40.0, -1.0, 0.0, 1.0, 2.0, 40.0)]
    assert_batched_equals_eager(f, points)


@pytest.mark.parametrize("n", [1, 7, 100])
def test_batched_works_for_batches_of_one_odd_and_many_points(n):
    def f(x, y):
        return (x * y).tanh() + vsum([x, y, x * x]).sigmoid().log()

    rng = np.random.default_rng(n)
    points = [tuple(row) for row in rng.uniform(-2.0, 2.0, (n, 2)).tolist()]
    assert_batched_equals_eager(f, points)


def test_batched_keeps_the_shape_of_a_grid_and_broadcasts_numbers():
    def f(x, y):
        return x * y.sin()

    xs, ys = np.meshgrid(np.linspace(-1.0, 1.0, 4), np.linspace(0.0, 2.0, 3))
    values, (dx, dy) = jit(f).batched(xs, ys)
    assert values.shape == dx.shape == dy.shape == (3, 4)
    np.testing.assert_array_equal(values, xs * np.sin(ys))
    np.testing.assert_array_equal(dx, np.sin(ys))
    np.testing.assert_allclose(dy, xs * np.cos(ys), rtol=0, atol=TOLERANCE)
    values, (dx, dy) = jit(f).batched(np.array([1.0, 2.0]), 0.5)  # a number spreads over all
    np.testing.assert_array_equal(values, [math.sin(0.5), 2.0 * math.sin(0.5)])
    np.testing.assert_array_equal(dy, [math.cos(0.5), 2.0 * math.cos(0.5)])


def test_batched_gradient_of_a_gradient_gives_the_second_derivative_on_a_grid():
    def f(x):
        return x.sin() * x

    grid = np.linspace(-3.0, 3.0, 13)
    first, second = jit(grad(f)).batched(grid)  # f' and f'' over the grid, in one call
    np.testing.assert_allclose(first, np.sin(grid) + grid * np.cos(grid), rtol=0, atol=1e-12)
    np.testing.assert_allclose(second, 2.0 * np.cos(grid) - grid * np.sin(grid), atol=1e-12)


@pytest.mark.parametrize(
    "f",
    [
        lambda x: x - x,
        lambda x: x * x,
        lambda x: x / (x + 1.0) - x,
        lambda x: (x * 3.0).tanh() - (x * 3.0).tanh() * x,
    ],
    ids=["x-x", "x*x", "x/(x+1)-x", "tanh(3x)(1-x)"],
)
def test_an_op_reading_one_block_twice_adds_both_terms(f):
    # Neither term is the whole gradient of x: d(x - x)/dx = 1 - 1 = 0, not 2.
    assert_batched_equals_eager(f, [(-1.5,), (0.5,), (2.0,)])


def test_a_repeated_operand_of_a_sum_counts_each_time():
    # sum(a, a, a, x) with a = |x|: d/dx = 3 sign(x) + 1. The gradient of the row sum must reach
    # the repeated column three times and the last column at all.
    def f(x):
        a = abs(x)
        return vsum([a, a, a, x])

    assert_batched_equals_eager(f, [(-1.0,), (0.5,), (2.0,)])
    _, dx = jit(f).batched(np.array([-1.0, 0.5]))
    np.testing.assert_array_equal(dx, [-2.0, 4.0])


# -- errors: the eager ones, named, never a NumPy warning --------------------------------------


@pytest.mark.parametrize(
    ("f", "bad", "error", "message"),
    [
        (lambda x: (x * 2.0).log(), -0.5, ValueError, r"log domain error: log\(-1.0\)"),
        (lambda x: x.log(), 0.0, ValueError, r"log domain error: log\(0.0\)"),
        (lambda x: x.log(), -math.inf, ValueError, r"log domain error: log\(-inf\)"),
        (lambda x: (x - 1.0).sqrt(), 0.5, ValueError, r"sqrt domain error: sqrt\(-0.5\)"),
        (lambda x: 1.0 / x, 0.0, ZeroDivisionError, r"division by zero: 1.0 / 0.0"),
        (lambda x: x.exp(), 800.0, OverflowError, r"exp overflow: exp\(800.0\)"),
        (lambda x: x**0.5, -4.0, ValueError, r"pow domain error: negative base -4.0"),
    ],
    ids=["log-negative", "log-zero", "log-minus-inf", "sqrt", "divide-by-zero", "exp", "pow"],
)
def test_a_bad_value_raises_the_eager_error_and_no_numpy_warning(f, bad, error, message):
    with pytest.raises(error, match=message) as eager:
        value_and_grad(f)(bad)
    traced = jit(f)
    traced(2.0)
    for points in ([(bad,)], [(1.0,), (bad,), (3.0,)]):
        with pytest.raises(error, match=message) as raised:
            run_batched(traced, points)  # warnings are errors in there: none escapes
        assert str(raised.value) == str(eager.value)


@pytest.mark.parametrize(
    ("f", "points"),
    [
        (lambda x: x.relu().sqrt(), [(-1.0,), (0.0,), (4.0,)]),  # relu' = 0 times sqrt'(0) = inf
        (lambda x: ops.INV(x.relu()) + x, [(-2.0,), (2.0,)]),  # 0 times -inf
        (lambda x, y: (x * y).tanh(), [(math.inf, 2.0), (0.5, 1.0)]),  # tanh' = 0 times inf
        # A row reduction: dot = inf, so tanh' = 0, times x = inf in d/dz.
        (
            lambda x, y, z, w: dot([x, y], [z, w]).tanh(),
            [(math.inf, 0.0, 1.0, 1.0), (0.5, -1.0, 2.0, 0.25)],
        ),
    ],
    ids=["relu-sqrt", "relu-inv", "tanh-inf", "dot-with-inf"],
)
def test_zero_times_an_infinity_in_the_chain_rule_is_zero_as_in_eager(f, points):
    traced = jit(f)
    assert_batched_equals_eager(f, points, traced)
    assert "_times" not in traced._batched.source  # the readable source stays plain


def test_infinities_and_nan_that_eager_allows_flow_through_without_an_error():
    def f(x):
        return (x + Value(math.inf)) * 0.0 + x.log()

    # inf * 0 = nan and log(nan) = nan raise nothing in eager, so nothing in the batch either;
    # the domain check of log still runs for the finite points beside them.
    assert_batched_equals_eager(f, [(1.0,), (math.nan,), (2.0,)])
    with pytest.raises(ValueError, match=r"log domain error: log\(-1.0\)"):
        run_batched(jit(f), [(math.nan,), (-1.0,)])


@pytest.mark.parametrize(
    ("array", "dtype"),
    [
        (np.array([True, False]), "bool"),
        (np.array([1.0 + 1.0j]), "complex128"),
        ([Value(1.0)], "object"),
        (np.array(["1.0"]), "<U3"),
    ],
    ids=["bool", "complex", "Value", "str"],
)
def test_batched_refuses_arrays_of_what_a_call_refuses(array, dtype):
    traced = jit(lambda x: x * x)
    traced(1.0)
    with pytest.raises(TypeError, match=f"takes arrays of real numbers .*array of {dtype}"):
        traced.batched(array)


def test_batched_needs_an_array():
    with pytest.raises(TypeError, match="takes one array per argument of f, got none"):
        jit(lambda: Value(3.0)).batched()


def test_batched_computes_integers_in_float64_and_float32_in_float32():
    values, grads = jit(lambda x: x * x).batched(np.float32([0.3]))
    x = np.float32(0.3)
    assert values.dtype == grads.dtype == np.float32
    assert values.tolist() == [float(x * x)] and grads.tolist() == [float(np.float32(2.0) * x)]
    values, grads = jit(lambda x: x / 3.0).batched([1, 2])
    assert values.dtype == grads.dtype == np.float64
    assert values.tolist() == [1 / 3, 2 / 3] and grads.tolist() == [1 / 3, 1 / 3]
    # float32 beside a float64 array: float64
    values, grads = jit(lambda x, y: x * y).batched(np.float32([0.5]), np.array([0.25]))
    assert values.dtype == np.float64


@pytest.mark.parametrize("name", sorted(OPS))
def test_batched_in_float32_stays_float32_and_gives_the_eager_numbers_to_float32s_precision(name):
    op = table_op(name)
    for size in {len(xs) for xs in points_for(op)}:
        # the points as float32 numbers, so eager and the batch start from the same inputs
        points = [[float(np.float32(x)) for x in xs] for xs in points_for(op) if len(xs) == size]

        def f(*xs):
            return op(*xs)

        j = jit(f)
        columns = np.array(points, dtype=np.float32).T
        values, grads = j.batched(*columns)
        grads = [grads] if size == 1 else list(grads)
        assert values.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
        for k, xs in enumerate(points):
            leaves = [Value(x) for x in xs]
            out = f(*leaves)
            out.backward()
            assert close32(values[k], out.data), (name, xs)
            for g, leaf in zip(grads, leaves, strict=True):
                assert close32(g[k], leaf.grad), (name, xs)


def close32(ours: float, eager: float) -> bool:
    """Equal to float32's precision (both nan counts as equal)."""
    both_nan = math.isnan(ours) and math.isnan(eager)
    return both_nan or math.isclose(ours, eager, rel_tol=1e-5, abs_tol=1e-6)


# -- a hand-written network of dot neurons: recognised as matrix products --------------------


def assert_step_is_eager(step, sample_loss, params, X: np.ndarray, Y: np.ndarray) -> None:
    """The step's mean loss, outputs and gradients over the rows of X (features) and Y
    (labels) are the eager engine's, to 1e-12."""
    loss, outputs, dtheta = step(np.array([p.data for p in params]), X, Y)
    samples = [sample_loss(*map(Value, row)) for row in np.hstack([X, Y]).tolist()]
    mean = vsum([s[0] for s in samples]) / len(X)
    mean.backward()
    assert close(loss, mean.data)
    assert outputs.shape == (len(X), 1)
    assert all(close(o, s[1].data) for o, s in zip(outputs[:, 0].tolist(), samples, strict=True))
    assert all(close(g, p.grad) for g, p in zip(dtheta.tolist(), params, strict=True))


def hand_written_network(rng: np.random.Generator):
    """Two tanh neurons on (x0, x1) with biases, then a linear neuron: written with `dot`,
    not with nn; the per-sample loss is (out - t)^2, with the target t an input."""
    hidden = [[Value(w) for w in rng.uniform(-1.0, 1.0, 3)] for _ in range(2)]
    last = [Value(w) for w in rng.uniform(-1.0, 1.0, 3)]

    def sample_loss(x0, x1, t):
        h = [dot(row, [x0, x1, 1.0]).tanh() for row in hidden]
        out = dot(last, [*h, 1.0])
        return [(out - t) ** 2, out]

    return sample_loss, [p for row in hidden for p in row] + last


@pytest.mark.parametrize("n", [1, 5, 64])
def test_a_hand_written_network_runs_as_matrix_products_with_eager_gradients(n):
    rng = np.random.default_rng(n)
    sample_loss, params = hand_written_network(rng)
    step = batched.TrainingStep(ir.trace(sample_loss, 3, params), n_labels=1)
    # Each layer of dot neurons is one matrix product (its bias the last column of the layer's
    # parameters P = [W | b]), forward and back; the label is the input Y.
    assert "W1 = P1[:, 0:2]" in step.source
    assert "b1 = P1[:, 2]" in step.source
    assert "Z1 = X @ W1.T + b1" in step.source
    assert "H1 = tanh(Z1)" in step.source
    assert "Z2 = H1 @ W2.T + b2" in step.source
    assert "dW1 += dZ1.T @ X" in step.source
    assert "dH1 = dZ2 @ W2" in step.source
    X = rng.uniform(-1.0, 1.0, (n, 3))
    assert_step_is_eager(step, sample_loss, params, X[:, :2], X[:, 2:])


def micrograd_style_network(rng: np.random.Generator):
    """The hand-written network as code for micrograd's Value writes it: Python's `sum` of
    products plus a bias, two-input nodes only."""
    hidden = [[Value(w) for w in rng.uniform(-1.0, 1.0, 3)] for _ in range(4)]
    last = [Value(w) for w in rng.uniform(-1.0, 1.0, 5)]

    def neuron(row, xs):
        return sum((w * x for w, x in zip(row[:-1], xs, strict=True)), row[-1])

    def sample_loss(x0, x1, t):
        h = [neuron(row, [x0, x1]).tanh() for row in hidden]
        out = neuron(last, h)
        return [(out - t) ** 2, out]

    return sample_loss, [p for row in hidden for p in row] + last


@pytest.mark.parametrize("n", [1, 7])
def test_a_micrograd_style_network_of_sums_of_products_runs_as_matrix_products(n):
    rng = np.random.default_rng(n)
    sample_loss, params = micrograd_style_network(rng)
    step = batched.TrainingStep(ir.trace(sample_loss, 3, params), n_labels=1)
    products = [line for line in step.source.splitlines() if "@" in line]
    # one product per layer forward, two per layer backward (the first layer's dX is not wanted)
    assert len(products) == 5, step.source
    assert "Z1 = X @ W1.T + b1" in step.source
    X = rng.uniform(-1.0, 1.0, (n, 3))
    assert_step_is_eager(step, sample_loss, params, X[:, :2], X[:, 2:])


def test_a_hand_written_network_gives_pytorchs_loss_and_gradients(torch):
    rng = np.random.default_rng(11)
    sample_loss, params = hand_written_network(rng)
    step = batched.TrainingStep(ir.trace(sample_loss, 3, params))
    X = rng.uniform(-1.0, 1.0, (9, 3))
    theta = np.array([p.data for p in params])
    loss, _, dtheta = step(theta, X)
    # The same network in PyTorch, float64, as matrices: rows of theta are the neurons.
    t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    data = torch.tensor(X, dtype=torch.float64)
    W1, W2 = t[:6].reshape(2, 3), t[6:].reshape(1, 3)
    hidden = torch.tanh(data[:, :2] @ W1[:, :2].T + W1[:, 2])
    out = hidden @ W2[:, :2].T + W2[:, 2]
    reference = ((out[:, 0] - data[:, 2]) ** 2).mean()
    reference.backward()
    assert close(loss, reference.item())
    np.testing.assert_allclose(dtheta, t.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_a_neuron_reading_one_input_twice_and_a_sum_reading_one_unit_twice():
    # Repeated columns: dot(w, [x0, x0, x1]) and sum(h0, h0, h1), each counted every time.
    W = [[Value(0.3), Value(-0.2), Value(0.6)], [Value(0.5), Value(0.7), Value(-0.4)]]
    params = [p for row in W for p in row]

    def sample_loss(x0, x1):
        h = [dot(row, [x0, x0, x1]).tanh() for row in W]
        return [vsum([h[0], h[0], h[1]])]

    step = batched.TrainingStep(ir.trace(sample_loss, 2, params))
    assert "@" in step.source
    X = np.array([[0.1, 0.2], [0.3, -0.5], [1.0, 2.0]])
    loss, _, dtheta = step(np.array([p.data for p in params]), X)
    mean = vsum([sample_loss(*map(Value, row))[0] for row in X.tolist()]) / 3
    mean.backward()
    assert close(loss, mean.data)
    assert all(close(g, p.grad) for g, p in zip(dtheta.tolist(), params, strict=True))


def test_a_training_step_raises_the_eager_error_without_a_warning():
    w = Value(1.0)

    def sample_loss(x):
        return [(w * x).log()]

    step = batched.TrainingStep(ir.trace(sample_loss, 1, [w]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"log domain error: log\(-2.0\) needs an input > 0"):
            step(np.array([1.0]), np.array([[3.0], [-2.0]]))


class HandWritten(Module):
    """A 2-3-1 network of dot neurons with tanh, its weights plain lists of Values."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.hidden = [[Value(w) for w in rng.normal(0.0, 0.7, 3)] for _ in range(3)]
        self.out = [Value(w) for w in rng.normal(0.0, 0.7, 4)]

    def forward(self, x):
        h = [dot(row, [*x, 1.0]).tanh() for row in self.hidden]
        return dot(self.out, [*h, 1.0])


@pytest.mark.parametrize("batch_size", [1, 7, None], ids=["one", "odd", "full"])
def test_fit_on_a_hand_written_module_gives_the_eager_numbers(batch_size):
    X, y = make_moons(30, noise=0.1, seed=2)
    runs = fit_both_ways(
        lambda: HandWritten(seed=4), X, y, lambda params: optim.SGD(params, lr=0.1),
        loss="bce", epochs=3, batch_size=batch_size, seed=1,
    )  # fmt: skip
    assert runs[0][1] != [p.data for p in HandWritten(seed=4).parameters()]  # it trained
    assert_same_training(runs)


# -- fit(jit=True): every loss and activation, batch sizes 1, odd and full -----------------------


LOSS_CASES = {
    "hinge": (lambda: make_moons(31, noise=0.1, seed=1), [6, 1]),
    "bce": (lambda: make_moons(31, noise=0.1, seed=1), [6, 1]),
    "cross_entropy": (lambda: make_blobs(31, centers=3, seed=1), [6, 3]),
    "mse": (lambda: make_blobs(31, centers=3, seed=1), [6, 3]),
}


@pytest.mark.parametrize("batch_size", [1, 7, None], ids=["one", "odd", "full"])
@pytest.mark.parametrize("loss", sorted(LOSS_CASES))
def test_fit_jit_gives_the_eager_params_and_history_for_every_loss(loss, batch_size):
    make_data, nouts = LOSS_CASES[loss]
    X, y = make_data()
    runs = fit_both_ways(
        lambda: MLP(2, nouts, activation="tanh", seed=3), X, y, loss=loss, epochs=3,
        batch_size=batch_size, l2=1e-3, seed=5, validation_data=(X[:9], y[:9]),
    )  # fmt: skip
    assert runs[0][1] != [p.data for p in MLP(2, nouts, activation="tanh", seed=3).parameters()]
    assert_same_training(runs)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_fit_jit_gives_the_eager_params_and_history_for_every_activation(activation):
    X, y = make_moons(25, noise=0.1, seed=0)
    runs = fit_both_ways(
        lambda: MLP(2, [5, 4, 1], activation=activation, seed=0), X, y, loss="hinge",
        epochs=4, batch_size=7, seed=2,
    )  # fmt: skip
    assert_same_training(runs)


def test_mse_on_a_single_output_trains_on_the_label_itself():
    X, y = make_moons(21, noise=0.1, seed=3)
    runs = fit_both_ways(
        lambda: MLP(2, [4, 1], seed=1), X, y, loss="mse", epochs=3, batch_size=5, seed=0
    )
    assert_same_training(runs)


def test_log_sum_exp_over_a_layer_is_one_row_max_and_row_sum_with_eager_gradients():
    # Softmax cross-entropy of one sample, logsumexp(z) - t . z, with the one-hot target t
    # an input of the program: one program for the whole batch, whatever the labels.
    model = MLP(2, [4, 3], seed=0)
    params = model.parameters()

    def sample_loss(x0, x1, *target):
        logits = model([x0, x1])
        return [ops.LOGSUMEXP(*logits) - dot(list(target), logits)]

    step = batched.TrainingStep(ir.trace(sample_loss, 5, params))
    assert "m1 = Z2.max(1, keepdims=True)" in step.source
    assert "np.exp(Z2 - m1).sum(1, keepdims=True)" in step.source
    # softmax times the upstream gradient: the partial of the op table's logsumexp, e^(z - out)
    assert "(exp(Z2 - s1) * ds1)" in step.source
    X, y = make_blobs(9, centers=3, seed=0)
    one_hot = [[1.0 if j == label else 0.0 for j in range(3)] for label in y]
    rows = [[*x, *t] for x, t in zip(X, one_hot, strict=True)]
    loss, _, dtheta = step(np.array([p.data for p in params]), np.array(rows))
    mean = vsum([sample_loss(*row)[0] for row in rows]) / len(rows)
    mean.backward()
    assert close(loss, mean.data)
    assert all(close(g, p.grad) for g, p in zip(dtheta.tolist(), params, strict=True))


@pytest.mark.parametrize("padding", [0, 1])
def test_a_convolution_runs_as_one_gathered_product_with_eager_numbers(padding):
    from nn.conv import Conv1d, Flatten, MaxPool1d
    from nn.modules import Activation, Layer, Sequential
    from nn.train import matrix_source

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 12)).tolist()
    y = rng.integers(0, 3, 30).tolist()

    def cnn():
        return Sequential(
            Conv1d(1, 2, 3, padding=padding, seed=0),
            Activation("tanh"),
            Conv1d(2, 3, 3, stride=2, padding=padding, seed=1),
            MaxPool1d(2),
            Flatten(),
            Layer(6 + 3 * padding, 3, activation="linear", seed=2),
        )

    source = matrix_source(cnn(), "cross_entropy", n_inputs=12)
    # Both convolutions: every window gathered at once, one product with the shared weights;
    # zero padding is read from a column of zeros given to the block.
    if padding:
        assert "Xw1 = np.concatenate((X, np.zeros((n, 1), dtype)), axis=1)[:, windows1]" in source
        assert "Xw2 = np.concatenate((H1, np.zeros((n, 1), dtype)), axis=1)[:, windows2]" in source
        assert "_scatter_add(dH1p, windows2, dZ2w @ W2)" in source
        assert "dH1 += dH1p[:, :" in source
    else:
        assert "Xw1 = X[:, windows1]" in source
        assert "Xw2 = H1[:, windows2]" in source
        assert "_scatter_add(dH1, windows2, dZ2w @ W2)" in source
    runs = fit_both_ways(
        cnn, X, y, lambda params: optim.SGD(params, lr=0.05),
        loss="cross_entropy", epochs=3, batch_size=8, seed=0,
    )  # fmt: skip
    assert_same_training(runs)


@pytest.mark.parametrize(
    ("kernel", "stride"), [(2, 2), (3, 1)], ids=["side-by-side", "overlapping"]
)
def test_an_average_pool_runs_as_one_gathered_sum_with_eager_numbers(kernel, stride):
    from nn.conv import AvgPool1d, Conv1d, Flatten
    from nn.modules import Activation, Layer, Sequential
    from nn.train import matrix_source

    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 12)).tolist()
    y = rng.integers(0, 3, 20).tolist()
    width = 3 * ((10 - kernel) // stride + 1)

    def cnn():
        return Sequential(
            Conv1d(1, 3, 3, seed=0),
            Activation("tanh"),
            AvgPool1d(kernel, stride=stride),
            Flatten(),
            Layer(width, 3, activation="linear", seed=2),
        )

    source = matrix_source(cnn(), "cross_entropy", n_inputs=12)
    # Every window of the pool summed at once, then one division for them all.
    assert "S1 = H1[:, windows2].sum(2)" in source
    assert f"H2 = div(S1, {float(kernel)!r})" in source
    if stride < kernel:  # a column in two windows gets both gradients
        assert "_scatter_add(dH1, windows2, " in source
    else:
        assert "dH1[:, windows2] += dS1[:, :, None]" in source
    runs = fit_both_ways(
        cnn, X, y, lambda params: optim.SGD(params, lr=0.05),
        loss="cross_entropy", epochs=3, batch_size=5, seed=0,
    )  # fmt: skip
    assert_same_training(runs)


# -- take: an embedding's rows, gathered --------------------------------------------------------


def embedding_network(rng: np.random.Generator, n_rows: int = 5, width: int = 3):
    """Two tokens' rows of one table, added, a tanh and a linear neuron: the loss per sample is
    (out - t)^2, with the token ids and the target t inputs."""
    rows = [[Value(w) for w in rng.normal(size=width)] for _ in range(n_rows)]
    last = [Value(w) for w in rng.normal(size=width)]

    def sample_loss(i, j, t):
        h = [(a + b).tanh() for a, b in zip(take(rows, i), take(rows, j), strict=True)]
        out = dot(last, h)
        return [(out - t) ** 2, out]

    return sample_loss, [p for row in rows for p in row] + last


@pytest.mark.parametrize("n", [1, 7, 200])
def test_the_rows_per_sample_indices_take_are_one_gather_with_eager_gradients(n):
    rng = np.random.default_rng(n)
    sample_loss, params = embedding_network(rng)
    step = batched.TrainingStep(ir.trace(sample_loss, 3, params, [1.0, 2.0, 0.0]), n_labels=1)
    # Both tokens' rows in one gather: I1 is (n, 2), E1 their rows side by side.
    assert "T1 = theta[0:15].reshape(5, 3)" in step.source
    assert "I1 = _row_indices(X, 5)" in step.source
    assert "E1 = T1[I1].reshape(n, 6)" in step.source
    assert "_scatter_rows(dT1, I1, dE1.reshape(n, 2, 3))" in step.source
    ids = rng.integers(0, 5, size=(n, 2)).astype(float)  # repeated ids: rows read many times
    targets = rng.normal(size=(n, 1))
    assert_step_is_eager(step, sample_loss, params, ids, targets)


@pytest.mark.parametrize("bad", [5.0, -1.0, 2.5])
def test_a_gather_refuses_an_index_that_is_not_a_row_as_take_does(bad):
    sample_loss, params = embedding_network(np.random.default_rng(0))
    step = batched.TrainingStep(ir.trace(sample_loss, 3, params, [1.0, 2.0, 0.0]), n_labels=1)
    theta = np.array([p.data for p in params])
    with pytest.raises(IndexError, match=rf"take: index {bad!r} is not a row of a table of 5 rows"):
        step(theta, np.array([[0.0, 1.0], [bad, 0.0]]), np.zeros((2, 1)))


def test_take_of_numbers_runs_batched_with_a_zero_gradient_for_the_index():
    rows = [1.0, -2.0, 5.0]
    traced = jit(lambda i, x: take(rows, i) * x)
    values, grads = run_batched(traced, [(0.0, 3.0), (2.0, 1.0), (1.0, 2.0)])
    assert values.tolist() == [3.0, 5.0, -4.0]
    assert grads[0].tolist() == [0.0, 0.0, 0.0]
    assert grads[1].tolist() == [1.0, 5.0, -2.0]
    assert traced.value_and_grad(2.0, 1.0) == (5.0, (0.0, 5.0))


# -- sequences: one layer's copies over positions, attention, packed ------------------------------


def tiny_gpt(
    rng: np.random.Generator, vocab: int = 5, block: int = 4, width: int = 4, heads: int = 2
):
    """A causal self-attention language model over Values, written as a learner writes it
    (lists of Values, `dot`, `logsumexp`, `take`): per sample, `block` token ids, as many
    targets and loss weights in, the weighted sum of the positions' losses out."""
    head = width // heads

    def matrix(rows: int, cols: int) -> list[list[Value]]:
        return [[Value(float(w)) for w in rng.normal(0.0, 0.5, cols)] for _ in range(rows)]

    wte, wpe = matrix(vocab, width), matrix(block, width)
    wq, wk, wv, head_out = (matrix(width, width) for _ in range(4))

    def sample_loss(*inputs):
        ids, targets, weights = inputs[:block], inputs[block : 2 * block], inputs[2 * block :]
        keys, values, losses = [], [], []
        for t in range(block):
            x = [a + b for a, b in zip(take(wte, ids[t]), wpe[t], strict=True)]
            q, k, v = ([dot(row, x) for row in m] for m in (wq, wk, wv))
            keys.append(k)
            values.append(v)
            mixed = []
            for h in range(heads):
                part = slice(h * head, (h + 1) * head)
                logits = [dot(q[part], key[part]) * head**-0.5 for key in keys]
                total = ops.LOGSUMEXP(*logits)
                attention = [(logit - total).exp() for logit in logits]
                for j in range(h * head, (h + 1) * head):
                    mixed.append(dot(attention, [value[j] for value in values]))
            x = [
                (a + b).tanh()
                for a, b in zip(x, [dot(row, mixed) for row in head_out], strict=True)
            ]
            out = [dot(row, x) for row in wte]  # tied: the embedding is the head
            nll = ops.LOGSUMEXP(*out) - take(out, targets[t])
            losses.append(nll * weights[t])
        return [vsum(losses)]

    params = [p for m in (wte, wpe, wq, wk, wv, head_out) for row in m for p in row]
    return sample_loss, params, (wte, wpe, wq, wk, wv, head_out)


def token_batch(rng: np.random.Generator, n: int, vocab: int = 5, block: int = 4) -> np.ndarray:
    """n sequences of 1..block tokens, padded: ids, targets, weights (0 on padding)."""
    rows = []
    for _ in range(n):
        length = int(rng.integers(1, block + 1))
        ids = rng.integers(0, vocab, block)
        targets = rng.integers(0, vocab, block)
        weights = (np.arange(block) < length) / length
        rows.append(np.concatenate([ids, targets, weights]))
    return np.array(rows, dtype=float)


@pytest.mark.parametrize("n", [1, 3, 64])
def test_attention_over_positions_runs_as_batched_products_with_eager_numbers(n):
    rng = np.random.default_rng(n)
    sample_loss, params, _ = tiny_gpt(rng)
    X = token_batch(rng, n)
    step = batched.TrainingStep(ir.trace(sample_loss, 12, params, X[0].tolist()))
    source = step.source
    # every position's embedding at once; q.k and weights.values as products per head
    assert "I1 = _row_indices(X[:, 0:4], 5)" in source
    assert source.count(".transpose(0, 1, 3, 2)") == 4  # each product forward, and its dV
    assert "np.take_along_axis(" in source  # the target's logit
    assert len(source.splitlines()) < 150, source
    loss, _, dtheta = step(np.array([p.data for p in params]), X)
    mean = vsum([sample_loss(*map(Value, row))[0] for row in X.tolist()]) / n
    mean.backward()
    assert close(loss, mean.data)
    assert all(close(g, p.grad) for g, p in zip(dtheta.tolist(), params, strict=True))


def test_attention_over_positions_gives_pytorchs_loss_and_gradients(torch):
    rng = np.random.default_rng(5)
    sample_loss, params, matrices = tiny_gpt(rng)
    X = token_batch(rng, 9)
    step = batched.TrainingStep(ir.trace(sample_loss, 12, params, X[0].tolist()))
    loss, _, dtheta = step(np.array([p.data for p in params]), X)
    wte, wpe, wq, wk, wv, head_out = (
        torch.tensor([[v.data for v in row] for row in m], dtype=torch.float64, requires_grad=True)
        for m in matrices
    )
    ids, targets, weights = (
        torch.tensor(X[:, :4]).long(),
        torch.tensor(X[:, 4:8]).long(),
        torch.tensor(X[:, 8:]),
    )
    x = wte[ids] + wpe
    q, k, v = ((x @ m.T).view(9, 4, 2, 2).transpose(1, 2) for m in (wq, wk, wv))
    causal = torch.ones(4, 4, dtype=torch.bool).tril()
    attention = ((q @ k.transpose(-1, -2)) * 2**-0.5).masked_fill(~causal, -math.inf).softmax(-1)
    mixed = (attention @ v).transpose(1, 2).reshape(9, 4, 4)
    x = (x + mixed @ head_out.T).tanh()
    nll = torch.nn.functional.cross_entropy(
        (x @ wte.T).reshape(-1, 5), targets.reshape(-1), reduction="none"
    )
    theirs = (nll * weights.reshape(-1)).sum() / 9
    theirs.backward()
    grads = torch.cat([m.grad.reshape(-1) for m in (wte, wpe, wq, wk, wv, head_out)])
    assert loss == pytest.approx(theirs.item(), abs=1e-12)
    assert np.allclose(dtheta, grads.numpy(), rtol=0.0, atol=1e-12)


def test_log_sum_exp_of_an_infinity_is_that_infinity_batched_as_eagerly():
    f = jit(lambda x, y: ops.LOGSUMEXP(x, y, x * 2.0))
    values, _ = run_batched(f, [(1.0, math.inf), (1.0, -math.inf), (-math.inf, -math.inf)])
    assert values.tolist() == [
        math.inf,
        ops.LOGSUMEXP.forward(1.0, -math.inf, 2.0),
        -math.inf,
    ]


def test_minus_zero_to_a_negative_odd_power_is_minus_infinity_on_every_path(torch):
    assert ops.IEEE_POW.forward(-0.0, -1.0) == -math.inf == torch.pow(torch.tensor(-0.0), -1.0)
    assert ops.IEEE_POW.forward(-0.0, -2.0) == math.inf
    values, _ = run_batched(jit(lambda x: ops.IEEE_POW(x, -1.0)), [(-0.0,), (0.0,)])
    assert values.tolist() == [-math.inf, math.inf]


# -- a long program: run by a walk over its equations, not compiled ----------------------------


def chain_of_units(x):
    """A chain of tanh units and their sum: nothing in it packs (a long program's shape)."""
    terms = [x]
    for _ in range(12):
        terms.append((terms[-1] * 0.999 + 0.001).tanh())
    return vsum(terms)


def gathered_and_reduced(x, y, z):
    """Columns read out of order, a row reduction, a log-sum-exp and a sum of products."""
    return ops.LOGSUMEXP(x * y, z, y - x) + dot([x, z, y, x], [y, y, z, 2.0]) + (z - x).relu()


def walked(f, *arrays, dtype=np.float64):
    """jit(f).batched over the arrays with the walk forced (every program counts as long), and
    the `<jit-` sources it compiled meanwhile."""
    from autograd_core.compiler import lowering

    before = {key for key in linecache.cache if key.startswith("<jit-")}
    original = lowering.LONG_PROGRAM
    lowering.LONG_PROGRAM = 0
    try:
        traced = jit(f)
        result = traced.batched(*[np.asarray(a, dtype) for a in arrays])
    finally:
        lowering.LONG_PROGRAM = original
    compiled = {key for key in linecache.cache if key.startswith("<jit-")} - before
    return traced, result, compiled


def dot_network(x, y):
    """A network of dot neurons: matrix products."""
    return HandWritten(seed=3)([x, y])


def with_op_parameters(x, y):
    """Ops with parameters, two of one op at one depth: each its own kernel in the walk."""
    return (x * x + 1.0) ** 2.5 + (x - y).leaky_relu(0.2) * (y - x).leaky_relu(0.05) + y**-1


@pytest.mark.parametrize(
    ("f", "n_args"),
    [(chain_of_units, 1), (gathered_and_reduced, 3), (dot_network, 2), (with_op_parameters, 2)],
    ids=["chain", "gathers-and-reductions", "matrix-products", "op-parameters"],
)
def test_a_long_program_walked_gives_the_numbers_of_its_compiled_source(f, n_args):
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=9) for _ in range(n_args)]
    traced, (values, grads), compiled = walked(f, *arrays)
    expected_values, expected_grads = jit(f).batched(*arrays)
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(np.array(grads), np.array(expected_grads))
    assert not compiled  # nothing of it was compiled: the function's source is not needed
    assert "def run(X):" in traced.matrix_source  # and still prints


def test_a_long_program_walked_stays_float32():
    x = np.linspace(-1.0, 1.0, 7)
    _, (values, grads), _ = walked(chain_of_units, x, dtype=np.float32)
    expected_values, expected_grads = jit(chain_of_units).batched(np.float32(x))
    assert values.dtype == grads.dtype == np.float32
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(grads, expected_grads)


def test_a_long_program_walked_raises_the_eager_error_and_no_numpy_warning():
    def f(x):
        return chain_of_units(x) + (x * 2.0).log()

    with pytest.raises(ValueError, match=r"log domain error: log\(-1.0\)"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            walked(f, [1.0, -0.5, 3.0])


def test_a_long_training_step_walked_gives_the_eager_training(monkeypatch):
    from autograd_core.compiler import lowering

    monkeypatch.setattr(lowering, "LONG_PROGRAM", 0)
    X, y = make_moons(30, noise=0.1, seed=2)
    runs = fit_both_ways(
        lambda: MLP(2, [5, 1], seed=0), X, y, loss="bce", epochs=3, batch_size=7, seed=1
    )
    assert_same_training(runs)


def test_a_seed_of_ones_and_a_negation_are_not_multiplied_in():
    traced = jit(lambda x, y: (x * y).tanh() + (x - y).exp())
    traced.batched(np.array([0.5]), np.array([2.0]))
    source = traced.matrix_source
    assert "np.full" not in source  # d(value) = 1: no array of ones, nothing times it
    assert "1.0 *" not in source and "dX[:, 1:2] -= dv2" in source  # not `+= -1.0 * dv2`
    assert "dv1 = 1.0 - v3 * v3" in source  # tanh's partial is the term itself
