"""Random expression graphs (hypothesis): gradients and Hessians against PyTorch.

Each example is a small random graph over one to three leaves, built step by step from every op
of the table, each step taking its inputs from any node made so far (so nodes are reused).
Where a step would leave the op's safe domain (log of a negative, an overflow, an infinite
partial), its inputs are first squashed into (0.5, 1.5) by sigmoid(x) + 0.5.

The graph is recorded as a program: a list of steps, replayed on Values and on torch tensors,
so both libraries differentiate the same function.
"""

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_ops import TORCH_TWINS, arity, assert_close

from autograd_core import OPS, Value, hessian
from autograd_core.value import _apply

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
    return replay(program, leaves, lambda name, xs: _apply(OPS[name], *xs), Value)


def on_tensors(torch, program: list[Step], leaves: list) -> list:
    def apply(name, xs):
        return TORCH_TWINS[name](torch, *xs)

    def constant(c):
        return torch.tensor(c, dtype=torch.float64)

    return replay(program, leaves, apply, constant)


def safe_result(name: str, inputs: list[Value]) -> Value | None:
    """name applied to inputs, or None if it fails or makes a big, infinite or nan number."""
    try:
        out = _apply(OPS[name], *inputs)
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
        count = arity(OPS[name]) or len(picks)  # n-ary ops take all four picks
        inputs = tuple(pick % len(nodes) for pick in picks[:count])
        out = safe_result(name, [nodes[i] for i in inputs])
        if out is None:
            inputs = tuple(squashed(i) for i in inputs)
            out = _apply(OPS[name], *(nodes[i] for i in inputs))
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


@settings(max_examples=75, deadline=None)
@given(leaf_values, steps)
def test_random_graph_gradients_match_pytorch(torch, leaves, steps):
    program = build(leaves, steps)
    nodes = on_values(program, [Value(x) for x in leaves])
    nodes[-1].backward()
    tensors = on_tensors(
        torch, program, [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in leaves]
    )
    for t in tensors[len(leaves) :]:
        if t.requires_grad:
            t.retain_grad()
    if tensors[-1].requires_grad:
        tensors[-1].backward()
    for index, (node, tensor) in enumerate(zip(nodes, tensors, strict=True)):
        assert_close(node.data, tensor.item(), f"value of node {index}", tolerance=1e-10)
        if tensor.requires_grad:
            expected = 0.0 if tensor.grad is None else tensor.grad.item()
            assert_close(node.grad, expected, f"gradient of node {index}", tolerance=1e-10)


@settings(max_examples=50, deadline=None)
@given(leaf_values, steps)
def test_random_graph_hessians_match_pytorch(torch, leaves, steps):
    program = build(leaves, steps)
    ours = hessian(lambda *xs: on_values(program, list(xs))[-1])(*leaves)
    theirs = torch.autograd.functional.hessian(
        lambda x: on_tensors(torch, program, list(x.unbind()))[-1],
        torch.tensor(leaves, dtype=torch.float64),
    )
    for i, row in enumerate(ours):
        for j, entry in enumerate(row):
            # Where PyTorch gives nan or inf the point is singular for the Hessian (x ** y at
            # x = 0): the two libraries may give different non-answers, so it is not judged.
            if math.isfinite(theirs[i, j].item()):
                assert_close(entry, theirs[i, j].item(), f"d2/dx{i}dx{j}", tolerance=1e-10)
