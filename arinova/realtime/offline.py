"""The offline event queue (websocket.md §7): events for a user with no open socket wait
in ``pending_ws_events:<userId>`` (a sorted set scored by enqueue time) and are replayed
to the next socket that user opens. ``stream_chunk`` events are never stored (quirk Q15):
``sync`` recovers a reply that streamed while the user was away.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from arinova.kv import keys

if TYPE_CHECKING:
    from arinova.kv import KV


class OfflineQueue:
    __slots__ = ("_cap", "_kv", "_log", "_ttl")

    def __init__(self, kv: KV, cap: int, ttl_s: int, log: logging.Logger) -> None:
        self._kv = kv
        self._cap = cap
        self._ttl = ttl_s
        self._log = log

    async def push(self, user_id: str, event: str) -> None:
        key = keys.pending_ws_events(user_id)
        try:
            await self._kv.zadd(key, time.time() * 1000, event)
            count = await self._kv.zcard(key)
            if count > self._cap:
                await self._kv.zremrangebyrank(key, 0, count - self._cap - 1)
            await self._kv.expire(key, self._ttl)
        except Exception:
            self._log.warning("offline queue: could not store an event", exc_info=True)

    async def take(self, user_id: str) -> list[bytes]:
        """Every pending event, oldest first; the queue is emptied."""
        key = keys.pending_ws_events(user_id)
        try:
            events = await self._kv.zrange(key, 0, -1)
            if events:
                await self._kv.delete(key)
            return events
        except Exception:
            self._log.warning("offline queue: could not read pending events", exc_info=True)
            return []
