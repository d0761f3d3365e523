"""Export any module to PyTorch: where a user goes when scalars are no longer enough.

    net = to_torch(model)               # torch.nn.Sequential, float64
    net(torch.tensor([[0.5, -1.0]], dtype=torch.float64))

Each of our modules becomes its PyTorch twin with the same numbers (our `state_dict` already
has PyTorch's names and shapes):

    Layer, Neuron       ->  Linear, then the activation as a module (none for `linear`)
    MLP, Sequential     ->  their modules' twins, in order
    BatchNorm1d         ->  BatchNorm1d with the same eps, momentum and running statistics
    Dropout             ->  Dropout(p)
    Conv1d, MaxPool1d, AvgPool1d, Flatten, Unflatten  ->  the torch modules of the same names
                                                   (a first Conv1d of one channel takes flat
                                                   samples (N, L) as ours does, and (N, 1, L))
    RNNCell, GRUCell    ->  RNNCell, GRUCell (call `net[0](x, h)` to pass a hidden state)
    LSTMCell            ->  LSTMCell (`net[0](x, (h, c))`)
    Embedding, Linear, LayerNorm, RMSNorm  ->  the torch modules of the same names
    CausalSelfAttention ->  a MultiheadAttention (batch first) called with a causal mask,
                            mapping (B, T, dim) to (B, T, dim)
    Block, GPT          ->  modules built from those twins; a GPT's maps a LongTensor (B, T)
                            of token ids to logits (B, T, vocab_size)

The result is in train or eval mode as the model is, and in eval mode computes what the model
computes, in float64, on whole batches at once. `TORCH_TWINS` maps each module type to the
function building its twins; a new module type adds one with the `@torch_twin(Type)` decorator.

torch is imported only when `to_torch` is called, so the rest of `nn` does not need it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from autograd_core import Value

from .conv import AvgPool1d, Conv1d, Flatten, MaxPool1d, Unflatten
from .modules import (
    ACTIVATIONS,
    MLP,
    Activation,
    BatchNorm1d,
    Dropout,
    Layer,
    Module,
    Neuron,
    Sequential,
)
from .recurrent import GRUCell, LSTMCell, RNNCell
from .sequence import GPT, Block, CausalSelfAttention, Embedding, LayerNorm, Linear, RMSNorm

if TYPE_CHECKING:
    import torch

TwinBuilder = Callable[[Any, Any], list["torch.nn.Module"]]

TORCH_TWINS: dict[type[Module], TwinBuilder] = {}
"""Module type -> a function (torch, module) returning the torch modules that compute it."""


def torch_twin(module_type: type[Module]) -> Callable[[TwinBuilder], TwinBuilder]:
    """Decorator: register the function that exports modules of `module_type`."""

    def register(build: TwinBuilder) -> TwinBuilder:
        TORCH_TWINS[module_type] = build
        return build

    return register


def to_torch(model: Module) -> torch.nn.Sequential:
    """A float64 `torch.nn.Sequential` computing what `model` computes."""
    if not isinstance(model, Module):
        raise TypeError(f"to_torch exports an nn module, got {type(model).__name__}")
    torch = _import_torch()
    twins = _twins(torch, model)
    if isinstance(twins[0], torch.nn.Conv1d) and twins[0].in_channels == 1:
        # Our Conv1d of one channel takes a flat sample, as `fit` gives it; PyTorch's wants a
        # channel axis: the twin takes (N, L) batches as the model does, and (N, 1, L) too.
        twins.insert(0, _channel_axis(torch)())
    net = torch.nn.Sequential(*twins)
    return net.train(model.training)


@functools.cache
def _channel_axis(torch: Any) -> type[torch.nn.Module]:
    """A torch module that gives a batch of flat samples (N, L) the channel axis (N, 1, L)."""

    class ChannelAxis(torch.nn.Module):
        """(N, L) -> (N, 1, L); a batch that has its channel axis passes as it is."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.unsqueeze(1) if x.dim() == 2 else x

    return ChannelAxis


def _twins(torch: Any, module: Module) -> list[torch.nn.Module]:
    build = TORCH_TWINS.get(type(module))
    if build is None:
        raise TypeError(
            f"to_torch has no PyTorch twin for {type(module).__name__}; "
            "register one with nn.export.torch_twin"
        )
    return build(torch, module)


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError(
            "to_torch needs PyTorch, which is not installed: pip install torch==2.13.0"
        ) from None
    return torch


def _copy_state(torch: Any, twin: torch.nn.Module, module: Module) -> torch.nn.Module:
    """Load our state_dict into the twin: the names and shapes are already PyTorch's."""
    state = {
        key: torch.tensor(value, dtype=torch.int64 if isinstance(value, int) else torch.float64)
        for key, value in module.state_dict().items()
    }
    twin.load_state_dict(state)
    return twin


def _leaky_relu_slope() -> float:
    # Read the slope off our own activation, so the exported model cannot disagree with it.
    return -ACTIVATIONS["leaky_relu"](Value(-1.0)).data


def _torch_activation(torch: Any, name: str) -> list[torch.nn.Module]:
    """The torch module computing our activation `name`: none for `linear` (the identity)."""
    if name == "linear":
        return []
    if name == "leaky_relu":
        return [torch.nn.LeakyReLU(negative_slope=_leaky_relu_slope())]
    return [{"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}[name]()]


@torch_twin(Layer)
def _layer(torch: Any, layer: Layer) -> list[torch.nn.Module]:
    linear = torch.nn.Linear(layer.nin, layer.nout, dtype=torch.float64)
    return [_copy_state(torch, linear, layer), *_torch_activation(torch, layer.activation)]


@torch_twin(Neuron)
def _neuron(torch: Any, neuron: Neuron) -> list[torch.nn.Module]:
    linear = torch.nn.Linear(neuron.nin, 1, dtype=torch.float64)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[w.data for w in neuron.w]], dtype=torch.float64))
        linear.bias.fill_(neuron.b.data)
    return [linear, *_torch_activation(torch, neuron.activation)]


@torch_twin(MLP)
def _mlp(torch: Any, model: MLP) -> list[torch.nn.Module]:
    return [twin for layer in model.layers for twin in _twins(torch, layer)]


@torch_twin(Sequential)
def _sequential(torch: Any, model: Sequential) -> list[torch.nn.Module]:
    return [twin for module in model for twin in _twins(torch, module)]


@torch_twin(BatchNorm1d)
def _batchnorm(torch: Any, bn: BatchNorm1d) -> list[torch.nn.Module]:
    twin = torch.nn.BatchNorm1d(bn.num_features, bn.eps, bn.momentum, dtype=torch.float64)
    return [_copy_state(torch, twin, bn)]


@torch_twin(Activation)
def _activation(torch: Any, activation: Activation) -> list[torch.nn.Module]:
    return _torch_activation(torch, activation.name) or [torch.nn.Identity()]


@torch_twin(Dropout)
def _dropout(torch: Any, dropout: Dropout) -> list[torch.nn.Module]:
    return [torch.nn.Dropout(dropout.p)]


@torch_twin(Conv1d)
def _conv1d(torch: Any, conv: Conv1d) -> list[torch.nn.Module]:
    twin = torch.nn.Conv1d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dtype=torch.float64,
    )
    return [_copy_state(torch, twin, conv)]


@torch_twin(MaxPool1d)
def _max_pool(torch: Any, pool: MaxPool1d) -> list[torch.nn.Module]:
    return [torch.nn.MaxPool1d(pool.kernel_size, stride=pool.stride)]


@torch_twin(AvgPool1d)
def _avg_pool(torch: Any, pool: AvgPool1d) -> list[torch.nn.Module]:
    return [torch.nn.AvgPool1d(pool.kernel_size, stride=pool.stride)]


@torch_twin(Flatten)
def _flatten(torch: Any, flatten: Flatten) -> list[torch.nn.Module]:
    return [torch.nn.Flatten()]


@torch_twin(Unflatten)
def _unflatten(torch: Any, unflatten: Unflatten) -> list[torch.nn.Module]:
    return [torch.nn.Unflatten(1, (unflatten.channels, unflatten.length))]


@torch_twin(RNNCell)
def _rnn_cell(torch: Any, cell: RNNCell) -> list[torch.nn.Module]:
    twin = torch.nn.RNNCell(
        cell.input_size, cell.hidden_size, nonlinearity=cell.nonlinearity, dtype=torch.float64
    )
    return [_copy_state(torch, twin, cell)]


@torch_twin(GRUCell)
def _gru_cell(torch: Any, cell: GRUCell) -> list[torch.nn.Module]:
    twin = torch.nn.GRUCell(cell.input_size, cell.hidden_size, dtype=torch.float64)
    return [_copy_state(torch, twin, cell)]


def _same_arguments(name: str) -> TwinBuilder:
    """The twin of a module whose config is the arguments of the torch module `name`."""

    def build(torch: Any, module: Module) -> list[torch.nn.Module]:
        twin = getattr(torch.nn, name)(**module.config(), dtype=torch.float64)
        return [_copy_state(torch, twin, module)]

    return build


for _type in (LSTMCell, Embedding, Linear, LayerNorm):
    torch_twin(_type)(_same_arguments(_type.__name__))


@torch_twin(RMSNorm)
def _rms_norm(torch: Any, norm: RMSNorm) -> list[torch.nn.Module]:
    # The eps in use, not None: PyTorch's default depends on the dtype, ours is float64's.
    options = {"elementwise_affine": norm.elementwise_affine, "eps": norm.eps}
    twin = torch.nn.RMSNorm(norm.normalized_shape, dtype=torch.float64, **options)
    return [_copy_state(torch, twin, norm)]


@torch_twin(CausalSelfAttention)
def _attention(torch: Any, attention: CausalSelfAttention) -> list[torch.nn.Module]:
    twin = _sequence_classes(torch).CausalSelfAttention(
        attention.dim, attention.n_head, bias=attention.has_bias
    )
    return [_copy_state(torch, twin, attention)]


@torch_twin(Block)
def _block(torch: Any, block: Block) -> list[torch.nn.Module]:
    parts = [
        _one_twin(torch, m) for m in (block.ln_1, block.attn, block.ln_2, block.fc, block.proj)
    ]
    return [_sequence_classes(torch).Block(*parts)]


@torch_twin(GPT)
def _gpt(torch: Any, gpt: GPT) -> list[torch.nn.Module]:
    blocks = torch.nn.ModuleList(_one_twin(torch, block) for block in gpt.blocks)
    parts = [_one_twin(torch, m) for m in (gpt.wte, gpt.wpe, gpt.ln_f, gpt.lm_head)]
    return [_sequence_classes(torch).GPT(blocks, *parts)]


def _one_twin(torch: Any, module: Module) -> torch.nn.Module:
    """The twin of a module that exports as one torch module (a part of a bigger twin)."""
    (twin,) = _twins(torch, module)
    return twin


@functools.cache
def _sequence_classes(torch: Any) -> SimpleNamespace:
    """The torch modules a transformer's twin is made of, defined once torch is imported."""

    class CausalSelfAttention(torch.nn.MultiheadAttention):
        """Self-attention over (B, T, dim), position t reading positions 1..t only."""

        def __init__(self, dim: int, n_head: int, bias: bool) -> None:
            super().__init__(dim, n_head, bias=bias, batch_first=True, dtype=torch.float64)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            size = x.shape[-2]
            future = torch.ones(size, size, dtype=torch.bool, device=x.device).triu(1)
            return super().forward(x, x, x, attn_mask=future, need_weights=False)[0]

    class Block(torch.nn.Module):
        """x + attn(ln_1(x)), then x + proj(relu(fc(ln_2(x))))."""

        def __init__(self, ln_1: Any, attn: Any, ln_2: Any, fc: Any, proj: Any) -> None:
            super().__init__()
            self.ln_1, self.attn, self.ln_2, self.fc, self.proj = ln_1, attn, ln_2, fc, proj

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + self.attn(self.ln_1(x))
            return x + self.proj(torch.relu(self.fc(self.ln_2(x))))

    class GPT(torch.nn.Module):
        """Token ids (B, T) -> logits (B, T, vocab_size)."""

        def __init__(self, blocks: Any, wte: Any, wpe: Any, ln_f: Any, lm_head: Any) -> None:
            super().__init__()
            self.wte, self.wpe, self.blocks = wte, wpe, blocks
            self.ln_f, self.lm_head = ln_f, lm_head

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            positions = torch.arange(ids.shape[-1], device=ids.device)
            x = self.wte(ids) + self.wpe(positions)
            for block in self.blocks:
                x = block(x)
            return self.lm_head(self.ln_f(x))

    return SimpleNamespace(CausalSelfAttention=CausalSelfAttention, Block=Block, GPT=GPT)
