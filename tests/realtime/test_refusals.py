"""Every refused message gets an answer: a ``send_message`` that finds the socket's inbox
full is refused as rate-limited (websocket.md §1.7), a stored message that finds its
conversation's reply queue full is answered with an error reply (the shape of §3 step 5),
and no stored message is left without a reply."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from websockets.asyncio.client import ClientConnection

from arinova.realtime import events
from arinova.settings import RealtimeSettings
from tests.support.auth import sign_up
from tests.support.servers import StartServer
from tests.support.webapp import WebAppView
from tests.support.ws import Chat, agent_socket, recv, recv_until, send, silent, user_socket

FLOOD = 110


@contextlib.asynccontextmanager
async def answering(bot: ClientConnection) -> AsyncIterator[list[str]]:
    """The agent completes every task it gets; yields the contents of the tasks."""
    contents: list[str] = []

    async def answer() -> None:
        while True:
            task = await recv(bot, 30)
            contents.append(task["content"])
            await send(bot, {"type": "agent_complete", "taskId": task["taskId"], "content": "ok"})

    worker = asyncio.create_task(answer())
    try:
        yield contents
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker


async def messages_of(database: str, conversation_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database)
    try:
        return await conn.fetch(
            "SELECT role, content, status FROM messages WHERE conversation_id = $1::uuid "
            "ORDER BY seq",
            conversation_id,
        )
    finally:
        await conn.close()


def assert_every_message_answered(rows: list[asyncpg.Record]) -> None:
    roles = [row["role"] for row in rows]
    assert roles.count("user") == roles.count("agent")
    assert [row for row in rows if row["status"] == "streaming"] == []


async def test_a_flood_of_send_message_frames_is_stored_and_answered_or_refused(
    start_server: StartServer, database: str
) -> None:
    server = await start_server(
        ws_message_rate_limit=1000,
        realtime=RealtimeSettings(sweep_interval_s=0.05, max_pending_frames=16),
    )
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    refused = answered = 0
    async with (
        agent_socket(server, chat.token) as bot,
        user_socket(server, chat.user) as ws,
        answering(bot) as tasks,
    ):
        for i in range(FLOOD):
            await send(ws, {"type": "send_message", "conversationId": conv, "content": f"m{i}"})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                while refused + answered < FLOOD:
                    event = await recv(ws, 30)
                    if event["type"] not in ("stream_end", "stream_error"):
                        continue
                    if event["messageId"]:
                        answered += 1
                        assert event["type"] == "stream_end", event
                    else:
                        refused += 1
                        assert event == {
                            "type": "stream_error",
                            "conversationId": conv,
                            "messageId": "",
                            "seq": 0,
                            "error": events.RATE_LIMITED,
                        }
        assert answered + refused == FLOOD
        assert answered == len(tasks)
        assert refused > 0  # the flood did overflow the inbox
        assert await silent(ws)
    rows = await messages_of(database, conv)
    stored = [row["content"] for row in rows if row["role"] == "user"]
    assert len(stored) == answered
    assert stored == sorted(stored, key=lambda content: int(content[1:]))  # in sent order
    assert_every_message_answered(rows)


async def test_frames_of_a_flood_get_what_they_would_get(start_server: StartServer) -> None:
    """Past the inbox's bound a ping is still answered and a bad frame still gets its
    protocol error."""
    server = await start_server(
        ws_message_rate_limit=1000,
        realtime=RealtimeSettings(sweep_interval_s=0.05, max_pending_frames=2),
    )
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    async with user_socket(server, chat.user) as ws:
        for i in range(30):
            await send(ws, {"type": "send_message", "conversationId": conv, "content": f"m{i}"})
            await send(ws, {"type": "ping"})
            await ws.send("{not json")
        got: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                while [e["type"] for e in got].count("pong") < 30 or len(
                    [e for e in got if e.get("error") == events.INVALID_JSON]
                ) < 30:
                    got.append(await recv(ws, 10))
    assert [e["type"] for e in got].count("pong") == 30
    assert len([e for e in got if e.get("error") == events.INVALID_JSON]) == 30


@pytest.mark.parametrize("coordinator", ["redis", "memory"])
async def test_messages_past_a_full_reply_queue_are_answered_with_an_error(
    start_server: StartServer, database: str, coordinator: str
) -> None:
    memory = {"redis_url": ""} if coordinator == "memory" else {}
    server = await start_server(
        ws_message_rate_limit=1000,
        realtime=RealtimeSettings(sweep_interval_s=0.05, max_queued_replies=2),
        **memory,
    )
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    view = WebAppView(conv)
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        for i in range(5):  # one reply runs, two wait, two find the queue full
            await send(ws, {"type": "send_message", "conversationId": conv, "content": f"m{i}"})
        first = await recv(bot)
        assert first["content"] == "m0"
        got: list[dict[str, Any]] = []
        while len(got) < 5:  # m0's stream_start, two stream_start + stream_error pairs
            got.append(await recv(ws))
        assert sorted(e["type"] for e in got) == ["stream_error"] * 2 + ["stream_start"] * 3
        assert first["taskId"] in [e["messageId"] for e in got if e["type"] == "stream_start"]
        full = [e for e in got if e["type"] == "stream_error"]
        assert [e["error"] for e in full] == [events.REPLY_QUEUE_FULL] * 2
        for event in full:
            assert event["messageId"] and event["seq"] > 0
        assert await silent(bot, 0.1)  # the agent is not asked for them

        await send(bot, {"type": "agent_complete", "taskId": first["taskId"], "content": "ok"})
        asked = [first["content"]]
        for _ in range(2):
            task = await recv(bot)
            asked.append(task["content"])
            await send(bot, {"type": "agent_complete", "taskId": task["taskId"], "content": "ok"})
        assert asked == ["m0", "m1", "m2"]
        assert await silent(bot, 0.2)
        for _ in range(3):
            got += await recv_until(ws, "stream_end")
        assert await silent(ws)
    for event in got:
        view.apply(event)
    assert (
        sorted((b.status, b.content) for b in view.bubbles)
        == [("completed", "")] * 3 + [("error", events.REPLY_QUEUE_FULL)] * 2
    )
    rows = await messages_of(database, conv)
    assert_every_message_answered(rows)
    assert [(r["role"], r["content"], r["status"]) for r in rows if r["status"] == "error"] == [
        ("agent", events.REPLY_QUEUE_FULL, "error")
    ] * 2
