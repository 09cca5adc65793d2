"""``RedisCoordinator``: several processes (on one or many machines) acting as one server.

Each process has a random id, a liveness entry in ``rt:procs`` (a sorted set scored by
expiry, refreshed by a periodic beat) and one subscription to the bus.

- Bus: everything a process tells the others goes through one ordered publisher (messages
  queued during a publish go out together in the next one), and only when another live
  process exists. User events are delivered by each process to its own sockets of that
  user (encoded once per process).
- Presence: ``rt:presence:<user>`` counts the user's sockets per process, so "no socket
  anywhere" (offline queue) and "visible anywhere" (push) are decided across processes.
- Agents: ``rt:agents`` maps agent -> process; every process mirrors it (``up``/``down``
  messages) so the REST hooks answer without a round trip. An agent whose socket moves to
  another process keeps its tasks where they run: the new socket's events for them are
  forwarded there (``agent``), and they fail when the agent's ``down`` comes from the
  process holding it.
- Replies: ``rt:active:<conv>`` (the process running the conversation's reply) and
  ``rt:queue:<conv>`` (waiting messages), claimed and released by Lua scripts, so two
  processes never start two replies in one conversation (quirk Q07) and the queue drains
  in order. A reply runs in the agent's process (a ``run`` hand-over). ``rt:replies:<proc>``
  lists the replies a process runs: when it dies, the first live process to notice claims
  them, fails them ("Agent disconnected") and releases their conversations.

While Redis is unreachable the process works alone: a claim that fails takes this
process's own lock, and releases are retried so a blip leaves no conversation marked by a
live process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from arinova.kv import keys
from arinova.kv.redis import COMMAND_TIMEOUT_S
from arinova.realtime import events, scripts
from arinova.realtime.coordinator import FULL, QUEUED, Inbound, QueuedReply, RunningReply
from arinova.realtime.local import ReplyLocks
from arinova.realtime.validate import is_uuid

if TYPE_CHECKING:
    from arinova.hooks import Skill
    from arinova.kv.redis import RedisKV
    from arinova.realtime.hub import Hub
    from arinova.realtime.offline import OfflineQueue
    from arinova.realtime.tasks import Background
    from arinova.settings import RealtimeSettings

#: messages waiting for the publisher; beyond this the bus is down and they are dropped
MAX_PENDING = 100_000
#: presence counts outlive a process that died without cleaning them this long
PRESENCE_TTL_S = 86_400
RELEASE_ATTEMPTS = 6
#: first and longest pause between two attempts of a failed publish
PUBLISH_RETRY_S = 0.05
PUBLISH_RETRY_MAX_S = 1.0

BusHandler = Callable[[str, list[Any]], None]


class RedisCoordinator:
    def __init__(
        self,
        kv: RedisKV,
        hub: Hub,
        offline: OfflineQueue,
        tasks: Background,
        config: RealtimeSettings,
    ) -> None:
        self._kv = kv
        self._hub = hub
        self._offline = offline
        self._tasks = tasks
        self._config = config
        self.log = logging.getLogger("arinova.realtime.cluster")
        self.pid = uuid.uuid4().hex[:16]
        #: the other live processes, as of the last beat
        self.peers: frozenset[str] = frozenset()
        #: agent id -> (process, skills), for agents connected to other processes
        self.remote_agents: dict[str, tuple[str, list[Skill]]] = {}
        #: replies started while Redis was unreachable
        self._fallback = ReplyLocks(config.max_queued_replies)
        self._inbound: Inbound | None = None
        self._stopped = False
        self._pending: list[list[Any]] = []
        self._publishing = False
        #: number of the last batch published; receivers drop a batch they already had
        self._seq = 0
        #: process id -> number of the last batch received from it
        self._received: dict[str, int] = {}
        #: when the last beat reached Redis, and before when no dead process is taken over
        #: (loop time)
        self._last_beat = 0.0
        self._take_over_after = 0.0
        self._beat_failed = False
        self._publisher = kv.ordered_publisher()
        self._beat: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._claim = kv.script(scripts.CLAIM)
        self._handover = kv.script(scripts.HANDOVER)
        self._release = kv.script(scripts.RELEASE)
        self._beat_script = kv.script(scripts.BEAT)
        self._claim_dead = kv.script(scripts.CLAIM_DEAD)
        self._agent_down = kv.script(scripts.AGENT_DOWN)
        self._agent_where = kv.script(scripts.AGENT_WHERE)
        self._count_script = kv.script(scripts.COUNT)
        self._handlers: dict[str, BusHandler] = {
            "e": self._on_events,
            "hello": self._on_hello,
            "up": self._on_agent_up,
            "down": self._on_agent_down,
            "agent": self._on_agent_event,
            "run": self._on_run,
            "cancel": self._on_cancel,
            "kick": self._on_kick,
            "resync": self._on_resync,
            "to": self._on_to_socket,
        }

    @property
    def inbound(self) -> Inbound:
        assert self._inbound is not None, "the coordinator is not started"
        return self._inbound

    # -- life ----------------------------------------------------------------------------
    async def start(self, inbound: Inbound) -> None:
        """Subscribe and beat once; with Redis unreachable the process still starts (the
        beat loop keeps trying) and works alone until Redis answers."""
        self._inbound = inbound
        self._last_beat = asyncio.get_running_loop().time()
        try:
            await self._kv.subscribe(keys.RT_CHANNEL, self._on_message)
            await self.beat()
            agents = await self._kv.hgetall(keys.RT_AGENTS)
            for agent_id, pid in agents.items():
                if pid.decode() in self.peers:
                    self.remote_agents.setdefault(agent_id.decode(), (pid.decode(), []))
            self.send("hello")
        except Exception:
            self.log.warning("cluster start: Redis unavailable", exc_info=True)
        finally:
            self._ready.set()
            self._beat = asyncio.get_running_loop().create_task(self._beat_loop())

    async def stop(self) -> None:
        self._stopped = True
        beat, self._beat = self._beat, None
        if beat is not None:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        await self._publisher.aclose()

    async def _ready_wait(self) -> None:
        async with asyncio.timeout(5):
            await self._ready.wait()

    async def _beat_loop(self) -> None:
        period = self._config.process_beat_s
        # ``stop`` cancels this task, but redis-py can swallow a cancellation that lands
        # during a command: the flag ends the loop all the same
        while not self._stopped:
            await asyncio.sleep(period)
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception:
                self._beat_failed = True
                self.log.warning("cluster beat failed", exc_info=True)

    async def beat(self) -> None:
        ttl_ms = int(self._config.process_ttl_s * 1000)
        alive, dead = await self._beat_script([keys.RT_PROCS], [self.pid, ttl_ms])
        now = asyncio.get_running_loop().time()
        ttl = self._config.process_ttl_s
        if self._beat_failed and now - self._last_beat > ttl:
            # this process was cut off from Redis for a TTL, as the others may have been (a
            # stall): it gives them time to beat again before taking any of them over
            self._take_over_after = now + 2 * ttl + COMMAND_TIMEOUT_S
        self._beat_failed = False
        self._last_beat = now
        self.peers = frozenset(p.decode() for p in alive) - {self.pid}
        for origin in [o for o in self._received if o not in self.peers]:
            del self._received[origin]
        if now < self._take_over_after:
            return
        for pid in dead:
            await self._take_over(pid.decode())

    async def _take_over(self, dead: str) -> None:
        claimed = await self._claim_dead(
            [keys.RT_PROCS, keys.RT_AGENTS, keys.rt_replies(dead)], [dead]
        )
        if not claimed:
            return
        replies, agents = claimed
        self.log.warning("process %s is gone: failing its %d replies", dead, len(replies))
        for agent_id in agents:
            self.send("down", agent_id.decode(), dead)
            self._on_agent_down(self.pid, [agent_id.decode(), dead])  # the bus skips its sender
        for raw in replies:
            user_id, conversation_id, message_id, seq = orjson.loads(raw)
            reply = RunningReply(user_id, conversation_id, message_id, seq)
            try:
                await self._adopt(user_id, conversation_id)
                await self.inbound.fail_orphan(reply, events.AGENT_DISCONNECTED)
            except Exception:
                self.log.exception("failing reply %s of a dead process", message_id)

    # -- the bus -------------------------------------------------------------------------
    def send(self, kind: str, *args: Any) -> None:
        if not self.peers and kind not in ("hello", "down"):
            return
        if len(self._pending) >= MAX_PENDING:
            self.log.warning("cluster bus is backed up; a message is dropped")
            return
        self._pending.append([kind, *args])
        if not self._publishing:
            self._publishing = True
            self._tasks.spawn(self._publish())

    async def _publish(self) -> None:
        """Batches go out in order; one that fails is sent again (same number, so a
        receiver that had it drops it) until Redis answers or the process stops."""
        delay = PUBLISH_RETRY_S
        try:
            while self._pending and not self._stopped:
                batch, self._pending = self._pending, []
                self._seq += 1
                payload = orjson.dumps([self.pid, self._seq, batch])
                while True:
                    try:
                        await self._publisher.publish(keys.RT_CHANNEL, payload)
                        delay = PUBLISH_RETRY_S
                        break
                    except Exception:
                        if self._stopped:
                            return
                        if delay == PUBLISH_RETRY_S:
                            self.log.warning("cluster publish failed; retrying", exc_info=True)
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, PUBLISH_RETRY_MAX_S)
        finally:
            self._publishing = False

    def _on_message(self, channel: str, data: bytes) -> None:
        origin, seq, batch = orjson.loads(data)
        if origin == self.pid or seq <= self._received.get(origin, 0):
            return
        self._received[origin] = seq
        for kind, *args in batch:
            handler = self._handlers.get(kind)
            if handler is not None:
                handler(origin, args)

    # -- delivery ------------------------------------------------------------------------
    def emit(self, user_id: str, event: str, *, offline: bool = True) -> None:
        here = self._hub.deliver(user_id, events.frame(event))
        if self.peers:
            self.send("e", user_id, event)
            if not here and offline:
                self._tasks.spawn(self._offline_unless_elsewhere(user_id, event))
        elif not here and offline:
            self._tasks.spawn(self._offline.push(user_id, event))

    async def _offline_unless_elsewhere(self, user_id: str, event: str) -> None:
        try:
            elsewhere = await self._present_elsewhere(user_id)
        except Exception:
            self.log.warning("presence lookup failed; event queued offline", exc_info=True)
            elsewhere = False
        if not elsewhere:
            await self._offline.push(user_id, event)

    def _on_events(self, origin: str, args: list[Any]) -> None:
        user_id, event = args
        self._hub.deliver(user_id, events.frame(event))

    # -- presence ------------------------------------------------------------------------
    def user_online(self, user_id: str) -> None:
        self._tasks.spawn(self._count(user_id, self.pid, 1))

    def user_offline(self, user_id: str) -> None:
        self._tasks.spawn(self._count(user_id, self.pid, -1))

    def foreground(self, user_id: str, step: int) -> None:
        self._tasks.spawn(self._count(user_id, self.pid + ":fg", step))

    async def _count(self, user_id: str, field: str, step: int) -> None:
        """HINCRBY commutes, so opens and closes may land in any order."""
        await self._count_script([keys.rt_presence(user_id)], [field, step, PRESENCE_TTL_S])

    async def _counts_elsewhere(self, user_id: str) -> dict[str, int]:
        counts = await self._kv.hgetall(keys.rt_presence(user_id))
        return {
            f.decode(): int(n)
            for f, n in counts.items()
            if int(n) > 0 and f.decode().split(":")[0] in self.peers
        }

    async def _present_elsewhere(self, user_id: str) -> bool:
        return any(":" not in f for f in await self._counts_elsewhere(user_id))

    async def foreground_elsewhere(self, user_id: str) -> int:
        if not self.peers:
            return 0
        try:
            counts = await self._counts_elsewhere(user_id)
        except Exception:
            self.log.warning("presence lookup failed; push decided locally", exc_info=True)
            return 0
        return sum(n for f, n in counts.items() if f.endswith(":fg"))

    # -- agents --------------------------------------------------------------------------
    async def agent_up(self, agent_id: str, skills: list[Skill]) -> None:
        try:
            await self._ready_wait()
            await self._kv.hset(keys.RT_AGENTS, agent_id, self.pid)
        except Exception:
            self.log.warning(
                "agent %s: registering across processes failed", agent_id, exc_info=True
            )
        self.remote_agents.pop(agent_id, None)
        self.send("up", agent_id, skills)

    def agent_down(self, agent_id: str) -> None:
        self._tasks.spawn(self._agent_gone(agent_id))

    async def _agent_gone(self, agent_id: str) -> None:
        try:
            await self._agent_down([keys.RT_AGENTS], [agent_id, self.pid])
        except Exception:
            self.log.warning("agent %s: unregistering failed", agent_id, exc_info=True)
        # sent all the same: the tasks other processes keep for the agent end with it
        self.send("down", agent_id, self.pid)

    def _remote(self, agent_id: str) -> tuple[str, list[Skill]] | None:
        entry = self.remote_agents.get(agent_id)
        return entry if entry is not None and entry[0] in self.peers else None

    def agent_elsewhere(self, agent_id: str) -> list[Skill] | None:
        entry = self._remote(agent_id)
        return None if entry is None else list(entry[1])

    async def locate_agent(self, agent_id: str) -> str | None:
        """The live process holding the agent's socket: the mirror, else the registry
        (an agent that authenticated a moment ago may not be mirrored yet)."""
        entry = self._remote(agent_id)
        if entry is not None:
            return entry[0]
        try:
            found = await self._agent_where([keys.RT_PROCS, keys.RT_AGENTS], [agent_id])
        except Exception:
            self.log.warning("agent %s: registry unavailable", agent_id, exc_info=True)
            return None
        if not found:
            return None
        pid = bytes(found).decode()
        if pid == self.pid:
            return None
        self.peers = self.peers | {pid}  # live, though its hello is still on its way
        return pid

    def close_agent_elsewhere(self, agent_id: str, code: int, reason: str) -> None:
        self.send("kick", agent_id, code, reason)

    def agent_event_elsewhere(self, agent_id: str, kind: str, task_id: str, value: str) -> None:
        """Broadcast on the bus; the process running the task applies it, the others drop
        it (a task id that is no message id runs nowhere and is not sent).

        The alternative, a taskId -> process map that the old process sends in answer to
        the new one's ``up``, would save nothing on the wire: the bus is one channel that
        every process receives whole, so an addressed message costs what a broadcast
        does. It would cost correctness instead: the agent may send a chunk right after
        ``auth_ok``, before any answer arrives, so the new process would have to hold
        events back, wait for an answer from every peer (with a timeout for a slow or
        dying one) and chain maps when the agent moves again. Broadcast on this process's
        ordered bus sends each event at once, in the order the socket got them, and the
        process that runs the task receives them in that order after the ``up`` that
        replaced its socket."""
        if is_uuid(task_id):
            self.send("agent", agent_id, kind, task_id, value)

    def _on_agent_event(self, origin: str, args: list[Any]) -> None:
        agent_id, kind, task_id, value = args
        self.inbound.agent_event(agent_id, kind, task_id, value)

    def _on_agent_up(self, origin: str, args: list[Any]) -> None:
        agent_id, skills = args
        self.remote_agents[agent_id] = (origin, skills)
        self.inbound.agent_moved(agent_id)

    def _on_agent_down(self, origin: str, args: list[Any]) -> None:
        """Only from the process holding the agent's socket as far as this one knows: a
        ``down`` of a socket since replaced elsewhere changes nothing."""
        agent_id, pid = args
        entry = self.remote_agents.get(agent_id)
        if entry is not None and entry[0] == pid:
            del self.remote_agents[agent_id]
            self.inbound.agent_gone(agent_id)

    def _on_hello(self, origin: str, args: list[Any]) -> None:
        self.peers = self.peers | {origin}
        for agent_id, socket in self._hub.agents.items():
            if socket.open:
                self.send("up", agent_id, socket.skills)

    def _on_kick(self, origin: str, args: list[Any]) -> None:
        agent_id, code, reason = args
        self.inbound.close_agent(agent_id, code, reason)

    # -- replies -------------------------------------------------------------------------
    async def claim(self, item: QueuedReply) -> QueuedReply | str:
        conv = item.conversation_id
        try:
            await self._ready_wait()
            status, raw = await self._claim(
                [
                    keys.RT_PROCS,
                    keys.rt_active(conv),
                    keys.rt_queue(conv),
                    keys.rt_user_active(item.user_id),
                ],
                [self.pid, item.user_id, conv, _item_json(item), self._config.max_queued_replies],
            )
        except Exception:
            self.log.warning(
                "conversation %s: shared reply mark unavailable; starting here",
                conv,
                exc_info=True,
            )
            return self._fallback.claim(item)
        if status == b"queued":
            return QUEUED
        if status == b"full":
            return FULL
        return _item(raw)

    async def hand_over(self, item: QueuedReply, process: str) -> None:
        """Give the conversation's mark to the agent's process and ask it to run the reply
        (if that process dies first, the mark is free: its owner is not live)."""
        conv = item.conversation_id
        await self._handover(
            [keys.rt_active(conv), keys.rt_user_active(item.user_id)], [process, item.user_id, conv]
        )
        self.send("run", process, _item_json(item))

    def _on_run(self, origin: str, args: list[Any]) -> None:
        pid, raw = args
        if pid == self.pid:
            self.inbound.run_reply(_item(raw.encode()))

    async def _adopt(self, user_id: str, conversation_id: str) -> None:
        """Take the conversation's mark (its owner died) so releasing it drains its queue."""
        await self._handover(
            [keys.rt_active(conversation_id), keys.rt_user_active(user_id)],
            [self.pid, user_id, conversation_id],
        )

    async def reply_started(self, reply: RunningReply) -> None:
        value = orjson.dumps([reply.user_id, reply.conversation_id, reply.message_id, reply.seq])
        try:
            await self._kv.hset(keys.rt_replies(self.pid), reply.message_id, value)
        except Exception:
            # the reply runs; only its recovery, should this process die, is lost
            self.log.warning("reply %s: not listed in Redis", reply.message_id, exc_info=True)

    async def release(
        self, user_id: str, conversation_id: str, message_id: str
    ) -> QueuedReply | None:
        if self._fallback.holds(conversation_id):
            return self._fallback.release(conversation_id)  # started while Redis was away
        conv = conversation_id
        script_keys = [
            keys.RT_PROCS,
            keys.rt_active(conv),
            keys.rt_queue(conv),
            keys.rt_user_active(user_id),
            keys.rt_replies(self.pid),
        ]
        for attempt in range(RELEASE_ATTEMPTS):
            try:
                raw = await self._release(script_keys, [self.pid, conv, message_id])
            except Exception:
                if attempt == RELEASE_ATTEMPTS - 1:
                    self.log.exception("conversation %s: releasing the reply mark failed", conv)
                    return None
                await asyncio.sleep(0.1 * 2**attempt)
            else:
                return _item(raw) if raw else None
        return None

    async def active_conversations(self, user_id: str) -> list[str]:
        owners = await self._kv.hgetall(keys.rt_user_active(user_id))
        live = self.peers | {self.pid}
        shared = [c.decode() for c, p in owners.items() if p.decode() in live]
        return shared + [c for c in self._fallback.active_of(user_id) if c not in shared]

    def cancel_elsewhere(self, user_id: str, message_id: str) -> None:
        self.send("cancel", user_id, message_id)

    def _on_cancel(self, origin: str, args: list[Any]) -> None:
        self.inbound.cancel_reply(args[0], args[1])

    def reattach_elsewhere(self, user_id: str, socket_id: int, named: list[str]) -> None:
        self.send("resync", user_id, socket_id, named)

    def _on_resync(self, origin: str, args: list[Any]) -> None:
        user_id, socket_id, named = args
        found = self.inbound.reattach_events(user_id, named)
        if found:
            # on the bus after this process's earlier events of those replies, before
            # its later ones: the socket gets each chunk once
            self.send("to", origin, socket_id, user_id, found)

    def _on_to_socket(self, origin: str, args: list[Any]) -> None:
        pid, socket_id, user_id, found = args
        if pid != self.pid:
            return
        socket = self._hub.client(user_id, socket_id)
        if socket is not None:
            for event in found:
                socket.send_frame(events.frame(event))


def _item_json(item: QueuedReply) -> str:
    return orjson.dumps([item.user_id, item.conversation_id, item.content]).decode()


def _item(raw: bytes) -> QueuedReply:
    user_id, conversation_id, content = orjson.loads(raw)
    return QueuedReply(user_id, conversation_id, content)
