"""``sync``, ``mark_read`` and the re-attach of replies in flight (websocket.md §8,
decision Q45, quirks Q08, Q23)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from arinova.server import Server
from arinova.settings import RealtimeSettings
from tests.support.auth import SignedIn, authed_client, sign_up
from tests.support.servers import StartServer
from tests.support.webapp import WebAppView
from tests.support.ws import Chat, agent_socket, recv, recv_until, send, silent, user_socket

CONFIG = RealtimeSettings(sweep_interval_s=0.05)
T0 = datetime(2026, 2, 20, 9, 15, 3, 123456)


@pytest.fixture(scope="module")
async def server(start_module_server: StartServer) -> Server:
    return await start_module_server(count_queries=True, realtime=CONFIG)


@pytest.fixture(scope="module")
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database)
    yield conn
    await conn.close()


def iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds") + "Z"


async def seed(
    db: asyncpg.Connection, user: SignedIn, agent_id: str, conversations: int, per: int
) -> list[str]:
    """Conversations with ``per`` messages each (user/agent alternating), created in order."""
    ids = await db.fetch(
        "INSERT INTO conversations (user_id, agent_id, type, created_at, updated_at) "
        "SELECT $1, $2::uuid, 'direct', $3::timestamp + make_interval(secs => g), $3 "
        "FROM generate_series(1, $4::int) g RETURNING id::text",
        user.id,
        agent_id,
        T0,
        conversations,
    )
    conv_ids = [r["id"] for r in ids]
    await db.execute(
        "INSERT INTO messages (conversation_id, seq, role, content, status, created_at, updated_at) "
        "SELECT c, s, CASE WHEN s % 2 = 1 THEN 'user' ELSE 'agent' END::message_role, "
        "'m' || s, 'completed', $3::timestamp + make_interval(secs => s), $3 "
        "FROM unnest($1::uuid[]) c, generate_series(1, $2::int) s",
        conv_ids,
        per,
        T0,
    )
    return conv_ids


async def sync(ws: Any, known: dict[str, int]) -> dict[str, Any]:
    await send(ws, {"type": "sync", "conversations": known})
    return await recv(ws)


async def test_sync_without_conversations(server: Server) -> None:
    user = await sign_up(server.url)
    async with user_socket(server, user) as ws:
        await ws.send('{"type":"sync","conversations":{}}')
        assert await ws.recv() == '{"type":"sync_response","conversations":[],"missedMessages":[]}'


async def test_summaries_and_missed_messages(server: Server, db: asyncpg.Connection) -> None:
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    await db.execute(
        "INSERT INTO messages (conversation_id, seq, role, content, status, created_at, updated_at) "
        "VALUES ($1::uuid, 1, 'user', 'hi', 'completed', $2, $2), "
        "($1::uuid, 2, 'agent', 'hello', 'completed', $3, $3), "
        "($1::uuid, 3, 'user', 'again', 'completed', $4, $4)",
        conv,
        T0,
        T0 + timedelta(seconds=1),
        T0 + timedelta(seconds=2),
    )
    await db.execute(
        "INSERT INTO conversation_reads (user_id, conversation_id, last_read_seq, muted) "
        "VALUES ($1, $2::uuid, 1, true)",
        chat.user.id,
        conv,
    )
    async with user_socket(server, chat.user) as ws:
        response = await sync(ws, {conv: 1})
        summaries_only = await sync(ws, {})
    summary = {
        "conversationId": conv,
        "unreadCount": 2,
        "maxSeq": 3,
        "muted": True,
        "lastMessage": {
            "content": "again",
            "role": "user",
            "status": "completed",
            "createdAt": iso(T0 + timedelta(seconds=2)),
        },
    }
    assert response == {
        "type": "sync_response",
        "conversations": [summary],
        "missedMessages": [
            {
                "id": response["missedMessages"][0]["id"],
                "conversationId": conv,
                "seq": 2,
                "role": "agent",
                "content": "hello",
                "status": "completed",
                "createdAt": iso(T0 + timedelta(seconds=1)),
            },
            {
                "id": response["missedMessages"][1]["id"],
                "conversationId": conv,
                "seq": 3,
                "role": "user",
                "content": "again",
                "status": "completed",
                "createdAt": iso(T0 + timedelta(seconds=2)),
            },
        ],
    }
    assert summaries_only == {
        "type": "sync_response",
        "conversations": [summary],
        "missedMessages": [],
    }


async def test_empty_conversation_and_unknown_keys(server: Server) -> None:
    chat = await Chat.create(server, await sign_up(server.url))
    foreign = await Chat.create(server, await sign_up(server.url))
    async with user_socket(server, chat.user) as ws:
        response = await sync(ws, {chat.conversation_id: 0, foreign.conversation_id: 0})
    assert response["conversations"] == [
        {
            "conversationId": chat.conversation_id,
            "unreadCount": 0,
            "maxSeq": 0,
            "muted": False,
            "lastMessage": None,
        }
    ]
    assert response["missedMessages"] == []


async def test_sync_repairs_stuck_replies_everywhere_first(
    server: Server, db: asyncpg.Connection
) -> None:
    """Decision Q45: rows of conversations the client did not list are repaired too, and
    the summary shows the repaired status."""
    chat = await Chat.create(server, await sign_up(server.url))
    other = await chat.new_conversation(server)
    rows = [
        (chat.conversation_id, 1, "partial text"),
        (other, 1, ""),
    ]
    for conv, seq, content in rows:
        await db.execute(
            "INSERT INTO messages (conversation_id, seq, role, content, status) "
            "VALUES ($1::uuid, $2, 'agent', $3, 'streaming')",
            conv,
            seq,
            content,
        )
    async with user_socket(server, chat.user) as ws:
        response = await sync(ws, {chat.conversation_id: 0})
    by_conv = {s["conversationId"]: s for s in response["conversations"]}
    assert by_conv[chat.conversation_id]["lastMessage"]["status"] == "completed"
    assert by_conv[other]["lastMessage"]["status"] == "error"
    assert [(m["status"], m["content"]) for m in response["missedMessages"]] == [
        ("completed", "partial text")
    ]
    statuses = await db.fetch(
        "SELECT status::text FROM messages WHERE conversation_id = ANY($1::uuid[]) ORDER BY content DESC",
        [chat.conversation_id, other],
    )
    assert [r["status"] for r in statuses] == ["completed", "error"]


async def test_missed_messages_are_capped_at_100(server: Server, db: asyncpg.Connection) -> None:
    chat = await Chat.create(server, await sign_up(server.url))
    [conv] = await seed(db, chat.user, chat.agent_id, 1, 150)
    async with user_socket(server, chat.user) as ws:
        response = await sync(ws, {conv: 10})
    assert [m["seq"] for m in response["missedMessages"]] == list(range(11, 111))
    assert response["conversations"][0]["unreadCount"] == 150


async def test_sync_of_200_conversations_costs_a_constant_number_of_queries(
    server: Server, db: asyncpg.Connection
) -> None:
    """Quirk Q08: the original sent ~800 statements for this."""
    counter = server.state.queries
    small = await Chat.create(server, await sign_up(server.url))
    small_ids = await seed(db, small.user, small.agent_id, 2, 4)
    big = await Chat.create(server, await sign_up(server.url))
    big_ids = await seed(db, big.user, big.agent_id, 200, 4)

    async def measure(chat: Chat, ids: list[str]) -> tuple[int, dict[str, Any]]:
        async with user_socket(server, chat.user) as ws:
            await sync(ws, {ids[0]: 0})  # warm the statement cache (and type introspection)
            before = counter.count
            response = await sync(ws, dict.fromkeys(ids, 0))
            return counter.count - before, response

    small_queries, _ = await measure(small, small_ids)
    big_queries, response = await measure(big, big_ids)
    assert small_queries == big_queries <= 3
    assert len(response["conversations"]) == 201  # the REST-created conversation too
    assert len(response["missedMessages"]) == 800


def sync_frame(known: dict[str, int]) -> str:
    """A ``sync`` as the web app sends it (``JSON.stringify``: no spaces)."""
    return json.dumps({"type": "sync", "conversations": known}, separators=(",", ":"))


async def test_a_sync_of_10_000_conversations_is_answered(server: Server) -> None:
    """The web app syncs every conversation it knows; ids that are not the user's are
    ignored (websocket.md §8), and the frame is far past the 32 768-unit limit of the
    other events."""
    chat = await Chat.create(server, await sign_up(server.url))
    known = {str(uuid.uuid4()): n for n in range(9_999)} | {chat.conversation_id: 0}
    frame = sync_frame(known)
    assert len(frame) > 4 * 96 * 1024  # four times the frame size that used to close it
    async with user_socket(server, chat.user) as ws:
        await ws.send(frame)
        response = await recv(ws)
        assert response["type"] == "sync_response"
        assert [c["conversationId"] for c in response["conversations"]] == [chat.conversation_id]
        await send(ws, {"type": "ping"})
        assert await recv(ws) == {"type": "pong"}


async def test_a_sync_too_large_is_refused_and_the_socket_stays(server: Server) -> None:
    user = await sign_up(server.url)
    too_many = sync_frame({str(uuid.uuid4()): 1_000_000 for _ in range(14_000)})
    assert CONFIG.max_sync_message_chars < len(too_many) < 1024 * 1024
    padded_ping = json.dumps({"type": "ping", "pad": "x" * 40_000})
    past_the_frame_limit = sync_frame({str(uuid.uuid4()): 1 for _ in range(60_000)})
    assert len(past_the_frame_limit) > 2 * 1024 * 1024
    async with user_socket(server, user) as ws:
        for frame in (too_many, padded_ping, past_the_frame_limit):
            await ws.send(frame)
            assert await recv(ws) == {
                "type": "stream_error",
                "conversationId": "",
                "messageId": "",
                "seq": 0,
                "error": "Message too large",
            }
        await send(ws, {"type": "ping"})
        assert await recv(ws) == {"type": "pong"}


async def test_mark_read_only_for_own_conversations(server: Server, db: asyncpg.Connection) -> None:
    chat = await Chat.create(server, await sign_up(server.url))
    foreign = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    await seed_messages(db, conv, 6)
    async with user_socket(server, chat.user) as ws:
        for seq in (5, 3):
            await send(ws, {"type": "mark_read", "conversationId": conv, "seq": seq})
        await send(ws, {"type": "mark_read", "conversationId": foreign.conversation_id, "seq": 7})
        await send(ws, {"type": "ping"})
        assert await recv(ws) == {"type": "pong"}  # frames are handled in order
    rows = await db.fetch(
        "SELECT conversation_id::text, last_read_seq FROM conversation_reads WHERE user_id = $1",
        chat.user.id,
    )
    assert [dict(r) for r in rows] == [{"conversation_id": conv, "last_read_seq": 5}]
    # never past the last message (quirk Q23)
    async with user_socket(server, chat.user) as ws:
        await send(ws, {"type": "mark_read", "conversationId": conv, "seq": 2**40})
        await send(ws, {"type": "ping"})
        await recv(ws)
    last = await db.fetchval(
        "SELECT last_read_seq FROM conversation_reads WHERE user_id = $1", chat.user.id
    )
    assert last == 6


async def seed_messages(db: asyncpg.Connection, conversation_id: str, count: int) -> None:
    await db.execute(
        "INSERT INTO messages (conversation_id, seq, role, content, status) "
        "SELECT $1::uuid, s, 'user', 'm', 'completed' FROM generate_series(1, $2::int) s",
        conversation_id,
        count,
    )


async def test_sync_answers_the_asking_socket_and_reattaches_once(server: Server) -> None:
    """Decision Q19: the response and the re-attach go to the socket that asked; a reply is
    re-attached only where the sync's map does not name its conversation; every tab ends
    with the reply's text once."""
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        first = WebAppView(conv)
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "go"})
        task_id = (await recv(bot))["taskId"]
        for chunk in ["Hel", "lo"]:
            await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": chunk})
        for event in await recv_until(ws, "stream_chunk") + await recv_until(ws, "stream_chunk"):
            first.apply(event)
        async with user_socket(server, chat.user) as tab, user_socket(server, chat.user) as new:
            # a tab that knows the conversation up to the question: the reply comes among
            # the missed messages, with the text so far, and is not re-attached
            await send(tab, {"type": "sync", "conversations": {conv: 1}})
            answer = await recv(tab)
            assert answer["type"] == "sync_response"
            streaming = answer["missedMessages"][-1]
            assert (streaming["id"], streaming["status"], streaming["content"]) == (
                task_id,
                "streaming",
                "Hello",
            )
            assert await silent(tab, 0.1)
            second = WebAppView(conv)
            second.apply(answer)
            # a tab that knows nothing of the conversation: the reply is re-attached to it
            await send(new, {"type": "sync", "conversations": {}})
            got = [await recv(new) for _ in range(3)]
            assert [e["type"] for e in got] == ["sync_response", "stream_start", "stream_chunk"]
            assert got[1:] == [
                {"type": "stream_start", "conversationId": conv, "messageId": task_id, "seq": 2},
                {
                    "type": "stream_chunk",
                    "conversationId": conv,
                    "messageId": task_id,
                    "seq": 2,
                    "chunk": "Hello",
                },
            ]
            third = WebAppView(conv)
            for event in got:
                third.apply(event)
            # the first socket's own sync covers the reply: only its answer, to it alone
            await send(ws, {"type": "sync", "conversations": {conv: 2}})
            assert (await recv(ws))["type"] == "sync_response"
            assert await silent(ws, 0.1) and await silent(tab, 0) and await silent(new, 0)
            await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": " you"})
            await send(bot, {"type": "agent_complete", "taskId": task_id, "content": "Hello you"})
            for view, socket in ((first, ws), (second, tab), (third, new)):
                for event in await recv_until(socket, "stream_end"):
                    view.apply(event)
                assert view.texts_of(task_id) == ["Hello you"]
            assert await silent(ws, 0.1)


async def test_every_reader_sees_exactly_what_the_socket_was_sent(server: Server) -> None:
    """After each chunk, the REST message list and a sync's missed message carry exactly
    the text the user's socket has received (the reply runs in this process)."""
    chat = await Chat.create(server, await sign_up(server.url))
    conv = chat.conversation_id
    received = ""
    async with (
        agent_socket(server, chat.token) as bot,
        user_socket(server, chat.user) as ws,
        user_socket(server, chat.user) as syncer,
        authed_client(server.url, chat.user) as client,
    ):
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "go"})
        task_id = (await recv(bot))["taskId"]
        await recv(syncer)  # its stream_start
        for i in range(30):
            await send(bot, {"type": "agent_chunk", "taskId": task_id, "chunk": f"c{i};"})
            received += (await recv_until(ws, "stream_chunk"))[-1]["chunk"]
            await recv(syncer)  # the chunk
            listed = (await client.get(f"/api/conversations/{conv}/messages")).json()
            reply = next(m for m in listed["messages"] if m["id"] == task_id)
            assert (reply["status"], reply["content"]) == ("streaming", received)
            answer = await sync(syncer, {conv: 1})
            assert answer["missedMessages"][-1]["content"] == received
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": received})
        await recv_until(ws, "stream_end")
