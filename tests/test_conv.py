"""nn.conv: Conv1d, MaxPool1d, AvgPool1d and Flatten against PyTorch, their graphs and errors."""

import json
import math
import random
import statistics

import pytest
from helpers import assert_same_training, fit_both_ways
from hypothesis import given, settings
from hypothesis import strategies as st

from autograd_core import Value, gradcheck, jit
from nn import load, save, to_torch
from nn.conv import AvgPool1d, Conv1d, Flatten, MaxPool1d, Unflatten
from nn.modules import Activation, Layer, Sequential, functional_call

# (in_channels, out_channels, kernel_size, stride, padding, length)
CONV_SHAPES = [
    (1, 1, 1, 1, 0, 5),
    (1, 2, 3, 1, 1, 3),
    (2, 3, 3, 1, 0, 7),
    (3, 2, 4, 2, 1, 9),
    (2, 2, 5, 3, 2, 6),
]
# (channels, kernel_size, stride, length)
POOL_SHAPES = [(1, 2, None, 6), (2, 3, None, 7), (3, 3, 1, 5), (2, 2, 3, 8), (1, 4, 2, 4)]


def _sample(channels, length, seed):
    rng = random.Random(seed)
    return [[rng.uniform(-2.0, 2.0) for _ in range(length)] for _ in range(channels)]


def _data(channels):
    return [[v.data for v in channel] for channel in channels]


def _weighted_sum(channels, coefficients):
    """A scalar loss reading every output with its own weight, so every gradient is tested."""
    return sum(
        c * v
        for row, crow in zip(channels, coefficients, strict=True)
        for v, c in zip(row, crow, strict=True)
    )


def _torch_check(torch, ours, theirs, x, parameters=None):
    """Forward and input/parameter gradients of `ours` equal those of the torch module `theirs`."""
    inputs = [[Value(xi) for xi in channel] for channel in x]
    out = ours(inputs)
    coefficients = _sample(len(out), len(out[0]), seed=99)
    _weighted_sum(out, coefficients).backward()

    x_t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out_t = theirs(x_t)
    (out_t * torch.tensor(coefficients, dtype=torch.float64)).sum().backward()

    assert _close(_data(out), out_t.tolist())
    assert _close(_grads(inputs), x_t.grad.tolist())
    for name, values in (parameters or {}).items():
        assert _close(_grads(values), getattr(theirs, name).grad.tolist()), name


def _flat(tree):
    """Nested lists of numbers, flattened, for `pytest.approx` (which takes one level only)."""
    return [tree] if not isinstance(tree, list) else [x for child in tree for x in _flat(child)]


def _close(ours, theirs):
    return _flat(ours) == pytest.approx(_flat(theirs), rel=1e-12, abs=1e-14)


def _grads(tree):
    return tree.grad if isinstance(tree, Value) else [_grads(child) for child in tree]


# -- Conv1d -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", CONV_SHAPES, ids=str)
def test_conv1d_forward_and_gradients_equal_pytorch(torch, shape):
    in_channels, out_channels, kernel_size, stride, padding, length = shape
    conv = Conv1d(in_channels, out_channels, kernel_size, stride, padding, seed=1)
    reference = torch.nn.Conv1d(
        in_channels, out_channels, kernel_size, stride, padding, dtype=torch.float64
    )
    reference.load_state_dict(
        {k: torch.tensor(v, dtype=torch.float64) for k, v in conv.state_dict().items()}
    )
    x = _sample(in_channels, length, seed=2)
    _torch_check(torch, conv, reference, x, parameters={"weight": conv.weight, "bias": conv.bias})


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 3),  # in_channels
    st.integers(1, 3),  # out_channels
    st.integers(1, 4),  # kernel_size
    st.integers(1, 3),  # stride
    st.integers(0, 2),  # padding
    st.integers(0, 5),  # how much longer than the shortest input that fits
    st.integers(0, 2**32 - 1),
)
def test_conv1d_equals_pytorch_for_any_shape(
    torch, in_channels, out_channels, kernel_size, stride, padding, extra, seed
):
    length = max(1, kernel_size - 2 * padding) + extra
    conv = Conv1d(in_channels, out_channels, kernel_size, stride, padding, seed=seed)
    reference = torch.nn.Conv1d(
        in_channels, out_channels, kernel_size, stride, padding, dtype=torch.float64
    )
    reference.load_state_dict(
        {k: torch.tensor(v, dtype=torch.float64) for k, v in conv.state_dict().items()}
    )
    x = _sample(in_channels, length, seed=seed)
    _torch_check(torch, conv, reference, x, parameters={"weight": conv.weight, "bias": conv.bias})


def test_conv1d_gradients_equal_finite_differences_for_inputs_and_parameters():
    conv = Conv1d(2, 2, 3, stride=2, padding=1, seed=0)
    x = _sample(2, 5, seed=1)
    coefficients = _sample(2, 3, seed=2)
    n_inputs = 10

    def loss(*numbers):
        sample = [list(numbers[:5]), list(numbers[5:n_inputs])]
        return _weighted_sum(functional_call(conv, numbers[n_inputs:], sample), coefficients)

    assert gradcheck(loss, *x[0], *x[1], *(p.data for p in conv.parameters()))


def test_conv1d_loads_pytorchs_state_and_gives_its_outputs(torch):
    torch.manual_seed(0)
    reference = torch.nn.Conv1d(2, 3, 2, dtype=torch.float64)
    conv = Conv1d(2, 3, 2, seed=0)
    conv.load_state_dict({k: v.tolist() for k, v in reference.state_dict().items()})
    x = _sample(2, 4, seed=0)
    expected = reference(torch.tensor(x, dtype=torch.float64)).tolist()
    assert _close(_data(conv(x)), expected)


def test_conv1d_state_dict_has_pytorchs_names_and_shapes(torch):
    conv = Conv1d(3, 4, 5, seed=0)
    state = json.loads(json.dumps(conv.state_dict()))
    reference = torch.nn.Conv1d(3, 4, 5).state_dict()
    assert list(state) == list(reference) == ["weight", "bias"]
    assert torch.tensor(state["weight"]).shape == reference["weight"].shape == (4, 3, 5)
    assert torch.tensor(state["bias"]).shape == reference["bias"].shape == (4,)


def test_each_conv_output_is_one_dot_node_over_the_kernel_and_its_window():
    conv = Conv1d(2, 1, 2, seed=0)
    x = [[Value(1.0), Value(2.0), Value(3.0)], [Value(4.0), Value(5.0), Value(6.0)]]
    first, second = conv(x)[0]
    assert first.op == second.op == "dot"
    kernel = [*conv.weight[0][0], *conv.weight[0][1], conv.bias[0]]
    # Both windows read the very same weight Values: the weight sharing of a convolution.
    assert first.inputs[:5] == second.inputs[:5] == tuple(kernel)
    assert first.inputs[5:9] == (x[0][0], x[0][1], x[1][0], x[1][1])
    assert second.inputs[5:9] == (x[0][1], x[0][2], x[1][1], x[1][2])
    assert first.inputs[9].data == 1.0 and first.inputs[9] is second.inputs[9]
    assert first.inputs[9].label == "1"  # a constant, not an input, when drawn


def test_conv1d_padding_reads_one_constant_zero_per_forward_pass():
    conv = Conv1d(1, 1, 3, padding=2, seed=0)
    out = conv([1.0, 2.0])[0]
    assert len(out) == 4
    zeros = {v for node in out for v in node.inputs[3:6] if not v.inputs and v.data == 0.0}
    assert len(zeros) == 1


def test_a_flat_list_is_one_channel():
    conv = Conv1d(1, 2, 2, seed=0)
    assert _data(conv([1.0, 2.0, 3.0])) == _data(conv([[1.0, 2.0, 3.0]]))


def test_conv1d_initialisation_is_pytorchs_uniform_bound():
    conv = Conv1d(10, 40, 5, seed=0)
    bound = 1.0 / math.sqrt(10 * 5)
    weights = [w.data for w in conv.parameters()]
    assert max(map(abs, weights)) <= bound
    assert statistics.pstdev(weights) == pytest.approx(bound / math.sqrt(3.0), rel=0.05)
    assert Conv1d(2, 2, 3, seed=7).state_dict() == Conv1d(2, 2, 3, seed=7).state_dict()
    assert Conv1d(2, 2, 3, seed=7).state_dict() != Conv1d(2, 2, 3, seed=8).state_dict()


def test_conv1d_parameters_are_weights_then_biases_each_once():
    conv = Conv1d(2, 3, 4, seed=0)
    params = conv.parameters()
    assert len(params) == len(set(params)) == 3 * 2 * 4 + 3
    assert params[-3:] == conv.bias
    assert params[:4] == conv.weight[0][0]


def test_conv1d_parameters_are_labelled_by_their_place():
    conv = Conv1d(2, 3, 4, seed=0)
    assert conv.weight[2][1][3].label == "weight2_1_3"
    assert conv.bias[2].label == "bias2"


def test_conv1d_repr_and_config():
    conv = Conv1d(2, 3, 4, stride=2, padding=1, seed=0)
    assert repr(conv) == "Conv1d(in_channels=2, out_channels=3, kernel_size=4, stride=2, padding=1)"
    assert Conv1d(**conv.config()).config() == conv.config()


# -- pools and Flatten ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", POOL_SHAPES, ids=str)
@pytest.mark.parametrize("pool", ["MaxPool1d", "AvgPool1d"])
def test_pool_forward_and_gradients_equal_pytorch(torch, pool, shape):
    channels, kernel_size, stride, length = shape
    ours = {"MaxPool1d": MaxPool1d, "AvgPool1d": AvgPool1d}[pool](kernel_size, stride)
    theirs = getattr(torch.nn, pool)(kernel_size, stride)
    _torch_check(torch, ours, theirs, _sample(channels, length, seed=3))


def test_max_pool_gives_a_tie_to_the_first_input_as_pytorch(torch):
    x = [[1.0, 1.0, 0.5, 3.0, 3.0, 3.0]]
    _torch_check(torch, MaxPool1d(3, 1), torch.nn.MaxPool1d(3, 1), x)


def test_pool_gradients_equal_finite_differences():
    x = _sample(1, 6, seed=4)[0]
    coefficients = [1.0, -2.0, 0.5]
    for pool in (MaxPool1d(2), AvgPool1d(3, 1)):

        def loss(*numbers, pool=pool):
            out = pool(list(numbers))
            return sum(c * v for c, v in zip(coefficients, out, strict=False))

        assert gradcheck(loss, *x)


def test_max_pool_gives_the_winners_number_exactly_whatever_the_sizes():
    for window in ([-1e20, 1.0], [1.0, -1e20], [0.1, 0.3], [1e20, 1.0, -3.0], [2.0, 2.0]):
        (out,) = MaxPool1d(len(window))(window)
        assert out.data == max(window)


def test_max_pool_picks_the_winner_in_the_graph_so_jit_stays_right():
    """The winner is chosen by relu nodes, not a Python `if`: a traced max pool is still a max."""
    pooled = jit(lambda a, b, c: MaxPool1d(3)([a, b, c])[0])
    assert pooled.value_and_grad(1.0, 3.0, 2.0) == (3.0, (0.0, 1.0, 0.0))
    assert pooled.value_and_grad(5.0, 3.0, 2.0) == (5.0, (1.0, 0.0, 0.0))
    assert pooled.value_and_grad(1.0, 3.0, 4.0) == (4.0, (0.0, 0.0, 1.0))


def test_pools_keep_the_layout_they_are_given():
    assert _data([MaxPool1d(2)([1.0, 4.0, 2.0, 3.0])]) == [[4.0, 3.0]]
    assert _data(AvgPool1d(2)([[1.0, 3.0], [2.0, 6.0]])) == [[2.0], [4.0]]
    assert repr(MaxPool1d(3)) == "MaxPool1d(kernel_size=3, stride=3)"
    assert AvgPool1d(2, 1).config() == {"kernel_size": 2, "stride": 1}


def test_flatten_joins_the_channels_in_order_as_pytorch(torch):
    x = _sample(3, 4, seed=5)
    expected = torch.nn.Flatten()(torch.tensor([x], dtype=torch.float64))[0].tolist()
    values = [[Value(xi) for xi in channel] for channel in x]
    flat = Flatten()(values)
    assert [v.data for v in flat] == expected
    assert flat[4] is values[1][0]  # no new nodes: gradients flow straight through
    assert Flatten()([1.0, 2.0]) == [1.0, 2.0]


def test_a_small_cnn_runs_end_to_end_and_every_parameter_gets_a_gradient():
    conv, pool, flatten = Conv1d(1, 2, 3, padding=1, seed=0), MaxPool1d(2), Flatten()
    head = Layer(2 * 4, 1, "linear", seed=0)
    out = head(flatten(pool(conv([0.1 * i for i in range(8)]))))
    out.backward()
    assert sum(p.grad != 0.0 for p in conv.parameters()) == len(conv.parameters())


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Conv1d(0, 1, 3), "Conv1d expected in_channels to be an int >= 1, got 0"),
        (lambda: Conv1d(1, 1, 0), "Conv1d expected kernel_size to be an int >= 1, got 0"),
        (lambda: Conv1d(1, 1, 2, stride=0), "Conv1d expected stride to be an int >= 1, got 0"),
        (lambda: Conv1d(1, 1, 2, padding=-1), "padding to be an int >= 0, got -1"),
        (lambda: Conv1d(1, 1, 2.5), "kernel_size to be an int >= 1, got 2.5"),
        (lambda: MaxPool1d(0), "MaxPool1d expected kernel_size to be an int >= 1, got 0"),
        (lambda: AvgPool1d(2, stride=True), "AvgPool1d expected stride to be an int >= 1"),
    ],
)
def test_bad_constructor_arguments_say_what_was_expected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    ("module", "x", "message"),
    [
        (Conv1d(1, 1, 4), [1.0, 2.0, 3.0], "Conv1d expected channels of at least 4 numbers"),
        (Conv1d(1, 1, 5, padding=1), [1.0, 2.0], r"at least 3 numbers .* got 2"),
        (Conv1d(3, 1, 2), [1.0, 2.0, 3.0], "Conv1d expected 3 channels, got 1"),
        (Conv1d(2, 1, 2), [[1.0, 2.0], [3.0]], r"one non-zero length, got lengths \[2, 1\]"),
        (Conv1d(1, 1, 1), [], "got an empty list"),
        (MaxPool1d(3), [[1.0, 2.0]], "MaxPool1d expected channels of at least kernel_size=3"),
        (AvgPool1d(2), [[1.0, 2.0], []], r"got lengths \[2, 0\]"),
    ],
)
def test_bad_samples_are_refused_naming_expected_and_got(module, x, message):
    with pytest.raises(ValueError, match=message):
        module(x)


@pytest.mark.parametrize("module", [Conv1d(1, 1, 1), MaxPool1d(1), Flatten()])
def test_a_number_is_not_a_sample(module):
    with pytest.raises(TypeError, match="expected a list of channels, got float"):
        module(1.5)


def test_a_channel_that_is_not_a_list_is_refused():
    with pytest.raises(TypeError, match="expected channel 1 to be a list of numbers, got float"):
        Conv1d(2, 1, 1)([[1.0], 2.0])


def test_a_small_cnn_in_sequential_has_pytorchs_state_names_and_outputs(torch):
    model = Sequential(
        Conv1d(2, 3, 3, padding=1, seed=0), MaxPool1d(2), Flatten(), Layer(9, 2, "linear", seed=0)
    )
    reference = torch.nn.Sequential(
        torch.nn.Conv1d(2, 3, 3, padding=1),
        torch.nn.MaxPool1d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(9, 2),
    ).double()
    state = model.state_dict()
    assert (
        list(state) == list(reference.state_dict()) == ["0.weight", "0.bias", "3.weight", "3.bias"]
    )
    reference.load_state_dict({k: torch.tensor(v, dtype=torch.float64) for k, v in state.items()})
    X = [_sample(2, 6, seed=s) for s in range(3)]
    expected = reference(torch.tensor(X, dtype=torch.float64)).tolist()
    assert _close([[v.data for v in out] for out in model.forward_batch(X)], expected)
    assert model[0].weight[0][1][2].label == "layer1.weight0_1_2"


# -- save / load and export -------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Conv1d(2, 3, 3, stride=2, padding=1, seed=0),
        lambda: MaxPool1d(3, stride=1),
        lambda: AvgPool1d(2),
        Flatten,
        lambda: Sequential(
            Conv1d(2, 2, 2, seed=1), AvgPool1d(2), Flatten(), Layer(8, 1, "linear", seed=1)
        ),
    ],
    ids=["conv", "maxpool", "avgpool", "flatten", "cnn"],
)
def test_save_then_load_gives_the_same_module_and_outputs(make, tmp_path):
    model = make()
    save(model, tmp_path / "model.json")
    loaded = load(tmp_path / "model.json")
    assert type(loaded) is type(model) and repr(loaded) == repr(model)
    assert loaded.state_dict() == model.state_dict()
    x = _sample(2, 9, seed=6)
    assert _flat(_data_of(loaded(x))) == _flat(_data_of(model(x)))


def _data_of(out):
    return out.data if isinstance(out, Value) else [_data_of(child) for child in out]


def test_declared_state_shapes_are_the_built_conv1d():
    config = {"in_channels": 3, "out_channels": 4, "kernel_size": 2, "stride": 1, "padding": 0}
    built = {key: _shape(value) for key, value in Conv1d(**config).state_dict().items()}
    assert Conv1d.state_shapes(**config) == built == {"weight": (4, 3, 2), "bias": (4,)}


def _shape(value):
    return (len(value), *_shape(value[0])) if isinstance(value, list) else ()


def test_conv1d_exports_to_torchs_conv1d_with_its_weights(torch):
    conv = Conv1d(2, 3, 3, stride=2, padding=1, seed=0)
    (twin,) = to_torch(conv)
    assert isinstance(twin, torch.nn.Conv1d)
    assert (twin.stride, twin.padding) == ((2,), (1,))
    x = _sample(2, 7, seed=7)
    assert _close(_data(conv(x)), twin(torch.tensor(x, dtype=torch.float64)).tolist())


def test_numpy_arrays_are_samples_too():
    import numpy as np

    conv = Conv1d(2, 1, 2, seed=0)
    x = [[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]]
    assert _data(conv(np.array(x))) == _data(conv(x))
    assert _data([MaxPool1d(2)(np.array([1.0, 3.0]))]) == [[3.0]]
    assert [v.data for v in Flatten()(np.array(x))] == [0.5, -1.0, 2.0, 1.5, 0.0, -0.5]


# -- training on the digits -------------------------------------------------------------------


def _digits_cnn(channels):
    """Notebook 12's CNN: a 19-pixel kernel on the 64 pixels row by row covers a 3 x 3 patch."""
    from nn import Activation

    return Sequential(
        Conv1d(1, channels, 19, stride=2, seed=1),
        Activation("relu"),
        Flatten(),
        Layer(channels * 23, 10, activation="linear", seed=3),
    )


def test_a_small_cnn_trained_with_jit_reads_held_out_digits():
    from nn import fit, optim
    from nn.data import load_digits, train_test_split
    from nn.train import accuracy

    X_train, X_test, y_train, y_test = train_test_split(*load_digits(), test_size=0.25, seed=0)
    model = _digits_cnn(32)
    optimizer = optim.Adam(model.parameters(), lr=0.003)
    schedule = optim.CosineDecay(optimizer, total_epochs=20)
    history = fit(
        model,
        X_train,
        y_train,
        loss="cross_entropy",
        optimizer=optimizer,
        epochs=20,
        batch_size=32,
        seed=0,
        jit=True,
        progress=False,
        callbacks=[lambda epoch, model, history: schedule.step()],
    )
    # Without notebook 12's shifted copies this recipe gives 96.0% to 96.4% (seeds 0 to 4).
    assert accuracy(model, X_test, y_test) >= 0.95
    assert history.loss[-1] < 0.1 * history.loss[0]


def test_a_digits_cnn_trains_to_the_same_numbers_with_and_without_jit():
    from nn import matrix_source, optim
    from nn.data import load_digits

    X, y = load_digits()
    runs = fit_both_ways(
        lambda: _digits_cnn(4), X[:8], y[:8], lambda params: optim.Adam(params, lr=0.003),
        loss="cross_entropy", epochs=2, batch_size=4, seed=0,
    )  # fmt: skip
    # The traced step runs the convolution as one gathered product, not a dot per window.
    assert "Xw1 = X[:, windows1]" in matrix_source(_digits_cnn(4), "cross_entropy", n_inputs=64)
    (eager, eager_parameters) = runs[0]
    assert len(eager.loss) == 2 and len(eager_parameters) == 4 * 20 + 10 * 93
    assert eager.loss[1] != eager.loss[0]  # the four steps moved the parameters
    assert_same_training(runs, tolerance=1e-9)


# -- Unflatten: a flat sample as channels, for a convolution -----------------------------------


def test_unflatten_cuts_a_flat_sample_into_channels_as_pytorch(torch):
    x = [float(i) for i in range(12)]
    ours = Unflatten(3, 4)(x)
    theirs = torch.nn.Unflatten(1, (3, 4))(torch.tensor([x], dtype=torch.float64))[0]
    assert [[v.data for v in channel] for channel in ours] == theirs.tolist()
    assert repr(Unflatten(3, 4)) == "Unflatten(channels=3, length=4)"
    values = [Value(v) for v in x]
    assert Unflatten(2, 6)(values)[1][0] is values[6]  # no new nodes


@pytest.mark.parametrize(
    ("x", "error", "message"),
    [
        ([1.0] * 11, ValueError, r"Unflatten expected 3 x 4 = 12 numbers, got 11"),
        ([[1.0] * 4] * 3, TypeError, "Unflatten expected a flat list of 12 numbers"),
        (1.5, TypeError, "Unflatten expected a flat list of 12 numbers, got 1.5"),
    ],
)
def test_unflatten_refuses_what_is_not_a_flat_sample_of_its_size(x, error, message):
    with pytest.raises(error, match=message):
        Unflatten(3, 4)(x)


def test_unflatten_refuses_sizes_that_are_not_counts():
    with pytest.raises(ValueError, match="Unflatten expected channels to be an int >= 1, got 0"):
        Unflatten(0, 4)


def test_a_cnn_over_image_rows_as_channels_trains_with_jit_as_without(tmp_path):
    # An 8 x 8 image as 8 channels (its rows) of 8: the kernel reads 3 columns of every row.
    from nn import optim

    def cnn():
        return Sequential(
            Unflatten(8, 8),
            Conv1d(8, 4, 3, padding=1, seed=0),
            Activation("relu"),
            MaxPool1d(2),
            Flatten(),
            Layer(16, 3, "linear", seed=1),
        )

    rng = random.Random(4)
    X = [[rng.random() for _ in range(64)] for _ in range(24)]
    y = [i % 3 for i in range(24)]
    runs = fit_both_ways(
        cnn, X, y, lambda params: optim.SGD(params, lr=0.1),
        loss="cross_entropy", epochs=3, batch_size=8, seed=0,
    )  # fmt: skip
    assert_same_training(runs)
    model = cnn()
    save(model, tmp_path / "cnn.json")
    assert repr(load(tmp_path / "cnn.json")) == repr(model)
