"""Our Value as a drop-in for a minimal micrograd-style Value (`benchmarks.dropin`): the same
loop, written for that Value, gives the same numbers on ours."""

import math

from autograd_core import Value
from benchmarks import dropin


def test_a_scalar_gpt_written_for_the_minimal_value_gives_the_same_loss_and_gradients():
    assert dropin.check_same_numbers(tolerance=1e-12) <= 1e-12


def test_the_minimal_value_agrees_with_ours_op_by_op():
    def f(v):
        a, b = v(1.5), v(-0.5)
        out = ((a * b + 2) / (a - 3) - b**2 + (-a).exp() + (1 - b).log() + (a * b).relu()) * 0.5
        out.backward()
        return out.data, a.grad, b.grad

    for theirs, ours in zip(f(dropin.MinimalValue), f(Value), strict=True):
        assert math.isclose(theirs, ours, rel_tol=1e-12)


def test_the_report_has_forward_backward_and_step_rows_with_their_ratios():
    results = dropin.measure(repeats=1, steps=1)
    text = dropin.report(results)
    for part in ("forward", "backward", "step"):
        assert f"| {part} |" in text
        assert f"{results['ratios'][part]:.2f}x" in text
    assert results["nodes"] > 40_000
