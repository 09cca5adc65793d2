"""``RedisKV``: the ``KV`` interface on redis-py's asyncio client (hiredis parser).

``connect`` never fails: connections are made on demand, so the server starts while
Redis is down and ``/health`` reports ``"redis": "error"`` until it is back. Timeouts
are short so a dead Redis answers quickly instead of stalling requests.
Pub/sub uses one connection per process for every channel, and the realtime bus one
connection of its own for its batches (``resp.py``: the two connections a streamed chunk
crosses, kept lean); both reconnect (and resubscribe) with backoff when Redis goes away.

On a Redis Cluster (``cluster=True``) commands go through redis-py's cluster client (a
script's keys share a slot: ``keys.py``), several keys of ``mget``/``delete`` are split by
slot, and pub/sub is sharded (``cluster.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import TYPE_CHECKING, Any, Final, cast

import hiredis
import redis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.driver_info import DriverInfo
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from arinova.kv.base import KVError, MessageHandler, SubscriptionHandler
from arinova.kv.cluster import ClusterConnection, ClusterSubscriber
from arinova.kv.resp import CommandConnection, SubscriberConnection

if TYPE_CHECKING:
    from arinova.metrics.tally import Count

log = logging.getLogger("arinova.kv")

MAX_CONNECTIONS: Final = 64
#: what each new connection tells Redis (``CLIENT SETINFO``), the same as redis-py's own;
#: given once, or redis-py reads its version from the package metadata for every new
#: connection of a growing pool (a millisecond each)
DRIVER_INFO: Final = DriverInfo(name="redis-py", lib_version=redis.__version__)
CONNECT_TIMEOUT_S: Final = 1.0
COMMAND_TIMEOUT_S: Final = 2.0
#: how long a command waits for a free pooled connection
POOL_WAIT_S: Final = 2.0
#: the bus's connections (the ordered publisher, the subscriber) wait this long for Redis
#: before giving up on a command: a stall shorter than this loses and reorders nothing
STALL_TOLERANCE_S: Final = 35.0
RECONNECT_MAX_DELAY_S: Final = 2.0
#: a cluster command's attempts after a connection error, and the longest pause between
#: them (a moved slot is followed apart from these)
CLUSTER_RETRIES: Final = 2
CLUSTER_RETRY_CAP_S: Final = 0.2

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

# INCRBY each key by its delta (ARGV[2..]), starting the window of a key with no TTL;
# {value, ttl} of each, flat
_ADD_WITH_TTL: Final = """
local out = {}
for i, key in ipairs(KEYS) do
  local value = redis.call('INCRBY', key, ARGV[i + 1])
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, ARGV[1])
    ttl = tonumber(ARGV[1])
  end
  out[2 * i - 1] = value
  out[2 * i] = ttl
end
return out
"""


class Script:
    """A Lua script. On one Redis it runs on the bare connection: by its hash (EVALSHA),
    sent whole (EVAL, which loads it) when Redis does not know it yet (first use, after a
    restart). On a cluster redis-py sends it to the node of its keys."""

    __slots__ = ("_kv", "_script", "_sha", "_source")

    def __init__(self, kv: RedisKV, source: str) -> None:
        self._kv = kv
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()
        self._script = kv._r.register_script(source) if kv._bare is None else None

    async def __call__(self, keys: list[str], args: list[str | int | bytes]) -> Any:
        if self._script is None:
            return await self._kv._run_script(self._sha, self._source, keys, args)
        try:
            return await self._script(keys=keys, args=args)
        except ResponseError as exc:
            raise _kv_error(exc) from None


def _kv_error(exc: ResponseError) -> KVError:
    return KVError(str(exc))


class _CountedRedis(Redis):
    """Every command that fails counted (a script not loaded yet is loaded and sent
    again by redis-py: no failure)."""

    errors: Count | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except NoScriptError:
            raise
        except Exception:
            if self.errors is not None:
                self.errors.inc()
            raise


class _CountedRedisCluster(RedisCluster):
    errors: Count | None = None

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except NoScriptError:
            raise
        except Exception:
            if self.errors is not None:
                self.errors.inc()
            raise


class RedisKV:
    def __init__(
        self,
        client: Redis | RedisCluster,
        url: str,
        connection_errors: Count | None = None,
        command_errors: Count | None = None,
    ) -> None:
        self._r = client
        self._command_errors = command_errors
        self._cluster = isinstance(client, RedisCluster)
        self._url = url
        self._handlers: dict[str, list[MessageHandler]] = {}
        self._subscription_handlers: list[SubscriptionHandler] = []
        #: the handler of the channels followed one by one (users')
        self._follow_handler: MessageHandler | None = None
        #: on one Redis the hot path (GET /health's PING, the messages page's MGET of live
        #: texts, every Lua script: a reply's claim and release, the rate-limit windows;
        #: publishes: the session bus's heartbeat and invalidations) goes over a bare
        #: connection of its own, without a pool round; a cluster is
        #: asked through its client
        self._bare: CommandConnection | None = (
            None
            if self._cluster
            else CommandConnection(url, connect_s=CONNECT_TIMEOUT_S, stall_s=COMMAND_TIMEOUT_S)
        )
        self._incr_script = Script(self, _INCR_WITH_TTL)
        self._add_script = Script(self, _ADD_WITH_TTL)
        #: the subscription connection (made when something is first subscribed)
        self._subscriber: ClusterSubscriber | SubscriberConnection
        if self._cluster:
            # a channel may move between nodes: its subscription is never confirmed
            self._subscriber = ClusterSubscriber(
                url,
                self._dispatch,
                connect_s=CONNECT_TIMEOUT_S,
                stall_s=STALL_TOLERANCE_S,
                reconnect_max_s=RECONNECT_MAX_DELAY_S,
                errors=connection_errors,
            )
        else:
            self._subscriber = SubscriberConnection(
                url,
                self._dispatch,
                connect_s=CONNECT_TIMEOUT_S,
                stall_s=STALL_TOLERANCE_S,
                reconnect_max_s=RECONNECT_MAX_DELAY_S,
                errors=connection_errors,
                on_state=self._subscription_state,
            )

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        cluster: bool = False,
        command_errors: Count | None = None,
        connection_errors: Count | None = None,
    ) -> RedisKV:
        """``command_errors`` counts the commands that fail, ``connection_errors`` the
        losses of the subscription connection (and its failed attempts to connect)."""
        client: _CountedRedis | _CountedRedisCluster
        if cluster:
            client = cast(
                "_CountedRedisCluster",
                _CountedRedisCluster.from_url(
                    url,
                    max_connections=MAX_CONNECTIONS,
                    socket_connect_timeout=CONNECT_TIMEOUT_S,
                    socket_timeout=COMMAND_TIMEOUT_S,
                    driver_info=DRIVER_INFO,
                    # redis-py's default (10 attempts, up to 1 s apart) holds a command for tens
                    # of seconds while a node is away: fail fast, as on one Redis
                    retry=Retry(ExponentialBackoff(cap=CLUSTER_RETRY_CAP_S), CLUSTER_RETRIES),
                ),
            )
        else:
            client = cast("_CountedRedis", _CountedRedis.from_pool(cls._pool(url)))
        client.errors = command_errors
        kv = cls(client, url, connection_errors, command_errors)
        try:
            await kv._r.ping()
        except Exception as exc:
            log.warning("redis is not reachable yet (%s); continuing without it", exc)
        return kv

    @staticmethod
    def _pool(url: str) -> BlockingConnectionPool:
        return BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT_S,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=COMMAND_TIMEOUT_S,
            driver_info=DRIVER_INFO,
            # a pooled connection that Redis closed (a restart) fails its next command:
            # that command is sent again once on a new connection; a timeout is not (a
            # stall would only last twice as long)
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            health_check_interval=30,
        )

    @property
    def shared(self) -> bool:
        return True

    # -- for the realtime coordinator (Redis only) ------------------------------------
    def script(self, source: str) -> Script:
        """A Lua script, sent by hash (EVALSHA) and loaded on demand."""
        return Script(self, source)

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        return cast("dict[bytes, bytes]", await self._r.hgetall(key))

    async def hset(self, key: str, field: str, value: bytes | str) -> None:
        await self._r.hset(key, field, value)  # type: ignore[misc]

    def ordered_connection(self) -> CommandConnection | ClusterConnection:
        """A connection of its own (one per node on a cluster): batches sent one after the
        other run in that order, with no pool round per batch; it waits out a stall of up
        to ``STALL_TOLERANCE_S``."""
        connection = ClusterConnection if self._cluster else CommandConnection
        return connection(self._url, connect_s=CONNECT_TIMEOUT_S, stall_s=STALL_TOLERANCE_S)

    # -- strings ----------------------------------------------------------------------
    async def ping(self) -> bool:
        if self._bare is None:
            return bool(await self._r.ping())
        (reply,) = await self._on_bare(("PING",))
        return bool(reply == b"PONG")

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._r.get(key)
        except ResponseError as exc:
            raise _kv_error(exc) from None
        return cast("bytes | None", value)

    async def mget(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        if isinstance(self._r, RedisCluster):
            return cast("list[bytes | None]", await self._r.mget_nonatomic(keys))
        (values,) = await self._on_bare(("MGET", *keys))
        return cast("list[bytes | None]", values)

    async def _run_script(
        self, sha: str, source: str, keys: list[str], args: list[str | int | bytes]
    ) -> Any:
        """A script on the bare connection (``Script``); a failure counts as redis-py's do,
        a script Redis has to load first does not."""
        assert self._bare is not None
        tail = (len(keys), *keys, *args)
        try:
            (reply,) = await self._bare.execute([("EVALSHA", sha, *tail)])
            if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
                (reply,) = await self._bare.execute([("EVAL", source, *tail)])
            if isinstance(reply, hiredis.ReplyError):
                raise KVError(str(reply))
        except Exception:
            if self._command_errors is not None:
                self._command_errors.inc()
            raise
        return reply

    async def _on_bare(self, command: tuple[str | bytes, ...]) -> list[Any]:
        """One command on the bare connection (one Redis only); a failure counts as
        redis-py's do."""
        assert self._bare is not None
        try:
            replies = await self._bare.execute([command])
            if isinstance(replies[0], hiredis.ReplyError):
                raise KVError(str(replies[0]))
        except Exception:
            if self._command_errors is not None:
                self._command_errors.inc()
            raise
        return replies

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
        value, ttl = await self._incr_script([key], [ttl_ms])
        return int(value), int(ttl)

    async def add_with_ttl(
        self, deltas: list[tuple[str, int]], ttl_ms: int
    ) -> list[tuple[int, int]]:
        if not deltas:
            return []
        if self._cluster:
            # the keys are on several slots: one script each, all at once
            replies = await asyncio.gather(*(self._add_script([k], [ttl_ms, d]) for k, d in deltas))
            flat = [v for reply in replies for v in reply]
        else:
            flat = await self._add_script([k for k, _ in deltas], [ttl_ms, *(d for _, d in deltas)])
        return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]

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
        if isinstance(self._r, RedisCluster):
            return int(await self._r.spublish(channel, message))
        if self._bare is None:
            return int(await self._r.publish(channel, message))
        (receivers,) = await self._on_bare(("PUBLISH", channel, message))
        return int(receivers)

    async def subscribe(self, channel: str, handler: MessageHandler) -> None:
        handlers = self._handlers.get(channel)
        if handlers is not None:
            handlers.append(handler)
            return
        self._handlers[channel] = [handler]
        self._subscriber.subscribe(channel)

    async def unsubscribe(self, channel: str, handler: MessageHandler) -> None:
        handlers = self._handlers.get(channel)
        if not handlers or handler not in handlers:
            return
        handlers.remove(handler)
        if not handlers:
            del self._handlers[channel]
            self._subscriber.unsubscribe(channel)

    def on_subscription(self, handler: SubscriptionHandler) -> None:
        self._subscription_handlers.append(handler)

    def _subscription_state(self, channel: str, up: bool) -> None:
        if channel not in self._handlers:
            return
        for handler in tuple(self._subscription_handlers):
            handler(channel, up)

    # -- followed channels (the realtime coordinator's per-user channels) --------------
    def on_followed(self, handler: MessageHandler) -> None:
        """The handler of every channel followed with ``follow``."""
        self._follow_handler = handler

    def follow(self, channel: str) -> None:
        """Subscribe to the channel soon (in order with ``unfollow`` of it: the last call
        wins); 10 000 channels cost one set entry each and a few batched commands."""
        self._subscriber.subscribe(channel)

    async def followed(self, channel: str, within_s: float) -> bool:
        """Whether Redis confirmed the subscription of a followed channel within
        ``within_s`` (what is published on it from then on is heard here)."""
        return await self._subscriber.subscribed(channel, within_s)

    def unfollow(self, channel: str) -> None:
        if channel not in self._handlers:
            self._subscriber.unsubscribe(channel)

    def _dispatch(self, channel: str, data: bytes) -> None:
        handlers = self._handlers.get(channel)
        if handlers is None:
            if self._follow_handler is None or channel not in self._subscriber.wanted:
                return
            handlers = [self._follow_handler]
        for handler in tuple(handlers):
            try:
                handler(channel, data)
            except Exception:
                log.exception("pub/sub handler failed on channel %s", channel)

    async def close(self) -> None:
        await self._subscriber.aclose()
        if self._bare is not None:
            await self._bare.aclose()
        self._handlers.clear()
        await self._r.aclose()
