"""Recurrent cells, and backpropagation through time by unrolling them over a sequence.

An Elman cell (`RNNCell`) reads one input vector `x` and the previous hidden state `h` and
makes the next:

    h' = tanh(W_ih x + b_ih + W_hh h + b_hh)

Run over a sequence x_1 ... x_T with the SAME weights at every step (`unroll`), it builds one
graph in which the weights appear T times. `backward()` on a loss at the end then adds up, for
each weight, the gradient it gets at every step: that sum is backpropagation through time, and
nothing here does anything special for it; the chain rule over the unrolled graph is the whole
algorithm. Going back one step multiplies the gradient by W_hh and by tanh' <= 1, which is why
the gradient reaching early inputs tends to shrink (the vanishing gradient). A `GRUCell` adds
gates that let the state pass through a step almost unchanged, and its gradient with it; an
`LSTMCell` keeps a second state, the cell c, that a step only scales and adds to.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from autograd_core import Value, dot

from .data import Seed, as_rng
from .modules import ACTIVATIONS, Input, Module, Shape, _check_size, _inputs_and_one, register

NONLINEARITIES = ("tanh", "relu")
LSTMState = tuple[Sequence[Input] | None, Sequence[Input] | None]
"""An LSTM cell's state: the hidden state h and the cell state c (either None: zeros)."""
"""The cell's activations, as `torch.nn.RNNCell`'s `nonlinearity`."""


class _Cell(Module):
    """What the cells share: PyTorch's four parameter tensors, the checks, labels and the call.

    A cell has `gates` blocks of `hidden_size` rows (1 for the Elman cell, 3 for the GRU, 4
    for the LSTM), stacked in `weight_ih` (gates * hidden x input), `weight_hh` (gates *
    hidden x hidden), `bias_ih` and `bias_hh`, in PyTorch's order, so `parameters()` and
    `state_dict()` are `torch.nn.RNNCell`'s, `GRUCell`'s and `LSTMCell`'s. Every weight and
    bias starts as PyTorch's: U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)).
    """

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, seed: Seed) -> None:
        name = type(self).__name__
        _check_size(name, "input_size", input_size)
        _check_size(name, "hidden_size", hidden_size)
        rng = as_rng(seed)
        bound = 1.0 / math.sqrt(hidden_size)
        rows = self.gates * hidden_size

        def matrix(columns: int) -> list[list[Value]]:
            return [vector(columns) for _ in range(rows)]

        def vector(size: int) -> list[Value]:
            return [Value(rng.uniform(-bound, bound)) for _ in range(size)]

        self.weight_ih = matrix(input_size)
        self.weight_hh = matrix(hidden_size)
        self.bias_ih = vector(rows)
        self.bias_hh = vector(rows)

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
        return len(self.weight_hh[0])

    @classmethod
    def state_shapes(cls, input_size: int, hidden_size: int, **options: Any) -> dict[str, Shape]:
        _check_size(cls.__name__, "input_size", input_size)
        _check_size(cls.__name__, "hidden_size", hidden_size)
        rows = cls.gates * hidden_size
        return {
            "weight_ih": (rows, input_size),
            "weight_hh": (rows, hidden_size),
            "bias_ih": (rows,),
            "bias_hh": (rows,),
        }

    def __call__(self, x: Sequence[Input], h: Sequence[Input] | None = None) -> list[Value]:
        return self.forward(x, h)

    def forward(self, x: Sequence[Input], h: Sequence[Input] | None = None) -> list[Value]:
        """The next hidden state, one Value per unit, labelled h0, h1, ..."""
        x_and_one, h_and_one = self._inputs(x, h)
        return self._labelled(self._step(x_and_one, h_and_one), self._out_labels)

    def _inputs(
        self, x: Sequence[Input], h: Sequence[Input] | None
    ) -> tuple[list[Value], list[Value]]:
        """x and h checked and made Values, each followed by the same constant 1 node."""
        x_and_one = _inputs_and_one(x, self.input_size)
        x_and_one[-1].label = "1"  # a constant, not an input: named so a drawing says so
        h_and_one = self._state_and_one(h, "a hidden state")
        h_and_one[-1] = x_and_one[-1]  # one constant node is enough for both biases
        return x_and_one, h_and_one

    def _state_and_one(self, state: Sequence[Input] | None, what: str) -> list[Value]:
        """A state vector of `hidden_size` numbers (None: zeros, as PyTorch), then a 1."""
        if state is None:
            state = [Value(0.0, "0")] * self.hidden_size
        try:
            return _inputs_and_one(state, self.hidden_size)
        except ValueError:
            raise ValueError(
                f"{type(self).__name__} expected {what} of {self.hidden_size} numbers, "
                f"got {len(state)}"
            ) from None

    @staticmethod
    def _labelled(units: list[Value], labels: list[str]) -> list[Value]:
        for unit, label in zip(units, labels, strict=True):
            unit.label = label
        return units

    def _advance(self, x: Sequence[Input], state: Any) -> tuple[list[Value], Any]:
        """One step of `unroll`: the new hidden state, and the state the next step reads."""
        h = self(x, state)
        return h, h

    def _step(self, x_and_one: list[Value], h_and_one: list[Value]) -> list[Value]:
        raise NotImplementedError(f"{type(self).__name__} must define _step")

    def _row(self, row: int) -> tuple[list[Value], list[Value]]:
        """Row `row` of the input side (weights, then bias) and of the hidden side: each a
        weight list a `dot` pairs with inputs ending in the constant 1."""
        return (
            [*self.weight_ih[row], self.bias_ih[row]],
            [*self.weight_hh[row], self.bias_hh[row]],
        )


@register
class RNNCell(_Cell):
    """An Elman cell: h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh (default) or relu.

    `cell(x, h=None)` takes one input of `input_size` numbers and the previous hidden state of
    `hidden_size` (None: zeros, as PyTorch) and returns the new hidden state as a list of
    `hidden_size` Values. Each hidden unit is ONE `dot` node, the biases paired with a constant
    1.0 as in a neuron, followed by its activation node.

    `state_dict()` has `torch.nn.RNNCell`'s names and shapes (`weight_ih` hidden x input,
    `weight_hh` hidden x hidden, `bias_ih`, `bias_hh`), `parameters()` its order, and the
    initialisation is its: U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)). `seed` is an int, a
    `random.Random` or None.
    """

    def __init__(
        self, input_size: int, hidden_size: int, nonlinearity: str = "tanh", seed: Seed = None
    ) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(
                f"RNNCell expected nonlinearity to be one of {', '.join(NONLINEARITIES)}, "
                f"got {nonlinearity!r}"
            )
        super().__init__(input_size, hidden_size, seed)
        self.nonlinearity = nonlinearity
        self._activate = ACTIVATIONS[nonlinearity]
        self.set_labels()

    def config(self) -> dict[str, Any]:
        """The architecture as JSON-ready data: `RNNCell(**config)` rebuilds this shape."""
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "nonlinearity": self.nonlinearity,
        }

    def _step(self, x_and_one: list[Value], h_and_one: list[Value]) -> list[Value]:
        # Both halves in one dot node: the unit's whole pre-activation is one node.
        inputs = x_and_one + h_and_one
        return [
            self._activate(dot([*input_side, *hidden_side], inputs))
            for input_side, hidden_side in map(self._row, range(self.hidden_size))
        ]


@register
class GRUCell(_Cell):
    """A gated recurrent unit, as `torch.nn.GRUCell`:

        r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)          reset gate
        z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)          update gate
        n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))       candidate state
        h' = (1 - z) * n + z * h

    Where z is near 1 the unit keeps its old state, and d h'/d h = z passes the gradient back
    through the step almost unchanged: the gate is a way around the vanishing gradient.

    Called as `cell(x, h=None)`, like `RNNCell`. The weights of the three gates are stacked in
    PyTorch's order (r, z, n), so `weight_ih` is 3*hidden x input and `state_dict()` is
    `torch.nn.GRUCell`'s; initialisation U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)).
    """

    gates = 3

    def __init__(self, input_size: int, hidden_size: int, seed: Seed = None) -> None:
        super().__init__(input_size, hidden_size, seed)
        self.set_labels()

    def config(self) -> dict[str, Any]:
        """The architecture as JSON-ready data: `GRUCell(**config)` rebuilds this shape."""
        return {"input_size": self.input_size, "hidden_size": self.hidden_size}

    def _step(self, x_and_one: list[Value], h_and_one: list[Value]) -> list[Value]:
        both = x_and_one + h_and_one
        size = self.hidden_size
        h_next = []
        for i, h in enumerate(h_and_one[:-1]):
            gates = [self._row(i + gate * size) for gate in range(3)]
            reset, update = (dot([*a, *b], both).sigmoid() for a, b in gates[:2])
            input_side, hidden_side = gates[2]
            n = (dot(input_side, x_and_one) + reset * dot(hidden_side, h_and_one)).tanh()
            h_next.append(n + update * (h - n))  # (1 - z) n + z h, with one product
        return h_next


@register
class LSTMCell(_Cell):
    """A long short-term memory cell, as `torch.nn.LSTMCell`:

        i  = sigmoid(W_ii x + b_ii + W_hi h + b_hi)          input gate
        f  = sigmoid(W_if x + b_if + W_hf h + b_hf)          forget gate
        g  = tanh(W_ig x + b_ig + W_hg h + b_hg)             candidate cell
        o  = sigmoid(W_io x + b_io + W_ho h + b_ho)          output gate
        c' = f * c + i * g
        h' = o * tanh(c')

    The cell state c is carried from step to step through a product with f and a sum, never
    through a weight matrix or a squashing function: d c'/d c = f, so where the forget gate is
    near 1 the gradient crosses many steps intact.

    `cell(x, state=None)` takes one input and the pair `(h, c)` (None: zeros, as PyTorch) and
    returns the pair `(h', c')`, each a list of `hidden_size` Values labelled h0, ... and
    c0, .... The four gates' weights are stacked in PyTorch's order (i, f, g, o), so
    `weight_ih` is 4*hidden x input and `state_dict()` is `torch.nn.LSTMCell`'s;
    initialisation U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)).
    """

    gates = 4

    def __init__(self, input_size: int, hidden_size: int, seed: Seed = None) -> None:
        super().__init__(input_size, hidden_size, seed)
        self.set_labels()

    def set_labels(self, prefix: str = "") -> None:
        super().set_labels(prefix)
        self._cell_labels = [f"{prefix}c{i}" for i in range(self.hidden_size)]

    def config(self) -> dict[str, Any]:
        """The architecture as JSON-ready data: `LSTMCell(**config)` rebuilds this shape."""
        return {"input_size": self.input_size, "hidden_size": self.hidden_size}

    def __call__(  # type: ignore[override]
        self, x: Sequence[Input], state: LSTMState | None = None
    ) -> tuple[list[Value], list[Value]]:
        return self.forward(x, state)

    def forward(  # type: ignore[override]
        self, x: Sequence[Input], state: LSTMState | None = None
    ) -> tuple[list[Value], list[Value]]:
        """The next (h, c), each one Value per unit."""
        if state is None:
            h = c = None
        elif isinstance(state, tuple) and len(state) == 2:
            h, c = state
        else:
            raise ValueError(
                f"LSTMCell expected its state as a pair (h, c) or None, got {type(state).__name__}"
            )
        x_and_one, h_and_one = self._inputs(x, h)
        c_prev = self._state_and_one(c, "a cell state")[:-1]
        size = self.hidden_size
        both = x_and_one + h_and_one
        h_next, c_next = [], []
        for unit in range(size):
            i, f, g, o = (
                dot([*a, *b], both) for a, b in map(self._row, range(unit, 4 * size, size))
            )
            c_unit = dot([f.sigmoid(), i.sigmoid()], [c_prev[unit], g.tanh()])  # f c + i g
            c_next.append(c_unit)
            h_next.append(o.sigmoid() * c_unit.tanh())
        return (
            self._labelled(h_next, self._out_labels),
            self._labelled(c_next, self._cell_labels),
        )

    def _advance(self, x: Sequence[Input], state: Any) -> tuple[list[Value], Any]:
        h, c = self(x, state)
        return h, (h, c)


def unroll(cell: _Cell, xs: Sequence[Sequence[Input]], h0: Any = None) -> list[list[Value]]:
    """The hidden states h_1 ... h_T of `cell` run over the inputs x_1 ... x_T.

    h_t = cell(x_t, h_{t-1}), starting from `h0` (None: zeros; for an `LSTMCell`, the pair
    `(h0, c0)` or None, and its cell states are carried from step to step). Every step uses
    the cell's same weights; a loss on any of the returned states, then `backward()`, is
    backpropagation through time. Use `unroll(...)[-1]` for the final state. The states are
    labelled by their step, `t1.h0, t1.h1, ..., t2.h0, ...` (an LSTM's cell states `t1.c0,
    ...`), so `draw_dot` groups the graph by time step.
    """
    if isinstance(xs, (str, bytes)) or not isinstance(xs, Sequence) or not xs:
        raise ValueError(f"unroll expected a non-empty sequence of inputs, got {xs!r}")
    states = []
    state = h0
    for t, x in enumerate(xs, start=1):
        h, state = cell._advance(x, state)
        for i, unit in enumerate(h):
            unit.label = f"{cell._prefix}t{t}.h{i}"
        if isinstance(state, tuple):  # an LSTM's (h, c): its cell state belongs to the step too
            for i, unit in enumerate(state[1]):
                unit.label = f"{cell._prefix}t{t}.c{i}"
        states.append(h)
    return states
