"""Concurrent writers: atomic sequence numbers and one active reply per conversation, also
when two sockets of the user send at once (quirks Q06, Q07); foreground counting; the
streaming text in the REST message list."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from arinova.server import Server
from arinova.settings import RealtimeSettings
from tests.http.uploads_fixtures import file_part, multipart
from tests.support.auth import authed_client, sign_up
from tests.support.servers import StartServer
from tests.support.ws import Chat, agent_socket, recv, send, silent, user_socket

CONFIG = RealtimeSettings(sweep_interval_s=0.05)


@pytest.fixture(scope="module")
async def server(start_module_server: StartServer) -> Server:
    return await start_module_server(ws_message_rate_limit=1000, realtime=CONFIG)


async def test_two_sockets_sending_at_once(server: Server, database: str) -> None:
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    async with (
        agent_socket(server, chat.token) as bot,
        user_socket(server, chat.user) as tab1,
        user_socket(server, chat.user) as tab2,
    ):

        async def burst(ws: object, prefix: str) -> None:
            for i in range(5):
                await send(
                    ws, {"type": "send_message", "conversationId": conv, "content": f"{prefix}{i}"}
                )  # type: ignore[arg-type]

        await asyncio.gather(burst(tab1, "a"), burst(tab2, "b"))
        answered = []
        for _ in range(10):
            task = await recv(bot)
            # never a second task while one runs in this conversation
            assert await silent(bot, 0.05)
            answered.append(task["content"])
            await send(bot, {"type": "agent_complete", "taskId": task["taskId"], "content": "ok"})
    assert sorted(answered) == sorted([f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)])
    assert [c for c in answered if c[0] == "a"] == [f"a{i}" for i in range(5)]
    conn = await asyncpg.connect(database)
    try:
        seqs = [
            r["seq"]
            for r in await conn.fetch(
                "SELECT seq FROM messages WHERE conversation_id = $1::uuid ORDER BY seq", conv
            )
        ]
    finally:
        await conn.close()
    assert seqs == list(range(1, 21))


async def test_foreground_counts_visible_sockets(server: Server) -> None:
    user = await sign_up(server.url)
    hub = server.process.realtime.hub

    async def settle() -> None:
        async with user_socket(server, user) as probe:
            await send(probe, {"type": "ping"})
            await recv(probe)

    async with user_socket(server, user) as tab1, user_socket(server, user) as tab2:
        for ws, visible in ((tab1, True), (tab2, True), (tab2, True), (tab1, False)):
            await send(ws, {"type": "focus", "visible": visible})
        for ws in (tab1, tab2):
            await send(ws, {"type": "ping"})
            await recv(ws)
        assert hub.foreground_sockets(user.id) == 1
    await settle()
    await asyncio.sleep(0.05)
    assert user.id not in hub.users
    assert hub.foreground_sockets(user.id) == 0


async def test_rest_message_list_shows_the_text_streamed_so_far(server: Server) -> None:
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "go"})
        task_id = (await recv(bot))["taskId"]
        await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": "So far"})
        await recv(ws)
        await recv(ws)
        async with authed_client(server.url, chat.user) as client:
            content = None
            for _ in range(50):
                body = (await client.get(f"/api/conversations/{conv}/messages")).json()
                reply = next(m for m in body["messages"] if m["id"] == task_id)
                content = reply["content"]
                if content == "So far":
                    break
                await asyncio.sleep(0.02)
        assert (content, reply["status"]) == ("So far", "streaming")
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": "Done"})
        assert (await recv(ws))["type"] == "stream_end"


async def test_a_message_that_waited_for_the_lock_is_dated_after_the_holder(
    server: Server, database: str
) -> None:
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    conn = await asyncpg.connect(database)
    try:
        async with user_socket(server, chat.user) as ws:
            tx = conn.transaction()
            await tx.start()
            await conn.execute("SELECT 1 FROM conversations WHERE id = $1::uuid FOR UPDATE", conv)
            await send(ws, {"type": "send_message", "conversationId": conv, "content": "late"})
            await asyncio.sleep(0.3)  # the socket's insert waits for the lock
            await conn.execute(
                "INSERT INTO messages (conversation_id, seq, role, content, status, created_at,"
                " updated_at) VALUES ($1::uuid, 1, 'user', 'first', 'completed',"
                " clock_timestamp() AT TIME ZONE 'UTC', clock_timestamp() AT TIME ZONE 'UTC')",
                conv,
            )
            await tx.commit()
            assert (await recv(ws))["type"] == "stream_start"  # the agent's offline row
        rows = await conn.fetch(
            "SELECT seq, content, created_at FROM messages WHERE conversation_id = $1::uuid"
            " AND role = 'user' ORDER BY seq",
            conv,
        )
    finally:
        await conn.close()
    assert [(r["seq"], r["content"]) for r in rows] == [(1, "first"), (2, "late")]
    assert rows[1]["created_at"] >= rows[0]["created_at"]


async def test_uploads_and_socket_messages_share_one_seq_allocator(
    server: Server, database: str
) -> None:
    """REST uploads and socket messages written at once to one conversation get distinct,
    gapless seqs, dated in seq order: both writers use ``arinova.db.messages_seq``."""
    user = await sign_up(server.url)
    conn = await asyncpg.connect(database)
    try:
        conv = str(
            await conn.fetchval(
                "INSERT INTO conversations (type, user_id) VALUES ('group', $1) RETURNING id",
                user.id,
            )
        )
        headers, body = multipart(file_part(b"note", "n.txt", "text/plain"))
        async with user_socket(server, user) as ws, authed_client(server.url, user) as client:

            async def socket_messages() -> None:
                for i in range(6):
                    message = {"type": "send_message", "conversationId": conv, "content": f"m{i}"}
                    await send(ws, message)

            async def upload() -> None:
                path = f"/api/conversations/{conv}/upload"
                response = await client.post(path, content=body, headers=headers)
                assert response.status_code == 200, response.text

            await asyncio.gather(socket_messages(), *(upload() for _ in range(6)))
            for _ in range(200):
                count = await conn.fetchval(
                    "SELECT count(*) FROM messages WHERE conversation_id = $1::uuid", conv
                )
                if count == 12:
                    break
                await asyncio.sleep(0.02)
        rows = await conn.fetch(
            "SELECT seq FROM messages WHERE conversation_id = $1::uuid ORDER BY created_at, seq",
            conv,
        )
    finally:
        await conn.close()
    assert [r["seq"] for r in rows] == list(range(1, 13))
