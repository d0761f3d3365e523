"""nn.export.to_torch: the PyTorch copy computes what our model computes."""

import random
import sys

import pytest

from nn.export import to_torch
from nn.modules import ACTIVATIONS, MLP


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


def test_only_an_mlp_is_exported():
    with pytest.raises(TypeError, match="to_torch exports an MLP, got list"):
        to_torch([])
