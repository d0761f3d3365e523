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
labels of the graph's nodes (`layer1.neuron3.w0`), and `functional_call`.

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
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from autograd_core import Value, dot

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

    def _members(self) -> Iterator[tuple[str, str, Any]]:
        """(kind, attribute name, value) of each declared member, in attribute order.

        kind is "parameter", "child", "children" (a list of modules) or "buffer" (last).
        """
        for name, value in vars(self).items():
            if name.startswith("_") or name in self.buffers:
                continue
            if isinstance(value, Module):
                yield "child", name, value
            elif _is_module_list(value):
                yield "children", name, value
            elif _is_parameter_tree(value):
                yield "parameter", name, value
        for name in self.buffers:
            yield "buffer", name, getattr(self, name)

    def _state_entries(self, prefix: str = "") -> Iterator[tuple[str, str, Module, str, Any]]:
        """(state name, kind, owner, attribute, value) of every parameter and buffer below."""
        for kind, name, value in self._members():
            key = prefix + self.state_names.get(name, name)
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
                    yield from child._state_entries(f"{key}.{i}." if key else f"{i}.")

    # -- views derived from it -----------------------------------------------------------------

    def parameters(self) -> list[Value]:
        """Every trainable Value of the module, always in the same order (attribute order,
        depth first: a neuron's weights then its bias, neuron after neuron, as in micrograd)."""
        found: list[Value] = []
        for kind, _, value in self._members():
            if kind == "parameter":
                _flatten(value, found)
            elif kind == "child":
                found += value.parameters()
            elif kind == "children":
                for child in value:
                    found += child.parameters()
        return found

    def named_parameters(self) -> list[tuple[str, ParameterTree]]:
        """(name, parameter tensor) pairs with PyTorch's names: `layers.0.weight` is a list of
        nout rows of nin Values, `layers.0.bias` a list of nout Values."""
        return [
            (key, value) for key, kind, _, _, value in self._state_entries() if kind == "parameter"
        ]

    def children(self) -> list[Module]:
        """The direct submodules, in attribute order."""
        found: list[Module] = []
        for kind, _, value in self._members():
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
        return self.forward(x, **options)

    def forward_batch(self, X: Sequence[Sequence[Input]]) -> list[Any]:
        """The outputs for every sample of a batch: `[self(x) for x in X]` for most modules.

        A module whose train-mode output depends on the whole batch (BatchNorm1d) overrides
        it; training calls `forward_batch`, so such a module sees its batch.
        """
        return [self(x) for x in X]

    # -- labels: every node named by where it lives -------------------------------------------

    def _set_labels(self, prefix: str = "") -> None:
        """Label every parameter by its place: `layer1.neuron3.w0`, `layer1.neuron3.b`.

        A parent calls this on its children with its own prefix, so a module built inside
        another is relabelled once the outer one is complete. List submodules are numbered from
        1 under their attribute's singular (`layers` -> `layer1`); list parameters take their
        index (`w` -> `w0`, `w1`, ...; `weight0_1` in two dimensions).
        """
        for kind, name, value in self._members():
            if kind == "parameter":
                _label_tree(value, prefix + name)
            elif kind == "child":
                value._set_labels(f"{prefix}{name}.")
            elif kind == "children":
                singular = name[:-1] if name.endswith("s") else name
                for i, child in enumerate(value, start=1):
                    child._set_labels(f"{prefix}{singular}{i}.")

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
                buffers.append((owner, name, _checked_buffer(value, state[key], key)))
        for parameter, number in assignments:
            parameter.data = number
        for owner, name, value in buffers:
            setattr(owner, name, value)

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


def _is_module_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Module) for v in value)


def _is_parameter_tree(value: Any) -> bool:
    if isinstance(value, Value):
        return True
    return isinstance(value, list) and bool(value) and all(map(_is_parameter_tree, value))


def _flatten(tree: ParameterTree, found: list[Value]) -> None:
    if isinstance(tree, Value):
        found.append(tree)
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
    if isinstance(number, bool) or not isinstance(number, numbers.Real):
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
        if isinstance(given, bool) or not isinstance(given, numbers.Integral) or given < 0:
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
        self._set_labels()

    @property
    def nin(self) -> int:
        return len(self.w)

    def config(self) -> dict[str, Any]:
        return {"nin": self.nin, "activation": self.activation}

    def _set_labels(self, prefix: str = "") -> None:
        super()._set_labels(prefix)
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
        self._set_labels()

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
        self._set_labels()

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
        raise ValueError(f"expected {nin} inputs, got {len(x)}")
    inputs = [xi if isinstance(xi, Value) else Value(xi) for xi in x]
    inputs.append(Value(1.0) if one is None else one)
    return inputs


def _check_size(owner: str, name: str, size: Any) -> None:
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
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
