"""A grader for backward passes written by hand.

The learner writes `forward(*xs) -> Value` with the engine, and `my_backward(*xs)` by hand:
the derivative of the output with respect to each input, as plain numbers. `check_backward`
compares the two and, at the first input where they differ, says which input, by how much,
and what kind of slip the difference looks like.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

from ..engine.value import _is_real
from .reverse import grad

# Agreement: |yours - engine's| <= ATOL + RTOL * |engine's|, loose enough for a hand-written
# formula that sums in another order, tight enough for any real slip.
RTOL = 1e-6
ATOL = 1e-9


class BackwardCheckError(AssertionError):
    """`check_backward` found an input whose hand-written gradient is wrong."""

    def __init__(
        self, index: int, name: str, x: float, yours: float, engine: float, hint: str
    ) -> None:
        self.index, self.name, self.x = index, name, x
        self.yours, self.engine, self.hint = yours, engine, hint
        difference = yours - engine
        # inf - inf and anything - nan have no size: then the two numbers say it all.
        off = f" (off by {difference:+.6g})" if math.isfinite(difference) else ""
        super().__init__(
            f"input {index} ({name} = {x:g}): your gradient is {yours!r}, the engine's is "
            f"{engine!r}{off}.\nHint: {hint}"
        )


def check_backward(
    forward: Callable[..., Any], my_backward: Callable[..., Any], *inputs: float
) -> bool:
    """True when `my_backward(*inputs)` gives d forward / d x_i for every input.

    `forward` takes the inputs as Values and returns a Value; `my_backward` takes them as
    floats and returns one number per input (a single number for a single input). Otherwise
    raises `BackwardCheckError` naming the first wrong input, the difference, and a hint.
    """
    for index, x in enumerate(inputs):
        if not _is_real(x):
            raise TypeError(f"input {index} must be a real number, got {type(x).__name__}")
    xs = [float(x) for x in inputs]
    n = len(xs)
    engine = grad(forward)(*xs)
    engine = list(engine) if isinstance(engine, tuple) else [engine]
    yours = _as_numbers(my_backward(*xs), len(xs))
    for index, (mine, right) in enumerate(zip(yours, engine, strict=True)):
        # An infinite gradient is right only when it is the same infinity (a tolerance
        # relative to inf would accept any number, and inf - inf is nan).
        close = math.isfinite(right) and abs(mine - right) <= ATOL + RTOL * abs(right)
        if not (mine == right or close):
            hint = _hint(mine, right, yours, engine)
            raise BackwardCheckError(index, _names(forward, n)[index], xs[index], mine, right, hint)
    return True


def _names(forward: Callable[..., Any], n: int) -> list[str]:
    """The names of forward's parameters, when it has one per input; else x0, x1, ..."""
    try:
        parameters = list(inspect.signature(forward).parameters.values())
    except (TypeError, ValueError):  # a builtin or a callable without a signature
        parameters = []
    if len(parameters) == n and all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters):
        return [p.name for p in parameters]
    return [f"x{i}" for i in range(n)]


def _as_numbers(result: Any, n: int) -> list[float]:
    if n == 1 and _is_real(result):
        return [float(result)]
    if not isinstance(result, (list, tuple)):
        raise TypeError(
            f"my_backward must return a list of {n} numbers (one gradient per input), "
            f"got {type(result).__name__}"
        )
    if len(result) != n:
        raise ValueError(
            f"my_backward returned {len(result)} numbers for {n} inputs: "
            "give one gradient per input, in the order of the inputs"
        )
    for index, number in enumerate(result):
        if not _is_real(number):
            raise TypeError(
                f"my_backward's gradient {index} must be a number, got {type(number).__name__}"
            )
    return [float(number) for number in result]


def _hint(yours: float, right: float, all_yours: Sequence[float], engine: Sequence[float]) -> str:
    """What a difference between a hand-written and the right gradient usually means."""
    n = len(engine)
    if not math.isfinite(yours):
        return "yours is not finite: look for a division by zero or a log of 0 in your formula."
    if right != 0.0 and yours == 0.0:
        return (
            "you gave 0, but this input does change the output: a path from it to the output "
            "is missing from your sum."
        )
    if right == 0.0:
        return (
            "the right gradient is 0: this input does not change the output here (a relu "
            "below 0, a term that cancels), so no path through it should count."
        )
    if math.isclose(abs(yours - right), 1.0, rel_tol=1e-6):
        return (
            "yours is off by exactly 1: a term of this gradient that does not depend on the "
            "inputs' values is missing or extra. Which parts of the output are linear in this "
            "input?"
        )
    ratio = yours / right
    if math.isclose(ratio, -1.0, rel_tol=1e-6):
        return "the sign is flipped: check a subtraction (d/dy of x - y is -1) or a minus sign."
    if math.isclose(ratio, 2.0, rel_tol=1e-6) or math.isclose(ratio, 0.5, rel_tol=1e-6):
        return "yours is off by a factor 2: d/dx x^2 is 2x; is a 1/2 or a 2 missing or extra?"
    if n > 1 and (math.isclose(ratio, n, rel_tol=1e-6) or math.isclose(ratio, 1 / n, rel_tol=1e-6)):
        return (
            f"yours is off by a factor {n}, the number of inputs: a mean's 1/{n} missing or "
            "applied twice."
        )
    wrong = [i for i, (a, b) in enumerate(zip(all_yours, engine, strict=True)) if a != b]
    if len(wrong) == n and all(
        b != 0.0 and math.isclose(a / b, ratio, rel_tol=1e-6)
        for a, b in zip(all_yours, engine, strict=True)
    ):
        return f"every gradient is off by the same factor {ratio:.6g}: check the outermost step."
    return (
        "apply the chain rule node by node from the output back: each node's gradient is the "
        "sum over its uses of (gradient of the use) times (local derivative). A value used in "
        "several places gets a term from every one of them."
    )
