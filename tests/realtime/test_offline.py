"""The offline event queue and the send_message rate limit (websocket.md §1.7, §7,
quirk Q15)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from arinova.server import Server
from arinova.settings import RealtimeSettings
from tests.support.auth import authed_client, sign_up
from tests.support.clock import ManualClock
from tests.support.config import TEST_REDIS_URL
from tests.support.servers import StartServer
from tests.support.ws import Chat, agent_socket, post, recv, recv_text, send, silent, user_socket

#: the wall clock stands mid-minute: the per-minute rate limit never straddles two
CLOCK = ManualClock()
CONFIG = RealtimeSettings(sweep_interval_s=0.05)


@pytest.fixture(scope="module")
async def server(start_module_server: StartServer) -> Server:
    return await start_module_server(realtime=CONFIG, clock=CLOCK)


@pytest.fixture(scope="module")
async def kv() -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    yield client
    await client.aclose()


async def wait_offline(server: Server, user_id: str) -> None:
    hub = server.process.realtime.hub
    for _ in range(100):
        if user_id not in hub.users:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the socket is still registered")


async def test_events_wait_for_the_next_socket(server: Server, kv: redis.Redis) -> None:
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot:
        async with user_socket(server, chat.user) as ws:
            await send(ws, {"type": "send_message", "conversationId": conv, "content": "hi"})
            task_id = (await recv(bot))["taskId"]
            start = await recv_text(ws)
        await wait_offline(server, chat.user.id)
        await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": "a"})
        await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": "b"})
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": "ab"})
        key = f"pending_ws_events:{chat.user.id}"
        for _ in range(100):
            if await kv.zcard(key):
                break
            await asyncio.sleep(0.01)
        # chunks are not stored (quirk Q15): only the end
        assert await kv.zrange(key, 0, -1) == [
            json.dumps(
                {"type": "stream_end", "conversationId": conv, "messageId": task_id, "seq": 2},
                separators=(",", ":"),
            ).encode()
        ]
        # the queue's expiry follows its first event (the push runs in the background)
        for _ in range(100):
            if await kv.ttl(key) > 0:
                break
            await asyncio.sleep(0.01)
        assert 86_000 < await kv.ttl(key) <= 86_400
        async with user_socket(server, chat.user) as ws:
            await send(ws, {"type": "ping"})
            # pending events come first, to this socket only, then the answers
            assert await recv(ws) == {
                "type": "stream_end",
                "conversationId": conv,
                "messageId": task_id,
                "seq": 2,
            }
            assert await recv(ws) == {"type": "pong"}
        assert await kv.exists(key) == 0
    assert json.loads(start)["type"] == "stream_start"


async def test_offline_queue_keeps_the_newest_1000(server: Server, kv: redis.Redis) -> None:
    user = await sign_up(server.url)
    offline = server.process.realtime.offline
    for i in range(1003):
        await offline.push(user.id, f'{{"n":{i}}}')
    key = f"pending_ws_events:{user.id}"
    assert await kv.zcard(key) == 1000
    assert (await kv.zrange(key, 0, 0)) == [b'{"n":3}']
    async with user_socket(server, user) as ws:
        first = await recv(ws)
        assert first == {"n": 3}
        for i in range(4, 1003):
            assert await recv(ws) == {"n": i}
        assert await silent(ws, 0.1)


async def test_rate_limit_is_10_messages_a_minute(server: Server, kv: redis.Redis) -> None:
    chat = await Chat.create(server, await sign_up(server.url))
    async with authed_client(server.url, chat.user) as client:
        group = await post(
            client, "/api/conversations/group", {"title": "G", "agentIds": [chat.agent_id]}
        )
    minute = int(CLOCK.time() * 1000) // 60_000
    async with user_socket(server, chat.user) as ws:
        for i in range(11):
            await send(
                ws, {"type": "send_message", "conversationId": group["id"], "content": str(i)}
            )
        assert await recv(ws) == {
            "type": "stream_error",
            "conversationId": group["id"],
            "messageId": "",
            "seq": 0,
            "error": "Rate limit exceeded. Please wait before sending more messages.",
        }
        assert await silent(ws, 0.1)
    key = f"ws:rate:{chat.user.id}:{minute}"
    assert await kv.get(key) == b"11"
    assert 110 < await kv.ttl(key) <= 120
