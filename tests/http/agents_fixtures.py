"""Shared helpers of the agent tests (no tests here): signed-in users
layer, database seeding."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from arinova.auth.cookies import sign
from arinova.server import Server
from tests.support.servers import StartServer

_ALNUM = string.ascii_letters + string.digits


def random_id(length: int = 32) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


@dataclass
class User:
    id: str
    email: str
    name: str
    cookie: str

    def client(self, server: Server) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=server.url, headers={"Cookie": self.cookie}, timeout=30.0)


async def new_user(server: Server, name: str = "Agent Owner") -> User:
    """A user with a live session, written the way sign-up writes them."""
    user_id, session_id, token = random_id(), random_id(), random_id()
    email = f"{user_id.lower()}@example.com"
    conn = await asyncpg.connect(server.settings.database_url)
    try:
        await conn.execute(
            'INSERT INTO "user" (id, name, email, email_verified, created_at, updated_at)'
            " VALUES ($1, $2, $3, false, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')",
            user_id,
            name,
            email,
        )
        await conn.execute(
            'INSERT INTO "session" (id, user_id, token, expires_at, ip_address, user_agent,'
            " created_at, updated_at) VALUES ($1, $2, $3,"
            " (now() AT TIME ZONE 'UTC') + interval '30 days', '', '',"
            " now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')",
            session_id,
            user_id,
            token,
        )
    finally:
        await conn.close()
    cookie = f"better-auth.session_token={sign(token, server.settings.better_auth_secret)}"
    return User(user_id, email, name, cookie)


async def db_connect(server: Server) -> asyncpg.Connection[Any]:
    return await asyncpg.connect(server.settings.database_url)


async def add_conversation(
    conn: asyncpg.Connection[Any],
    user_id: str,
    agent_id: str,
    title: str | None = None,
    created_at: str | None = None,
    messages: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
) -> str:
    """A direct conversation with ``messages`` as (role, content, created_at ISO) tuples."""
    conversation_id: str = str(
        await conn.fetchval(
            "INSERT INTO conversations (title, type, user_id, agent_id, created_at, updated_at)"
            " VALUES ($1, 'direct', $2, $3::uuid,"
            " coalesce($4::timestamp, now() AT TIME ZONE 'UTC'),"
            " coalesce($4::timestamp, now() AT TIME ZONE 'UTC')) RETURNING id",
            title,
            user_id,
            agent_id,
            None if created_at is None else _ts(created_at),
        )
    )
    for seq, (role, content, at) in enumerate(messages, start=1):
        await conn.execute(
            "INSERT INTO messages (conversation_id, seq, role, content, status, created_at,"
            " updated_at) VALUES ($1::uuid, $2, $3::message_role, $4, 'completed', $5, $5)",
            conversation_id,
            seq,
            role,
            content,
            _ts(at),
        )
    return conversation_id


def _ts(iso: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(iso.removesuffix("Z"))


@pytest.fixture(scope="module")
async def agent_server(start_module_server: StartServer) -> Server:
    """A server that counts queries and may probe loopback; agents connect over real
    ``/ws/agent`` sockets (tests.support.ws.agent_socket)."""
    return await start_module_server(count_queries=True, allow_private_outbound=True)


@pytest.fixture(scope="module")
async def guarded_server(start_module_server: StartServer) -> Server:
    """A server with the default outbound policy: no private or loopback targets."""
    return await start_module_server(allow_private_outbound=False)
