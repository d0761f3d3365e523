"""Reverse mode: walk the graph from the output back to the leaves, applying the chain rule.

d(root)/d(input) = sum over the input's consumers of d(root)/d(consumer) * d(consumer)/d(input),
where d(consumer)/d(input) is the local partial the op table gave in the forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from .modes import mode
from .value import Value, _is_real, describe, hooked_nodes, run_hooks


def topological_order(root: Value, stop_at: Collection[Value] = ()) -> list[Value]:
    """Every node `root` depends on, each listed after all of its inputs; `root` comes last.

    A depth-first walk with an explicit stack instead of recursion, so a graph of any depth
    works, in time and memory linear in its size: a node taken off the stack for the first time
    goes back on under a marker, with its inputs above it (the first input on top, so walked
    first); when the marker comes off, every input is in the order, and the node follows.
    Nodes in `stop_at` other than `root` are treated as leaves: the walk does not pass them.
    """
    order: list[Value] = []
    visited: set[Value] = set()
    stack: list[Any] = [root]
    # The methods, looked up once: the loop runs once per node and per input.
    visit, take, follow = visited.add, stack.pop, order.append
    while stack:
        node = take()
        if node is _INPUTS_DONE:
            follow(take())
        elif node not in visited:
            visit(node)
            edges = node._edges
            if not edges or (stop_at and node is not root and node in stop_at):
                follow(node)  # a leaf, or a node the walk stops at: it waits for nothing
            elif len(edges) == 4:  # two inputs (a, da, b, db), as most nodes: b, then a on top
                stack += (node, _INPUTS_DONE, edges[2], edges[0])
            else:
                stack += (node, _INPUTS_DONE)
                stack += edges[-2::-2]  # the inputs, last first
    return order


# Pushed onto the stack just above a node whose inputs are being walked: when it comes off
# again, they all are in the order.
_INPUTS_DONE = object()


def backward(root: Value, seed: Any = 1.0, create_graph: bool = False) -> None:
    """Set `.grad` on every node of root's graph to d(root)/d(node) times `seed`.

    Leaves accumulate, as in PyTorch; every other node is reset first, so it never mixes in a
    gradient left by an earlier call. A pass stopped by an error (anomaly mode, a hook) leaves
    the leaves' gradients as they were.
    """
    _check_seed(seed)
    if root._op is not None and not root.inputs:
        made_by = root._op.title(root.params)
        raise RuntimeError(
            f"backward() on a Value computed by {made_by!r} under no_grad(): no graph was "
            "recorded, so no gradient can reach anything it came from. Compute it outside "
            "no_grad() (or inside enable_grad()) to differentiate it"
        )
    order, leaves, earlier = _order_marking_grads(root)
    try:
        chain_rule(order, Value(seed) if create_graph else float(seed), create_graph)
    except BaseException:
        for leaf, grad in zip(leaves, earlier, strict=True):
            leaf.grad = grad
        raise
    # The earlier gradient first, then this pass's total, so two passes give exactly twice one
    # (adding each path onto an old total would round differently). A fresh leaf takes the
    # gradient as it is: with create_graph, no `0.0 +` node in front of it.
    if not create_graph:
        for leaf, grad in zip(leaves, earlier, strict=True):
            leaf.grad = grad + leaf.grad
        return
    for leaf, grad in zip(leaves, earlier, strict=True):
        if not (type(grad) is float and grad == 0.0):
            leaf.grad = grad + leaf.grad


def _order_marking_grads(root: Value) -> tuple[list[Value], list[Value], list[Any]]:
    """`topological_order(root)`, its leaves, and the leaves' gradients before this pass.

    The same walk, with one difference: a node is marked as visited in its own `grad`, which
    the chain rule resets next, instead of in a set. Asking a set of tens of thousands of nodes
    whether it holds one costs more than the rest of the walk (the set's table is too large
    for the processor's cache, and each node lands in a different part of it), while the
    node's own slot is at hand: the walk reads the node's inputs from it anyway.
    """
    visited = object()  # this walk's own mark, which no gradient left by another pass can be
    order: list[Value] = []
    leaves: list[Value] = []
    earlier: list[Any] = []
    stack: list[Any] = [root]
    take, follow = stack.pop, order.append
    try:
        while stack:
            node = take()
            if node is _INPUTS_DONE:
                follow(take())
            elif node.grad is not visited:
                edges = node._edges
                if len(edges) == 4:  # two inputs (a, da, b, db), as most nodes: b, then a on top
                    stack += (node, _INPUTS_DONE, edges[2], edges[0])
                elif edges:
                    stack += (node, _INPUTS_DONE)
                    stack += edges[-2::-2]  # the inputs, last first
                else:
                    leaves.append(node)
                    earlier.append(node.grad)
                    follow(node)
                node.grad = visited
    except BaseException:  # stopped (KeyboardInterrupt, MemoryError): no node keeps the mark
        for node in order + stack:
            if node is not _INPUTS_DONE and node.grad is visited:
                node.grad = 0.0
        for leaf, grad in zip(leaves, earlier, strict=True):
            leaf.grad = grad
        raise
    return order, leaves, earlier


def chain_rule(
    order: Sequence[Value], seed: Any, create_graph: bool = False, stop_at: Collection[Value] = ()
) -> None:
    """Set `.grad` of every node of `order` (root last) to d(root)/d(node) times `seed`:
    `reverse_walk` run to its end."""
    for _ in reverse_walk(order, seed, create_graph, stop_at):
        pass  # the walk yields only when asked for its steps


def reverse_walk(
    order: Sequence[Any],
    seed: Any,
    create_graph: bool = False,
    stop_at: Collection[Any] = (),
    *,
    steps: bool = False,
) -> Iterator[tuple[Any, Any, list[tuple[Any, Any]]]]:
    """The chain rule, once for every consumer of the graph: `backward`, `gradients` (so `grad`
    and the grader) and the stepper. (A traced program of `jit` runs the same steps on its
    variables, written out in `ir._chain_rule`, where no node has a number, hook or stop.)

    Sets `.grad` of every node of `order` (root last) to d(root)/d(node) times `seed`. Each
    node, once all its consumers have added their share `g`, adds `local * g` to each of its
    inputs, where `local` is its partial derivative for that input. On floats the partials are
    the ones the forward pass stored; with `create_graph` they are recomputed from the op table
    on the nodes themselves, so every gradient is a Value that can be differentiated again.
    Nodes in `stop_at` pass nothing on to their inputs.
    Hooks registered with `Value.register_hook` see, and may replace, a node's gradient once
    complete.

    With `steps=True`, yields `(node, g, terms)` for every node that has inputs, just before
    its terms are added: `terms` are the (input, partial) pairs `counts` let through.
    """
    # With create_graph a gradient starts as NOTHING, which `+` replaces by the first term,
    # so no `0.0 + g` node is recorded in front of each gradient.
    zero = NOTHING if create_graph else 0.0
    for node in order:
        node.grad = zero
    order[-1].grad = seed
    check = mode.anomaly
    hooked = hooked_nodes()
    stop = set(stop_at) or None
    # False in the usual case (no hooks anywhere, no stops): then it costs one test per node.
    watch = hooked is not None or stop is not None
    if not (watch or check or create_graph or steps):
        # The usual pass, on floats with nothing to watch or check: only the chain rule.
        for node in reversed(order):
            g = node.grad
            if g - g == 0.0:  # g is finite: every term counts, or none when g is 0
                if g:
                    # Each input and its partial, from the one tuple (a, da, b, db). The nodes
                    # of one and two inputs (every operator and function) are written out: the
                    # iterator and zip a loop needs would cost as much as the arithmetic.
                    edges = node._edges
                    n = len(edges)
                    if n == 4:
                        a, da, b, db = edges
                        a.grad += da * g
                        b.grad += db * g
                    elif n == 2:
                        a, da = edges
                        a.grad += da * g
                    else:  # a leaf (no inputs), or a sum, dot, ... of many
                        pairs = iter(edges)
                        for child, local in zip(pairs, pairs):  # noqa: B905
                            child.grad += local * g
            else:
                for child, local in zip(node.inputs, node.local_grads, strict=True):
                    if counts(child, local, g):
                        child.grad += local * g
        return
    for node in reversed(order):
        edges = node._edges
        if watch:
            if hooked is not None and id(node) in hooked:
                node.grad = run_hooks(hooked[id(node)](), node.grad)
            if stop is not None and node in stop:
                continue
        if not edges:
            continue  # a leaf: its gradient is complete, and there is nothing to pass on
        inputs = edges[::2]
        g = node.grad
        if create_graph:
            if g is NOTHING:
                if steps:
                    yield node, g, []
                continue
            local_grads = _partials_on_graph(node)
            number = _number(g)
        elif not g:
            if steps:
                yield node, g, []
            continue  # 0 times any partial adds nothing
        else:
            local_grads = edges[1::2]
            number = g
        if check:
            _check_contributions(node, local_grads, g)
        if number - number == 0.0 and number:
            # g is finite and not 0 (for a finite g, g - g is 0.0): every term counts. One
            # partial per input, by construction; zip's strict=True would cost a keyword call
            # per node, a sixth of the whole loop on a graph of small nodes.
            terms = zip(inputs, local_grads)  # noqa: B905
        else:
            terms = [pair for pair in zip(inputs, local_grads, strict=True) if counts(*pair, g)]
        if steps:
            terms = list(terms)
            yield node, g, terms
        for child, local in terms:
            child.grad += local * g
    if create_graph:
        for node in order:
            if node.grad is NOTHING:
                node.grad = 0.0


def counts(child: Any, local: Any, g: Any) -> bool:
    """Whether the chain rule adds the term `local * g` to `child`'s gradient.

    0 times anything is 0 here: a partial that is exactly 0 adds nothing even when `g` is inf
    or nan (relu below 0, x**0: the node does not move with that input), and a gradient that is
    exactly 0 passes nothing on even through an infinite partial (sqrt at 0). PyTorch agrees
    where it masks (relu, pow), and gives nan where it multiplies (0 * sqrt(x) at 0). In a
    traced program a number is known only for constants: a term whose factor is the constant 0
    is dropped (the other's number comes at run time, where the careful product takes over),
    and a constant input needs no gradient at all.
    """
    if type(child) is float:  # a constant written into a traced program
        return False
    local_number, g_number = _number(local), _number(g)
    if local_number == 0.0:
        return g_number is not None and math.isfinite(g_number)
    if g_number == 0.0:
        return local_number is not None and math.isfinite(local_number)
    return True


def _number(x: Any) -> float | None:
    """x's number (a Value's data); None for a traced variable, whose number comes at run time."""
    try:
        return float(x)
    except TypeError:
        return None


class _Nothing:
    """The gradient of a node no term has reached yet: `NOTHING + g` is g itself."""

    def __add__(self, other: Any) -> Any:
        return other

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING = _Nothing()


def _partials_on_graph(node: Value) -> tuple:
    """node's local partials recomputed on the graph, so that they are differentiable."""
    # An infinite partial (sqrt'(0)) is a node like any other here; anomaly mode reports it in
    # the chain rule, as this op's backward step, not as the forward of a rule's op.
    check = mode.anomaly
    mode.anomaly = False
    try:
        return node._op.partials(node, *node.inputs, *node.params)
    finally:
        mode.anomaly = check


def gradients(root: Value, wrt: Sequence[Value], create_graph: bool = False) -> list[Any]:
    """d(root)/d(w) for each w in `wrt`, leaving every `.grad` as it was (as torch.autograd.grad).

    The walk stops at the `wrt` nodes, so a `wrt` node that was itself computed (inside an
    outer transform) is differentiated as if it were a leaf. Unreached ones get 0.0.
    The chain rule works in the nodes' `.grad` and puts them back as they were afterwards, so
    as `backward`, it must not run while another thread differentiates the same nodes.
    """
    stop_at = set(wrt)
    order = topological_order(root, stop_at=stop_at)
    before = [node.grad for node in order]
    try:
        chain_rule(order, 1.0, create_graph, stop_at - {root})
        reached = set(order)
        return [w.grad if w in reached else 0.0 for w in wrt]
    finally:
        for node, grad in zip(order, before, strict=True):
            node.grad = grad


def _check_seed(seed: Any) -> None:
    if not _is_real(seed):  # bool is not a real number here
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
