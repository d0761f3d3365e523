"""Modules: neurons, layers, multi-layer perceptrons and the `Module` base they share.

A neuron computes act(w . x + b). Here the weighted sum and the bias are ONE `dot` node: the
bias is one more weight, paired with a constant input 1.0, so

    w . x + b  =  dot([w_1, ..., w_n, b], [x_1, ..., x_n, 1.0])

and its local gradients are d/dw_i = x_i, d/db = 1, d/dx_i = w_i. With the activation a neuron
is two nodes, whatever its number of inputs (micrograd makes 2n nodes for the same sum).

As in micrograd and PyTorch: `model.parameters()` lists every weight, `model.zero_grad()` clears
their gradients, and `model(x)` runs the forward pass.

Writing a module
----------------
A module declares what it holds once, as attributes set in `__init__`; everything else is
derived from them by `Module` (as PyTorch's registration or micrograd's recursion do):

- a **parameter** is an attribute holding a `Value` or a (nested) list of Values, e.g.
  `self.w = [Value(...) for ...]`;
- a **submodule** is an attribute holding a `Module` or a list of Modules;
- a **buffer** is state that is not trained (BatchNorm's running statistics): a float, an int
  or a (nested) list of floats, named in the class attribute `buffers`.

Attributes whose names start with `_` are private: never parameters, submodules or state.
From that one declaration come `parameters()` (attribute order, depth first: micrograd's
order), `named_parameters()` and `state_dict()` (PyTorch's names: `layers.0.weight`),
`load_state_dict()`, `zero_grad()`, `children()`, `modules()`, `train()` / `eval()`, the
labels of the graph's nodes (`layer1.neuron3.w0`: a constructor ends with `self.set_labels()`),
and `functional_call`.

Two class attributes adjust the names in `state_dict` where PyTorch's differ from ours:
`state_names` renames an attribute (a Neuron's `w` is `weight`; a Sequential's `layers` is ""
so its children are `0.`, `1.`, ...), and `stacked` names a list of submodules whose parameters
are stored stacked, as PyTorch stores a layer (a Layer's neurons: one `weight` of nout rows).

To be saved, loaded and exported, a module type also defines `config()` (its constructor's
arguments as JSON-ready data: `type(m)(**m.config())` rebuilds its shape) and is registered
with the `@register` decorator, which puts it in `MODULE_TYPES` under its class name: that dict
is where `nn.load` finds the type named in a file. A type whose constructor takes its submodules
(Sequential) sets `container = True`. Overriding the classmethod `state_shapes(**config)` lets
`nn.load` compare a file's declared shapes with the weights present without building anything.
`nn.export` keeps the matching table for PyTorch (see there).

Threads: `functional_call` never writes to the module, so threads may share one for it. A plain
call can write (a train-mode BatchNorm1d updates its running estimates, Dropout draws from its
random source), as do `load_state_dict`, `train()`/`eval()` and optimizers: a thread that runs
or trains a module needs its own.
"""

from __future__ import annotations

import copy
import itertools
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from autograd_core import Value, batch, dot, vsum

from ._checks import is_integer, is_real
from .data import Seed, as_rng

Input = Value | float
# A parameter "tensor": a Value, or a (nested) list of them, e.g. a layer's weight matrix.
ParameterTree = Value | list["ParameterTree"]
Shape = tuple[int, ...]

ACTIVATIONS: dict[str, Callable[[Value], Value]] = {
    "relu": Value.relu,
    "tanh": Value.tanh,
    "sigmoid": Value.sigmoid,
    "leaky_relu": Value.leaky_relu,
    "linear": lambda v: v,
}
"""The activations a neuron can apply to its weighted sum, by name."""

ModuleType = TypeVar("ModuleType", bound=type["Module"])

MODULE_TYPES: dict[str, type[Module]] = {}
"""Every module type `nn.load` can rebuild, by class name (the `type` field of a model file)."""


def register(cls: ModuleType) -> ModuleType:
    """Class decorator: make a module type known to `nn.load` under its class name."""
    name = cls.__name__
    if name in MODULE_TYPES and MODULE_TYPES[name] is not cls:
        raise ValueError(f"a module type named {name!r} is already registered")
    MODULE_TYPES[name] = cls
    return cls


class Module:
    """The base of every model: parameters, gradients, state, train/eval mode and the call.

    A subclass sets its parameters and submodules as attributes and defines `forward(x)`; the
    module docstring says how the rest is derived from those attributes.
    """

    buffers: tuple[str, ...] = ()
    """Names of the attributes that are state but not parameters (saved, never trained)."""
    state_names: dict[str, str] = {}
    """Attribute name -> its name in `state_dict`, where the two differ."""
    stacked: str | None = None
    """A list of submodules whose parameters `state_dict` stores stacked into one per name."""
    container: bool = False
    """True when the constructor takes the submodules (`Sequential(*modules)`)."""
    training: bool = True
    """Train mode (the default) or eval mode; see `train()`."""

    # -- the declaration, read from the attributes ---------------------------------------------

    def _members(self, parameters: bool = True) -> Iterator[tuple[str, str, Any]]:
        """(kind, attribute name, value) of each declared member, in attribute order.

        kind is "parameter", "child", "children" (a list of modules) or "buffer" (last).
        `parameters=False` leaves the parameters out without looking at them (a walk over the
        submodules would otherwise check every weight of a wide layer to be a Value).
        """
        for name, value in vars(self).items():
            if name.startswith("_") or name in self.buffers:
                continue
            if isinstance(value, Module):
                yield "child", name, value
            elif _is_module_list(value):
                yield "children", name, value
            elif parameters and _is_parameter_tree(value):
                yield "parameter", name, value
        for name in self.buffers:
            yield "buffer", name, getattr(self, name)

    def _state_entries(self, prefix: str = "") -> Iterator[tuple[str, str, Module, str, Any]]:
        """(state name, kind, owner, attribute, value) of every parameter and buffer below."""
        for kind, name, value in self._members():
            renamed = self.state_names.get(name, name)
            key = prefix + renamed
            if kind in ("parameter", "buffer"):
                yield key, kind, self, name, value
            elif kind == "child":
                yield from value._state_entries(key + ".")
            elif name == self.stacked:
                rows = [dict((k, v) for k, _, _, _, v in child._state_entries()) for child in value]
                for child_key in rows[0]:
                    yield prefix + child_key, "parameter", self, name, [r[child_key] for r in rows]
            else:
                for i, child in enumerate(value):
                    # A list renamed "" (a Sequential's modules) numbers them in place.
                    yield from child._state_entries(f"{key}.{i}." if renamed else f"{prefix}{i}.")

    # -- views derived from it -----------------------------------------------------------------

    def parameters(self) -> list[Value]:
        """Every trainable Value of the module, always in the same order (attribute order,
        depth first: a neuron's weights then its bias, neuron after neuron, as in micrograd)."""
        found: list[Value] = []
        self._parameters_into(found)
        return found

    def _parameters_into(self, found: list[Value]) -> None:
        """Append `parameters()` to `found` (one list for the whole tree: a wide model's
        weights are not copied from list to list on the way up)."""
        for kind, _, value in self._members():
            if kind == "parameter":
                _flatten(value, found)
            elif kind == "child":
                value._parameters_into(found)
            elif kind == "children":
                for child in value:
                    child._parameters_into(found)

    def named_parameters(self) -> list[tuple[str, ParameterTree]]:
        """(name, parameter tensor) pairs with PyTorch's names: `layers.0.weight` is a list of
        nout rows of nin Values, `layers.0.bias` a list of nout Values."""
        return [
            (key, value) for key, kind, _, _, value in self._state_entries() if kind == "parameter"
        ]

    def children(self) -> list[Module]:
        """The direct submodules, in attribute order."""
        found: list[Module] = []
        for kind, _, value in self._members(parameters=False):
            if kind == "child":
                found.append(value)
            elif kind == "children":
                found += value
        return found

    def modules(self) -> list[Module]:
        """This module and every submodule below it, depth first."""
        found: list[Module] = [self]
        for child in self.children():
            found += child.modules()
        return found

    def zero_grad(self) -> None:
        """Set every parameter's gradient to 0 (gradients accumulate across `backward` calls)."""
        for p in self.parameters():
            p.grad = 0.0

    def train(self, mode: bool = True) -> Module:
        """Put this module and every submodule in train mode (`mode=False`: eval mode).

        Only some modules behave differently: Dropout drops inputs only in train mode, and
        BatchNorm1d normalises with the batch's statistics in train mode and with its running
        estimates in eval mode. Returns the module, as PyTorch does.
        """
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode) takes a bool, got {type(mode).__name__}")
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        """Eval mode: `train(False)`."""
        return self.train(False)

    # -- the forward pass ----------------------------------------------------------------------

    def forward(self, x: Sequence[Input]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward(x)")

    def __call__(self, x: Sequence[Input], **options: Any) -> Any:
        out = self.forward(x, **options)
        return Outputs(out) if type(out) is list else out

    def forward_batch(self, X: Sequence[Sequence[Input]]) -> list[Any]:
        """The outputs for every sample of a batch: `[self(x) for x in X]` for most modules.

        A module whose train-mode output depends on the whole batch (BatchNorm1d) overrides
        it; training calls `forward_batch`, so such a module sees its batch.
        """
        return [self(x) for x in X]

    # -- labels: every node named by where it lives -------------------------------------------

    def set_labels(self, prefix: str = "") -> None:
        """Label every parameter by its place: `layer1.neuron3.w0`, `layer1.neuron3.b`.

        A constructor calls `self.set_labels()` last; it relabels the submodules too, so a
        module built inside another is renamed once the outer one is complete. List submodules
        are numbered from 1 under their attribute's singular (`layers` -> `layer1`); list
        parameters take their index (`w` -> `w0`, `w1`, ...; `weight0_1` in two dimensions).
        A module whose outputs have names too (a neuron's `out`) overrides this to keep them.
        """
        for kind, name, value in self._members():
            if kind == "parameter":
                _label_tree(value, prefix + name)
            elif kind == "child":
                value.set_labels(f"{prefix}{name}.")
            elif kind == "children":
                singular = name[:-1] if name.endswith("s") else name
                for i, child in enumerate(value, start=1):
                    child.set_labels(f"{prefix}{singular}{i}.")

    # -- state ---------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The parameters' and buffers' numbers by name, as JSON-ready floats and lists.

        Names and shapes follow PyTorch: a layer's `weight` is a list of `nout` rows of `nin`
        floats and its `bias` a list of `nout` floats; an MLP prefixes `layers.<i>.`.
        """
        return {key: _numbers(value) for key, _, _, _, value in self._state_entries()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy the numbers of `state` (as made by `state_dict`) into the parameters and buffers.

        Everything is checked before anything is written: the names, every shape, and that every
        entry is a finite real number (an int where the buffer is a count). On any problem a
        `ValueError` says what and where, and the module is left exactly as it was.
        """
        entries = list(self._state_entries())
        if not isinstance(state, Mapping):
            raise ValueError(f"a state dict must be a dict, got {type(state).__name__}")
        names = {key for key, *_ in entries}
        missing = [key for key, *_ in entries if key not in state]
        unexpected = [name for name in state if name not in names]
        if missing or unexpected:
            raise ValueError(
                f"state dict does not fit {type(self).__name__}: "
                f"missing {missing}, unexpected {unexpected}"
            )
        assignments: list[tuple[Value, float]] = []
        buffers: list[tuple[Module, str, Any]] = []
        for key, kind, owner, name, value in entries:
            if kind == "parameter":
                _match(value, state[key], key, assignments)
            else:
                checked = _checked_buffer(value, state[key], key)
                owner.check_buffer(name, checked, key)
                buffers.append((owner, name, checked))
        for parameter, number in assignments:
            parameter.data = number
        for owner, name, value in buffers:
            setattr(owner, name, value)

    def check_buffer(self, name: str, value: Any, where: str) -> None:
        """Refuse, with a `ValueError` naming `where`, a value of buffer `name` this module
        cannot use (its kind and shape are checked already). Every value is usable here."""

    def config(self) -> dict[str, Any]:
        """The constructor's arguments as JSON-ready data: `type(self)(**config)` rebuilds the
        shape (with new weights). Submodules of a container are not part of it."""
        raise NotImplementedError(f"{type(self).__name__} does not define config()")

    @classmethod
    def state_shapes(cls, **config: Any) -> dict[str, Shape]:
        """The shape of each `state_dict` entry of `cls(**config)` (() for a number).

        `nn.load` compares these with a file's weights before building anything, so a file
        declaring a huge model with few weights is refused at once. This default builds the
        module to find out; a type whose size follows from its config overrides it.
        """
        return {key: _shape(value) for key, value in cls(**config).state_dict().items()}

    def __repr__(self) -> str:
        try:
            arguments = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        except NotImplementedError:
            arguments = ""
        return f"{type(self).__name__}({arguments})"


class Outputs(list):
    """A module's outputs when it has several: a list of Values that says, when `.backward()`
    is called on it, that a gradient needs one number (a loss), not a list."""

    def backward(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            f"backward() starts from one number, and these are {len(self)} outputs of a module: "
            "compute a loss from them first (e.g. nn.losses.cross_entropy([outputs], [label])), "
            "or call backward() on one of them (outputs[0].backward())"
        )


def _is_module_list(value: Any) -> bool:
    if not (isinstance(value, list) and value):
        return False
    # (checked in C: every walk over the modules asks it of every neuron's row of weights)
    return all(map(isinstance, value, itertools.repeat(Module)))


def _is_parameter_tree(value: Any) -> bool:
    if isinstance(value, Value):
        return True
    if not (isinstance(value, list) and value):
        return False
    return _all_values(value) or all(map(_is_parameter_tree, value))


def _all_values(values: list[Any]) -> bool:
    """Whether every item is a Value: a row of weights, checked in C (every walk over the
    modules comes here for each weight)."""
    return all(map(isinstance, values, itertools.repeat(Value)))


def _flatten(tree: ParameterTree, found: list[Value]) -> None:
    if isinstance(tree, Value):
        found.append(tree)
    elif _all_values(tree):
        found += tree
    else:
        for child in tree:
            _flatten(child, found)


def _label_tree(tree: ParameterTree, label: str, separator: str = "") -> None:
    if isinstance(tree, Value):
        tree.label = label
        return
    for i, child in enumerate(tree):
        _label_tree(child, f"{label}{separator}{i}", "_")


def _numbers(tree: Any) -> Any:
    """A parameter tree's numbers (a buffer's are numbers already), as fresh lists."""
    if isinstance(tree, Value):
        return tree.data
    if isinstance(tree, list):
        return [_numbers(child) for child in tree]
    return tree


def _shape(numbers_: Any) -> Shape:
    """The shape of a nested list read along its first entries: [[1, 2], [3, 4]] -> (2, 2)."""
    shape: list[int] = []
    while isinstance(numbers_, list):
        shape.append(len(numbers_))
        if not numbers_:
            break
        numbers_ = numbers_[0]
    return tuple(shape)


def _finite_float(number: Any, where: str) -> float:
    """`number` as a float, or a ValueError naming `where` if it is not a finite real number."""
    if not is_real(number):
        raise ValueError(f"{where}: expected a number, got {type(number).__name__}")
    try:
        converted = float(number)
    except OverflowError:  # an int such as 10**400 has no float
        raise ValueError(
            f"{where}: expected a finite number, got an int of {len(str(number))} digits"
        ) from None
    if not math.isfinite(converted):
        raise ValueError(f"{where}: expected a finite number, got {number!r}")
    return converted


def _match(
    tree: ParameterTree, numbers_: Any, where: str, assignments: list[tuple[Value, float]]
) -> None:
    """Check `numbers_` has the shape of `tree` and finite entries; collect (Value, number)."""
    if isinstance(tree, Value):
        assignments.append((tree, _finite_float(numbers_, where)))
        return
    if not isinstance(numbers_, (list, tuple)) or len(numbers_) != len(tree):
        got = len(numbers_) if isinstance(numbers_, (list, tuple)) else type(numbers_).__name__
        raise ValueError(f"{where}: expected a list of {len(tree)}, got {got}")
    for index, (child, entry) in enumerate(zip(tree, numbers_, strict=True)):
        _match(child, entry, f"{where}[{index}]", assignments)


def _checked_buffer(current: Any, given: Any, where: str) -> Any:
    """`given` checked against the buffer's `current` shape and kind, as fresh lists."""
    if isinstance(current, list):
        if not isinstance(given, (list, tuple)) or len(given) != len(current):
            got = len(given) if isinstance(given, (list, tuple)) else type(given).__name__
            raise ValueError(f"{where}: expected a list of {len(current)}, got {got}")
        return [
            _checked_buffer(c, g, f"{where}[{i}]")
            for i, (c, g) in enumerate(zip(current, given, strict=True))
        ]
    if isinstance(current, int):
        if not is_integer(given) or given < 0:
            raise ValueError(f"{where}: expected a count (an int >= 0), got {given!r}")
        return int(given)
    return _finite_float(given, where)


def functional_call(module: Module, parameters: Sequence[Value], x: Sequence[Input]) -> Any:
    """`module(x)` computed with `parameters` in place of `module.parameters()`.

    As `torch.func.functional_call`: the forward pass becomes a function of the parameters,
    which is what `jit` needs to trace a training step (the weights are its arguments, not
    constants). `module` itself is not touched: the call runs on a shallow copy of its tree
    that holds `parameters`, so threads may call this on one module at once. Buffer updates
    (BatchNorm's running statistics in train mode) happen on the copy and are dropped.
    """
    own = module.parameters()
    if len(parameters) != len(own):
        raise ValueError(f"expected {len(own)} parameters, got {len(parameters)}")
    return _with_parameters(module, iter(parameters))(x)


def _with_parameters(module: Module, values: Iterator[Value]) -> Module:
    """A shallow copy of `module` whose parameters are taken, in order, from `values`."""
    clone = copy.copy(module)
    for kind, name, value in module._members():
        if kind == "parameter":
            setattr(clone, name, _rebuild(value, values))
        elif kind == "child":
            setattr(clone, name, _with_parameters(value, values))
        elif kind == "children":
            setattr(clone, name, [_with_parameters(child, values) for child in value])
    return clone


def _rebuild(tree: ParameterTree, values: Iterator[Value]) -> ParameterTree:
    if isinstance(tree, Value):
        return next(values)
    return [_rebuild(child, values) for child in tree]


@register
class Neuron(Module):
    """act(w . x + b) with n weights and a bias: one `dot` node and one activation node.

    Weights start as N(0, std^2), chosen for the activation so the signal keeps its size from
    layer to layer: He (std = sqrt(2 / nin)) for relu and leaky_relu, which zero about half of
    their inputs; Xavier/Glorot (std = sqrt(2 / (nin + fan_out))) for tanh, sigmoid and linear.
    `fan_out` is the width of the layer the neuron belongs to. The bias starts at 0.
    `seed` is an int, a `random.Random` to draw from, or None for a fresh random start.

    Its parameters are labelled `w0, w1, ..., b` and its output `out`; inside a model the labels
    say where the neuron lives: `layer1.neuron3.w0`, `layer1.neuron3.out`.
    """

    state_names = {"w": "weight", "b": "bias"}

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
        self.w = [Value(rng.gauss(0.0, std)) for _ in range(nin)]
        self.b = Value(0.0)
        self.activation = activation
        self._activate = ACTIVATIONS[activation]
        self.set_labels()

    @property
    def nin(self) -> int:
        return len(self.w)

    def config(self) -> dict[str, Any]:
        return {"nin": self.nin, "activation": self.activation}

    def set_labels(self, prefix: str = "") -> None:
        super().set_labels(prefix)
        self._out_label = prefix + "out"

    def forward(self, x: Sequence[Input], *, one: Value | None = None) -> Value:
        """act(w . x + b). `one` is the constant 1.0 node the bias multiplies, if the caller
        shares one between many neurons (made here otherwise)."""
        return self.fire(_inputs_and_one(x, self.nin, one))

    def fire(self, inputs_and_one: list[Value]) -> Value:
        """The neuron on inputs already made Values and ending with the constant 1.0, unchecked:
        a Layer checks its inputs once and fires every neuron on them."""
        out = self._activate(dot([*self.w, self.b], inputs_and_one))
        out.label = self._out_label
        return out

    def __repr__(self) -> str:
        return f"Neuron(nin={self.nin}, activation={self.activation!r})"


@register
class Layer(Module):
    """`nout` neurons that all read the same `nin` inputs.

    `layer(x)` returns a list of `nout` Values, or a single Value when `nout == 1`. Its
    `state_dict` stacks the neurons as PyTorch's `Linear` does: `weight` is nout x nin.
    """

    stacked = "neurons"

    def __init__(self, nin: int, nout: int, activation: str = "relu", *, seed: Seed = None) -> None:
        _check_size("Layer", "nin", nin)
        _check_size("Layer", "nout", nout)
        _check_activation(activation)
        rng = as_rng(seed)
        self.neurons = [Neuron(nin, activation, seed=rng, fan_out=nout) for _ in range(nout)]
        self.activation = activation
        self.set_labels()

    @property
    def nin(self) -> int:
        return self.neurons[0].nin

    @property
    def nout(self) -> int:
        return len(self.neurons)

    def config(self) -> dict[str, Any]:
        return {"nin": self.nin, "nout": self.nout, "activation": self.activation}

    @classmethod
    def state_shapes(cls, nin: int, nout: int, activation: str = "relu") -> dict[str, Shape]:
        _check_size("Layer", "nin", nin)
        _check_size("Layer", "nout", nout)
        _check_activation(activation)
        return {"weight": (nout, nin), "bias": (nout,)}

    def forward(self, x: Sequence[Input], *, one: Value | None = None) -> Value | list[Value]:
        """Every neuron on `x`; `one` as in `Neuron.forward`."""
        inputs_and_one = _inputs_and_one(x, self.nin, one)
        out = [neuron.fire(inputs_and_one) for neuron in self.neurons]
        return out[0] if len(out) == 1 else out

    def __repr__(self) -> str:
        return f"Layer(nin={self.nin}, nout={self.nout}, activation={self.activation!r})"


@register
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
        _check_mlp(nin, nouts, activation)
        rng = as_rng(seed)
        sizes = [nin, *nouts]
        last = len(nouts) - 1
        self.layers = [
            Layer(sizes[i], sizes[i + 1], activation if i < last else "linear", seed=rng)
            for i in range(len(nouts))
        ]
        self.activation = activation
        self.set_labels()

    @property
    def nin(self) -> int:
        return self.layers[0].nin

    @property
    def nouts(self) -> list[int]:
        return [layer.nout for layer in self.layers]

    def config(self) -> dict[str, Any]:
        """The architecture as JSON-ready data: `MLP(**config)` rebuilds this shape."""
        return {"nin": self.nin, "nouts": self.nouts, "activation": self.activation}

    @classmethod
    def state_shapes(
        cls, nin: int, nouts: Sequence[int], activation: str = "relu"
    ) -> dict[str, Shape]:
        _check_mlp(nin, nouts, activation)
        sizes = [nin, *nouts]
        shapes: dict[str, Shape] = {}
        for i in range(len(nouts)):
            shapes[f"layers.{i}.weight"] = (sizes[i + 1], sizes[i])
            shapes[f"layers.{i}.bias"] = (sizes[i + 1],)
        return shapes

    def forward(self, x: Sequence[Input]) -> Value | list[Value]:
        one = Value(1.0)  # every layer's bias input: one constant node per forward pass
        signal = x
        for layer in self.layers:
            signal = _as_list(layer(signal, one=one))
        return signal[0] if len(signal) == 1 else signal

    def __repr__(self) -> str:
        lines = [f"MLP(nin={self.nin}, nouts={self.nouts}, activation={self.activation!r})"]
        lines += [f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers)]
        lines.append(f"  {len(self.parameters())} parameters")
        return "\n".join(lines)


def _as_list(signal: Any) -> Any:
    """A single Value (a one-output layer's result) as a list of one, for the next module."""
    return [signal] if isinstance(signal, Value) else signal


def _inputs_and_one(x: Sequence[Input], nin: int, one: Value | None = None) -> list[Value]:
    """The inputs as Values, made once per forward pass, then the constant 1.0 for the biases."""
    if isinstance(x, (Value, str, bytes, numbers.Number)) or not hasattr(x, "__len__"):
        raise TypeError(f"expected a list of {nin} inputs, got {type(x).__name__}")
    if len(x) != nin:
        raise ValueError(f"expected {nin} inputs, got {len(x)}{_batch_hint(x)}")
    inputs = [xi if isinstance(xi, Value) else Value(xi) for xi in x]
    inputs.append(Value(1.0) if one is None else one)
    return inputs


def _check_size(owner: str, name: str, size: Any) -> None:
    if not is_integer(size) or size < 1:
        raise ValueError(f"{owner} expected {name} to be an int >= 1, got {size!r}")


def _check_activation(activation: Any) -> None:
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}: expected one of {', '.join(ACTIVATIONS)}"
        )


def _check_mlp(nin: Any, nouts: Any, activation: Any) -> None:
    _check_size("MLP", "nin", nin)
    if isinstance(nouts, (str, bytes)) or not isinstance(nouts, Sequence) or not nouts:
        raise ValueError(f"MLP expected a non-empty list of layer sizes as nouts, got {nouts!r}")
    for size in nouts:
        _check_size("MLP", "every layer size in nouts", size)
    _check_activation(activation)


@register
class Sequential(Module):
    """Modules applied one after the other: `Sequential(Layer(2, 16), Layer(16, 1, "linear"))`.

    Each module's output is the next one's input (a single Value is passed on as a list of
    one). `forward_batch` passes the whole batch through each module in turn, so a BatchNorm1d
    inside sees its batch. As in PyTorch, `state_dict` names the modules by position
    (`0.weight`, `1.running_mean`); labels count them from 1 (`layer1.neuron3.w0`).
    """

    container = True
    state_names = {"layers": ""}

    def __init__(self, *modules: Module) -> None:
        if not modules:
            raise ValueError("Sequential expected at least one module, got none")
        for i, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential expected modules, got {type(module).__name__} at {i}")
        self.layers = list(modules)
        self.set_labels()

    def config(self) -> dict[str, Any]:
        return {}

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def forward(self, x: Sequence[Input]) -> Any:
        out = self.layers[0](x)
        for module in self.layers[1:]:
            out = module(_as_list(out))
        return out

    def forward_batch(self, X: Sequence[Sequence[Input]]) -> list[Any]:
        outs = self.layers[0].forward_batch(X)
        for module in self.layers[1:]:
            outs = module.forward_batch([_as_list(out) for out in outs])
        return outs

    def __repr__(self) -> str:
        lines = ["Sequential("]
        lines += [f"  ({i}): {module!r}" for i, module in enumerate(self.layers)]
        lines.append(")")
        return "\n".join(lines)


@register
class Activation(Module):
    """An activation on its own, for `Sequential`: `Activation("relu")` applies relu to every
    number of its input, keeping its shape (a list, or a list of channels after `Conv1d`).
    `name` is one of `ACTIVATIONS`; as `torch.nn.ReLU`, `Tanh`, `Sigmoid`, `LeakyReLU`.
    """

    _prefix = ""

    def __init__(self, name: str = "relu") -> None:
        _check_activation(name)
        self.name = name
        self._activate = ACTIVATIONS[name]

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def set_labels(self, prefix: str = "") -> None:
        """Outputs are labelled `out3` (a list) or `map0.3` (channel 0 of channels), prefixed
        by where the activation lives inside a model, so a drawing shows it as a step."""
        self._prefix = prefix

    def forward(self, x: Any) -> Any:
        if isinstance(x, Value):
            return self._apply(x, "out")
        if isinstance(x, (str, bytes, numbers.Number)) or not hasattr(x, "__len__"):
            raise TypeError(f"Activation expected a list of inputs, got {type(x).__name__}")
        return [
            [self._apply(v, f"map{i}.{t}") for t, v in enumerate(xi)]
            if isinstance(xi, (list, tuple))
            else self._apply(xi, f"out{i}")
            for i, xi in enumerate(x)
        ]

    def _apply(self, x: Input, name: str) -> Value:
        out = self._activate(x if isinstance(x, Value) else Value(x))
        if out.inputs and not out.label:  # "linear" hands its input back, which keeps its name
            out.label = self._prefix + name
        return out

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


@register
class Dropout(Module):
    """Inverted dropout: in train mode each input is zeroed with probability `p` and the others
    are scaled by 1 / (1 - p), so an output's expected value is its input's; in eval mode the
    inputs pass unchanged. `seed` (an int, a `random.Random` or None) draws the masks.

    Zeroing is a multiplication by 0.0 (not a missing node), so a dropped input's gradient is
    0, as in PyTorch: d(x * m)/dx = m.

    A batch's masks are drawn at once (`forward_batch`). Traced for the batched back-end
    (`fit(jit=True)`), the masks are inputs of the program, drawn for the whole batch at each
    step in the same way, so both paths drop the same inputs.
    """

    def __init__(self, p: float = 0.5, seed: Seed = None) -> None:
        if not is_real(p) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout expected a probability p in [0, 1], got {p!r}")
        self.p = float(p)
        self._rng = as_rng(seed)

    def config(self) -> dict[str, Any]:
        return {"p": self.p}

    def forward(self, x: Sequence[Input]) -> Value | list[Value]:
        inputs = _values_of(x, "Dropout")
        if self.training and self.p > 0.0:
            axis = batch.current()
            if axis is None:
                masks = self._masks(1, len(inputs))[0].tolist()
            else:  # a traced sample: the masks are fed in at each run, one row per sample
                masks = axis.feed(len(inputs), lambda n: self._masks(n, len(inputs)))
            inputs = [xi * m for xi, m in zip(inputs, masks, strict=True)]
        return inputs[0] if len(inputs) == 1 else inputs

    def forward_batch(self, X: Sequence[Sequence[Input]]) -> list[Any]:
        """Every sample of the batch, with the batch's masks drawn at once (as the batched
        back-end draws them, so both drop the same inputs)."""
        if not (self.training and self.p > 0.0):
            return super().forward_batch(X)  # the identity: no masks to draw
        samples = [_values_of(x, "Dropout") for x in X]
        widths = {len(sample) for sample in samples}
        if len(widths) != 1:
            return super().forward_batch(X)
        masks = self._masks(len(samples), widths.pop()).tolist()
        out = [
            [xi * m for xi, m in zip(sample, row, strict=True)]
            for sample, row in zip(samples, masks, strict=True)
        ]
        return [o[0] if len(o) == 1 else o for o in out]

    def _masks(self, n: int, width: int) -> np.ndarray:
        """n rows of `width` multipliers, 1 / (1 - p) kept and 0 dropped, drawn by a NumPy
        generator seeded from one draw of the module's own generator."""
        # p == 1 drops everything: no 1 / (1 - p) to compute, every mask is 0.
        scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        uniform = np.random.default_rng(self._rng.getrandbits(64)).random((n, width))
        return np.where(uniform >= self.p, scale, 0.0)


@register
class BatchNorm1d(Module):
    """Batch normalisation over a batch of samples of `num_features` numbers, as PyTorch's.

    In train mode (`forward_batch`), for each feature j over the batch of B samples:

        mean_j = (1/B) sum_i x_ij         var_j = (1/B) sum_i (x_ij - mean_j)^2   (biased)
        y_ij   = weight_j * (x_ij - mean_j) / sqrt(var_j + eps) + bias_j

    and the gradient flows through mean_j and var_j too: every sample's output depends on the
    whole batch. The running estimates are updated with the unbiased variance:

        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var  = (1 - momentum) * running_var  + momentum * var * B / (B - 1)

    (`momentum=None`: the plain average of every batch so far, weight 1 / num_batches_tracked).
    In eval mode each sample is normalised alone with those estimates. `weight` (gamma) starts
    at 1 and `bias` (beta) at 0; both are learnt.

    Traced for the batched back-end (`fit(jit=True)`), one sample stands for the batch: the
    mean and variance are `batch_mean`s (ops over the batch axis, see
    `autograd_core.compiler.batch`), reported back after each step to update the running estimates;
    in eval mode those estimates are fed into the program at each run, so one trace serves every
    epoch.
    """

    buffers = ("running_mean", "running_var", "num_batches_tracked")

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1) -> None:
        _check_batchnorm(num_features, eps, momentum)
        self.num_features = num_features
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.weight = [Value(1.0) for _ in range(num_features)]
        self.bias = [Value(0.0) for _ in range(num_features)]
        self.running_mean = [0.0] * num_features
        self.running_var = [1.0] * num_features
        self.num_batches_tracked = 0
        self.set_labels()

    def config(self) -> dict[str, Any]:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum}

    @classmethod
    def state_shapes(
        cls, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1
    ) -> dict[str, Shape]:
        _check_batchnorm(num_features, eps, momentum)
        vector = (num_features,)
        return {
            "weight": vector,
            "bias": vector,
            "running_mean": vector,
            "running_var": vector,
            "num_batches_tracked": (),
        }

    def set_labels(self, prefix: str = "") -> None:
        super().set_labels(prefix)
        self._out_labels = [f"{prefix}out{j}" for j in range(self.num_features)]

    def check_buffer(self, name: str, value: Any, where: str) -> None:
        """A variance is >= 0: eval mode divides by sqrt(running_var + eps)."""
        if name == "running_var":
            for j, variance in enumerate(value):
                if variance < 0.0:
                    raise ValueError(f"{where}[{j}]: a variance must be >= 0, got {variance!r}")

    def forward(self, x: Sequence[Input]) -> Value | list[Value]:
        """One sample, eval mode: (x_j - running_mean_j) / sqrt(running_var_j + eps) * w_j + b_j.

        In train mode, only as a traced stand-in for every sample of a batch (see the class).
        """
        axis = batch.current()
        if self.training and axis is None:
            raise ValueError(
                "BatchNorm1d in train mode normalises over a batch: call forward_batch(X) "
                "with more than one sample, or eval() to use the running estimates"
            )
        inputs = _values_of(x, "BatchNorm1d", self.num_features)
        if self.training:
            return self._normalise_traced(inputs, axis)
        width = self.num_features
        if axis is None:
            means = self.running_mean
            inverse_stds = [1.0 / math.sqrt(v + self.eps) for v in self.running_var]
        else:  # the estimates as they are at each run, not as they were at the trace
            fed = axis.feed(2 * width, lambda n: self._estimates())
            means, inverse_stds = fed[:width], fed[width:]
        out = []
        for j, xj in enumerate(inputs):
            y = (xj - means[j]) * (self.weight[j] * inverse_stds[j]) + self.bias[j]
            y.label = self._out_labels[j]
            out.append(y)
        return out[0] if len(out) == 1 else out

    def _estimates(self) -> np.ndarray:
        """[running_mean, 1 / sqrt(running_var + eps)], computed as the eager forward does."""
        inverse_stds = 1.0 / np.sqrt(np.array(self.running_var) + self.eps)
        return np.concatenate([self.running_mean, inverse_stds])

    def _normalise_traced(self, inputs: list[Value], axis: batch.BatchTrace) -> list[Value] | Value:
        """Train mode for a sample traced as a stand-in for each sample of the batch."""
        out, means, variances = [], [], []
        for j, xj in enumerate(inputs):
            mean = batch.batch_mean(xj)
            centred = xj - mean
            variance = batch.batch_mean(centred * centred)
            y = centred * (self.weight[j] * (variance + self.eps) ** -0.5) + self.bias[j]
            y.label = self._out_labels[j]
            out.append(y)
            means.append(mean)
            variances.append(variance)
        axis.report([*means, *variances], self._receive_statistics)
        return out[0] if len(out) == 1 else out

    def _receive_statistics(self, numbers: np.ndarray, size: int) -> None:
        """A traced batch's means and variances, after the step: update the running estimates."""
        _check_batch_size(size)
        width = self.num_features
        means, variances = numbers[:width].tolist(), numbers[width:].tolist()
        self._update_running_estimates(means, variances, size)

    def forward_batch(self, X: Sequence[Sequence[Input]]) -> list[Any]:
        if not self.training:
            return super().forward_batch(X)
        samples = [_values_of(x, "BatchNorm1d", self.num_features) for x in X]
        size = len(samples)
        _check_batch_size(size)
        out: list[list[Value]] = [[] for _ in samples]
        means, variances = [], []
        for j in range(self.num_features):
            column = [sample[j] for sample in samples]
            mean = vsum(column) * (1.0 / size)
            centred = [xj - mean for xj in column]
            variance = dot(centred, centred) * (1.0 / size)
            scale = self.weight[j] * (variance + self.eps) ** -0.5
            for i, c in enumerate(centred):
                y = c * scale + self.bias[j]
                y.label = self._out_labels[j]
                out[i].append(y)
            means.append(mean.data)
            variances.append(variance.data)
        self._update_running_estimates(means, variances, size)
        return [o[0] if len(o) == 1 else o for o in out]

    def _update_running_estimates(
        self, means: list[float], variances: list[float], size: int
    ) -> None:
        self.num_batches_tracked += 1
        m = 1.0 / self.num_batches_tracked if self.momentum is None else self.momentum
        unbiased = size / (size - 1)
        # New lists, not writes into the old ones: a copy made by functional_call shares them.
        self.running_mean = [
            (1 - m) * r + m * b for r, b in zip(self.running_mean, means, strict=True)
        ]
        self.running_var = [
            (1 - m) * r + m * v * unbiased for r, v in zip(self.running_var, variances, strict=True)
        ]

    def __repr__(self) -> str:
        return f"BatchNorm1d({self.num_features}, eps={self.eps}, momentum={self.momentum})"


def _values_of(x: Any, owner: str, n: int | None = None) -> list[Value]:
    """A sample as a list of Values (a lone Value counts as a list of one), its length checked."""
    if isinstance(x, Value):
        x = [x]
    if isinstance(x, (str, bytes, numbers.Number)) or not hasattr(x, "__len__"):
        raise TypeError(f"{owner} expected a list of inputs, got {type(x).__name__}")
    if n is not None and len(x) != n:
        raise ValueError(f"{owner} expected {n} inputs, got {len(x)}{_batch_hint(x)}")
    return [xi if isinstance(xi, Value) else Value(xi) for xi in x]


def _batch_hint(x: Any) -> str:
    """What to say when a model is called on a whole batch (a list of samples) at once."""
    if len(x) == 0 or not isinstance(x[0], (list, tuple, np.ndarray)):
        return ""
    return (
        f": a batch of {len(x)} samples? A model takes one sample; for a batch use "
        "nn.predict(model, X) (the predictions) or model.forward_batch(X) (the outputs)"
    )


def _check_batch_size(size: int) -> None:
    if size < 2:
        raise ValueError(
            f"BatchNorm1d in train mode needs more than one sample per batch, got {size}"
        )


def _check_batchnorm(num_features: Any, eps: Any, momentum: Any) -> None:
    _check_size("BatchNorm1d", "num_features", num_features)
    if not is_real(eps) or not 0.0 < eps < math.inf:
        raise ValueError(f"BatchNorm1d expected eps > 0, got {eps!r}")
    if momentum is not None and (not is_real(momentum) or not 0 <= momentum <= 1):
        raise ValueError(f"BatchNorm1d expected momentum in [0, 1] or None, got {momentum!r}")
