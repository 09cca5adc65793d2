"""Several processes behaving as one server, through Redis (issue 5 item 6).

Used only when the KV store is Redis; with the in-memory store one process does it all and
nothing here runs. Each process has a random id, a liveness entry in ``rt:procs`` (a sorted
set scored by expiry, refreshed by a periodic beat) and ONE subscription (``rt:all``).

- Bus: everything a process tells the others goes through one ordered publisher (events
  queued during a publish go out together in the next one), and only when another live
  process exists. User events are broadcast; each process delivers them to its own sockets
  of that user (encoded once per process).
- Presence: ``rt:presence:<user>`` counts the user's sockets per process, so "no socket
  anywhere" (offline queue) is decided across processes.
- Agents: ``rt:agents`` maps agent -> process; every process mirrors it (``up``/``down``
  messages) so the REST hooks answer without a round trip.
- Replies: ``rt:active:<conv>`` (the process running the conversation's reply) and
  ``rt:queue:<conv>`` (waiting messages), claimed and released by Lua scripts: two
  processes never start two replies in one conversation (quirk Q07) and the queue drains
  in order. A reply runs in the agent's process (a ``run`` hand-over), which stores it,
  streams it and drains the queue. ``rt:replies:<proc>`` lists the replies a process runs:
  when it dies, the first live process to notice claims them, fails them with "Agent
  disconnected" and releases their conversations.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from arinova.realtime import events

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from arinova.hooks import Skill
    from arinova.kv.redis import RedisKV
    from arinova.realtime.pipeline import QueuedReply
    from arinova.realtime.service import RealtimeService

CHANNEL = "rt:all"
PROCS = "rt:procs"
AGENTS = "rt:agents"
#: messages waiting for the publisher; beyond this the bus is down and they are dropped
MAX_PENDING = 100_000

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function live(p)
  local s = redis.call('ZSCORE', 'rt:procs', p)
  return s and tonumber(s) > now
end
local function owner(v) return string.match(v, '^([^|]*)') end
local function user(v) return string.match(v, '|(.*)$') end
"""

# KEYS active, queue, uactive; ARGV proc, user, conv, item, max queued
_CLAIM = (
    _NOW
    + """
local v = redis.call('GET', KEYS[1])
local item = ARGV[4]
if v then
  if live(owner(v)) then
    if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[5]) then return {'full', ''} end
    redis.call('RPUSH', KEYS[2], item)
    return {'queued', ''}
  end
  if redis.call('LLEN', KEYS[2]) > 0 then
    redis.call('RPUSH', KEYS[2], item)
    item = redis.call('LPOP', KEYS[2])
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[1])
return {'start', item}
"""
)

# KEYS active, uactive; ARGV new owner, user, conv
_HANDOVER = """
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])
return 1
"""

# KEYS active, queue, uactive, replies of proc; ARGV proc, conv, message id or ''
_RELEASE = (
    _NOW
    + """
if ARGV[3] ~= '' then redis.call('HDEL', KEYS[4], ARGV[3]) end
local v = redis.call('GET', KEYS[1])
if not v then return false end
local o = owner(v)
if o ~= ARGV[1] and live(o) then return false end
local nxt = redis.call('LPOP', KEYS[2])
if nxt then
  redis.call('SET', KEYS[1], ARGV[1] .. '|' .. user(v))
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
  return nxt
end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[3], ARGV[2])
return false
"""
)

# ARGV proc, ttl ms: beat; the other live processes and the dead ones
_BEAT = (
    _NOW
    + """
redis.call('ZADD', 'rt:procs', now + tonumber(ARGV[2]), ARGV[1])
local alive = redis.call('ZRANGEBYSCORE', 'rt:procs', '(' .. now, '+inf')
local dead = redis.call('ZRANGEBYSCORE', 'rt:procs', '-inf', now)
return {alive, dead}
"""
)

# ARGV dead proc: the first caller takes its replies and agents
_CLAIM_DEAD = """
if redis.call('ZREM', 'rt:procs', ARGV[1]) == 0 then return false end
local key = 'rt:replies:' .. ARGV[1]
local replies = redis.call('HVALS', key)
redis.call('DEL', key)
local agents = {}
local all = redis.call('HGETALL', 'rt:agents')
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[1] then
    redis.call('HDEL', 'rt:agents', all[i])
    table.insert(agents, all[i])
  end
end
return {replies, agents}
"""

# ARGV agent: its process, if live
_AGENT_WHERE = (
    _NOW
    + """
local p = redis.call('HGET', 'rt:agents', ARGV[1])
if p and live(p) then return p end
return false
"""
)

# ARGV agent, proc
_AGENT_DOWN = """
if redis.call('HGET', 'rt:agents', ARGV[1]) == ARGV[2] then
  redis.call('HDEL', 'rt:agents', ARGV[1])
  return 1
end
return 0
"""

Handler = Callable[[str, list[Any]], None]


class Cluster:
    def __init__(self, service: RealtimeService, kv: RedisKV) -> None:
        self.service = service
        self.kv = kv
        self.redis: Redis = kv.client
        self.log = logging.getLogger("arinova.realtime.cluster")
        self.pid = uuid.uuid4().hex[:16]
        #: the other live processes, as of the last beat
        self.peers: frozenset[str] = frozenset()
        #: agent id -> (process, skills), for agents connected to other processes
        self.remote_agents: dict[str, tuple[str, list[Skill]]] = {}
        self._pending: list[list[Any]] = []
        self._publishing = False
        #: the publisher's own connection (one PUBLISH in flight at a time): no pool
        #: round per message
        self._publisher: Redis | None = None
        self._beat: asyncio.Task[None] | None = None
        #: set once subscribed and the first beat is done
        self._ready = asyncio.Event()
        self._claim = self.redis.register_script(_CLAIM)
        self._handover = self.redis.register_script(_HANDOVER)
        self._release = self.redis.register_script(_RELEASE)
        self._beat_script = self.redis.register_script(_BEAT)
        self._claim_dead = self.redis.register_script(_CLAIM_DEAD)
        self._agent_down = self.redis.register_script(_AGENT_DOWN)
        self._agent_where = self.redis.register_script(_AGENT_WHERE)
        self._handlers: dict[str, Handler] = {
            "e": self._on_events,
            "hello": self._on_hello,
            "up": self._on_agent_up,
            "down": self._on_agent_down,
            "run": self._on_run,
            "cancel": self._on_cancel,
            "kick": self._on_kick,
            "resync": self._on_resync,
        }

    # -- life --------------------------------------------------------------------------
    async def start(self) -> None:
        """Subscribe and beat once; with Redis unreachable the process still starts
        (the beat loop keeps trying) and works alone until Redis answers."""
        try:
            await self.kv.subscribe(CHANNEL, self._on_message)
            await self.beat()
            agents = await self.redis.hgetall(AGENTS)
            for agent_id, pid in agents.items():
                pid_s = _text(pid)
                if pid_s in self.peers:
                    self.remote_agents.setdefault(_text(agent_id), (pid_s, []))
            self.send("hello")
        except Exception:
            self.log.warning("cluster start: Redis unavailable", exc_info=True)
        finally:
            self._ready.set()
            self._beat = asyncio.get_running_loop().create_task(self._beat_loop())

    async def ready(self) -> None:
        """Wait for ``start`` (a process's first reply must know the other processes)."""
        async with asyncio.timeout(5):
            await self._ready.wait()

    async def stop(self) -> None:
        beat, self._beat = self._beat, None
        if beat is not None:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _beat_loop(self) -> None:
        period = self.service.config.process_beat_s
        while True:
            await asyncio.sleep(period)
            try:
                if self.service.state.kv is not self.kv:
                    return  # the state closed or reopened: the process is stopping
                await self.beat()
            except asyncio.CancelledError:
                raise
            except RuntimeError:
                return  # the state closed: the process is stopping
            except Exception:
                self.log.warning("cluster beat failed", exc_info=True)

    async def beat(self) -> None:
        ttl_ms = int(self.service.config.process_ttl_s * 1000)
        alive, dead = await self._beat_script(args=[self.pid, ttl_ms])
        self.peers = frozenset(p.decode() for p in alive) - {self.pid}
        for pid in dead:
            await self._take_over(pid.decode())

    async def _take_over(self, dead: str) -> None:
        claimed = await self._claim_dead(args=[dead])
        if not claimed:
            return
        replies, agents = claimed
        self.log.warning("process %s is gone: failing its %d replies", dead, len(replies))
        for agent_id in agents:
            self.send("down", agent_id.decode(), dead)
        for raw in replies:
            user_id, conversation_id, message_id, seq = orjson.loads(raw)
            try:
                await self.service.pipeline.fail_orphan(
                    user_id, conversation_id, message_id, seq, events.AGENT_DISCONNECTED
                )
            except Exception:
                self.log.exception("failing reply %s of a dead process", message_id)

    # -- the bus -----------------------------------------------------------------------
    def send(self, kind: str, *args: Any) -> None:
        if not self.peers and kind not in ("hello", "down"):
            return
        if len(self._pending) >= MAX_PENDING:
            self.log.warning("cluster bus is backed up; a message is dropped")
            return
        self._pending.append([kind, *args])
        if not self._publishing:
            self._publishing = True
            self.service.spawn(self._publish())

    async def _publish(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                if self._publisher is None:
                    self._publisher = self.redis.client()
                try:
                    await self._publisher.publish(CHANNEL, orjson.dumps([self.pid, batch]))
                except Exception:
                    self.log.warning("cluster publish failed", exc_info=True)
                    publisher, self._publisher = self._publisher, None
                    with contextlib.suppress(Exception):
                        await publisher.aclose()
        finally:
            self._publishing = False

    def _on_message(self, channel: str, data: bytes) -> None:
        origin, batch = orjson.loads(data)
        if origin == self.pid:
            return
        for kind, *args in batch:
            handler = self._handlers.get(kind)
            if handler is not None:
                handler(origin, args)

    # -- users ---------------------------------------------------------------------------
    def user_event(self, user_id: str, event: str) -> None:
        self.send("e", user_id, event)

    def _on_events(self, origin: str, args: list[Any]) -> None:
        self.service.deliver_local(args[0], args[1])

    def presence(self, user_id: str, step: int) -> None:
        """Count the user's sockets here (field: process id); HINCRBY commutes, so
        opens and closes may land in any order."""
        self.service.spawn(self._count(user_id, self.pid, step))

    def foreground(self, user_id: str, step: int) -> None:
        """Count the user's visible sockets here (field: process id + ``:fg``)."""
        self.service.spawn(self._count(user_id, self.pid + ":fg", step))

    async def _count(self, user_id: str, field: str, step: int) -> None:
        key = f"rt:presence:{user_id}"
        count = await self.redis.hincrby(key, field, step)
        if count == 0:
            await self.redis.hdel(key, field)
        await self.redis.expire(key, 86_400)

    async def _counts_elsewhere(self, user_id: str) -> dict[str, int]:
        counts = await self.redis.hgetall(f"rt:presence:{user_id}")
        return {
            _text(f): int(n)
            for f, n in counts.items()
            if int(n) > 0 and _text(f).split(":")[0] in self.peers
        }

    async def present_elsewhere(self, user_id: str) -> bool:
        return any(":" not in f for f in await self._counts_elsewhere(user_id))

    async def foreground_elsewhere(self, user_id: str) -> int:
        counts = await self._counts_elsewhere(user_id)
        return sum(n for f, n in counts.items() if f.endswith(":fg"))

    # -- agents --------------------------------------------------------------------------
    async def agent_up(self, agent_id: str, skills: list[Skill]) -> None:
        await self.ready()
        await self.redis.hset(AGENTS, agent_id, self.pid)
        self.remote_agents.pop(agent_id, None)
        self.send("up", agent_id, skills)

    async def agent_down(self, agent_id: str) -> None:
        await self._agent_down(args=[agent_id, self.pid])
        self.send("down", agent_id, self.pid)

    def agent_process(self, agent_id: str) -> str | None:
        entry = self.remote_agents.get(agent_id)
        if entry is not None and entry[0] in self.peers:
            return entry[0]
        return None

    async def locate_agent(self, agent_id: str) -> str | None:
        """The live process holding the agent's socket: the mirror, else the registry
        (an agent that authenticated a moment ago may not be mirrored yet)."""
        pid = self.agent_process(agent_id)
        if pid is None:
            found = await self._agent_where(args=[agent_id])
            if found:
                pid = _text(found)
                self.peers = self.peers | {pid}  # live, though its hello is still on its way
        return None if pid == self.pid else pid

    def agent_skills(self, agent_id: str) -> list[Skill] | None:
        entry = self.remote_agents.get(agent_id)
        if entry is not None and entry[0] in self.peers:
            return list(entry[1])
        return None

    def _on_agent_up(self, origin: str, args: list[Any]) -> None:
        agent_id, skills = args
        self.remote_agents[agent_id] = (origin, skills)
        self.service.agent_replaced_elsewhere(agent_id)

    def _on_agent_down(self, origin: str, args: list[Any]) -> None:
        agent_id, pid = args
        entry = self.remote_agents.get(agent_id)
        if entry is not None and entry[0] == pid:
            del self.remote_agents[agent_id]

    def _on_hello(self, origin: str, args: list[Any]) -> None:
        self.peers = self.peers | {origin}
        for agent_id, handler in self.service.hub.agents.items():
            if handler.open:
                self.send("up", agent_id, handler.skills)

    def kick(self, agent_id: str, code: int, reason: str) -> None:
        self.send("kick", agent_id, code, reason)

    def _on_kick(self, origin: str, args: list[Any]) -> None:
        agent_id, code, reason = args
        handler = self.service.hub.agents.get(agent_id)
        if handler is not None:
            handler.close(code, reason)

    # -- replies -------------------------------------------------------------------------
    async def claim(self, item: QueuedReply) -> QueuedReply | bool | None:
        """The reply to start now (this one, or an older one left by a dead process),
        None when queued, False when the queue is full."""
        await self.ready()
        conv = item.conversation_id
        status, raw = await self._claim(
            keys=[f"rt:active:{conv}", f"rt:queue:{conv}", f"rt:uactive:{item.user_id}"],
            args=[
                self.pid,
                item.user_id,
                conv,
                _item_json(item),
                self.service.config.max_queued_replies,
            ],
        )
        if status == b"queued":
            return None
        if status == b"full":
            return False
        return _item(raw)

    async def hand_over(self, item: QueuedReply, pid: str) -> None:
        """Give the conversation's mark to the agent's process and ask it to run the reply
        (if that process dies first, the mark is free: its owner is not live)."""
        conv = item.conversation_id
        await self._handover(
            keys=[f"rt:active:{conv}", f"rt:uactive:{item.user_id}"],
            args=[pid, item.user_id, conv],
        )
        self.send("run", pid, _item_json(item))

    def _on_run(self, origin: str, args: list[Any]) -> None:
        pid, raw = args
        if pid == self.pid:
            self.service.pipeline.run_handed_over(_item(raw.encode()))

    async def release(
        self, user_id: str, conversation_id: str, message_id: str
    ) -> QueuedReply | None:
        raw = await self._release(
            keys=[
                f"rt:active:{conversation_id}",
                f"rt:queue:{conversation_id}",
                f"rt:uactive:{user_id}",
                f"rt:replies:{self.pid}",
            ],
            args=[self.pid, conversation_id, message_id],
        )
        return _item(raw) if raw else None

    async def reply_started(
        self, user_id: str, conversation_id: str, message_id: str, seq: int
    ) -> None:
        value = orjson.dumps([user_id, conversation_id, message_id, seq])
        try:
            await self.redis.hset(f"rt:replies:{self.pid}", message_id, value)
        except Exception:
            # the reply runs; only its recovery, should this process die, is lost
            self.log.warning("reply %s: not listed in Redis", message_id, exc_info=True)

    async def active_conversations(self, user_id: str) -> list[str]:
        owners = await self.redis.hgetall(f"rt:uactive:{user_id}")
        live = self.peers | {self.pid}
        return [_text(c) for c, p in owners.items() if _text(p) in live]

    async def adopt(self, user_id: str, conversation_id: str) -> None:
        """Take the conversation's mark (its owner died) so releasing it drains its queue."""
        await self._handover(
            keys=[f"rt:active:{conversation_id}", f"rt:uactive:{user_id}"],
            args=[self.pid, user_id, conversation_id],
        )

    def cancel(self, user_id: str, message_id: str) -> None:
        self.send("cancel", user_id, message_id)

    def _on_cancel(self, origin: str, args: list[Any]) -> None:
        self.service.pipeline.cancel_local(args[0], args[1])

    def resync(self, user_id: str) -> None:
        self.send("resync", user_id)

    def _on_resync(self, origin: str, args: list[Any]) -> None:
        self.service.sync.reattach(args[0])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _item_json(item: QueuedReply) -> str:
    return orjson.dumps([item.user_id, item.conversation_id, item.content]).decode()


def _item(raw: bytes) -> QueuedReply:
    from arinova.realtime.pipeline import QueuedReply

    user_id, conversation_id, content = orjson.loads(raw)
    return QueuedReply(user_id, conversation_id, content)
