"""backward: the chain rule over the whole graph (leaves accumulate, other nodes hold the latest
pass, any depth), the graph walk under it, and gradient hooks."""

import math
import random

import pytest

from autograd_core import Value, gradients, topological_order, vsum


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


def _recursive_order(root, stop_at=()):
    """The order of micrograd's recursive sort (first input first), for graphs of small depth."""
    order, visited = [], set()

    def visit(node):
        if node not in visited:
            visited.add(node)
            if node is root or node not in stop_at:
                for child in node.inputs:
                    visit(child)
            order.append(node)

    visit(root)
    return order


def _random_graph(seed, size=60):
    rng = random.Random(seed)
    nodes = [Value(rng.uniform(-1, 1)) for _ in range(4)]
    for _ in range(size):
        a, b = rng.choice(nodes), rng.choice(nodes)
        nodes.append(rng.choice([a + b, a * b, a.tanh(), vsum([a, b, rng.choice(nodes)])]))
    return nodes


@pytest.mark.parametrize("seed", range(20))
def test_topological_order_is_the_recursive_sorts_order(seed):
    nodes = _random_graph(seed)
    root = nodes[-1]
    assert topological_order(root) == _recursive_order(root)
    stop_at = set(random.Random(seed).sample(nodes, 8))
    assert topological_order(root, stop_at=stop_at) == _recursive_order(root, stop_at)


@pytest.mark.parametrize("seed", range(10))
def test_the_plain_pass_and_a_watched_pass_give_the_same_gradients(seed):
    # A hook anywhere makes the walk watch every node; the numbers must not change.
    nodes = _random_graph(seed)
    nodes[-1].backward()
    plain = [node.grad for node in nodes]
    for node in nodes[:4]:
        node.grad = 0.0
    handle = nodes[0].register_hook(lambda g: None)
    nodes[-1].backward()
    handle.remove()
    assert [node.grad for node in nodes] == plain


@pytest.mark.parametrize("seed", range(10))
def test_backward_adds_the_terms_in_the_order_gradients_does(seed):
    # backward walks the graph with its own marks; a different order would round differently.
    nodes = _random_graph(seed)
    leaves = nodes[:4]
    expected = gradients(nodes[-1], leaves)
    nodes[-1].backward()
    assert [leaf.grad for leaf in leaves] == expected


def test_a_backward_pass_stopped_in_its_walk_leaves_every_gradient_as_a_number():
    a, b = Value(2.0), Value(-3.0)
    a.grad = 0.5
    product = a * b
    product._edges = (a, b.data, object(), a.data)  # an input that is not a node stops the walk
    out = (product + b).tanh()
    with pytest.raises(AttributeError):
        out.backward()
    assert a.grad == 0.5 and b.grad == 0.0
    assert all(type(node.grad) is float for node in (product, out))


@pytest.mark.parametrize("watched", [False, True])
def test_an_infinite_gradient_adds_nothing_through_a_zero_partial(watched):
    # relu(-1) = 0, and d/dr sqrt(r) is inf at 0: relu's node gets an infinite gradient, which
    # its zero partial (relu is flat below 0) passes on as nothing, not as 0 * inf = nan.
    x, w = Value(-1.0), Value(2.0)
    r = x.relu()
    out = r.sqrt() + w * r
    if watched:
        out.register_hook(lambda g: None)
    out.backward()
    assert (r.grad, x.grad, w.grad) == (math.inf, 0.0, 0.0)


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


# -- gradient hooks, as PyTorch's Tensor.register_hook ----------------------------------------


def test_a_hook_that_clips_the_gradient_matches_torch_hooks(torch):
    x, y = Value(1.5), Value(-2.0)
    hidden = x * y * 3.0  # d(out)/d(hidden) = 2 * hidden = -18, clipped to -1
    hidden.register_hook(lambda g: max(-1.0, min(1.0, g)))
    (hidden * hidden).backward()
    tx, ty = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1.5, -2.0))
    t_hidden = tx * ty * 3.0
    t_hidden.register_hook(lambda g: g.clamp(-1.0, 1.0))
    (t_hidden * t_hidden).backward()
    assert (x.grad, y.grad) == (tx.grad.item(), ty.grad.item()) == (6.0, -4.5)


def test_a_hook_that_records_sees_each_gradient_once_per_pass_as_torch_does(torch):
    seen, seen_by_torch = [], []
    x = Value(0.5)
    hidden = x.tanh()
    hidden.register_hook(seen.append)
    x.register_hook(seen.append)
    out = hidden * hidden + hidden
    out.backward()
    out.backward()
    tx = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    t_hidden = tx.tanh()
    t_hidden.register_hook(lambda g: seen_by_torch.append(g.item()))
    tx.register_hook(lambda g: seen_by_torch.append(g.item()))
    t_out = t_hidden * t_hidden + t_hidden
    t_out.backward(retain_graph=True)
    t_out.backward()
    assert seen == pytest.approx(seen_by_torch, rel=1e-15)
    assert len(seen) == 4


def test_a_leaf_hook_changes_what_is_accumulated_not_the_earlier_gradient():
    x = Value(2.0)
    x.grad = 10.0
    x.register_hook(lambda g: 2 * g)
    (x * 3.0).backward()
    assert x.grad == 10.0 + 2 * 3.0


def test_a_removed_hook_is_not_called():
    calls = []
    x = Value(2.0)
    handle = x.register_hook(calls.append)
    (x * x).backward()
    handle.remove()
    handle.remove()  # twice is harmless
    (x * x).backward()
    assert calls == [4.0]


def test_hooks_run_with_create_graph_and_see_values():
    seen = []
    x = Value(3.0)
    x.register_hook(seen.append)
    (x * x * x).backward(create_graph=True)
    assert isinstance(seen[0], Value) and seen[0].data == 27.0


def test_hooks_run_in_the_transforms_too():
    seen = []
    w = Value(2.0)
    w.register_hook(seen.append)
    from autograd_core import grad

    assert grad(lambda x: w * x * x)(3.0) == 12.0
    assert seen == [9.0] and w.grad == 0.0


def test_a_hook_returning_something_else_raises_type_error_and_leaves_grads_alone():
    x = Value(2.0)
    x.grad = 1.0
    x.register_hook(lambda g: "oops")
    with pytest.raises(TypeError, match="hook must return None, a number or a Value, got str"):
        (x * x).backward()
    assert x.grad == 1.0


def test_register_hook_needs_a_function():
    with pytest.raises(TypeError, match="register_hook needs a function, got int"):
        Value(1.0).register_hook(3)


def test_hooked_nodes_are_registered_until_removed_or_freed_so_passes_skip_the_search():
    from autograd_core.engine.value import HOOKED, hooked_nodes

    x, y = Value(1.0), Value(2.0)
    handle = x.register_hook(lambda g: None)
    y.register_hook(lambda g: None)
    y_id = id(y)
    assert id(x) in HOOKED and y_id in HOOKED
    handle.remove()
    assert id(x) not in HOOKED
    del y  # freed with its hook still registered
    assert y_id not in HOOKED
    x.register_hook(lambda g: None)
    assert id(x) in HOOKED and hooked_nodes() is HOOKED


def test_with_no_hook_anywhere_a_pass_does_not_look_for_hooks():
    import gc

    from autograd_core.engine.value import HOOKED, hooked_nodes

    gc.collect()  # Values with hooks that other tests left in reference cycles
    if HOOKED:
        pytest.skip("a Value with a hook is still alive elsewhere")
    assert hooked_nodes() is None


# Graphs where the chain rule meets 0 times inf or nan: relu below 0 before a sqrt at 0, x**0
# at 0, a mask, a sqrt at 0 behind a zero weight, and the infinite gradient that is right.
SINGULAR = [
    (lambda x: x.relu().sqrt(), -1.0),
    (lambda x: (x**0.0) * x.sqrt(), 0.0),
    (lambda x: (x * 0.0).sqrt() + x, 2.0),
    (lambda x: x.sqrt(), 0.0),
    (lambda x: (x * 0.0).sqrt() * x, 3.0),
]


@pytest.mark.parametrize(("f", "x"), SINGULAR)
def test_backward_the_stepper_the_grader_jit_and_grad_take_the_same_terms(f, x):
    from autograd_core import backward_steps, check_backward, grad, jit

    leaf = Value(x)
    out = f(leaf)
    final = {}
    for step in backward_steps(out):
        for c in step.contributions:
            final[c.input] = c.after
    out.backward()
    expected = leaf.grad
    assert final[leaf] == expected
    assert grad(f)(x) == expected
    assert jit(f).value_and_grad(x)[1] == expected
    assert check_backward(f, lambda x: [expected], x)


def test_the_walk_yields_each_step_before_adding_its_terms():
    from autograd_core.engine.backward import reverse_walk

    a = Value(3.0)
    b = a * a
    order = topological_order(b)
    walk = reverse_walk(order, 1.0, steps=True)
    node, g, terms = next(walk)
    assert (node, g) == (b, 1.0) and terms == [(a, 3.0), (a, 3.0)]
    assert a.grad == 0.0  # not yet added
    assert list(walk) == []
    assert a.grad == 6.0
