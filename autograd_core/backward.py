"""Reverse mode: walk the graph from the output back to the leaves, applying the chain rule.

d(root)/d(input) = sum over the input's consumers of d(root)/d(consumer) * d(consumer)/d(input),
where d(consumer)/d(input) is the local partial the op table gave in the forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

from .modes import mode
from .value import Value, _is_real, describe

# Pushed onto the stack just above a node whose inputs are being ordered: when it comes off
# again, every input of that node is in the order, so the node can follow them.
_INPUTS_DONE = object()


def topological_order(root: Value, stop_at: Collection[Value] = ()) -> list[Value]:
    """Every node `root` depends on, each listed after all of its inputs; `root` comes last.

    A depth-first walk with an explicit stack instead of recursion, so a graph of any depth
    works, in time and memory linear in its size; the stack holds only nodes (and markers), so
    the walk allocates nothing per node. Nodes in `stop_at` other than `root` are treated as
    leaves: the walk does not pass them.
    """
    order: list[Value] = []
    visited: set[Value] = set()
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if node is _INPUTS_DONE:
            order.append(stack.pop())
        elif node not in visited:
            visited.add(node)
            stack.append(node)
            stack.append(_INPUTS_DONE)
            if node is root or node not in stop_at:
                # Reversed, so that the first input is walked first.
                for child in reversed(node.inputs):
                    if child not in visited:
                        stack.append(child)
    return order


def backward(root: Value, seed: Any = 1.0, create_graph: bool = False) -> None:
    """Set `.grad` on every node of root's graph to d(root)/d(node) times `seed`.

    Leaves accumulate, as in PyTorch; every other node is reset first, so it never mixes in a
    gradient left by an earlier call.
    """
    _check_seed(seed)
    order = topological_order(root)
    if create_graph:
        grads = propagate(order, {root: Value(seed)}, create_graph=True)
        for node in order:
            if node.inputs:
                node.grad = grads.get(node, 0.0)
            elif node in grads:
                # A fresh leaf takes the gradient as it is, without a `0.0 +` node in front.
                earlier = node.grad
                fresh = isinstance(earlier, float) and earlier == 0.0
                node.grad = grads[node] if fresh else earlier + grads[node]
        return
    # Every node starts this pass from zero; the leaves' earlier gradients are added back once
    # at the end, so two passes give exactly twice one pass (summing a leaf's paths onto an
    # old total would round differently).
    leaves = [node for node in order if not node.inputs]
    earlier = [leaf.grad for leaf in leaves]
    for node in order:
        node.grad = 0.0
    root.grad = float(seed)
    check = mode.anomaly
    try:
        for node in reversed(order):
            g = node.grad
            # One partial per input, by construction. zip's strict=True would cost a keyword
            # call per node, a sixth of the whole loop on a graph of small nodes.
            for child, local in zip(node.inputs, node.local_grads):  # noqa: B905
                child.grad += local * g
            if check:
                _check_contributions(node, node.local_grads, g)
    except FloatingPointError:
        # Anomaly mode stopped the pass: the leaves keep what they held before it.
        for leaf, grad in zip(leaves, earlier, strict=True):
            leaf.grad = grad
        raise
    for leaf, grad in zip(leaves, earlier, strict=True):
        leaf.grad = grad + leaf.grad


def propagate(order: Sequence[Value], grads: dict[Value, Any], create_graph: bool) -> dict:
    """Push gradients from `grads` (the seeds) back through `order`, into a new mapping.

    With `create_graph` the local partials are recomputed from the op table on the Values
    themselves, so every gradient is a Value whose own graph can be differentiated.
    Nodes that no gradient reaches are absent from the result.
    """
    grads = dict(grads)
    check = mode.anomaly
    for node in reversed(order):
        g = grads.get(node)
        if g is None or not node.inputs:
            continue
        if create_graph:
            # An infinite partial (sqrt'(0)) is a node like any other here; anomaly mode
            # reports it below, as this op's backward step, not as the forward of a rule's op.
            mode.anomaly = False
            try:
                local_grads = node._op.partials(node, *node.inputs)
            finally:
                mode.anomaly = check
        else:
            local_grads = node.local_grads
        if check:
            _check_contributions(node, local_grads, g)
        for child, local in zip(node.inputs, local_grads, strict=True):
            contribution = local * g
            grads[child] = grads[child] + contribution if child in grads else contribution
    return grads


def gradients(root: Value, wrt: Sequence[Value], create_graph: bool = False) -> list[Any]:
    """d(root)/d(w) for each w in `wrt`, without touching any `.grad` (as torch.autograd.grad).

    The walk stops at the `wrt` nodes, so a `wrt` node that was itself computed (inside an
    outer transform) is differentiated as if it were a leaf. Unreached ones get 0.0.
    """
    order = topological_order(root, stop_at=set(wrt))
    grads = propagate(order, {root: 1.0}, create_graph)
    return [grads.get(w, 0.0) for w in wrt]


def _check_seed(seed: Any) -> None:
    if isinstance(seed, bool) or not _is_real(seed):
        raise TypeError(f"backward seed must be a real number, got {type(seed).__name__}")
    if not math.isfinite(seed):
        raise ValueError(f"backward seed must be finite, got {seed!r}")


def _check_contributions(node: Value, local_grads: Sequence[Any], g: Any) -> None:
    """Anomaly mode: raise at the first op whose backward step makes a NaN or inf."""
    for index, local in enumerate(local_grads):
        # On floats, so that with create_graph the check itself records no node (a graph
        # product would raise first, naming '*' instead of this op).
        contribution = float(local) * float(g)
        if not math.isfinite(contribution):
            where = f" labelled {node.label!r}" if node.label else ""
            raise FloatingPointError(
                f"{node.op} node{where} produced {contribution!r} in the backward pass "
                f"for input {index} (local gradient {float(local)!r} times incoming "
                f"{float(g)!r}); its inputs were {describe(node.inputs)}"
            )
