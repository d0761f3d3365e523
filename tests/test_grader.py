"""check_backward: a hand-written backward pass graded against the engine's gradients."""

import math

import pytest

from autograd_core import BackwardCheckError, Value, check_backward, vsum


def neuron(w1, w2, b, x1, x2):
    return (w1 * x1 + w2 * x2 + b).tanh()


def neuron_backward(w1, w2, b, x1, x2):
    t = math.tanh(w1 * x1 + w2 * x2 + b)
    d = 1 - t * t
    return [d * x1, d * x2, d, d * w1, d * w2]


def softmax_cross_entropy(*logits):  # the right class is 1
    m = max(z.data for z in logits)
    return vsum([(z - m).exp() for z in logits]).log() + m - logits[1]


def softmax_cross_entropy_backward(*logits):
    exps = [math.exp(z - max(logits)) for z in logits]
    total = sum(exps)
    return [e / total - (1.0 if i == 1 else 0.0) for i, e in enumerate(exps)]


def test_a_right_backward_passes(torch):
    assert check_backward(neuron, neuron_backward, 0.3, -0.5, 0.1, 1.2, 0.7) is True
    assert check_backward(softmax_cross_entropy, softmax_cross_entropy_backward, 0.2, 1.5, -0.3)
    # and the engine's own gradients, which the grader trusts, are PyTorch's
    z = torch.tensor([0.2, 1.5, -0.3], dtype=torch.float64, requires_grad=True)
    torch.nn.functional.cross_entropy(z[None], torch.tensor([1])).backward()
    assert softmax_cross_entropy_backward(0.2, 1.5, -0.3) == pytest.approx(z.grad.tolist())


def test_a_wrong_gradient_names_the_first_wrong_input_and_by_how_much():
    def wrong(w1, w2, b, x1, x2):
        grads = neuron_backward(w1, w2, b, x1, x2)
        grads[2] += 0.25  # the bias
        return grads

    with pytest.raises(BackwardCheckError, match=r"^input 2 \(b = 0\.1\).*off by \+0\.25") as e:
        check_backward(neuron, wrong, 0.3, -0.5, 0.1, 1.2, 0.7)
    assert e.value.index == 2 and e.value.yours - e.value.engine == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("mistake", "hint"),
    [
        (lambda g: [-v for v in g], "sign is flipped"),
        (lambda g: [2 * g[0]] + g[1:], "factor 2"),
        (lambda g: [0.0] + g[1:], "a path from it to the output is missing"),
        (lambda g: [v / 3 for v in g], "factor 3, the number of inputs"),
        (lambda g: [g[0] + 0.1] + g[1:], "chain rule"),
        (lambda g: [g[0], g[1] + 1.0, g[2]], "off by exactly 1"),
        (lambda g: [math.inf] + g[1:], "not finite"),
    ],
    ids=["sign", "two", "zero", "mean", "other", "one", "inf"],
)
def test_the_hint_names_the_kind_of_slip(mistake, hint):
    def wrong(*logits):
        return mistake(softmax_cross_entropy_backward(*logits))

    with pytest.raises(BackwardCheckError, match=f"Hint: .*{hint}"):
        check_backward(softmax_cross_entropy, wrong, 0.2, 1.5, -0.3)


@pytest.mark.parametrize(
    "mistake",
    [lambda g: [g[0], g[1] + 1.0, g[2]], lambda g: [g[0] + 0.1] + g[1:]],
    ids=["one", "other"],
)
def test_the_hint_names_the_slip_not_the_fix_of_a_particular_exercise(mistake):
    def wrong(*logits):
        return mistake(softmax_cross_entropy_backward(*logits))

    with pytest.raises(BackwardCheckError) as error:
        check_backward(softmax_cross_entropy, wrong, 0.2, 1.5, -0.3)
    hint = error.value.hint.lower()
    assert not any(word in hint for word in ("softmax", "right class", "batch norm", "-z_y"))


def test_a_gradient_for_a_flat_input_says_no_path_should_count():
    with pytest.raises(BackwardCheckError, match="right gradient is 0"):
        check_backward(lambda x, y: x.relu() + y, lambda x, y: [1.0, 1.0], -1.0, 2.0)


def test_a_single_input_takes_a_single_number():
    assert check_backward(lambda x: x * x, lambda x: 2 * x, 3.0)


def test_the_wrong_number_of_gradients_raises_value_error():
    with pytest.raises(ValueError, match="returned 2 numbers for 3 inputs"):
        check_backward(lambda a, b, c: a * b * c, lambda a, b, c: [b * c, a * c], 1.0, 2.0, 3.0)


def test_a_gradient_that_is_not_a_number_raises_type_error():
    with pytest.raises(TypeError, match="gradient 1 must be a number, got str"):
        check_backward(lambda a, b: a * b, lambda a, b: [b, "a"], 1.0, 2.0)


def test_an_input_that_is_not_a_number_raises_type_error():
    with pytest.raises(TypeError, match="input 0 must be a real number, got Value"):
        check_backward(lambda a: a, lambda a: 1.0, Value(1.0))


def test_the_error_is_an_assertion_error_so_a_test_runner_reports_a_failure():
    assert issubclass(BackwardCheckError, AssertionError)


def test_inputs_without_parameter_names_are_called_x_and_their_index():
    with pytest.raises(BackwardCheckError, match=r"^input 1 \(x1 = 1\.5\)"):
        right = softmax_cross_entropy_backward(0.2, 1.5, -0.3)
        check_backward(softmax_cross_entropy, lambda *z: [right[0], 0.0, 0.0], 0.2, 1.5, -0.3)


def test_an_infinite_gradient_that_is_right_passes():
    # d/dx sqrt(x) at 0 is inf, for the engine and for the hand-written formula alike
    assert check_backward(lambda x: x.sqrt(), lambda x: [math.inf], 0.0)


def test_a_wrong_infinite_gradient_is_named_without_a_nan_difference():
    with pytest.raises(BackwardCheckError) as caught:
        check_backward(lambda x: x.sqrt(), lambda x: [-math.inf], 0.0)
    assert "your gradient is -inf, the engine's is inf." in str(caught.value)
    assert "nan" not in str(caught.value)
