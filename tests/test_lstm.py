"""nn.recurrent.LSTMCell: one step and a whole unrolled sequence against torch.nn.LSTMCell
(float64, 1e-12, every gradient), finite differences, state, export and errors."""

import random

import pytest
from helpers import leaf_central_difference

from autograd_core import Value
from nn import load, save, to_torch
from nn.recurrent import LSTMCell, unroll

NAMES = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
TOLERANCE = {"rel": 1e-12, "abs": 1e-14}


def _vector(n, seed):
    rng = random.Random(seed)
    return [rng.uniform(-1.5, 1.5) for _ in range(n)]


def _values(numbers):
    return [Value(x) for x in numbers]


def _twins(torch, input_size, hidden_size, seed):
    cell = LSTMCell(input_size, hidden_size, seed=seed)
    return cell, to_torch(cell)[0]


def _tensor(torch, numbers):
    return torch.tensor(numbers, dtype=torch.float64, requires_grad=True)


def _assert_parameter_grads_equal(cell, reference):
    for name in NAMES:
        ours = [
            p.grad for row in getattr(cell, name) for p in (row if isinstance(row, list) else [row])
        ]
        assert ours == pytest.approx(getattr(reference, name).grad.flatten().tolist(), **TOLERANCE)


@pytest.mark.parametrize("given_state", [True, False], ids=["state", "zeros"])
def test_one_step_h_and_c_and_their_gradients_equal_torch(torch, given_state):
    cell, reference = _twins(torch, 3, 4, seed=0)
    x = _values(_vector(3, seed=1))
    state = (_values(_vector(4, seed=2)), _values(_vector(4, seed=3))) if given_state else None
    h, c = cell(x, state)
    a, b = _vector(4, seed=4), _vector(4, seed=5)
    loss = sum(ai * hi for ai, hi in zip(a, h, strict=True)) + sum(
        bi * ci for bi, ci in zip(b, c, strict=True)
    )
    loss.backward()

    x_t = _tensor(torch, [v.data for v in x])
    state_t = tuple(_tensor(torch, [v.data for v in s]) for s in state) if given_state else None
    h_t, c_t = reference(x_t, state_t)
    f64 = torch.float64
    ((h_t * torch.tensor(a, dtype=f64)).sum() + (c_t * torch.tensor(b, dtype=f64)).sum()).backward()

    assert [v.data for v in h] == pytest.approx(h_t.tolist(), **TOLERANCE)
    assert [v.data for v in c] == pytest.approx(c_t.tolist(), **TOLERANCE)
    assert [v.grad for v in x] == pytest.approx(x_t.grad.tolist(), **TOLERANCE)
    if given_state:
        for ours, theirs in zip(state, state_t, strict=True):
            assert [v.grad for v in ours] == pytest.approx(theirs.grad.tolist(), **TOLERANCE)
    _assert_parameter_grads_equal(cell, reference)


def test_unrolled_sequence_equals_a_torch_loop_in_value_and_gradient(torch):
    cell, reference = _twins(torch, 2, 3, seed=6)
    xs = [_values(_vector(2, seed=10 + t)) for t in range(7)]
    h0, c0 = _values(_vector(3, seed=7)), _values(_vector(3, seed=8))
    states = unroll(cell, xs, (h0, c0))
    loss = sum(states[-1]) + 0.5 * states[2][1]
    loss.backward()

    xs_t = _tensor(torch, [[v.data for v in x] for x in xs])
    h_t, c_t = _tensor(torch, [v.data for v in h0]), _tensor(torch, [v.data for v in c0])
    state, hs = (h_t, c_t), []
    for x in xs_t:
        state = reference(x, state)
        hs.append(state[0])
    (hs[-1].sum() + 0.5 * hs[2][1]).backward()

    assert [[v.data for v in h] for h in states] == [
        pytest.approx(h.tolist(), **TOLERANCE) for h in hs
    ]
    assert [v.grad for x in xs for v in x] == pytest.approx(
        xs_t.grad.flatten().tolist(), **TOLERANCE
    )
    assert [v.grad for v in h0] == pytest.approx(h_t.grad.tolist(), **TOLERANCE)
    assert [v.grad for v in c0] == pytest.approx(c_t.grad.tolist(), **TOLERANCE)
    _assert_parameter_grads_equal(cell, reference)


def test_gradients_equal_central_differences():
    cell = LSTMCell(2, 3, seed=1)
    xs = [_values(_vector(2, seed=20 + t)) for t in range(3)]

    def loss():
        return sum(unroll(cell, xs)[-1])

    loss().backward()
    for leaf in [*cell.parameters(), *xs[0]]:
        expected = leaf_central_difference(loss, leaf)
        assert leaf.grad == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_state_dict_is_torchs_and_save_load_keep_the_numbers(torch, tmp_path):
    cell = LSTMCell(3, 2, seed=3)
    reference = torch.nn.LSTMCell(3, 2, dtype=torch.float64)
    ours = {
        k: (len(v), *([len(v[0])] if isinstance(v[0], list) else []))
        for k, v in cell.state_dict().items()
    }
    assert ours == {k: tuple(t.shape) for k, t in reference.state_dict().items()}
    assert LSTMCell.state_shapes(input_size=3, hidden_size=2) == ours
    save(cell, tmp_path / "lstm.json")
    loaded = load(tmp_path / "lstm.json")
    assert isinstance(loaded, LSTMCell)
    assert loaded.state_dict() == cell.state_dict()


def test_outputs_are_labelled_for_drawing_and_unroll_labels_the_steps():
    cell = LSTMCell(1, 2, seed=0)
    h, c = cell([0.5])
    assert [v.label for v in h] == ["h0", "h1"]
    assert [v.label for v in c] == ["c0", "c1"]
    states = unroll(cell, [[0.1], [0.2]])
    assert [v.label for v in states[1]] == ["t2.h0", "t2.h1"]


def test_a_bad_state_is_refused_with_what_was_expected():
    cell = LSTMCell(2, 3, seed=0)
    with pytest.raises(ValueError, match=r"state as a pair \(h, c\) or None, got list"):
        cell([0.0, 0.0], [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="LSTMCell expected a cell state of 3 numbers, got 2"):
        cell([0.0, 0.0], ([0.0] * 3, [0.0] * 2))
    with pytest.raises(ValueError, match="LSTMCell expected a hidden state of 3 numbers, got 1"):
        cell([0.0, 0.0], ([0.0], None))
    with pytest.raises(ValueError, match="expected 2 inputs, got 3"):
        cell([0.0] * 3)
