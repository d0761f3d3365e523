"""A recurrent cell, and backpropagation through time by unrolling it over a sequence.

An Elman cell reads one input vector `x` and the previous hidden state `h` and makes the next:

    h' = tanh(W_ih x + b_ih + W_hh h + b_hh)

Run over a sequence x_1 ... x_T with the SAME weights at every step (`unroll`), it builds one
graph in which the weights appear T times. `backward()` on a loss at the end then adds up, for
each weight, the gradient it gets at every step: that sum is backpropagation through time, and
nothing here does anything special for it; the chain rule over the unrolled graph is the whole
algorithm. Going back one step multiplies the gradient by W_hh and by tanh' <= 1, which is why
the gradient reaching early inputs tends to shrink (the vanishing gradient).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from autograd_core import Value, dot

from .data import Seed, as_rng
from .modules import ACTIVATIONS, Input, Module, Shape, _check_size, _inputs_and_one, register

NONLINEARITIES = ("tanh", "relu")
"""The cell's activations, as `torch.nn.RNNCell`'s `nonlinearity`."""


@register
class RNNCell(Module):
    """An Elman cell: h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh (default) or relu.

    `cell(x, h=None)` takes one input of `input_size` numbers and the previous hidden state of
    `hidden_size` (None: zeros, as PyTorch) and returns the new hidden state as a list of
    `hidden_size` Values. Each hidden unit is ONE `dot` node, the biases paired with constant
    1.0 inputs as in a neuron, followed by its activation node.

    Initialisation is PyTorch's: every weight and bias drawn from
    U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)). `seed` is an int, a `random.Random` or None.
    `state_dict()` has `torch.nn.RNNCell`'s names and shapes (`weight_ih` hidden x input,
    `weight_hh` hidden x hidden, `bias_ih`, `bias_hh`), and `parameters()` its order.
    """

    def __init__(
        self, input_size: int, hidden_size: int, nonlinearity: str = "tanh", seed: Seed = None
    ) -> None:
        _check_size("RNNCell", "input_size", input_size)
        _check_size("RNNCell", "hidden_size", hidden_size)
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(
                f"RNNCell expected nonlinearity to be one of {', '.join(NONLINEARITIES)}, "
                f"got {nonlinearity!r}"
            )
        rng = as_rng(seed)
        bound = 1.0 / math.sqrt(hidden_size)

        def matrix(columns: int) -> list[list[Value]]:
            return [vector(columns) for _ in range(hidden_size)]

        def vector(size: int) -> list[Value]:
            return [Value(rng.uniform(-bound, bound)) for _ in range(size)]

        # PyTorch's order: parameters() and state_dict() list them as torch.nn.RNNCell does.
        self.weight_ih = matrix(input_size)
        self.weight_hh = matrix(hidden_size)
        self.bias_ih = vector(hidden_size)
        self.bias_hh = vector(hidden_size)
        self.nonlinearity = nonlinearity
        self._activate = ACTIVATIONS[nonlinearity]
        self.set_labels()

    def set_labels(self, prefix: str = "") -> None:
        """weight_ih0_1, ..., bias_hh2, and h0, h1, ... for the new state's units, all prefixed
        by where the cell lives inside a model."""
        super().set_labels(prefix)
        self._prefix = prefix
        self._out_labels = [f"{prefix}h{i}" for i in range(self.hidden_size)]

    @property
    def input_size(self) -> int:
        return len(self.weight_ih[0])

    @property
    def hidden_size(self) -> int:
        return len(self.weight_hh)

    def config(self) -> dict[str, Any]:
        """The architecture as JSON-ready data: `RNNCell(**config)` rebuilds this shape."""
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "nonlinearity": self.nonlinearity,
        }

    def __call__(self, x: Sequence[Input], h: Sequence[Input] | None = None) -> list[Value]:
        return self.forward(x, h)

    def forward(self, x: Sequence[Input], h: Sequence[Input] | None = None) -> list[Value]:
        """The next hidden state, act(W_ih x + b_ih + W_hh h + b_hh), one Value per unit."""
        x_and_one = _inputs_and_one(x, self.input_size)
        x_and_one[-1].label = "1"  # a constant, not an input: named so a drawing says so
        if h is None:
            h = [Value(0.0, "0")] * self.hidden_size
        try:
            h_and_one = _inputs_and_one(h, self.hidden_size)
        except ValueError:
            raise ValueError(
                f"RNNCell expected a hidden state of {self.hidden_size} numbers, got {len(h)}"
            ) from None
        # Both biases pair with the constant 1.0, so a unit's whole pre-activation is one dot
        # node; one shared constant node is enough for both.
        h_and_one[-1] = x_and_one[-1]
        inputs = x_and_one + h_and_one
        h_next = [
            self._activate(dot([*w_ih, b_ih, *w_hh, b_hh], inputs))
            for w_ih, w_hh, b_ih, b_hh in zip(
                self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, strict=True
            )
        ]
        for unit, label in zip(h_next, self._out_labels, strict=True):
            unit.label = label
        return h_next

    @classmethod
    def state_shapes(
        cls, input_size: int, hidden_size: int, nonlinearity: str = "tanh"
    ) -> dict[str, Shape]:
        _check_size("RNNCell", "input_size", input_size)
        _check_size("RNNCell", "hidden_size", hidden_size)
        return {
            "weight_ih": (hidden_size, input_size),
            "weight_hh": (hidden_size, hidden_size),
            "bias_ih": (hidden_size,),
            "bias_hh": (hidden_size,),
        }


def unroll(
    cell: RNNCell, xs: Sequence[Sequence[Input]], h0: Sequence[Input] | None = None
) -> list[list[Value]]:
    """The hidden states h_1 ... h_T of `cell` run over the inputs x_1 ... x_T.

    h_t = cell(x_t, h_{t-1}), starting from `h0` (None: zeros). Every step uses the cell's
    same weights; a loss on any of the returned states, then `backward()`, is backpropagation
    through time. Use `unroll(...)[-1]` for the final state. The states are labelled by their
    step, `t1.h0, t1.h1, ..., t2.h0, ...`, so `draw_dot` groups the graph by time step.
    """
    if isinstance(xs, (str, bytes)) or not isinstance(xs, Sequence) or not xs:
        raise ValueError(f"unroll expected a non-empty sequence of inputs, got {xs!r}")
    states = []
    h = h0
    for t, x in enumerate(xs, start=1):
        h = cell(x, h)
        for i, unit in enumerate(h):
            unit.label = f"{cell._prefix}t{t}.h{i}"
        states.append(h)
    return states
