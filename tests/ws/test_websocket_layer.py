"""The raw WebSocket layer over real sockets: frames, limits, close handshakes, slow
readers, and the endpoint hook (a test endpoint stands in for the realtime layer)."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import parse_qs

import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from arinova._fast.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    encode_frame,
)
from arinova.server import Server
from arinova.ws import Endpoint, HttpRejection, RequestHead, SocketHandler, SocketLimits
from tests.server.test_dispatch import SWITCHING, upgrade_request, ws_error
from tests.support.servers import StartServer
from tests.support.stub import TOO_LARGE, PingPongHandler, stub_endpoints

MASK = b"\x01\x02\x03\x04"
PING = '{"type":"ping"}'
PONG_FRAME = b'\x81\x0f{"type":"pong"}'
CHUNK = b"z" * 65536


def client_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    return encode_frame(opcode, payload, fin=fin, mask=MASK)


class Probe(Endpoint):
    """Accepts per the query string and records what the layer tells its handlers."""

    def __init__(self, limits: SocketLimits) -> None:
        self.limits = limits
        self.heads: list[RequestHead] = []
        self.closed: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
        self.flood_sent = 0

    async def accept(self, head: RequestHead) -> SocketHandler | HttpRejection:
        self.heads.append(head)
        query = parse_qs(head.query)
        if "reject" in query:
            return HttpRejection(401, "Unauthorized")
        if "crash" in query:
            raise RuntimeError("accept failed")
        if "slow" in query:
            await asyncio.sleep(0.2)
        return ProbeHandler(self, crash_open="crash_open" in query)


class ProbeHandler(PingPongHandler):
    __slots__ = ("crash_open", "probe")

    def __init__(self, probe: Probe, *, crash_open: bool) -> None:
        super().__init__()
        self.probe = probe
        self.crash_open = crash_open

    def on_open(self) -> None:
        if self.crash_open:
            raise RuntimeError("on_open failed")
        assert self.conn is not None and self.conn.transport is not None
        sock = self.conn.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

    def on_text(self, text: str) -> None:
        if text == "flood":  # far more than the write buffer may hold
            for _ in range(64):
                if not self.send_frame(encode_frame(OP_TEXT, CHUNK)):
                    return
                self.probe.flood_sent += 1
        elif text == "burst":  # above the high-water mark, below the hard limit
            for _ in range(5):
                self.send_frame(encode_frame(OP_TEXT, CHUNK))
        elif text == "raise":
            raise RuntimeError("handler bug")
        elif text.startswith("echo:"):
            self.send_text(text)
        else:
            super().on_text(text)

    def on_close(self, code: int, reason: str) -> None:
        self.probe.closed.put_nowait((code, reason))


PROBE_LIMITS = SocketLimits(
    max_message_size=1024,
    max_write_buffer=512 * 1024,
    write_high_water=64 * 1024,
    stall_timeout_s=1.0,
    close_timeout_s=0.3,
)


@pytest.fixture(scope="module")
async def server(start_module_server: StartServer) -> Server:
    """The stub socket logic on the real paths (this module tests the socket layer)."""
    return await start_module_server(socket_endpoints=stub_endpoints)


@pytest.fixture(scope="module")
async def probe_server(start_module_server: StartServer) -> tuple[Server, Probe]:
    probe = Probe(PROBE_LIMITS)
    return await start_module_server(socket_endpoints=lambda state: {"/ws": probe}), probe


@pytest.fixture
async def probe(probe_server: tuple[Server, Probe]) -> Probe:
    probe = probe_server[1]
    while not probe.closed.empty():
        probe.closed.get_nowait()
    probe.heads.clear()
    probe.flood_sent = 0
    return probe


@pytest.fixture
def port(probe_server: tuple[Server, Probe]) -> int:
    return probe_server[0].port


async def raw_socket(
    port: int, path: str = "/ws", *, rcvbuf: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(upgrade_request(path))
    async with asyncio.timeout(5):
        assert await reader.readexactly(len(SWITCHING)) == SWITCHING
    return reader, writer


async def read_to_end(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(5):
        try:
            return await reader.read()
        except ConnectionResetError:
            return b"<reset>"


async def closed_with(ws: ClientConnection) -> tuple[int | None, str | None]:
    with pytest.raises(websockets.ConnectionClosed):
        async with asyncio.timeout(5):
            while True:
                await ws.recv()
    rcvd = ws.protocol.close_rcvd
    return (rcvd.code, rcvd.reason) if rcvd else (None, None)


CLOSE_1009 = b"\x88\x02\x03\xf1"


async def sent_after(port: int, path: str, frames: list[bytes]) -> bytes:
    """All the server sends, up to its end of the stream, after ``frames`` on a raw socket.

    Not through a websockets client: CPython 3.11's selector transport, once closed
    while its write buffer drains, raises if then aborted, as that client does on exit
    after a peer closed it mid-send."""
    reader, writer = await raw_socket(port, path)
    try:
        writer.writelines(frames)
        return await read_to_end(reader)
    finally:
        writer.close()


# -- the stub handler on the real endpoints ----------------------------------------------


@pytest.mark.parametrize("path", ["/ws", "/ws/agent"])
@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not json", "Invalid JSON"),
        ('{"type":"nope"}', "Unsupported message"),
        ("[1]", "Unsupported message"),
    ],
)
async def test_stub_closes_on_anything_but_ping(
    server: Server, path: str, message: str, reason: str
) -> None:
    async with connect(f"{server.ws_url}{path}") as ws:
        await ws.send(PING)
        assert await ws.recv() == '{"type":"pong"}'
        await ws.send(message)
        assert await closed_with(ws) == (1008, reason)


async def test_binary_frames_are_delivered_as_text(server: Server) -> None:
    async with connect(f"{server.ws_url}/ws") as ws:
        await ws.send(PING.encode())
        assert await ws.recv() == '{"type":"pong"}'


async def test_fragmented_message_is_reassembled(server: Server) -> None:
    async with connect(f"{server.ws_url}/ws") as ws:
        await ws.send(iter(['{"type"', ':"pi', 'ng"}']))
        assert await ws.recv() == '{"type":"pong"}'


async def test_client_messages_past_the_frame_limit_are_answered_not_closed(
    server: Server,
) -> None:
    """/ws holds up to 1 MiB of one message (past the largest ``sync`` the application
    takes); a larger one is passed over unread and the handler told (the socket stays),
    up to the original's 100 MiB frame limit; beyond it -> 1009."""
    limit = 1024 * 1024
    at_limit = '{"type":"ping","pad":"' + "x" * (limit - 24) + '"}'
    assert len(at_limit.encode()) == limit
    too_large = TOO_LARGE
    async with connect(f"{server.ws_url}/ws", max_size=None) as ws:
        await ws.send(at_limit)
        assert await ws.recv() == '{"type":"pong"}'
        await ws.send(at_limit[:-2] + 'x"}')  # one byte more
        assert await ws.recv() == too_large
        await ws.send(iter([at_limit[:20000], at_limit[20000:] + " "]))  # fragmented
        assert await ws.recv() == too_large
        await ws.send(b"\x00" * (8 * limit))  # binary, 8 MiB
        assert await ws.recv() == too_large
        await ws.send('{"type":"ping"}')
        assert await ws.recv() == '{"type":"pong"}'
    chunk = b"y" * (64 * limit)
    fragments = [client_frame(OP_BINARY, chunk, fin=False), client_frame(OP_CONT, chunk)]
    told = encode_frame(OP_TEXT, too_large.encode())  # at the first MiB, then 1009 past 100
    assert await sent_after(server.port, "/ws", fragments) == told + CLOSE_1009


async def test_agent_socket_takes_long_messages(server: Server) -> None:
    big = '{"type":"ping","pad":"' + "y" * 1_000_000 + '"}'
    async with connect(f"{server.ws_url}/ws/agent") as ws:
        await ws.send(big)
        assert await ws.recv() == '{"type":"pong"}'
    too_long = client_frame(OP_TEXT, b"x" * (4 * 1024 * 1024 + 1))
    assert await sent_after(server.port, "/ws/agent", [too_long]) == CLOSE_1009


async def test_protocol_ping_gets_pong(server: Server) -> None:
    async with connect(f"{server.ws_url}/ws") as ws:
        waiter = await ws.ping(b"are you there")
        async with asyncio.timeout(5):
            await waiter
    reader, writer = await raw_socket(server.port)
    try:
        writer.write(client_frame(OP_PING, b"hello"))
        async with asyncio.timeout(5):
            assert await reader.readexactly(7) == b"\x8a\x05hello"
    finally:
        writer.close()


# -- close handshakes and protocol errors (raw frames) -------------------------------------


async def test_client_close_is_echoed_and_reported(port: int, probe: Probe) -> None:
    reader, writer = await raw_socket(port)
    writer.write(client_frame(OP_CLOSE, b"\x0f\xa0bye"))
    assert await read_to_end(reader) == b"\x88\x05\x0f\xa0bye"
    writer.close()
    assert await asyncio.wait_for(probe.closed.get(), 5) == (4000, "bye")
    reader, writer = await raw_socket(port)
    writer.write(client_frame(OP_CLOSE, b""))
    assert await read_to_end(reader) == b"\x88\x00"
    writer.close()
    assert await asyncio.wait_for(probe.closed.get(), 5) == (1005, "")


@pytest.mark.parametrize(
    ("frame", "close_frame"),
    [
        (encode_frame(OP_TEXT, b"hi"), b"\x88\x02\x03\xea"),  # unmasked: 1002
        (bytes([0xC1, 0x80]) + MASK, b"\x88\x02\x03\xea"),  # RSV1 without extension: 1002
        (client_frame(OP_TEXT, b"\xff\xfe"), b"\x88\x02\x03\xef"),  # bad UTF-8: 1007
        (client_frame(OP_TEXT, b"a" * 1025), b"\x88\x02\x03\xf1"),  # over 1 KiB: 1009
        (client_frame(OP_CLOSE, b"\x03"), b"\x88\x02\x03\xea"),  # 1-byte close: 1002
    ],
    ids=["unmasked", "rsv1", "utf8", "too-big", "close-1-byte"],
)
async def test_protocol_error_sends_bare_close_code_then_ends(
    port: int, probe: Probe, frame: bytes, close_frame: bytes
) -> None:
    reader, writer = await raw_socket(port)
    writer.write(frame)
    async with asyncio.timeout(5):
        assert await reader.readexactly(len(close_frame)) == close_frame
    assert await read_to_end(reader) == b""  # write side shut after the close frame
    writer.write(client_frame(OP_CLOSE, close_frame[2:]))
    writer.close()
    code = int.from_bytes(close_frame[2:], "big")
    assert await asyncio.wait_for(probe.closed.get(), 5) == (code, "")


async def test_server_close_waits_for_the_peer_then_gives_up(port: int, probe: Probe) -> None:
    reader, writer = await raw_socket(port)
    writer.write(client_frame(OP_TEXT, b"not json"))
    expected = b"\x88\x0e\x03\xf0Invalid JSON"
    async with asyncio.timeout(5):
        assert await reader.readexactly(len(expected)) == expected
    loop = asyncio.get_running_loop()
    started = loop.time()
    # no close reply from us: the server drops the connection after close_timeout_s
    assert await read_to_end(reader) in (b"", b"<reset>")
    assert loop.time() - started >= PROBE_LIMITS.close_timeout_s * 0.8
    writer.close()
    assert await asyncio.wait_for(probe.closed.get(), 5) == (1008, "Invalid JSON")


async def test_server_close_completes_when_the_peer_answers(port: int, probe: Probe) -> None:
    reader, writer = await raw_socket(port)
    writer.write(client_frame(OP_TEXT, b"not json"))
    async with asyncio.timeout(5):
        await reader.readexactly(16)
    writer.write(client_frame(OP_CLOSE, b"\x03\xf0"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await read_to_end(reader) == b""
    assert loop.time() - started < PROBE_LIMITS.close_timeout_s
    writer.close()
    assert await asyncio.wait_for(probe.closed.get(), 5) == (1008, "")


async def test_handler_failure_on_a_message_is_logged_and_the_socket_stays_open(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await ws.send("raise")
        await ws.send("echo:still here")
        assert await ws.recv() == "echo:still here"
    assert "socket handler failed on a message" in caplog.text


async def test_frames_sent_with_the_handshake_are_not_lost(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(upgrade_request() + client_frame(OP_BINARY, PING.encode()))
        async with asyncio.timeout(5):
            assert await reader.readexactly(len(SWITCHING) + len(PONG_FRAME)) == (
                SWITCHING + PONG_FRAME
            )
    finally:
        writer.close()


# -- the endpoint hook ---------------------------------------------------------------------


async def test_endpoint_sees_the_request_head(port: int, probe: Probe) -> None:
    async with connect(
        f"ws://127.0.0.1:{port}/ws?a=1&b=2", additional_headers={"Cookie": "sid=abc"}
    ) as ws:
        await ws.send(PING)
        assert await ws.recv() == '{"type":"pong"}'
    head = probe.heads[-1]
    assert (head.method, head.path, head.query) == ("GET", "/ws", "a=1&b=2")
    assert head.header("cookie") == "sid=abc"
    assert head.header("sec-websocket-version") == "13"
    assert head.peer is not None and head.peer[0] == "127.0.0.1"


async def test_endpoint_may_refuse_with_http(port: int) -> None:
    from tests.server.test_dispatch import exchange

    answer = await exchange(port, upgrade_request("/ws?reject=1"))
    assert answer == ws_error("401 Unauthorized", "Unauthorized")
    answer = await exchange(port, upgrade_request("/ws?crash=1"))
    assert answer == ws_error("500 Internal Server Error", "Internal Server Error")


async def test_slow_accept_keeps_early_frames(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(upgrade_request("/ws?slow=1"))
        await asyncio.sleep(0.05)
        writer.write(client_frame(OP_TEXT, PING.encode()))
        async with asyncio.timeout(5):
            assert await reader.readexactly(len(SWITCHING) + len(PONG_FRAME)) == (
                SWITCHING + PONG_FRAME
            )
    finally:
        writer.close()


async def test_handler_crash_on_open_drops_without_close_frame(port: int, probe: Probe) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(upgrade_request("/ws?crash_open=1"))
    assert await read_to_end(reader) in (SWITCHING, SWITCHING + b"<reset>", b"<reset>")
    writer.close()
    assert await asyncio.wait_for(probe.closed.get(), 5) == (1006, "")


# -- peers that stop reading ---------------------------------------------------------------


async def test_write_buffer_over_the_limit_disconnects_at_once(port: int, probe: Probe) -> None:
    _, writer = await raw_socket(port, rcvbuf=4096)
    writer.write(client_frame(OP_TEXT, b"flood"))
    assert await asyncio.wait_for(probe.closed.get(), 5) == (1006, "")
    assert 0 < probe.flood_sent < 64
    writer.close()


async def test_peer_that_stops_reading_is_dropped_after_the_stall_timeout(
    port: int, probe: Probe
) -> None:
    _, writer = await raw_socket(port, rcvbuf=4096)
    loop = asyncio.get_running_loop()
    started = loop.time()
    writer.write(client_frame(OP_TEXT, b"burst"))
    assert await asyncio.wait_for(probe.closed.get(), 5) == (1006, "")
    assert loop.time() - started >= PROBE_LIMITS.stall_timeout_s * 0.8
    writer.close()


async def test_peer_that_reads_is_not_dropped(port: int, probe: Probe) -> None:
    async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await ws.send("burst")
        for _ in range(5):
            assert len(await ws.recv()) == len(CHUNK)
        await asyncio.sleep(PROBE_LIMITS.stall_timeout_s * 1.2)
        await ws.send(PING)
        assert await ws.recv() == '{"type":"pong"}'
    assert await asyncio.wait_for(probe.closed.get(), 5) == (1000, "")
