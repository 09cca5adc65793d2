"""The gauges read from where the process keeps its state, and the tallies flushed, once
every ``interval_s``: nothing is counted on the paths that change that state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from arinova.metrics.registry import Metrics
from arinova.metrics.tally import Gauge

#: how often the gauges are read and the tallies flushed
SAMPLE_S = 1.0

Source = Callable[[], float]

log = logging.getLogger("arinova.metrics")


class Sampler:
    def __init__(
        self,
        metrics: Metrics,
        gauges: Sequence[tuple[Gauge, Source]],
        interval_s: float = SAMPLE_S,
    ) -> None:
        self._metrics = metrics
        self._gauges = tuple(gauges)
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop; what was counted until now is flushed."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tick()

    def tick(self) -> None:
        try:
            for gauge, source in self._gauges:
                gauge.set(source())
            self._metrics.flush()
        except Exception:
            if not self._failing:
                log.warning("metrics: sampling failed", exc_info=True)
            self._failing = True
        else:
            self._failing = False

    async def _run(self) -> None:
        while True:
            self.tick()
            await asyncio.sleep(self._interval)
