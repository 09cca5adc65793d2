"""``RedisKV``: the ``KV`` interface on redis-py's asyncio client (hiredis parser).

``connect`` never fails: connections are made on demand, so the server starts while
Redis is down and ``/health`` reports ``"redis": "error"`` until it is back. Timeouts
are short so a dead Redis answers quickly instead of stalling requests.
Pub/sub uses one connection per process for every channel; a background task reads it,
reconnecting (and resubscribing) with backoff when Redis goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from arinova.kv.base import KVError, MessageHandler

log = logging.getLogger("arinova.kv")

MAX_CONNECTIONS: Final = 64
CONNECT_TIMEOUT_S: Final = 1.0
COMMAND_TIMEOUT_S: Final = 2.0
#: how long a command waits for a free pooled connection
POOL_WAIT_S: Final = 2.0
PUBSUB_POLL_S: Final = 5.0
#: the bus's connections (the ordered publisher, the subscriber) wait this long for Redis
#: before giving up on a command: a stall shorter than this loses and reorders nothing
STALL_TOLERANCE_S: Final = 35.0
RECONNECT_MAX_DELAY_S: Final = 2.0

# INCR, then start the window when the key has no TTL yet; one round trip
_INCR_WITH_TTL: Final = """
local value = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {value, ttl}
"""


class Script:
    __slots__ = ("_script",)

    def __init__(self, script: Any) -> None:
        self._script = script

    async def __call__(self, keys: list[str], args: list[str | int | bytes]) -> Any:
        return await self._script(keys=keys, args=args)


class Publisher:
    """One connection of its own, one ``PUBLISH`` in flight, waiting out a stall of up to
    ``STALL_TOLERANCE_S``; a failed publish drops the connection so the next one
    reconnects. Once closed it stays closed (a late publish fails)."""

    __slots__ = ("_closed", "_conn", "_url")

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: Redis | None = None
        self._closed = False

    async def publish(self, channel: str, message: bytes) -> None:
        if self._closed:
            raise ConnectionError("the publisher is closed")
        if self._conn is None:
            self._conn = Redis.from_url(
                self._url,
                single_connection_client=True,
                socket_connect_timeout=CONNECT_TIMEOUT_S,
                socket_timeout=STALL_TOLERANCE_S,
                socket_keepalive=True,
                retry=Retry(NoBackoff(), 0),
            )
        try:
            await self._conn.publish(channel, message)
        except BaseException:
            await self._drop()
            raise

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.aclose()

    async def aclose(self) -> None:
        self._closed = True
        await self._drop()


def _kv_error(exc: ResponseError) -> KVError:
    return KVError(str(exc))


class RedisKV:
    def __init__(self, client: Redis, url: str = "") -> None:
        self._r = client
        self._url = url
        #: the subscriber's own client (long command timeout: it rides out a stall)
        self._sub = (
            Redis.from_url(
                url,
                socket_connect_timeout=CONNECT_TIMEOUT_S,
                socket_timeout=STALL_TOLERANCE_S,
                socket_keepalive=True,
                health_check_interval=int(STALL_TOLERANCE_S),
                retry=Retry(NoBackoff(), 0),
            )
            if url
            else client
        )
        self._incr_script = client.register_script(_INCR_WITH_TTL)
        self._handlers: dict[str, list[MessageHandler]] = {}
        self._pubsub: PubSub | None = None
        self._pump: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def connect(cls, url: str) -> RedisKV:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT_S,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=COMMAND_TIMEOUT_S,
            # a pooled connection that Redis closed (a restart) fails its next command:
            # that command is sent again once on a new connection; a timeout is not (a
            # stall would only last twice as long)
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            health_check_interval=30,
        )
        kv = cls(Redis.from_pool(pool), url)
        try:
            await kv._r.ping()
        except Exception as exc:
            log.warning("redis is not reachable yet (%s); continuing without it", exc)
        return kv

    @property
    def shared(self) -> bool:
        return True

    # -- for the realtime coordinator (Redis only) ------------------------------------
    def script(self, source: str) -> Script:
        """A Lua script, sent by hash (EVALSHA) and loaded on demand."""
        return Script(self._r.register_script(source))

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        return cast("dict[bytes, bytes]", await self._r.hgetall(key))

    async def hset(self, key: str, field: str, value: bytes | str) -> None:
        await self._r.hset(key, field, value)  # type: ignore[misc]

    def ordered_publisher(self) -> Publisher:
        """A publisher on a connection of its own: messages published one after the
        other arrive in that order, with no pool round per message."""
        return Publisher(self._url)

    # -- strings ----------------------------------------------------------------------
    async def ping(self) -> bool:
        return bool(await self._r.ping())

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._r.get(key)
        except ResponseError as exc:
            raise _kv_error(exc) from None
        return cast("bytes | None", value)

    async def mget(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        return cast("list[bytes | None]", await self._r.mget(keys))

    async def set(self, key: str, value: bytes | str, ex: int | None = None) -> None:
        if ex is not None and ex <= 0:
            raise KVError("ERR invalid expire time in 'set' command")
        await self._r.set(key, value, ex=ex)

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        return int(await self._r.delete(*keys))

    async def incr(self, key: str) -> int:
        try:
            return int(await self._r.incr(key))
        except ResponseError as exc:
            raise _kv_error(exc) from None

    async def incr_with_ttl(self, key: str, ttl_ms: int) -> tuple[int, int]:
        try:
            value, ttl = await self._incr_script(keys=[key], args=[ttl_ms])
        except ResponseError as exc:
            raise _kv_error(exc) from None
        return int(value), int(ttl)

    async def expire(self, key: str, seconds: int) -> bool:
        return bool(await self._r.expire(key, seconds))

    async def ttl(self, key: str) -> int:
        return int(await self._r.ttl(key))

    async def pttl(self, key: str) -> int:
        return int(await self._r.pttl(key))

    # -- sorted sets ------------------------------------------------------------------
    async def zadd(self, key: str, score: float, member: bytes | str) -> int:
        try:
            mapping = cast("dict[str, float]", {member: score})
            return cast(int, await self._r.zadd(key, mapping))
        except ResponseError as exc:
            raise _kv_error(exc) from None

    async def zcard(self, key: str) -> int:
        try:
            return int(await self._r.zcard(key))
        except ResponseError as exc:
            raise _kv_error(exc) from None

    async def zremrangebyrank(self, key: str, start: int, stop: int) -> int:
        try:
            return int(await self._r.zremrangebyrank(key, start, stop))
        except ResponseError as exc:
            raise _kv_error(exc) from None

    async def zrange(self, key: str, start: int, stop: int) -> list[bytes]:
        try:
            members = await self._r.zrange(key, start, stop)
        except ResponseError as exc:
            raise _kv_error(exc) from None
        return cast("list[bytes]", members)

    # -- pub/sub ----------------------------------------------------------------------
    async def publish(self, channel: str, message: bytes | str) -> int:
        return int(await self._r.publish(channel, message))

    async def subscribe(self, channel: str, handler: MessageHandler) -> None:
        handlers = self._handlers.get(channel)
        if handlers is not None:
            handlers.append(handler)
            return
        self._handlers[channel] = [handler]
        if self._pump is None:
            self._pump = asyncio.create_task(self._run_pump(), name="arinova-kv-pubsub")
        elif self._pubsub is not None:
            try:
                await self._pubsub.subscribe(channel)
            except Exception as exc:
                # the pump resubscribes every channel once it reconnects
                log.warning("redis subscribe to %s deferred: %s", channel, exc)

    async def unsubscribe(self, channel: str, handler: MessageHandler) -> None:
        handlers = self._handlers.get(channel)
        if not handlers or handler not in handlers:
            return
        handlers.remove(handler)
        if handlers:
            return
        del self._handlers[channel]
        if self._pubsub is not None:
            try:
                await self._pubsub.unsubscribe(channel)
            except Exception as exc:
                log.warning("redis unsubscribe from %s failed: %s", channel, exc)

    async def _run_pump(self) -> None:
        delay = 0.05
        while not self._closed:
            try:
                if self._pubsub is None:
                    pubsub = self._sub.pubsub(ignore_subscribe_messages=True)
                    self._pubsub = pubsub
                    if self._handlers:
                        await pubsub.subscribe(*self._handlers)
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=PUBSUB_POLL_S
                )
                delay = 0.05
                if message is not None and message.get("type") == "message":
                    self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if delay == 0.05:
                    log.warning("redis pub/sub connection lost (%s); reconnecting", exc)
                await self._drop_pubsub()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY_S)

    def _dispatch(self, message: dict[str, Any]) -> None:
        raw_channel = message["channel"]
        channel = raw_channel.decode() if isinstance(raw_channel, bytes) else str(raw_channel)
        data = message["data"]
        if isinstance(data, str):
            data = data.encode()
        for handler in tuple(self._handlers.get(channel, ())):
            try:
                handler(channel, data)
            except Exception:
                log.exception("pub/sub handler failed on channel %s", channel)

    async def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            except Exception:
                log.debug("closing a broken pub/sub connection failed", exc_info=True)

    async def close(self) -> None:
        self._closed = True
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        await self._drop_pubsub()
        self._handlers.clear()
        if self._sub is not self._r:
            await self._sub.aclose()
        await self._r.aclose()
