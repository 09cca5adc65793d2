"""SENTRY_DSN: every unhandled error reaches Sentry once, with the request id, route and
user, and without cookies, passwords or message content. Sentry is a local ingest
endpoint (support/sentry_ingest.py); the failures are real ones of PostgreSQL (a trigger
the test installs refuses a statement)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from arinova import __version__
from arinova.reporting import scrub
from tests.support.auth import authed_client, sign_up
from tests.support.sentry_ingest import SentryIngest, sentry_ingest
from tests.support.servers import StartServer
from tests.support.ws import Chat, agent_socket, recv, send, user_socket

SECRET_WORDS = "the user's secret words"


@pytest.fixture
async def ingest() -> AsyncIterator[SentryIngest]:
    async with sentry_ingest() as ingest:
        yield ingest


@pytest.fixture
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database)
    await conn.execute(
        "CREATE OR REPLACE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
    )
    yield conn
    await conn.execute("DROP TRIGGER IF EXISTS test_refuse ON agents")
    await conn.execute("DROP TRIGGER IF EXISTS test_refuse ON messages")
    await conn.close()


async def quiet(ingest: SentryIngest, count: int) -> None:
    """Nothing more arrives for a while after ``count`` events (no second report)."""
    await asyncio.sleep(1.0)
    assert len(ingest.events) == count, ingest.events


async def test_an_unhandled_rest_error_is_reported_once_with_route_and_user(
    start_server: StartServer, ingest: SentryIngest, db: asyncpg.Connection
) -> None:
    server = await start_server(sentry_dsn=ingest.dsn, node_env="staging")
    user = await sign_up(server.url)
    await db.execute(
        "CREATE TRIGGER test_refuse BEFORE INSERT ON agents "
        "FOR EACH ROW EXECUTE FUNCTION test_refuse()"
    )
    async with authed_client(server.url, user, headers={"x-request-id": "req-42"}) as client:
        response = await client.post("/api/agents", json={"name": SECRET_WORDS})
    assert response.status_code == 500
    assert response.json() == {"error": "Internal server error", "code": "INTERNAL_ERROR"}

    [event] = await ingest.wait_events(1)
    await quiet(ingest, 1)
    assert event["environment"] == "staging"
    assert event["release"] == f"arinova@{__version__}"
    assert event["tags"]["route"] == "/api/agents"
    assert event["tags"]["request_id"] == "req-42"
    assert event["user"] == {"id": user.id}
    [exception] = event["exception"]["values"]
    assert "refused by the test" in exception["value"]
    raw = b"".join(ingest.envelopes)
    for secret in (user.cookie.split("=", 1)[1], user.password, SECRET_WORDS, "better-auth"):
        assert secret.encode() not in raw, secret
    assert "request" not in event or "cookies" not in event["request"]


async def test_a_failed_background_task_is_reported_once(
    start_server: StartServer, ingest: SentryIngest, db: asyncpg.Connection
) -> None:
    server = await start_server(sentry_dsn=ingest.dsn)
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    await db.execute(
        "CREATE TRIGGER test_refuse BEFORE UPDATE ON messages FOR EACH ROW "
        "WHEN (NEW.status = 'completed') EXECUTE FUNCTION test_refuse()"
    )
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "hi"})
        task_id = (await recv(bot))["taskId"]
        assert (await recv(ws))["type"] == "stream_start"
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": SECRET_WORDS})
        assert (await recv(ws))["type"] == "stream_error"

    [event] = await ingest.wait_events(1)
    await quiet(ingest, 1)
    assert event["environment"] == "development"
    assert event["tags"]["logger"] == "arinova.realtime"
    assert event["extra"]["log"] == f"message {task_id}: storing the reply's end failed"
    assert "refused by the test" in event["exception"]["values"][0]["value"]
    assert SECRET_WORDS.encode() not in b"".join(ingest.envelopes)


async def test_without_a_dsn_nothing_is_sent(
    start_server: StartServer, ingest: SentryIngest, db: asyncpg.Connection
) -> None:
    server = await start_server()
    user = await sign_up(server.url)
    await db.execute(
        "CREATE TRIGGER test_refuse BEFORE INSERT ON agents "
        "FOR EACH ROW EXECUTE FUNCTION test_refuse()"
    )
    async with authed_client(server.url, user) as client:
        response = await client.post("/api/agents", json={"name": "x"})
    assert response.status_code == 500
    await quiet(ingest, 0)


def test_the_scrubber_drops_cookies_credentials_and_bodies() -> None:
    """Whatever reaches an event's request (an SDK integration would add one) leaves
    without cookies, credentials, body or query string."""
    event = {
        "request": {
            "url": "http://localhost/api/agents",
            "method": "POST",
            "cookies": {"better-auth.session_token": "t.s"},
            "data": {"password": "secret"},
            "query_string": "token=abc",
            "headers": {"Cookie": "a=b", "Authorization": "Bearer x", "Accept": "*/*"},
        },
        "breadcrumbs": {"values": [{"message": "SELECT ..."}]},
    }
    assert scrub(event, {}) == {
        "request": {
            "url": "http://localhost/api/agents",
            "method": "POST",
            "headers": {"Accept": "*/*"},
        }
    }
