"""An HTTP/1.1 protocol (httptools) that runs the pipeline without an ASGI hop.

``DispatchProtocol`` hands every plain HTTP connection here (``runner.make_routes``);
uvicorn still owns the listening socket, the connection/task sets and the graceful
shutdown that calls ``shutdown()``.

What uvicorn's ``HttpToolsProtocol`` (0.54, as configured in ``runner.make_config``) does
that clients and our tests see, and this protocol reproduces:

* status line ``HTTP/1.1 <code> <http.HTTPStatus phrase>`` (empty phrase when unknown);
* a ``date`` header (RFC 1123, GMT; refreshed once a second) before the app's headers;
  no ``server`` header (``server_header=False``);
* header names lowercased, values checked (a control character -> the app "failed":
  500 ``text/plain`` "Internal Server Error" with ``connection: close``);
* ``connection: close`` appended when the connection will not be kept alive (HTTP/1.0,
  the client asked, or a graceful shutdown is under way); a response ``connection:
  close`` header ends keep-alive;
* ``transfer-encoding: chunked`` when the response has no ``content-length`` (not for
  HEAD, 204, 304); HEAD writes the head only;
* keep-alive: idle connections closed after ``timeout_keep_alive`` (72 s);
* pipelining: a request head that arrives while a response is pending is queued and
  reading paused; responses go out in order;
* request bodies (chunked or not) handed over by ``receive`` as they arrive; reading
  paused above 64 KiB buffered and resumed when the app asks for more;
  ``Expect: 100-continue`` answered with ``100 Continue`` when the app first reads;
* writing waits while the transport is above its high-water mark;
* a malformed request -> 400 ``text/plain`` "Invalid HTTP request received." and close;
* graceful shutdown (``shutdown()``): idle connections closed, a request in flight
  finishes and its response says ``connection: close``; each request's task is in
  ``tasks`` (waited for, cancelled after the shutdown timeout);
* the request's ``scope`` holds ``client``/``server``/``scheme`` (``ratelimit.http``
  reads ``client``).

Node's bounds on every request head, not only a connection's first (the dispatcher's):
at most ``max_head_size`` bytes (431) and complete within ``head_timeout_s`` (408).
``HttpApp.__call__`` + ``send_response`` (``arinova.http.common``) are replaced by
``_respond``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any, Final, cast

import httptools
from blacksheep import Request, Response
from blacksheep.contents import ASGIContent

from arinova.ws.handshake import bare_error

log = logging.getLogger("arinova.server")

#: request body bytes buffered before reading pauses (uvicorn's HIGH_WATER_LIMIT)
BODY_HIGH_WATER: Final = 65536

_HEADER_VALUE_RE: Final = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")


def _status_line(code: int) -> bytes:
    try:
        phrase = http.HTTPStatus(code).phrase.encode()
    except ValueError:
        phrase = b""
    return b"HTTP/1.1 %d %s\r\n" % (code, phrase)


STATUS_LINES: Final = {code: _status_line(code) for code in range(100, 600)}

Handler = Callable[[Request], Awaitable[Response]]


class DateHeader:
    """The ``date`` header line, formatted at most once a second."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = b"date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return self._line


class _Cycle:
    """One request: its body as it arrives, and whether its response was written."""

    __slots__ = (
        "body",
        "disconnected",
        "event",
        "head",
        "keep_alive",
        "more_body",
        "request",
        "response_complete",
        "response_started",
        "waiting_100",
    )

    def __init__(self, request: Request, *, keep_alive: bool, expect_100: bool) -> None:
        self.request = request
        self.head = request.method == "HEAD"
        self.body = bytearray()
        self.more_body = True
        self.event = asyncio.Event()
        self.disconnected = False
        self.response_complete = False
        self.response_started = False
        self.keep_alive = keep_alive
        self.waiting_100 = expect_100


class DirectHttpProtocol(asyncio.Protocol):
    def __init__(
        self,
        handler: Handler,
        *,
        loop: asyncio.AbstractEventLoop,
        connections: set[Any],
        tasks: set[asyncio.Task[None]],
        date: DateHeader,
        max_head_size: int,
        head_timeout_s: float,
        keep_alive_s: float = 72.0,
    ) -> None:
        self.handler = handler
        self.loop = loop
        self.connections = connections
        self.tasks = tasks
        self.date = date
        self._max_head_size = max_head_size
        self._head_timeout_s = head_timeout_s
        self._keep_alive_s = keep_alive_s
        self.parser = httptools.HttpRequestParser(self)
        with contextlib.suppress(AttributeError):
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport | None = None
        self._scope: dict[str, Any] = {}
        self._pending: deque[_Cycle] = deque()
        self._cycle: _Cycle | None = None  # the one being parsed
        self._running: _Cycle | None = None  # the one being answered
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._expect_100 = False
        self._read_paused = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._in_head = False
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._closing = False

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)
        self.connections.add(self)
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self._scope = {
            "type": "http",
            "scheme": "http",
            "client": (str(peer[0]), int(peer[1])) if peer else None,
            "server": (str(local[0]), int(local[1])) if isinstance(local, tuple) else None,
        }

    def data_received(self, data: bytes) -> None:
        self._stop_idle()
        started_in_head = self._in_head
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # upgrades on socket paths were taken by the dispatcher
        except httptools.HttpParserError:
            self._bad_request()
            return
        if not self._in_head:
            return
        if started_in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self._max_head_size:
                self._refuse(431)
                return
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self._head_timeout_s, self._refuse, 408)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self._end_head()
        self._stop_idle()
        self._closing = True
        for cycle in (self._running, self._cycle, *self._pending):
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.event.set()
        self._pending.clear()
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def shutdown(self) -> None:
        """Graceful shutdown: close when idle, else after the response in flight."""
        self._closing = True
        if self._running is None and self.transport is not None:
            self.transport.close()
        elif self._running is not None:
            self._running.keep_alive = False

    # -- httptools callbacks -----------------------------------------------------------
    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._url = b""
        self._headers = []
        self._expect_100 = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self._expect_100 = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._end_head()
        parser = self.parser
        parsed = httptools.parse_url(self._url)
        request = Request.incoming(
            parser.get_method().decode("ascii"), parsed.path, parsed.query or b"", self._headers
        )
        request.scope = cast("Any", self._scope)
        keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        cycle = _Cycle(
            request, keep_alive=keep_alive and not self._closing, expect_100=self._expect_100
        )
        request.content = ASGIContent(_Receiver(self, cycle))
        self._cycle = cycle
        if self._running is None:
            self._start(cycle)
        else:
            self._pause_reading()
            self._pending.append(cycle)

    def on_body(self, body: bytes) -> None:
        cycle = self._cycle
        if cycle is None or cycle.response_complete:
            return
        cycle.body += body
        if len(cycle.body) > BODY_HIGH_WATER:
            self._pause_reading()
        cycle.event.set()

    def on_message_complete(self) -> None:
        cycle = self._cycle
        if cycle is None or cycle.response_complete:
            return
        cycle.more_body = False
        cycle.event.set()

    # -- requests ----------------------------------------------------------------------
    def _start(self, cycle: _Cycle) -> None:
        self._running = cycle
        task = self.loop.create_task(self._run(cycle))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, cycle: _Cycle) -> None:
        request = cycle.request
        try:
            response = await self.handler(request)
            await self._respond(cycle, response)
        except Exception:
            log.exception("the HTTP app failed")
            if not cycle.response_started:
                self._write_500(cycle)
            elif self.transport is not None:  # a body cut short: the client must see it
                cycle.keep_alive = False
                self.transport.close()
        finally:
            request.scope = cast("Any", None)
            request.dispose()
        self._finished(cycle)

    async def _respond(self, cycle: _Cycle, response: Response) -> None:
        transport = self.transport
        assert transport is not None
        if cycle.disconnected:
            return
        status = response.status
        headers = response.headers.values or []
        content: Any = response.content
        parts = [STATUS_LINES.get(status) or _status_line(status), self.date.line()]
        length: int | None = None
        for name, value in headers:
            if _HEADER_VALUE_RE.search(value):
                raise RuntimeError("invalid HTTP header value")
            name = name.lower()
            if name == b"content-length" and length is None:
                length = int(value)
            elif name == b"connection" and b"close" in value.lower():
                cycle.keep_alive = False
            parts += (name, b": ", value, b"\r\n")
        if content is not None:
            parts += (b"content-type: ", content.type or b"application/octet-stream", b"\r\n")
            if content.length >= 0:
                length = content.length
                parts += (b"content-length: %d\r\n" % length,)
        elif status != 204 and status != 304 and length is None:
            length = 0
            parts.append(b"content-length: 0\r\n")
        if not cycle.keep_alive and not any(
            n.lower() == b"connection" and b"close" in v.lower() for n, v in headers
        ):
            parts.append(b"connection: close\r\n")
        chunked = length is None and not cycle.head and status != 204 and status != 304
        if chunked:
            parts.append(b"transfer-encoding: chunked\r\n")
        parts.append(b"\r\n")
        cycle.waiting_100 = False
        cycle.response_started = True
        if content is None or cycle.head:
            transport.write(b"".join(parts))
        elif content.body is not None and content.length >= 0:
            parts.append(content.body)
            transport.write(b"".join(parts))
        else:
            transport.write(b"".join(parts))
            async for chunk in content.get_parts():
                if not chunk:
                    continue
                if not self._writable.is_set():
                    await self._writable.wait()
                if cycle.disconnected:
                    return
                transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            if chunked:
                transport.write(b"0\r\n\r\n")
        cycle.response_complete = True
        cycle.event.set()

    def _finished(self, cycle: _Cycle) -> None:
        self._running = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not cycle.keep_alive or not cycle.response_complete:
            transport.close()
            return
        self._resume_reading()
        if self._pending:
            self._start(self._pending.popleft())
        elif self._closing:
            transport.close()
        else:
            self._idle_timer = self.loop.call_later(self._keep_alive_s, self._idle_timeout)

    # -- flow control and endings ------------------------------------------------------
    def _pause_reading(self) -> None:
        if not self._read_paused and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._read_paused and self.transport is not None:
            self._read_paused = False
            self.transport.resume_reading()

    def _write_500(self, cycle: _Cycle) -> None:
        cycle.response_complete = True
        cycle.keep_alive = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(
            b"".join(
                (
                    STATUS_LINES[500],
                    self.date.line(),
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: 21\r\nconnection: close\r\n\r\n",
                    b"Internal Server Error",
                )
            )
        )

    def _bad_request(self) -> None:
        log.warning("Invalid HTTP request received.")
        message = b"Invalid HTTP request received."
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(
            b"".join(
                (
                    STATUS_LINES[400],
                    self.date.line(),
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: %d\r\nconnection: close\r\n\r\n" % len(message),
                    message,
                )
            )
        )
        transport.close()

    def _refuse(self, status: int) -> None:
        self._end_head()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(bare_error(status))
            transport.close()

    def _end_head(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _idle_timeout(self) -> None:
        self._idle_timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _stop_idle(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None


class _Receiver:
    """The ``receive`` callable BlackSheep's ``ASGIContent`` reads the body through."""

    __slots__ = ("cycle", "protocol")

    def __init__(self, protocol: DirectHttpProtocol, cycle: _Cycle) -> None:
        self.protocol = protocol
        self.cycle = cycle

    async def __call__(self) -> dict[str, Any]:
        cycle = self.cycle
        protocol = self.protocol
        transport = protocol.transport
        if cycle.waiting_100 and transport is not None and not transport.is_closing():
            transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            cycle.waiting_100 = False
        if not cycle.disconnected and not cycle.response_complete:
            if cycle.more_body and not cycle.body:
                protocol._resume_reading()
                await cycle.event.wait()
            cycle.event.clear()
        if cycle.disconnected or cycle.response_complete:
            return {"type": "http.disconnect"}
        body = bytes(cycle.body)
        cycle.body = bytearray()
        protocol._resume_reading()
        return {"type": "http.request", "body": body, "more_body": cycle.more_body}
