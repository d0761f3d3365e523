"""nn.recurrent: the Elman and GRU cells and backprop through time against PyTorch, and errors."""

import json
import math
import random
import statistics

import pytest
from helpers import assert_same_training, fit_both_ways, leaf_central_difference

from autograd_core import Value, topological_order
from nn import load, save, to_torch
from nn.modules import Layer, Module
from nn.recurrent import GRUCell, RNNCell, unroll

NAMES = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
# Each cell as ours and PyTorch's: (make ours from sizes and a seed, PyTorch's class, its options)
CELLS = {
    "rnn-tanh": (lambda i, h, seed: RNNCell(i, h, "tanh", seed=seed), "RNNCell", {}),
    "rnn-relu": (
        lambda i, h, seed: RNNCell(i, h, "relu", seed=seed),
        "RNNCell",
        {"nonlinearity": "relu"},
    ),
    "gru": (lambda i, h, seed: GRUCell(i, h, seed=seed), "GRUCell", {}),
}


def _vector(n, seed):
    rng = random.Random(seed)
    return [rng.uniform(-1.5, 1.5) for _ in range(n)]


def _sequence(length, size, seed):
    rng = random.Random(seed)
    return [[rng.uniform(-1.5, 1.5) for _ in range(size)] for _ in range(length)]


def _grads(tree):
    return tree.grad if isinstance(tree, Value) else [_grads(child) for child in tree]


def _flat(tree):
    """Nested lists of numbers, flattened, for `pytest.approx` (which takes one level only)."""
    return [tree] if not isinstance(tree, list) else [x for child in tree for x in _flat(child)]


def _close(ours, theirs):
    return _flat(ours) == pytest.approx(_flat(theirs), rel=1e-12, abs=1e-14)


def _cells(torch, kind, input_size, hidden_size, seed):
    """Our cell of `kind` and PyTorch's, holding the same weights."""
    make, torch_name, options = CELLS[kind]
    cell = make(input_size, hidden_size, seed)
    reference = getattr(torch.nn, torch_name)(
        input_size, hidden_size, dtype=torch.float64, **options
    )
    reference.load_state_dict(
        {k: torch.tensor(v, dtype=torch.float64) for k, v in cell.state_dict().items()}
    )
    return cell, reference


def _assert_parameter_grads_equal(cell, reference):
    for name in NAMES:
        assert _close(_grads(getattr(cell, name)), getattr(reference, name).grad.tolist()), name


# -- one step ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("given_h", [True, False], ids=["h", "no-h"])
def test_one_step_forward_and_gradients_equal_pytorch(torch, kind, given_h):
    cell, reference = _cells(torch, kind, 3, 4, seed=0)
    x = [Value(v) for v in _vector(3, seed=1)]
    h = [Value(v) for v in _vector(4, seed=2)] if given_h else None
    coefficients = _vector(4, seed=3)
    out = cell(x, h)
    sum(c * v for c, v in zip(coefficients, out, strict=True)).backward()

    x_t = torch.tensor([v.data for v in x], dtype=torch.float64, requires_grad=True)
    h_t = (
        torch.tensor([v.data for v in h], dtype=torch.float64, requires_grad=True)
        if given_h
        else None
    )
    out_t = reference(x_t, h_t)
    (out_t * torch.tensor(coefficients, dtype=torch.float64)).sum().backward()

    assert _close([v.data for v in out], out_t.tolist())
    assert _close(_grads(x), x_t.grad.tolist())
    if given_h:
        assert _close(_grads(h), h_t.grad.tolist())
    _assert_parameter_grads_equal(cell, reference)


@pytest.mark.parametrize("cell", [RNNCell(2, 3, seed=0), GRUCell(2, 3, seed=0)], ids=repr)
def test_one_step_gradients_equal_finite_differences_for_inputs_state_and_parameters(cell):
    x = [Value(v) for v in _vector(2, seed=1)]
    h = [Value(v) for v in _vector(3, seed=2)]
    coefficients = [0.5, -1.0, 2.0]

    def loss():
        return sum(c * v for c, v in zip(coefficients, cell(x, h), strict=True))

    loss().backward()
    for leaf in [*x, *h, *cell.parameters()]:
        assert leaf.grad == pytest.approx(leaf_central_difference(loss, leaf), rel=1e-6, abs=1e-9)


# -- through time -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CELLS)
def test_unrolled_sequence_equals_a_pytorch_loop_in_value_and_gradient(torch, kind):
    cell, reference = _cells(torch, kind, 2, 3, seed=4)
    xs = [[Value(v) for v in step] for step in _sequence(6, 2, seed=5)]
    h0 = [Value(v) for v in _vector(3, seed=6)]
    states = unroll(cell, xs, h0)
    # A loss on the last state and on a middle one: gradients reach back along both paths.
    loss = sum(states[-1]) + 0.5 * states[2][1]
    loss.backward()

    xs_t = torch.tensor(
        [[v.data for v in step] for step in xs], dtype=torch.float64, requires_grad=True
    )
    h_t = torch.tensor([v.data for v in h0], dtype=torch.float64, requires_grad=True)
    h, states_t = h_t, []
    for x_t in xs_t:
        h = reference(x_t, h)
        states_t.append(h)
    loss_t = states_t[-1].sum() + 0.5 * states_t[2][1]
    loss_t.backward()

    assert loss.data == pytest.approx(loss_t.item(), rel=1e-12)
    assert _close([[v.data for v in s] for s in states], [s.tolist() for s in states_t])
    assert _close(_grads(xs), xs_t.grad.tolist())
    assert _close(_grads(h0), h_t.grad.tolist())
    _assert_parameter_grads_equal(cell, reference)


@pytest.mark.parametrize(
    ("cell", "network"), [(RNNCell(2, 3, seed=7), "RNN"), (GRUCell(2, 3, seed=7), "GRU")]
)
def test_torch_rnn_with_the_same_weights_gives_the_same_states(torch, cell, network):
    rnn = getattr(torch.nn, network)(2, 3, dtype=torch.float64)
    rnn.load_state_dict(
        {f"{k}_l0": torch.tensor(v, dtype=torch.float64) for k, v in cell.state_dict().items()}
    )
    xs = _sequence(5, 2, seed=8)
    outputs, _ = rnn(torch.tensor(xs, dtype=torch.float64))
    assert _close([[v.data for v in s] for s in unroll(cell, xs)], outputs.tolist())


def test_every_step_uses_the_same_weight_values():
    cell = RNNCell(1, 2, seed=0)
    states = unroll(cell, [[1.0], [2.0], [3.0]])
    kernels = {node.inputs[0].inputs[:5] for state in states for node in state}
    unit0 = (*cell.weight_ih[0], cell.bias_ih[0], *cell.weight_hh[0], cell.bias_hh[0])
    # 1 + 1 + 2 + 1 weights per unit; every step reads the same ones: 2 distinct lists in all.
    assert unit0 in kernels and len(kernels) == 2


def test_a_weight_used_at_every_step_gets_the_sum_of_its_gradients_over_time():
    """Backprop through time is the chain rule: a shared weight's gradient is the sum over steps."""
    cell = RNNCell(1, 1, seed=0)
    xs = [[0.5], [-1.0], [2.0]]
    unroll(cell, xs)[-1][0].backward()
    w = cell.weight_ih[0][0]
    total = w.grad
    numeric = leaf_central_difference(lambda: unroll(cell, xs)[-1][0], w)
    assert total == pytest.approx(numeric, rel=1e-6)


def test_each_hidden_unit_is_one_dot_node_then_its_activation():
    cell = RNNCell(2, 3, seed=0)
    h = cell([1.0, 2.0])
    assert [v.op for v in h] == ["tanh"] * 3
    (pre,) = h[0].inputs
    assert pre.op == "dot" and len(pre.inputs) == 2 * (2 + 1 + 3 + 1)
    assert RNNCell(2, 3, "relu", seed=0)([1.0, 2.0])[0].op == "relu"


def test_a_hidden_state_of_none_is_zeros_as_in_pytorch():
    cell = RNNCell(2, 3, seed=0)
    assert [v.data for v in cell([0.3, 0.1])] == [v.data for v in cell([0.3, 0.1], [0, 0, 0])]


# -- state, initialisation, repr --------------------------------------------------------------


@pytest.mark.parametrize("kind", CELLS)
def test_state_dict_has_pytorchs_names_and_shapes(torch, kind):
    cell, reference = _cells(torch, kind, 3, 5, seed=0)
    state = json.loads(json.dumps(cell.state_dict()))
    assert list(state) == list(reference.state_dict()) == NAMES
    for name in NAMES:
        assert torch.tensor(state[name]).shape == reference.state_dict()[name].shape
        assert type(cell).state_shapes(**cell.config())[name] == torch.tensor(state[name]).shape


@pytest.mark.parametrize("kind", CELLS)
def test_load_state_dict_of_pytorchs_cell_gives_its_outputs(torch, kind):
    make, torch_name, options = CELLS[kind]
    torch.manual_seed(0)
    reference = getattr(torch.nn, torch_name)(2, 3, dtype=torch.float64, **options)
    cell = make(2, 3, seed=0)
    cell.load_state_dict({k: v.tolist() for k, v in reference.state_dict().items()})
    x = [0.4, -0.9]
    assert _close(
        [v.data for v in cell(x)], reference(torch.tensor(x, dtype=torch.float64)).tolist()
    )


def test_parameters_follow_pytorchs_order():
    cell = RNNCell(2, 3, seed=0)
    params = cell.parameters()
    assert len(params) == len(set(params)) == 3 * 2 + 3 * 3 + 3 + 3
    assert params[:2] == cell.weight_ih[0]
    assert params[-3:] == cell.bias_hh


def test_initialisation_is_pytorchs_uniform_bound_and_seeded():
    cell = RNNCell(30, 50, seed=0)
    bound = 1.0 / math.sqrt(50)
    weights = [p.data for p in cell.parameters()]
    assert max(map(abs, weights)) <= bound
    assert statistics.pstdev(weights) == pytest.approx(bound / math.sqrt(3.0), rel=0.05)
    assert RNNCell(2, 3, seed=1).state_dict() == RNNCell(2, 3, seed=1).state_dict()
    assert RNNCell(2, 3, seed=1).state_dict() != RNNCell(2, 3, seed=2).state_dict()


def test_parameters_and_states_are_labelled_by_their_place_and_time_step():
    cell = RNNCell(2, 3, seed=0)
    assert cell.weight_ih[2][1].label == "weight_ih2_1"
    assert cell.bias_hh[0].label == "bias_hh0"
    assert [v.label for v in cell([1.0, 2.0])] == ["h0", "h1", "h2"]
    states = unroll(cell, [[1.0, 2.0], [3.0, 4.0]])
    assert [v.label for v in states[1]] == ["t2.h0", "t2.h1", "t2.h2"]


def test_repr_and_config():
    cell = RNNCell(2, 3, "relu", seed=0)
    assert repr(cell) == "RNNCell(input_size=2, hidden_size=3, nonlinearity='relu')"
    assert RNNCell(**cell.config()).config() == cell.config()
    assert repr(GRUCell(2, 3)) == "GRUCell(input_size=2, hidden_size=3)"


def test_a_gru_unit_is_three_gates_of_dot_nodes():
    cell = GRUCell(1, 2, seed=0)
    assert len(cell.weight_ih) == len(cell.bias_hh) == 3 * 2
    out = cell([0.5], [0.1, -0.2])
    ops = {node.op for node in topological_order(out[0])}
    assert {"dot", "sigmoid", "tanh"} <= ops


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RNNCell(0, 3), "RNNCell expected input_size to be an int >= 1, got 0"),
        (lambda: RNNCell(2, 1.5), "RNNCell expected hidden_size to be an int >= 1, got 1.5"),
        (lambda: RNNCell(2, 3, "sigmoid"), "nonlinearity to be one of tanh, relu, got 'sigmoid'"),
        (lambda: GRUCell(2, 0), "GRUCell expected hidden_size to be an int >= 1, got 0"),
    ],
)
def test_bad_constructor_arguments_say_what_was_expected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_wrong_input_size_is_refused():
    with pytest.raises(ValueError, match="expected 2 inputs, got 3"):
        RNNCell(2, 3, seed=0)([1.0, 2.0, 3.0])


@pytest.mark.parametrize("cell", [RNNCell(2, 3, seed=0), GRUCell(2, 3, seed=0)], ids=repr)
def test_a_wrong_hidden_state_size_is_refused(cell):
    name = type(cell).__name__
    with pytest.raises(ValueError, match=f"{name} expected a hidden state of 3 numbers, got 2"):
        cell([1.0, 2.0], [0.0, 0.0])


@pytest.mark.parametrize("xs", [[], "ab", 3.0])
def test_unroll_refuses_what_is_not_a_sequence_of_inputs(xs):
    with pytest.raises(ValueError, match="unroll expected a non-empty sequence of inputs"):
        unroll(RNNCell(1, 1, seed=0), xs)


# -- save / load and export -------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell", [RNNCell(2, 3, "relu", seed=0), GRUCell(2, 3, seed=0)], ids=lambda c: type(c).__name__
)
def test_save_then_load_gives_the_same_cell_and_states(cell, tmp_path):
    save(cell, tmp_path / "cell.json")
    loaded = load(tmp_path / "cell.json")
    assert type(loaded) is type(cell) and repr(loaded) == repr(cell)
    assert loaded.state_dict() == cell.state_dict()
    xs = _sequence(4, 2, seed=9)
    assert [[v.data for v in s] for s in unroll(loaded, xs)] == [
        [v.data for v in s] for s in unroll(cell, xs)
    ]


@pytest.mark.parametrize("kind", CELLS)
def test_to_torch_gives_pytorchs_cell_with_the_same_steps(torch, kind):
    make, torch_name, _ = CELLS[kind]
    cell = make(2, 3, seed=10)
    (twin,) = to_torch(cell)
    assert type(twin).__name__ == torch_name
    xs = _sequence(5, 2, seed=11)
    h = None
    for x in xs:
        h = twin(torch.tensor([x], dtype=torch.float64), h)
    assert _close([v.data for v in unroll(cell, xs)[-1]], h[0].tolist())


# -- on the batched back-end: fit(jit=True) trains a recurrent network -----------------------


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_an_unrolled_cell_on_the_batched_back_end_gives_the_eager_loss_and_gradients(kind):
    # Each unit is a dot over [w_ih, b_ih, w_hh, b_hh] and [x, 1, h, 1]: the per-sample
    # operands are not side by side, so the weights' gradient goes to separate columns.
    import numpy as np

    from autograd_core import batched, ir, vsum

    cell = CELLS[kind][0](2, 3, 0)
    params = cell.parameters()

    def sample_loss(*x):
        states = unroll(cell, [list(x[2 * t : 2 * t + 2]) for t in range(4)])
        return vsum(states[-1]) ** 2

    step = batched.TrainingStep(ir.trace(sample_loss, 8, params))
    X = np.array([_vector(8, seed) for seed in range(5)])
    loss, _, dtheta = step(np.array([p.data for p in params]), X)
    total = vsum([sample_loss(*row) for row in X.tolist()]) / len(X)
    total.backward()
    assert loss == pytest.approx(total.data, rel=1e-12, abs=1e-12)
    assert dtheta.tolist() == pytest.approx([p.grad for p in params], rel=1e-12, abs=1e-12)


class SequenceReader(Module):
    """A cell read over a sequence of numbers, one per step, then a score from its last state."""

    def __init__(self, cell):
        self.cell = cell
        self.readout = Layer(cell.hidden_size, 1, "linear", seed=1)

    def forward(self, x):
        return self.readout(unroll(self.cell, [[xi] for xi in x])[-1])


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_fit_trains_a_recurrent_network_with_jit_as_without(kind, monkeypatch):
    import nn
    from nn import optim

    rng = random.Random(3)
    X = [[rng.choice([-1.0, 1.0]) for _ in range(5)] for _ in range(40)]
    y = [int(sum(x[:2]) > 0) for x in X]  # the first two steps decide: a memory of 3 steps
    # The batched path must not fall back on the eager step (which the eager run calls first).
    eager_run = nn.train._EagerStep.run
    calls = []
    monkeypatch.setattr("nn.train._EagerStep.run", lambda *a: calls.append(1) or eager_run(*a))
    runs = fit_both_ways(
        lambda: SequenceReader(CELLS[kind][0](1, 4, 0)), X, y,
        lambda params: optim.SGD(params, lr=0.1),
        loss="hinge", epochs=5, batch_size=8, seed=0,
    )  # fmt: skip
    assert len(calls) == 5 * 5  # 5 epochs of 5 batches, all from the eager run
    assert_same_training(runs)
    assert runs[1][0].loss[-1] < runs[1][0].loss[0]
