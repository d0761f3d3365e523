"""The numbers under the op table: forward functions on floats, with the domain checks.

Each checked function raises at the op with the op's name and the value it was given:
`log` of a number <= 0 and `sqrt` of a negative raise `ValueError`, a division by zero
`ZeroDivisionError`, an `exp` or `**` too large for a float `OverflowError`. The IEEE
functions give inf or nan where Python would raise: the rules need them for derivatives that
are infinite at a point (d/dx sqrt x at 0), as PyTorch gives them.
"""

from __future__ import annotations

import math


def checked_exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        raise OverflowError(f"exp overflow: exp({x!r}) is larger than the largest float") from None


def checked_log(x: float) -> float:
    if x <= 0.0:
        raise ValueError(f"log domain error: log({x!r}) needs an input > 0")
    return math.log(x)


def checked_sqrt(x: float) -> float:
    if x < 0.0:
        raise ValueError(f"sqrt domain error: sqrt({x!r}) needs an input >= 0")
    return math.sqrt(x)


def checked_div(x: float, y: float) -> float:
    if y == 0.0:
        raise ZeroDivisionError(f"division by zero: {x!r} / {y!r}")
    return x / y


def checked_pow(x: float, y: float) -> float:
    if x < 0.0 and not y.is_integer():
        raise ValueError(f"pow domain error: negative base {x!r} to non-integer power {y!r}")
    if x == 0.0 and y < 0.0:
        raise ZeroDivisionError(f"pow: {x!r} ** {y!r} divides by zero")
    try:
        return x**y
    except OverflowError:
        raise OverflowError(
            f"pow overflow: {x!r} ** {y!r} is larger than the largest float"
        ) from None


def stable_sigmoid(x: float) -> float:
    # Only ever exponentiate a non-positive number, so no input overflows.
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def relu(x: float) -> float:
    # `<=`, not `>`: a nan is neither, and must come out nan (as in PyTorch), not 0.
    return 0.0 if x <= 0.0 else x


def leaky_relu(x: float, slope: float) -> float:
    return x if x > 0.0 else slope * x


def ieee_power(x: float, e: float) -> float:
    """x ** e as IEEE and PyTorch give it: +-inf where Python raises (0 ** -1, overflow), nan
    for a negative base to a non-integer power (where Python gives a complex number)."""
    if x < 0.0 and not e.is_integer():
        return math.nan
    try:
        return x**e
    except ZeroDivisionError:
        # 0 to a negative power: inf, -inf for -0.0 to an odd power (1 / -0.0 is -inf)
        return -math.inf if math.copysign(1.0, x) < 0.0 and e % 2.0 == 1.0 else math.inf
    except OverflowError:
        # Only a negative base to an odd integer power overflows to -inf.
        return -math.inf if x < 0.0 and e % 2.0 == 1.0 else math.inf


def log_or_nan(x: float) -> float:
    """The factor log x of d/dy x^y = x^y log x, as PyTorch gives it: log x for x > 0; 0 at
    x = 0, where 0^y is 0 for every y > 0 so the derivative is 0 (not 0 * -inf = nan); nan below.
    """
    if x > 0.0:
        return math.log(x)
    return 0.0 if x == 0.0 else math.nan


def sign(x: float) -> float:
    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)


def step(x: float) -> float:
    return 1.0 if x > 0.0 else 0.0


def vsum(*xs: float) -> float:
    return sum(xs)


def dot(*ws_then_xs: float) -> float:
    half = len(ws_then_xs) // 2
    return sum(map(float.__mul__, ws_then_xs[:half], ws_then_xs[half:]))


def logsumexp(*xs: float) -> float:
    """log(e^x1 + ... + e^xn), computed as m + log(sum e^(xi - m)) with m = max xi, so that
    no exponent is positive and nothing overflows."""
    m = max(xs)
    if math.isinf(m) and not any(x != x for x in xs):  # with a nan among them the answer is nan
        return m
    return m + math.log(sum([math.exp(x - m) for x in xs]))


def take(i: float, *rows: float) -> float:
    """rows[i] for an index i that is a whole number from 0 to len(rows) - 1."""
    return rows[row_index(i, len(rows))]


def row_index(i: float, n_rows: int) -> int:
    """i as the index of one of n_rows rows; IndexError naming i and the range otherwise."""
    if not (float(i).is_integer() and 0 <= i < n_rows):
        raise IndexError(
            f"take: index {i!r} is not a row of a table of {n_rows} rows (0 to {n_rows - 1})"
        )
    return int(i)
