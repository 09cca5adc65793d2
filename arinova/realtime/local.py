"""The coordinator of a server that is one process: everything in this process's memory."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from arinova.realtime import events
from arinova.realtime.coordinator import FULL, QUEUED, Inbound, QueuedReply, RunningReply
from arinova.realtime.streamcache import StreamCache

if TYPE_CHECKING:
    import logging

    from arinova.hooks import Skill
    from arinova.kv import KV
    from arinova.metrics import Count, Level, Metrics
    from arinova.realtime.coordinator import StreamText, TextSource
    from arinova.realtime.hub import Hub
    from arinova.realtime.offline import OfflineQueue
    from arinova.realtime.tasks import Background
    from arinova.settings import RealtimeSettings


class ReplyLocks:
    """One active reply per conversation and a bounded FIFO of the ones waiting, decided
    with no await between the check and the mark (quirk Q07)."""

    __slots__ = ("_active", "_max_queued", "_queued", "_queues")

    def __init__(self, max_queued: int, queued: Level) -> None:
        self._max_queued = max_queued
        #: the replies waiting, in the metrics
        self._queued = queued
        #: conversation id -> user id, while a reply is active in it
        self._active: dict[str, str] = {}
        #: conversation id -> replies waiting behind the active one
        self._queues: dict[str, deque[QueuedReply]] = {}

    def claim(self, item: QueuedReply) -> QueuedReply | str:
        conversation_id = item.conversation_id
        if conversation_id not in self._active:
            self._active[conversation_id] = item.user_id
            return item
        queue = self._queues.setdefault(conversation_id, deque())
        if len(queue) >= self._max_queued:
            return FULL
        queue.append(item)
        self._queued.inc()
        return QUEUED

    def holds(self, conversation_id: str) -> bool:
        return conversation_id in self._active

    def release(self, conversation_id: str) -> QueuedReply | None:
        queue = self._queues.get(conversation_id)
        if queue:
            item = queue.popleft()
            self._queued.dec()
            if not queue:
                del self._queues[conversation_id]
            self._active[conversation_id] = item.user_id
            return item
        self._queues.pop(conversation_id, None)
        self._active.pop(conversation_id, None)
        return None

    def active_of(self, user_id: str) -> list[str]:
        return [c for c, u in self._active.items() if u == user_id]


class LocalCoordinator:
    __slots__ = ("_config", "_hub", "_kv", "_locks", "_log", "_offline", "_stream_writes", "_tasks")

    def __init__(
        self,
        kv: KV,
        hub: Hub,
        offline: OfflineQueue,
        tasks: Background,
        config: RealtimeSettings,
        log: logging.Logger,
        metrics: Metrics,
    ) -> None:
        self._kv = kv
        self._hub = hub
        self._offline = offline
        self._tasks = tasks
        self._config = config
        self._log = log
        self._locks = ReplyLocks(config.max_queued_replies, metrics.replies_queued)
        self._stream_writes: Count = metrics.stream_cache_writes

    async def start(self, inbound: Inbound) -> None:
        return None

    async def stop(self) -> None:
        return None

    def emit(self, user_id: str, event: str, *, offline: bool = True) -> None:
        if not self._hub.deliver(user_id, events.frame(event)) and offline:
            self._tasks.spawn(self._offline.push(user_id, event))

    def stream_text(self, message_id: str, source: TextSource) -> StreamText:
        config = self._config
        return StreamCache(
            self._kv,
            message_id,
            source,
            config.stream_ttl_s,
            config.stream_cache_interval_s,
            self._tasks.spawn,
            self._log,
            self._stream_writes,
        )

    def user_online(self, user_id: str) -> None:
        return None

    def user_offline(self, user_id: str) -> None:
        return None

    async def user_reachable(self, user_id: str) -> None:
        return None

    def foreground(self, user_id: str, step: int) -> None:
        return None

    async def foreground_elsewhere(self, user_id: str) -> int:
        return 0

    async def agent_up(self, agent_id: str, skills: list[Skill]) -> None:
        return None

    def agent_down(self, agent_id: str) -> None:
        return None

    def agent_elsewhere(self, agent_id: str) -> list[Skill] | None:
        return None

    async def locate_agent(self, agent_id: str) -> str | None:
        return None

    def close_agent_elsewhere(self, agent_id: str, code: int, reason: str) -> None:
        return None

    def agent_event_elsewhere(self, agent_id: str, kind: str, task_id: str, value: str) -> None:
        return None  # every task of this server runs here: an unknown one is ignored

    async def claim(self, item: QueuedReply) -> QueuedReply | str:
        return self._locks.claim(item)

    async def hand_over(self, item: QueuedReply, process: str) -> bool:
        raise RuntimeError("a single process has no other process to hand a reply to")

    async def reply_started(self, reply: RunningReply) -> None:
        return None

    async def release(
        self, user_id: str, conversation_id: str, message_id: str
    ) -> QueuedReply | None:
        return self._locks.release(conversation_id)

    async def active_conversations(self, user_id: str) -> list[str]:
        return self._locks.active_of(user_id)

    def cancel_elsewhere(self, user_id: str, message_id: str) -> None:
        return None

    def reattach_elsewhere(self, user_id: str, socket_id: int, named: list[str]) -> None:
        return None
