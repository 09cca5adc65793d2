"""``/ws/agent``: the bots' socket (websocket.md §2).

An agent authenticates with its bot token within the auth window (the process's sweep
enforces it, and keeps enforcing it until a lookup succeeds: quirk Q43). One socket per
agent: a new one replaces the old (4409). Once authenticated, a socket keeps its identity
(quirk Q42). Chunks are forwarded synchronously, in arrival order, with no task per frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arinova.db.pool import Database
from arinova.db.queries import realtime as q
from arinova.hooks import Skill
from arinova.js import json_parse
from arinova.realtime import events
from arinova.realtime.validate import AGENT_VALUE_FIELD, parse_agent_event
from arinova.ws import Endpoint, SocketHandler, SocketLimits

if TYPE_CHECKING:
    from arinova.clock import Clock
    from arinova.realtime.coordinator import Coordinator
    from arinova.realtime.hub import Hub
    from arinova.realtime.pipeline import Pipeline
    from arinova.realtime.sweep import Sweep
    from arinova.realtime.tasks import Background
    from arinova.ws import HttpRejection, RequestHead

INVALID_TOKEN = "Invalid bot token"
NOT_AUTHENTICATED = "Not authenticated"


@dataclass(frozen=True, slots=True, eq=False)
class AgentServices:
    """What every ``/ws/agent`` socket works with (one instance per process)."""

    db: Database
    hub: Hub
    coordinator: Coordinator
    pipeline: Pipeline
    sweep: Sweep
    tasks: Background
    clock: Clock
    log: logging.Logger


class AgentHandler(SocketHandler):
    __slots__ = ("agent_id", "agent_name", "opened_at", "services", "skills")

    # its replies fail when it closes (websocket.md §2.4): their stream_error reaches the
    # users' sockets before those close too
    closes_first = True

    def __init__(self, services: AgentServices) -> None:
        super().__init__()
        self.services = services
        self.agent_id: str | None = None
        self.agent_name = ""
        self.skills: list[Skill] = []
        self.opened_at = services.clock.monotonic()

    def on_open(self) -> None:
        s = self.services
        self.opened_at = s.clock.monotonic()
        s.hub.unauthenticated.add(self)
        s.sweep.arm()

    def on_close(self, code: int, reason: str) -> None:
        s = self.services
        agent_id = s.hub.remove_agent(self)
        if agent_id is not None:
            s.pipeline.fail_agent_tasks(agent_id, events.AGENT_DISCONNECTED)
            s.coordinator.agent_down(agent_id)

    def on_text(self, text: str) -> None:
        log = self.services.log
        try:
            raw = json_parse(text)
        except ValueError:
            log.info("ws/agent: a frame is not JSON")
            return
        event = parse_agent_event(raw)
        if event is None:
            log.info("ws/agent: a frame does not match any event")
            return
        kind = event["type"]
        if kind == "ping":
            self.send_frame(events.PONG)
        elif kind == "agent_auth":
            self.services.tasks.spawn(self._authenticate(event))
        elif self.agent_id is None:
            self.send_frame(events.auth_error(NOT_AUTHENTICATED))
        else:
            self._task_event(self.agent_id, kind, event)

    def _task_event(self, agent_id: str, kind: str, event: dict[str, Any]) -> None:
        s = self.services
        task_id, value = event["taskId"], event[AGENT_VALUE_FIELD[kind]]
        if not s.pipeline.agent_event(agent_id, kind, task_id, value):
            # it may run where a socket this one replaced was (websocket.md §2.2 item 7)
            s.coordinator.agent_event_elsewhere(agent_id, kind, task_id, value)

    async def _authenticate(self, event: dict[str, Any]) -> None:
        s = self.services
        token = event["botToken"]
        # no stored token holds a NUL (PostgreSQL text cannot), and the query would fail
        row = None if "\x00" in token else await s.db.fetchrow(q.AGENT_BY_TOKEN.sql, token)
        if not self.open:
            return
        if row is None or (self.agent_id is not None and self.agent_id != row["id"]):
            self.send_frame(events.auth_error(INVALID_TOKEN))
            self.close(4404, INVALID_TOKEN)
            return
        agent_id = row["id"]
        self.agent_name = row["name"]
        self.skills = event["skills"]
        previous = s.hub.register_agent(self, agent_id)
        if previous is not None:
            previous.close(4409, events.REPLACED)
        # known to every process before the agent hears auth_ok, so a message sent right
        # after finds it
        await s.coordinator.agent_up(agent_id, self.skills)
        if self.open:
            self.send_frame(events.auth_ok(self.agent_name))


class AgentEndpoint(Endpoint):
    check_origin = False

    def __init__(self, services: AgentServices, limits: SocketLimits) -> None:
        self.services = services
        self.limits = limits

    async def accept(self, head: RequestHead) -> SocketHandler | HttpRejection:
        return AgentHandler(self.services)
