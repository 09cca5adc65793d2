"""The bus between the server's processes (``RedisCoordinator``'s): what one process tells
the others, in ordered batches on one Redis connection of its own.

- Routed: a user's events go on ``rt:u:<user>``, which a process subscribes while it holds a
  socket of that user; the publish's receiver count says whether the user has a socket
  anywhere else, else the events that wait for offline users are queued (websocket.md §7).
  The rest goes on ``rt:all``. A user's events wait up to ``bus_batch_s`` for the ones that
  follow (one publish, one read and one socket write for several chunks); the rest go at once.
- Numbered: each published message carries its process's next number; a batch Redis did not
  answer is sent again whole (receivers drop what they already had on that channel), so a
  stall or a restart reorders and duplicates nothing; while Redis is away the queue is
  bounded.
- Rejoining: for ``REJOIN_S`` after the connection was made again, a user's events heard by
  no process go again every ``REJOIN_RETRY_S`` before they count as offline (the other
  processes are subscribing again).
- Stream text: ``stream:<id>`` writes ride in the same batches, before their publishes
  (``shared_stream.py``); with no other process, at most every ``stream_cache_interval_s``.
- Stamped: a batch's first message is ``["t", <wall time its first message was queued>]``,
  the receivers' measure of the bus's lag (a kind without a handler: a process of an older
  version passes over it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from arinova.kv import keys
from arinova.realtime.shared_stream import SharedStreamText

if TYPE_CHECKING:
    from arinova.kv.resp import OrderedConnection
    from arinova.metrics import Metrics
    from arinova.realtime.coordinator import TextSource
    from arinova.realtime.offline import OfflineQueue
    from arinova.realtime.tasks import Background
    from arinova.settings import RealtimeSettings

#: messages waiting for the connection; beyond this the bus is down and they are dropped
MAX_PENDING = 100_000
#: first and longest pause between two attempts of a failed batch
PUBLISH_RETRY_S = 0.05
PUBLISH_RETRY_MAX_S = 1.0
REJOIN_S = 5.0
REJOIN_RETRY_S = 0.1

#: a message's handler: (the sending process, the message's arguments)
BusHandler = Callable[[str, list[Any]], None]
#: the kind of a batch's first message, its time stamp
STAMP = "t"


class _Outgoing:
    """Consecutive bus messages for one channel: one publish."""

    __slots__ = ("channel", "messages", "offline", "payload", "user_id")

    def __init__(self, channel: str, user_id: str | None) -> None:
        self.channel = channel
        self.user_id = user_id
        #: the stamp, then the messages
        self.messages: list[list[Any]] = [[STAMP, time.time()]]
        #: the events to queue for the user if nobody else hears them
        self.offline: list[str] = []
        self.payload = b""


class Bus:
    def __init__(
        self,
        connection: OrderedConnection,
        pid: str,
        has_peers: Callable[[], bool],
        handlers: dict[str, BusHandler],
        offline: OfflineQueue,
        tasks: Background,
        config: RealtimeSettings,
        log: logging.Logger,
        metrics: Metrics,
    ) -> None:
        self._bus = connection
        self.pid = pid
        self._has_peers = has_peers
        self._handlers = handlers
        self._offline = offline
        self._tasks = tasks
        self._config = config
        self.log = log
        self._stopped = False
        #: what the next batch publishes, in order
        self._pending: list[_Outgoing] = []
        self._pending_messages = 0
        #: stream texts with something to write
        self._streams: dict[SharedStreamText, None] = {}
        self._streams_due = False
        self._stream_timer: asyncio.TimerHandle | None = None
        self._batch_timer: asyncio.TimerHandle | None = None
        self._publishing = False
        #: number of the last message published; receivers drop one they already had
        self._seq = 0
        #: channel -> process id -> number of the last message received from it there
        #: (a channel's messages arrive in order; channels on a cluster's different nodes
        #: do not arrive in order with each other)
        self._received: dict[str, dict[str, int]] = {}
        self._published = metrics.bus_published
        self._publishes = metrics.bus_publishes
        self._delivered = metrics.bus_delivered
        self._lag = metrics.bus_lag
        self._stream_writes = metrics.stream_cache_writes
        self._errors = metrics.redis_bus_errors

    async def close(self) -> None:
        self._stopped = True
        for timer in (self._stream_timer, self._batch_timer):
            if timer is not None:
                timer.cancel()
        self._stream_timer = self._batch_timer = None
        await self._bus.aclose()

    def forget_all_but(self, live: frozenset[str]) -> None:
        """Drop the numbers of processes no longer live."""
        for channel, origins in list(self._received.items()):
            for origin in [o for o in origins if o not in live]:
                del origins[origin]
            if not origins:
                del self._received[channel]

    def rejoining(self) -> bool:
        """The connection was made again less than ``REJOIN_S`` ago (or is down): the
        other processes may not have subscribed again, so what they say may not be heard
        yet, nor what is said to them."""
        return self._bus.reconnected_for() < REJOIN_S

    def forget_channel(self, channel: str) -> None:
        """The channel is not followed any more."""
        self._received.pop(channel, None)

    def stream_text(self, message_id: str, source: TextSource) -> SharedStreamText:
        return SharedStreamText(message_id, source, self._config.stream_ttl_s, self._stream_dirty)

    def send_all(self, message: list[Any]) -> None:
        """A message to every other process (``rt:all``)."""
        self._queue(keys.RT_CHANNEL, None, message, None)

    def send_to_user(self, user_id: str, message: list[Any], offline: str | None) -> None:
        """A message to the processes holding sockets of the user; ``offline`` is queued
        for the user when none does."""
        self._queue(keys.rt_user_channel(user_id), user_id, message, offline)

    def _queue(
        self, channel: str, user_id: str | None, message: list[Any], offline: str | None
    ) -> None:
        if self._pending_messages >= MAX_PENDING:
            self.log.warning("cluster bus is backed up; a message is dropped")
            return
        pending = self._pending
        if pending and pending[-1].channel == channel:
            out = pending[-1]
        else:
            out = _Outgoing(channel, user_id)
            pending.append(out)
        out.messages.append(message)
        if offline is not None:
            out.offline.append(offline)
        self._pending_messages += 1
        # what processes tell each other goes at once; a user's events may wait a moment
        # for the ones that follow them
        self._kick(wait=user_id is not None)

    def _kick(self, *, wait: bool = False) -> None:
        """Start a batch: at once, or (``wait``) after ``bus_batch_s`` so that what follows
        goes with it."""
        if self._publishing:
            return
        window = self._config.bus_batch_s
        if wait and window > 0:
            if self._batch_timer is None:
                loop = asyncio.get_running_loop()
                self._batch_timer = loop.call_later(window, self._publish_now)
            return
        self._publish_now()

    def _publish_now(self) -> None:
        if self._batch_timer is not None:
            self._batch_timer.cancel()
            self._batch_timer = None
        if not self._publishing:
            self._publishing = True
            self._tasks.spawn(self._publish())

    def _stream_dirty(self, stream: SharedStreamText) -> None:
        self._streams[stream] = None
        if self._has_peers() or stream.finished:
            self._kick(wait=True)
        elif self._stream_timer is None and not self._stopped:
            loop = asyncio.get_running_loop()
            self._stream_timer = loop.call_later(
                self._config.stream_cache_interval_s, self._streams_waited
            )

    def _streams_waited(self) -> None:
        self._stream_timer = None
        self._streams_due = True
        self._kick()

    def _stream_commands(self) -> tuple[list[SharedStreamText], list[tuple[Any, ...]]]:
        """The stream writes of the next batch: every pending one when another process may
        read them now, else only deletions until the interval has passed."""
        due = self._streams_due or self._has_peers()
        taken: list[SharedStreamText] = []
        commands: list[tuple[Any, ...]] = []
        writes = 0
        for stream in list(self._streams):
            if not (due or stream.finished):
                continue
            del self._streams[stream]
            written = stream.commands()
            if written:
                taken.append(stream)
                commands.extend(written)
                writes += not stream.finished
        if due:
            self._streams_due = False
        if writes:
            self._stream_writes.inc(writes)
        return taken, commands

    async def _publish(self) -> None:
        """Batches go out in order; one that fails is sent again (its messages keep their
        numbers, so a receiver that had them drops them) until Redis answers or the
        process stops."""
        delay = PUBLISH_RETRY_S
        try:
            while not self._stopped:
                batch, self._pending = self._pending, []
                self._pending_messages = 0
                for out in batch:
                    self._seq += 1
                    out.payload = orjson.dumps([self.pid, self._seq, out.messages])
                while True:
                    streams, commands = self._stream_commands()
                    if not (batch or commands):
                        return
                    verb = self._bus.publish_verb
                    publishes = [(verb, out.channel, out.payload) for out in batch]
                    try:
                        results = await self._bus.execute_phases([commands, publishes])
                    except Exception:
                        if self._stopped:
                            return
                        self._errors.inc()
                        for stream in streams:
                            stream.failed()
                        if delay == PUBLISH_RETRY_S:
                            self.log.warning("cluster publish failed; retrying", exc_info=True)
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, PUBLISH_RETRY_MAX_S)
                        continue
                    delay = PUBLISH_RETRY_S
                    self._publishes.inc(len(batch))
                    self._published.inc(sum(len(out.messages) for out in batch) - len(batch))
                    if self._after(batch, results):
                        return  # what nobody heard goes again after a pause
                    break
        finally:
            self._publishing = False

    def _after(self, batch: list[_Outgoing], results: list[Any]) -> bool:
        """Queue offline what no process heard; True when some goes again instead."""
        published = results[len(results) - len(batch) :]
        for result in results[: len(results) - len(batch)]:
            if isinstance(result, Exception):
                self.log.warning("stream text write failed: %s", result)
        rejoining = self.rejoining()
        unheard: list[_Outgoing] = []
        for out, heard in zip(batch, published, strict=True):
            if out.user_id is None or heard != 0:
                continue
            if rejoining:
                unheard.append(out)
            elif out.offline:
                self._tasks.spawn(self._offline_all(out.user_id, out.offline))
        if unheard:
            # Redis came back a moment ago: the processes of these users may not have
            # subscribed again yet; heard by nobody, they go again (numbered anew) shortly
            self._pending[:0] = unheard
            self._pending_messages += sum(len(out.messages) - 1 for out in unheard)
            if self._batch_timer is None:
                loop = asyncio.get_running_loop()
                self._batch_timer = loop.call_later(REJOIN_RETRY_S, self._publish_now)
            return True
        return False

    async def _offline_all(self, user_id: str, queued: list[str]) -> None:
        for event in queued:
            await self._offline.push(user_id, event)

    def on_message(self, channel: str, data: bytes) -> None:
        origin, seq, batch = orjson.loads(data)
        received = self._received.get(channel)
        if received is None:
            received = self._received[channel] = {}
        if origin == self.pid or seq <= received.get(origin, 0):
            return
        received[origin] = seq
        first = batch[0]
        if first[0] == STAMP:
            self._lag.observe(max(0.0, time.time() - first[1]))
            self._delivered.inc(len(batch) - 1)
        else:
            self._delivered.inc(len(batch))
        for kind, *args in batch:
            handler = self._handlers.get(kind)
            if handler is not None:
                handler(origin, args)
