"""Several server processes on one Redis behave as one server (decisions.md Q10): the agent's
socket, the user's sockets and REST uploads each in a different process."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import orjson
import pytest
from redis.asyncio.cluster import RedisCluster as ClusterClient

from arinova.kv import keys
from arinova.server import Server
from arinova.settings import RealtimeSettings
from tests.realtime.scaleout.conftest import ServeProcess, SharedRedis
from tests.support.auth import authed_client, sign_up
from tests.support.ports import free_port
from tests.support.push_service import LocalPushService, new_vapid_keys
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
VAPID_PUBLIC, VAPID_PRIVATE = new_vapid_keys()


@pytest.fixture(scope="module")
async def pair(start_module_server: StartServer) -> tuple[Server, Server]:
    """Two processes of one deployment."""
    one, two = [
        await start_module_server(
            ws_message_rate_limit=1000,
            vapid_public_key=VAPID_PUBLIC,
            vapid_private_key=VAPID_PRIVATE,
            allow_private_outbound=True,
            realtime=CONFIG,
        )
        for _ in range(2)
    ]
    return one, two


async def rows(database: str, conversation_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database)
    try:
        return await conn.fetch(
            "SELECT id::text AS id, seq, role::text AS role, content, status::text AS status"
            " FROM messages WHERE conversation_id = $1::uuid ORDER BY seq",
            conversation_id,
        )
    finally:
        await conn.close()


async def upload(server: Server, chat: Chat, caption: str) -> None:
    async with authed_client(server.url, chat.user) as client:
        response = await client.post(
            f"/api/conversations/{chat.conversation_id}/upload",
            files={"file": ("note.txt", b"hello", "text/plain")},
            data={"caption": caption},
        )
    assert response.status_code == 200, response.text


async def test_reply_streams_across_processes(pair: tuple[Server, Server], database: str) -> None:
    user_side, agent_side = pair
    chat = await Chat.create(user_side, await sign_up(user_side.url))
    conv = chat.conversation_id
    async with (
        user_socket(user_side, chat.user) as ws,
        agent_socket(agent_side, chat.token) as bot,
    ):
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "hi"})
        task = await recv(bot)
        assert (task["conversationId"], task["content"]) == (conv, "hi")
        await send(bot, {"type": "agent_chunk", "taskId": task["taskId"], "chunk": "Hel"})
        await send(bot, {"type": "agent_chunk", "taskId": task["taskId"], "chunk": "Hello"})
        await send(bot, {"type": "agent_complete", "taskId": task["taskId"], "content": "Hello!"})
        got = await recv_until(ws, "stream_end")
        assert got == [
            {"type": "stream_start", "conversationId": conv, "messageId": task["taskId"], "seq": 2},
            {
                "type": "stream_chunk",
                "conversationId": conv,
                "messageId": task["taskId"],
                "seq": 2,
                "chunk": "Hel",
            },
            {
                "type": "stream_chunk",
                "conversationId": conv,
                "messageId": task["taskId"],
                "seq": 2,
                "chunk": "lo",
            },
            {"type": "stream_end", "conversationId": conv, "messageId": task["taskId"], "seq": 2},
        ]
        # the REST hooks of either process see the agent's socket
        for srv in pair:
            assert srv.state.realtime.agent_connected(chat.agent_id)
        # an upload on either process starts a reply in the agent's process
        for srv, caption in ((user_side, "one"), (agent_side, "two")):
            await upload(srv, chat, caption)
            task = await recv(bot)
            assert task["content"].startswith(caption)
            await send(bot, {"type": "agent_complete", "taskId": task["taskId"], "content": "ok"})
            assert (await recv_until(ws, "stream_end"))[-1]["messageId"] == task["taskId"]
    stored = [(r["seq"], r["role"], r["content"], r["status"]) for r in await rows(database, conv)]
    assert stored[:2] == [(1, "user", "hi", "completed"), (2, "agent", "Hello!", "completed")]
    assert [(s[0], s[1], s[3]) for s in stored[2:]] == [
        (3, "user", "completed"),
        (4, "agent", "completed"),
        (5, "user", "completed"),
        (6, "agent", "completed"),
    ]


async def test_cancel_and_sync_from_another_process(
    pair: tuple[Server, Server], database: str
) -> None:
    user_side, agent_side = pair
    chat = await Chat.create(user_side, await sign_up(user_side.url))
    conv = chat.conversation_id
    async with (
        user_socket(user_side, chat.user) as ws,
        agent_socket(agent_side, chat.token) as bot,
    ):
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "long"})
        task = await recv(bot)
        await send(bot, {"type": "agent_chunk", "taskId": task["taskId"], "chunk": "part"})
        await recv_until(ws, "stream_chunk")
        # a sync whose map covers the reply: the client shows it already (decision Q19)
        await send(ws, {"type": "sync", "conversations": {conv: 2}})
        got = await recv(ws)
        assert got["type"] == "sync_response"
        assert got["conversations"][0]["lastMessage"]["status"] == "streaming"
        assert await silent(ws, 0.2)
        # a sync that does not name the conversation: the reply running in the agent's
        # process is re-attached to the asking socket
        await send(ws, {"type": "sync", "conversations": {}})
        got = await recv_until(ws, "stream_chunk")
        assert [e["type"] for e in got] == ["sync_response", "stream_start", "stream_chunk"]
        assert got[-1]["chunk"] == "part"
        cancel = {"type": "cancel_stream", "conversationId": conv, "messageId": task["taskId"]}
        await send(ws, cancel)
        error = await recv(ws)
        assert error == {
            "type": "stream_error",
            "conversationId": conv,
            "messageId": task["taskId"],
            "seq": 2,
            "error": "Stream cancelled",
        }
    stored = await rows(database, conv)
    assert (stored[1]["content"], stored[1]["status"]) == ("part", "cancelled")


async def test_twenty_messages_at_once_from_two_processes(
    pair: tuple[Server, Server], database: str
) -> None:
    one, two = pair
    chat = await Chat.create(one, await sign_up(one.url))
    conv = chat.conversation_id
    async with (
        agent_socket(two, chat.token) as bot,
        user_socket(one, chat.user) as tab1,
        user_socket(two, chat.user) as tab2,
    ):

        async def burst(ws: object, prefix: str) -> None:
            for i in range(5):
                message = {
                    "type": "send_message",
                    "conversationId": conv,
                    "content": f"{prefix}{i}",
                }
                await send(ws, message)  # type: ignore[arg-type]

        async def uploads(srv: Server, prefix: str) -> None:
            await asyncio.gather(*(upload(srv, chat, f"{prefix}{i}") for i in range(5)))

        await asyncio.gather(
            burst(tab1, "a"), burst(tab2, "b"), uploads(one, "c"), uploads(two, "d")
        )
        answered = []
        for _ in range(20):
            task = await recv(bot)
            # never a second task while one runs in this conversation
            assert await silent(bot, 0.05)
            answered.append(task["content"].split("\n")[0])
            await send(bot, {"type": "agent_complete", "taskId": task["taskId"], "content": "ok"})
        assert await silent(bot, 0.3)
        # both tabs saw the 20 replies end
        for ws in (tab1, tab2):
            ends = 0
            while ends < 20:
                if (await recv(ws))["type"] == "stream_end":
                    ends += 1
    expected = {f"{p}{i}" for p in "abcd" for i in range(5)}
    assert sorted(answered) == sorted(expected)
    # one socket's messages are answered in the order it sent them
    assert [c for c in answered if c[0] == "a"] == [f"a{i}" for i in range(5)]
    assert [c for c in answered if c[0] == "b"] == [f"b{i}" for i in range(5)]
    stored = await rows(database, conv)
    assert [r["seq"] for r in stored] == list(range(1, 41))
    assert sum(r["role"] == "agent" and r["status"] == "completed" for r in stored) == 20


@pytest.mark.parametrize("visible", [True, False])
async def test_push_sees_the_users_tabs_in_other_processes(
    pair: tuple[Server, Server], visible: bool
) -> None:
    user_side, agent_side = pair
    chat = await Chat.create(user_side, await sign_up(user_side.url))
    async with LocalPushService() as push_service:
        async with authed_client(user_side.url, chat.user) as client:
            subscription = push_service.subscription("phone")
            response = await client.post("/api/push/subscribe", json=subscription)
        assert response.status_code in (200, 201), response.text
        async with (
            agent_socket(agent_side, chat.token) as bot,
            user_socket(user_side, chat.user) as ws,
        ):
            await send(ws, {"type": "focus", "visible": visible})
            await send(ws, {"type": "ping"})
            await recv(ws)
            await asyncio.sleep(0.1)  # the count reaches Redis
            message = {"type": "send_message", "conversationId": chat.conversation_id}
            await send(ws, {**message, "content": "q"})
            task_id = (await recv(bot))["taskId"]
            await send(bot, {"type": "agent_complete", "taskId": task_id, "content": "a"})
            await recv_until(ws, "stream_end")
            for _ in range(50):
                if push_service.received("phone"):
                    break
                await asyncio.sleep(0.02)
        # a visible tab in the user's process: no push from the agent's process
        assert len(push_service.received("phone")) == (0 if visible else 1)
        assert push_service.errors == []


# -- a real server process, killed mid-reply (the serve_process fixture: conftest.py) ---


async def test_killing_the_agents_process_mid_reply_ends_it_with_an_error(
    pair: tuple[Server, Server], serve_process: ServeProcess, database: str
) -> None:
    user_side = pair[0]
    chat = await Chat.create(user_side, await sign_up(user_side.url))
    conv = chat.conversation_id
    async with user_socket(user_side, chat.user) as ws:
        async with agent_socket(serve_process, chat.token) as bot:
            await send(ws, {"type": "send_message", "conversationId": conv, "content": "hi"})
            task = await recv(bot)
            await send(bot, {"type": "agent_chunk", "taskId": task["taskId"], "chunk": "Hal"})
            assert (await recv_until(ws, "stream_chunk"))[-1]["chunk"] == "Hal"
            # a second message waits behind the reply
            await send(ws, {"type": "send_message", "conversationId": conv, "content": "more"})
            await asyncio.sleep(0.2)
            await serve_process.kill()
        # the default liveness entry lives 5 s: the reply fails, then the queued message
        # gets the agent's "not connected" reply
        error = await recv(ws, 15)
        assert error == {
            "type": "stream_error",
            "conversationId": conv,
            "messageId": task["taskId"],
            "seq": 2,
            "error": "Agent disconnected",
        }
        after = await recv_until(ws, "stream_error", 10)
        assert [e["type"] for e in after] == ["stream_start", "stream_error"]
        assert after[-1]["seq"] == 4
    stored = [(r["seq"], r["status"]) for r in await rows(database, conv)]
    assert stored == [(1, "completed"), (2, "error"), (3, "completed"), (4, "error")]


async def test_with_redis_unreachable_one_process_still_replies_in_order(
    start_server: StartServer,
) -> None:
    srv = await start_server(redis_url=f"redis://127.0.0.1:{free_port()}", realtime=CONFIG)
    chat = await Chat.create(srv, await sign_up(srv.url))
    conv = chat.conversation_id
    async with agent_socket(srv, chat.token) as bot, user_socket(srv, chat.user) as ws:
        for text in ("one", "two"):
            await send(ws, {"type": "send_message", "conversationId": conv, "content": text})
        for text in ("one", "two"):
            task = await recv(bot)
            assert task["content"] == text
            assert await silent(bot, 0.1)  # one reply at a time
            await send(bot, {"type": "agent_complete", "taskId": task["taskId"], "content": "ok"})
            assert (await recv_until(ws, "stream_end"))[-1]["messageId"] == task["taskId"]


async def test_an_agent_socket_in_another_process_replaces_the_old_one(
    pair: tuple[Server, Server],
) -> None:
    one, two = pair
    chat = await Chat.create(one, await sign_up(one.url))
    async with agent_socket(one, chat.token) as old, agent_socket(two, chat.token):
        assert await close_of(old) == (4409, "Replaced by new connection")
        await asyncio.sleep(0.1)
        for srv in pair:
            assert srv.state.realtime.agent_connected(chat.agent_id)
    # deleting the agent over REST on the first process closes its socket on the second
    async with agent_socket(two, chat.token) as bot:
        async with authed_client(one.url, chat.user) as client:
            response = await client.delete(f"/api/agents/{chat.agent_id}")
        assert response.status_code == 204
        assert (await close_of(bot))[0] == 4410


async def test_a_late_up_of_an_older_socket_elsewhere_does_not_replace_the_newer_one(
    pair: tuple[Server, Server], shared_redis: SharedRedis
) -> None:
    """Two sockets of one agent in two processes: the one registered later stays, even
    when the other process's ``up`` reaches the bus after it (a slow bus under load)."""
    one, _ = pair
    chat = await Chat.create(one, await sign_up(one.url))
    elsewhere = f"test-{uuid.uuid4().hex[:8]}"
    async with agent_socket(one, chat.token) as bot, shared_redis.client() as redis:
        newest = int(await redis.get(keys.RT_AGENT_SERIAL) or 0)

        async def up_from_elsewhere(number: int, seq: int) -> None:
            """A bus message as another process sends it (``bus.py``)."""
            batch: list[list[Any]] = [["un", chat.agent_id, number], ["up", chat.agent_id, []]]
            message = orjson.dumps([elsewhere, seq, batch])
            if shared_redis.cluster:  # sharded pub/sub on a cluster
                assert isinstance(redis, ClusterClient)
                await redis.spublish(keys.RT_CHANNEL, message)  # type: ignore[no-untyped-call]
            else:
                await redis.publish(keys.RT_CHANNEL, message)

        await up_from_elsewhere(newest - 1, 1)  # registered before this socket
        assert await silent(bot, 0.5)
        assert one.state.realtime.agent_connected(chat.agent_id)
        await up_from_elsewhere(newest + 1, 2)  # registered after it
        assert await close_of(bot) == (4409, "Replaced by new connection")


async def test_a_started_process_knows_agents_of_others_at_once(
    pair: tuple[Server, Server], start_server: StartServer
) -> None:
    chat = await Chat.create(pair[0], await sign_up(pair[0].url))
    async with agent_socket(pair[0], chat.token):
        fresh = await start_server(realtime=CONFIG)
        try:
            await fresh.state.realtime.start()
            assert fresh.state.realtime.agent_connected(chat.agent_id)
        finally:
            await fresh.state.realtime.stop()
