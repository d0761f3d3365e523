"""Functional transforms, as in JAX: each takes a function and returns a function.

`f` takes n positional numbers and returns a Value. Called with plain numbers, the transforms
return floats. Called inside another transform (from its `f`), they return Values built with
`create_graph`, so transforms compose: `grad(grad(f))(x)` is f''(x).

Nested transforms keep their derivatives apart. Each transform differentiates with respect to
fresh nodes it makes for its arguments (`x * 1`, a node whose input is the outer variable), and
stops its walk there: in `grad(lambda x: grad(lambda y: x * y)(x))`, the inner `grad` sees
`d(x * y)/dy = x` (y is its own node, not x), while the outer one sees through the fresh node
to x and gets d/dx x = 1. Without them both would differentiate with respect to the same
node, and the inner one would answer 2x (JAX and torch.func call this perturbation confusion).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..engine import ops
from ..engine.backward import gradients
from ..engine.modes import enable_grad, mode, no_grad
from ..engine.value import Value, _is_real

Function = Callable[..., Any]


def value_and_grad(f: Function) -> Function:
    """`value_and_grad(f)(*xs)` is `(f(*xs), grad(f)(*xs))`, from one forward and one backward."""

    @functools.wraps(f)
    def value_and_grad_f(*xs: Any) -> tuple[Any, Any]:
        nested = _nested(xs)
        args = _arguments(xs)
        with enable_grad():
            out = _call(f, args)
            grads = gradients(out, args, create_graph=nested)
        if not nested:
            out, grads = out.data, [float(g) for g in grads]
        return out, grads[0] if len(grads) == 1 else tuple(grads)

    return value_and_grad_f


def grad(f: Function) -> Function:
    """`grad(f)(x1, ..., xn)` is (df/dx1, ..., df/dxn); a single float when n == 1."""
    value_and_grad_f = value_and_grad(f)

    @functools.wraps(f)
    def grad_f(*xs: Any) -> Any:
        return value_and_grad_f(*xs)[1]

    return grad_f


def hessian(f: Function) -> Function:
    """`hessian(f)(*xs)[i][j]` is d2f/dxi dxj, an n x n list of lists of floats."""

    @functools.wraps(f)
    def hessian_f(*xs: Any) -> list[list[Any]]:
        nested = _nested(xs)
        args = _arguments(xs)
        with enable_grad():
            first = gradients(_call(f, args), args, create_graph=True)
            rows = [
                gradients(g, args, create_graph=nested)
                if isinstance(g, Value)
                else [0.0] * len(args)
                for g in first
            ]
        return rows if nested else [[float(h) for h in row] for row in rows]

    return hessian_f


def _nested(xs: tuple) -> bool:
    """Whether this transform must return Values: it runs inside another, or got Values."""
    return mode.transform_depth > 0 or any(isinstance(x, Value) for x in xs)


def _arguments(xs: tuple) -> list[Value]:
    """The nodes to differentiate with respect to: a fresh leaf for each number, and a fresh
    node `x * 1` on top of each Value, so that an outer transform's x stays apart from ours."""
    return [ops.MUL(x, 1.0) if isinstance(x, Value) else Value(x) for x in xs]


@contextmanager
def _running_f() -> Iterator[None]:
    mode.transform_depth += 1
    try:
        yield
    finally:
        mode.transform_depth -= 1


@dataclass(frozen=True)
class Mismatch:
    """One argument where the analytic and the numerical derivative disagree."""

    index: int
    analytic: float
    numeric: float

    def __str__(self) -> str:
        return f"argument {self.index}: analytic {self.analytic!r}, numeric {self.numeric!r}"


class GradcheckError(AssertionError):
    """`gradcheck` found derivatives that disagree with central differences."""

    def __init__(self, mismatches: list[Mismatch]) -> None:
        self.mismatches = mismatches
        lines = "\n  ".join(map(str, mismatches))
        super().__init__(f"gradient check failed for {len(mismatches)} argument(s):\n  {lines}")


def gradcheck(
    f: Function, *xs: float, eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-8
) -> bool:
    """Compare `grad(f)` with central differences (f(x + eps) - f(x - eps)) / (2 eps).

    Returns True when |analytic - numeric| <= atol + rtol * |numeric| for every argument;
    otherwise raises `GradcheckError` listing each argument that disagrees.
    """
    if not (_is_real(eps) and 0.0 < eps < math.inf):
        raise ValueError(f"gradcheck needs a step eps > 0 (and finite), got eps={eps!r}")
    analytic = grad(f)(*xs)
    analytic = (analytic,) if len(xs) == 1 else analytic
    mismatches = []
    for index, (x, a) in enumerate(zip(xs, analytic, strict=True)):
        numeric = (_at(f, xs, index, x + eps) - _at(f, xs, index, x - eps)) / (2.0 * eps)
        if not abs(a - numeric) <= atol + rtol * abs(numeric):
            mismatches.append(Mismatch(index, a, numeric))
    if mismatches:
        raise GradcheckError(mismatches)
    return True


def _at(f: Function, xs: tuple[float, ...], index: int, moved: float) -> float:
    """f at xs with argument `index` replaced by `moved`, computed without a graph."""
    args = [Value(moved if i == index else x) for i, x in enumerate(xs)]
    with no_grad():
        return float(_call(f, args))


def _call(f: Function, args: list[Value]) -> Value:
    """f(*args) as a Value; a number f returns (a NumPy scalar too) is a constant."""
    with _running_f():
        return _output(f(*args))


def _output(out: Any) -> Value:
    """What f returned, as a Value: a number (a NumPy scalar too) is a constant."""
    if isinstance(out, Value):
        return out
    if _is_real(out):
        return Value(out)  # a constant: every derivative is zero
    raise TypeError(f"the function must return a Value or a number, got {type(out).__name__}")
