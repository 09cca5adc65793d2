"""``RealtimeService``: the realtime layer of one process. It owns the hub (who is
connected), the pipeline, sync, the offline queue and the rate limit, runs the one
periodic sweep of every socket and task timer, and is the ``Realtime`` the REST layer
calls (arinova/hooks.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from arinova.db.queries import realtime as q
from arinova.hooks import Skill
from arinova.ratelimit import MessageRateLimit
from arinova.realtime import events
from arinova.realtime.agent import AUTH_TIMEOUT
from arinova.realtime.cluster import Cluster
from arinova.realtime.config import RealtimeConfig
from arinova.realtime.hub import AgentTask, Hub
from arinova.realtime.offline import OfflineQueue
from arinova.realtime.pipeline import Pipeline, QueuedReply
from arinova.realtime.sync import Sync

if TYPE_CHECKING:
    from arinova.realtime.agent import AgentHandler
    from arinova.realtime.client import ClientHandler
    from arinova.state import AppState

HEARTBEAT_TIMEOUT = "Heartbeat timeout"
REPLACED = "Replaced by new connection"


class RealtimeService:
    def __init__(self, state: AppState, config: RealtimeConfig | None = None) -> None:
        self.state = state
        self.config = config or RealtimeConfig()
        self.log = logging.getLogger("arinova.realtime")
        self.hub = Hub()
        self.pipeline = Pipeline(self)
        self.sync = Sync(self)
        self._offline: OfflineQueue | None = None
        self._rate_limit: MessageRateLimit | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._sweep: asyncio.TimerHandle | None = None
        self._cluster: Cluster | None = None
        self._cluster_checked = False

    # -- shared state in the KV store (opened with the app state) ------------------------
    @property
    def offline(self) -> OfflineQueue:
        if self._offline is None:
            c = self.config
            self._offline = OfflineQueue(self.state.kv, c.offline_cap, c.offline_ttl_s, self.log)
        return self._offline

    @property
    def rate_limit(self) -> MessageRateLimit:
        if self._rate_limit is None:
            limit = self.state.settings.ws_message_rate_limit
            self._rate_limit = MessageRateLimit(
                self.state.kv, limit, self.config.max_fallback_rate_entries, self.log
            )
        return self._rate_limit

    @property
    def cluster(self) -> Cluster | None:
        """The other processes, when the KV store is Redis (started on first use: the
        state opens after the endpoints are built)."""
        if not self._cluster_checked:
            from arinova.kv.redis import RedisKV

            kv = self.state.kv
            self._cluster_checked = True
            if isinstance(kv, RedisKV):
                self._cluster = Cluster(self, kv)
                self.spawn(self._cluster.start())
        return self._cluster

    async def start(self) -> None:
        """Join the other processes now (call once the state is open); otherwise this
        happens on the first socket or REST hook, and the very first ``agent_connected``
        of a fresh process answers for this process only."""
        cluster = self.cluster
        if cluster is not None:
            await cluster.ready()

    async def stop(self) -> None:
        if self._cluster is not None:
            await self._cluster.stop()

    # -- background work -----------------------------------------------------------------
    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task whose failure is logged, never lost."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._work_done)

    def _work_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("realtime background work failed", exc_info=task.exception())

    # -- delivery to users ---------------------------------------------------------------
    def emit(self, user_id: str, event: str, *, offline: bool = True) -> None:
        """Send an event to every open socket of the user, encoded once; with none, keep
        it in the offline queue (unless ``offline`` is False)."""
        sockets = self.hub.users.get(user_id)
        if sockets:
            frame = events.frame(event)
            for handler in sockets:
                handler.send_frame(frame)
        cluster = self._cluster
        if cluster is not None and cluster.peers:
            cluster.user_event(user_id, event)
            if not sockets and offline:
                self.spawn(self._offline_unless_elsewhere(cluster, user_id, event))
        elif not sockets and offline:
            self.spawn(self.offline.push(user_id, event))

    async def _offline_unless_elsewhere(self, cluster: Cluster, user_id: str, event: str) -> None:
        try:
            elsewhere = await cluster.present_elsewhere(user_id)
        except Exception:
            self.log.warning("presence lookup failed; event queued offline", exc_info=True)
            elsewhere = False
        if not elsewhere:
            await self.offline.push(user_id, event)

    def deliver_local(self, user_id: str, event: str) -> None:
        """An event from another process: to this process's sockets of the user."""
        sockets = self.hub.users.get(user_id)
        if sockets:
            frame = events.frame(event)
            for handler in sockets:
                handler.send_frame(frame)

    async def deliver_pending(self, handler: ClientHandler) -> None:
        for event in await self.offline.take(handler.user_id):
            handler.send_frame(events.frame(event.decode()))

    # -- client sockets ------------------------------------------------------------------
    def client_opened(self, handler: ClientHandler) -> None:
        first = handler.user_id not in self.hub.users
        self.hub.add_client(handler)
        self._arm_sweep()
        cluster = self.cluster
        if first and cluster is not None:
            cluster.presence(handler.user_id, 1)

    def client_closed(self, handler: ClientHandler) -> None:
        visible = handler.visible
        self.hub.remove_client(handler)
        cluster = self._cluster
        if cluster is not None:
            if visible:
                cluster.foreground(handler.user_id, -1)
            if handler.user_id not in self.hub.users:
                cluster.presence(handler.user_id, -1)

    def set_visible(self, handler: ClientHandler, visible: bool) -> None:
        """``focus``: counted here, and across processes for the push trigger."""
        if visible != handler.visible:
            self.hub.set_visible(handler, visible)
            if self._cluster is not None:
                self._cluster.foreground(handler.user_id, 1 if visible else -1)

    async def active_conversations(self, user_id: str) -> list[str]:
        """The user's conversations with a reply in progress, in any process."""
        if self._cluster is not None:
            return await self._cluster.active_conversations(user_id)
        return self.hub.active_conversations_of(user_id)

    async def mark_read(self, user_id: str, conversation_id: str, seq: int) -> None:
        await self.state.db.execute(q.MARK_READ.sql, user_id, conversation_id, seq)

    # -- agent sockets -------------------------------------------------------------------
    def agent_opened(self, handler: AgentHandler) -> None:
        self.hub.unauthenticated.add(handler)
        self._arm_sweep()
        _ = self.cluster

    def agent_authenticated(self, handler: AgentHandler, agent_id: str) -> None:
        hub = self.hub
        hub.unauthenticated.discard(handler)
        handler.agent_id = agent_id
        previous = hub.agents.get(agent_id)
        hub.agents[agent_id] = handler
        if previous is not None and previous is not handler:
            previous.close(4409, REPLACED)

    async def agent_registered(self, agent_id: str, skills: list[Skill]) -> None:
        """With several processes: the agent's socket is known everywhere (before the
        agent hears ``auth_ok``, so a message sent right after finds it)."""
        if self._cluster is not None:
            try:
                await self._cluster.agent_up(agent_id, skills)
            except Exception:
                self.log.warning(
                    "agent %s: registering across processes failed", agent_id, exc_info=True
                )

    def agent_replaced_elsewhere(self, agent_id: str) -> None:
        """The agent authenticated in another process: this one's socket goes (4409)."""
        handler = self.hub.agents.get(agent_id)
        if handler is not None:
            handler.close(4409, REPLACED)

    def agent_closed(self, handler: AgentHandler) -> None:
        hub = self.hub
        hub.unauthenticated.discard(handler)
        agent_id = handler.agent_id
        if agent_id is not None and hub.agents.get(agent_id) is handler:
            del hub.agents[agent_id]
            self.pipeline.fail_agent_tasks(agent_id, events.AGENT_DISCONNECTED)
            if self._cluster is not None:
                self.spawn(self._cluster.agent_down(agent_id))

    async def agent_by_token(self, token: str) -> Any:
        return await self.state.db.fetchrow(q.AGENT_BY_TOKEN.sql, token)

    # -- push ----------------------------------------------------------------------------
    def push_reply(self, task: AgentTask, content: str) -> None:
        foreground = self.hub.foreground_sockets(task.user_id)
        cluster = self._cluster
        if cluster is not None and cluster.peers and not foreground:
            self.spawn(self._push_reply_shared(cluster, task, content))
            return
        self._push(task, content, foreground)

    async def _push_reply_shared(self, cluster: Cluster, task: AgentTask, content: str) -> None:
        try:
            foreground = await cluster.foreground_elsewhere(task.user_id)
        except Exception:
            self.log.warning("presence lookup failed; push decided locally", exc_info=True)
            foreground = 0
        self._push(task, content, foreground)

    def _push(self, task: AgentTask, content: str, foreground: int) -> None:
        try:
            self.state.push.notify_message_reply(
                task.user_id,
                task.agent_id,
                task.agent_name,
                task.conversation_id,
                content,
                foreground,
            )
        except Exception:
            self.log.exception("push trigger failed")

    # -- the one sweep -------------------------------------------------------------------
    def _arm_sweep(self) -> None:
        if self._sweep is None:
            loop = asyncio.get_running_loop()
            self._sweep = loop.call_later(self.config.sweep_interval_s, self._run_sweep)

    def _run_sweep(self) -> None:
        self._sweep = None
        try:
            self.sweep(time.monotonic())
        except Exception:
            self.log.exception("realtime sweep failed")
        if not self.hub.idle:
            self._arm_sweep()

    def sweep(self, now: float) -> None:
        config, hub = self.config, self.hub
        heartbeat = config.heartbeat_timeout_s
        for sockets in list(hub.users.values()):
            for client in list(sockets):
                if now - client.last_seen >= heartbeat:
                    client.close(4408, HEARTBEAT_TIMEOUT)
        for agent in list(hub.unauthenticated):
            if now - agent.opened_at >= config.agent_auth_timeout_s:
                hub.unauthenticated.discard(agent)
                agent.send_frame(events.auth_error(AUTH_TIMEOUT))
                agent.close(4408, AUTH_TIMEOUT)
        idle = config.task_idle_timeout_s
        for task in list(hub.tasks.values()):
            if now - task.last_activity >= idle:
                self.pipeline.fail(task, f"Task timed out (idle for {idle:g}s)")

    def tasks_running(self) -> int:
        return len(self._background)

    # -- arinova.hooks.Realtime ----------------------------------------------------------
    def agent_connected(self, agent_id: str) -> bool:
        if self.hub.connected_agent(agent_id) is not None:
            return True
        cluster = self.cluster
        return cluster is not None and cluster.agent_process(agent_id) is not None

    def agent_skills(self, agent_id: str) -> list[Skill] | None:
        handler = self.hub.connected_agent(agent_id)
        if handler is not None:
            return list(handler.skills)
        cluster = self.cluster
        return None if cluster is None else cluster.agent_skills(agent_id)

    async def disconnect_agent(self, agent_id: str, code: int, reason: str) -> None:
        handler = self.hub.agents.get(agent_id)
        if handler is not None:
            handler.close(code, reason)
        cluster = self.cluster
        if cluster is not None:
            cluster.kick(agent_id, code, reason)

    async def reply_to_stored_message(
        self, user_id: str, conversation_id: str, content: str
    ) -> None:
        await self.pipeline.submit(QueuedReply(user_id, conversation_id, content))
