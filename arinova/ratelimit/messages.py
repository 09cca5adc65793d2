"""``send_message`` rate limit (websocket.md §1.7): ``ws:rate:<userId>:<minute>`` counted
in the KV store, shared by every socket and process; a bounded in-memory window per user
(60 s from the user's first message) when the store fails."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from arinova.kv import keys
from arinova.ratelimit.window import FixedWindow

if TYPE_CHECKING:
    from arinova.clock import Clock
    from arinova.kv import KV

_MINUTE_MS: Final = 60_000
#: the minute's key outlives its minute (behaviours.md §13: 120 s)
_KEY_TTL_MS: Final = 120_000


class MessageRateLimit:
    __slots__ = ("_clock", "_fallback", "_kv", "_limit", "_log", "_per_minute", "_per_user")

    def __init__(
        self, kv: KV, limit: int, max_entries: int, log: logging.Logger, clock: Clock
    ) -> None:
        self._kv = kv
        self._clock = clock
        self._limit = limit
        self._log = log
        self._per_minute = FixedWindow(_KEY_TTL_MS)
        self._per_user = FixedWindow(_MINUTE_MS)
        self._fallback = FixedWindow.in_memory(max_entries)

    async def allow(self, user_id: str) -> bool:
        minute = int(self._clock.time() * 1000) // _MINUTE_MS
        try:
            hit = await self._per_minute.hit(self._kv, keys.ws_rate(user_id, minute))
        except Exception:
            self._log.warning("rate limit store failed; counting in memory", exc_info=True)
            hit = await self._per_user.hit(self._fallback, user_id)
        return hit.count <= self._limit
