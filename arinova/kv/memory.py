"""``MemoryKV``: the single-process stand-in for Redis, with the same semantics.

Bounded: at most ``max_keys`` keys (when full, expired keys go first, then the oldest
written) and at most ``max_zset_members`` members per sorted set (the lowest scores go).
Expiry is lazy (checked on access) plus a sweep whenever the store is full; it reads the
monotonic clock it is given (``arinova.clock``), so tests can move time on.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Final

from arinova.clock import Clock, SystemClock
from arinova.kv.base import KVError, MessageHandler, SubscriptionHandler

DEFAULT_MAX_KEYS: Final = 100_000
DEFAULT_MAX_ZSET_MEMBERS: Final = 10_000

_INT_RX: Final = re.compile(rb"-?(?:0|[1-9][0-9]*)")
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

log = logging.getLogger("arinova.kv")


def _b(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


class _Entry:
    __slots__ = ("expires_at", "value")

    def __init__(self, value: bytes | dict[bytes, float], expires_at: float | None) -> None:
        self.value = value
        self.expires_at = expires_at


class MemoryKV:
    def __init__(
        self,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        max_zset_members: int = DEFAULT_MAX_ZSET_MEMBERS,
        clock: Clock | None = None,
    ) -> None:
        self.max_keys = max_keys
        self.max_zset_members = max_zset_members
        self._clock = clock or SystemClock()
        self._data: dict[str, _Entry] = {}
        self._handlers: dict[str, list[MessageHandler]] = {}
        self._subscription_handlers: list[SubscriptionHandler] = []

    @property
    def shared(self) -> bool:
        return False

    def __len__(self) -> int:
        return len(self._data)

    # -- internals --------------------------------------------------------------------
    def _live(self, key: str) -> _Entry | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= self._clock.monotonic():
            del self._data[key]
            return None
        return entry

    def _bytes(self, key: str) -> bytes | None:
        entry = self._live(key)
        if entry is None:
            return None
        if not isinstance(entry.value, bytes):
            raise KVError(f"WRONGTYPE {key} holds a sorted set")
        return entry.value

    def _zset(self, key: str) -> dict[bytes, float] | None:
        entry = self._live(key)
        if entry is None:
            return None
        if isinstance(entry.value, bytes):
            raise KVError(f"WRONGTYPE {key} holds a string")
        return entry.value

    def _insert(self, key: str, entry: _Entry) -> None:
        """Store a new (or rewritten) key as the newest one, making room first."""
        self._data.pop(key, None)
        if len(self._data) >= self.max_keys:
            self._make_room()
        self._data[key] = entry

    def _make_room(self) -> None:
        now = self._clock.monotonic()
        for key in [
            k for k, e in self._data.items() if e.expires_at is not None and e.expires_at <= now
        ]:
            del self._data[key]
        excess = len(self._data) - self.max_keys + 1
        if excess > 0:
            # drop a batch of the oldest so the next inserts do not sweep again
            batch = max(excess, self.max_keys // 64)
            for key in list(self._data)[:batch]:
                del self._data[key]

    def _ranked(self, zset: dict[bytes, float]) -> list[bytes]:
        return sorted(zset, key=lambda m: (zset[m], m))

    @staticmethod
    def _span(length: int, start: int, stop: int) -> tuple[int, int]:
        if start < 0:
            start = max(length + start, 0)
        if stop < 0:
            stop = length + stop
        return start, min(stop, length - 1)

    # -- strings ----------------------------------------------------------------------
    async def ping(self) -> bool:
        return True

    async def get(self, key: str) -> bytes | None:
        return self._bytes(key)

    async def mget(self, keys: list[str]) -> list[bytes | None]:
        result: list[bytes | None] = []
        for key in keys:
            entry = self._live(key)
            result.append(entry.value if entry and isinstance(entry.value, bytes) else None)
        return result

    async def set(self, key: str, value: bytes | str, ex: int | None = None) -> None:
        if ex is not None and ex <= 0:
            raise KVError("ERR invalid expire time in 'set' command")
        expires_at = self._clock.monotonic() + ex if ex is not None else None
        self._insert(key, _Entry(_b(value), expires_at))

    async def delete(self, *keys: str) -> int:
        removed = 0
        for key in keys:
            if self._live(key) is not None:
                del self._data[key]
                removed += 1
        return removed

    def _incr(self, key: str, by: int = 1) -> tuple[int, _Entry | None]:
        entry = self._live(key)
        if entry is None:
            self._insert(key, _Entry(str(by).encode(), None))
            return by, self._data[key]
        if not isinstance(entry.value, bytes):
            raise KVError(f"WRONGTYPE {key} holds a sorted set")
        if _INT_RX.fullmatch(entry.value) is None:
            raise KVError("ERR value is not an integer or out of range")
        value = int(entry.value) + by
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise KVError("ERR increment or decrement would overflow")
        entry.value = str(value).encode()
        return value, entry

    async def incr(self, key: str) -> int:
        return self._incr(key)[0]

    async def incr_with_ttl(self, key: str, ttl_ms: int) -> tuple[int, int]:
        value, entry = self._incr(key)
        assert entry is not None
        now = self._clock.monotonic()
        if entry.expires_at is None:
            entry.expires_at = now + ttl_ms / 1000
            return value, ttl_ms
        return value, max(round((entry.expires_at - now) * 1000), 0)

    async def add_with_ttl(
        self, deltas: list[tuple[str, int]], ttl_ms: int
    ) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        now = self._clock.monotonic()
        for key, delta in deltas:
            value, entry = self._incr(key, delta)
            assert entry is not None
            if entry.expires_at is None:
                entry.expires_at = now + ttl_ms / 1000
                out.append((value, ttl_ms))
            else:
                out.append((value, max(round((entry.expires_at - now) * 1000), 0)))
        return out

    async def expire(self, key: str, seconds: int) -> bool:
        entry = self._live(key)
        if entry is None:
            return False
        if seconds <= 0:
            del self._data[key]
        else:
            entry.expires_at = self._clock.monotonic() + seconds
        return True

    async def pttl(self, key: str) -> int:
        entry = self._live(key)
        if entry is None:
            return -2
        if entry.expires_at is None:
            return -1
        return max(round((entry.expires_at - self._clock.monotonic()) * 1000), 0)

    async def ttl(self, key: str) -> int:
        ms = await self.pttl(key)
        return ms if ms < 0 else (ms + 500) // 1000

    # -- sorted sets ------------------------------------------------------------------
    async def zadd(self, key: str, score: float, member: bytes | str) -> int:
        zset = self._zset(key)
        if zset is None:
            zset = {}
            self._insert(key, _Entry(zset, None))
        raw = _b(member)
        added = 0 if raw in zset else 1
        zset[raw] = float(score)
        if len(zset) > self.max_zset_members:
            for dropped in self._ranked(zset)[: len(zset) - self.max_zset_members]:
                del zset[dropped]
        return added

    async def zcard(self, key: str) -> int:
        zset = self._zset(key)
        return len(zset) if zset else 0

    async def zrange(self, key: str, start: int, stop: int) -> list[bytes]:
        zset = self._zset(key)
        if not zset:
            return []
        ranked = self._ranked(zset)
        first, last = self._span(len(ranked), start, stop)
        return ranked[first : last + 1] if first <= last else []

    async def zremrangebyrank(self, key: str, start: int, stop: int) -> int:
        zset = self._zset(key)
        if not zset:
            return 0
        ranked = self._ranked(zset)
        first, last = self._span(len(ranked), start, stop)
        if first > last:
            return 0
        for member in ranked[first : last + 1]:
            del zset[member]
        if not zset:
            del self._data[key]
        return last - first + 1

    # -- pub/sub ----------------------------------------------------------------------
    async def publish(self, channel: str, message: bytes | str) -> int:
        handlers = self._handlers.get(channel)
        if not handlers:
            return 0
        loop = asyncio.get_running_loop()
        data = _b(message)
        for handler in tuple(handlers):
            loop.call_soon(_deliver, handler, channel, data)
        return 1

    async def subscribe(self, channel: str, handler: MessageHandler) -> None:
        self._handlers.setdefault(channel, []).append(handler)
        for listener in self._subscription_handlers:
            listener(channel, True)

    def on_subscription(self, handler: SubscriptionHandler) -> None:
        """In one process a subscription is live as soon as it is made."""
        self._subscription_handlers.append(handler)

    async def unsubscribe(self, channel: str, handler: MessageHandler) -> None:
        handlers = self._handlers.get(channel)
        if handlers and handler in handlers:
            handlers.remove(handler)
            if not handlers:
                del self._handlers[channel]

    async def close(self) -> None:
        self._data.clear()
        self._handlers.clear()
        self._subscription_handlers.clear()


def _deliver(handler: MessageHandler, channel: str, data: bytes) -> None:
    try:
        handler(channel, data)
    except Exception:
        log.exception("pub/sub handler failed on channel %s", channel)
