"""What the REST layer needs from the realtime layer, as an interface.

The realtime layer (``arinova.realtime.node.RealtimeNode``) implements ``Realtime``; the
composition root hands it to the REST areas as ``AppState.realtime``. ``NoRealtime`` answers
as a server with no agent connected.
"""

from __future__ import annotations

from typing import Protocol, TypedDict


class Skill(TypedDict):
    id: str
    name: str
    description: str


class Realtime(Protocol):
    async def start(self) -> None:
        """Called once the state is open (joins the other processes through Redis)."""
        ...

    async def stop(self) -> None:
        """Called before the state closes."""
        ...

    def agent_connected(self, agent_id: str) -> bool:
        """True when the agent has an authenticated ``/ws/agent`` socket (any process)."""
        ...

    def agent_skills(self, agent_id: str) -> list[Skill] | None:
        """Skills the connected agent declared in ``agent_auth``; None when not connected."""
        ...

    async def disconnect_agent(self, agent_id: str, code: int, reason: str) -> None:
        """Close the agent's socket, wherever it is (token regenerated, agent deleted)."""
        ...

    async def reply_to_stored_message(
        self, user_id: str, conversation_id: str, content: str
    ) -> None:
        """Run the agent pipeline for a user message already stored (REST upload)."""
        ...

    def streaming_text(self, message_id: str) -> str | None:
        """The text streamed so far of a reply this process runs (exactly what its
        recipients were sent); None when it runs elsewhere or has ended."""
        ...


class NoRealtime:
    """No sockets: no agent is connected, nothing to close, no reply is started."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def agent_connected(self, agent_id: str) -> bool:
        return False

    def agent_skills(self, agent_id: str) -> list[Skill] | None:
        return None

    async def disconnect_agent(self, agent_id: str, code: int, reason: str) -> None:
        return None

    async def reply_to_stored_message(
        self, user_id: str, conversation_id: str, content: str
    ) -> None:
        return None

    def streaming_text(self, message_id: str) -> str | None:
        return None
