"""One-dimensional convolution, pooling and flattening, one sample at a time, as scalar graphs.

A sample is a list of channels, each a list of numbers (or Values) of the same length `L`; a
flat list of numbers is one channel. These modules compute what `torch.nn.Conv1d`,
`MaxPool1d`, `AvgPool1d` and `Flatten` compute on one sample, node by node:

    conv:  out[o][t] = b[o] + sum_c sum_j  w[o][c][j] * x[c][t * stride + j]   (x zero-padded)
    max:   out[c][t] = max_j x[c][t * stride + j]
    avg:   out[c][t] = (1 / k) * sum_j x[c][t * stride + j]

with `t` running over the `(L + 2 * padding - k) // stride + 1` windows that fit.

Each output of a convolution is ONE `dot` node, like a neuron: the kernel's weights, then the
bias paired with a constant 1.0. Every window of an output channel reads the same list of
weight Values, so the weight sharing that makes it a convolution is visible in the graph (and
a back-end can find all the windows of one kernel and run them as one matrix product).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from autograd_core import Value, dot, vsum

from ._checks import is_integer, is_real
from .data import Seed, as_rng
from .modules import Input, Module, Shape, _check_size, register

Channels = list[list[Value]]


@register
class Conv1d(Module):
    """`out_channels` kernels of `in_channels x kernel_size` weights, slid along the sample.

    `conv(x)` takes one sample (`in_channels` lists of equal length, or a flat list when
    `in_channels == 1`) and returns `out_channels` lists of `(L + 2 * padding - kernel_size) //
    stride + 1` Values. `padding` zeros are added at both ends of every channel.

    Initialisation is PyTorch's default for `Conv1d` (Kaiming-uniform with a = sqrt(5)): every
    weight and bias is drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), with fan_in =
    in_channels * kernel_size, the number of inputs each output reads. `seed` is an int, a
    `random.Random` to draw from, or None for a fresh random start.

    `state_dict()` has PyTorch's names and shapes: `weight` is out x in x kernel_size and
    `bias` has out_channels entries, so a `torch.nn.Conv1d`'s state loads as it is.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        seed: Seed = None,
    ) -> None:
        _check_size("Conv1d", "in_channels", in_channels)
        _check_size("Conv1d", "out_channels", out_channels)
        _check_size("Conv1d", "kernel_size", kernel_size)
        _check_size("Conv1d", "stride", stride)
        _check_padding("Conv1d", padding)
        rng = as_rng(seed)
        bound = 1.0 / math.sqrt(in_channels * kernel_size)
        self.weight = [
            [
                [Value(rng.uniform(-bound, bound)) for _ in range(kernel_size)]
                for _ in range(in_channels)
            ]
            for _ in range(out_channels)
        ]
        self.bias = [Value(rng.uniform(-bound, bound)) for _ in range(out_channels)]
        self.stride = stride
        self.padding = padding
        self.set_labels()  # weight0_1_2, bias0; prefixed by where it lives inside a model

    def set_labels(self, prefix: str = "") -> None:
        """weight0_1_2, bias0, and `map0.3` for position 3 of output channel (feature map) 0,
        all prefixed by where the convolution lives inside a model."""
        super().set_labels(prefix)
        self._prefix = prefix

    @property
    def in_channels(self) -> int:
        return len(self.weight[0])

    @property
    def out_channels(self) -> int:
        return len(self.weight)

    @property
    def kernel_size(self) -> int:
        return len(self.weight[0][0])

    def config(self) -> dict[str, Any]:
        """The architecture as JSON-ready data: `Conv1d(**config)` rebuilds this shape."""
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
        }

    def forward(self, x: Sequence[Any]) -> Channels:
        """`out_channels` lists of outputs, each one dot node: kernel . window + bias."""
        channels = _channels("Conv1d", x, self.in_channels)
        length = len(channels[0]) + 2 * self.padding
        if length < self.kernel_size:
            raise ValueError(
                f"Conv1d expected channels of at least {self.kernel_size - 2 * self.padding} "
                f"numbers (kernel_size={self.kernel_size}, padding={self.padding}), "
                f"got {len(channels[0])}"
            )
        if self.padding:
            zeros = [Value(0.0, "0")] * self.padding  # one constant node per forward pass
            channels = [zeros + channel + zeros for channel in channels]
        one = Value(1.0, "1")  # the bias's input, shared by every window
        starts = range(0, length - self.kernel_size + 1, self.stride)
        windows = [
            [*(xc for channel in channels for xc in channel[t : t + self.kernel_size]), one]
            for t in starts
        ]
        # One weight list per kernel, read by every window: the shared weights of a convolution.
        kernels = [
            [*(w for row in weights for w in row), bias]
            for weights, bias in zip(self.weight, self.bias, strict=True)
        ]
        maps = [[dot(kernel, window) for window in windows] for kernel in kernels]
        _label_maps(maps, f"{self._prefix}map")
        return maps

    @classmethod
    def state_shapes(
        cls,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
    ) -> dict[str, Shape]:
        _check_size("Conv1d", "in_channels", in_channels)
        _check_size("Conv1d", "out_channels", out_channels)
        _check_size("Conv1d", "kernel_size", kernel_size)
        return {"weight": (out_channels, in_channels, kernel_size), "bias": (out_channels,)}


class _Pool1d(Module):
    """Shared by the pools: windows of `kernel_size` along each channel, `stride` apart.

    Outputs are labelled `max0.3` (or `avg0.3`): window 3 of channel 0, prefixed by where the
    pool lives inside a model, so a drawing shows the pooling as a step of its own.
    """

    _prefix = ""
    kind = ""  # the labels' word: "max" or "avg"

    def __init__(self, kernel_size: int, stride: int | None = None) -> None:
        name = type(self).__name__
        _check_size(name, "kernel_size", kernel_size)
        if stride is not None:
            _check_size(name, "stride", stride)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride

    def config(self) -> dict[str, Any]:
        """The architecture as JSON-ready data: `type(self)(**config)` rebuilds it."""
        return {"kernel_size": self.kernel_size, "stride": self.stride}

    def set_labels(self, prefix: str = "") -> None:
        self._prefix = prefix

    def forward(self, x: Sequence[Any]) -> Channels | list[Value]:
        """Pooled channels: a list of channels, or a flat list for a flat (one-channel) input."""
        name = type(self).__name__
        channels = _channels(name, x, None)
        length = len(channels[0])
        if length < self.kernel_size:
            raise ValueError(
                f"{name} expected channels of at least kernel_size={self.kernel_size} numbers, "
                f"got {length}"
            )
        starts = range(0, length - self.kernel_size + 1, self.stride)
        pooled = [
            [self._pool(channel[t : t + self.kernel_size]) for t in starts] for channel in channels
        ]
        _label_maps(pooled, self._prefix + self.kind)
        return pooled[0] if _is_flat(x) else pooled

    def _pool(self, window: list[Value]) -> Value:
        raise NotImplementedError(f"{type(self).__name__} must define _pool(window)")


@register
class MaxPool1d(_Pool1d):
    """The largest number in each window, as `torch.nn.MaxPool1d` (no padding, no dilation).

    `stride` defaults to `kernel_size` (windows side by side). The gradient of a max goes to
    the winning input only. The graph builds the max from ops it already has:

        max(m, x) = m + relu(x - m) = x + relu(m - x)

    The winner's gradient is 1 and the loser's 0, because the relu passes nothing when its input
    is negative; on a tie the earlier input wins, as in PyTorch. Of the two equal forms we write
    the one with the current winner outside the relu, so the result IS the winner's number,
    exactly. The choice of winner is made by relu nodes, not by a Python `if`: a traced (`jit`)
    program replaying the graph on other data still picks the new winner and routes the gradient
    to it (then equal to the max up to rounding).
    """

    kind = "max"

    def _pool(self, window: list[Value]) -> Value:
        largest = window[0]
        for x in window[1:]:
            if x.data > largest.data:
                largest = x + (largest - x).relu()
            else:
                largest = largest + (x - largest).relu()
        return largest


@register
class AvgPool1d(_Pool1d):
    """The mean of each window, as `torch.nn.AvgPool1d` (no padding): d out / d x_j = 1 / k.

    `stride` defaults to `kernel_size` (windows side by side).
    """

    kind = "avg"

    def _pool(self, window: list[Value]) -> Value:
        return vsum(window) / self.kernel_size


@register
class Flatten(Module):
    """The channels of one sample, one after the other, as one flat list (channel by channel).

    As `torch.nn.Flatten()` on a batch: [[a, b], [c, d]] becomes [a, b, c, d]. No new nodes are
    made; a flat list comes back as it is. Put it between convolutions and a `Layer`.
    """

    def config(self) -> dict[str, Any]:
        return {}

    def forward(self, x: Sequence[Any]) -> list[Input]:
        if _is_list_like(x) and len(x) and _is_flat(x):
            return list(x)
        return [xi for channel in _channels("Flatten", x, None) for xi in channel]


@register
class Unflatten(Module):
    """A flat sample cut into `channels` channels of `length` numbers each, for a convolution.

    As `torch.nn.Unflatten(1, (channels, length))` on a batch: the 64 pixels of an 8 x 8 image,
    row by row, become 8 channels of 8 (one per row), so a `Conv1d(8, ...)` slides along the
    columns reading every row at once. No new nodes are made. `fit` takes flat samples; put
    this first in a `Sequential` to feed a convolution channels.
    """

    def __init__(self, channels: int, length: int) -> None:
        _check_size("Unflatten", "channels", channels)
        _check_size("Unflatten", "length", length)
        self.channels = channels
        self.length = length

    def config(self) -> dict[str, Any]:
        return {"channels": self.channels, "length": self.length}

    def forward(self, x: Sequence[Any]) -> Channels:
        size = self.channels * self.length
        if not (_is_list_like(x) and _is_flat(x)):
            raise TypeError(f"Unflatten expected a flat list of {size} numbers, got {x!r}")
        if len(x) != size:
            raise ValueError(
                f"Unflatten expected {self.channels} x {self.length} = {size} numbers, got {len(x)}"
            )
        values = [xi if isinstance(xi, Value) else Value(xi) for xi in x]
        return [values[c * self.length : (c + 1) * self.length] for c in range(self.channels)]

    def __repr__(self) -> str:
        return f"Unflatten(channels={self.channels}, length={self.length})"


def _label_maps(maps: Channels, stem: str) -> None:
    """Label position t of channel c `{stem}{c}.{t}`: one drawing module per channel.

    A node with a label keeps it: a max-pool window of one is its input, already named.
    """
    for c, channel in enumerate(maps):
        for t, value in enumerate(channel):
            if not value.label:
                value.label = f"{stem}{c}.{t}"


def _is_list_like(x: Any) -> bool:
    """A list, tuple or NumPy array: something with a length that is not a string or a Value."""
    return not isinstance(x, (Value, str, bytes)) and hasattr(x, "__len__")


def _is_flat(x: Sequence[Any]) -> bool:
    """True for a flat list of numbers, which is one channel."""
    return all(isinstance(xi, Value) or is_real(xi) for xi in x)


def _channels(owner: str, x: Any, expected: int | None) -> Channels:
    """One sample as a list of channels of Values, checked: equal lengths, the right count."""
    if not _is_list_like(x):
        raise TypeError(f"{owner} expected a list of channels, got {type(x).__name__}")
    if not len(x):
        raise ValueError(f"{owner} expected a list of channels, got an empty list")
    raw = [x] if _is_flat(x) else x
    for index, channel in enumerate(raw):
        if not _is_list_like(channel):
            raise TypeError(
                f"{owner} expected channel {index} to be a list of numbers, "
                f"got {type(channel).__name__}"
            )
    if expected is not None and len(raw) != expected:
        raise ValueError(f"{owner} expected {expected} channels, got {len(raw)}")
    lengths = [len(channel) for channel in raw]
    if len(set(lengths)) != 1 or lengths[0] == 0:
        raise ValueError(f"{owner} expected channels of one non-zero length, got lengths {lengths}")
    return [[xi if isinstance(xi, Value) else Value(xi) for xi in channel] for channel in raw]


def _check_padding(owner: str, padding: Any) -> None:
    if not is_integer(padding) or padding < 0:
        raise ValueError(f"{owner} expected padding to be an int >= 0, got {padding!r}")
