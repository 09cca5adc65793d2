"""``RealtimeNode``: this process's realtime layer as the others see it — the REST layer
(``arinova.hooks.Realtime``) and the other processes (``Inbound``)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from arinova.realtime import events
from arinova.realtime.coordinator import QueuedReply

if TYPE_CHECKING:
    from arinova.hooks import Skill
    from arinova.realtime.coordinator import Coordinator, RunningReply
    from arinova.realtime.hub import Hub
    from arinova.realtime.offline import OfflineQueue
    from arinova.realtime.pipeline import Pipeline
    from arinova.realtime.sweep import Sweep
    from arinova.realtime.sync import Sync
    from arinova.realtime.tasks import Background

#: how long stopping waits for replies still being stored
STOP_DRAIN_S = 2.0
#: how often ``settle`` looks again
SETTLE_POLL_S = 0.05


class RealtimeNode:
    def __init__(
        self,
        hub: Hub,
        coordinator: Coordinator,
        pipeline: Pipeline,
        sync: Sync,
        offline: OfflineQueue,
        sweep: Sweep,
        tasks: Background,
    ) -> None:
        self.hub = hub
        self.coordinator = coordinator
        self.pipeline = pipeline
        self.sync = sync
        self.offline = offline
        self.sweep = sweep
        self.tasks = tasks

    async def start(self) -> None:
        await self.coordinator.start(self)

    async def stop(self) -> None:
        self.sweep.stop()
        # the coordinator first: a publish still retrying against an unreachable Redis
        # gives up instead of holding the drain
        await self.coordinator.stop()
        await self.tasks.drain(STOP_DRAIN_S)

    async def settle(self, timeout_s: float) -> bool:
        """Wait (bounded) until no reply runs or is being stored here and the work it
        left (its end's events on their way to other processes) is done; True if so.
        A drain for a restart calls it once the agent sockets closed (their tasks then
        fail, websocket.md §2.4), before ``stop``."""
        deadline = time.monotonic() + timeout_s
        hub = self.hub
        while hub.tasks or hub.ending or len(self.tasks):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(SETTLE_POLL_S)
        return True

    # -- arinova.hooks.Realtime ----------------------------------------------------------
    def agent_connected(self, agent_id: str) -> bool:
        if self.hub.connected_agent(agent_id) is not None:
            return True
        return self.coordinator.agent_elsewhere(agent_id) is not None

    def agent_skills(self, agent_id: str) -> list[Skill] | None:
        socket = self.hub.connected_agent(agent_id)
        if socket is not None:
            return list(socket.skills)
        return self.coordinator.agent_elsewhere(agent_id)

    async def disconnect_agent(self, agent_id: str, code: int, reason: str) -> None:
        self.hub.close_agent(agent_id, code, reason)
        self.coordinator.close_agent_elsewhere(agent_id, code, reason)

    async def reply_to_stored_message(
        self, user_id: str, conversation_id: str, content: str
    ) -> None:
        await self.pipeline.submit(QueuedReply(user_id, conversation_id, content))

    def streaming_text(self, message_id: str) -> str | None:
        return self.hub.streaming_text(message_id)

    # -- Inbound -------------------------------------------------------------------------
    def run_reply(self, item: QueuedReply) -> None:
        self.pipeline.run_reply(item)

    def cancel_reply(self, user_id: str, message_id: str) -> bool:
        return self.pipeline.cancel_reply(user_id, message_id)

    def reattach_events(self, user_id: str, named: list[str]) -> list[str]:
        return self.sync.reattach_events(user_id, named)

    def close_agent(self, agent_id: str, code: int, reason: str) -> None:
        self.hub.close_agent(agent_id, code, reason)

    def agent_moved(self, agent_id: str) -> None:
        socket = self.hub.unregister_agent(agent_id)
        if socket is not None:
            socket.close(4409, events.REPLACED)

    def agent_gone(self, agent_id: str) -> None:
        if agent_id not in self.hub.agents:
            self.pipeline.fail_agent_tasks(agent_id, events.AGENT_DISCONNECTED)

    def agent_event(self, agent_id: str, kind: str, task_id: str, value: str) -> None:
        self.pipeline.agent_event(agent_id, kind, task_id, value)

    async def fail_orphan(self, reply: RunningReply, error: str) -> None:
        await self.pipeline.fail_orphan(reply, error)
