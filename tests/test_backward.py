"""backward: the chain rule over the whole graph (SPEC 3.3), and the graph walk under it."""

import math

import pytest

from autograd_core import Value, gradients, topological_order


def test_micrograd_readme_example_ports_by_changing_the_import():
    a = Value(-4.0)
    b = Value(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    assert f"{g.data:.4f} {a.grad:.4f} {b.grad:.4f}" == "24.7041 138.8338 645.5773"


def test_topological_order_lists_every_node_after_its_inputs():
    a, b = Value(1.0), Value(2.0)
    c = a * b
    d = c + a
    order = topological_order(d)
    assert set(order) == {a, b, c, d} and len(order) == 4
    assert order.index(a) < order.index(c) < order.index(d) and order.index(b) < order.index(c)
    assert order[-1] is d


def test_a_chain_of_a_million_nodes_backpropagates_without_recursion_error():
    # Each node is y + x: one path from the root to x per node, so dy/dx counts the nodes.
    x = Value(1.0)
    y = x
    for _ in range(1_000_000):
        y = y + x
    y.backward()
    assert x.grad == 1_000_001.0


def test_a_node_used_many_times_gets_the_sum_of_all_its_paths():
    a = Value(2.0)
    (a * a * a + a).backward()
    assert a.grad == 3 * 2.0**2 + 1


def test_backward_twice_doubles_the_leaf_gradients():
    a, b = Value(2.0), Value(-3.0)
    out = (a * b).tanh() + a
    out.backward()
    once = (a.grad, b.grad)
    out.backward()
    assert (a.grad, b.grad) == (2 * once[0], 2 * once[1])


def test_backward_twice_leaves_intermediates_with_the_latest_pass_only():
    # micrograd adds the second pass onto the first here.
    a, b = Value(2.0), Value(-3.0)
    product = a * b
    out = product.tanh() + a
    out.backward()
    first = (product.grad, out.grad)
    out.backward()
    assert (product.grad, out.grad) == first


def test_backward_from_a_leaf_accumulates_its_seed():
    a = Value(2.0)
    a.backward()
    a.backward()
    assert a.grad == 2.0


def test_the_seed_scales_every_gradient():
    a, b = Value(2.0), Value(-3.0)
    (a * b).backward(2.5)
    assert (a.grad, b.grad) == (-7.5, 5.0)


@pytest.mark.parametrize("seed", [math.nan, math.inf, -math.inf])
def test_a_non_finite_seed_raises_value_error(seed):
    with pytest.raises(ValueError, match=f"seed must be finite, got {seed!r}"):
        (Value(2.0) * 3).backward(seed)


def test_a_seed_that_is_not_a_number_raises_type_error():
    with pytest.raises(TypeError, match="seed must be a real number, got str"):
        (Value(2.0) * 3).backward("1")


def test_create_graph_makes_the_gradient_a_differentiable_value():
    x = Value(2.0)
    (x**3).backward(create_graph=True)
    first = x.grad
    assert isinstance(first, Value) and first.data == 12.0  # 3x^2
    x.grad = 0.0
    first.backward()
    assert x.grad == 12.0  # 6x


def test_create_graph_gives_the_third_derivative():
    x = Value(0.5)
    x.sin().backward(create_graph=True)
    first, x.grad = x.grad, 0.0
    first.backward(create_graph=True)
    second, x.grad = x.grad, 0.0
    second.backward()
    assert x.grad == pytest.approx(-math.cos(0.5), rel=1e-15)


def test_create_graph_twice_accumulates_the_leaf_gradients():
    x = Value(2.0)
    out = x * x
    out.backward(create_graph=True)
    out.backward(create_graph=True)
    assert x.grad.data == 8.0


def test_gradients_returns_derivatives_without_touching_grad():
    a, b = Value(2.0), Value(-3.0)
    out = a * b
    assert gradients(out, [a, b]) == [-3.0, 2.0]
    assert (a.grad, b.grad, out.grad) == (0.0, 0.0, 0.0)


def test_gradients_of_an_unreached_node_is_zero():
    a, unused = Value(2.0), Value(5.0)
    assert gradients(a * a, [unused]) == [0.0]


def test_gradients_with_respect_to_an_intermediate_node_treats_it_as_a_leaf():
    x = Value(2.0)
    y = x * x
    assert gradients(y * 3 + y, [y]) == [4.0]
