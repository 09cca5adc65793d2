"""The realtime bus's two Redis connections, on asyncio protocols with hiredis' parser.

redis-py's asyncio client costs tens of microseconds of Python per pipeline and per
pub/sub message (a timeout context, tasks and futures per call, a polling reader): on the
bus, where every streamed chunk is one of each, that was most of a chunk's cost across
processes (docs/benchmarks.md). These connections do the least the bus needs:

- ``CommandConnection``: commands written as packed RESP, replies parsed as they arrive,
  one future per batch (batches answered in order). A connection that gives no reply for
  ``stall_s`` is dropped (a stall shorter than that loses nothing).
- ``SubscriberConnection``: SUBSCRIBE/UNSUBSCRIBE in batches, messages handed to the
  handler from ``data_received`` (no task, no poll); a PING when quiet finds a dead peer;
  after a loss it reconnects with backoff and subscribes every wanted channel again.

Besides the bus, ``RedisKV`` runs its hot path on a ``CommandConnection`` of its own
(``PING``, ``MGET``, the Lua scripts); everything else about Redis stays with redis-py.
URLs: ``redis://`` and ``rediss://`` with user, password and database, as redis-py reads
them. On a Redis Cluster the same connections serve one node each (``cluster.py`` routes
to them; the subscriber then speaks sharded pub/sub: ``SSUBSCRIBE``, one channel per
command, as a command's channels must share a slot).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import copy
import logging
import math
import ssl
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import unquote, urlparse

import hiredis

if TYPE_CHECKING:
    from arinova.metrics.tally import Count

log = logging.getLogger("arinova.kv")

MessageHandler = Callable[[str, bytes], None]
Command = tuple[Any, ...]
#: channels per SUBSCRIBE / UNSUBSCRIBE command
SUBSCRIBE_BATCH = 1000
#: pause before subscribing again what a cluster node refused
RESUBSCRIBE_S = 0.1


class ConnectionLost(ConnectionError):
    pass


class OrderedConnection(Protocol):
    """What the bus needs of its connection: ``CommandConnection``, or ``ClusterConnection``
    (``cluster.py``) on a Redis Cluster."""

    publish_verb: str

    async def execute(self, commands: list[Command]) -> list[Any]: ...

    async def execute_phases(self, phases: list[list[Command]]) -> list[Any]: ...

    def reconnected_for(self) -> float: ...

    async def aclose(self) -> None: ...


class Address:
    __slots__ = ("db", "host", "password", "port", "tls", "username")

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.tls = parsed.scheme == "rediss"
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 6379
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        path = parsed.path.strip("/")
        self.db = int(path) if path.isdigit() else 0

    def at(self, host: str, port: int) -> Address:
        """The same credentials and TLS, another node."""
        other = copy.copy(self)
        other.host, other.port = host, port
        return other

    def hello(self) -> list[Command]:
        """The commands that set a fresh connection up."""
        commands: list[Command] = []
        if self.password is not None:
            if self.username:
                commands.append(("AUTH", self.username, self.password))
            else:
                commands.append(("AUTH", self.password))
        return commands

    async def open(self, protocol: Callable[[], asyncio.Protocol], connect_s: float) -> Any:
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context() if self.tls else None
        async with asyncio.timeout(connect_s):
            _, proto = await loop.create_connection(protocol, self.host, self.port, ssl=context)
        return proto


def pack(commands: list[Command]) -> bytes:
    """The commands in RESP, written by hiredis's packer (a third of the Python loop's
    cost): arguments are bytes, str (UTF-8), int or float."""
    return b"".join([hiredis.pack_command(command) for command in commands])


class _CommandProtocol(asyncio.Protocol):
    __slots__ = ("_loop", "_lost", "_reader", "_waiting", "last_reply", "transport")

    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        #: [future, replies still expected, replies so far], in order of the batches
        self._waiting: deque[list[Any]] = deque()
        self._lost = False
        self.transport: asyncio.Transport | None = None
        self.last_reply = 0.0
        # kept: asyncio.get_running_loop() is a system call (getpid) on every call in 3.11
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's is no subclass
        self.last_reply = self._loop.time()

    def send(self, commands: list[Command]) -> asyncio.Future[list[Any]]:
        future: asyncio.Future[list[Any]] = self._loop.create_future()
        if self._lost or self.transport is None:
            future.set_exception(ConnectionLost("the connection is closed"))
            return future
        if not self._waiting:
            self.last_reply = self._loop.time()
        self._waiting.append([future, len(commands), []])
        self.transport.write(pack(commands))
        return future

    @property
    def busy(self) -> bool:
        return bool(self._waiting)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        while (reply := reader.gets()) is not False:
            if not waiting:
                continue  # nobody asked (cannot happen with this protocol's use)
            entry = waiting[0]
            entry[2].append(reply)
            entry[1] -= 1
            if entry[1] == 0:
                waiting.popleft()
                if not entry[0].done():
                    entry[0].set_result(entry[2])
        self.last_reply = self._loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        while self._waiting:
            future = self._waiting.popleft()[0]
            if not future.done():
                future.set_exception(ConnectionLost(str(exc) if exc else "connection closed"))

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class CommandConnection:
    """One connection, made on first use and again after a loss; batches run in the order
    they were sent. A failed batch raises: what of it ran is unknown."""

    __slots__ = (
        "_address",
        "_closed",
        "_connect_s",
        "_connected_at",
        "_connecting",
        "_proto",
        "_reconnected",
        "_stall_s",
        "_watch",
    )

    #: the command that publishes on this connection's pub/sub
    publish_verb = "PUBLISH"

    def __init__(self, url: str | Address, *, connect_s: float, stall_s: float) -> None:
        self._address = Address(url) if isinstance(url, str) else url
        self._connect_s = connect_s
        self._stall_s = stall_s
        self._proto: _CommandProtocol | None = None
        self._watch: asyncio.TimerHandle | None = None
        self._connected_at = 0.0
        self._reconnected = False
        #: the connection being made (batches sent meanwhile wait for it, in order)
        self._connecting: asyncio.Future[_CommandProtocol] | None = None
        self._closed = False

    def reconnected_for(self) -> float:
        """Seconds since the connection was made again after a loss (infinite while the
        first one lasts; 0 while there is none)."""
        if self._proto is None:
            return 0.0 if self._connected_at else math.inf
        if not self._reconnected:
            return math.inf
        return asyncio.get_running_loop().time() - self._connected_at

    async def execute(self, commands: list[Command]) -> list[Any]:
        if self._closed:
            raise ConnectionLost("the connection is closed")
        proto = self._proto
        if proto is None or proto.transport is None or proto.transport.is_closing():
            if self._connecting is None:
                self._connecting = asyncio.ensure_future(self._connect())
            connecting = self._connecting
            try:
                proto = await asyncio.shield(connecting)
            finally:
                if self._connecting is connecting and connecting.done():
                    self._connecting = None
        return await proto.send(commands)  # an error reply stands in its place

    async def execute_phases(self, phases: list[list[Command]]) -> list[Any]:
        """The phases' commands in order, their replies in one list: on one connection
        the commands of a phase already run before those of the next."""
        return await self.execute([command for phase in phases for command in phase])

    async def _connect(self) -> _CommandProtocol:
        proto: _CommandProtocol = await self._address.open(_CommandProtocol, self._connect_s)
        setup = self._address.hello()
        if self._address.db:
            setup.append(("SELECT", self._address.db))
        if setup:
            for reply in await proto.send(setup):
                if isinstance(reply, hiredis.ReplyError):
                    proto.abort()
                    raise ConnectionLost(f"redis refused the connection: {reply}")
        self._proto = proto
        self._reconnected = bool(self._connected_at)
        self._connected_at = asyncio.get_running_loop().time()
        self._arm()
        return proto

    def _arm(self) -> None:
        if self._watch is None and not self._closed:
            loop = asyncio.get_running_loop()
            self._watch = loop.call_later(min(1.0, self._stall_s / 4), self._check)

    def _check(self) -> None:
        """Drop a connection whose reply is overdue (its batches fail; the caller resends)."""
        self._watch = None
        proto = self._proto
        if proto is None:
            return
        now = asyncio.get_running_loop().time()
        if proto.busy and now - proto.last_reply > self._stall_s:
            log.warning("redis gave no reply for %.0f s; the bus reconnects", self._stall_s)
            proto.abort()
            self._proto = None
            return
        self._arm()

    async def aclose(self) -> None:
        self._closed = True
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        proto, self._proto = self._proto, None
        if proto is not None:
            proto.abort()


class _SubscriberProtocol(asyncio.Protocol):
    __slots__ = ("_owner", "_reader", "transport")

    def __init__(self, owner: SubscriberConnection) -> None:
        self._owner = owner
        self._reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        owner = self._owner
        owner.heard()
        while (reply := reader.gets()) is not False:
            if isinstance(reply, list) and len(reply) == 3:
                kind = reply[0]
                if kind == b"message" or kind == b"smessage":
                    owner.dispatch(reply[1].decode(), reply[2])
                elif kind == b"subscribe" or kind == b"ssubscribe":
                    owner.confirmed(reply[1].decode())
                elif kind == b"sunsubscribe":
                    owner.unsubscribed(reply[1].decode())
            elif isinstance(reply, hiredis.ReplyError):
                owner.refused(str(reply))

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.lost(self)


class SubscriberConnection:
    """The process's one subscription connection (one per node on a cluster): the wanted
    channels are kept here and subscribed on every (re)connection; changes go out in
    batches, in call order. ``on_moved`` (sharded only) is told when the node says a
    channel is not its own any more (a slot moved, a failover), or when the connection
    was lost."""

    def __init__(
        self,
        url: str | Address,
        handler: Callable[[str, bytes], None],
        *,
        connect_s: float,
        stall_s: float,
        reconnect_max_s: float,
        sharded: bool = False,
        on_moved: Callable[[], None] | None = None,
        on_state: Callable[[str, bool], None] | None = None,
        errors: Count | None = None,
    ) -> None:
        self._address = Address(url) if isinstance(url, str) else url
        #: failed connections and losses of one, in the metrics
        self._errors = errors
        self._sharded = sharded
        self._on_moved = on_moved
        #: told when Redis confirms a channel on this connection (True: what is
        #: published from then on is heard, in order) and when that ends (False)
        self._on_state = on_state
        self._handler = handler
        self._connect_s = connect_s
        self._stall_s = stall_s
        self._reconnect_max_s = reconnect_max_s
        self.wanted: builtins.set[str] = set()
        #: channel -> subscribe (True) or unsubscribe, not yet sent on this connection
        self._changes: dict[str, bool] = {}
        self._proto: _SubscriberProtocol | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._last_heard = 0.0
        #: the loop of the connection's task (set when it starts)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry: asyncio.TimerHandle | None = None
        #: the last attempt to connect failed (nobody waits for a confirmation meanwhile)
        self._unreachable = False
        #: the wanted channels Redis confirmed on this connection
        self._confirmed: builtins.set[str] = set()
        #: channel -> futures of ``subscribed`` callers
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._closed = False

    def _start(self) -> None:
        if self._task is None and not self._closed:
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._run())

    def subscribe(self, channel: str) -> None:
        if channel not in self.wanted:
            self.wanted.add(channel)
            self._change(channel, True)

    def unsubscribe(self, channel: str) -> None:
        if channel in self.wanted:
            self.wanted.discard(channel)
            if channel in self._confirmed:
                self._confirmed.discard(channel)
                self._tell(channel, False)
            self._change(channel, False)

    async def subscribed(self, channel: str, within_s: float) -> bool:
        """Whether Redis confirmed the subscription within ``within_s`` (False at once
        while Redis cannot be reached)."""
        if channel in self._confirmed or channel not in self.wanted or self._unreachable:
            return channel in self._confirmed
        future = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(channel, [])
        waiters.append(future)
        try:
            async with asyncio.timeout(within_s):
                await future
        except TimeoutError:
            return False
        finally:
            if future in waiters:
                waiters.remove(future)
            if not waiters and self._waiters.get(channel) is waiters:
                del self._waiters[channel]
        return True

    def confirmed(self, channel: str) -> None:
        if channel not in self.wanted:
            return
        self._confirmed.add(channel)
        self._tell(channel, True)
        for future in self._waiters.pop(channel, ()):
            if not future.done():
                future.set_result(None)

    def _tell(self, channel: str, up: bool) -> None:
        if self._on_state is not None:
            try:
                self._on_state(channel, up)
            except Exception:
                log.exception("pub/sub state handler failed on channel %s", channel)

    def _lose_confirmed(self) -> None:
        confirmed, self._confirmed = self._confirmed, set()
        for channel in confirmed:
            self._tell(channel, False)

    def _change(self, channel: str, on: bool) -> None:
        """Sent soon, batched with the others (the last call for a channel wins)."""
        self._changes[channel] = on
        self._start()
        self._wake.set()

    def heard(self) -> None:
        loop = self._loop
        if loop is not None:
            self._last_heard = loop.time()

    def dispatch(self, channel: str, data: bytes) -> None:
        try:
            self._handler(channel, data)
        except Exception:
            log.exception("pub/sub handler failed on channel %s", channel)

    def unsubscribed(self, channel: str) -> None:
        """An ``sunsubscribe`` we did not ask for: the channel's slot is elsewhere now."""
        if channel in self.wanted and self._on_moved is not None:
            self._on_moved()

    def refused(self, error: str) -> None:
        """An error reply: on a cluster, an ``SSUBSCRIBE`` the node did not take (its slot
        moved, or the cluster is not serving yet). Which channel is not said: every wanted
        one is subscribed again shortly (subscribing twice is harmless), after the map was
        read again."""
        if not self._sharded:
            log.warning("redis pub/sub error: %s", error)
            return
        if self._on_moved is not None:
            self._on_moved()
        if self._retry is None and not self._closed:
            loop = asyncio.get_running_loop()
            self._retry = loop.call_later(RESUBSCRIBE_S, self._resubscribe)

    def _resubscribe(self) -> None:
        self._retry = None
        for channel in self.wanted:
            self._changes.setdefault(channel, True)
        self._wake.set()

    def lost(self, proto: _SubscriberProtocol) -> None:
        if proto is self._proto:
            self._proto = None
            self._lose_confirmed()
            self._wake.set()
            if self._on_moved is not None:
                self._on_moved()

    async def _run(self) -> None:
        delay = 0.05
        while not self._closed:
            try:
                if self._proto is None:
                    await self._connect()
                    self._unreachable = False
                    delay = 0.05
                self._sync()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._stall_s / 4):
                        await self._wake.wait()
                self._keep_alive()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._errors is not None:
                    self._errors.inc()
                if delay == 0.05:
                    log.warning("redis pub/sub connection lost (%s); reconnecting", exc)
                self._unreachable = self._proto is None
                self._drop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._reconnect_max_s)

    async def _connect(self) -> None:
        proto: _SubscriberProtocol = await self._address.open(
            lambda: _SubscriberProtocol(self), self._connect_s
        )
        setup = self._address.hello()
        if setup and proto.transport is not None:
            proto.transport.write(pack(setup))
        self._proto = proto
        self._changes = dict.fromkeys(self.wanted, True)
        self.heard()

    def _sync(self) -> None:
        proto = self._proto
        if proto is None or proto.transport is None:
            return
        changes, self._changes = self._changes, {}
        added = [channel for channel, on in changes.items() if on]
        removed = [channel for channel, on in changes.items() if not on]
        commands: list[Command] = []
        if self._sharded:
            commands += [("SSUBSCRIBE", channel) for channel in added]
            commands += [("SUNSUBSCRIBE", channel) for channel in removed]
        else:
            for start in range(0, len(added), SUBSCRIBE_BATCH):
                commands.append(("SUBSCRIBE", *added[start : start + SUBSCRIBE_BATCH]))
            for start in range(0, len(removed), SUBSCRIBE_BATCH):
                commands.append(("UNSUBSCRIBE", *removed[start : start + SUBSCRIBE_BATCH]))
        if commands:
            proto.transport.write(pack(commands))

    def _keep_alive(self) -> None:
        """A PING when the connection has been quiet; no answer for ``stall_s``: lost."""
        proto = self._proto
        if proto is None or proto.transport is None:
            return
        quiet = asyncio.get_running_loop().time() - self._last_heard
        if quiet > self._stall_s:
            raise ConnectionLost(f"no answer from redis for {quiet:.0f} s")
        if quiet > self._stall_s / 8 and self.wanted:
            proto.transport.write(pack([("PING",)]))

    def _drop(self) -> None:
        self._lose_confirmed()
        proto, self._proto = self._proto, None
        if proto is not None and proto.transport is not None:
            proto.transport.abort()

    async def aclose(self) -> None:
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._drop()
