"""Who is connected to this process: users' ``/ws`` sockets, agents' ``/ws/agent`` sockets,
the agent tasks in flight and the conversations with an active reply.

Everything here is per process and cleaned when a socket closes or a task ends. Shared
through the KV store with the contract's keys: the rate limit, ``stream:<id>``, the offline
queue and the push de-dup. With Redis, arinova/realtime/cluster.py adds what several
processes need (event delivery, agent registry, the active-reply marks and queues); then
``active`` and the pipeline's queues here are used only while Redis is unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from arinova.realtime.agent import AgentHandler
    from arinova.realtime.client import ClientHandler
    from arinova.realtime.streamcache import StreamCache


class AgentTask:
    """One reply an agent is producing (websocket.md §2.4). ``text`` is what was streamed
    so far; it doubles as the accumulator of the delta-vs-accumulated rule (§4)."""

    __slots__ = (
        "agent_id",
        "agent_name",
        "cache",
        "conversation_id",
        "id",
        "last_activity",
        "seq",
        "text",
        "user_id",
    )

    def __init__(
        self,
        task_id: str,
        seq: int,
        agent_id: str,
        agent_name: str,
        user_id: str,
        conversation_id: str,
        cache: StreamCache,
        now: float,
    ) -> None:
        self.id = task_id
        self.seq = seq
        self.agent_id = agent_id
        self.agent_name = agent_name
        self.user_id = user_id
        self.conversation_id = conversation_id
        self.cache = cache
        self.text = ""
        self.last_activity = now

    def take_chunk(self, chunk: str) -> str | None:
        """The delta to forward for an ``agent_chunk``, or None when there is nothing new
        (the agent re-sent the accumulated text)."""
        text = self.text
        if text and chunk.startswith(text):
            delta = chunk[len(text) :]
            if not delta:
                return None
            self.text = chunk
            return delta
        self.text = text + chunk
        return chunk


@dataclass(slots=True, eq=False)
class Hub:
    #: user id -> that user's open sockets
    users: dict[str, set[ClientHandler]] = field(default_factory=dict)
    #: user id -> sockets that reported ``focus{visible:true}``
    foreground: dict[str, int] = field(default_factory=dict)
    #: agent id -> its one authenticated socket
    agents: dict[str, AgentHandler] = field(default_factory=dict)
    #: agent sockets still within their authentication window
    unauthenticated: set[AgentHandler] = field(default_factory=set)
    #: task id (= the reply's message id) -> task
    tasks: dict[str, AgentTask] = field(default_factory=dict)
    #: conversation id -> user id, while a reply is active in it
    active: dict[str, str] = field(default_factory=dict)

    # -- users ---------------------------------------------------------------------------
    def add_client(self, handler: ClientHandler) -> None:
        self.users.setdefault(handler.user_id, set()).add(handler)

    def remove_client(self, handler: ClientHandler) -> None:
        user_id = handler.user_id
        if handler.visible:
            handler.visible = False
            self._count_foreground(user_id, -1)
        sockets = self.users.get(user_id)
        if sockets is not None:
            sockets.discard(handler)
            if not sockets:
                del self.users[user_id]
                self.foreground.pop(user_id, None)

    def set_visible(self, handler: ClientHandler, visible: bool) -> None:
        if visible != handler.visible:
            handler.visible = visible
            self._count_foreground(handler.user_id, 1 if visible else -1)

    def _count_foreground(self, user_id: str, step: int) -> None:
        count = max(0, self.foreground.get(user_id, 0) + step)
        if count:
            self.foreground[user_id] = count
        else:
            self.foreground.pop(user_id, None)

    def foreground_sockets(self, user_id: str) -> int:
        return self.foreground.get(user_id, 0)

    def client_count(self) -> int:
        return sum(len(s) for s in self.users.values())

    # -- agents --------------------------------------------------------------------------
    def connected_agent(self, agent_id: str) -> AgentHandler | None:
        handler = self.agents.get(agent_id)
        return handler if handler is not None and handler.open else None

    def tasks_of_agent(self, agent_id: str) -> list[AgentTask]:
        return [t for t in self.tasks.values() if t.agent_id == agent_id]

    def tasks_of_user(self, user_id: str) -> list[AgentTask]:
        return [t for t in self.tasks.values() if t.user_id == user_id]

    def active_conversations_of(self, user_id: str) -> list[str]:
        return [c for c, u in self.active.items() if u == user_id]

    @property
    def idle(self) -> bool:
        """Nothing for the periodic sweep to watch."""
        return not (self.users or self.unauthenticated or self.tasks)
