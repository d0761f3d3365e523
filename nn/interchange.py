"""ONNX: a model as a file that ONNX Runtime, Netron and other tools read, without our code.

    nn.export_onnx(model, "model.onnx")        # input "x": (batch, inputs); output "y"

The model goes through `to_torch` (its float64 PyTorch twin) and PyTorch's ONNX exporter, in
eval mode: batch norm uses its running estimates and dropout passes its input on, as `predict`
does. The weights are written in float64, exactly as trained, except where ONNX Runtime has
float32 kernels only (convolution, average pooling, leaky relu), or PyTorch's exporter takes
float32 only (attention): a model holding one is written in float32. The batch size is
free; the sample width is the model's. A model that reads token ids (an Embedding, a GPT)
takes them as int64.

Weights alone move in the safetensors format: `nn.save(model, "model.safetensors")`.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

from .conv import Unflatten
from .export import _import_torch, to_torch
from .modules import Module, Sequential
from .recurrent import GRUCell, LSTMCell, RNNCell
from .sequence import GPT, Embedding
from .serialize import PathLike, _check_target, _file_name, _write_atomically

FLOAT32_ONLY = ("Conv1d", "AvgPool1d", "LeakyReLU", "CausalSelfAttention")
"""The torch modules written in float32, by class name: ONNX Runtime runs the ops of the first
three in float32 only, and PyTorch's exporter takes attention masks in float32 only."""


def export_onnx(model: Module, path: PathLike, *, n_inputs: int | None = None) -> str:
    """Write `model` to `path` as an ONNX model and return the path.

    The graph takes "x", a (batch, n_inputs) array (float64; float32 for a model with a
    convolution, an average pool, a leaky relu or attention; int64 token ids for a model with
    an Embedding) and gives "y", the outputs of each sample (and "state", an LSTM cell's c).
    `n_inputs` is read off the model where it can be (an MLP, a Layer, a Neuron, a cell, what a
    Sequential starts with); give it otherwise (a Sequential that starts with a Conv1d, whose
    samples are flat when it has one channel; put an Unflatten first for several). The file is
    written atomically, as `nn.save` writes.
    """
    if not isinstance(model, Module):
        raise TypeError(f"export_onnx exports an nn module, got {type(model).__name__}")
    path = _file_name(path, "export_onnx")
    width = _input_width(model) if n_inputs is None else n_inputs
    if not (isinstance(width, int) and width >= 1):
        raise ValueError(
            f"export_onnx cannot tell how many inputs a {type(model).__name__} reads: pass "
            f"n_inputs (an int >= 1), got {width!r}"
        )
    torch = _import_torch()
    net = _without_rms_norm(torch, to_torch(model).eval())
    float32 = any(type(m).__name__ in FLOAT32_ONLY for m in net.modules())
    dtype = torch.float32 if float32 else torch.float64
    net = net.to(dtype)
    ids = any(isinstance(m, Embedding) for m in model.modules())
    example = torch.zeros(2, width, dtype=torch.int64 if ids else dtype)
    outputs = ["y", "state"] if isinstance(model, LSTMCell) else ["y"]  # LSTM: (h, c)
    _check_target(path)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # PyTorch warns that its TorchScript-based exporter is deprecated in favour of one
        # that needs the onnxscript package; it is the one that needs nothing more.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (example,),
            buffer,
            input_names=["x"],
            output_names=outputs,
            dynamic_axes={name: {0: "batch"} for name in ["x", *outputs]},
            dynamo=False,
        )
    _write_atomically(path, buffer.getvalue())
    return path


def _input_width(module: Module) -> Any:
    """How many numbers a sample of `module` holds, where its first module says."""
    if isinstance(module, Sequential):
        return _input_width(module[0])
    if isinstance(module, (RNNCell, GRUCell, LSTMCell)):
        return module.input_size
    if isinstance(module, GPT):
        return module.block_size  # token ids, one per position
    if isinstance(module, Embedding):
        return 1  # one token id
    if isinstance(module, Unflatten):
        return module.channels * module.length
    for size in ("nin", "in_features", "normalized_shape"):
        if hasattr(module, size):
            shape = getattr(module, size)
            return shape[-1] if isinstance(shape, (tuple, list)) else shape
    return None


def _without_rms_norm(torch: Any, net: Any) -> Any:
    """`net` with each `torch.nn.RMSNorm` written out as x / sqrt(mean(x^2) + eps) * weight:
    PyTorch's ONNX exporter has no rule for the fused op, and the formula is the same."""

    class RMSNorm(torch.nn.Module):
        def __init__(self, fused: Any) -> None:
            super().__init__()
            self.eps, self.weight = fused.eps, fused.weight

        def forward(self, x: Any) -> Any:
            scaled = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
            return scaled if self.weight is None else scaled * self.weight

    for parent in list(net.modules()):
        for name, child in parent.named_children():
            if isinstance(child, torch.nn.RMSNorm):
                setattr(parent, name, RMSNorm(child))
    return net
