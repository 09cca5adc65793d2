"""The direct HTTP protocol on a real socket: the bytes a client reads (pipelining, HEAD,
chunked bodies both ways, 100-continue, malformed requests, head bounds)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from blacksheep import Content, Request, Response
from blacksheep.contents import StreamedContent

from arinova.server.http_direct import DateHeader, DirectHttpProtocol

DATE = re.compile(rb"date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n")


async def _handler(request: Request) -> Response:
    if request.method == "POST":
        body = await request.read() or b""
        return Response(200, [(b"X-Len", str(len(body)).encode())], Content(b"text/plain", body))
    if request.path == "/stream":

        async def parts() -> AsyncIterator[bytes]:
            yield b"abc"
            yield b"defg"

        return Response(200, None, StreamedContent(b"text/plain", parts))
    return Response(200, [(b"x-a", b"1")], Content(b"text/plain", b"hi " + request.path.encode()))


@pytest.fixture
async def port() -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    date = DateHeader()

    def make() -> DirectHttpProtocol:
        return DirectHttpProtocol(
            _handler,
            loop=loop,
            connections=set(),
            tasks=set(),
            date=date,
            max_head_size=1024,
            head_timeout_s=5,
        )

    server = await loop.create_server(make, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()


def _undated(data: bytes) -> bytes:
    assert DATE.search(data), data
    return DATE.sub(b"", data)


async def test_pipelined_requests_are_answered_in_order_with_uvicorns_bytes(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        b"HEAD /b HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    data = await asyncio.wait_for(reader.read(), 5)
    assert _undated(data) == (
        b"HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhi /a"
        b"HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nx-len: 5\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\n"
        b"abcde"
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n"
        b"transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    )


async def test_expect_100_continue_then_a_malformed_request(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    )
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == (
        b"HTTP/1.1 100 Continue\r\n\r\n"
    )
    writer.write(b"xyz")
    assert await asyncio.wait_for(reader.readuntil(b"xyz"), 5)
    writer.write(b"GARBAGE\r\n\r\n")
    assert _undated(await asyncio.wait_for(reader.read(), 5)) == (
        b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: 30\r\nconnection: close\r\n\r\nInvalid HTTP request received."
    )


async def test_a_later_head_past_the_bound_is_refused_with_431(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(reader.readuntil(b"hi /a"), 5)
    writer.write(b"GET /b HTTP/1.1\r\nX-Big: ")
    await asyncio.sleep(0.05)
    writer.write(b"y" * 2048)
    data = await asyncio.wait_for(reader.read(), 5)
    assert data.startswith(b"HTTP/1.1 431 "), data
