"""The published Python agent SDK (``arinova-agent-sdk`` 0.0.1 from PyPI) against the
server: it connects, gets a task, streams a reply that a /ws client receives and that is
stored."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from arinova.server import Server
from tests.support.auth import sign_up
from tests.support.servers import StartServer
from tests.support.ws import Chat, recv, recv_until, send, user_socket

arinova_agent = pytest.importorskip("arinova_agent")


@pytest.fixture(scope="module")
async def server(start_module_server: StartServer) -> Server:
    return await start_module_server()


async def test_sdk_agent_streams_a_reply(server: Server, database: str) -> None:
    chat = await Chat.create(server, await sign_up(server.url), name="SDK Bot")
    agent = arinova_agent.ArinovaAgent(server_url=server.ws_url, bot_token=chat.token)
    connected = asyncio.Event()
    agent.on_connected(connected.set)

    @agent.on_task
    async def answer(task: arinova_agent.Task) -> None:
        text = ""
        for word in ["You", " said:", f" {task.content}"]:
            text += word
            task.send_chunk(word)
            await asyncio.sleep(0)
        task.send_complete(text)

    runner = asyncio.create_task(agent.connect())
    try:
        async with asyncio.timeout(5):
            await connected.wait()
        async with user_socket(server, chat.user) as ws:
            await send(
                ws,
                {"type": "send_message", "conversationId": chat.conversation_id, "content": "hi"},
            )
            events = await recv_until(ws, "stream_end")
            await send(ws, {"type": "ping"})
            assert await recv(ws) == {"type": "pong"}
    finally:
        await agent.disconnect()
        runner.cancel()
    assert [e["type"] for e in events] == [
        "stream_start",
        "stream_chunk",
        "stream_chunk",
        "stream_chunk",
        "stream_end",
    ]
    assert "".join(e["chunk"] for e in events if e["type"] == "stream_chunk") == "You said: hi"
    conn = await asyncpg.connect(database)
    try:
        row = await conn.fetchrow(
            "SELECT content, status::text FROM messages WHERE id = $1::uuid", events[0]["messageId"]
        )
    finally:
        await conn.close()
    assert dict(row) == {"content": "You said: hi", "status": "completed"}
