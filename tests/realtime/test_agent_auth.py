"""/ws/agent: authentication, one socket per agent, the auth window (websocket.md §2,
quirks Q20, Q42, Q43)."""

from __future__ import annotations

import asyncio

import pytest

from arinova.server import Server
from arinova.settings import RealtimeSettings
from tests.support.auth import authed_client, sign_up
from tests.support.servers import StartServer
from tests.support.ws import (
    Chat,
    agent_socket,
    close_of,
    raw_agent_socket,
    recv,
    send,
    silent,
)

CONFIG = RealtimeSettings(sweep_interval_s=0.05, agent_auth_timeout_s=0.5)


@pytest.fixture(scope="module")
async def server(start_module_server: StartServer) -> Server:
    return await start_module_server(realtime=CONFIG)


@pytest.fixture
async def chat(server: Server) -> Chat:
    return await Chat.create(server, await sign_up(server.url), name="Bot One")


async def test_auth_ok_names_the_agent(server: Server, chat: Chat) -> None:
    async with raw_agent_socket(server) as ws:
        await ws.send('{"type":"ping"}')
        assert await ws.recv() == '{"type":"pong"}'
        await send(ws, {"type": "agent_auth", "botToken": chat.token})
        assert await ws.recv() == '{"type":"auth_ok","agentName":"Bot One"}'
        # the auth window no longer applies
        await asyncio.sleep(0.8)
        await ws.send('{"type":"ping"}')
        assert await ws.recv() == '{"type":"pong"}'
    assert not server.state.realtime.agent_connected(chat.agent_id)


async def test_invalid_token_closes_4404(server: Server) -> None:
    async with raw_agent_socket(server) as ws:
        await send(ws, {"type": "agent_auth", "botToken": "ari_nope"})
        assert await ws.recv() == '{"type":"auth_error","error":"Invalid bot token"}'
        assert await close_of(ws) == (4404, "Invalid bot token")


async def test_events_before_auth_are_refused(server: Server) -> None:
    async with raw_agent_socket(server) as ws:
        await send(ws, {"type": "agent_chunk", "taskId": "x", "chunk": "y"})
        assert await recv(ws) == {"type": "auth_error", "error": "Not authenticated"}
        # malformed frames are only logged
        await ws.send("not json")
        await send(ws, {"type": "agent_auth"})
        await send(ws, {"type": "agent_auth", "botToken": "t", "skills": [{"id": "a"}]})
        assert await silent(ws, 0.2)


async def test_auth_timeout_closes_4408(server: Server) -> None:
    async with raw_agent_socket(server) as ws:
        assert await recv(ws, wait=3) == {
            "type": "auth_error",
            "error": "Authentication timeout",
        }
        assert await close_of(ws) == (4408, "Authentication timeout")


async def test_a_new_socket_replaces_the_old(server: Server, chat: Chat) -> None:
    async with agent_socket(server, chat.token) as old, agent_socket(server, chat.token) as new:
        assert await close_of(old) == (4409, "Replaced by new connection")
        await new.send('{"type":"ping"}')
        assert await new.recv() == '{"type":"pong"}'
        assert server.state.realtime.agent_connected(chat.agent_id)


async def test_replaced_socket_keeps_tasks_alive_for_the_new_one(
    server: Server, chat: Chat
) -> None:
    from tests.support.ws import recv_until, user_socket

    conv = chat.conversation_id
    async with user_socket(server, chat.user) as ws, agent_socket(server, chat.token) as old:
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "hi"})
        task_id = (await recv(old))["taskId"]
        async with agent_socket(server, chat.token) as new:
            assert (await close_of(old))[0] == 4409
            await send(new, {"type": "agent_complete", "taskId": task_id, "content": "ok"})
            events = await recv_until(ws, "stream_end")
    assert [e["type"] for e in events] == ["stream_start", "stream_end"]


async def test_skills_are_reported_while_connected(server: Server, chat: Chat) -> None:
    skills = [{"id": "s1", "name": "Search", "description": "finds things"}]
    async with agent_socket(server, chat.token, skills=skills):
        async with authed_client(server.url, chat.user) as client:
            response = await client.get(f"/api/agents/{chat.agent_id}/skills")
        assert response.status_code == 200
        assert response.json()["skills"] == skills


async def test_reauth_with_another_agents_token_is_refused(server: Server, chat: Chat) -> None:
    """Quirk Q42: a socket keeps its identity."""
    other = await Chat.create(server, chat.user, name="Other")
    async with agent_socket(server, chat.token) as ws:
        await send(ws, {"type": "agent_auth", "botToken": other.token})
        assert await recv(ws) == {"type": "auth_error", "error": "Invalid bot token"}
        assert await close_of(ws) == (4404, "Invalid bot token")
    realtime = server.state.realtime
    assert not realtime.agent_connected(other.agent_id)
    assert not realtime.agent_connected(chat.agent_id)


async def test_regenerating_the_token_disconnects_the_agent(server: Server, chat: Chat) -> None:
    """Quirk Q20."""
    async with agent_socket(server, chat.token) as ws:
        async with authed_client(server.url, chat.user) as client:
            response = await client.post(f"/api/agents/{chat.agent_id}/regenerate-token")
        assert response.status_code == 200
        code, _ = await close_of(ws)
        assert code == 4409
