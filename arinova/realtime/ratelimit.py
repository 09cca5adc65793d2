"""``send_message`` rate limit (websocket.md §1.7): ``ws:rate:<userId>:<minute>`` counted
in the KV store, shared by every socket and process; a bounded in-memory window per user
when the store fails."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from arinova.kv import KV

_WINDOW_MS = 60_000
_KEY_TTL_MS = 120_000


class MessageRateLimit:
    __slots__ = ("_fallback", "_kv", "_limit", "_log", "_max_entries")

    def __init__(self, kv: KV, limit: int, max_entries: int, log: logging.Logger) -> None:
        self._kv = kv
        self._limit = limit
        self._max_entries = max_entries
        self._log = log
        #: user -> (window start ms, count)
        self._fallback: dict[str, tuple[int, int]] = {}

    async def allow(self, user_id: str) -> bool:
        now_ms = int(time.time() * 1000)
        key = f"ws:rate:{user_id}:{now_ms // _WINDOW_MS}"
        try:
            count, _ = await self._kv.incr_with_ttl(key, _KEY_TTL_MS)
        except Exception:
            self._log.warning("rate limit store failed; counting in memory", exc_info=True)
            return self._allow_in_memory(user_id, now_ms)
        return count <= self._limit

    def _allow_in_memory(self, user_id: str, now_ms: int) -> bool:
        start, count = self._fallback.get(user_id, (now_ms, 0))
        if now_ms - start >= _WINDOW_MS:
            start, count = now_ms, 0
        if count >= self._limit:
            return False
        if user_id not in self._fallback and len(self._fallback) >= self._max_entries:
            self._prune(now_ms)
        self._fallback[user_id] = (start, count + 1)
        return True

    def _prune(self, now_ms: int) -> None:
        expired = [u for u, (s, _) in self._fallback.items() if now_ms - s >= _WINDOW_MS]
        for user in expired:
            del self._fallback[user]
        while len(self._fallback) >= self._max_entries:
            del self._fallback[next(iter(self._fallback))]
