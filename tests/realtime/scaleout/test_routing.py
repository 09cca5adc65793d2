"""Several processes on one Redis: a user's events reach only the processes that hold a
socket of the user, and every reader of a streaming reply, in any process, sees the text
the user's socket was sent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from arinova.server import Server
from arinova.settings import RealtimeSettings
from tests.support.auth import authed_client, sign_up
from tests.support.servers import StartServer
from tests.support.ws import Chat, agent_socket, recv, recv_until, send, user_socket

CONFIG = RealtimeSettings(sweep_interval_s=0.05, process_beat_s=0.2, process_ttl_s=1.0)


def events_received(server: Server) -> int:
    coordinator: Any = server.state.realtime.coordinator  # type: ignore[attr-defined]
    return int(coordinator.events_received)


def joined_pairs(text: str) -> str:
    """The text as JavaScript holds it: a pair that came in two chunks is one character."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")


async def sync(ws: Any, known: dict[str, int]) -> dict[str, Any]:
    await send(ws, {"type": "sync", "conversations": known})
    return (await recv_until(ws, "sync_response"))[-1]


@pytest.fixture(scope="module")
async def pair(start_module_server: StartServer) -> tuple[Server, Server]:
    return (
        await start_module_server(ws_message_rate_limit=1000, realtime=CONFIG),
        await start_module_server(ws_message_rate_limit=1000, realtime=CONFIG),
    )


async def test_every_reader_in_either_process_sees_what_the_socket_was_sent(
    pair: tuple[Server, Server],
) -> None:
    """The reply runs in the agent's process; after each chunk (5 ms apart) the REST list of
    both processes and a sync on the user's process carry exactly the received text."""
    user_side, agent_side = pair
    chat = await Chat.create(user_side, await sign_up(user_side.url))
    conv = chat.conversation_id
    received = ""
    async with (
        agent_socket(agent_side, chat.token) as bot,
        user_socket(user_side, chat.user) as ws,
        user_socket(user_side, chat.user) as syncer,
        authed_client(user_side.url, chat.user) as near,
        authed_client(agent_side.url, chat.user) as far,
    ):
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "go"})
        task_id = (await recv(bot))["taskId"]
        await recv(syncer)  # its stream_start
        for i in range(40):
            chunk = "é" * (i % 3) + f"c{i};" + ("\U0001f600" if i % 5 == 0 else "")
            if i == 7:
                chunk += "\ud83d"  # a pair split between two chunks
            if i == 8:
                chunk = "\ude00" + chunk
            await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": chunk})
            received += (await recv_until(ws, "stream_chunk"))[-1]["chunk"]
            await recv(syncer)  # the chunk
            if i == 7:
                continue
            received = joined_pairs(received)
            for client in (near, far):
                listed = (await client.get(f"/api/conversations/{conv}/messages")).json()
                reply = next(m for m in listed["messages"] if m["id"] == task_id)
                assert (reply["status"], reply["content"]) == ("streaming", received)
            answer = await sync(syncer, {conv: 1})
            assert answer["missedMessages"][-1]["content"] == received
            await asyncio.sleep(0.005)
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": received})
        await recv_until(ws, "stream_end")
        listed = (await near.get(f"/api/conversations/{conv}/messages")).json()
        reply = next(m for m in listed["messages"] if m["id"] == task_id)
        assert (reply["status"], reply["content"]) == ("completed", received)
    assert user_side.state.kv is not None
    assert await user_side.state.kv.get(f"stream:{task_id}") is None


async def test_a_process_without_the_users_socket_receives_none_of_its_events(
    start_server: StartServer,
) -> None:
    servers = [await start_server(realtime=CONFIG) for _ in range(4)]
    user_side, agent_side, idle_one, idle_two = servers
    chat = await Chat.create(user_side, await sign_up(user_side.url))
    conv = chat.conversation_id
    # another user with a socket on a third process: it receives only that user's events
    other = await Chat.create(user_side, await sign_up(user_side.url))
    await asyncio.sleep(0.5)  # every process has seen the others beat
    async with (
        agent_socket(agent_side, chat.token) as bot,
        user_socket(user_side, chat.user) as ws,
        user_socket(idle_one, other.user),
    ):
        await asyncio.sleep(0.1)  # the subscriptions are made
        before = [events_received(s) for s in servers]
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "go"})
        task_id = (await recv(bot))["taskId"]
        for i in range(50):
            await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": f"{i};"})
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": "done"})
        got = await recv_until(ws, "stream_end")
        assert [e["type"] for e in got].count("stream_chunk") == 50
        counts = [events_received(s) - n for s, n in zip(servers, before, strict=True)]
    # stream_start, 50 chunks, stream_end: each once, to the user's process only
    assert counts == [52, 0, 0, 0]
    del idle_two
