"""``stream:<messageId>``: the text of a reply streamed so far (websocket.md §9).

The writer of a process on its own (``LocalCoordinator``): every reader of a reply runs
in this process and reads the reply's own text, so the key is kept for the contract's sake
only, cheaply. One writer per reply with at most one write in flight, and at most one write
per ``interval``: later chunks only mark the text dirty, and the next SET carries the
latest text. ``finish`` deletes the key after any write still in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from arinova.js import well_formed
from arinova.kv import keys

if TYPE_CHECKING:
    from arinova.kv import KV
    from arinova.metrics import Count
    from arinova.realtime.coordinator import TextSource

Spawn = Callable[[Coroutine[Any, Any, None]], None]


class StreamCache:
    __slots__ = (
        "_dirty",
        "_finished",
        "_interval",
        "_key",
        "_kv",
        "_log",
        "_running",
        "_source",
        "_spawn",
        "_ttl",
        "_wait",
        "_writes",
    )

    def __init__(
        self,
        kv: KV,
        message_id: str,
        source: TextSource,
        ttl_s: int,
        interval_s: float,
        spawn: Spawn,
        log: logging.Logger,
        writes: Count,
    ) -> None:
        self._interval = interval_s
        self._kv = kv
        self._key = keys.stream(message_id)
        self._ttl = ttl_s
        self._spawn = spawn
        self._log = log
        self._source = source
        self._writes = writes
        self._dirty = False
        self._finished = False
        self._running = False
        #: the pause between two writes
        self._wait: asyncio.TimerHandle | None = None

    def update(self, delta: str) -> None:
        self._dirty = True
        if self._wait is None:
            self._kick()

    def finish(self) -> None:
        self._finished = True
        self._dirty = False
        if self._wait is not None:
            self._wait.cancel()
            self._wait = None
        self._kick()

    def _kick(self) -> None:
        if not self._running:
            self._running = True
            self._spawn(self._flush())

    def _waited(self) -> None:
        self._wait = None
        if self._dirty:
            self._kick()

    async def _flush(self) -> None:
        try:
            while True:
                if self._finished:
                    await self._kv.delete(self._key)
                    return
                if not self._dirty:
                    return
                self._dirty = False
                await self._kv.set(self._key, well_formed(self._source.text), ex=self._ttl)
                self._writes.inc()
                if self._interval > 0 and not self._finished:
                    loop = asyncio.get_running_loop()
                    self._wait = loop.call_later(self._interval, self._waited)
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            self._log.warning("stream cache write failed for %s", self._key, exc_info=True)
        finally:
            self._running = False
