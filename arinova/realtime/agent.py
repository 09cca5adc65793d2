"""``/ws/agent``: the bots' socket (websocket.md §2).

An agent authenticates with its bot token within the auth window (the service's sweep
enforces it, and keeps enforcing it until a lookup succeeds: quirk Q43). One socket per
agent: a new one replaces the old (4409). Once authenticated, a socket keeps its identity
(quirk Q42). Chunks are forwarded synchronously, in arrival order, with no task per frame.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from arinova.hooks import Skill
from arinova.js import json_parse
from arinova.realtime import events
from arinova.realtime.endpoint import Endpoint, SocketHandler, SocketLimits
from arinova.realtime.validate import parse_agent_event

if TYPE_CHECKING:
    from arinova.realtime.handshake import HttpRejection, RequestHead
    from arinova.realtime.service import RealtimeService

AUTH_TIMEOUT = "Authentication timeout"
INVALID_TOKEN = "Invalid bot token"
NOT_AUTHENTICATED = "Not authenticated"


class AgentHandler(SocketHandler):
    __slots__ = ("agent_id", "agent_name", "opened_at", "service", "skills")

    def __init__(self, service: RealtimeService) -> None:
        super().__init__()
        self.service = service
        self.agent_id: str | None = None
        self.agent_name = ""
        self.skills: list[Skill] = []
        self.opened_at = time.monotonic()

    def on_open(self) -> None:
        self.opened_at = time.monotonic()
        self.service.agent_opened(self)

    def on_close(self, code: int, reason: str) -> None:
        self.service.agent_closed(self)

    def on_text(self, text: str) -> None:
        try:
            raw = json_parse(text)
        except ValueError:
            self.service.log.info("ws/agent: a frame is not JSON")
            return
        event = parse_agent_event(raw)
        if event is None:
            self.service.log.info("ws/agent: a frame does not match any event")
            return
        kind = event["type"]
        if kind == "ping":
            self.send_frame(events.PONG)
        elif kind == "agent_auth":
            self.service.spawn(self._authenticate(event))
        elif self.agent_id is None:
            self.send_frame(events.auth_error(NOT_AUTHENTICATED))
        else:
            self._task_event(self.agent_id, kind, event)

    def _task_event(self, agent_id: str, kind: str, event: dict[str, Any]) -> None:
        pipeline = self.service.pipeline
        task = self.service.hub.tasks.get(event["taskId"])
        if task is None or task.agent_id != agent_id:
            return  # unknown, finished, or another agent's task: ignored
        if kind == "agent_chunk":
            pipeline.chunk(task, event["chunk"])
        elif kind == "agent_complete":
            pipeline.complete(task, event["content"])
        else:
            pipeline.fail(task, event["error"])

    async def _authenticate(self, event: dict[str, Any]) -> None:
        row = await self.service.agent_by_token(event["botToken"])
        if not self.open:
            return
        if row is None or (self.agent_id is not None and self.agent_id != row["id"]):
            self.send_frame(events.auth_error(INVALID_TOKEN))
            self.close(4404, INVALID_TOKEN)
            return
        self.agent_name = row["name"]
        self.skills = event["skills"]
        self.service.agent_authenticated(self, row["id"])
        await self.service.agent_registered(row["id"], self.skills)
        if self.open:
            self.send_frame(events.auth_ok(self.agent_name))


class AgentEndpoint(Endpoint):
    check_origin = False

    def __init__(self, service: RealtimeService, limits: SocketLimits) -> None:
        self.service = service
        self.limits = limits

    async def accept(self, head: RequestHead) -> SocketHandler | HttpRejection:
        return AgentHandler(self.service)
