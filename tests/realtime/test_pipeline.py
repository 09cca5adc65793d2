"""The reply pipeline end to end: a real /ws client, a real /ws/agent bot, PostgreSQL and
Redis (websocket.md §2-§6, decisions Q32, quirks Q07, Q23, Q44)."""

from __future__ import annotations

import asyncio
import json
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
    recv,
    recv_text,
    recv_until,
    send,
    silent,
    user_socket,
)

CONFIG = RealtimeSettings(sweep_interval_s=0.05, task_idle_timeout_s=1.0)


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


async def messages(db: asyncpg.Connection, conversation_id: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT id::text, seq, role::text, content, status::text FROM messages "
        "WHERE conversation_id = $1::uuid ORDER BY seq",
        conversation_id,
    )
    return [dict(r) for r in rows]


def say(conversation_id: str, content: str) -> dict[str, Any]:
    return {"type": "send_message", "conversationId": conversation_id, "content": content}


async def test_reply_streams_to_the_user_and_is_stored(
    server: Server, chat: Chat, db: asyncpg.Connection, kv: redis.Redis
) -> None:
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(conv, "Hello <script>x</script>there"))
        task = await recv(bot)
        message_id = task["taskId"]
        assert task == {
            "type": "task",
            "taskId": message_id,
            "conversationId": conv,
            "content": "Hello there",
        }
        assert await recv_text(ws) == (
            f'{{"type":"stream_start","conversationId":"{conv}","messageId":"{message_id}","seq":2}}'
        )
        await send(bot, {"type": "agent_chunk", "taskId": message_id, "chunk": "Hi"})
        await send(bot, {"type": "agent_chunk", "taskId": message_id, "chunk": " you"})
        assert await recv_text(ws) == (
            f'{{"type":"stream_chunk","conversationId":"{conv}","messageId":"{message_id}",'
            '"seq":2,"chunk":"Hi"}'
        )
        assert (await recv(ws))["chunk"] == " you"
        # the accumulated text is cached while streaming
        for _ in range(50):
            if await kv.get(f"stream:{message_id}") == b"Hi you":
                break
            await asyncio.sleep(0.02)
        assert await kv.get(f"stream:{message_id}") == b"Hi you"
        streaming = await messages(db, conv)
        assert [(m["seq"], m["role"], m["status"]) for m in streaming] == [
            (1, "user", "completed"),
            (2, "agent", "streaming"),
        ]
        await send(bot, {"type": "agent_complete", "taskId": message_id, "content": "Final!"})
        assert await recv_text(ws) == (
            f'{{"type":"stream_end","conversationId":"{conv}","messageId":"{message_id}","seq":2}}'
        )
    stored = await messages(db, conv)
    assert stored == [
        {
            "id": stored[0]["id"],
            "seq": 1,
            "role": "user",
            "content": "Hello there",
            "status": "completed",
        },
        {"id": message_id, "seq": 2, "role": "agent", "content": "Final!", "status": "completed"},
    ]
    assert await kv.get(f"stream:{message_id}") is None


async def test_accumulated_chunks_are_sent_as_deltas(server: Server, chat: Chat) -> None:
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(chat.conversation_id, "count"))
        task_id = (await recv(bot))["taskId"]
        await recv(ws)  # stream_start
        for text in ["One", "One two", "One two", "One two three", "X"]:
            await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": text})
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": "done"})
        got = await recv_until(ws, "stream_end")
    # the repeated accumulated text forwards nothing; "X" does not extend it: a delta
    assert [e.get("chunk") for e in got] == ["One", " two", " three", "X", None]


async def test_system_prompt_prefixes_the_task(
    server: Server, chat: Chat, db: asyncpg.Connection
) -> None:
    await db.execute(
        "UPDATE agents SET system_prompt = 'Be brief.' WHERE id = $1::uuid", chat.agent_id
    )
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(chat.conversation_id, "Why?"))
        task = await recv(bot)
        assert task["content"] == "[System Prompt]\nBe brief.\n\n[User Message]\nWhy?"
        await send(bot, {"type": "agent_complete", "taskId": task["taskId"], "content": "ok"})
        await recv_until(ws, "stream_end")


async def test_offline_agent_stores_an_error_reply(
    server: Server, chat: Chat, db: asyncpg.Connection
) -> None:
    conv = chat.conversation_id
    async with user_socket(server, chat.user) as ws:
        await send(ws, say(conv, "anyone?"))
        start = await recv(ws)
        error = await recv(ws)
    message_id = start["messageId"]
    assert start == {
        "type": "stream_start",
        "conversationId": conv,
        "messageId": message_id,
        "seq": 2,
    }
    assert error == {
        "type": "stream_error",
        "conversationId": conv,
        "messageId": message_id,
        "seq": 2,
        "error": "Echo is not connected. Copy the Bot Token from bot settings and run: "
        "openclaw arinova-setup --token <bot-token>",
    }
    stored = await messages(db, conv)
    assert stored[1] == {
        "id": message_id,
        "seq": 2,
        "role": "agent",
        "status": "error",
        "content": "**Echo** is not connected yet. An AI agent needs to connect to this bot "
        "before it can respond.\n\nCopy the **Bot Token** from bot settings, then run:\n"
        "```\nopenclaw arinova-setup --token <bot-token>\n```",
    }


async def test_offline_agent_does_not_stall_the_queue(
    server: Server, chat: Chat, db: asyncpg.Connection
) -> None:
    """Quirk Q44: every message gets its error reply at once."""
    conv = chat.conversation_id
    async with user_socket(server, chat.user) as ws:
        for text in ["a", "b", "c"]:
            await send(ws, say(conv, text))
        got = [await recv(ws) for _ in range(6)]
    assert [e["type"] for e in got] == ["stream_start", "stream_error"] * 3
    stored = await messages(db, conv)
    assert [(m["role"], m["status"]) for m in stored].count(("agent", "error")) == 3
    assert [m["seq"] for m in stored] == [1, 2, 3, 4, 5, 6]


async def test_messages_queue_behind_the_active_reply(
    server: Server, chat: Chat, db: asyncpg.Connection
) -> None:
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        for text in ["first", "second", "third"]:
            await send(ws, say(conv, text))
        first = await recv(bot)
        assert first["content"] == "first"
        assert await silent(bot), "one active reply per conversation (quirk Q07)"
        await send(bot, {"type": "agent_complete", "taskId": first["taskId"], "content": "1"})
        second = await recv(bot)
        assert second["content"] == "second"
        await send(bot, {"type": "agent_error", "taskId": second["taskId"], "error": "boom"})
        third = await recv(bot)
        assert third["content"] == "third"
        await send(bot, {"type": "agent_complete", "taskId": third["taskId"], "content": "3"})
        got = await recv_until(ws, "stream_end")
        got += await recv_until(ws, "stream_error")
        got += await recv_until(ws, "stream_end")
    assert [e["type"] for e in got] == [
        "stream_start",
        "stream_end",
        "stream_start",
        "stream_error",
        "stream_start",
        "stream_end",
    ]
    assert got[3]["error"] == "boom"
    stored = await messages(db, conv)
    assert [m["seq"] for m in stored] == [1, 2, 3, 4, 5, 6]
    assert [(m["content"], m["status"]) for m in stored if m["role"] == "user"] == [
        ("first", "completed"),
        ("second", "completed"),
        ("third", "completed"),
    ]
    assert [(m["content"], m["status"]) for m in stored if m["role"] == "agent"] == [
        ("1", "completed"),
        ("boom", "error"),
        ("3", "completed"),
    ]


async def test_cancel_keeps_the_partial_text(
    server: Server, chat: Chat, db: asyncpg.Connection
) -> None:
    """Decision Q32: stream_error "Stream cancelled", row ``cancelled`` with the text so far."""
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(conv, "long story"))
        task_id = (await recv(bot))["taskId"]
        await recv(ws)
        await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": "Once upon"})
        await recv(ws)
        await send(ws, {"type": "cancel_stream", "conversationId": conv, "messageId": task_id})
        assert await recv(ws) == {
            "type": "stream_error",
            "conversationId": conv,
            "messageId": task_id,
            "seq": 2,
            "error": "Stream cancelled",
        }
        # the agent's later frames for the task are ignored
        await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": " a time"})
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": "done"})
        assert await silent(ws)
    stored = await messages(db, conv)
    assert (stored[1]["content"], stored[1]["status"]) == ("Once upon", "cancelled")


async def test_cancel_before_any_text(server: Server, chat: Chat, db: asyncpg.Connection) -> None:
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(conv, "hm"))
        task_id = (await recv(bot))["taskId"]
        await recv(ws)
        await send(ws, {"type": "cancel_stream", "conversationId": conv, "messageId": task_id})
        assert (await recv(ws))["error"] == "Stream cancelled"
    stored = await messages(db, conv)
    assert (stored[1]["content"], stored[1]["status"]) == ("Stream cancelled", "cancelled")


async def test_cancel_of_another_users_stream_is_ignored(server: Server, chat: Chat) -> None:
    """Quirk Q23: cancel_stream needs the caller to own the reply."""
    other = await sign_up(server.url)
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(conv, "mine"))
        task_id = (await recv(bot))["taskId"]
        await recv(ws)
        async with user_socket(server, other) as intruder:
            await send(
                intruder, {"type": "cancel_stream", "conversationId": conv, "messageId": task_id}
            )
            await send(intruder, {"type": "ping"})
            assert await recv(intruder) == {"type": "pong"}
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": "safe"})
        assert (await recv(ws))["type"] == "stream_end"


async def test_agent_disconnect_fails_its_tasks(
    server: Server, chat: Chat, db: asyncpg.Connection
) -> None:
    conv = chat.conversation_id
    async with user_socket(server, chat.user) as ws:
        async with agent_socket(server, chat.token) as bot:
            await send(ws, say(conv, "hello"))
            task_id = (await recv(bot))["taskId"]
            await recv(ws)
        assert (await recv(ws))["error"] == "Agent disconnected"
    stored = await messages(db, conv)
    assert (stored[1]["id"], stored[1]["content"], stored[1]["status"]) == (
        task_id,
        "Agent disconnected",
        "error",
    )


async def test_idle_task_times_out(server: Server, chat: Chat, db: asyncpg.Connection) -> None:
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(conv, "hello"))
        await recv(bot)
        await recv(ws)
        error = await recv(ws, wait=3)
    assert error["error"] == "Task timed out (idle for 1s)"
    stored = await messages(db, conv)
    assert stored[1]["status"] == "error"


async def test_a_task_that_streams_stays_and_times_out_once_it_stops(
    server: Server, chat: Chat
) -> None:
    conv = chat.conversation_id
    loop = asyncio.get_running_loop()
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(conv, "hello"))
        task_id = (await recv(bot))["taskId"]
        await recv(ws)  # stream_start
        for n in range(6):  # 2.4 s of chunks, each 0.4 s after the one before
            await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": f"{n} "})
            assert (await recv(ws))["chunk"] == f"{n} "
            await asyncio.sleep(0.4)
        stopped = loop.time() - 0.4
        error = await recv(ws, wait=3)
    assert error["error"] == "Task timed out (idle for 1s)"
    assert loop.time() - stopped >= 0.9


async def test_every_socket_of_the_user_gets_the_stream(server: Server, chat: Chat) -> None:
    async with (
        agent_socket(server, chat.token) as bot,
        user_socket(server, chat.user) as tab1,
        user_socket(server, chat.user) as tab2,
    ):
        await send(tab1, {"type": "ping"})
        await recv(tab1)
        await send(tab1, say(chat.conversation_id, "hi"))
        task_id = (await recv(bot))["taskId"]
        await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": "yo"})
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": "yo"})
        one = await recv_until(tab1, "stream_end")
        two = await recv_until(tab2, "stream_end")
    assert one == two
    assert [e["type"] for e in one] == ["stream_start", "stream_chunk", "stream_end"]


async def test_foreign_and_unknown_conversations_are_ignored(
    server: Server, chat: Chat, db: asyncpg.Connection
) -> None:
    other = await sign_up(server.url)
    async with user_socket(server, other) as ws:
        await send(ws, say(chat.conversation_id, "let me in"))
        await send(ws, say("00000000-0000-4000-8000-000000000000", "nobody"))
        assert await silent(ws)
    assert await messages(db, chat.conversation_id) == []


async def test_group_messages_are_stored_without_reply(
    server: Server, chat: Chat, db: asyncpg.Connection
) -> None:
    """Decision Q48."""
    from tests.support.auth import authed_client
    from tests.support.ws import post

    async with authed_client(server.url, chat.user) as client:
        group = await post(
            client, "/api/conversations/group", {"title": "G", "agentIds": [chat.agent_id]}
        )
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(group["id"], "hello group"))
        assert await silent(bot)
        assert await silent(ws, 0.1)
    stored = await messages(db, group["id"])
    assert [(m["seq"], m["role"], m["content"]) for m in stored] == [(1, "user", "hello group")]


async def test_replies_in_two_conversations_run_at_once(server: Server, chat: Chat) -> None:
    second = await chat.new_conversation(server)
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, say(chat.conversation_id, "one"))
        await send(ws, say(second, "two"))
        tasks = {(await recv(bot))["conversationId"], (await recv(bot))["conversationId"]}
        assert tasks == {chat.conversation_id, second}
        starts = [await recv(ws), await recv(ws)]
        assert {e["type"] for e in starts} == {"stream_start"}
        assert json.dumps(starts)


async def test_an_emoji_split_between_chunks_reaches_the_user(
    server: Server, chat: Chat, db: asyncpg.Connection, kv: redis.Redis
) -> None:
    """JSON.parse takes lone surrogate escapes, and JSON.stringify writes them back: an
    agent that cuts a reply between the two halves of an emoji must still be streamed."""
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await ws.send(
            f'{{"type":"send_message","conversationId":"{conv}","content":"lone \\ud800 half"}}'
        )
        task = await recv(bot)
        task_id = task["taskId"]
        assert task["content"] == "lone \ufffd half"  # stored as a UTF-8 writer stores it
        await recv(ws)
        await bot.send(f'{{"type":"agent_chunk","taskId":"{task_id}","chunk":"Hi \\ud83d"}}')
        await bot.send(f'{{"type":"agent_chunk","taskId":"{task_id}","chunk":"\\ude00!"}}')
        first, second = await recv_text(ws), await recv_text(ws)
        assert first.endswith(',"seq":2,"chunk":"Hi \\ud83d"}')
        assert second.endswith(',"seq":2,"chunk":"\\ude00!"}')
        joined = json.loads(first)["chunk"] + json.loads(second)["chunk"]
        # a browser's strings are UTF-16: the two halves make the emoji again
        assert joined.encode("utf-16-le", "surrogatepass").decode("utf-16-le") == "Hi \U0001f600!"
        for _ in range(50):
            if await kv.get(f"stream:{task_id}") == "Hi \U0001f600!".encode():
                break
            await asyncio.sleep(0.02)
        assert await kv.get(f"stream:{task_id}") == "Hi \U0001f600!".encode()
        await bot.send(f'{{"type":"agent_complete","taskId":"{task_id}","content":"Hi \\ud83d!"}}')
        await recv_until(ws, "stream_end")
    stored = await messages(db, conv)
    assert stored[0]["content"] == "lone \ufffd half"
    assert stored[1]["content"] == "Hi \ufffd!"
