"""One port, two layers: the protocol uvicorn creates for every accepted connection.

``DispatchProtocol`` reads the first request head (bounded in size and time). A
WebSocket upgrade on a socket path (``/ws``, ``/ws/agent``) is validated, offered to the
path's endpoint and switched to a bare ``SocketConnection`` (``arinova.ws``); every other
connection is handed, bytes and all, to ``http_direct.DirectHttpProtocol``, which runs the
app's pipeline without ASGI.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import httptools

from arinova.compat import ProtocolContext
from arinova.server.http_direct import DateHeader, DirectHttpProtocol, Handler
from arinova.ws import Endpoint, Outbox, SocketConnection, SocketHandler
from arinova.ws.handshake import (
    HttpRejection,
    RequestHead,
    bare_error,
    check_handshake,
    is_upgrade_request,
    switching_protocols,
)

log = logging.getLogger("arinova.server")


@dataclass(frozen=True, slots=True)
class DispatchLimits:
    #: Node's default limit on a request head (request line and headers) -> 431
    max_head_size: int = 16 * 1024
    #: Node's ``headersTimeout``: the first head must be complete by then -> 408
    head_timeout_s: float = 60.0


DEFAULT_LIMITS = DispatchLimits()


class SocketRoutes:
    """Per server: the endpoint of each socket path, the rules of the handshake and the
    outbox every socket writes through."""

    __slots__ = ("_outbox", "allowed_origins", "date", "direct_http", "endpoints", "limits")

    def __init__(
        self,
        endpoints: Mapping[str, Endpoint],
        *,
        allowed_origins: frozenset[str] | None,
        direct_http: Handler,
        limits: DispatchLimits = DEFAULT_LIMITS,
    ) -> None:
        self.endpoints = dict(endpoints)
        #: plain HTTP runs on ``DirectHttpProtocol`` with this handler
        self.direct_http = direct_http
        self.date = DateHeader()
        #: None: any Origin (CORS_ORIGIN is ``*``)
        self.allowed_origins = allowed_origins
        self.limits = limits
        self._outbox: Outbox | None = None

    def outbox(self, loop: asyncio.AbstractEventLoop) -> Outbox:
        """The outbox of the loop the server runs on (made with its first socket)."""
        outbox = self._outbox
        if outbox is None or outbox.loop is not loop:
            outbox = self._outbox = Outbox(loop)
        return outbox

    def origin_allowed(self, endpoint: Endpoint, head: RequestHead) -> bool:
        if not endpoint.check_origin or self.allowed_origins is None:
            return True
        origin = head.header("origin")
        return origin is None or origin in self.allowed_origins


class _HeadCollector:
    """httptools callbacks for the one head we parse ourselves."""

    __slots__ = ("headers",)

    def __init__(self) -> None:
        self.headers: list[tuple[str, str]] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))


def _head_end(buf: bytes | bytearray, start: int, limit: int) -> int:
    """Index just past the empty line ending the head, or -1 (LF-only lines allowed).
    Only the first ``limit`` bytes are searched: a body that follows is never scanned."""
    end = min(len(buf), limit + 3)
    crlf = buf.find(b"\n\r\n", start, end)
    lf = buf.find(b"\n\n", start, crlf + 2 if crlf >= 0 else end)
    if lf >= 0:
        return lf + 2
    return crlf + 3 if crlf >= 0 else -1


def _socket_target(buf: bytes | bytearray) -> tuple[str, str] | None:
    """(path, query) when the request line is a GET whose path may be a socket path."""
    if not buf.startswith(b"GET /ws"):
        return None
    line = bytes(buf[: buf.find(b"\n")]).rstrip(b"\r")
    parts = line.split(b" ")
    if len(parts) != 3:
        return None
    path, _, query = parts[1].decode("latin-1").partition("?")
    return path, query


class DispatchProtocol(asyncio.Protocol):
    """Created by uvicorn for each connection (through ``compat.protocol_factory``)."""

    __slots__ = (
        "_accepting",
        "_buffer",
        "_scanned",
        "_timer",
        "context",
        "loop",
        "routes",
        "transport",
    )

    def __init__(self, context: ProtocolContext, *, routes: SocketRoutes) -> None:
        self.context = context
        self.loop = context.loop
        self.routes = routes
        self.transport: asyncio.Transport | None = None
        self._buffer: bytearray | None = None
        self._scanned = 0
        self._timer: asyncio.TimerHandle | None = None
        self._accepting: asyncio.Task[None] | None = None

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not registered as ``asyncio.Transport`` subclasses
        self.transport = cast("asyncio.Transport", transport)
        self.context.connections.add(self)
        self._timer = self.loop.call_later(self.routes.limits.head_timeout_s, self._head_timeout)

    def data_received(self, data: bytes) -> None:
        if self._accepting is not None:
            # reading is paused; keep what was already read for the socket
            assert self._buffer is not None
            self._buffer += data
            return
        buf: bytes | bytearray
        if self._buffer is None:
            buf = data
        else:
            self._buffer += data
            buf = self._buffer
        max_head = self.routes.limits.max_head_size
        end = _head_end(buf, self._scanned, max_head)
        if end < 0:
            if len(buf) > max_head:
                self._refuse(bare_error(431))
            elif self._buffer is None:
                self._buffer = bytearray(data)
            # an empty line may straddle two reads: rescan the last bytes
            self._scanned = max(0, len(buf) - 2)
            return
        if end > max_head:
            self._refuse(bare_error(431))
            return
        self._dispatch(bytes(buf), end)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        self.context.connections.discard(self)
        if self._accepting is not None:
            self._accepting.cancel()
        self._buffer = None

    def shutdown(self) -> None:
        """Graceful shutdown: a connection that has not finished its head is dropped."""
        if self.transport is not None:
            self.transport.close()

    # -- the decision ------------------------------------------------------------------
    def _dispatch(self, data: bytes, head_end: int) -> None:
        target = _socket_target(data)
        endpoint = self.routes.endpoints.get(target[0]) if target else None
        if target is None or endpoint is None:
            self._hand_to_http(data)
            return
        collector = _HeadCollector()
        try:
            httptools.HttpRequestParser(collector).feed_data(data[:head_end])
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserError:
            self._hand_to_http(data)  # the HTTP protocol answers malformed requests itself
            return
        assert self.transport is not None
        peer = self.transport.get_extra_info("peername")
        head = RequestHead(
            method="GET",
            path=target[0],
            query=target[1],
            headers=tuple(collector.headers),
            peer=(str(peer[0]), int(peer[1])) if peer else None,
        )
        if not is_upgrade_request(head):
            self._hand_to_http(data)
            return
        rejection = check_handshake(head)
        if rejection is None and not self.routes.origin_allowed(endpoint, head):
            rejection = HttpRejection(403, "Forbidden origin")
        if rejection is not None:
            self._refuse(rejection.encode())
            return
        self._buffer = bytearray(data[head_end:])
        self.transport.pause_reading()
        task = self.loop.create_task(self._accept(endpoint, head))
        self._accepting = task
        tasks = self.context.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _accept(self, endpoint: Endpoint, head: RequestHead) -> None:
        try:
            result = await endpoint.accept(head)
        except Exception:
            log.exception(
                "socket endpoint %s failed to accept", head.path, extra={"route": head.path}
            )
            result = HttpRejection(500)
        self._accepting = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if isinstance(result, HttpRejection):
            self._refuse(result.encode())
        else:
            key = head.header("sec-websocket-key")
            assert key is not None
            self._upgrade(endpoint, result, key)

    def _upgrade(self, endpoint: Endpoint, handler: SocketHandler, key: str) -> None:
        transport = self.transport
        assert transport is not None
        rest = bytes(self._buffer or b"")
        self._buffer = None
        self._stop_timer()
        self.context.connections.discard(self)
        transport.write(switching_protocols(key))
        conn = SocketConnection(
            handler,
            endpoint.limits,
            self.context.connections,
            self.routes.outbox(self.loop),
        )
        transport.set_protocol(conn)
        conn.connection_made(transport)
        if rest and conn.is_open:
            conn.data_received(rest)
        if not transport.is_closing():
            transport.resume_reading()

    def _hand_to_http(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        self._stop_timer()
        self._buffer = None
        self.context.connections.discard(self)
        limits = self.routes.limits
        http = DirectHttpProtocol(
            self.routes.direct_http,
            loop=self.loop,
            connections=self.context.connections,
            tasks=self.context.tasks,
            date=self.routes.date,
            max_head_size=limits.max_head_size,
            head_timeout_s=limits.head_timeout_s,
        )
        transport.set_protocol(http)
        http.connection_made(transport)
        http.data_received(data)

    # -- endings -----------------------------------------------------------------------
    def _refuse(self, response: bytes) -> None:
        self._stop_timer()
        self._buffer = None
        transport = self.transport
        assert transport is not None
        transport.write(response)
        transport.close()

    def _head_timeout(self) -> None:
        self._timer = None
        if self._accepting is not None:  # the endpoint took too long to decide
            self._accepting.cancel()
            self._accepting = None
            self._buffer = None
        if self._buffer:
            self._refuse(bare_error(408))
        elif self.transport is not None:
            self.transport.close()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
