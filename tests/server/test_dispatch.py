"""One port, two layers: what a client sees of the dispatch in front of the HTTP app and
the socket layer (real server, real TCP, byte-exact where the original's bytes matter)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
from collections.abc import Callable

import httpx
import pytest
import websockets
from blacksheep import Content, Request, Response, Router
from websockets.asyncio.client import connect

from arinova.server import Server
from arinova.server.dispatch import DispatchLimits
from arinova.settings import Settings
from arinova.state import AppState
from tests.support.servers import StartServer
from tests.support.stub import stub_endpoints

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = base64.b64encode(
    hashlib.sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
).decode()
SWITCHING = (
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    f"Sec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
).encode()
HEAD_TIMEOUT_S = 0.5
ALLOWED_ORIGIN = "http://localhost:3500"


@pytest.fixture(scope="module")
async def srv(start_module_server: StartServer) -> Server:
    return await start_module_server(
        cors_origin=f"{ALLOWED_ORIGIN},https://app.example",
        dispatch_limits=DispatchLimits(head_timeout_s=HEAD_TIMEOUT_S),
        socket_endpoints=stub_endpoints,
    )


def upgrade_request(path: str = "/ws", *, key: str = KEY, extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\n"
        "Host: localhost\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"{extra}\r\n"
    ).encode()


async def exchange(port: int, *chunks: bytes, pause: float = 0.0) -> bytes:
    """Send ``chunks`` (``pause`` between them), then read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        async with asyncio.timeout(5):
            return await reader.read()
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body: (status line, headers, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status.encode(), headers, body


# -- the same port answers HTTP and both socket paths ----------------------------------


async def test_http_and_both_socket_paths_share_the_port(srv: Server) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{srv.url}/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    for path in ("/ws", "/ws/agent", "/ws?token=abc", "/ws/agent?x=1"):
        async with connect(f"{srv.ws_url}{path}") as ws:
            await ws.send('{"type":"ping"}')
            assert await ws.recv() == '{"type":"pong"}'


async def test_101_answer_is_exactly_the_originals(srv: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    try:
        writer.write(upgrade_request())
        async with asyncio.timeout(5):
            assert await reader.readexactly(len(SWITCHING)) == SWITCHING
    finally:
        writer.close()


async def test_permessage_deflate_is_never_negotiated(srv: Server) -> None:
    async with connect(f"{srv.ws_url}/ws", compression="deflate") as ws:
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert ws.response.headers.get("Sec-WebSocket-Protocol") is None
        await ws.send('{"type":"ping"}')
        assert await ws.recv() == '{"type":"pong"}'
    offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    try:
        writer.write(upgrade_request(extra=offer + "Sec-WebSocket-Protocol: chat\r\n"))
        async with asyncio.timeout(5):
            assert await reader.readexactly(len(SWITCHING)) == SWITCHING
    finally:
        writer.close()


# -- invalid handshakes ------------------------------------------------------------------


def ws_error(status: str, message: str) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: text/html\r\n"
        f"Content-Length: {len(message)}\r\n\r\n{message}"
    ).encode()


@pytest.mark.parametrize(
    ("request_bytes", "message"),
    [
        (upgrade_request(key="short=="), "Missing or invalid Sec-WebSocket-Key header"),
        (
            upgrade_request(key="dGhlIHNhbXBsZSBub25jZQ"),
            "Missing or invalid Sec-WebSocket-Key header",
        ),
        (
            upgrade_request().replace(b"Sec-WebSocket-Key: " + KEY.encode() + b"\r\n", b""),
            "Missing or invalid Sec-WebSocket-Key header",
        ),
        (
            upgrade_request().replace(b"Sec-WebSocket-Version: 13\r\n", b""),
            "Missing or invalid Sec-WebSocket-Version header",
        ),
        (
            upgrade_request().replace(b"Upgrade: websocket", b"Upgrade: h2c"),
            "Invalid Upgrade header",
        ),
        (
            upgrade_request("/ws/agent").replace(b"Sec-WebSocket-Version: 13\r\n", b""),
            "Missing or invalid Sec-WebSocket-Version header",
        ),
    ],
    ids=["short-key", "unpadded-key", "no-key", "no-version", "h2c", "agent"],
)
async def test_invalid_handshake_gets_400_and_close(
    srv: Server, request_bytes: bytes, message: str
) -> None:
    assert await exchange(srv.port, request_bytes) == ws_error("400 Bad Request", message)


UNSUPPORTED_VERSION = (
    b"HTTP/1.1 426 Upgrade Required\r\n"
    b"Connection: close\r\n"
    b"Content-Type: text/html\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Content-Length: 40\r\n\r\n"
    b"Unsupported Sec-WebSocket-Version header"
)


@pytest.mark.parametrize("path", ["/ws", "/ws/agent"])
@pytest.mark.parametrize("version", ["8", "12", "14", "x", "13, 8"])
async def test_a_version_other_than_13_gets_426_naming_13(
    srv: Server, path: str, version: str
) -> None:
    """RFC 6455 §4.4: the handshake is refused (never upgraded) with 426 Upgrade Required
    and the version the server speaks."""
    request = upgrade_request(path).replace(b"Version: 13", f"Version: {version}".encode())
    assert await exchange(srv.port, request) == UNSUPPORTED_VERSION


async def test_upgrade_without_connection_upgrade_is_plain_http(srv: Server) -> None:
    """As in Node, a request is only an upgrade with ``Connection: upgrade``: without it,
    GET /ws goes to the HTTP app like any other request."""
    request = upgrade_request().replace(b"Connection: Upgrade\r\n", b"Connection: close\r\n")
    answer = await exchange(srv.port, request)
    assert not answer.startswith(b"HTTP/1.1 101")
    assert not answer.startswith(b"HTTP/1.1 400")
    assert answer.startswith(b"HTTP/1.1 404")


async def test_upgrade_on_another_path_is_plain_http(srv: Server) -> None:
    for path in ("/health", "/ws/", "/wsx", "/ws/agent/x"):
        request = upgrade_request(path).replace(b"Host: localhost", b"Connection: close\r\nX: y")
        answer = await exchange(srv.port, request)
        assert not answer.startswith(b"HTTP/1.1 101"), path
        if path == "/health":
            assert answer.startswith(b"HTTP/1.1 200"), answer


async def test_malformed_socket_request_is_answered_by_the_http_layer(srv: Server) -> None:
    answer = await exchange(srv.port, b"GET /ws HTTP/1.1\r\nno colon here\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert answer.endswith(b"Invalid HTTP request received.")


# -- Origin (decisions.md Q50) ----------------------------------------------------------


async def test_foreign_origin_on_ws_is_refused_before_the_upgrade(srv: Server) -> None:
    answer = await exchange(srv.port, upgrade_request(extra="Origin: https://evil.example\r\n"))
    assert answer == ws_error("403 Forbidden", "Forbidden origin")


@pytest.mark.parametrize("origin", [None, ALLOWED_ORIGIN, "https://app.example"])
async def test_listed_or_absent_origin_is_accepted(srv: Server, origin: str | None) -> None:
    async with connect(f"{srv.ws_url}/ws", origin=origin) as ws:  # type: ignore[arg-type]
        await ws.send('{"type":"ping"}')
        assert await ws.recv() == '{"type":"pong"}'


async def test_agent_socket_has_no_origin_check(srv: Server) -> None:
    async with connect(f"{srv.ws_url}/ws/agent", origin="https://evil.example") as ws:  # type: ignore[arg-type]
        await ws.send('{"type":"ping"}')
        assert await ws.recv() == '{"type":"pong"}'


async def test_star_origin_in_production_is_warned_about(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    Server(make_settings(cors_origin="*", node_env="production", secret_explicit=True))
    assert "CORS_ORIGIN is '*': /ws accepts upgrades from pages of any origin" in caplog.text
    caplog.clear()
    Server(make_settings(cors_origin="*"))
    assert "CORS_ORIGIN" not in caplog.text


async def test_any_origin_when_cors_origin_is_star(start_server: StartServer) -> None:
    server = await start_server(cors_origin="*", socket_endpoints=stub_endpoints)
    async with connect(f"{server.ws_url}/ws", origin="https://evil.example") as ws:  # type: ignore[arg-type]
        await ws.send('{"type":"ping"}')
        assert await ws.recv() == '{"type":"pong"}'


# -- plain HTTP after the dispatch ------------------------------------------------------

HEALTH = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"


async def test_keep_alive_and_pipelining_still_work(srv: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    try:
        async with asyncio.timeout(5):
            writer.write(HEALTH)
            status, _, body = await read_response(reader)
            assert status == b"HTTP/1.1 200 OK"
            assert b'"status":"ok"' in body
            writer.write(HEALTH)  # the same connection, second request
            status, _, _ = await read_response(reader)
            assert status == b"HTTP/1.1 200 OK"
            writer.write(HEALTH * 3)  # pipelined
            for _ in range(3):
                status, _, body = await read_response(reader)
                assert status == b"HTTP/1.1 200 OK"
                assert b'"status":"ok"' in body
    finally:
        writer.close()


async def test_request_head_dribbled_byte_by_byte(srv: Server) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    answer = await exchange(srv.port, *(request[i : i + 1] for i in range(len(request))))
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    upgrade = upgrade_request()
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    try:
        for i in range(len(upgrade)):
            writer.write(upgrade[i : i + 1])
            await writer.drain()
        async with asyncio.timeout(5):
            assert await reader.readexactly(len(SWITCHING)) == SWITCHING
    finally:
        writer.close()


async def test_body_in_the_same_read_as_the_head_reaches_the_app(srv: Server) -> None:
    body = b'{"a":1}'
    request = (
        b"POST /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: 7\r\n\r\n" + body
    )
    answer = await exchange(srv.port, request)
    assert answer.startswith(b"HTTP/1.1 ")  # the app's own answer (route not allowed)
    assert not answer.startswith(b"HTTP/1.1 400")


LARGE_HEAD = b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n"


async def test_oversize_head_gets_431(srv: Server) -> None:
    big = b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 17_000 + b"\r\n\r\n"
    assert await exchange(srv.port, big) == LARGE_HEAD
    # never-ending head, sent in pieces
    pieces = [b"GET /ws HTTP/1.1\r\n"] + [b"X-Pad: " + b"b" * 1000 + b"\r\n"] * 20
    assert await exchange(srv.port, *pieces) == LARGE_HEAD


async def test_head_timeout_closes_the_socket(srv: Server) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await exchange(srv.port) == b""  # nothing sent: closed without an answer
    assert HEAD_TIMEOUT_S * 0.9 <= loop.time() - started < HEAD_TIMEOUT_S + 2
    answer = await exchange(srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\n")
    assert answer == b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n"


async def test_keep_alive_requests_are_not_cut_by_the_head_timeout(srv: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    try:
        async with asyncio.timeout(5):
            for _ in range(3):
                writer.write(HEALTH)
                status, _, _ = await read_response(reader)
                assert status == b"HTTP/1.1 200 OK"
                await asyncio.sleep(HEAD_TIMEOUT_S * 0.6)
    finally:
        writer.close()


# -- graceful shutdown ------------------------------------------------------------------


async def test_stop_closes_sockets_with_1001_and_idle_connections(
    start_server: StartServer,
) -> None:
    server = await start_server(socket_endpoints=stub_endpoints)
    ws = await connect(f"{server.ws_url}/ws")
    await ws.send('{"type":"ping"}')
    assert await ws.recv() == '{"type":"pong"}'
    idle_http = await asyncio.open_connection("127.0.0.1", server.port)
    half_head = await asyncio.open_connection("127.0.0.1", server.port)
    half_head[1].write(b"GET /health HTTP/1.1\r\n")
    await asyncio.sleep(0.05)
    async with asyncio.timeout(5):
        await server.stop()
    with pytest.raises(websockets.ConnectionClosed):
        await ws.recv()
    assert ws.close_code == 1001
    async with asyncio.timeout(1):
        assert await idle_http[0].read() == b""
        assert await half_head[0].read() == b""
    idle_http[1].close()
    half_head[1].close()


async def test_later_heads_on_a_keep_alive_connection_are_bounded(srv: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    try:
        async with asyncio.timeout(5):
            writer.write(HEALTH)
            assert (await read_response(reader))[0] == b"HTTP/1.1 200 OK"
            writer.write(b"GET /health HTTP/1.1\r\nX-Big: ")
            await asyncio.sleep(0.05)
            writer.write(b"a" * 17_000)
            assert await reader.read() == LARGE_HEAD
    finally:
        writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    try:
        async with asyncio.timeout(5):
            writer.write(HEALTH)
            assert (await read_response(reader))[0] == b"HTTP/1.1 200 OK"
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and nothing more
            assert (
                await reader.read() == b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n"
            )
    finally:
        writer.close()


class SlowArea:
    """A test-only route that takes a while to answer."""

    def mount(self, router: Router, state: AppState) -> None:
        async def slow(request: Request) -> Response:
            await asyncio.sleep(0.5)
            return Response(200, content=Content(b"text/plain", b"finished"))

        router.add_get("/test/slow", slow)


async def test_stop_lets_in_flight_requests_finish(start_server: StartServer) -> None:
    server = await start_server(extra_areas=(SlowArea(),))
    async with httpx.AsyncClient() as client:
        request = asyncio.create_task(client.get(f"{server.url}/test/slow"))
        await asyncio.sleep(0.1)
        async with asyncio.timeout(5):
            await server.stop()
        response = await request
    assert response.status_code == 200
    assert response.text == "finished"
    assert response.headers["connection"] == "close"


def mutations(seed: int, count: int) -> list[bytes]:
    """Valid requests (upgrade and plain) with random damage, and plain garbage."""
    rng = random.Random(seed)
    bases = [
        upgrade_request(),
        upgrade_request("/ws/agent?x=1"),
        HEALTH,
        b"GET /ws HTTP/1.1\r\n\r\n",
    ]
    cases = []
    for _ in range(count):
        data = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 4)):
            kind = rng.randrange(4)
            at = rng.randrange(len(data) + 1)
            if kind == 0 and data:
                data[min(at, len(data) - 1)] = rng.randrange(256)
            elif kind == 1:
                data[at:at] = rng.randbytes(rng.randint(1, 20))
            elif kind == 2:
                del data[at : at + rng.randint(1, 20)]
            else:
                data = data[:at]
        cases.append(bytes(data))
    cases += [rng.randbytes(rng.randint(0, 400)) for _ in range(count // 4)]
    return cases


async def test_damaged_first_requests_never_break_the_server(srv: Server) -> None:
    """Every answer is HTTP or nothing, the loop's exception handler is never called (the
    suite's guard), and the server still answers after."""
    gate = asyncio.Semaphore(20)

    async def send(data: bytes) -> bytes:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            try:
                writer.write(data)
                writer.write_eof()  # no waiting for the head timeout
                async with asyncio.timeout(5):
                    try:
                        return await reader.read()
                    except ConnectionResetError:
                        return b""
            finally:
                writer.close()

    answers = await asyncio.gather(*(send(case) for case in mutations(1, 400)))
    for answer in answers:
        assert answer == b"" or answer.startswith(b"HTTP/1.1 "), answer[:80]
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{srv.url}/health")).status_code == 200
