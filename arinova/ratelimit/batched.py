"""A fixed window per key counted in process, shared across processes in batches: no
round trip per hit.

A hit is decided at once on the last known shared count plus the hits counted here since.
Every ``FLUSH_S`` the hits counted here go to the key-value store in one round trip
(``KV.add_with_ttl``: INCRBY, the window starting with a key's first hit), which answers
each key's shared count and remaining window; other processes' hits are thus seen at most
one flush late. Given the limit the counts are held to, a process flushes at once when a
key's hits not yet shared reach a tenth of what the limit leaves (close to the limit: every
hit, the shared count then one round trip old), so what all processes let through past
the limit stays a few hits, however fast they are hit.
When the store fails the counts stay local (each process then limits on its own).
Without a shared store (one process) nothing is flushed and the count is exact.

At most ``max_keys`` keys are held: ended windows go first, then the oldest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Final

from arinova.kv import KV

log = logging.getLogger("arinova.ratelimit")

#: how often the hits counted here are added to the shared counts
FLUSH_S: Final = 0.1
#: keys per script call of a flush
FLUSH_BATCH: Final = 500


@dataclass(slots=True)
class _Window:
    #: monotonic time the window ends at
    ends: float
    #: the shared count last read back (this process's flushed hits included)
    known: int = 0
    #: hits counted here, not flushed yet
    pending: int = 0
    #: hits of the flush in flight
    flushing: int = 0


class BatchedWindow:
    def __init__(self, kv: KV, window_s: float, *, max_keys: int, limit: int | None = None) -> None:
        self._kv = kv
        self.limit = limit
        self._shared = kv.shared
        self.window_s = window_s
        self._window_ms = round(window_s * 1000)
        self.max_keys = max_keys
        #: key -> its window, in the order the windows started
        self._windows: dict[str, _Window] = {}
        #: keys with pending hits
        self._dirty: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        #: a flush is due at once (a key close to the limit)
        self._wake = asyncio.Event()
        #: something was counted since the last flush (the flusher sleeps until then)
        self._counted = asyncio.Event()
        self._failing = False

    def __len__(self) -> int:
        return len(self._windows)

    def hit(self, key: str) -> tuple[int, float]:
        """Count one hit: ``(hits of the key in its window so far, seconds until the
        window ends)``."""
        now = time.monotonic()
        window = self._windows.get(key)
        if window is None or window.ends <= now:
            window = self._open(key, now)
        window.pending += 1
        if self._shared:
            dirty = self._dirty
            if not dirty:
                self._counted.set()
            dirty.add(key)
            if self.limit is not None:
                left = self.limit - window.known
                if 0 < left <= window.pending * 10 and self._task is not None:
                    self._wake.set()
        return window.known + window.flushing + window.pending, window.ends - now

    def _open(self, key: str, now: float) -> _Window:
        windows = self._windows
        windows.pop(key, None)
        self._dirty.discard(key)
        # the oldest windows come first: drop the ended ones, then the oldest if full
        while windows:
            first = next(iter(windows))
            if windows[first].ends > now and len(windows) < self.max_keys:
                break
            del windows[first]
            self._dirty.discard(first)
        window = windows[key] = _Window(now + self.window_s)
        return window

    async def start(self) -> None:
        if self._shared and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        """A flush ``FLUSH_S`` after the first hit it carries, or at once when woken: one
        at a time, the hits meanwhile go with the next. With nothing counted it sleeps
        (an idle process has no timer here)."""
        while True:
            if not self._dirty:
                self._counted.clear()
                await self._counted.wait()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_S):
                    await self._wake.wait()
            self._wake.clear()
            if self._dirty:
                await self.flush()

    async def flush(self) -> None:
        """Add the hits counted here to the shared counts and read those back."""
        batch = [(key, self._windows[key]) for key in self._dirty if key in self._windows]
        self._dirty.clear()
        for _, window in batch:
            window.flushing, window.pending = window.pending, 0
        for start in range(0, len(batch), FLUSH_BATCH):
            part = batch[start : start + FLUSH_BATCH]
            try:
                counts = await self._kv.add_with_ttl(
                    [(key, window.flushing) for key, window in part], self._window_ms
                )
            except Exception as exc:
                if not self._failing:
                    log.warning("shared rate limit counts unavailable, counting here: %s", exc)
                self._failing = True
                for _, window in part:
                    window.known += window.flushing
                    window.flushing = 0
                continue
            self._failing = False
            now = time.monotonic()
            for (key, window), (count, ttl_ms) in zip(part, counts, strict=True):
                window.flushing = 0
                if self._windows.get(key) is window:
                    window.known = count
                    window.ends = now + ttl_ms / 1000
