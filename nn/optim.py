"""Optimizers (SGD, Adam, RMSprop) and learning-rate schedules, step for step as `torch.optim`.

The training loop is PyTorch's:

    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

Each optimizer writes its update rule once, `update(data, grad)`, on NumPy arrays holding every
parameter (its state, momentum buffers and running averages, is arrays of the same length).
`step()` gathers the Values' numbers into arrays, updates them and writes them back; the
batched `fit(jit=True)` keeps the parameters in one array and calls `update` directly. The
formulas follow the `torch.optim` documentation in the same order of operations, elementwise,
so the parameters agree with PyTorch's float64 ones to rounding.
Below, `p` is a parameter, `g` its gradient and `t` the number of the step (1, 2, ...).

A schedule wraps an optimizer and sets its `lr` once per epoch, like
`torch.optim.lr_scheduler`:

    schedule = CosineDecay(optimizer, total_epochs=100)
    for epoch in range(100):
        ...  # the epoch's optimizer steps
        schedule.step()
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from autograd_core import Value

from ._checks import is_integer, is_real


def _check(
    name: str,
    value: object,
    low: float,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = True,
) -> float:
    """`value` as a float inside the interval, else an error naming the hyper-parameter."""
    if not is_real(value):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
    value = float(value)
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if math.isnan(value) or below or above:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"invalid {name}: {value!r} (expected a number in {interval})")
    return value


class Optimizer:
    """The parameters to update and the learning rate; subclasses define `update`.

    The one optimizer type of `nn`: `fit` takes any `Optimizer`, and a new update rule is a
    subclass that defines `update(data, grad)` on arrays; `step()` and `zero_grad()` are
    PyTorch's, on the Values. `params` is what `model.parameters()` returns (any
    iterable of Values), as in `torch.optim`; the model itself is refused with a TypeError
    saying so. `lr` can be set at any time (the schedules below do, once per epoch); a
    negative, infinite or NaN learning rate is refused. `step()` reads each gradient with
    `float()`, so a Value gradient (after `backward(create_graph=True)`) works too.
    """

    def __init__(self, params: Iterable[Value], lr: float) -> None:
        self.params: list[Value] = _parameter_list(type(self).__name__, params)
        if not self.params:
            raise ValueError("the optimizer got an empty parameter list")
        for p in self.params:
            if not isinstance(p, Value):
                raise TypeError(f"the optimizer takes Values, got {type(p).__name__}: {p!r}")
        if len({id(p) for p in self.params}) != len(self.params):
            # A parameter listed twice would be updated twice per step.
            raise ValueError("the optimizer got the same parameter more than once")
        self.lr = lr
        self.steps = 0

    @property
    def lr(self) -> float:
        """The learning rate of the next step."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _check("lr", value, 0.0)

    def zero_grad(self) -> None:
        """Set every parameter's gradient to 0, ready for the next `backward()`."""
        for p in self.params:
            p.grad = 0.0

    def step(self) -> None:
        """Update every parameter from its `.grad` (call after `loss.backward()`)."""
        data = np.array([p.data for p in self.params])
        grad = np.array([float(p.grad) for p in self.params])
        self.update(data, grad)
        for p, number in zip(self.params, data.tolist(), strict=True):
            p.data = number

    def update(self, data: np.ndarray, grad: np.ndarray) -> None:
        """One step of the rule on arrays of every parameter's number and gradient, in place."""
        raise NotImplementedError

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in self._options().items())
        return f"{type(self).__name__}({len(self.params)} parameters, {options})"

    def _options(self) -> dict[str, object]:
        return {"lr": self.lr}


def _parameter_list(optimizer: str, params: object) -> list[Value]:
    """`params` as a list, or a TypeError that says what to pass instead."""
    if callable(getattr(params, "parameters", None)):
        # The commonest slip: Adam(model) where torch.optim, and this, want the parameters.
        raise TypeError(
            f"{optimizer} takes the parameters to update, not the {type(params).__name__} "
            f"itself: pass model.parameters(), as in {optimizer}(model.parameters(), ...)"
        )
    if not isinstance(params, Iterable):
        raise TypeError(
            f"{optimizer} takes an iterable of Values (model.parameters()), got "
            f"{type(params).__name__}: {params!r}"
        )
    return list(params)


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum, Nesterov momentum and L2 decay.

        g <- g + weight_decay * p
        b <- momentum * b + g                      (b starts at 0, so b_1 = g_1 as in torch)
        g <- g + momentum * b   if nesterov,   else   g <- b
        p <- p - lr * g

    Without momentum the update is plain `p <- p - lr * g`.
    """

    def __init__(
        self,
        params: Iterable[Value],
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        self.momentum = _check("momentum", momentum, 0.0)
        self.weight_decay = _check("weight_decay", weight_decay, 0.0)
        if not isinstance(nesterov, bool):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs a momentum > 0")
        self.nesterov = nesterov
        self.buffers = np.zeros(len(self.params))

    def update(self, data: np.ndarray, grad: np.ndarray) -> None:
        g = grad
        if self.weight_decay != 0.0:
            g = g + self.weight_decay * data
        if self.momentum != 0.0:
            self.buffers = self.momentum * self.buffers + g
            g = g + self.momentum * self.buffers if self.nesterov else self.buffers
        data -= self.lr * g
        self.steps += 1

    def _options(self) -> dict[str, object]:
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
        }


class Adam(Optimizer):
    """Adam (Kingma & Ba): a step of about `lr` per parameter, scaled by gradient history.

        g <- g + weight_decay * p
        m <- beta1 * m + (1 - beta1) * g           running mean of g        (m starts at 0)
        v <- beta2 * v + (1 - beta2) * g^2         running mean of g^2      (v starts at 0)
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    The two `1 - beta^t` factors undo the bias of starting m and v at 0. `eps` is added to
    the bias-corrected sqrt(v), after the square root, exactly where torch adds it.
    """

    def __init__(
        self,
        params: Iterable[Value],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"invalid betas: {betas!r} (expected a pair (beta1, beta2))")
        self.betas = (
            _check("betas[0]", betas[0], 0.0, 1.0),
            _check("betas[1]", betas[1], 0.0, 1.0),
        )
        self.eps = _check("eps", eps, 0.0)
        self.weight_decay = _check("weight_decay", weight_decay, 0.0)
        self.means = np.zeros(len(self.params))
        self.squares = np.zeros(len(self.params))

    def update(self, data: np.ndarray, grad: np.ndarray) -> None:
        beta1, beta2 = self.betas
        self.steps += 1
        step_size = self.lr / (1.0 - beta1**self.steps)
        correction2_sqrt = (1.0 - beta2**self.steps) ** 0.5
        g = grad
        if self.weight_decay != 0.0:
            g = g + self.weight_decay * data
        self.means = beta1 * self.means + (1.0 - beta1) * g
        self.squares = beta2 * self.squares + (1.0 - beta2) * g * g
        denominator = np.sqrt(self.squares) / correction2_sqrt + self.eps
        data -= step_size * (self.means / denominator)

    def _options(self) -> dict[str, object]:
        return {
            "lr": self.lr,
            "betas": self.betas,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
        }


class RMSprop(Optimizer):
    """RMSprop (Hinton): divide each step by a running root mean square of the gradient.

    s <- alpha * s + (1 - alpha) * g^2         torch's square_avg           (s starts at 0)
    b <- momentum * b + g / (sqrt(s) + eps)    p <- p - lr * b    if momentum > 0 (b from 0)
    p <- p - lr * g / (sqrt(s) + eps)                             otherwise
    """

    def __init__(
        self,
        params: Iterable[Value],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        self.alpha = _check("alpha", alpha, 0.0, 1.0, high_open=False)
        self.eps = _check("eps", eps, 0.0)
        self.momentum = _check("momentum", momentum, 0.0)
        self.squares = np.zeros(len(self.params))
        self.buffers = np.zeros(len(self.params))

    def update(self, data: np.ndarray, grad: np.ndarray) -> None:
        self.squares = self.alpha * self.squares + (1.0 - self.alpha) * grad * grad
        rms = np.sqrt(self.squares) + self.eps
        if self.momentum > 0.0:
            self.buffers = self.momentum * self.buffers + grad / rms
            data -= self.lr * self.buffers
        else:
            data -= self.lr * (grad / rms)
        self.steps += 1

    def _options(self) -> dict[str, object]:
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "momentum": self.momentum}


class Schedule:
    """Sets `optimizer.lr = lr_at(epoch)` from the optimizer's starting `lr` (`base_lr`).

    As in `torch.optim.lr_scheduler`, making the schedule sets the rate of epoch 0, and each
    `step()` (once per epoch, after the epoch's optimizer steps) moves to the next epoch.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"a schedule wraps an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.epoch = 0
        optimizer.lr = self.lr_at(0)

    def lr_at(self, epoch: int) -> float:
        """The learning rate of `epoch` (0-based)."""
        raise NotImplementedError

    def step(self) -> None:
        """Move to the next epoch and set the optimizer's learning rate for it."""
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)

    @property
    def lr(self) -> float:
        """The learning rate of the current epoch."""
        return self.optimizer.lr


def _check_epochs(name: str, value: object) -> int:
    if not is_integer(value) or value < 1:
        raise ValueError(f"invalid {name}: {value!r} (expected a whole number >= 1)")
    return int(value)


class LinearDecay(Schedule):
    """lr_at(e) = base_lr * (start + (end - start) * min(e, total_epochs) / total_epochs).

    The factor goes in a straight line from `start_factor` to `end_factor` over
    `total_epochs` epochs, then stays there. torch: `LinearLR(optimizer, start_factor,
    end_factor, total_iters=total_epochs)`. With start_factor < end_factor it is a warm-up.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        total_epochs: int,
        start_factor: float = 1.0,
        end_factor: float = 0.0,
    ) -> None:
        self.total_epochs = _check_epochs("total_epochs", total_epochs)
        # torch's ranges: a factor of 0 at the start would leave the first epoch without steps.
        self.start_factor = _check(
            "start_factor", start_factor, 0.0, 1.0, low_open=True, high_open=False
        )
        self.end_factor = _check("end_factor", end_factor, 0.0, 1.0, high_open=False)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        start, end = self.start_factor, self.end_factor
        return self.base_lr * (
            start + (end - start) * min(self.total_epochs, epoch) / self.total_epochs
        )


class StepDecay(Schedule):
    """lr_at(e) = base_lr * gamma ** (e // step_size): times `gamma` every `step_size` epochs.

    torch: `StepLR(optimizer, step_size, gamma)`.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _check_epochs("step_size", step_size)
        self.gamma = _check("gamma", gamma, 0.0, 1.0, high_open=False)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineDecay(Schedule):
    """lr_at(e) = min_lr + (base_lr - min_lr) * (1 + cos(pi * e / total_epochs)) / 2.

    Half a cosine from `base_lr` at epoch 0 down to `min_lr` at `total_epochs`. As in torch's
    `CosineAnnealingLR(optimizer, T_max=total_epochs, eta_min=min_lr)`, the cosine carries on
    after that and the rate climbs back up, so make `total_epochs` the length of training.
    """

    def __init__(self, optimizer: Optimizer, total_epochs: int, min_lr: float = 0.0) -> None:
        self.total_epochs = _check_epochs("total_epochs", total_epochs)
        self.min_lr = _check("min_lr", min_lr, 0.0)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        cosine = math.cos(math.pi * epoch / self.total_epochs)
        return self.min_lr + (self.base_lr - self.min_lr) * (1.0 + cosine) / 2.0
