"""Neurons, layers and multi-layer perceptrons, built from `autograd_core` Values.

A neuron computes act(w . x + b). Here the weighted sum and the bias are ONE `dot` node: the
bias is one more weight, paired with a constant input 1.0, so

    w . x + b  =  dot([w_1, ..., w_n, b], [x_1, ..., x_n, 1.0])

and its local gradients are d/dw_i = x_i, d/db = 1, d/dx_i = w_i. With the activation a neuron
is two nodes, whatever its number of inputs (micrograd makes 2n nodes for the same sum).

As in micrograd and PyTorch: `model.parameters()` lists every weight, `model.zero_grad()` clears
their gradients, and `model(x)` runs the forward pass.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from autograd_core import Value, dot

from .data import Seed, as_rng

Input = Value | float
# A parameter "tensor": a Value, or a (nested) list of them, e.g. a layer's weight matrix.
ParameterTree = Value | list["ParameterTree"]

ACTIVATIONS: dict[str, Callable[[Value], Value]] = {
    "relu": Value.relu,
    "tanh": Value.tanh,
    "sigmoid": Value.sigmoid,
    "leaky_relu": Value.leaky_relu,
    "linear": lambda v: v,
}
"""The activations a neuron can apply to its weighted sum, by name."""


class Module:
    """The base of every model: parameters, gradients, state and the call.

    A subclass defines `forward(x)`, `parameters()` (a fixed order), `_parameter_tree()`
    (the same Values, named and shaped for `state_dict`) and `_use_parameters(values)`
    (put other Values in their place, for `functional_call`).
    """

    def parameters(self) -> list[Value]:
        """Every trainable Value of the module, always in the same order."""
        return []

    def zero_grad(self) -> None:
        """Set every parameter's gradient to 0 (gradients accumulate across `backward` calls)."""
        for p in self.parameters():
            p.grad = 0.0

    def forward(self, x: Sequence[Input]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward(x)")

    def __call__(self, x: Sequence[Input]) -> Any:
        return self.forward(x)

    def _parameter_tree(self) -> dict[str, ParameterTree]:
        return {}

    def _use_parameters(self, values: Iterator[Value]) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot swap its parameters")

    def state_dict(self) -> dict[str, Any]:
        """The parameters' numbers by name, as JSON-ready floats and lists of floats.

        Names and shapes follow PyTorch: a layer's `weight` is a list of `nout` rows of `nin`
        floats and its `bias` a list of `nout` floats; an MLP prefixes `layers.<i>.`.
        """
        return {name: _numbers(tree) for name, tree in self._parameter_tree().items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy the numbers of `state` (as made by `state_dict`) into the parameters.

        Everything is checked before anything is written: the names, every shape, and that every
        entry is a finite real number. On any problem a `ValueError` says what and where, and the
        module is left exactly as it was.
        """
        tree = self._parameter_tree()
        if not isinstance(state, Mapping):
            raise ValueError(f"a state dict must be a dict, got {type(state).__name__}")
        missing = [name for name in tree if name not in state]
        unexpected = [name for name in state if name not in tree]
        if missing or unexpected:
            raise ValueError(
                f"state dict does not fit {type(self).__name__}: "
                f"missing {missing}, unexpected {unexpected}"
            )
        assignments: list[tuple[Value, float]] = []
        for name, parameters in tree.items():
            _match(parameters, state[name], name, assignments)
        for parameter, number in assignments:
            parameter.data = number


def _numbers(tree: ParameterTree) -> Any:
    return tree.data if isinstance(tree, Value) else [_numbers(child) for child in tree]


def _match(
    tree: ParameterTree, numbers_: Any, where: str, assignments: list[tuple[Value, float]]
) -> None:
    """Check `numbers_` has the shape of `tree` and finite entries; collect (Value, number)."""
    if isinstance(tree, Value):
        if isinstance(numbers_, bool) or not isinstance(numbers_, numbers.Real):
            raise ValueError(f"{where}: expected a number, got {type(numbers_).__name__}")
        if not math.isfinite(numbers_):
            raise ValueError(f"{where}: expected a finite number, got {numbers_!r}")
        assignments.append((tree, float(numbers_)))
        return
    if not isinstance(numbers_, (list, tuple)) or len(numbers_) != len(tree):
        got = len(numbers_) if isinstance(numbers_, (list, tuple)) else type(numbers_).__name__
        raise ValueError(f"{where}: expected a list of {len(tree)}, got {got}")
    for index, (child, entry) in enumerate(zip(tree, numbers_, strict=True)):
        _match(child, entry, f"{where}[{index}]", assignments)


def functional_call(module: Module, parameters: Sequence[Value], x: Sequence[Input]) -> Any:
    """`module(x)` computed with `parameters` in place of `module.parameters()`.

    As `torch.func.functional_call`: the forward pass becomes a function of the parameters,
    which is what `jit` needs to trace a training step (the weights are its arguments, not
    constants). The module's own parameters are put back afterwards.
    """
    own = module.parameters()
    if len(parameters) != len(own):
        raise ValueError(f"expected {len(own)} parameters, got {len(parameters)}")
    module._use_parameters(iter(parameters))
    try:
        return module(x)
    finally:
        module._use_parameters(iter(own))


class Neuron(Module):
    """act(w . x + b) with n weights and a bias: one `dot` node and one activation node.

    Weights start as N(0, std^2), chosen for the activation so the signal keeps its size from
    layer to layer: He (std = sqrt(2 / nin)) for relu and leaky_relu, which zero about half of
    their inputs; Xavier/Glorot (std = sqrt(2 / (nin + fan_out))) for tanh, sigmoid and linear.
    `fan_out` is the width of the layer the neuron belongs to. The bias starts at 0.
    `seed` is an int, a `random.Random` to draw from, or None for a fresh random start.
    """

    def __init__(
        self, nin: int, activation: str = "relu", *, seed: Seed = None, fan_out: int = 1
    ) -> None:
        _check_size("Neuron", "nin", nin)
        _check_size("Neuron", "fan_out", fan_out)
        _check_activation(activation)
        rng = as_rng(seed)
        if activation in ("relu", "leaky_relu"):
            std = math.sqrt(2.0 / nin)
        else:
            std = math.sqrt(2.0 / (nin + fan_out))
        self.w = [Value(rng.gauss(0.0, std), f"w{i}") for i in range(nin)]
        self.b = Value(0.0, "b")
        self.activation = activation
        self._activate = ACTIVATIONS[activation]

    @property
    def nin(self) -> int:
        return len(self.w)

    def forward(self, x: Sequence[Input]) -> Value:
        return self._fire(_inputs_and_one(x, self.nin))

    def _fire(self, inputs_and_one: list[Value]) -> Value:
        # The bias pairs with the constant 1.0 at the end of the inputs.
        return self._activate(dot([*self.w, self.b], inputs_and_one))

    def parameters(self) -> list[Value]:
        return [*self.w, self.b]

    def _parameter_tree(self) -> dict[str, ParameterTree]:
        return {"weight": self.w, "bias": self.b}

    def _use_parameters(self, values: Iterator[Value]) -> None:
        self.w = [next(values) for _ in self.w]
        self.b = next(values)

    def __repr__(self) -> str:
        return f"Neuron(nin={self.nin}, activation={self.activation!r})"


class Layer(Module):
    """`nout` neurons that all read the same `nin` inputs.

    `layer(x)` returns a list of `nout` Values, or a single Value when `nout == 1`.
    """

    def __init__(self, nin: int, nout: int, activation: str = "relu", *, seed: Seed = None) -> None:
        _check_size("Layer", "nin", nin)
        _check_size("Layer", "nout", nout)
        _check_activation(activation)
        rng = as_rng(seed)
        self.neurons = [Neuron(nin, activation, seed=rng, fan_out=nout) for _ in range(nout)]
        self.activation = activation

    @property
    def nin(self) -> int:
        return self.neurons[0].nin

    @property
    def nout(self) -> int:
        return len(self.neurons)

    def forward(self, x: Sequence[Input]) -> Value | list[Value]:
        out = self._fire(_inputs_and_one(x, self.nin))
        return out[0] if len(out) == 1 else out

    def _fire(self, inputs_and_one: list[Value]) -> list[Value]:
        return [neuron._fire(inputs_and_one) for neuron in self.neurons]

    def parameters(self) -> list[Value]:
        return [p for neuron in self.neurons for p in neuron.parameters()]

    def _parameter_tree(self) -> dict[str, ParameterTree]:
        return {
            "weight": [neuron.w for neuron in self.neurons],
            "bias": [neuron.b for neuron in self.neurons],
        }

    def _use_parameters(self, values: Iterator[Value]) -> None:
        for neuron in self.neurons:
            neuron._use_parameters(values)

    def __repr__(self) -> str:
        return f"Layer(nin={self.nin}, nout={self.nout}, activation={self.activation!r})"


class MLP(Module):
    """A multi-layer perceptron: layers of sizes `nouts`, the first reading `nin` inputs.

    Hidden layers apply `activation`; the last layer is linear, so its outputs are scores or
    logits for a loss to read. `MLP(2, [16, 16, 1])` is micrograd's moons model.
    `model(x)` returns a Value when the last layer has one output, else a list of Values.
    `MLP(**model.config())` builds a model of the same shape (with new weights).
    """

    def __init__(
        self, nin: int, nouts: Sequence[int], activation: str = "relu", seed: Seed = None
    ) -> None:
        _check_size("MLP", "nin", nin)
        if isinstance(nouts, (str, bytes)) or not isinstance(nouts, Sequence) or not nouts:
            raise ValueError(
                f"MLP expected a non-empty list of layer sizes as nouts, got {nouts!r}"
            )
        for size in nouts:
            _check_size("MLP", "every layer size in nouts", size)
        _check_activation(activation)
        rng = as_rng(seed)
        sizes = [nin, *nouts]
        last = len(nouts) - 1
        self.layers = [
            Layer(sizes[i], sizes[i + 1], activation if i < last else "linear", seed=rng)
            for i in range(len(nouts))
        ]
        self.activation = activation

    @property
    def nin(self) -> int:
        return self.layers[0].nin

    @property
    def nouts(self) -> list[int]:
        return [layer.nout for layer in self.layers]

    def config(self) -> dict[str, Any]:
        """The architecture as JSON-ready data: `MLP(**config)` rebuilds this shape."""
        return {"nin": self.nin, "nouts": self.nouts, "activation": self.activation}

    def forward(self, x: Sequence[Input]) -> Value | list[Value]:
        signal = _inputs_and_one(x, self.nin)
        one = signal[-1]  # every layer's bias input: one constant node per forward pass
        for layer in self.layers:
            signal = layer._fire(signal)
            signal.append(one)
        signal.pop()
        return signal[0] if len(signal) == 1 else signal

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def _parameter_tree(self) -> dict[str, ParameterTree]:
        return {
            f"layers.{i}.{name}": tree
            for i, layer in enumerate(self.layers)
            for name, tree in layer._parameter_tree().items()
        }

    def _use_parameters(self, values: Iterator[Value]) -> None:
        for layer in self.layers:
            layer._use_parameters(values)

    def __repr__(self) -> str:
        lines = [f"MLP(nin={self.nin}, nouts={self.nouts}, activation={self.activation!r})"]
        lines += [f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers)]
        lines.append(f"  {len(self.parameters())} parameters")
        return "\n".join(lines)


def _inputs_and_one(x: Sequence[Input], nin: int) -> list[Value]:
    """The inputs as Values, made once per forward pass, then the constant 1.0 for the biases."""
    if isinstance(x, (Value, str, bytes, numbers.Number)) or not hasattr(x, "__len__"):
        raise TypeError(f"expected a list of {nin} inputs, got {type(x).__name__}")
    if len(x) != nin:
        raise ValueError(f"expected {nin} inputs, got {len(x)}")
    inputs = [xi if isinstance(xi, Value) else Value(xi) for xi in x]
    inputs.append(Value(1.0))
    return inputs


def _check_size(owner: str, name: str, size: Any) -> None:
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ValueError(f"{owner} expected {name} to be an int >= 1, got {size!r}")


def _check_activation(activation: Any) -> None:
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}: expected one of {', '.join(ACTIVATIONS)}"
        )
