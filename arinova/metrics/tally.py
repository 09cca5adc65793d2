"""What a counting service sees of a metric: narrow interfaces, and ``Tally`` for hot paths."""

from __future__ import annotations

from typing import Protocol


class Count(Protocol):
    def inc(self, amount: int = 1) -> None: ...


class Level(Protocol):
    def inc(self, amount: int = 1) -> None: ...

    def dec(self, amount: int = 1) -> None: ...


class Observe(Protocol):
    def observe(self, amount: float) -> None: ...


class Gauge(Protocol):
    def set(self, value: float) -> None: ...


class Tally:
    """A counter for the hot paths (a relayed chunk, a request): counting is an integer
    add; ``flush`` hands what was counted since to its Prometheus counter (in the
    multiprocess mode a write to a shared file, some 20 times dearer), which the sampler
    does every tick and once more when the process stops."""

    __slots__ = ("_counter", "_flushed", "value")

    def __init__(self, counter: Count) -> None:
        self._counter = counter
        self._flushed = 0
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount

    def flush(self) -> None:
        value = self.value
        if value != self._flushed:
            self._counter.inc(value - self._flushed)
            self._flushed = value
