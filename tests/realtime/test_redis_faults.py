"""Two processes on a private Redis that the test stalls: live chunks between processes
survive a Redis stall (every chunk once, in order)."""

from __future__ import annotations

import asyncio

from arinova.settings import RealtimeSettings
from tests.support.auth import sign_up
from tests.support.redis_server import RedisServer
from tests.support.servers import StartServer
from tests.support.ws import Chat, agent_socket, recv, send, user_socket

CONFIG = RealtimeSettings(sweep_interval_s=0.05, process_beat_s=0.2, process_ttl_s=1.0)
CHUNKS = 30


async def test_a_redis_stall_mid_stream_loses_no_chunk(
    start_server: StartServer, redis_server: RedisServer
) -> None:
    settings = {"redis_url": redis_server.url(), "ws_message_rate_limit": 1000, "realtime": CONFIG}
    user_side = await start_server(**settings)
    agent_side = await start_server(**settings)
    chat = await Chat.create(user_side, await sign_up(user_side.url))
    conv = chat.conversation_id
    async with (
        user_socket(user_side, chat.user) as ws,
        agent_socket(agent_side, chat.token) as bot,
    ):
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "go"})
        task_id = (await recv(bot))["taskId"]
        assert (await recv(ws))["type"] == "stream_start"
        for i in range(CHUNKS):
            if i == 10:
                await redis_server.pause()
            if i == 20:
                await asyncio.sleep(10)  # a stall of ten seconds
                await redis_server.resume()
            await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": f"{i};"})
            await asyncio.sleep(0.02)
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": "done"})
        chunks: list[str] = []
        while True:
            event = await asyncio.wait_for(recv(ws), 20)
            if event["type"] == "stream_chunk":
                chunks.append(event["chunk"])
                continue
            assert event["type"] == "stream_end", event
            break
    assert chunks == [f"{i};" for i in range(CHUNKS)]
