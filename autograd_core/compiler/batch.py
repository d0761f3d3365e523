"""The batch axis: what ties the samples of a batch together when one sample is traced.

The batched back-end traces a function of ONE sample and runs it over a whole batch. Most of
a network is like that, each sample on its own; batch normalisation and dropout are not:

* batch normalisation needs the mean and variance of each feature over the samples of the
  batch. `batch_mean(x)` is that mean, an op over the batch axis: for each sample its result
  is the mean of x over every sample the function is run on together. Eagerly, or under `jit`
  on one number list, that batch is the one sample, so batch_mean(x) = x. The batched back-end
  runs it as the column mean of a (batch, width) block, and its backward spreads the gradient
  back evenly: d batch_mean(x) / d x_i = 1 / n. (As `jax.lax.pmean` over a `vmap` axis.)
* a module may need numbers that are neither parameters nor the sample: dropout's random
  masks (fresh at every step), batch norm's running estimates (new after every step). It
  asks the trace for a *feed*: program inputs whose numbers the module supplies at each run.
* batch norm also needs results back: the batch's mean and variance, to update its running
  estimates. It hands them to the trace as a *report*: program outputs (the same for every
  sample) given to the module after each run.

A module takes these paths only inside `batch_trace()`, which the trainer opens around the
trace of a sample's loss; `current()` tells a module whether one is open.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..engine.ops import BATCH_MEAN
from ..engine.value import Value

Supply = Callable[[int], Any]  # n -> the feed's numbers, an array broadcastable to (n, width)
Receive = Callable[[Any, int], None]  # (the report's numbers, n) -> None


def batch_mean(x: Any) -> Any:
    """The mean of x over the samples of the batch (x itself for a batch of one sample)."""
    return BATCH_MEAN(x)


@dataclass(eq=False)
class Feed:
    """Program inputs whose numbers `supply(n)` gives at each run over a batch of n samples."""

    values: list[Value]
    supply: Supply


@dataclass(eq=False)
class Report:
    """Program outputs, the same for every sample, given to `receive` after each run."""

    values: list[Value]
    receive: Receive


@dataclass(eq=False)
class BatchTrace:
    """What the modules of a traced sample asked for: feeds in, reports out, in call order."""

    feeds: list[Feed] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)

    def feed(self, width: int, supply: Supply) -> list[Value]:
        """`width` new inputs of the program, supplied by `supply(n)` at each run."""
        values = [Value(0.5) for _ in range(width)]
        self.feeds.append(Feed(values, supply))
        return values

    def report(self, values: Sequence[Any], receive: Receive) -> None:
        """Ask for `values` (each the same for every sample) after each run."""
        as_values = [v if isinstance(v, Value) else Value(float(v)) for v in values]
        self.reports.append(Report(as_values, receive))

    @property
    def inputs(self) -> list[Value]:
        return [v for feed in self.feeds for v in feed.values]

    @property
    def outputs(self) -> list[Value]:
        return [v for report in self.reports for v in report.values]


class _Current(threading.local):
    trace: BatchTrace | None = None


_current = _Current()


@contextmanager
def batch_trace() -> Iterator[BatchTrace]:
    """Trace one sample as a stand-in for every sample of a batch (see the module's text)."""
    previous = _current.trace
    _current.trace = BatchTrace()
    try:
        yield _current.trace
    finally:
        _current.trace = previous


def current() -> BatchTrace | None:
    """The batch trace open in this thread, or None outside one."""
    return _current.trace
