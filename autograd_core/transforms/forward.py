"""Forward mode: push tangents from the inputs to the outputs, the chain rule run forwards.

Reverse mode (`backward`, `grad`) carries d(output)/d(node) from one output back to every
input: one pass gives the whole gradient of one output. Forward mode carries d(node)/d(input)
along one direction `v` from the inputs to every output:

    tangent(node) = sum over its inputs i of  d(node)/d(input_i) * tangent(input_i)

with the same local partials, from the same op table, as reverse mode uses. One forward pass
gives J v, the Jacobian times one direction, for every output at once. So for f from n inputs
to m outputs the whole Jacobian takes n forward passes (`jacfwd`) or m reverse passes
(`jacrev`): forward mode wins when n < m, reverse mode when m < n (a loss: m = 1).

The functions follow `torch.func.jvp`, `jacfwd` and `jacrev`, on positional numbers. They
compose with `grad`: `jvp(grad(f), xs, vs)` is a Hessian-vector product, forward-over-reverse.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from ..engine.backward import _partials_on_graph, gradients, topological_order
from ..engine.modes import enable_grad
from ..engine.value import Value, _is_real
from .reverse import _arguments, _nested, _output, _running_f

Function = Callable[..., Any]


def jvp(f: Function, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """`(f(*primals), J v)`: f's outputs and their derivatives along the direction `tangents`.

    d/dt f(primals + t * tangents) at t = 0, from one forward pass. `f` returns a Value (then
    both results are single numbers) or a sequence of Values (then both are tuples).
    Inside another transform the results are differentiable Values.
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(
            f"jvp needs one tangent per primal, got {len(primals)} primals "
            f"and {len(tangents)} tangents"
        )
    for tangent in tangents:
        if not (isinstance(tangent, Value) or _is_real(tangent)):
            raise TypeError(f"a tangent must be a real number, got {type(tangent).__name__}")
    nested = _nested(primals + tangents)
    args = _arguments(primals)
    with enable_grad():
        outputs, single = _outputs(f, args)
        derivatives = push_forward(outputs, dict(zip(args, tangents, strict=True)), nested)
    if not nested:
        outputs = [out.data for out in outputs]
        derivatives = [float(d) for d in derivatives]
    if single:
        return outputs[0], derivatives[0]
    return tuple(outputs), tuple(derivatives)


def push_forward(outputs: Sequence[Value], tangents: dict[Value, Any], on_graph: bool) -> list:
    """The tangent of each output, given the tangents of some nodes (the inputs).

    Visits every node the outputs depend on once, inputs before the nodes made from them, and
    sets tangent(node) = sum_i partial_i * tangent(input_i) over the inputs that have one.
    With `on_graph` the partials are recomputed on the Values, so tangents are differentiable.
    """
    tangent_of = dict(tangents)
    for node in _order(outputs, stop_at=set(tangents)):
        if node in tangents or not node.inputs:
            continue  # an input (its tangent is given) or a constant (its tangent is 0)
        partials = _partials_on_graph(node) if on_graph else node.local_grads
        total = None
        for child, partial in zip(node.inputs, partials, strict=True):
            if child in tangent_of:
                term = partial * tangent_of[child]
                total = term if total is None else total + term
        if total is not None:
            tangent_of[node] = total
    return [tangent_of.get(out, 0.0) for out in outputs]


def jacfwd(f: Function) -> Function:
    """`jacfwd(f)(*xs)[i][j]` is d output_i / d x_j, from one forward pass per input.

    An m x n list of lists (m = 1 when f returns a single Value), as `torch.func.jacfwd`.
    """

    @functools.wraps(f)
    def jacobian_f(*xs: Any) -> list[list[Any]]:
        columns = []
        for j in range(len(xs)):
            direction = [1.0 if k == j else 0.0 for k in range(len(xs))]
            _, column = jvp(f, xs, direction)
            columns.append(column if isinstance(column, tuple) else (column,))
        return [list(row) for row in zip(*columns, strict=True)]

    return jacobian_f


def jacrev(f: Function) -> Function:
    """`jacrev(f)(*xs)[i][j]` is d output_i / d x_j, from one reverse pass per output.

    The same m x n list of lists as `jacfwd`, as `torch.func.jacrev`.
    """

    @functools.wraps(f)
    def jacobian_f(*xs: Any) -> list[list[Any]]:
        nested = _nested(xs)
        args = _arguments(xs)
        with enable_grad():
            outputs, _ = _outputs(f, args)
            rows = [gradients(out, args, create_graph=nested) for out in outputs]
        return rows if nested else [[float(d) for d in row] for row in rows]

    return jacobian_f


def _outputs(f: Function, args: list[Value]) -> tuple[list[Value], bool]:
    """f's outputs as a list of Values, and whether f returned a single one."""
    with _running_f():
        result = f(*args)
    if isinstance(result, (list, tuple)):
        return [_output(out) for out in result], False
    return [_output(result)], True


def _order(outputs: Sequence[Value], stop_at: set[Value]) -> list[Value]:
    """Every node the outputs depend on, each after its inputs (stopping at `stop_at`)."""
    order: list[Value] = []
    seen: set[Value] = set()
    for out in outputs:
        for node in topological_order(out, stop_at=stop_at):
            if node not in seen:
                seen.add(node)
                order.append(node)
    return order
