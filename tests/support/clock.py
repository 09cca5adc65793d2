"""A clock for the tests: it stands still until the test moves it (``arinova.clock.Clock``)."""

from __future__ import annotations

#: 2026-01-01T00:00:00Z: a wall-clock start well away from any minute boundary
DEFAULT_START = 1_767_225_600.0


class ManualClock:
    __slots__ = ("_elapsed", "_start")

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._start = start
        self._elapsed = 0.0

    def monotonic(self) -> float:
        return self._elapsed

    def time(self) -> float:
        return self._start + self._elapsed

    def advance(self, seconds: float) -> None:
        """Both clocks move on by ``seconds`` (never backwards, as the real ones)."""
        if seconds < 0:
            raise ValueError(f"a clock does not go back ({seconds} s)")
        self._elapsed += seconds
