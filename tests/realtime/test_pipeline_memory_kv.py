"""Without REDIS_URL the realtime layer keeps its shared state in memory (quirk Q10): the
same stream, offline queue and rate limit, one process."""

from __future__ import annotations

import asyncio

import pytest

from arinova.server import Server
from arinova.settings import RealtimeSettings
from tests.support.auth import authed_client, sign_up
from tests.support.clock import ManualClock
from tests.support.servers import StartServer
from tests.support.ws import Chat, agent_socket, post, recv, recv_until, send, user_socket

#: the wall clock stands mid-minute: the per-minute rate limit never straddles two
CLOCK = ManualClock()
CONFIG = RealtimeSettings(sweep_interval_s=0.05, stream_cache_interval_s=0)


@pytest.fixture(scope="module")
async def server(start_module_server: StartServer) -> Server:
    return await start_module_server(redis_url="", realtime=CONFIG, clock=CLOCK)


async def test_stream_offline_queue_and_rate_limit_in_memory(server: Server) -> None:
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    kv = server.state.kv
    async with agent_socket(server, chat.token) as bot:
        async with user_socket(server, chat.user) as ws:
            await send(ws, {"type": "send_message", "conversationId": conv, "content": "hi"})
            task_id = (await recv(bot))["taskId"]
            await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": "Hey"})
            await recv_until(ws, "stream_chunk")
            await asyncio.sleep(0.05)
            assert await kv.get(f"stream:{task_id}") == b"Hey"
        hub = server.process.realtime.hub
        for _ in range(100):
            if chat.user.id not in hub.users:
                break
            await asyncio.sleep(0.01)
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": "Hey"})
        await asyncio.sleep(0.1)
        async with user_socket(server, chat.user) as ws:
            assert await recv(ws) == {
                "type": "stream_end",
                "conversationId": conv,
                "messageId": task_id,
                "seq": 2,
            }
    assert await kv.get(f"stream:{task_id}") is None

    async with authed_client(server.url, chat.user) as client:
        group = await post(
            client, "/api/conversations/group", {"title": "G", "agentIds": [chat.agent_id]}
        )
    async with user_socket(server, chat.user) as ws:
        for i in range(10):  # one message above was counted already
            await send(
                ws, {"type": "send_message", "conversationId": group["id"], "content": str(i)}
            )
        assert (await recv(ws))["error"].startswith("Rate limit exceeded")
