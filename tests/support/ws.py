"""Real WebSocket clients for the realtime tests (the ``websockets`` library).

user = await sign_up(server.url)
world = await Chat.create(server, user)              # an agent + a conversation
async with user_socket(server, user) as ws: ...      # /ws with the session cookie
async with agent_socket(server, world.token) as bot: # /ws/agent, authenticated
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from tests.support.auth import TRUSTED_ORIGIN, SignedIn, authed_client

TIMEOUT = 5.0


@contextlib.asynccontextmanager
async def user_socket(
    server: Any, user: SignedIn | None, *, origin: str | None = TRUSTED_ORIGIN
) -> AsyncIterator[ClientConnection]:
    headers: dict[str, str] = {}
    if user is not None:
        headers["cookie"] = user.cookie
    async with websockets.connect(
        f"{server.ws_url}/ws",
        additional_headers=headers,
        origin=origin,  # type: ignore[arg-type]
        compression=None,
        ping_interval=None,
        # tests often leave events unread: keep reading so the close handshake completes
        max_queue=None,
    ) as ws:
        yield ws


@contextlib.asynccontextmanager
async def raw_agent_socket(server: Any) -> AsyncIterator[ClientConnection]:
    async with websockets.connect(
        f"{server.ws_url}/ws/agent", compression=None, ping_interval=None, max_queue=None
    ) as ws:
        yield ws


@contextlib.asynccontextmanager
async def agent_socket(
    server: Any, token: str, skills: list[dict[str, str]] | None = None
) -> AsyncIterator[ClientConnection]:
    """An authenticated agent socket (auth_ok already received)."""
    async with raw_agent_socket(server) as ws:
        auth: dict[str, Any] = {"type": "agent_auth", "botToken": token}
        if skills is not None:
            auth["skills"] = skills
        await send(ws, auth)
        reply = await recv(ws)
        assert reply["type"] == "auth_ok", reply
        yield ws


async def send(ws: ClientConnection, event: dict[str, Any]) -> None:
    await ws.send(json.dumps(event))


async def recv_text(ws: ClientConnection, wait: float = TIMEOUT) -> str:
    async with asyncio.timeout(wait):
        message = await ws.recv()
    assert isinstance(message, str)
    return message


async def recv(ws: ClientConnection, wait: float = TIMEOUT) -> dict[str, Any]:
    value = json.loads(await recv_text(ws, wait))
    assert isinstance(value, dict)
    return value


async def recv_until(
    ws: ClientConnection, kind: str, wait: float = TIMEOUT
) -> list[dict[str, Any]]:
    """Events up to and including the first of type ``kind``."""
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(wait):
        while True:
            event = await recv(ws, wait)
            got.append(event)
            if event["type"] == kind:
                return got


async def silent(ws: ClientConnection, seconds: float = 0.3) -> bool:
    """True when nothing arrives within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            await ws.recv()
    except TimeoutError:
        return True
    return False


async def close_of(ws: ClientConnection, wait: float = TIMEOUT) -> tuple[int | None, str | None]:
    """Wait for the server to close; its close code and reason."""
    with contextlib.suppress(websockets.ConnectionClosed):
        async with asyncio.timeout(wait):
            while True:
                await ws.recv()
    rcvd = ws.protocol.close_rcvd
    return (rcvd.code, rcvd.reason) if rcvd else (None, None)


@dataclass
class Chat:
    """A user's agent and a direct conversation with it, created over REST."""

    user: SignedIn
    agent: dict[str, Any]
    conversation: dict[str, Any]

    @property
    def token(self) -> str:
        return str(self.agent["secretToken"])

    @property
    def agent_id(self) -> str:
        return str(self.agent["id"])

    @property
    def conversation_id(self) -> str:
        return str(self.conversation["id"])

    @classmethod
    async def create(cls, server: Any, user: SignedIn, name: str = "Echo") -> Chat:
        async with authed_client(server.url, user) as client:
            agent = await post(client, "/api/agents", {"name": name})
            conversation = await post(client, "/api/conversations", {"agentId": agent["id"]})
        return cls(user, agent, conversation)

    async def new_conversation(self, server: Any) -> str:
        async with authed_client(server.url, self.user) as client:
            conversation = await post(client, "/api/conversations", {"agentId": self.agent["id"]})
        return str(conversation["id"])


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code in (200, 201), response.text
    value = response.json()
    assert isinstance(value, dict)
    return value
