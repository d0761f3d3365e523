"""detect_anomaly: the first NaN or inf made in forward or backward raises, naming the op."""

import math

import pytest

from autograd_core import Value, detect_anomaly, grad


def test_inf_minus_inf_in_forward_raises_naming_the_op_and_inputs():
    big = Value(math.inf, label="big")
    with (
        detect_anomaly(),
        pytest.raises(
            FloatingPointError,
            match=r"^- produced nan in the forward pass from inputs \(big=inf, inf\)",
        ),
    ):
        big - Value(math.inf)


def test_overflow_to_inf_in_forward_raises():
    with detect_anomaly(), pytest.raises(FloatingPointError, match=r"^\* produced inf"):
        Value(1e308) * 10


def test_nan_only_in_backward_raises_naming_the_op():
    # sqrt(0) = 0 is fine; its derivative 1 / (2 sqrt 0) is inf.
    x = Value(0.0, label="x")
    y = x.sqrt()
    y.label = "root"
    message = (
        r"^sqrt node labelled 'root' produced inf in the backward pass.*inputs were \(x=0\.0\)"
    )
    with detect_anomaly(), pytest.raises(FloatingPointError, match=message):
        y.backward()


def test_backward_anomaly_with_create_graph_raises_floating_point_error():
    with detect_anomaly(), pytest.raises(FloatingPointError, match=r"^sqrt node produced inf"):
        Value(0.0).sqrt().backward(create_graph=True)


def test_anomaly_in_a_transform_raises():
    with detect_anomaly(), pytest.raises(FloatingPointError, match="sqrt"):
        grad(lambda x: x.sqrt())(0.0)


def test_outside_detect_anomaly_nan_and_inf_pass_silently():
    assert math.isnan((Value(math.inf) - Value(math.inf)).data)
    x = Value(0.0)
    x.sqrt().backward()
    assert x.grad == math.inf


def test_detect_anomaly_ends_with_its_block():
    with detect_anomaly():
        pass
    assert math.isnan((Value(math.inf) - Value(math.inf)).data)


def test_backward_stopped_by_anomaly_leaves_earlier_leaf_gradients_as_they_were():
    x = Value(0.0)
    x.grad = 5.0
    y = x.sqrt()
    with detect_anomaly(), pytest.raises(FloatingPointError, match="sqrt"):
        y.backward()
    assert x.grad == 5.0
