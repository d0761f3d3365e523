"""nn.modules: neurons, layers, MLPs, Sequential, Dropout and BatchNorm1d: their graphs,
initialisation, the views derived from one declaration, labels, modes, state and errors."""

import json
import math
import random
import statistics

import pytest

from autograd_core import Value, gradcheck, topological_order
from nn.data import make_moons
from nn.modules import (
    MLP,
    BatchNorm1d,
    Dropout,
    Layer,
    Module,
    Neuron,
    Sequential,
    functional_call,
)

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


# -- one declaration: every view derived from the attributes -----------------------------------


class Affine(Module):
    """A module written as a user would: attributes only, no bookkeeping methods."""

    def __init__(self) -> None:
        self.scale = Value(2.0)
        self.shift = [Value(0.5), Value(-0.5)]
        self.inner = Layer(2, 2, "tanh", seed=0)
        self.size = 2  # a plain number: configuration, not state
        self._cache = [Value(9.0)]  # private: never a parameter
        self.set_labels()

    def forward(self, x):
        return [self.scale * h + s for h, s in zip(self.inner(x), self.shift, strict=True)]


def test_a_module_declared_by_attributes_gets_every_view():
    module = Affine()
    inner = module.inner.neurons
    assert module.parameters() == [
        module.scale,
        *module.shift,
        *inner[0].w,
        inner[0].b,
        *inner[1].w,
        inner[1].b,
    ]
    assert list(module.state_dict()) == ["scale", "shift", "inner.weight", "inner.bias"]
    assert module.children() == [module.inner]
    assert module.modules() == [module, module.inner, *inner]
    assert [p.label for p in module.parameters()[:5]] == [
        "scale",
        "shift0",
        "shift1",
        "inner.neuron1.w0",
        "inner.neuron1.w1",
    ]


def test_named_parameters_have_pytorch_names_and_shapes():
    model = MLP(2, [3, 1], seed=0)
    named = dict(model.named_parameters())
    assert list(named) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    assert named["layers.0.weight"] == [neuron.w for neuron in model.layers[0].neurons]
    assert named["layers.1.bias"] == [model.layers[1].neurons[0].b]


def test_load_state_dict_reaches_every_declared_parameter():
    source, target = Affine(), Affine()
    state = source.state_dict()
    state["scale"], state["inner.bias"] = 3.0, [0.25, -0.25]
    target.load_state_dict(state)
    assert target.state_dict() == state
    assert target.scale.data == 3.0 and target.inner.neurons[1].b.data == -0.25


@pytest.mark.parametrize(
    ("number", "message"),
    [(10**400, "expected a finite number, got an int of 401 digits"), (-(10**400), "402 digits")],
)
def test_a_huge_int_weight_is_a_value_error_not_an_overflow(number, message):
    model = MLP(2, [1], seed=0)
    before = model.state_dict()
    with pytest.raises(ValueError, match=message):
        model.load_state_dict({**before, "layers.0.bias": [number]})
    assert model.state_dict() == before


def test_train_and_eval_set_the_mode_of_every_submodule():
    model = Sequential(Layer(2, 3), BatchNorm1d(3), Dropout(0.5))
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    with pytest.raises(TypeError, match="train\\(mode\\) takes a bool, got str"):
        model.train("no")


def test_functional_call_never_changes_the_module_even_during_the_call():
    model = MLP(2, [3, 1], seed=0)
    own = model.parameters()
    seen_during = []

    class Spy(Module):
        def forward(self, x):
            seen_during.append(model.parameters())
            return x

    wrapped = Sequential(model, Spy())
    others = [Value(0.1 * i) for i in range(len(own))]
    functional_call(wrapped, others, [0.5, -0.5])
    assert seen_during == [own]
    assert model.parameters() == own


def test_functional_call_refuses_the_wrong_number_of_parameters():
    model = MLP(2, [3, 1], seed=0)
    with pytest.raises(ValueError, match="expected 13 parameters, got 2"):
        functional_call(model, [Value(1.0), Value(2.0)], [0.5, -0.5])


def test_forward_batch_is_the_forward_of_each_sample_by_default():
    model = MLP(2, [4, 2], seed=0)
    X = [[0.5, -1.0], [2.0, 0.0], [-0.3, 0.7]]
    batch = model.forward_batch(X)
    assert [[v.data for v in out] for out in batch] == [[v.data for v in model(x)] for x in X]


# -- labels: every node named by where it lives ------------------------------------------------


def test_mlp_labels_say_layer_and_neuron_from_one():
    model = MLP(2, [3, 1], seed=0)
    third = model.layers[0].neurons[2]
    assert [w.label for w in third.w] == ["layer1.neuron3.w0", "layer1.neuron3.w1"]
    assert third.b.label == "layer1.neuron3.b"
    out = model([0.5, -1.0])
    assert out.label == "layer2.neuron1.out"
    hidden = {v.label for v in topological_order(out) if v.label.endswith(".out")}
    assert hidden == {"layer1.neuron1.out", "layer1.neuron2.out", "layer1.neuron3.out", out.label}


def test_a_lone_neuron_keeps_short_labels_and_a_lone_layer_numbers_its_neurons():
    neuron = Neuron(2, seed=0)
    assert [p.label for p in neuron.parameters()] == ["w0", "w1", "b"]
    assert neuron([1.0, 2.0]).label == "out"
    layer = Layer(2, 2, seed=0)
    assert [p.label for p in layer.parameters()][3:] == ["neuron2.w0", "neuron2.w1", "neuron2.b"]


def test_sequential_labels_count_its_modules_from_one():
    model = Sequential(Layer(2, 2, seed=0), BatchNorm1d(2), Layer(2, 1, "linear", seed=0))
    labels = [p.label for p in model.parameters()]
    assert labels[:3] == ["layer1.neuron1.w0", "layer1.neuron1.w1", "layer1.neuron1.b"]
    assert labels[6:10] == ["layer2.weight0", "layer2.weight1", "layer2.bias0", "layer2.bias1"]
    assert labels[-1] == "layer3.neuron1.b"
    model.eval()
    assert model([1.0, 2.0]).label == "layer3.neuron1.out"


# -- Sequential ---------------------------------------------------------------------------------


def test_sequential_of_layers_computes_what_the_mlp_computes():
    mlp = MLP(3, [5, 4, 2], activation="tanh", seed=2)
    seq = Sequential(Layer(3, 5, "tanh"), Layer(5, 4, "tanh"), Layer(4, 2, "linear"))
    state = mlp.state_dict()
    seq.load_state_dict({key.removeprefix("layers."): value for key, value in state.items()})
    x = [0.3, -1.2, 2.0]
    ours, theirs = seq(x), mlp(x)
    (ours[0] * 2.0 + ours[1]).backward()
    (theirs[0] * 2.0 + theirs[1]).backward()
    assert [v.data for v in ours] == [v.data for v in theirs]
    assert [p.grad for p in seq.parameters()] == [p.grad for p in mlp.parameters()]


def test_a_sequential_inside_a_sequential_is_named_as_pytorch_names_it(torch, tmp_path):
    import nn

    model = Sequential(Sequential(Layer(2, 2, seed=0)), Layer(2, 1, "linear", seed=1))
    twin = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Linear(2, 2)), torch.nn.Linear(2, 1))
    assert (
        list(model.state_dict())
        == list(twin.state_dict())
        == [
            "0.0.weight",
            "0.0.bias",
            "1.weight",
            "1.bias",
        ]
    )
    nn.save(model, tmp_path / "nested.json")
    loaded = nn.load(tmp_path / "nested.json")
    assert loaded.state_dict() == model.state_dict()
    assert loaded([0.3, -0.2]).data == model([0.3, -0.2]).data


def test_sequential_names_its_modules_by_position_as_pytorch():
    model = Sequential(Layer(2, 3), BatchNorm1d(3))
    assert list(model.state_dict()) == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
    ]
    assert len(model) == 2 and isinstance(model[1], BatchNorm1d)
    assert [type(m).__name__ for m in model] == ["Layer", "BatchNorm1d"]


def test_sequential_passes_a_single_output_on_as_a_list_of_one():
    model = Sequential(Layer(2, 1, seed=0), Layer(1, 2, seed=0))
    assert len(model([1.0, 2.0])) == 2


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Sequential(), ValueError, "at least one module, got none"),
        (lambda: Sequential(Layer(2, 2), [1]), TypeError, "expected modules, got list at 1"),
    ],
)
def test_sequential_refuses_what_is_not_a_module(make, error, message):
    with pytest.raises(error, match=message):
        make()


# -- Dropout ------------------------------------------------------------------------------------


def test_dropout_zeroes_a_fraction_p_and_scales_the_rest():
    dropout = Dropout(0.3, seed=0)
    out = dropout([1.0] * 20000)
    kept = [v.data for v in out if v.data != 0.0]
    assert 1 - len(kept) / 20000 == pytest.approx(0.3, abs=0.01)
    assert set(kept) == {1.0 / 0.7}
    assert statistics.mean(v.data for v in out) == pytest.approx(1.0, abs=0.02)


def test_dropout_gradient_is_its_mask():
    dropout = Dropout(0.5, seed=1)
    x = [Value(float(i)) for i in range(1, 51)]
    out = dropout(x)
    sum(out).backward()
    assert [xi.grad for xi in x] == [2.0 if yi.data != 0.0 else 0.0 for yi in out]
    assert {xi.grad for xi in x} == {0.0, 2.0}


def test_dropout_is_the_identity_in_eval_mode_and_with_p_zero():
    x = [0.5, -1.5, 2.0]
    assert [v.data for v in Dropout(0.9, seed=0).eval()(x)] == x
    assert [v.data for v in Dropout(0.0, seed=0)(x)] == x
    assert [v.data for v in Dropout(1.0, seed=0)(x)] == [0.0, 0.0, 0.0]


def test_dropout_masks_follow_the_seed():
    def masks(seed):
        return [v.data for v in Dropout(0.5, seed=seed)([1.0] * 64)]

    assert masks(3) == masks(3)
    assert masks(3) != masks(4)


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5", True, math.nan])
def test_dropout_refuses_a_p_that_is_not_a_probability(p):
    with pytest.raises(ValueError, match="expected a probability p in \\[0, 1\\]"):
        Dropout(p)


# -- BatchNorm1d against PyTorch ---------------------------------------------------------------

GAMMA, BETA = [1.5, -0.5, 2.0], [0.1, 0.2, -0.3]


def _batch(rng, size=6, features=3):
    return [[rng.gauss(0.5, 2.0) for _ in range(features)] for _ in range(size)]


def _weighted_sum(outputs):
    """A loss that gives every output a different weight, so each gradient is tested."""
    return sum((i + 1) * (0.5 + j) * y for i, row in enumerate(outputs) for j, y in enumerate(row))


def _pair(torch, momentum=0.1):
    ours = BatchNorm1d(3, momentum=momentum)
    theirs = torch.nn.BatchNorm1d(3, momentum=momentum, dtype=torch.float64)
    for p, g in zip(ours.weight, GAMMA, strict=True):
        p.data = g
    for p, b in zip(ours.bias, BETA, strict=True):
        p.data = b
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(GAMMA, dtype=torch.float64))
        theirs.bias.copy_(torch.tensor(BETA, dtype=torch.float64))
    return ours, theirs


def _step(torch, ours, theirs, X):
    """One forward and backward of both; returns (ours, theirs) outputs and input grads."""
    Xv = [[Value(v) for v in row] for row in X]
    out = ours.forward_batch(Xv) if ours.training else [ours(x) for x in Xv]
    ours.zero_grad()
    _weighted_sum(out).backward()
    Xt = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    theirs.zero_grad()
    out_t = theirs(Xt)
    _weighted_sum(out_t).backward()
    return out, Xv, out_t, Xt


def _assert_close(torch, ours, theirs):
    ours, theirs = (torch.tensor(numbers, dtype=torch.float64) for numbers in (ours, theirs))
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_batchnorm_train_mode_equals_pytorch_forward_gradients_and_running_stats(torch, momentum):
    ours, theirs = _pair(torch, momentum)
    rng = random.Random(0)
    for _ in range(4):
        X = _batch(rng)
        out, Xv, out_t, Xt = _step(torch, ours, theirs, X)
        _assert_close(torch, [[y.data for y in row] for row in out], out_t.tolist())
        _assert_close(torch, [[x.grad for x in row] for row in Xv], Xt.grad.tolist())
        _assert_close(torch, [p.grad for p in ours.weight], theirs.weight.grad.tolist())
        _assert_close(torch, [p.grad for p in ours.bias], theirs.bias.grad.tolist())
        _assert_close(torch, ours.running_mean, theirs.running_mean.tolist())
        _assert_close(torch, ours.running_var, theirs.running_var.tolist())
    assert ours.num_batches_tracked == int(theirs.num_batches_tracked) == 4


def test_batchnorm_eval_mode_equals_pytorch_forward_and_gradients(torch):
    ours, theirs = _pair(torch)
    rng = random.Random(1)
    for _ in range(3):  # move the running estimates away from 0 and 1 first
        _step(torch, ours, theirs, _batch(rng))
    ours.eval(), theirs.eval()
    X = _batch(rng, size=4)
    out, Xv, out_t, Xt = _step(torch, ours, theirs, X)
    _assert_close(torch, [[y.data for y in row] for row in out], out_t.tolist())
    _assert_close(torch, [[x.grad for x in row] for row in Xv], Xt.grad.tolist())
    _assert_close(torch, [p.grad for p in ours.weight], theirs.weight.grad.tolist())
    _assert_close(torch, [p.grad for p in ours.bias], theirs.bias.grad.tolist())


def test_batchnorm_state_dict_is_pytorchs(torch):
    ours, theirs = _pair(torch)
    _step(torch, ours, theirs, _batch(random.Random(2)))
    expected = {k: v.tolist() for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(expected)
    for key, value in ours.state_dict().items():
        _assert_close(torch, value, expected[key])


def test_batchnorm_train_gradients_match_finite_differences():
    X = _batch(random.Random(3), size=4, features=2)
    flat = [v for row in X for v in row]

    def loss(*arguments):
        bn = BatchNorm1d(2)
        bn.weight, bn.bias = list(arguments[:2]), list(arguments[2:4])
        rows = [list(arguments[4 + 2 * i : 6 + 2 * i]) for i in range(4)]
        return _weighted_sum(bn.forward_batch(rows))

    assert gradcheck(loss, 1.5, -0.5, 0.1, 0.2, *flat)


def test_batchnorm_in_train_mode_needs_a_batch():
    bn = BatchNorm1d(2)
    with pytest.raises(ValueError, match="train mode normalises over a batch: call forward_batch"):
        bn([1.0, 2.0])
    with pytest.raises(ValueError, match="more than one sample per batch, got 1"):
        bn.forward_batch([[1.0, 2.0]])
    with pytest.raises(ValueError, match="BatchNorm1d expected 2 inputs, got 3"):
        bn.forward_batch([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((0,), "num_features to be an int >= 1, got 0"),
        ((2, 0.0), "eps > 0, got 0.0"),
        ((2, 1e-5, 1.5), "momentum in \\[0, 1\\] or None, got 1.5"),
    ],
)
def test_batchnorm_refuses_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        BatchNorm1d(*arguments)


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "leaky_relu", "linear"])
def test_activation_module_equals_pytorchs_on_channels_with_gradients(torch, name):
    from nn.export import to_torch
    from nn.modules import Activation

    channels = [[-1.5, 0.25, 2.0], [0.75, -0.1, 3.0]]
    leaves = [[Value(x) for x in row] for row in channels]
    out = Activation(name)(leaves)
    total = sum(v for row in out for v in row)
    total.backward()
    x = torch.tensor(channels, dtype=torch.float64, requires_grad=True)
    twin = to_torch(Activation(name))
    twin(x).sum().backward()
    ours = [v.data for row in out for v in row]
    assert ours == pytest.approx(twin(x).flatten().tolist(), abs=1e-12)
    grads = [v.grad for row in leaves for v in row]
    assert grads == pytest.approx(x.grad.flatten().tolist(), abs=1e-12)


def test_activation_module_refuses_an_unknown_name():
    from nn.modules import Activation

    with pytest.raises(ValueError, match=r"unknown activation 'swish'"):
        Activation("swish")
