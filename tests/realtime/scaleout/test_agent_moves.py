"""An agent whose socket moves to another server process mid-reply (websocket.md §2.2
item 7): the replaced socket's tasks stay alive in the process that runs them, the new
socket completes them from wherever it is, and they fail only when the agent is gone
everywhere."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from arinova.kv import keys
from arinova.server import Server
from arinova.settings import RealtimeSettings
from tests.realtime.scaleout.conftest import ServeProcess, SharedRedis
from tests.support.auth import sign_up
from tests.support.servers import StartServer
from tests.support.ws import (
    Chat,
    agent_socket,
    close_of,
    recv,
    recv_until,
    send,
    silent,
    user_socket,
)

CONFIG = RealtimeSettings(sweep_interval_s=0.05, process_beat_s=0.2, process_ttl_s=1.0)


@pytest.fixture(scope="module")
async def pair(start_module_server: StartServer) -> tuple[Server, Server]:
    """Two processes of one deployment (one Redis, one database)."""
    one, two = [
        await start_module_server(ws_message_rate_limit=1000, realtime=CONFIG) for _ in range(2)
    ]
    return one, two


async def stored_reply(database: str, message_id: str) -> tuple[str, str]:
    conn = await asyncpg.connect(database)
    try:
        row = await conn.fetchrow(
            "SELECT content, status::text AS status FROM messages WHERE id = $1::uuid", message_id
        )
    finally:
        await conn.close()
    assert row is not None
    return row["content"], row["status"]


def chunk(task_id: str, text: str) -> dict[str, Any]:
    return {"type": "agent_chunk", "taskId": task_id, "chunk": text}


@pytest.mark.parametrize("user_on", ["old", "new"], ids=["user-with-old", "user-with-new"])
async def test_a_reply_goes_on_through_the_agents_socket_in_another_process(
    pair: tuple[Server, Server], database: str, user_on: str
) -> None:
    old_side, new_side = pair
    user_side = old_side if user_on == "old" else new_side
    chat = await Chat.create(old_side, await sign_up(old_side.url))
    other = await Chat.create(old_side, chat.user, name="Other")
    conv = chat.conversation_id
    async with user_socket(user_side, chat.user) as ws, agent_socket(old_side, chat.token) as old:
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "hi"})
        task_id = (await recv(old))["taskId"]
        await send(old, chunk(task_id, "Hel"))
        got = await recv_until(ws, "stream_chunk")
        assert [e["type"] for e in got] == ["stream_start", "stream_chunk"]
        seq = got[0]["seq"]
        async with (
            agent_socket(new_side, other.token) as stranger,
            agent_socket(new_side, chat.token) as new,
        ):
            # another agent's events for the task are ignored (websocket.md §2.2 item 6)
            await send(stranger, chunk(task_id, "not mine"))
            await send(stranger, {"type": "agent_complete", "taskId": task_id, "content": "x"})
            # right after auth_ok: accumulated text (§4), deltas, the whole text re-sent
            await send(new, chunk(task_id, "Hello"))
            await send(new, chunk(task_id, "Hello wor"))
            await send(new, chunk(task_id, "ld"))
            await send(new, chunk(task_id, "Hello world"))
            assert await close_of(old) == (4409, "Replaced by new connection")
            await send(new, chunk(task_id, "!"))
            await send(new, {"type": "agent_complete", "taskId": task_id, "content": "Hi world!"})
            got = await recv_until(ws, "stream_end")
            assert await silent(ws, 0.2)
    ids = {"conversationId": conv, "messageId": task_id, "seq": seq}
    assert got == [
        {"type": "stream_chunk", **ids, "chunk": "lo"},
        {"type": "stream_chunk", **ids, "chunk": " wor"},
        {"type": "stream_chunk", **ids, "chunk": "ld"},
        {"type": "stream_chunk", **ids, "chunk": "!"},
        {"type": "stream_end", **ids},
    ]
    assert await stored_reply(database, task_id) == ("Hi world!", "completed")


async def test_the_moved_agent_going_away_fails_the_reply_where_it_runs(
    pair: tuple[Server, Server], database: str
) -> None:
    old_side, new_side = pair
    chat = await Chat.create(old_side, await sign_up(old_side.url))
    conv = chat.conversation_id
    async with user_socket(old_side, chat.user) as ws:
        async with agent_socket(old_side, chat.token) as old:
            await send(ws, {"type": "send_message", "conversationId": conv, "content": "hi"})
            task_id = (await recv(old))["taskId"]
            await send(old, chunk(task_id, "part"))
            seq = (await recv_until(ws, "stream_chunk"))[-1]["seq"]
            async with agent_socket(new_side, chat.token) as new:
                assert (await close_of(old))[0] == 4409
                # the replaced socket's close fails nothing: the task is the new socket's
                assert await silent(ws, 0.3)
                await send(new, chunk(task_id, " two"))
                assert (await recv(ws))["chunk"] == " two"
        # the agent's registered socket closed: gone everywhere
        error = await recv(ws)
        assert error == {
            "type": "stream_error",
            "conversationId": conv,
            "messageId": task_id,
            "seq": seq,
            "error": "Agent disconnected",
        }
        assert await stored_reply(database, task_id) == ("Agent disconnected", "error")
        # the conversation is free again: the next message gets a reply
        async with agent_socket(new_side, chat.token) as bot:
            await send(ws, {"type": "send_message", "conversationId": conv, "content": "again"})
            assert (await recv(bot))["content"] == "again"


async def test_the_moved_agents_process_dying_fails_the_reply_where_it_runs(
    pair: tuple[Server, Server],
    serve_process: ServeProcess,
    database: str,
) -> None:
    old_side = pair[0]
    chat = await Chat.create(old_side, await sign_up(old_side.url))
    conv = chat.conversation_id
    async with user_socket(old_side, chat.user) as ws, agent_socket(old_side, chat.token) as old:
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "hi"})
        task_id = (await recv(old))["taskId"]
        await send(old, chunk(task_id, "one"))
        await recv_until(ws, "stream_chunk")
        async with agent_socket(serve_process, chat.token) as new:
            assert (await close_of(old))[0] == 4409
            await send(new, chunk(task_id, " two"))
            assert (await recv(ws))["chunk"] == " two"
            await serve_process.kill()
        # its liveness entry lives 5 s; then the process that takes it over tells the
        # others (or itself) that its agents are gone
        error = await recv(ws, 15)
        assert (error["type"], error["messageId"], error["error"]) == (
            "stream_error",
            task_id,
            "Agent disconnected",
        )
    assert await stored_reply(database, task_id) == ("Agent disconnected", "error")


async def test_a_socket_replaced_in_its_own_process_hands_its_task_on(
    pair: tuple[Server, Server], database: str
) -> None:
    srv = pair[0]
    chat = await Chat.create(srv, await sign_up(srv.url))
    conv = chat.conversation_id
    async with user_socket(srv, chat.user) as ws, agent_socket(srv, chat.token) as old:
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "hi"})
        task_id = (await recv(old))["taskId"]
        await send(old, chunk(task_id, "a"))
        await recv_until(ws, "stream_chunk")
        async with agent_socket(srv, chat.token) as new:
            assert (await close_of(old))[0] == 4409
            await send(new, chunk(task_id, "ab"))
            await send(new, {"type": "agent_complete", "taskId": task_id, "content": "ab"})
            got = await recv_until(ws, "stream_end")
    assert [(e["type"], e.get("chunk")) for e in got] == [
        ("stream_chunk", "b"),
        ("stream_end", None),
    ]
    assert await stored_reply(database, task_id) == ("ab", "completed")


async def test_agents_gone_while_their_registration_is_on_its_way_are_not_left_registered(
    pair: tuple[Server, Server], shared_redis: SharedRedis
) -> None:
    """A socket that closes while its agent is being registered across processes (a drain
    for a restart closes sockets that have just authenticated): the entry is removed
    after it is written, so none outlives the socket."""
    coordinator = pair[0].process.realtime.coordinator
    agent_ids = [str(uuid.uuid4()) for _ in range(50)]
    ups = [asyncio.create_task(coordinator.agent_up(agent_id, [])) for agent_id in agent_ids]
    for agent_id in agent_ids:
        coordinator.agent_down(agent_id)
    await asyncio.gather(*ups)
    assert await pair[0].process.realtime.settle(5.0)  # the unregistering has run
    async with shared_redis.client() as redis:
        entries = await redis.hmget(keys.RT_AGENTS, agent_ids)
    assert [a for a, entry in zip(agent_ids, entries, strict=True) if entry] == []
