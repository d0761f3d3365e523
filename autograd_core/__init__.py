"""autograd_core: a scalar reverse-mode automatic differentiation engine.

>>> from autograd_core import Value
>>> a, b = Value(2.0), Value(-3.0)
>>> c = a * b + b**2
>>> c.backward()
>>> a.grad, b.grad
(-3.0, -4.0)
"""

from .compiler import batch, batched, ir
from .compiler.batch import batch_mean
from .compiler.jit import Jitted, jit
from .engine import ops
from .engine.backward import gradients, topological_order
from .engine.modes import detect_anomaly, enable_grad, no_grad
from .engine.ops import OPS, Op
from .engine.value import Value, dot, take, vsum
from .pictures.draw import draw_dot
from .pictures.stepper import backward_steps
from .transforms.forward import jacfwd, jacrev, jvp
from .transforms.grader import BackwardCheckError, check_backward
from .transforms.reverse import GradcheckError, grad, gradcheck, hessian, value_and_grad

__all__ = [
    "batch",
    "batched",
    "ir",
    "ops",
    "BackwardCheckError",
    "OPS",
    "GradcheckError",
    "Jitted",
    "Op",
    "Value",
    "backward_steps",
    "batch_mean",
    "check_backward",
    "detect_anomaly",
    "dot",
    "draw_dot",
    "enable_grad",
    "grad",
    "gradcheck",
    "gradients",
    "hessian",
    "jacfwd",
    "jacrev",
    "jit",
    "jvp",
    "no_grad",
    "take",
    "topological_order",
    "value_and_grad",
    "vsum",
]
