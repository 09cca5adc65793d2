"""``Coordinator``: what the realtime layer shares with the other processes of the server.

The application (handlers, pipeline, sync) talks to one ``Coordinator`` and never asks
whether other processes exist; the composition root picks the implementation once:
``LocalCoordinator`` (one process, everything in memory) or ``RedisCoordinator`` (several
processes and machines through Redis). It owns

- delivery of an event to a user's sockets wherever they are, and the offline queue when
  the user has none anywhere (websocket.md §7);
- presence: which processes hold sockets of a user, and how many are visible (push);
- the agent registry: which process holds an agent's socket, and the agent's events for
  tasks that run in another process than its socket (its socket moved mid-reply);
- ``stream:<id>``, the text of each reply streamed so far, for readers in other processes
  (websocket.md §9);
- the per-conversation reply lock and FIFO (one active reply per conversation, later
  messages queued in order: quirks Q07, Q44), and the hand-over of a reply to the process
  that holds the agent's socket.

What other processes ask of this one arrives through ``Inbound``, implemented by the
realtime application.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from arinova.hooks import Skill


@dataclass(frozen=True, slots=True)
class QueuedReply:
    """A stored user message waiting for (or getting) its agent reply."""

    user_id: str
    conversation_id: str
    content: str


@dataclass(frozen=True, slots=True)
class RunningReply:
    """A reply being streamed (what a process that takes over a dead one's work needs)."""

    user_id: str
    conversation_id: str
    message_id: str
    seq: int


class TextSource(Protocol):
    @property
    def text(self) -> str:
        """Everything streamed so far."""
        ...


class StreamText(Protocol):
    """The writer of one reply's ``stream:<id>``."""

    def update(self, delta: str) -> None:
        """``delta`` was just sent to the user's sockets."""
        ...

    def finish(self) -> None:
        """The reply is stored: the text is no longer needed."""
        ...


#: ``claim`` results besides the reply to start now
QUEUED = "queued"
FULL = "full"


class Inbound(Protocol):
    """What another process asks of this one."""

    def run_reply(self, item: QueuedReply) -> None:
        """Run the reply here (this process holds the agent's socket)."""
        ...

    def cancel_reply(self, user_id: str, message_id: str) -> bool:
        """``cancel_stream`` of a reply running here; False when it is not here."""
        ...

    def reattach_events(self, user_id: str, named: list[str]) -> list[str]:
        """The user synced on a socket elsewhere: the re-attach events of the user's
        replies running here, in conversations the sync's map does not name."""
        ...

    def close_agent(self, agent_id: str, code: int, reason: str) -> None:
        """Close this process's socket of the agent, if any."""
        ...

    def agent_moved(self, agent_id: str) -> None:
        """The agent authenticated in another process: this process's socket of it, if
        any, is no longer the registered one and is closed 4409; the tasks it had here stay
        alive for the new socket (websocket.md §2.2 items 4, 7)."""
        ...

    def agent_gone(self, agent_id: str) -> None:
        """The agent's registered socket, in another process, closed (or that process
        died): the tasks kept here for the agent fail with "Agent disconnected"
        (websocket.md §2.2 item 7), unless its socket is back in this process."""
        ...

    def agent_event(self, agent_id: str, kind: str, task_id: str, value: str) -> None:
        """An ``agent_chunk`` / ``agent_complete`` / ``agent_error`` (already validated)
        that the agent's socket in another process got for a task it does not run:
        applied as this process's own socket's event, if the task runs here."""
        ...

    async def fail_orphan(self, reply: RunningReply, error: str) -> None:
        """A reply whose process died: store it as failed and tell the user; its
        conversation's mark is this process's by now."""
        ...


class Coordinator(Protocol):
    async def start(self, inbound: Inbound) -> None:
        """Join the other processes (returns once they are known, or Redis is found
        unreachable: the process then works alone until it answers)."""
        ...

    async def stop(self) -> None: ...

    # -- delivery ------------------------------------------------------------------------
    def emit(self, user_id: str, event: str, *, offline: bool = True) -> None:
        """Send an event (JSON text) to every socket of the user, encoded once per
        process; with none anywhere, keep it in the offline queue unless ``offline`` is
        False."""
        ...

    def stream_text(self, message_id: str, source: TextSource) -> StreamText:
        """The writer of the reply's streamed text (``source`` holds all of it)."""
        ...

    # -- presence ------------------------------------------------------------------------
    def user_online(self, user_id: str) -> None:
        """The user's first socket in this process opened."""
        ...

    def user_offline(self, user_id: str) -> None:
        """The user's last socket in this process closed."""
        ...

    async def user_reachable(self, user_id: str) -> None:
        """Until the user's events sent from any process reach this one (its subscription
        took), or a bound passed: a new socket takes its offline events and handles its
        first message only then, so nothing sent meanwhile falls between the two."""
        ...

    def foreground(self, user_id: str, step: int) -> None:
        """A socket of the user here became visible (+1) or hidden/closed (-1)."""
        ...

    async def foreground_elsewhere(self, user_id: str) -> int:
        """Visible sockets of the user in the other processes."""
        ...

    # -- agents --------------------------------------------------------------------------
    async def agent_up(self, agent_id: str, skills: list[Skill]) -> None:
        """The agent authenticated here (its older socket elsewhere is closed 4409)."""
        ...

    def agent_down(self, agent_id: str) -> None: ...

    def agent_elsewhere(self, agent_id: str) -> list[Skill] | None:
        """The skills of the agent when another live process holds its socket."""
        ...

    async def locate_agent(self, agent_id: str) -> str | None:
        """The other live process holding the agent's socket, if any."""
        ...

    def close_agent_elsewhere(self, agent_id: str, code: int, reason: str) -> None: ...

    def agent_event_elsewhere(self, agent_id: str, kind: str, task_id: str, value: str) -> None:
        """The agent's socket here got an event for a task that does not run here: to the
        process that runs it, if any, in the order the socket got them (``value`` is the
        event's ``chunk``, ``content`` or ``error``)."""
        ...

    # -- replies -------------------------------------------------------------------------
    async def claim(self, item: QueuedReply) -> QueuedReply | str:
        """Mark the conversation active and return the reply to start now (``item``, or
        an older one left behind), or ``QUEUED`` / ``FULL``."""
        ...

    async def hand_over(self, item: QueuedReply, process: str) -> bool:
        """Give the conversation's mark and the reply to ``process`` (the agent's): True
        once that process has taken them; False when it did not (not live, unreachable,
        or silent for a bound): the mark is still this process's, the reply to answer."""
        ...

    async def reply_started(self, reply: RunningReply) -> None: ...

    async def release(
        self, user_id: str, conversation_id: str, message_id: str
    ) -> QueuedReply | None:
        """The active reply ended: the next queued one (now this process's to run), or
        None and the conversation is free."""
        ...

    async def active_conversations(self, user_id: str) -> list[str]:
        """The user's conversations with a reply in progress, in any process."""
        ...

    def cancel_elsewhere(self, user_id: str, message_id: str) -> None: ...

    def reattach_elsewhere(self, user_id: str, socket_id: int, named: list[str]) -> None:
        """A socket of this process synced: the other processes re-attach the user's
        replies they run to that socket (in order with their own stream of events)."""
        ...
