"""Export an `MLP` to PyTorch: where a user goes when scalars are no longer enough.

    net = to_torch(model)               # torch.nn.Sequential, float64
    net(torch.tensor([[0.5, -1.0]], dtype=torch.float64))

Each of our layers becomes a `torch.nn.Linear` with the same weights (our `state_dict` already
has PyTorch's shapes: `weight` is nout x nin), followed by the hidden activation as a torch
module. The last layer is linear, so nothing follows it. The result computes the same numbers
as our model, in float64, on whole batches at once.

torch is imported only when `to_torch` is called, so the rest of `nn` does not need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autograd_core import Value

from .modules import ACTIVATIONS, MLP

if TYPE_CHECKING:
    import torch


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError(
            "to_torch needs PyTorch, which is not installed: pip install torch==2.13.0"
        ) from None
    return torch


def _leaky_relu_slope() -> float:
    # Read the slope off our own activation, so the exported model cannot disagree with it.
    return -ACTIVATIONS["leaky_relu"](Value(-1.0)).data


def _torch_activation(torch: Any, name: str) -> torch.nn.Module | None:
    """The torch module computing our activation `name`; None for `linear` (the identity)."""
    if name == "linear":
        return None
    if name == "leaky_relu":
        return torch.nn.LeakyReLU(negative_slope=_leaky_relu_slope())
    return {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}[name]()


def to_torch(model: MLP) -> torch.nn.Sequential:
    """A float64 `torch.nn.Sequential` of Linear layers and activations equal to `model`."""
    if not isinstance(model, MLP):
        raise TypeError(f"to_torch exports an MLP, got {type(model).__name__}")
    torch = _import_torch()
    state = model.state_dict()
    modules = []
    for i, layer in enumerate(model.layers):
        linear = torch.nn.Linear(layer.nin, layer.nout, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(state[f"layers.{i}.weight"], dtype=torch.float64))
            linear.bias.copy_(torch.tensor(state[f"layers.{i}.bias"], dtype=torch.float64))
        modules.append(linear)
        activation = _torch_activation(torch, layer.activation)
        if activation is not None:
            modules.append(activation)
    return torch.nn.Sequential(*modules)
