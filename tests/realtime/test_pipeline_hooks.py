"""What the REST layer asks of the realtime layer, with real sockets: uploads start a
reply, agent health/skills see the socket, deleting an agent closes it; and the push
trigger after a completed reply (websocket.md §3, §10; decisions Q35; quirks Q20, Q21)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as redis

from arinova.server import Server
from arinova.settings import RealtimeSettings
from tests.support.auth import authed_client, sign_up
from tests.support.config import TEST_REDIS_URL
from tests.support.push_service import LocalPushService, new_vapid_keys
from tests.support.servers import StartServer
from tests.support.ws import Chat, agent_socket, close_of, recv, recv_until, send, user_socket

CONFIG = RealtimeSettings(sweep_interval_s=0.05)
VAPID_PUBLIC, VAPID_PRIVATE = new_vapid_keys()
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00"
    b"\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture(scope="module")
async def server(start_module_server: StartServer) -> Server:
    return await start_module_server(
        vapid_public_key=VAPID_PUBLIC,
        vapid_private_key=VAPID_PRIVATE,
        allow_private_outbound=True,
        realtime=CONFIG,
    )


@pytest.fixture
async def push_service() -> AsyncIterator[LocalPushService]:
    async with LocalPushService() as service:
        yield service
    assert service.errors == []


@pytest.fixture
async def chat(server: Server) -> Chat:
    return await Chat.create(server, await sign_up(server.url), name="Helper")


async def test_upload_starts_a_reply(server: Server, chat: Chat) -> None:
    conv = chat.conversation_id
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        async with authed_client(server.url, chat.user) as client:
            response = await client.post(
                f"/api/conversations/{conv}/upload",
                files={"file": ("dot.png", PNG, "image/png")},
                data={"caption": "look"},
            )
        assert response.status_code == 200, response.text
        content = response.json()["message"]["content"]
        task = await recv(bot)
        assert (task["conversationId"], task["content"]) == (conv, content)
        assert content.startswith("look\n\n![dot.png](")
        await send(bot, {"type": "agent_complete", "taskId": task["taskId"], "content": "nice"})
        got = await recv_until(ws, "stream_end")
    assert [e["type"] for e in got] == ["stream_start", "stream_end"]
    assert got[0]["seq"] == 2


async def test_health_and_status_see_the_socket(server: Server, chat: Chat) -> None:
    async with authed_client(server.url, chat.user) as client:
        before = (await client.get(f"/api/agents/{chat.agent_id}/health")).json()
        async with agent_socket(server, chat.token):
            during = (await client.get(f"/api/agents/{chat.agent_id}/health")).json()
        await asyncio.sleep(0.1)
        after = (await client.get(f"/api/agents/{chat.agent_id}/health")).json()
    assert before["status"] != "online"
    assert during["status"] == "online"
    assert after["status"] != "online"


async def test_deleting_the_agent_closes_its_socket(server: Server, chat: Chat) -> None:
    async with agent_socket(server, chat.token) as bot:
        async with authed_client(server.url, chat.user) as client:
            response = await client.delete(f"/api/agents/{chat.agent_id}")
        assert response.status_code == 204
        code, _ = await close_of(bot)
    assert code == 4410
    assert not server.state.realtime.agent_connected(chat.agent_id)


async def subscribe(server: Server, chat: Chat, push_service: LocalPushService, name: str) -> None:
    async with authed_client(server.url, chat.user) as client:
        response = await client.post("/api/push/subscribe", json=push_service.subscription(name))
    assert response.status_code in (200, 201), response.text


async def complete_one(server: Server, chat: Chat, content: str, *, visible: bool) -> None:
    async with agent_socket(server, chat.token) as bot, user_socket(server, chat.user) as ws:
        if visible:
            await send(ws, {"type": "focus", "visible": True})
        await send(
            ws, {"type": "send_message", "conversationId": chat.conversation_id, "content": "q"}
        )
        task_id = (await recv(bot))["taskId"]
        await send(bot, {"type": "agent_complete", "taskId": task_id, "content": content})
        await recv_until(ws, "stream_end")


async def wait_for(predicate: Callable[[], bool], seconds: float = 3.0) -> bool:
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


async def test_completed_reply_sends_a_push(
    server: Server, chat: Chat, push_service: LocalPushService
) -> None:
    await subscribe(server, chat, push_service, "phone")
    await complete_one(server, chat, "x" * 120, visible=False)
    assert await wait_for(lambda: len(push_service.received("phone")) == 1)
    assert push_service.received("phone")[0].payload == {
        "type": "message",
        "title": "Helper",
        "body": "x" * 100 + "…",
        "url": f"/chat/{chat.conversation_id}",
    }
    # the 30 s de-dup window, shared through Redis
    await complete_one(server, chat, "again", visible=False)
    await asyncio.sleep(0.3)
    assert len(push_service.received("phone")) == 1
    kv = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        assert 0 < await kv.pttl(f"push:dedup:{chat.user.id}:message") <= 30_000
    finally:
        await kv.aclose()


async def test_no_push_while_a_tab_is_visible(
    server: Server, chat: Chat, push_service: LocalPushService
) -> None:
    await subscribe(server, chat, push_service, "phone")
    await complete_one(server, chat, "seen", visible=True)
    await asyncio.sleep(0.3)
    assert push_service.received("phone") == []


async def test_no_push_when_the_agent_has_notifications_off(
    server: Server, chat: Chat, push_service: LocalPushService
) -> None:
    """Decision Q35."""
    await subscribe(server, chat, push_service, "phone")
    async with authed_client(server.url, chat.user) as client:
        response = await client.put(
            f"/api/agents/{chat.agent_id}", json={"notificationsEnabled": False}
        )
    assert response.status_code == 200, response.text
    await complete_one(server, chat, "quiet", visible=False)
    await asyncio.sleep(0.3)
    assert push_service.received("phone") == []
