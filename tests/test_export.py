"""nn.export.to_torch: the PyTorch copy of every module computes what our model computes."""

import random
import sys

import pytest

from nn.conv import AvgPool1d, Conv1d, Flatten, MaxPool1d, Unflatten
from nn.export import TORCH_TWINS, to_torch
from nn.modules import (
    ACTIVATIONS,
    MLP,
    MODULE_TYPES,
    BatchNorm1d,
    Dropout,
    Layer,
    Module,
    Neuron,
    Sequential,
)
from nn.recurrent import RNNCell


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("nouts", [[5, 1], [4, 3, 3]])
def test_outputs_equal_ours_on_random_inputs(torch, activation, nouts):
    model = MLP(3, nouts, activation=activation, seed=7)
    net = to_torch(model)
    rng = random.Random(0)
    inputs = [[rng.uniform(-3.0, 3.0) for _ in range(3)] for _ in range(20)]
    theirs = net(torch.tensor(inputs, dtype=torch.float64)).tolist()
    for x, row in zip(inputs, theirs, strict=True):
        out = model(x)
        ours = [out.data] if nouts[-1] == 1 else [v.data for v in out]
        assert ours == pytest.approx(row, abs=1e-12, rel=0)


def test_exported_model_is_float64_linear_layers_and_hidden_activations(torch):
    net = to_torch(MLP(2, [8, 8, 1], activation="tanh", seed=0))
    kinds = [type(module).__name__ for module in net]
    assert kinds == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    assert all(p.dtype == torch.float64 for p in net.parameters())


def test_leaky_relu_keeps_our_slope(torch):
    net = to_torch(MLP(2, [4, 1], activation="leaky_relu", seed=0))
    assert net[1].negative_slope == 0.01  # Value.leaky_relu's default slope


def test_exported_weights_are_a_copy(torch):
    model = MLP(2, [3, 1], seed=0)
    net = to_torch(model)
    with torch.no_grad():
        net[0].weight.zero_()
    assert any(p.data != 0.0 for p in model.layers[0].neurons[0].w)


def test_missing_torch_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ImportError, match=r"pip install torch==2\.13\.0"):
        to_torch(MLP(2, [1], seed=0))


def test_only_a_module_is_exported():
    with pytest.raises(TypeError, match="to_torch exports an nn module, got list"):
        to_torch([])


def test_a_module_without_a_twin_is_refused_by_name(torch):
    class Custom(Module):
        pass

    with pytest.raises(TypeError, match="no PyTorch twin for Custom; register one"):
        to_torch(Sequential(Layer(2, 2), Custom()))


def test_every_registered_module_type_has_a_twin():
    assert set(MODULE_TYPES.values()) <= set(TORCH_TWINS)


def _data(out):
    if isinstance(out, list):
        return [_data(o) for o in out]
    return out.data


def _trained_batchnorm_net():
    model = Sequential(
        Layer(3, 5, "tanh", seed=0), BatchNorm1d(5, momentum=0.2), Dropout(0.4, seed=0), Layer(5, 2)
    )
    rng = random.Random(1)
    for _ in range(3):  # running statistics away from their start
        model.forward_batch([[rng.uniform(-2, 2) for _ in range(3)] for _ in range(6)])
    return model.eval()


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (_trained_batchnorm_net, (3,)),
        (lambda: Neuron(3, "sigmoid", seed=0), (3,)),
        (lambda: Layer(3, 4, "leaky_relu", seed=0), (3,)),
        (
            lambda: Sequential(
                Conv1d(2, 3, 3, stride=2, padding=1, seed=0),
                MaxPool1d(2),
                Conv1d(3, 2, 2, seed=1),
                AvgPool1d(2, stride=1),
                Flatten(),
                Layer(4, 1, "linear", seed=0),
            ).eval(),
            (2, 17),
        ),
        (
            lambda: Sequential(
                Unflatten(3, 4),
                Conv1d(3, 2, 3, padding=1, seed=0),
                Flatten(),
                Layer(8, 2, "linear", seed=1),
            ),
            (12,),
        ),
    ],
    ids=["batchnorm-dropout", "neuron", "layer", "conv", "unflatten-conv"],
)
def test_every_module_exports_to_the_same_numbers_in_eval_mode(torch, make, shape):
    model = make()
    net = to_torch(model)
    assert not net.training or model.training
    rng = random.Random(2)

    def sample(dims):
        if len(dims) == 1:
            return [rng.uniform(-2.0, 2.0) for _ in range(dims[0])]
        return [sample(dims[1:]) for _ in range(dims[0])]

    inputs = [sample(shape) for _ in range(8)]
    theirs = net(torch.tensor(inputs, dtype=torch.float64)).tolist()
    for x, row in zip(inputs, theirs, strict=True):
        ours = _data(model(x))
        ours = ours if isinstance(ours, list) else [ours]
        torch.testing.assert_close(
            torch.tensor(ours, dtype=torch.float64),
            torch.tensor(row, dtype=torch.float64),
            rtol=1e-12,
            atol=1e-12,
        )


def test_batchnorm_exports_its_running_statistics_and_settings(torch):
    model = _trained_batchnorm_net()
    twin = to_torch(model)[2]
    assert isinstance(twin, torch.nn.BatchNorm1d)
    assert twin.running_mean.tolist() == model[1].running_mean
    assert twin.running_var.tolist() == model[1].running_var
    assert int(twin.num_batches_tracked) == 3
    assert (twin.eps, twin.momentum) == (1e-5, 0.2)


def test_the_exported_net_is_in_the_models_mode(torch):
    model = Sequential(Layer(2, 2), Dropout(0.5))
    assert to_torch(model).training
    assert not to_torch(model.eval()).training
    assert [type(m).__name__ for m in to_torch(model)] == ["Linear", "ReLU", "Dropout"]
    assert to_torch(model)[2].p == 0.5


def test_an_rnn_cell_exports_to_torchs_cell(torch):
    cell = RNNCell(3, 4, seed=0)
    twin = to_torch(cell)[0]
    x, h = [0.5, -1.0, 2.0], [0.1, 0.2, -0.3, 0.4]
    theirs = twin(torch.tensor([x], dtype=torch.float64), torch.tensor([h], dtype=torch.float64))
    assert [v.data for v in cell(x, h)] == pytest.approx(theirs[0].tolist(), abs=1e-12, rel=1e-12)


def test_a_model_that_starts_with_a_one_channel_conv1d_takes_flat_samples_in_torch_too(torch):
    model = Sequential(Conv1d(1, 2, 3, seed=0), Flatten(), Layer(16, 1, "linear", seed=1))
    x = [0.1 * i - 0.4 for i in range(10)]
    net = to_torch(model.eval())
    flat = net(torch.tensor([x], dtype=torch.float64)).item()
    with_channel = net(torch.tensor([[x]], dtype=torch.float64)).item()
    assert flat == with_channel == pytest.approx(model(x).data, abs=1e-12, rel=0)
