"""Thread-local switches: whether ops record a graph, and whether non-finite numbers raise."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Mode(threading.local):
    # Class attributes are each thread's starting values.
    grad_enabled: bool = True
    anomaly: bool = False
    # How many transforms (grad, hessian, ...) are running f right now: above 0, a transform
    # is nested in another and must return differentiable Values, not floats.
    transform_depth: int = 0


mode = _Mode()


class _Usual:
    """`usual.everywhere` is True while no thread is inside `no_grad` or `detect_anomaly`.

    Then every thread records the graph and checks no number, and making a node need not look
    at the thread-local `mode` (a lookup that costs a sixth of a node). Inside a block, each
    op asks `mode` what its own thread is doing.
    """

    __slots__ = ("everywhere", "_open", "_lock")

    def __init__(self) -> None:
        self.everywhere = True
        self._open = 0
        self._lock = threading.Lock()

    @contextmanager
    def changed(self) -> Iterator[None]:
        """A block in which this thread's mode may differ from the usual one."""
        with self._lock:
            self._open += 1
            self.everywhere = False
        try:
            yield
        finally:
            with self._lock:
                self._open -= 1
                self.everywhere = self._open == 0


usual = _Usual()


@contextmanager
def no_grad() -> Iterator[None]:
    """Inside this block ops record no graph: every result is a leaf (as `torch.no_grad`)."""
    previous = mode.grad_enabled
    with usual.changed():
        mode.grad_enabled = False
        try:
            yield
        finally:
            mode.grad_enabled = previous


@contextmanager
def enable_grad() -> Iterator[None]:
    """Record the graph again, even inside `no_grad` (the jit traces in this mode)."""
    previous = mode.grad_enabled
    mode.grad_enabled = True
    try:
        yield
    finally:
        mode.grad_enabled = previous


@contextmanager
def detect_anomaly() -> Iterator[None]:
    """Inside this block the first NaN or inf made in forward or backward raises.

    The `FloatingPointError` names the op, its input values and the node's label. Checking
    every node costs time, so it is off by default, as in PyTorch.
    """
    previous = mode.anomaly
    with usual.changed():
        mode.anomaly = True
        try:
            yield
        finally:
            mode.anomaly = previous
