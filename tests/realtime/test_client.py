"""/ws basics: session check, heartbeat, protocol errors, ping (websocket.md §1)."""

from __future__ import annotations

import asyncio

import pytest

from arinova.server import Server
from arinova.settings import RealtimeSettings
from tests.support.auth import sign_up
from tests.support.servers import StartServer
from tests.support.ws import close_of, recv, recv_text, send, silent, user_socket

CONFIG = RealtimeSettings(sweep_interval_s=0.05, heartbeat_timeout_s=0.6)
CONV = "00000000-0000-4000-8000-000000000000"


def error(text: str, conversation_id: str = "") -> str:
    return (
        f'{{"type":"stream_error","conversationId":"{conversation_id}","messageId":"",'
        f'"seq":0,"error":"{text}"}}'
    )


@pytest.fixture(scope="module")
async def server(start_module_server: StartServer) -> Server:
    return await start_module_server(realtime=CONFIG)


async def test_no_session_closes_4401(server: Server) -> None:
    async with user_socket(server, None) as ws:
        assert await close_of(ws) == (4401, "Unauthorized")


async def test_heartbeat_timeout_closes_4408(server: Server) -> None:
    user = await sign_up(server.url)
    async with user_socket(server, user) as ws:
        # any inbound frame re-arms the timer
        for _ in range(4):
            await asyncio.sleep(0.3)
            await send(ws, {"type": "ping"})
            assert await recv(ws) == {"type": "pong"}
        assert await close_of(ws, wait=3) == (4408, "Heartbeat timeout")


@pytest.mark.parametrize(
    ("frame", "answer"),
    [
        ("not json", error("Invalid JSON")),
        ("[1]", error("Invalid message format")),
        ('{"type":"nope"}', error("Invalid message format")),
        (
            '{"type":"send_message","conversationId":"x","content":"a"}',
            error("Invalid message format"),
        ),
        (
            f'{{"type":"send_message","conversationId":"{CONV}","content":""}}',
            error("Invalid message format"),
        ),
        ('{"type":"sync","conversations":{"x":1}}', error("Invalid message format")),
        (f'{{"type":"sync","conversations":{{"{CONV}":-1}}}}', error("Invalid message format")),
        (
            f'{{"type":"mark_read","conversationId":"{CONV}","seq":1.5}}',
            error("Invalid message format"),
        ),
        ('{"type":"focus","visible":"yes"}', error("Invalid message format")),
        ('{"type":"ping","extra":1}', '{"type":"pong"}'),
    ],
)
async def test_protocol_errors(server: Server, frame: str, answer: str) -> None:
    user = await sign_up(server.url)
    async with user_socket(server, user) as ws:
        await ws.send(frame)
        assert await recv_text(ws) == answer


async def test_message_too_large(server: Server) -> None:
    user = await sign_up(server.url)
    async with user_socket(server, user) as ws:
        # 32 768 UTF-16 units pass the size check (then fail validation); one more does not
        await ws.send("x" * 32_768)
        assert await recv_text(ws) == error("Invalid JSON")
        await ws.send("x" * 32_769)
        assert await recv_text(ws) == error("Message too large")
        # astral characters count twice, as in JavaScript
        await ws.send("\U0001f600" * 16_385)
        assert await recv_text(ws) == error("Message too large")
        content = "y" * 32_001
        await send(ws, {"type": "send_message", "conversationId": CONV, "content": content})
        assert await recv_text(ws) == error("Invalid message format")
        assert await silent(ws, 0.1)


async def test_foreign_origin_is_refused(server: Server) -> None:
    import websockets

    user = await sign_up(server.url)
    with pytest.raises(websockets.InvalidStatus) as info:
        async with user_socket(server, user, origin="https://evil.example"):
            pass
    assert info.value.response.status_code == 403
    # no Origin at all (scripts) is fine
    async with user_socket(server, user, origin=None) as ws:
        await send(ws, {"type": "ping"})
        assert await recv(ws) == {"type": "pong"}
