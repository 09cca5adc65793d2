"""The push notification of a finished reply (behaviours.md on push): sent only when no
socket of the user is visible, in this process or any other."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from arinova.push.service import PushService
    from arinova.realtime.coordinator import Coordinator
    from arinova.realtime.hub import AgentTask, Hub
    from arinova.realtime.tasks import Background


class PushTrigger:
    __slots__ = ("_coordinator", "_hub", "_log", "_push", "_tasks")

    def __init__(
        self,
        push: PushService,
        hub: Hub,
        coordinator: Coordinator,
        tasks: Background,
        log: logging.Logger,
    ) -> None:
        self._push = push
        self._hub = hub
        self._coordinator = coordinator
        self._tasks = tasks
        self._log = log

    def reply_done(self, task: AgentTask, content: str) -> None:
        if self._hub.foreground_sockets(task.user_id):
            return  # the user is looking at the app here
        self._tasks.spawn(self._decide(task, content))

    async def _decide(self, task: AgentTask, content: str) -> None:
        foreground = await self._coordinator.foreground_elsewhere(task.user_id)
        try:
            self._push.notify_message_reply(
                task.user_id,
                task.agent_id,
                task.agent_name,
                task.conversation_id,
                content,
                foreground,
            )
        except Exception:
            self._log.exception("push trigger failed")
