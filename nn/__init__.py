"""nn: a small neural-network library on top of autograd_core.

Train micrograd's moons model::

    from nn import MLP, fit, optim
    from nn.data import make_moons

    X, y = make_moons(100, noise=0.1, seed=0)
    model = MLP(2, [16, 16, 1], seed=0)
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = fit(model, X, y, loss="hinge", optimizer=optimizer, epochs=100)
"""

# First, for its effect: under `python -m nn` a Ctrl-C while the rest is imported exits quietly.
from . import _starting  # noqa: F401  # isort: skip
from . import data, losses, optim, plot
from .conv import AvgPool1d, Conv1d, Flatten, MaxPool1d, Unflatten
from .export import to_torch
from .health import GradientTracker, HistogramTracker, gradient_report
from .interchange import export_onnx
from .modules import MLP, Activation, BatchNorm1d, Dropout, Layer, Module, Neuron, Sequential
from .recurrent import GRUCell, LSTMCell, RNNCell, unroll
from .sequence import (
    GPT,
    Block,
    CausalSelfAttention,
    Embedding,
    LayerNorm,
    Linear,
    RMSNorm,
    generate,
)
from .serialize import load, save
from .train import History, fit, matrix_source, predict, predict_proba

__all__ = [
    "Activation",
    "Block",
    "CausalSelfAttention",
    "Embedding",
    "GPT",
    "LSTMCell",
    "LayerNorm",
    "Linear",
    "MLP",
    "RMSNorm",
    "AvgPool1d",
    "BatchNorm1d",
    "Conv1d",
    "Dropout",
    "Flatten",
    "GRUCell",
    "GradientTracker",
    "HistogramTracker",
    "History",
    "Layer",
    "MaxPool1d",
    "Module",
    "Neuron",
    "RNNCell",
    "Sequential",
    "Unflatten",
    "data",
    "export_onnx",
    "fit",
    "generate",
    "matrix_source",
    "predict",
    "predict_proba",
    "gradient_report",
    "load",
    "losses",
    "optim",
    "plot",
    "save",
    "to_torch",
    "unroll",
]
