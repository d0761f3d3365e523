"""nn.modules: neurons, layers and MLPs, their graphs, initialisation, state and errors."""

import json
import math
import random
import statistics

import pytest

from autograd_core import Value, topological_order
from nn.data import make_moons
from nn.modules import MLP, Layer, Neuron, functional_call

ACTIVATION_NAMES = ["relu", "tanh", "sigmoid", "leaky_relu", "linear"]


# -- the graph of a forward pass ---------------------------------------------------------------


def test_a_neuron_is_one_dot_node_and_its_activation():
    neuron = Neuron(3, "tanh", seed=0)
    out = neuron([1.0, 2.0, 3.0])
    assert out.op == "tanh"
    (weighted_sum,) = out.inputs
    assert weighted_sum.op == "dot"
    # The bias is the last weight, paired with the constant input 1.0.
    assert weighted_sum.inputs[:4] == (*neuron.w, neuron.b)
    assert [v.data for v in weighted_sum.inputs[4:]] == [1.0, 2.0, 3.0, 1.0]


def test_a_linear_neuron_is_a_single_dot_node():
    out = Neuron(2, "linear", seed=0)([1.0, 2.0])
    assert out.op == "dot"


def test_a_neuron_computes_its_activation_of_w_dot_x_plus_b():
    neuron = Neuron(2, "sigmoid", seed=0)
    neuron.b.data = 0.5
    w0, w1 = (w.data for w in neuron.w)
    expected = 1.0 / (1.0 + math.exp(-(w0 * 0.3 - w1 * 0.7 + 0.5)))
    assert neuron([0.3, -0.7]).data == pytest.approx(expected, rel=1e-15)


def test_mlp_graph_has_two_nodes_per_hidden_neuron_and_wraps_each_input_once():
    model = MLP(2, [3, 1], seed=0)
    nodes = topological_order(model([0.5, -1.5]))
    leaves = [v for v in nodes if not v.inputs]
    # 13 parameters, the 2 inputs and the single constant 1.0 shared by every bias.
    assert len(leaves) == len(model.parameters()) + 2 + 1
    # 3 hidden neurons of (dot, relu) and the output's dot.
    assert len(nodes) - len(leaves) == 3 * 2 + 1


def test_mlp_accepts_values_and_keeps_them_in_the_graph():
    model = MLP(2, [4, 1], seed=0)
    x = [Value(0.5), Value(-1.0)]
    model(x).backward()
    assert all(xi.grad != 0.0 for xi in x)


def test_output_is_a_value_for_one_output_and_a_list_for_several():
    assert isinstance(MLP(2, [4, 1], seed=0)([1.0, 2.0]), Value)
    out = MLP(2, [4, 3], seed=0)([1.0, 2.0])
    assert isinstance(out, list) and len(out) == 3
    assert isinstance(Layer(2, 1, seed=0)([1.0, 2.0]), Value)
    assert len(Layer(2, 5, seed=0)([1.0, 2.0])) == 5


def test_hidden_layers_use_the_activation_and_the_last_layer_is_linear():
    model = MLP(2, [4, 4, 2], activation="tanh", seed=0)
    assert [layer.activation for layer in model.layers] == ["tanh", "tanh", "linear"]
    assert {out.op for out in model([1.0, 2.0])} == {"dot"}


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_mlp_forward_and_gradients_equal_pytorch(torch, activation):
    model = MLP(3, [5, 4, 2], activation=activation, seed=1)
    x = [0.3, -1.2, 2.0]
    out = model(x)
    (out[0] * 2.0 + out[1]).backward()

    functions = {
        "relu": torch.relu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "leaky_relu": torch.nn.functional.leaky_relu,  # slope 0.01, as Value.leaky_relu
        "linear": lambda h: h,
    }
    state = model.state_dict()
    tensors = [
        torch.tensor(state[f"layers.{i}.{name}"], dtype=torch.float64, requires_grad=True)
        for i in range(3)
        for name in ("weight", "bias")
    ]
    h = torch.tensor(x, dtype=torch.float64)
    for i in range(3):
        h = tensors[2 * i] @ h + tensors[2 * i + 1]
        h = functions[activation](h) if i < 2 else h
    (h[0] * 2.0 + h[1]).backward()

    assert [v.data for v in out] == pytest.approx(h.tolist(), rel=1e-12, abs=1e-14)
    for i, layer in enumerate(model.layers):
        weight_grads = [[w.grad for w in neuron.w] for neuron in layer.neurons]
        bias_grads = [neuron.b.grad for neuron in layer.neurons]
        assert torch.tensor(weight_grads, dtype=torch.float64).allclose(
            tensors[2 * i].grad, rtol=1e-12, atol=1e-14
        )
        assert torch.tensor(bias_grads, dtype=torch.float64).allclose(
            tensors[2 * i + 1].grad, rtol=1e-12, atol=1e-14
        )


# -- parameters -------------------------------------------------------------------------------


def test_parameters_are_each_neurons_weights_then_bias_as_in_micrograd():
    model = MLP(2, [16, 16, 1], seed=0)
    params = model.parameters()
    assert len(params) == 337  # micrograd's moons model
    first = model.layers[0].neurons[0]
    assert params[:3] == [*first.w, first.b]
    assert len(set(params)) == len(params)


def test_zero_grad_clears_every_gradient():
    model = MLP(2, [4, 1], seed=0)
    model([1.0, 2.0]).backward()
    assert any(p.grad != 0.0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())


def test_functional_call_uses_the_given_parameters_and_puts_the_model_back():
    model = MLP(2, [3, 1], seed=0)
    own = model.parameters()
    doubled = [Value(2.0 * p.data) for p in own]
    reference = MLP(2, [3, 1], seed=0)
    for p, q in zip(reference.parameters(), doubled, strict=True):
        p.data = q.data
    out = functional_call(model, doubled, [0.5, -0.5])
    assert out.data == reference([0.5, -0.5]).data
    assert set(topological_order(out)) >= set(doubled)
    assert model.parameters() == own


# -- initialisation ---------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_weights_and_another_seed_others():
    assert MLP(2, [8, 1], seed=3).state_dict() == MLP(2, [8, 1], seed=3).state_dict()
    assert MLP(2, [8, 1], seed=3).state_dict() != MLP(2, [8, 1], seed=4).state_dict()


def test_initialisation_leaves_the_global_random_state_alone():
    state = random.getstate()
    MLP(2, [8, 1], seed=3)
    MLP(2, [8, 1])
    assert random.getstate() == state


@pytest.mark.parametrize(
    ("activation", "expected_std"),
    [
        ("relu", math.sqrt(2.0 / 200)),  # He
        ("leaky_relu", math.sqrt(2.0 / 200)),
        ("tanh", math.sqrt(2.0 / (200 + 100))),  # Xavier / Glorot
        ("sigmoid", math.sqrt(2.0 / (200 + 100))),
        ("linear", math.sqrt(2.0 / (200 + 100))),
    ],
)
def test_initial_weights_have_the_spread_suited_to_the_activation(activation, expected_std):
    layer = Layer(200, 100, activation, seed=0)
    weights = [w.data for neuron in layer.neurons for w in neuron.w]
    assert statistics.mean(weights) == pytest.approx(0.0, abs=0.05 * expected_std)
    assert statistics.pstdev(weights) == pytest.approx(expected_std, rel=0.02)
    assert all(neuron.b.data == 0.0 for neuron in layer.neurons)


# -- state_dict, config, repr -----------------------------------------------------------------


def test_state_dict_is_json_ready_with_pytorch_names_and_shapes():
    model = MLP(2, [3, 1], seed=0)
    state = json.loads(json.dumps(model.state_dict()))
    assert list(state) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    assert [len(row) for row in state["layers.0.weight"]] == [2, 2, 2]
    assert len(state["layers.0.bias"]) == 3
    assert state["layers.1.weight"][0] == [w.data for w in model.layers[1].neurons[0].w]


def test_load_state_dict_copies_the_weights_so_outputs_match():
    source, target = MLP(2, [5, 2], seed=0), MLP(2, [5, 2], seed=1)
    target.load_state_dict(json.loads(json.dumps(source.state_dict())))
    assert [v.data for v in target([0.3, 0.9])] == [v.data for v in source([0.3, 0.9])]


def test_config_rebuilds_a_model_of_the_same_shape():
    model = MLP(3, [4, 4, 2], activation="sigmoid", seed=0)
    assert model.config() == {"nin": 3, "nouts": [4, 4, 2], "activation": "sigmoid"}
    rebuilt = MLP(**json.loads(json.dumps(model.config())))
    rebuilt.load_state_dict(model.state_dict())
    assert [v.data for v in rebuilt([1.0, 2.0, 3.0])] == [v.data for v in model([1.0, 2.0, 3.0])]


def _broken_states():
    good = MLP(2, [2, 1], seed=0).state_dict()

    def changed(key, value):
        return {**good, key: value}

    last_bias = "layers.1.bias"
    return [
        ("not a dict", [1.0], "must be a dict"),
        ("missing key", {k: v for k, v in good.items() if k != last_bias}, "missing"),
        ("unexpected key", {**good, "layers.2.bias": [0.0]}, "unexpected"),
        (
            "short row",
            changed("layers.0.weight", [[0.1, 0.2], [0.3]]),
            r"\[1\]: expected a list of 2",
        ),
        ("long list", changed(last_bias, [0.0, 0.0]), "expected a list of 1, got 2"),
        ("nan", changed(last_bias, [float("nan")]), "expected a finite number, got nan"),
        ("inf", changed("layers.1.weight", [[1.0, float("inf")]]), "finite number, got inf"),
        ("string", changed(last_bias, ["0.5"]), "expected a number, got str"),
        ("bool", changed(last_bias, [True]), "expected a number, got bool"),
        ("scalar for list", changed(last_bias, 0.5), "expected a list of 1, got float"),
    ]


@pytest.mark.parametrize(("case", "state", "message"), _broken_states())
def test_load_state_dict_refuses_a_bad_state_and_changes_nothing(case, state, message):
    model = MLP(2, [2, 1], seed=1)
    before = model.state_dict()
    with pytest.raises(ValueError, match=message):
        model.load_state_dict(state)
    assert model.state_dict() == before


def test_repr_shows_the_architecture():
    text = repr(MLP(2, [16, 16, 1], seed=0))
    assert text.splitlines()[0] == "MLP(nin=2, nouts=[16, 16, 1], activation='relu')"
    assert "(2): Layer(nin=16, nout=1, activation='linear')" in text
    assert text.splitlines()[-1].strip() == "337 parameters"
    assert repr(Neuron(3, "tanh")) == "Neuron(nin=3, activation='tanh')"


# -- bad arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MLP(0, [4]), "expected nin to be an int >= 1, got 0"),
        (lambda: MLP(2, []), r"expected a non-empty list of layer sizes as nouts, got \[\]"),
        (lambda: MLP(2, [0, 1]), "expected every layer size in nouts to be an int >= 1, got 0"),
        (lambda: MLP(2, [4, 1.5]), "got 1.5"),
        (lambda: MLP(2, 4), "got 4"),
        (lambda: MLP(2, [4, 1], activation="swish"), "unknown activation 'swish': expected"),
        (lambda: Neuron(2, "softmax"), "unknown activation 'softmax'"),
        (lambda: Layer(2, 0), "expected nout to be an int >= 1, got 0"),
    ],
)
def test_bad_constructor_arguments_say_what_was_expected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("module", [Neuron(2), Layer(2, 3), MLP(2, [3, 1])])
def test_a_wrong_number_of_inputs_is_refused(module):
    with pytest.raises(ValueError, match="expected 2 inputs, got 3"):
        module([1.0, 2.0, 3.0])


def test_a_single_number_is_not_a_list_of_inputs():
    with pytest.raises(TypeError, match="expected a list of 2 inputs, got float"):
        MLP(2, [3, 1])(1.5)


# -- micrograd's demo ports by changing the imports -------------------------------------------


def _micrograd_demo(Value, model, X, y, steps):
    """micrograd's demo.ipynb training loop, verbatim apart from the loop count."""

    def loss(batch_size=None):
        Xb, yb = X, y
        inputs = [list(map(Value, xrow)) for xrow in Xb]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(yb, scores)]  # noqa: B905
        data_loss = sum(losses) * (1.0 / len(losses))
        alpha = 1e-4
        reg_loss = alpha * sum(p * p for p in model.parameters())
        total_loss = data_loss + reg_loss
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(yb, scores)]  # noqa: B905
        return total_loss, sum(accuracy) / len(accuracy)

    history = []
    for k in range(steps):
        total_loss, acc = loss()
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        history.append((total_loss.data, acc))
    return history


def _demo_data(np, n_samples):
    X, y = make_moons(n_samples, noise=0.1, seed=0)
    return np.array(X), np.array(y) * 2 - 1  # the demo's data: a NumPy array, labels -1/+1


def test_micrograd_demo_gives_micrograds_numbers():
    np = pytest.importorskip("numpy")
    micrograd_engine = pytest.importorskip("micrograd.engine")
    micrograd_nn = pytest.importorskip("micrograd.nn")
    X, y = _demo_data(np, 20)  # small: micrograd itself is slow
    ours = MLP(2, [16, 16, 1], seed=0)
    theirs = micrograd_nn.MLP(2, [16, 16, 1])
    for p, q in zip(theirs.parameters(), ours.parameters(), strict=True):
        p.data = q.data

    our_history = _micrograd_demo(Value, ours, X, y, steps=4)
    their_history = _micrograd_demo(micrograd_engine.Value, theirs, X, y, steps=4)
    assert [acc for _, acc in our_history] == [acc for _, acc in their_history]
    assert [loss for loss, _ in our_history] == pytest.approx(
        [loss for loss, _ in their_history], rel=1e-12
    )


def test_micrograd_demo_trains_our_model():
    np = pytest.importorskip("numpy")
    X, y = _demo_data(np, 50)
    history = _micrograd_demo(Value, MLP(2, [16, 16, 1], seed=0), X, y, steps=30)
    assert history[-1][0] < 0.5 * history[0][0]
    assert history[-1][1] >= 0.9
