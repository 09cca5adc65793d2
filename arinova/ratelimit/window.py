"""The fixed window every counting limiter is built on: a count per key that starts at
the key's first hit and lasts ``window_ms``, kept in a key-value store (INCR and, on the
first hit, PEXPIRE, in one round trip).

In Redis the count is shared by every process of a deployment; a bounded ``MemoryKV``
holds a process's own counts (``FixedWindow.in_memory``) where a limiter falls back to
them.
"""

from __future__ import annotations

from dataclasses import dataclass

from arinova.kv import KV
from arinova.kv.memory import MemoryKV


@dataclass(frozen=True, slots=True)
class Hit:
    #: hits of the key in its window so far, this one included
    count: int
    #: milliseconds until the window ends
    reset_ms: int


class FixedWindow:
    __slots__ = ("window_ms",)

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms

    async def hit(self, kv: KV, key: str) -> Hit:
        """Count one hit of ``key``; store errors propagate (each limiter decides how
        to degrade)."""
        count, ttl_ms = await kv.incr_with_ttl(key, self.window_ms)
        return Hit(count, ttl_ms)

    @staticmethod
    def in_memory(max_keys: int) -> MemoryKV:
        """A process-local store for counts, holding at most ``max_keys`` keys (expired
        windows go first, then the oldest)."""
        return MemoryKV(max_keys=max_keys)
