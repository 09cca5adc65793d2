"""The key-value interface the server needs from Redis (key patterns: behaviours.md §13).

``RedisKV`` and ``MemoryKV`` implement it with the same semantics; the shared contract
test (tests/test_kv.py) runs against both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

#: a pub/sub callback: ``(channel, message)``; runs on the event loop, must not block
#: (hand slow work to a task) and should not raise (errors are logged and dropped)
MessageHandler = Callable[[str, bytes], None]
#: told ``(channel, True)`` once the store confirmed a subscription (what is published on
#: it from then on is heard, in publication order) and ``(channel, False)`` when that
#: ends (the connection was lost: messages may have been missed)
SubscriptionHandler = Callable[[str, bool], None]

#: error replies of a command Redis did not run: a cluster without a master for the slot, a
#: slot being moved, a dataset still loading after a restart
_REFUSED_REPLIES = ("CLUSTERDOWN", "TRYAGAIN", "LOADING", "MASTERDOWN")


def never_ran(exc: BaseException) -> bool:
    """The command certainly did not run: its connection was refused, or Redis refused it
    (``_REFUSED_REPLIES``). A timeout or a connection lost mid-command may have run it."""
    seen: BaseException | None = exc
    for _ in range(8):  # the client's wrappers of the cause
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError) or str(seen).startswith(_REFUSED_REPLIES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class KVError(Exception):
    """A command was applied to a value of the wrong kind (Redis' ``WRONGTYPE`` or
    ``ERR value is not an integer``)."""


class KV(Protocol):
    """Async subset of Redis commands. Values are ``bytes``; ``str`` arguments are UTF-8.

    Connection failures raise (``ConnectionError``/``TimeoutError`` or the client's own
    subclasses); callers that can degrade should catch ``Exception``.
    """

    @property
    def shared(self) -> bool:
        """True when several processes see the same data (Redis)."""
        ...

    async def ping(self) -> bool: ...

    async def get(self, key: str) -> bytes | None: ...

    async def mget(self, keys: list[str]) -> list[bytes | None]: ...

    async def set(self, key: str, value: bytes | str, ex: int | None = None) -> None:
        """SET (clears any TTL) or SETEX when ``ex`` (seconds, > 0) is given."""
        ...

    async def delete(self, *keys: str) -> int: ...

    async def incr(self, key: str) -> int:
        """INCR: a missing key counts from 0; the TTL is kept."""
        ...

    async def incr_with_ttl(self, key: str, ttl_ms: int) -> tuple[int, int]:
        """INCR, giving the key a TTL of ``ttl_ms`` when it has none (first increment
        of a window). Returns ``(value, remaining ttl in ms)`` in one round trip."""
        ...

    async def add_with_ttl(
        self, deltas: list[tuple[str, int]], ttl_ms: int
    ) -> list[tuple[int, int]]:
        """INCRBY each key by its delta, giving a key without a TTL one of ``ttl_ms``;
        ``(value, remaining ttl in ms)`` of each, in order, in one round trip where the
        store allows (one node)."""
        ...

    async def expire(self, key: str, seconds: int) -> bool:
        """EXPIRE: False when the key does not exist; ``seconds <= 0`` deletes it."""
        ...

    async def ttl(self, key: str) -> int:
        """TTL in seconds (rounded): -2 no key, -1 no expiry."""
        ...

    async def pttl(self, key: str) -> int:
        """TTL in milliseconds: -2 no key, -1 no expiry."""
        ...

    async def zadd(self, key: str, score: float, member: bytes | str) -> int:
        """ZADD one member; returns 1 when it is new, 0 when only its score changed."""
        ...

    async def zcard(self, key: str) -> int: ...

    async def zremrangebyrank(self, key: str, start: int, stop: int) -> int: ...

    async def zrange(self, key: str, start: int, stop: int) -> list[bytes]:
        """Members by ascending score (ties by member bytes); negative indexes count
        from the end, ``stop`` inclusive."""
        ...

    async def publish(self, channel: str, message: bytes | str) -> int:
        """Send to every process subscribed to ``channel``; returns the number of
        receiving subscriber connections (one per process)."""
        ...

    async def subscribe(self, channel: str, handler: MessageHandler) -> None:
        """Call ``handler`` for each message published on ``channel`` (by any process,
        this one included). One connection per process carries every channel."""
        ...

    async def unsubscribe(self, channel: str, handler: MessageHandler) -> None: ...

    def on_subscription(self, handler: SubscriptionHandler) -> None:
        """Call ``handler`` when a subscription is confirmed or lost. A store that cannot
        tell (a Redis Cluster) never confirms."""
        ...

    async def close(self) -> None: ...
