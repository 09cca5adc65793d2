"""``RedisCoordinator``: several processes (on one or many machines) acting as one server.

Each process has a random id, a liveness entry in ``{rt}:procs`` (a sorted set scored by
expiry, refreshed by a periodic beat) and one subscription to the bus.

- Bus: what a process tells the others (``bus.py``): ordered, numbered batches on one
  connection of its own, a user's events routed to the processes holding the user's sockets
  (``rt:u:<user>``), the rest on ``rt:all``; the writes of ``stream:<id>`` ride in them.
- Presence: ``rt:presence:<user>`` counts the user's visible sockets per process, so
  "visible anywhere" (push) is decided across processes.
- Agents: ``{rt}:agents`` maps agent -> process; every process mirrors it (``up``/``down``
  messages) so the REST hooks answer without a round trip. An agent whose socket moves to
  another process keeps its tasks where they run: the new socket's events for them are
  forwarded there (``agent``), and they fail when the agent's ``down`` comes from the
  process holding it. Each registration takes a number (``{rt}:agent_serial``) that goes
  with its ``up``: of two sockets of one agent, the later registered stays, whichever
  ``up`` the bus delivers last.
- Replies: ``{rt}:active:<conv>`` (the mark: the conversation is busy, and whose it is) and
  ``{rt}:queue:<conv>`` (waiting messages), claimed and released by Lua scripts, so two
  processes never start two replies in one conversation (quirk Q07) and the queue drains
  in order.

Ownership of a conversation. A mark exists only while a live owner holds it. It is
written with a TTL (``MARK_TTL_PROCESS_TTLS`` process TTLs) by its owner alone, never on
another process's behalf, and the owner's beat refreshes, in the beat's one round trip,
the marks this process tracks: those of the replies it runs or is about to run (claimed,
next in the queue, accepted, adopted) and of its hand-overs not yet accepted. A mark its
owner does not track (a hand-over lost on the bus, a release that never reached Redis, a
process that stopped) expires; a claim that finds the mark gone or its owner dead starts
the reply, behind the ones already waiting. Each mark carries a token, so a release, a
refresh or a hand-over touches only the mark it took, never a later one of the same
conversation.

Hand-over. A reply runs in the process holding the agent's socket. The giver keeps the
mark in its own name and asks that process to take it (``run``, sent again every beat
until taken): the receiver swaps the giver's mark for its own (same token), says so
(``took``, again for every repeated ``run`` of a token it took lately) and only then runs
the reply. The giver looks at the mark every beat. Once it is the receiver's, or the
receiver said it took it, the reply is the receiver's. When the receiver is not live, or
has not taken the mark within a mark TTL, the giver swaps the mark back (a late receiver
then finds it changed) and the pipeline answers the message itself (the offline-agent
reply, or the reply run here if the agent's socket is here now), then releases the
conversation so its queue moves on. The mark is what both processes change atomically,
so a lost ``run`` is sent again and a duplicate is harmless. A mark that is neither the
giver's nor the receiver's is either a reply taken, run and ended already (the
receiver's ``took`` is on the way) or a mark lost (Redis lost its data, or the mark
expired while beats failed) before the receiver took it: with no ``took`` within
``TOOK_WAIT_BEATS`` beats of asking again, the giver claims the conversation again for the
message, which then runs or queues as if just sent. Beats while the bus is rejoining (made
again less than ``REJOIN_S`` ago: a ``took`` may be unheard because the processes have not
subscribed again) do not count, up to a bound past the hand-over's own.

``{rt}:replies:<proc>`` lists the replies a process streams and ``{rt}:marks:<proc>`` the
marks it holds: when it dies, the first live process to notice claims both, fails the
streaming replies ("Agent disconnected") and releases every one of its conversations, so
a queue behind a dead process's claim or hand-over moves on.

While Redis is unreachable the process works alone: a claim (and the search for the
agent's process) that Redis certainly did not run is made again until ``REFUSED_RETRY_S``
after the last beat that reached Redis, so that a restart does not answer a message as if
its agent were offline; a claim that still fails takes this process's own lock (a
hand-over is then impossible: the reply is answered here), and a release that fails is
tried again after the next beat that reaches Redis.

Redis losing everything (a restart without persistence) empties liveness, marks, queues
and the agent registry. Replies running go on and end (their release finds no mark; until
then a new message in their conversation may start a second reply beside them); the
messages that were queued are lost with the queue. Each process sees at its next beat that
its liveness entry is not the one it wrote: it lists its agents again and takes the
processes it knew for live during one process TTL (they have not beaten yet), so bus
messages and agent lookups do not stop meanwhile. A script writing a mark for a process
also writes that process's liveness entry if it has none, so a fresh mark never looks
dead. New messages claim fresh marks and are answered. A hand-over whose mark was lost
is claimed again (see Hand-over).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from arinova.bounded import BoundedMap
from arinova.kv import keys
from arinova.kv.base import never_ran
from arinova.kv.redis import COMMAND_TIMEOUT_S
from arinova.realtime import events, scripts
from arinova.realtime.bus import REJOIN_S, Bus, BusHandler
from arinova.realtime.coordinator import FULL, QUEUED, Inbound, QueuedReply, RunningReply
from arinova.realtime.local import ReplyLocks
from arinova.realtime.validate import is_uuid

if TYPE_CHECKING:
    from arinova.hooks import Skill
    from arinova.kv.redis import RedisKV
    from arinova.metrics import Metrics
    from arinova.realtime.coordinator import StreamText, TextSource
    from arinova.realtime.hub import Hub
    from arinova.realtime.offline import OfflineQueue
    from arinova.realtime.tasks import Background
    from arinova.settings import RealtimeSettings

_T = TypeVar("_T")

#: presence counts outlive a process that died without cleaning them this long
PRESENCE_TTL_S = 86_400
#: how long a new socket waits for its user's channel subscription before it goes on
FOLLOW_WAIT_S = 2.0
RELEASE_ATTEMPTS = 6
#: a conversation's mark lives this many process TTLs unless its owner's beat refreshes it;
#: a hand-over not taken within that long is taken back
MARK_TTL_PROCESS_TTLS = 3
#: releases kept for another try once Redis answers again (beyond: the marks expire)
MAX_UNRELEASED = 10_000
#: a hand-over whose mark is gone without a ``took`` from the receiver is taken for lost
#: after this many beats of asking again
TOOK_WAIT_BEATS = 3
#: how long after the last beat that reached Redis a reply's claim and the search for its
#: agent's process are tried again while Redis refuses them (a restart, a cluster electing
#: its masters) before this process answers alone, and the pause between tries
REFUSED_RETRY_S = 8.0
REFUSED_STEP_S = 0.2
#: the hand-over tokens remembered: taken here lately (to say ``took`` again), and those
#: whose ``took`` arrived before the giver looked
MAX_RECEIPTS = 4096


class RedisCoordinator:
    def __init__(
        self,
        kv: RedisKV,
        hub: Hub,
        offline: OfflineQueue,
        tasks: Background,
        config: RealtimeSettings,
        metrics: Metrics,
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
        #: per agent, the registration in ``{rt}:agents`` this process has in flight: the
        #: next registration and the unregistering wait for it (at most one per agent
        #: with a socket here)
        self._registering: dict[str, asyncio.Future[None]] = {}
        #: agent id -> the registration number of its socket here (``AGENT_UP``): an
        #: ``up`` of an older socket elsewhere, late on the bus, does not replace it
        self._serials: dict[str, int] = {}
        #: (process, agent, number) of the ``un`` just heard: the number of that process's
        #: ``up`` of the agent that follows it on the bus
        self._heard_number: tuple[str, str, int] | None = None
        #: replies started while Redis was unreachable
        self._fallback = ReplyLocks(config.max_queued_replies, metrics.replies_queued)
        #: the replies waiting, in the metrics: queued here, taken from the queue by the
        #: process that releases the conversation (the sum of the processes' counts)
        self._queued = metrics.replies_queued
        self._inbound: Inbound | None = None
        self._stopped = False
        #: user events received from the other processes (what routing saves is counted)
        self.events_received = 0
        #: when the last beat reached Redis, and before when no dead process is taken over
        #: (loop time)
        self._last_beat = 0.0
        #: when a beat last reached Redis (never: -inf)
        self._reached_at = float("-inf")
        self._take_over_after = 0.0
        self._beat_failed = False
        #: the score the last beat wrote in ``{rt}:procs``; whether a beat reached Redis yet
        self._score = 0
        self._joined = False
        #: the processes live before Redis lost this one's entry, taken for live until then
        self._presumed: frozenset[str] = frozenset()
        self._presumed_until = 0.0
        #: conversation -> the mark this process holds there (see the module docstring);
        #: one per conversation with a reply here or handed over from here
        self._marks: dict[str, str] = {}
        #: message id -> the mark of its reply, from ``reply_started`` to ``release``
        self._bound: dict[str, str] = {}
        #: conversation -> (user, message id, mark) of a release Redis did not take
        self._unreleased: dict[str, tuple[str, str, str]] = {}
        #: hand-over tokens this process took lately -> their giver
        self._taken: BoundedMap[str, str] = BoundedMap(MAX_RECEIPTS)
        #: tokens of this process's hand-overs whose receiver said ``took``
        self._took: BoundedMap[str, str] = BoundedMap(MAX_RECEIPTS)
        self._mark_ttl_ms = int(config.process_ttl_s * MARK_TTL_PROCESS_TTLS * 1000)
        self._beat: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._claim = kv.script(scripts.CLAIM)
        self._swap = kv.script(scripts.SWAP)
        self._adopt_script = kv.script(scripts.ADOPT)
        self._release = kv.script(scripts.RELEASE)
        self._beat_script = kv.script(scripts.BEAT)
        self._claim_dead = kv.script(scripts.CLAIM_DEAD)
        self._active_of = kv.script(scripts.ACTIVE_OF)
        self._register = kv.script(scripts.REGISTER)
        self._agent_up = kv.script(scripts.AGENT_UP)
        self._agent_down = kv.script(scripts.AGENT_DOWN)
        self._agent_where = kv.script(scripts.AGENT_WHERE)
        self._count_script = kv.script(scripts.COUNT)
        self._handlers: dict[str, BusHandler] = {
            "e": self._on_events,
            "hello": self._on_hello,
            "un": self._on_agent_number,
            "up": self._on_agent_up,
            "down": self._on_agent_down,
            "agent": self._on_agent_event,
            "run": self._on_run,
            "took": self._on_took,
            "cancel": self._on_cancel,
            "kick": self._on_kick,
            "resync": self._on_resync,
            "to": self._on_to_socket,
        }
        self._bus = Bus(
            kv.ordered_connection(),
            self.pid,
            lambda: bool(self.peers),
            self._handlers,
            offline,
            tasks,
            config,
            self.log,
            metrics,
        )

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
            self._kv.on_followed(self._bus.on_message)
            await self._kv.subscribe(keys.RT_CHANNEL, self._bus.on_message)
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
            # redis-py can swallow a cancellation that lands inside a command: the loop
            # also ends on ``_stopped``, and is cancelled again until it has
            while not beat.done():
                beat.cancel()
                await asyncio.wait([beat], timeout=1.0)
            with contextlib.suppress(asyncio.CancelledError):
                beat.result()
        await self._bus.close()

    async def _while_refused(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """``call()``, made again while Redis refuses it, until ``REFUSED_RETRY_S`` after
        the last beat that reached Redis (a Redis long gone is not waited for)."""
        loop = asyncio.get_running_loop()
        until = self._reached_at + REFUSED_RETRY_S
        while True:
            try:
                return await call()
            except Exception as exc:
                if self._stopped or not never_ran(exc) or loop.time() + REFUSED_STEP_S > until:
                    raise
            await asyncio.sleep(REFUSED_STEP_S)

    async def _ready_wait(self) -> None:
        async with asyncio.timeout(5):
            await self._ready.wait()

    async def _beat_loop(self) -> None:
        period = self._config.process_beat_s
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
        """Refresh this process's liveness entry and the marks it holds (one round trip,
        O(marks)); then take over the dead processes."""
        ttl = self._config.process_ttl_s
        marks = list(self._marks.items())
        script_keys = [keys.RT_PROCS]
        script_keys += [keys.rt_active(conv) for conv, _ in marks]
        script_keys += [keys.rt_user_active(_user(mark)) for _, mark in marks]
        args: list[str | int | bytes] = [self.pid, int(ttl * 1000), self._mark_ttl_ms, self._score]
        args += [mark for _, mark in marks]
        alive, dead, score, fresh = await self._beat_script(script_keys, args)
        now = asyncio.get_running_loop().time()
        if self._beat_failed and now - self._last_beat > ttl:
            # this process was cut off from Redis for a TTL, as the others may have been (a
            # stall): it gives them time to beat again before taking any of them over, and
            # takes them for live meanwhile (their entries may have expired; what is sent to
            # them on the bus goes on)
            self._take_over_after = now + 2 * ttl + COMMAND_TIMEOUT_S
            self._presumed, self._presumed_until = self.peers, self._take_over_after
        self._beat_failed = False
        self._last_beat = self._reached_at = now
        self._score = int(score)
        gone = {p.decode() for p in dead}
        peers = frozenset(p.decode() for p in alive) - {self.pid}
        if fresh and self._joined:
            self.log.warning("cluster: Redis had lost this process's liveness entry; rejoining")
            self._serials.clear()  # the counter started over: numbers before do not compare
            self._presumed, self._presumed_until = self.peers, now + ttl
            self._tasks.spawn(self._register_agents())
        self._joined = True
        if now < self._presumed_until:
            # an expired entry counts as gone only once take-overs may start
            peers |= self._presumed if now < self._take_over_after else self._presumed - gone
        self.peers = peers
        self._bus.forget_all_but(self.peers)
        self._retry_releases()
        if now < self._take_over_after:
            return
        for pid in gone:
            await self._take_over(pid)

    async def _register_agents(self) -> None:
        """List this process's agents again in ``{rt}:agents`` (Redis lost it, or another
        process took this one for dead and removed them)."""
        here = [agent_id for agent_id, socket in self._hub.agents.items() if socket.open]
        if here:
            await self._register([keys.RT_AGENTS], [self.pid, *here])

    async def _take_over(self, dead: str) -> None:
        claimed = await self._claim_dead(
            [keys.RT_PROCS, keys.RT_AGENTS, keys.rt_replies(dead), keys.rt_marks(dead)], [dead]
        )
        if not claimed:
            return
        replies, agents, marks = claimed
        if replies or agents or marks:
            self.log.warning("process %s is gone: failing its %d replies", dead, len(replies))
        else:  # a process that stopped cleanly (a restart's drained worker) left nothing
            self.log.info("process %s is gone; it held nothing", dead)
        for agent_id in agents:
            self.send("down", agent_id.decode(), dead)
            self._on_agent_down(self.pid, [agent_id.decode(), dead])  # the bus skips its sender
        failed: set[str] = set()
        for raw in replies:
            user_id, conversation_id, message_id, seq = orjson.loads(raw)
            failed.add(conversation_id)
            reply = RunningReply(user_id, conversation_id, message_id, seq)
            try:
                self._bound[message_id] = await self._adopt(user_id, conversation_id)
                await self.inbound.fail_orphan(reply, events.AGENT_DISCONNECTED)
            except Exception:
                self.log.exception("failing reply %s of a dead process", message_id)
            finally:
                self._bound.pop(message_id, None)
        # its other conversations: claimed, or handed over and not taken yet
        for raw_conversation, raw_mark in zip(marks[::2], marks[1::2], strict=True):
            conversation_id = raw_conversation.decode()
            if conversation_id in failed:
                continue
            user_id = _user(raw_mark.decode())
            try:
                if await self._adopt(user_id, conversation_id):
                    following = await self.release(user_id, conversation_id, "")
                    if following is not None:
                        self.inbound.run_reply(following)
            except Exception:
                self.log.exception("releasing conversation %s of a dead process", conversation_id)

    # -- the bus -------------------------------------------------------------------------
    def send(self, kind: str, *args: Any) -> None:
        """A message to every other process (with none, only what a starting or dying
        one tells)."""
        if self.peers or kind in ("hello", "down"):
            self._bus.send_all([kind, *args])

    # -- delivery ------------------------------------------------------------------------
    def emit(self, user_id: str, event: str, *, offline: bool = True) -> None:
        hub = self._hub
        # the frame only for sockets here: with the user elsewhere, only the bus carries it
        here = user_id in hub.users and hub.deliver(user_id, events.frame(event))
        if self.peers:
            self._bus.send_to_user(
                user_id, ["e", user_id, event], event if offline and not here else None
            )
        elif not here and offline:
            self._tasks.spawn(self._offline.push(user_id, event))

    def _on_events(self, origin: str, args: list[Any]) -> None:
        user_id, event = args
        self.events_received += 1
        self._hub.deliver(user_id, events.frame(event))

    def stream_text(self, message_id: str, source: TextSource) -> StreamText:
        return self._bus.stream_text(message_id, source)

    # -- presence ------------------------------------------------------------------------
    def user_online(self, user_id: str) -> None:
        self._kv.follow(keys.rt_user_channel(user_id))

    def user_offline(self, user_id: str) -> None:
        channel = keys.rt_user_channel(user_id)
        self._kv.unfollow(channel)
        self._bus.forget_channel(channel)

    async def user_reachable(self, user_id: str) -> None:
        channel = keys.rt_user_channel(user_id)
        if not await self._kv.followed(channel, FOLLOW_WAIT_S):
            self.log.debug("cluster: %s not subscribed in %.0f s; going on", channel, FOLLOW_WAIT_S)

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
        previous = self._registering.get(agent_id)
        registered = asyncio.get_running_loop().create_future()
        self._registering[agent_id] = registered
        try:
            if previous is not None:
                await asyncio.shield(previous)
            await self._ready_wait()
            serial = await self._agent_up(
                [keys.RT_AGENTS, keys.RT_AGENT_SERIAL], [agent_id, self.pid]
            )
            self._serials[agent_id] = int(serial)
        except Exception:
            self._serials.pop(agent_id, None)
            self.log.warning(
                "agent %s: registering across processes failed", agent_id, exc_info=True
            )
        finally:
            registered.set_result(None)
            if self._registering.get(agent_id) is registered:
                del self._registering[agent_id]
        self.remote_agents.pop(agent_id, None)
        self._send_up(agent_id, skills)

    def _send_up(self, agent_id: str, skills: list[Skill]) -> None:
        """``up``, after its registration number in an ``un`` of its own (a process of an
        older version passes over ``un`` and reads ``up`` as it always did)."""
        number = self._serials.get(agent_id)
        if number is not None:
            self.send("un", agent_id, number)
        self.send("up", agent_id, skills)

    def agent_down(self, agent_id: str) -> None:
        self._tasks.spawn(self._agent_gone(agent_id))

    async def _agent_gone(self, agent_id: str) -> None:
        # a socket that closes while its registration is on its way: the entry is removed
        # after it is written, never before (it would outlive this process)
        registering = self._registering.get(agent_id)
        if registering is not None:
            await asyncio.shield(registering)
        if self._hub.connected_agent(agent_id) is not None:
            return  # a newer socket of the agent is here: it stays registered
        self._serials.pop(agent_id, None)
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
            found = await self._while_refused(
                lambda: self._agent_where([keys.RT_PROCS, keys.RT_AGENTS], [agent_id])
            )
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

    def _on_agent_number(self, origin: str, args: list[Any]) -> None:
        agent_id, number = args
        self._heard_number = (origin, agent_id, int(number))

    def _on_agent_up(self, origin: str, args: list[Any]) -> None:
        """Another process holds the agent's socket now: one here is replaced, unless it
        registered after that one (an ``up`` late on the bus; its sender replaces its own
        socket when it hears this one's). Without numbers (Redis unreachable at either
        registration, a process of an older version) the later ``up`` wins."""
        agent_id, skills = args[:2]
        heard, self._heard_number = self._heard_number, None
        theirs = heard[2] if heard is not None and heard[:2] == (origin, agent_id) else None
        ours = self._serials.get(agent_id)
        if (
            theirs is not None
            and ours is not None
            and theirs < ours
            and self._hub.connected_agent(agent_id) is not None
        ):
            return
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
                self._send_up(agent_id, socket.skills)

    def _on_kick(self, origin: str, args: list[Any]) -> None:
        agent_id, code, reason = args
        self.inbound.close_agent(agent_id, code, reason)

    # -- replies -------------------------------------------------------------------------
    async def claim(self, item: QueuedReply) -> QueuedReply | str:
        conv = item.conversation_id
        mark = self._new_mark(item.user_id)
        try:
            await self._ready_wait()
            status, raw = await self._while_refused(
                lambda: self._claim(
                    [
                        keys.RT_PROCS,
                        keys.rt_active(conv),
                        keys.rt_queue(conv),
                        keys.rt_user_active(item.user_id),
                        keys.rt_marks(self.pid),
                        keys.rt_outcome(mark),
                    ],
                    [
                        self.pid,
                        conv,
                        _item_json(item),
                        self._config.max_queued_replies,
                        mark,
                        *self._ttls(),
                    ],
                )
            )
        except Exception:
            self.log.warning(
                "conversation %s: shared reply mark unavailable; starting here",
                conv,
                exc_info=True,
            )
            return self._fallback.claim(item)
        if status == b"q":
            self._queued.inc()
            return QUEUED
        if status == b"f":
            return FULL
        self._marks[conv] = mark
        return _item(raw)

    async def hand_over(self, item: QueuedReply, process: str) -> bool:
        """Ask ``process`` (the agent's) to take the conversation's mark and run the reply;
        True once it has (or once the message is claimed again, its mark lost), False when
        it is not live or did not take it within a mark TTL (the mark is then this
        process's again, to answer the message and release it)."""
        conv = item.conversation_id
        given = self._marks.get(conv)
        if given is None or self._fallback.holds(conv):
            return False  # claimed while Redis was unreachable: nobody could take it
        loop = asyncio.get_running_loop()
        raw = _item_json(item)
        bound = self._mark_ttl_ms / 1000
        deadline = loop.time() + bound
        give_up = deadline + bound  # Redis unreachable: whether it was taken is unknown
        lost = False  # the mark was seen neither ours nor the receiver's
        unconfirmed = 0  # beats since, asked again with the bus up long enough for a ``took``
        while True:
            asked = process in self.peers and (loop.time() < deadline or lost)
            if asked:
                self.send("run", process, raw, given)
            await asyncio.sleep(self._config.process_beat_s)
            if self._stopped:
                return True  # stopping: the mark expires, or is taken over with this process
            if self._took.pop(given) is not None:
                self._untrack(conv, given)
                return True
            try:
                current = await self._kv.get(keys.rt_active(conv))
                if current is not None and current.decode() == _owned_by(given, process):
                    self._untrack(conv, given)
                    return True
                if current is None or current.decode() != given:
                    lost = True
                    # a beat without a ``run`` (the receiver not yet seen live again after
                    # Redis lost its data) is no beat the receiver could have answered
                    if asked and not self._bus.rejoining():
                        unconfirmed += 1
                    if unconfirmed <= TOOK_WAIT_BEATS and loop.time() < give_up + REJOIN_S:
                        continue
                    self._untrack(conv, given)
                    self.log.warning(
                        "conversation %s: the hand-over to %s lost its mark; claiming again",
                        conv,
                        process,
                    )
                    return await self._claim_again(item)
                if process in self.peers and loop.time() < deadline:
                    continue
                back = self._new_mark(item.user_id)
                if await self._swap_mark(conv, given, back):
                    self._marks[conv] = back
                    self.log.warning(
                        "conversation %s: process %s did not take the reply", conv, process
                    )
                    return False
            except Exception:
                if loop.time() >= give_up:
                    self.log.warning(
                        "conversation %s: hand-over to %s unconfirmed", conv, process, exc_info=True
                    )
                    return False

    async def _claim_again(self, item: QueuedReply) -> bool:
        """The message of a lost hand-over, claimed as if just sent: it (or the reply queued
        before it) runs, or it waits behind the conversation's reply. False only when the
        queue is full: the caller answers it."""
        start = await self.claim(item)
        if start == FULL:
            return False
        if start != QUEUED:
            assert isinstance(start, QueuedReply)
            self.inbound.run_reply(start)
        return True

    def _on_run(self, origin: str, args: list[Any]) -> None:
        pid, raw, given = args
        if pid != self.pid:
            return
        if self._taken.get(given) is not None:
            self.send("took", origin, given)  # taken already; the giver had not heard
            return
        self._tasks.spawn(self._accept(_item(raw.encode()), origin, given))

    def _on_took(self, origin: str, args: list[Any]) -> None:
        pid, given = args
        if pid == self.pid:
            self._took.put(given, origin)

    async def _accept(self, item: QueuedReply, giver: str, given: str) -> None:
        """Take the giver's mark, then run the reply (only one process ever takes it)."""
        taken = _owned_by(given, self.pid)
        if self._marks.get(item.conversation_id) == taken:
            return  # a repeated ``run`` while the first is being accepted
        try:
            accepted = await self._swap_mark(item.conversation_id, given, taken)
        except Exception:
            self.log.warning(
                "conversation %s: taking the reply failed; the giver asks again",
                item.conversation_id,
                exc_info=True,
            )
            return
        if accepted:
            self._marks[item.conversation_id] = taken
            self._taken.put(given, giver)
            self.send("took", giver, given)
            self.inbound.run_reply(item)

    async def _swap_mark(self, conversation_id: str, old: str, new: str) -> bool:
        taken = await self._swap(
            [
                keys.RT_PROCS,
                keys.rt_active(conversation_id),
                keys.rt_user_active(_user(new)),
                keys.rt_marks(_owner(old)),
                keys.rt_marks(_owner(new)),
            ],
            [old, new, conversation_id, *self._ttls()],
        )
        return bool(taken)

    async def _adopt(self, user_id: str, conversation_id: str) -> str:
        """Take a dead process's conversation so releasing it drains its queue: the mark,
        or '' when a live process holds the conversation."""
        mark = self._new_mark(user_id)
        adopted = await self._adopt_script(
            [
                keys.RT_PROCS,
                keys.rt_active(conversation_id),
                keys.rt_user_active(user_id),
                keys.rt_marks(self.pid),
            ],
            [self.pid, conversation_id, mark, *self._ttls()],
        )
        if not adopted:
            return ""
        self._marks[conversation_id] = mark
        return mark

    async def reply_started(self, reply: RunningReply) -> None:
        self._bound[reply.message_id] = self._marks.get(reply.conversation_id, "")
        value = orjson.dumps([reply.user_id, reply.conversation_id, reply.message_id, reply.seq])
        try:
            await self._kv.hset(keys.rt_replies(self.pid), reply.message_id, value)
        except Exception:
            # the reply runs; only its recovery, should this process die, is lost
            self.log.warning("reply %s: not listed in Redis", reply.message_id, exc_info=True)

    async def release(
        self, user_id: str, conversation_id: str, message_id: str
    ) -> QueuedReply | None:
        conv = conversation_id
        bound = self._bound.pop(message_id, None) if message_id else None
        if self._fallback.holds(conv):
            return self._fallback.release(conv)  # started while Redis was away
        mark = self._marks.get(conv, "") if bound is None else bound
        if mark and self._marks.get(conv) == mark:
            del self._marks[conv]  # not refreshed any more: released, or expiring
        for attempt in range(RELEASE_ATTEMPTS):
            try:
                return await self._release_mark(user_id, conv, message_id, mark)
            except Exception:
                if attempt == RELEASE_ATTEMPTS - 1:
                    self.log.warning(
                        "conversation %s: releasing the reply mark failed; trying again later",
                        conv,
                        exc_info=True,
                    )
                else:
                    await asyncio.sleep(0.1 * 2**attempt)
        self._keep_unreleased(user_id, conv, message_id, mark)
        return None

    async def _release_mark(
        self, user_id: str, conversation_id: str, message_id: str, mark: str
    ) -> QueuedReply | None:
        """Release ``mark`` (or a dead owner's; '' releases nothing of a live process's):
        the next queued reply, under a new mark of this process, or None."""
        following = self._new_mark(user_id)
        raw = await self._release(
            [
                keys.RT_PROCS,
                keys.rt_active(conversation_id),
                keys.rt_queue(conversation_id),
                keys.rt_user_active(user_id),
                keys.rt_replies(self.pid),
                keys.rt_marks(self.pid),
                keys.rt_outcome(following),
            ],
            [self.pid, conversation_id, message_id, mark, following, *self._ttls()],
        )
        if not raw:
            return None
        self._queued.dec()
        self._marks[conversation_id] = following
        return _item(raw)

    def _keep_unreleased(
        self, user_id: str, conversation_id: str, message_id: str, mark: str
    ) -> None:
        if len(self._unreleased) >= MAX_UNRELEASED:
            oldest = next(iter(self._unreleased))
            del self._unreleased[oldest]
            self.log.warning("conversation %s: release dropped; its mark expires", oldest)
        self._unreleased[conversation_id] = (user_id, message_id, mark)

    def _retry_releases(self) -> None:
        pending, self._unreleased = self._unreleased, {}
        for conversation_id, (user_id, message_id, mark) in pending.items():
            self._tasks.spawn(self._release_again(user_id, conversation_id, message_id, mark))

    async def _release_again(
        self, user_id: str, conversation_id: str, message_id: str, mark: str
    ) -> None:
        try:
            following = await self._release_mark(user_id, conversation_id, message_id, mark)
        except Exception:
            self._keep_unreleased(user_id, conversation_id, message_id, mark)
            return
        if following is not None:
            self.inbound.run_reply(following)

    async def active_conversations(self, user_id: str) -> list[str]:
        uactive = keys.rt_user_active(user_id)
        conversations = [c.decode() for c in await self._kv.hgetall(uactive)]
        shared: list[str] = []
        if conversations:
            found = await self._active_of(
                [keys.RT_PROCS, uactive, *(keys.rt_active(c) for c in conversations)],
                [self.pid, *conversations],
            )
            shared = [c.decode() for c in found]
        return shared + [c for c in self._fallback.active_of(user_id) if c not in shared]

    def _new_mark(self, user_id: str) -> str:
        return f"{self.pid}|{user_id}|{uuid.uuid4().hex[:12]}"

    def _untrack(self, conversation_id: str, mark: str) -> None:
        if self._marks.get(conversation_id) == mark:
            del self._marks[conversation_id]

    def _ttls(self) -> tuple[int, int]:
        """The mark TTL and the process TTL (ms), the scripts' last two arguments."""
        return self._mark_ttl_ms, int(self._config.process_ttl_s * 1000)

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
            # on the user's channel after this process's earlier events of those replies,
            # before its later ones: the socket gets each chunk once
            self._bus.send_to_user(user_id, ["to", origin, socket_id, user_id, found], None)

    def _on_to_socket(self, origin: str, args: list[Any]) -> None:
        pid, socket_id, user_id, found = args
        if pid != self.pid:
            return
        socket = self._hub.client(user_id, socket_id)
        if socket is not None:
            for event in found:
                socket.send_frame(events.frame(event))


def _owner(mark: str) -> str:
    return mark.split("|", 1)[0]


def _user(mark: str) -> str:
    return mark.split("|", 2)[1]


def _owned_by(mark: str, process: str) -> str:
    """The same mark (same token) in ``process``'s name."""
    return f"{process}|{mark.split('|', 1)[1]}"


def _item_json(item: QueuedReply) -> str:
    return orjson.dumps([item.user_id, item.conversation_id, item.content]).decode()


def _item(raw: bytes) -> QueuedReply:
    user_id, conversation_id, content = orjson.loads(raw)
    return QueuedReply(user_id, conversation_id, content)
