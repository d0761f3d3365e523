"""The type checks `nn` makes of numbers it is given, written once.

`bool` is a subclass of `int` in Python, so `isinstance(True, numbers.Real)` holds and a flag
passed by mistake (`lr=True`) would be taken for the number 1. Every check of "a number" in
`nn` goes through these two, which accept int, float, NumPy and other real scalars, never bool.
"""

from __future__ import annotations

import numbers


def is_real(x: object) -> bool:
    """True for a real number (int, float, a NumPy real scalar, Fraction), False for a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def is_integer(x: object) -> bool:
    """True for a whole-number type (int, a NumPy integer), False for a bool or a float."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)
