"""Random expression graphs (hypothesis): gradients and Hessians against PyTorch.

Each example is a small random graph over one to three leaves, built step by step from every op
of the table, each step taking its inputs from any node made so far (so nodes are reused).
Where a step would leave the op's safe domain (log of a negative, an overflow, an infinite
partial), its inputs are first squashed into (0.5, 1.5) by sigmoid(x) + 0.5.

The graph is recorded as a program: a list of steps, replayed on Values and on torch tensors,
so both libraries differentiate the same function.
"""

import math

from helpers import (
    assert_close,
    build,
    leaf_values,
    on_tensors,
    on_values,
    steps,
)
from hypothesis import given, settings

from autograd_core import Value, hessian


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
