"""nn.export_onnx: every module kind, read back by ONNX Runtime, gives our numbers."""

import random

import numpy as np
import onnx
import onnxruntime
import pytest

import nn
from nn.conv import AvgPool1d, Conv1d, Flatten, MaxPool1d, Unflatten
from nn.modules import (
    MLP,
    MODULE_TYPES,
    Activation,
    BatchNorm1d,
    Dropout,
    Layer,
    Neuron,
    Sequential,
)
from nn.recurrent import GRUCell, LSTMCell, RNNCell
from nn.sequence import GPT, Embedding, LayerNorm, Linear, RMSNorm
from nn.train import predict_outputs


def _trained_batch_norm():
    """A Sequential with batch norm whose running estimates are not the initial ones."""
    model = Sequential(Layer(3, 4, "tanh", seed=0), BatchNorm1d(4), Dropout(0.3, seed=0),
                       Activation("sigmoid"), Layer(4, 2, "linear", seed=1))  # fmt: skip
    X, y = nn.data.make_blobs(30, centers=2, seed=0)
    X = [[a, b, a * b] for a, b in X]
    nn.fit(model, X, y, loss="cross_entropy", optimizer=nn.optim.SGD(model.parameters(), lr=0.1),
           epochs=3, batch_size=10, progress=False)  # fmt: skip
    return model


def _numbers(output):
    """Our outputs as nested lists of floats (an LSTM cell's h of its (h, c))."""
    if isinstance(output, tuple):
        return _numbers(output[0])
    if isinstance(output, list):
        return [_numbers(o) for o in output]
    return output.data


def _gpt():
    return GPT(vocab_size=6, block_size=4, n_embd=8, n_head=2, n_layer=2, seed=0)


# (make the model, the width of a sample, whether its file is float32, token ids in 0..n or
# None for real numbers)
MODELS = {
    "mlp": (lambda: MLP(2, [8, 8, 1], activation="relu", seed=0), 2, False, None),
    "neuron": (lambda: Neuron(3, "sigmoid", seed=0), 3, False, None),
    "layer": (lambda: Layer(3, 4, "tanh", seed=0), 3, False, None),
    "leaky-relu-in-float32": (lambda: Layer(3, 4, "leaky_relu", seed=0), 3, True, None),
    "batchnorm-dropout-activation": (_trained_batch_norm, 3, False, None),
    "conv-of-flat-samples": (
        lambda: Sequential(
            Conv1d(1, 2, 3, seed=0), MaxPool1d(2), Flatten(), Layer(16, 1, "linear", seed=1)
        ),
        18,
        True,
        None,
    ),
    "unflatten-conv-avgpool": (
        lambda: Sequential(
            Unflatten(3, 6),
            Conv1d(3, 2, 3, padding=1, seed=0),
            AvgPool1d(2),
            Flatten(),
            Layer(6, 3, "linear", seed=1),
        ),
        18,
        True,
        None,
    ),
    "maxpool-in-float64": (
        lambda: Sequential(Unflatten(2, 6), MaxPool1d(2, stride=1), Flatten(), Layer(10, 1)),
        12,
        False,
        None,
    ),
    "rnn-cell": (lambda: RNNCell(3, 4, seed=0), 3, False, None),
    "gru-cell": (lambda: GRUCell(3, 4, seed=0), 3, False, None),
    "lstm-cell": (lambda: LSTMCell(3, 4, seed=0), 3, False, None),
    "linear-layernorm-rmsnorm": (
        lambda: Sequential(Linear(3, 4, seed=0), LayerNorm(4), RMSNorm(4)),
        3,
        False,
        None,
    ),
    "embedding": (lambda: Embedding(6, 3, seed=0), 1, False, 6),
    "gpt-blocks-attention": (_gpt, 4, True, 6),
}


def test_every_registered_module_kind_is_exported_here():
    kinds = {type(m) for make, *_ in MODELS.values() for m in make().modules()}
    assert set(MODULE_TYPES.values()) <= kinds


@pytest.mark.parametrize(("make", "width", "float32", "ids"), MODELS.values(), ids=list(MODELS))
def test_onnx_runtime_gives_our_numbers(torch, tmp_path, make, width, float32, ids):
    model = make().eval()
    # A first Conv1d reads samples of any length: the only model that is told the width.
    told = width if isinstance(model, Sequential) and isinstance(model[0], Conv1d) else None
    path = nn.export_onnx(model, tmp_path / "model.onnx", n_inputs=told)
    onnx.checker.check_model(onnx.load(path), full_check=True)  # a valid file, as Netron reads
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    given = session.get_inputs()[0]
    assert given.name == "x" and given.shape == ["batch", width]
    real = "tensor(float)" if float32 else "tensor(double)"
    assert given.type == ("tensor(int64)" if ids else real)
    rng = random.Random(1)
    if ids:
        X = np.array([[rng.randrange(ids) for _ in range(width)] for _ in range(5)])
        rows = [int(row[0]) if width == 1 else row.tolist() for row in X]
    else:
        X = np.array([[rng.uniform(-2.0, 2.0) for _ in range(width)] for _ in range(7)])
        X = X.astype(np.float32 if float32 else np.float64)
        rows = X.astype(np.float64).tolist()
    theirs = session.run(None, {"x": X})[0]
    ours = np.array([_numbers(model(row)) for row in rows], dtype=np.float64)
    # float64 files hold the weights exactly; float32 ones to float32's precision
    difference = np.abs(theirs.reshape(ours.shape) - ours).max()
    assert difference <= 1e-6 * max(1.0, np.abs(ours).max())
    if not (float32 or ids or isinstance(model, LSTMCell)):  # the batched back-end's too
        assert np.abs(theirs - predict_outputs(model, rows)).max() <= 1e-10


def test_the_file_is_written_whole_or_not_at_all(torch, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"the old file")
    with pytest.raises(ValueError, match=r"cannot tell how many inputs a Sequential reads"):
        nn.export_onnx(Sequential(Conv1d(1, 1, 2)), path)
    assert path.read_bytes() == b"the old file"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_only_a_module_is_exported(tmp_path):
    with pytest.raises(TypeError, match="export_onnx exports an nn module, got list"):
        nn.export_onnx([1.0], tmp_path / "model.onnx")
