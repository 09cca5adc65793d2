"""The realtime bus's connections on a Redis Cluster (``REDIS_CLUSTER=true``).

- ``SlotMap``: which master serves each of the 16 384 slots (``CLUSTER SLOTS``, asked of the
  node of ``REDIS_URL`` or any node known since), read again when a node answers ``MOVED``
  or a connection is lost. Slots are computed by redis-py's ``key_slot`` (hash tags
  included).
- ``ClusterConnection``: ``CommandConnection``'s interface over one connection per master.
  A batch is split by slot, each node's part sent in order on that node's connection; the
  phases of ``execute_phases`` run one after the other (the stream writes of a bus batch are
  stored before its publishes go out, wherever each lives). Publishing is ``SPUBLISH``: a
  channel lives on the node of its slot, and its receiver count is exact there. A batch a
  node refused (``MOVED``, ``ASK``, ``CLUSTERDOWN``, ``TRYAGAIN``) raises ``ConnectionLost``
  after the map was marked stale: the bus sends it again.
- ``ClusterSubscriber``: ``SubscriberConnection``'s interface over one sharded subscriber
  per master; a channel is subscribed on the node of its slot and moves when the map says
  it lives elsewhere now.
"""

from __future__ import annotations

import array
import asyncio
import builtins
import contextlib
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import hiredis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from arinova.kv.resp import (
    Address,
    Command,
    CommandConnection,
    ConnectionLost,
    SubscriberConnection,
)

if TYPE_CHECKING:
    from arinova.metrics.tally import Count

log = logging.getLogger("arinova.kv")

Node = tuple[str, int]
#: replies that say the cluster's map changed (or is changing) under a command
REROUTE: Final = ("MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN")
#: first and longest pause between two reads of the map while no node answers
MAP_RETRY_S: Final = 0.05
MAP_RETRY_MAX_S: Final = 2.0
#: a slot no master serves (in the map being read)
UNSERVED: Final = 0xFFFF


def slot_of(key: str | bytes) -> int:
    return int(key_slot(key.encode() if isinstance(key, str) else key))


class SlotMap:
    def __init__(self, seed: Address, *, connect_s: float) -> None:
        self._seed = seed
        self._connect_s = connect_s
        #: slot -> index in ``nodes``; empty until the first read
        self._owners = array.array("H")
        self.nodes: list[Node] = []
        self.stale = True
        self._reading: asyncio.Future[None] | None = None

    @property
    def ready(self) -> bool:
        return bool(self._owners)

    def node_of(self, key: str | bytes) -> Node:
        return self.nodes[self._owners[slot_of(key)]]

    async def refresh(self) -> None:
        """Read the map (one read at a time; callers meanwhile wait for it)."""
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read())
        reading = self._reading
        try:
            await asyncio.shield(reading)
        finally:
            if self._reading is reading and reading.done():
                self._reading = None

    async def _read(self) -> None:
        candidates = [(self._seed.host, self._seed.port), *self.nodes]
        error: Exception | None = None
        for host, port in dict.fromkeys(candidates):
            connection = CommandConnection(
                self._seed.at(host, port), connect_s=self._connect_s, stall_s=self._connect_s
            )
            try:
                async with asyncio.timeout(self._connect_s * 2):
                    (reply,) = await connection.execute([("CLUSTER", "SLOTS")])
            except (OSError, TimeoutError) as exc:
                error = exc
                continue
            finally:
                await connection.aclose()
            if isinstance(reply, hiredis.ReplyError) or not reply:
                error = ConnectionLost(f"no slot map from {host}:{port}: {reply!r}")
                continue
            self._install(reply, host)
            return
        raise ConnectionLost(f"no node of the cluster answered: {error}")

    def _install(self, ranges: list[Any], asked: str) -> None:
        nodes: dict[Node, int] = {}
        owners = array.array("H", [UNSERVED]) * REDIS_CLUSTER_HASH_SLOTS
        for start, end, master, *_replicas in ranges:
            host = master[0].decode() or asked  # an empty host: the node that answered
            index = nodes.setdefault((host, int(master[1])), len(nodes))
            owners[int(start) : int(end) + 1] = array.array("H", [index]) * (
                int(end) - int(start) + 1
            )
        if UNSERVED in owners:
            raise ConnectionLost("the cluster does not serve every slot")
        self.nodes, self._owners = list(nodes), owners
        self.stale = False


class ClusterConnection:
    publish_verb = "SPUBLISH"

    def __init__(self, url: str, *, connect_s: float, stall_s: float) -> None:
        self._seed = Address(url)
        self._map = SlotMap(self._seed, connect_s=connect_s)
        self._connect_s = connect_s
        self._stall_s = stall_s
        self._nodes: dict[Node, CommandConnection] = {}
        #: whether the last batch failed; when one first went through after a failure
        self._failing = False
        self._recovered_at: float | None = None
        self._closed = False

    def reconnected_for(self) -> float:
        """Seconds since a batch first went through again after a failure (a restarted
        cluster accepts connections before it serves its slots), or since a node's
        connection was made again, whichever is less; 0 while batches fail."""
        if self._failing:
            return 0.0
        nodes = min((c.reconnected_for() for c in self._nodes.values()), default=math.inf)
        if self._recovered_at is None:
            return nodes
        return min(nodes, asyncio.get_running_loop().time() - self._recovered_at)

    async def execute(self, commands: list[Command]) -> list[Any]:
        return await self.execute_phases([commands])

    async def execute_phases(self, phases: list[list[Command]]) -> list[Any]:
        if self._closed:
            raise ConnectionLost("the connection is closed")
        try:
            if self._map.stale:
                await self._map.refresh()
                await self._close_gone()
            replies: list[Any] = []
            for phase in phases:
                if phase:
                    replies += await self._execute(phase)
        except BaseException:
            self._failing = True
            raise
        if self._failing:
            self._failing = False
            self._recovered_at = asyncio.get_running_loop().time()
        return replies

    async def _execute(self, commands: list[Command]) -> list[Any]:
        parts: dict[Node, list[int]] = {}
        for index, command in enumerate(commands):
            parts.setdefault(self._map.node_of(command[1]), []).append(index)
        try:
            answers = await asyncio.gather(
                *(
                    self._connection(node).execute([commands[i] for i in indexes])
                    for node, indexes in parts.items()
                )
            )
        except ConnectionLost:
            self._map.stale = True
            raise
        replies: list[Any] = [None] * len(commands)
        for indexes, answer in zip(parts.values(), answers, strict=True):
            for index, reply in zip(indexes, answer, strict=True):
                if isinstance(reply, hiredis.ReplyError) and str(reply).startswith(REROUTE):
                    self._map.stale = True
                    raise ConnectionLost(f"the cluster moved a slot: {reply}")
                replies[index] = reply
        return replies

    async def _close_gone(self) -> None:
        """Close the connections of nodes that serve no slot any more."""
        for node in [n for n in self._nodes if n not in self._map.nodes]:
            await self._nodes.pop(node).aclose()

    def _connection(self, node: Node) -> CommandConnection:
        connection = self._nodes.get(node)
        if connection is None:
            address = self._seed.at(*node)
            connection = CommandConnection(
                address, connect_s=self._connect_s, stall_s=self._stall_s
            )
            self._nodes[node] = connection
        return connection

    async def aclose(self) -> None:
        self._closed = True
        nodes, self._nodes = list(self._nodes.values()), {}
        for connection in nodes:
            await connection.aclose()


class ClusterSubscriber:
    def __init__(
        self,
        url: str,
        handler: Callable[[str, bytes], None],
        *,
        connect_s: float,
        stall_s: float,
        reconnect_max_s: float,
        errors: Count | None = None,
    ) -> None:
        self._seed = Address(url)
        self._errors = errors
        self._map = SlotMap(self._seed, connect_s=connect_s)
        self._handler = handler
        self._options = {
            "connect_s": connect_s,
            "stall_s": stall_s,
            "reconnect_max_s": reconnect_max_s,
        }
        self.wanted: builtins.set[str] = set()
        #: channel -> the node it is subscribed on
        self._placed: dict[str, Node] = {}
        self._nodes: dict[Node, SubscriberConnection] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        #: set after each placement round (``subscribed`` callers wait for one)
        self._placed_round = asyncio.Event()
        self._closed = False

    def subscribe(self, channel: str) -> None:
        if channel in self.wanted:
            return
        self.wanted.add(channel)
        if self._map.ready and not self._map.stale:
            self._place(channel)
        else:
            self._moved()

    def unsubscribe(self, channel: str) -> None:
        if channel not in self.wanted:
            return
        self.wanted.discard(channel)
        node = self._placed.pop(channel, None)
        if node is not None:
            self._nodes[node].unsubscribe(channel)

    async def subscribed(self, channel: str, within_s: float) -> bool:
        """Whether the node of the channel's slot confirmed it within ``within_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while channel in self.wanted:
            left = deadline - loop.time()
            node = self._placed.get(channel)
            if node is not None:
                if await self._nodes[node].subscribed(channel, left):
                    return True
                if self._placed.get(channel) == node:
                    return False
                continue  # moved meanwhile: wait on its new node
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._placed_round.wait()
        return False

    def _place(self, channel: str) -> None:
        node = self._map.node_of(channel)
        before = self._placed.get(channel)
        if before == node:
            return
        if before is not None:
            self._nodes[before].unsubscribe(channel)
        self._placed[channel] = node
        self._subscriber(node).subscribe(channel)

    def _subscriber(self, node: Node) -> SubscriberConnection:
        subscriber = self._nodes.get(node)
        if subscriber is None:
            subscriber = SubscriberConnection(
                self._seed.at(*node),
                self._handler,
                sharded=True,
                on_moved=self._moved,
                on_state=None,
                errors=self._errors,
                **self._options,
            )
            self._nodes[node] = subscriber
        return subscriber

    def _moved(self) -> None:
        """Read the map again soon and move every channel that lives elsewhere now."""
        self._map.stale = True
        if self._closed:
            return
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    async def _run(self) -> None:
        delay = MAP_RETRY_S
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._map.refresh()
            except ConnectionLost as exc:
                if self._errors is not None:
                    self._errors.inc()
                if delay == MAP_RETRY_S:
                    log.warning("redis cluster: %s; trying again", exc)
                self._wake.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAP_RETRY_MAX_S)
                continue
            delay = MAP_RETRY_S
            for channel in list(self.wanted):
                self._place(channel)
            for node in [n for n in self._nodes if n not in self._map.nodes]:
                await self._nodes.pop(node).aclose()  # it serves no slot any more
            self._placed_round.set()
            self._placed_round = asyncio.Event()

    async def aclose(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        nodes, self._nodes = list(self._nodes.values()), {}
        for subscriber in nodes:
            await subscriber.aclose()
