"""PostgreSQL unreachable when a reply ends (websocket.md §3 items 9-10): the reply's end
is stored once PostgreSQL is back, and only then does the user get ``stream_end``; past
the retry window the user gets ``stream_error`` and the conversation moves on. The server's
database is behind a TCP proxy the test cuts and refuses (support/proxy.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
import redis.asyncio as redis

from arinova.server import Server
from arinova.settings import RealtimeSettings
from tests.support import db as testdb
from tests.support.auth import authed_client, sign_up
from tests.support.config import TEST_REDIS_URL
from tests.support.proxy import TcpProxy
from tests.support.servers import StartServer
from tests.support.ws import Chat, agent_socket, recv, recv_until, send, silent, user_socket

MakeProxy = Callable[[str, int], Awaitable[TcpProxy]]
OUTAGE_S = 3.0


@pytest.fixture
async def pg_proxy(make_proxy: MakeProxy) -> TcpProxy:
    return await make_proxy(testdb.PG_HOST, testdb.PG_PORT)


def proxied(database: str, proxy: TcpProxy) -> str:
    name = database.rsplit("/", 1)[1]
    # no SSL attempt first: one TCP connection per connect
    return f"postgresql://{testdb.PG_USER}@{proxy.host}:{proxy.port}/{name}?sslmode=disable"


@pytest.fixture
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    """The test's own connection, not through the proxy."""
    conn = await asyncpg.connect(database)
    yield conn
    await conn.close()


@pytest.fixture
async def kv() -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    yield client
    await client.aclose()


async def start(
    start_server: StartServer, database: str, proxy: TcpProxy, **realtime: Any
) -> Server:
    config = RealtimeSettings(stream_cache_interval_s=0.0, **realtime)
    return await start_server(database_url=proxied(database, proxy), realtime=config)


def say(conversation_id: str, content: str) -> dict[str, Any]:
    return {"type": "send_message", "conversationId": conversation_id, "content": content}


async def reply_row(db: asyncpg.Connection, message_id: str) -> tuple[str, str]:
    row = await db.fetchrow(
        "SELECT content, status::text FROM messages WHERE id = $1::uuid", message_id
    )
    assert row is not None
    return row["content"], row["status"]


async def listed_reply(server: Server, chat: Chat, message_id: str) -> tuple[str, str]:
    """The reply as the REST message list shows it."""
    async with authed_client(server.url, chat.user) as client:
        response = await client.get(f"/api/conversations/{chat.conversation_id}/messages")
    assert response.status_code == 200, response.text
    reply = next(m for m in response.json()["messages"] if m["id"] == message_id)
    return reply["content"], reply["status"]


async def outage(proxy: TcpProxy) -> None:
    """PostgreSQL goes away: open connections reset, new ones refused."""
    proxy.refuse(True)
    await proxy.cut()


async def stream_text(kv: redis.Redis, message_id: str, expected: bytes | None) -> bytes | None:
    """The stream key's value once it is ``expected`` (or the last one read)."""
    for _ in range(100):
        value: bytes | None = await kv.get(f"stream:{message_id}")
        if value == expected:
            break
        await asyncio.sleep(0.02)
    return value


async def test_reply_completed_during_an_outage_is_stored_when_postgres_is_back(
    start_server: StartServer,
    database: str,
    pg_proxy: TcpProxy,
    db: asyncpg.Connection,
    kv: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    server = await start(start_server, database, pg_proxy)
    other = await start_server()  # a second worker, its database not cut
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(conv, "tell me"))
        task_id = (await recv(bot))["taskId"]
        assert (await recv(ws))["type"] == "stream_start"
        await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": "Partial "})
        assert (await recv(ws))["chunk"] == "Partial "
        assert await stream_text(kv, task_id, b"Partial ") == b"Partial "

        await outage(pg_proxy)
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": "The full text"})
        await asyncio.sleep(OUTAGE_S)
        # nothing told yet: the reply is not stored
        assert pg_proxy.refused > 0
        # a reader on another worker still reads the streamed text while the end waits
        assert await listed_reply(other, chat, task_id) == ("Partial ", "streaming")
        pg_proxy.refuse(False)

        end = await recv(ws, wait=10)
        assert end == {"type": "stream_end", "conversationId": conv, "messageId": task_id, "seq": 2}
        assert await reply_row(db, task_id) == ("The full text", "completed")
        assert await stream_text(kv, task_id, None) is None

        # the conversation moved on
        await send(ws, say(conv, "again"))
        again = (await recv(bot))["taskId"]
        assert (await recv(ws))["type"] == "stream_start"
        await send(bot, {"type": "agent_complete", "taskId": again, "content": "ok"})
        assert (await recv(ws))["type"] == "stream_end"
    assert await reply_row(db, again) == ("ok", "completed")

    records = [r for r in caplog.records if r.name.startswith("arinova")]
    outage_logs = [r.getMessage() for r in records if "PostgreSQL" in r.getMessage()]
    assert len(outage_logs) == 2, outage_logs
    assert not [r for r in records if r.exc_info], "no traceback per retry"


async def test_an_outage_past_the_window_ends_the_reply_in_error(
    start_server: StartServer,
    database: str,
    pg_proxy: TcpProxy,
    db: asyncpg.Connection,
    kv: redis.Redis,
) -> None:
    server = await start(start_server, database, pg_proxy, reply_store_window_s=2.5)
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(conv, "tell me"))
        task_id = (await recv(bot))["taskId"]
        await recv(ws)  # stream_start
        await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": "Partial "})
        await recv(ws)

        await outage(pg_proxy)
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": "The full text"})
        assert await silent(ws, 1.0), "within the window the reply is not ended"
        assert await kv.get(f"stream:{task_id}") == b"Partial "
        error = await recv(ws, wait=5)
        assert error == {
            "type": "stream_error",
            "conversationId": conv,
            "messageId": task_id,
            "seq": 2,
            "error": "Internal server error",
        }
        pg_proxy.refuse(False)

        # marking the row failed too (PostgreSQL still away): a sync repairs it
        await send(ws, {"type": "sync", "conversations": {conv: 1}})
        synced = await recv_until(ws, "sync_response")
        missed = synced[-1]["missedMessages"]
        assert [(m["id"], m["status"]) for m in missed] == [(task_id, "error")]
        assert (await reply_row(db, task_id))[1] == "error"

        # the next message in the conversation is answered
        await send(ws, say(conv, "again"))
        again = (await recv(bot))["taskId"]
        assert (await recv(ws))["type"] == "stream_start"
        await send(bot, {"type": "agent_complete", "taskId": again, "content": "ok"})
        assert (await recv(ws))["type"] == "stream_end"
    assert await reply_row(db, again) == ("ok", "completed")


async def test_agent_error_during_an_outage_is_stored_when_postgres_is_back(
    start_server: StartServer, database: str, pg_proxy: TcpProxy, db: asyncpg.Connection
) -> None:
    server = await start(start_server, database, pg_proxy)
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(conv, "tell me"))
        task_id = (await recv(bot))["taskId"]
        await recv(ws)  # stream_start
        await outage(pg_proxy)
        await send(bot, {"type": "agent_error", "taskId": task_id, "error": "model overloaded"})
        await asyncio.sleep(1.0)
        pg_proxy.refuse(False)
        error = await recv(ws, wait=10)
    assert error["type"] == "stream_error"
    assert error["error"] == "model overloaded"
    assert await reply_row(db, task_id) == ("model overloaded", "error")


async def test_replies_waiting_to_be_stored_are_bounded(
    start_server: StartServer, database: str, pg_proxy: TcpProxy, db: asyncpg.Connection
) -> None:
    """One reply may wait: the second one ending in the outage fails at once."""
    server = await start(start_server, database, pg_proxy, max_replies_awaiting_store=1)
    chat = await Chat.create(server, await sign_up(server.url))
    first_conv = chat.conversation_id
    second_conv = await chat.new_conversation(server)
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        tasks = []
        for conv in (first_conv, second_conv):
            await send(ws, say(conv, "tell me"))
            tasks.append((await recv(bot))["taskId"])
            assert (await recv(ws))["type"] == "stream_start"
        await outage(pg_proxy)
        await send(bot, {"type": "agent_complete", "taskId": tasks[0], "content": "one"})
        await asyncio.sleep(0.5)
        await send(bot, {"type": "agent_complete", "taskId": tasks[1], "content": "two"})
        second = await recv(ws, wait=3)
        assert (second["type"], second["messageId"]) == ("stream_error", tasks[1])
        pg_proxy.refuse(False)
        first = await recv(ws, wait=10)
    assert (first["type"], first["messageId"]) == ("stream_end", tasks[0])
    assert await reply_row(db, tasks[0]) == ("one", "completed")


async def test_a_stalled_database_ends_the_reply_in_error_past_the_window(
    start_server: StartServer, database: str, pg_proxy: TcpProxy, db: asyncpg.Connection
) -> None:
    """No reset, no answer: every attempt is bounded, the reply does not hang."""
    server = await start(start_server, database, pg_proxy, reply_store_window_s=1.0)
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(conv, "tell me"))
        task_id = (await recv(bot))["taskId"]
        await recv(ws)  # stream_start
        pg_proxy.stall(True)
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": "lost"})
        error = await recv(ws, wait=8)
        assert (error["type"], error["messageId"]) == ("stream_error", task_id)
        pg_proxy.stall(False)
        await pg_proxy.cut()

        await send(ws, say(conv, "again"))
        again = (await recv(bot, wait=10))["taskId"]
        assert (await recv(ws))["type"] == "stream_start"
        await send(bot, {"type": "agent_complete", "taskId": again, "content": "ok"})
        assert (await recv(ws, wait=10))["type"] == "stream_end"
    assert await reply_row(db, again) == ("ok", "completed")
