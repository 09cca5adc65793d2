"""``stream:<messageId>``: the text of a reply streamed so far (websocket.md §9).

One writer per reply with at most one write in flight: while a SET runs, later chunks
only mark the text dirty, and the next SET carries the latest text. A fast stream thus
costs a handful of writes per round trip, not one full rewrite per chunk. ``finish``
deletes the key after any write still in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arinova.kv import KV

KEY_PREFIX = "stream:"
Spawn = Callable[[Coroutine[Any, Any, None]], None]


class StreamCache:
    __slots__ = (
        "_dirty",
        "_finished",
        "_key",
        "_kv",
        "_log",
        "_running",
        "_spawn",
        "_text",
        "_ttl",
    )

    def __init__(
        self, kv: KV, message_id: str, ttl_s: int, spawn: Spawn, log: logging.Logger
    ) -> None:
        self._kv = kv
        self._key = KEY_PREFIX + message_id
        self._ttl = ttl_s
        self._spawn = spawn
        self._log = log
        self._text = ""
        self._dirty = False
        self._finished = False
        self._running = False

    def update(self, text: str) -> None:
        self._text = text
        self._dirty = True
        self._kick()

    def finish(self) -> None:
        self._finished = True
        self._dirty = False
        self._kick()

    def _kick(self) -> None:
        if not self._running:
            self._running = True
            self._spawn(self._flush())

    async def _flush(self) -> None:
        try:
            while True:
                if self._dirty:
                    self._dirty = False
                    await self._kv.set(self._key, self._text, ex=self._ttl)
                elif self._finished:
                    await self._kv.delete(self._key)
                    return
                else:
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            self._log.warning("stream cache write failed for %s", self._key, exc_info=True)
        finally:
            self._running = False
