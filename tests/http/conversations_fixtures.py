"""Shared helpers of the conversation, group, message and reaction tests (no tests here):
a server that counts queries, signed-in users, database seeding, exact-shape checks."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from arinova.server import Server
from tests.support.auth import SignedIn, authed_client, sign_up
from tests.support.servers import StartServer

ISO_RX = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
UUID_RX = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
UNAUTHORIZED = {"error": "Unauthorized"}
CONVERSATION_NOT_FOUND = {"error": "Conversation not found"}
CONVERSATION_KEYS = [
    "id",
    "title",
    "type",
    "userId",
    "agentId",
    "pinnedAt",
    "createdAt",
    "updatedAt",
]
MESSAGE_KEYS = [
    "id",
    "conversationId",
    "seq",
    "role",
    "content",
    "status",
    "createdAt",
    "updatedAt",
]
#: a fixed clock for seeded rows, so orderings are known
T0 = datetime(2026, 2, 20, 9, 15, 3, 123456)


def validation(details: str) -> dict[str, str]:
    return {"error": "Validation error", "code": "VALIDATION_ERROR", "details": details}


def iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds") + "Z"


@pytest.fixture(scope="module")
async def chat_server(start_module_server: StartServer) -> Server:
    """A server that counts queries and may probe loopback addresses."""
    return await start_module_server(count_queries=True, allow_private_outbound=True)


@dataclass
class Chat:
    """A signed-in user of ``chat_server`` with a client and a database connection."""

    server: Server
    user: SignedIn
    client: httpx.AsyncClient
    db: asyncpg.Connection[Any]

    @property
    def id(self) -> str:
        return self.user.id

    def queries(self) -> int:
        return self.server.state.queries.count

    async def counted(self, method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, int]:
        """A request and the number of statements it sent to PostgreSQL."""
        before = self.queries()
        response = await self.client.request(method, url, **kwargs)
        return response, self.queries() - before

    async def agent(self, name: str = "Helper", **columns: Any) -> str:
        return await add_agent(self.db, self.id, name, **columns)

    async def direct(self, agent_id: str, title: str | None = None, **kwargs: Any) -> str:
        return await add_conversation(self.db, self.id, agent_id, title, **kwargs)


@pytest.fixture
async def chat(chat_server: Server) -> AsyncIterator[Chat]:
    """A fresh user per test (tests stay independent of each other's rows)."""
    user = await sign_up(chat_server.url)
    conn = await asyncpg.connect(chat_server.settings.database_url)
    try:
        async with authed_client(chat_server.url, user, timeout=30.0) as client:
            yield Chat(chat_server, user, client, conn)
    finally:
        await conn.close()


@pytest.fixture
async def other(chat_server: Server) -> AsyncIterator[Chat]:
    """A second user, whose rows the first must never see."""
    user = await sign_up(chat_server.url)
    conn = await asyncpg.connect(chat_server.settings.database_url)
    try:
        async with authed_client(chat_server.url, user, timeout=30.0) as client:
            yield Chat(chat_server, user, client, conn)
    finally:
        await conn.close()


@pytest.fixture
async def anonymous(chat_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=chat_server.url, timeout=30.0) as client:
        yield client


# --- seeding ---------------------------------------------------------------------------


async def add_agent(
    conn: asyncpg.Connection[Any],
    owner_id: str,
    name: str = "Helper",
    *,
    description: str | None = None,
    avatar_url: str | None = None,
    a2a_endpoint: str | None = None,
) -> str:
    return str(
        await conn.fetchval(
            "INSERT INTO agents (name, description, avatar_url, a2a_endpoint, owner_id)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id::text",
            name,
            description,
            avatar_url,
            a2a_endpoint,
            owner_id,
        )
    )


async def add_conversation(
    conn: asyncpg.Connection[Any],
    user_id: str,
    agent_id: str | None,
    title: str | None = None,
    *,
    kind: str = "direct",
    updated_at: datetime | None = None,
    pinned_at: datetime | None = None,
) -> str:
    at = updated_at or T0
    return str(
        await conn.fetchval(
            "INSERT INTO conversations (title, type, user_id, agent_id, pinned_at, created_at,"
            " updated_at) VALUES ($1, $2::conversation_type, $3, $4::uuid, $5, $6, $6)"
            " RETURNING id::text",
            title,
            kind,
            user_id,
            agent_id,
            pinned_at,
            at,
        )
    )


async def add_group(
    conn: asyncpg.Connection[Any], user_id: str, title: str, agent_ids: list[str]
) -> str:
    conversation_id = await add_conversation(conn, user_id, None, title, kind="group")
    for position, agent_id in enumerate(agent_ids):
        await conn.execute(
            "INSERT INTO conversation_members (conversation_id, agent_id, added_at)"
            " VALUES ($1::uuid, $2::uuid, $3)",
            conversation_id,
            agent_id,
            T0 + timedelta(seconds=position),
        )
    return conversation_id


async def add_messages(
    conn: asyncpg.Connection[Any],
    conversation_id: str,
    count: int,
    *,
    start: datetime = T0,
    step: timedelta = timedelta(seconds=1),
    first_seq: int = 1,
    status: str = "completed",
    content: Callable[[int], str] = lambda seq: f"message {seq}",
) -> list[str]:
    """``count`` messages, alternating user/agent, ``step`` apart; returns their ids in
    order. ``step=timedelta(0)`` gives them all the same ``created_at``."""
    rows = [
        (
            conversation_id,
            seq,
            "user" if seq % 2 else "agent",
            content(seq),
            status,
            start + step * (seq - first_seq),
        )
        for seq in range(first_seq, first_seq + count)
    ]
    ids = await conn.fetch(
        "INSERT INTO messages (conversation_id, seq, role, content, status, created_at,"
        " updated_at)"
        " SELECT v.conv, v.seq, v.role::message_role, v.body, v.status::message_status,"
        " v.at, v.at"
        " FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[],"
        " $6::timestamp[]) WITH ORDINALITY AS v(conv, seq, role, body, status, at, n)"
        " ORDER BY v.n RETURNING id::text",
        *[list(column) for column in zip(*rows, strict=True)],
    )
    return [row["id"] for row in ids]


async def add_attachment(
    conn: asyncpg.Connection[Any],
    message_id: str,
    file_name: str = "photo.png",
    *,
    file_type: str = "image/png",
    size: int = 1234,
    storage_path: str = "0b7a4d2e-6f0e-4a57-9a43-1c9b3f3f2c11.png",
    created_at: datetime = T0,
) -> str:
    return str(
        await conn.fetchval(
            "INSERT INTO attachments (message_id, file_name, file_type, file_size, storage_path,"
            " created_at) VALUES ($1::uuid, $2, $3, $4, $5, $6) RETURNING id::text",
            message_id,
            file_name,
            file_type,
            size,
            storage_path,
            created_at,
        )
    )


async def message_row(conn: asyncpg.Connection[Any], message_id: str) -> dict[str, Any]:
    """A message as the API shows it (MessageWithAttachments without attachments)."""
    row = await conn.fetchrow(
        "SELECT id::text, conversation_id::text, seq, role::text, content, status::text,"
        " created_at, updated_at FROM messages WHERE id = $1::uuid",
        message_id,
    )
    assert row is not None
    return {
        "id": row["id"],
        "conversationId": row["conversation_id"],
        "seq": row["seq"],
        "role": row["role"],
        "content": row["content"],
        "status": row["status"],
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }


class ProbeTarget:
    """A loopback HTTP server answering ``GET /status/<code>`` with that status."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self.port = 0

    def url(self, status: int) -> str:
        return f"http://127.0.0.1:{self.port}/status/{status}"

    async def __aenter__(self) -> ProbeTarget:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].decode()
            status = int(target.rsplit("/", 1)[1]) if target.startswith("/status/") else 404
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
