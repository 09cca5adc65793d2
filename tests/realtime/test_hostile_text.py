"""Text the database cannot hold and JSON too deep to parse, over both sockets.

PostgreSQL text cannot hold NUL, so NUL is removed from every socket text that is stored
or streamed, as from upload captions (``rest.md`` §3.9, decisions Q25); what is left must
still be valid (a ``send_message`` of NULs only is an invalid format, websocket.md §1.4).
A frame nested too deeply to parse is invalid JSON: on ``/ws`` a ``stream_error``
``"Invalid JSON"``, on ``/ws/agent`` nothing (websocket.md §1.4, §2.2 item 2), and in
both cases nothing worse than an info line in the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as redis

from arinova.server import Server
from arinova.settings import RealtimeSettings
from tests.support.auth import sign_up
from tests.support.config import TEST_REDIS_URL
from tests.support.servers import StartServer
from tests.support.ws import (
    Chat,
    agent_socket,
    close_of,
    raw_agent_socket,
    recv,
    recv_until,
    send,
    silent,
    user_socket,
)

CONFIG = RealtimeSettings(sweep_interval_s=0.05)
INVALID_JSON = {
    "type": "stream_error",
    "conversationId": "",
    "messageId": "",
    "seq": 0,
    "error": "Invalid JSON",
}
#: deeper than orjson (1024 levels) and the standard library (about 1000) parse
TOO_DEEP = ["[" * 100_000, '{"a":' * 100_000, "[" * 3000 + "]" * 3000, '{"a":[' * 2000]


@pytest.fixture(scope="module")
async def server(start_module_server: StartServer) -> Server:
    return await start_module_server(realtime=CONFIG)


@pytest.fixture(scope="module")
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database)
    yield conn
    await conn.close()


@pytest.fixture(scope="module")
async def kv() -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def chat(server: Server) -> Chat:
    return await Chat.create(server, await sign_up(server.url))


def error_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()} {r.exc_info!r}"
        for r in caplog.records
        if r.levelno >= logging.ERROR
    ]


async def stored(db: asyncpg.Connection, conversation_id: str) -> list[tuple[str, str, str]]:
    rows = await db.fetch(
        "SELECT role::text, content, status::text FROM messages "
        "WHERE conversation_id = $1::uuid ORDER BY seq",
        conversation_id,
    )
    return [(r["role"], r["content"], r["status"]) for r in rows]


def say(conversation_id: str, content: str) -> dict[str, Any]:
    return {"type": "send_message", "conversationId": conversation_id, "content": content}


# -- NUL -------------------------------------------------------------------------------------


async def test_nul_in_a_user_message_is_removed_and_the_message_answered(
    server: Server, chat: Chat, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(conv, "a\x00b\x00"))
        task = await recv(bot)
        assert task["content"] == "ab"
        assert (await recv(ws))["type"] == "stream_start"
        await send(bot, {"type": "agent_complete", "taskId": task["taskId"], "content": "ok"})
        await recv_until(ws, "stream_end")
    assert await stored(db, conv) == [("user", "ab", "completed"), ("agent", "ok", "completed")]
    assert error_records(caplog) == []


async def test_a_user_message_of_nul_only_is_an_invalid_format(
    server: Server, chat: Chat, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with user_socket(server, chat.user) as ws:
        await send(ws, say(chat.conversation_id, "\x00\x00"))
        assert await recv(ws) == {**INVALID_JSON, "error": "Invalid message format"}
        await send(ws, {"type": "ping"})
        assert await recv(ws) == {"type": "pong"}
    assert await stored(db, chat.conversation_id) == []
    assert error_records(caplog) == []


async def test_nul_in_chunks_is_removed_from_the_stream_and_the_stored_reply(
    server: Server,
    chat: Chat,
    db: asyncpg.Connection,
    kv: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(conv, "go"))
        task_id = (await recv(bot))["taskId"]
        await recv(ws)  # stream_start
        # a delta, then the accumulated text with the NUL again: still read as accumulated
        await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": "Hi\x00 "})
        await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": "Hi\x00 there"})
        assert [(await recv(ws))["chunk"] for _ in range(2)] == ["Hi ", "there"]
        for _ in range(50):
            if await kv.get(f"stream:{task_id}") == b"Hi there":
                break
            await asyncio.sleep(0.02)
        assert await kv.get(f"stream:{task_id}") == b"Hi there"
        # a cancelled reply keeps the streamed text as its content (decisions Q32)
        await send(ws, {"type": "cancel_stream", "conversationId": conv, "messageId": task_id})
        end = await recv(ws)
    assert end["type"] == "stream_error"
    assert end["error"] == "Stream cancelled"
    assert (await stored(db, conv))[1] == ("agent", "Hi there", "cancelled")
    assert error_records(caplog) == []


async def test_nul_in_the_final_content_is_removed(
    server: Server, chat: Chat, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(conv, "go"))
        task_id = (await recv(bot))["taskId"]
        await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": "Do\x00ne"})
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": "\x00Do\x00ne"})
        got = await recv_until(ws, "stream_end")
    assert [e["type"] for e in got] == ["stream_start", "stream_chunk", "stream_end"]
    assert got[1]["chunk"] == "Done"
    assert (await stored(db, conv))[1] == ("agent", "Done", "completed")
    assert error_records(caplog) == []


async def test_nul_in_an_agent_error_is_removed(
    server: Server, chat: Chat, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(conv, "go"))
        task_id = (await recv(bot))["taskId"]
        await send(bot, {"type": "agent_error", "taskId": task_id, "error": "Out\x00 of tokens"})
        got = await recv_until(ws, "stream_error")
    assert got[-1]["error"] == "Out of tokens"
    assert (await stored(db, conv))[1] == ("agent", "Out of tokens", "error")
    assert error_records(caplog) == []


async def test_a_bot_token_with_nul_is_an_invalid_token(
    server: Server, chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with raw_agent_socket(server) as bot:
        await send(bot, {"type": "agent_auth", "botToken": chat.token + "\x00"})
        assert await recv(bot) == {"type": "auth_error", "error": "Invalid bot token"}
        assert await close_of(bot) == (4404, "Invalid bot token")
    assert error_records(caplog) == []


# -- JSON nested too deeply ------------------------------------------------------------------


async def test_too_deep_json_on_the_agent_socket_is_ignored_quietly(
    server: Server, chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with raw_agent_socket(server) as bot:
        for frame in TOO_DEEP:
            await bot.send(frame)
        assert await silent(bot)
        await send(bot, {"type": "ping"})
        assert await recv(bot) == {"type": "pong"}
        await send(bot, {"type": "agent_auth", "botToken": chat.token})
        assert (await recv(bot))["type"] == "auth_ok"
        for frame in TOO_DEEP:
            await bot.send(frame.encode())  # binary frames are read as text
        assert await silent(bot)
        await send(bot, {"type": "ping"})
        assert await recv(bot) == {"type": "pong"}
    assert error_records(caplog) == []


async def test_too_deep_json_on_the_client_socket_is_invalid_json(
    server: Server, chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with user_socket(server, chat.user) as ws:
        for frame in TOO_DEEP:
            await ws.send(frame[:32_000])  # under the "Message too large" limit
        assert [await recv(ws) for _ in TOO_DEEP] == [INVALID_JSON] * len(TOO_DEEP)
        await send(ws, {"type": "ping"})
        assert await recv(ws) == {"type": "pong"}
    assert error_records(caplog) == []
