"""Who is connected to this process: users' ``/ws`` sockets, agents' ``/ws/agent`` sockets
and the agent tasks (replies) running here.

Everything here is per process and cleaned when a socket closes or a task ends. What the
processes share (presence, agents elsewhere, reply marks) is the coordinator's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from arinova.js import well_formed

if TYPE_CHECKING:
    from collections.abc import Callable

    from arinova.hooks import Skill
    from arinova.realtime.coordinator import StreamText


class ClientSocket(Protocol):
    user_id: str
    visible: bool
    last_seen: float

    @property
    def socket_id(self) -> int:
        """This process's name of the socket (other processes address it by it)."""
        ...

    def send_frame(self, frame: bytes) -> bool: ...

    def close(self, code: int = 1000, reason: str = "") -> None: ...


class AgentSocket(Protocol):
    agent_id: str | None
    skills: list[Skill]
    opened_at: float

    @property
    def open(self) -> bool: ...

    def send_frame(self, frame: bytes) -> bool: ...

    def close(self, code: int = 1000, reason: str = "") -> None: ...


class AgentTask:
    """One reply an agent is producing (websocket.md §2.4).

    ``text`` is what was streamed so far; it doubles as the accumulator of the
    delta-vs-accumulated rule (§4). Deltas are kept as parts and joined only when the
    whole text is read, so a reply of n chunks costs O(n), not O(n²)."""

    __slots__ = (
        "_length",
        "_parts",
        "_swept_length",
        "agent_id",
        "agent_name",
        "cache",
        "conversation_id",
        "id",
        "last_activity",
        "seq",
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
        stream_text: Callable[[AgentTask], StreamText],
        now: float,
    ) -> None:
        self.id = task_id
        self.seq = seq
        self.agent_id = agent_id
        self.agent_name = agent_name
        self.user_id = user_id
        self.conversation_id = conversation_id
        self._parts: list[str] = []
        self._length = 0
        self.cache = stream_text(self)
        #: when the task started or, as of the last sweep, last streamed new text
        self.last_activity = now
        self._swept_length = 0

    @property
    def text(self) -> str:
        parts = self._parts
        if len(parts) > 1:
            parts[:] = ["".join(parts)]
        return parts[0] if parts else ""

    def active_at(self, now: float) -> float:
        """When the task last streamed new text, to a sweep's resolution: a sweep
        (``now``) that finds the text grown since the one before takes it as the time, so
        a chunk costs no clock read."""
        if self._length != self._swept_length:
            self._swept_length = self._length
            self.last_activity = now
        return self.last_activity

    def take_chunk(self, chunk: str) -> str | None:
        """The delta to forward for an ``agent_chunk``, or None when there is nothing new
        (the agent re-sent the accumulated text)."""
        length = self._length
        # only a chunk at least as long as the text can start with it
        if length and len(chunk) >= length and chunk.startswith(self.text):
            if len(chunk) == length:
                return None
            delta = chunk[length:]
        else:
            delta = chunk
        self._parts.append(delta)
        self._length = length + len(delta)
        return delta


@dataclass(slots=True, eq=False)
class Hub:
    #: user id -> that user's open sockets
    users: dict[str, set[ClientSocket]] = field(default_factory=dict)
    #: user id -> sockets that reported ``focus{visible:true}``
    foreground: dict[str, int] = field(default_factory=dict)
    #: agent id -> its one authenticated socket
    agents: dict[str, AgentSocket] = field(default_factory=dict)
    #: agent sockets still within their authentication window
    unauthenticated: set[AgentSocket] = field(default_factory=set)
    #: task id (= the reply's message id) -> task
    tasks: dict[str, AgentTask] = field(default_factory=dict)
    #: tasks that ended and are being stored: their text is still the one to read
    ending: dict[str, AgentTask] = field(default_factory=dict)

    # -- users ---------------------------------------------------------------------------
    def add_client(self, socket: ClientSocket) -> bool:
        """True when it is the user's first socket here."""
        sockets = self.users.get(socket.user_id)
        if sockets is None:
            self.users[socket.user_id] = {socket}
            return True
        sockets.add(socket)
        return False

    def remove_client(self, socket: ClientSocket) -> bool:
        """True when it was the user's last socket here."""
        user_id = socket.user_id
        self.set_visible(socket, False)
        sockets = self.users.get(user_id)
        if sockets is None:
            return False
        sockets.discard(socket)
        if sockets:
            return False
        del self.users[user_id]
        self.foreground.pop(user_id, None)
        return True

    def set_visible(self, socket: ClientSocket, visible: bool) -> bool:
        """True when the socket's visibility changed."""
        if visible == socket.visible:
            return False
        socket.visible = visible
        count = max(0, self.foreground.get(socket.user_id, 0) + (1 if visible else -1))
        if count:
            self.foreground[socket.user_id] = count
        else:
            self.foreground.pop(socket.user_id, None)
        return True

    def foreground_sockets(self, user_id: str) -> int:
        return self.foreground.get(user_id, 0)

    def deliver(self, user_id: str, frame: bytes) -> bool:
        """Write the frame to every socket of the user here; False when there is none."""
        sockets = self.users.get(user_id)
        if not sockets:
            return False
        for socket in sockets:
            socket.send_frame(frame)
        return True

    def client(self, user_id: str, socket_id: int) -> ClientSocket | None:
        for socket in self.users.get(user_id, ()):
            if socket.socket_id == socket_id:
                return socket
        return None

    def client_count(self) -> int:
        return sum(len(s) for s in self.users.values())

    # -- agents --------------------------------------------------------------------------
    def register_agent(self, socket: AgentSocket, agent_id: str) -> AgentSocket | None:
        """The socket is the agent's from now on; returns the socket it replaces."""
        self.unauthenticated.discard(socket)
        socket.agent_id = agent_id
        previous = self.agents.get(agent_id)
        self.agents[agent_id] = socket
        return previous if previous is not socket else None

    def remove_agent(self, socket: AgentSocket) -> str | None:
        """The agent id when the socket was its registered one."""
        self.unauthenticated.discard(socket)
        agent_id = socket.agent_id
        if agent_id is not None and self.agents.get(agent_id) is socket:
            del self.agents[agent_id]
            return agent_id
        return None

    def unregister_agent(self, agent_id: str) -> AgentSocket | None:
        """The agent's socket here stops being its registered one (the agent registered
        a socket in another process); returns it, still open."""
        return self.agents.pop(agent_id, None)

    def connected_agent(self, agent_id: str) -> AgentSocket | None:
        socket = self.agents.get(agent_id)
        return socket if socket is not None and socket.open else None

    def agent_socket_count(self) -> int:
        """Open agent sockets: authenticated, and within their authentication window."""
        return len(self.agents) + len(self.unauthenticated)

    def close_agent(self, agent_id: str, code: int, reason: str) -> None:
        socket = self.agents.get(agent_id)
        if socket is not None:
            socket.close(code, reason)

    def tasks_of_agent(self, agent_id: str) -> list[AgentTask]:
        return [t for t in self.tasks.values() if t.agent_id == agent_id]

    def streaming_text(self, task_id: str) -> str | None:
        """The text of a reply running (or being stored) here, well formed (a pair split
        between two chunks is one character, as the client joins it)."""
        task = self.tasks.get(task_id) or self.ending.get(task_id)
        return None if task is None else well_formed(task.text)

    def tasks_of_user(self, user_id: str) -> list[AgentTask]:
        return [t for t in self.tasks.values() if t.user_id == user_id]

    @property
    def idle(self) -> bool:
        """Nothing for the periodic sweep to watch."""
        return not (self.users or self.unauthenticated or self.tasks)
