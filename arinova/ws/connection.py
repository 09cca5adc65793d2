"""``SocketConnection``: the asyncio side of one accepted WebSocket, a bare
``asyncio.Protocol`` that drives its ``Protocol`` (``arinova.ws.protocol``) from the
transport.

It feeds the protocol what the transport reads, hands the messages to the handler, writes
what the protocol queues (through the loop's ``Outbox``: one write per loop iteration),
carries out what the protocol wants of the transport, and owns the only timers: the close
timer while a close handshake runs, the stall timer while the peer stops reading. It also
bounds the bytes queued for a peer (``SocketLimits.max_write_buffer``).

An idle socket costs this object, its protocol and decoder, and the handler: no task,
timer, future or buffer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast

from arinova._fast.frames import CLOSE_GOING_AWAY
from arinova.ws.handler import SocketHandler, deliver, finish, start
from arinova.ws.limits import SocketLimits
from arinova.ws.outbox import Outbox
from arinova.ws.protocol import (
    CLOSED,
    OPEN,
    WANT_ABORT,
    WANT_CLOSE,
    WANT_CLOSE_TIMER,
    WANT_WRITE_EOF,
    Protocol,
)

log = logging.getLogger("arinova.ws")


class SocketConnection(asyncio.Protocol):
    __slots__ = (
        "_connections",
        "_limits",
        "_outbox",
        "_read_at",
        "_resume",
        "_scheduled",
        "_timer",
        "handler",
        "protocol",
        "transport",
    )

    def __init__(
        self,
        handler: SocketHandler,
        limits: SocketLimits,
        connections: set[Any],
        outbox: Outbox,
    ) -> None:
        self.handler = handler
        self.protocol = Protocol(limits.max_message_size, limits.max_skipped_size)
        self.transport: asyncio.Transport | None = None
        self._limits = limits
        # uvicorn's set of live connections: its graceful shutdown calls ``shutdown()``
        self._connections = connections
        self._outbox = outbox
        #: registered in the outbox, not flushed yet
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        #: while reading pauses after a read (``SocketLimits.read_pause_s``)
        self._resume: asyncio.TimerHandle | None = None
        #: loop time of the last read, when reads may pause
        self._read_at = 0.0

    @property
    def is_open(self) -> bool:
        return self.protocol.state == OPEN

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not registered as ``asyncio.Transport`` subclasses
        self.transport = cast("asyncio.Transport", transport)
        self._connections.add(self)
        self.transport.set_write_buffer_limits(high=self._limits.write_high_water)
        if not start(self.handler, self):
            self.abort()

    def data_received(self, data: bytes) -> None:
        handler = self.handler
        protocol = self.protocol
        for message in protocol.receive_data(data):
            deliver(handler, message)
        if protocol.wants or (protocol.queued and not self._scheduled):
            self._carry_out()
        pause = self._limits.read_pause_s
        if pause and self._resume is None and protocol.state == OPEN:
            loop = self._outbox.loop
            now = loop.time()
            last, self._read_at = self._read_at, now
            if now - last >= 2 * pause:
                return  # reads far apart: a pause would gather nothing and cost a wakeup
            transport = self.transport
            assert transport is not None
            if not transport.is_closing():
                transport.pause_reading()
                self._resume = loop.call_later(pause, self._resume_reading)

    def eof_received(self) -> bool:
        return False  # the transport closes itself; no close frame -> 1006

    def pause_writing(self) -> None:
        if self.protocol.state == OPEN and self._timer is None:
            self._start_timer(self._limits.stall_timeout_s, self._stalled)

    def resume_writing(self) -> None:
        if self.protocol.state == OPEN and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        protocol = self.protocol
        protocol.connection_lost()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        self._connections.discard(self)
        finish(self.handler, protocol.close_code, protocol.close_reason)

    # -- called by the handler, the outbox and the server --------------------------------
    def send_frame(self, frame: bytes) -> bool:
        """Queue a frame for the end of this loop iteration; False when the socket is no
        longer open, or when the frames queued in this iteration alone exceed what a peer
        may have queued (the connection is then dropped; the transport's own buffer is
        checked after each write)."""
        queued = self.protocol.send(frame)
        if not queued:
            return False
        if queued > self._limits.max_write_buffer:
            self._overflow(queued)
            return False
        if not self._scheduled:
            self._scheduled = True
            self._outbox.add(self)
        return True

    def flush(self) -> None:
        """The outbox's call: write everything queued, in one write."""
        self._scheduled = False
        data = self.protocol.data_to_send()
        if data:
            self._write(data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (after what is queued) and wait, bounded, for the peer's."""
        self.protocol.close(code, reason)
        self._carry_out()

    def shutdown(self) -> None:
        """Graceful server shutdown (called by uvicorn): close with 1001."""
        self.close(CLOSE_GOING_AWAY)

    def abort(self) -> None:
        if self.transport is not None and self.protocol.state != CLOSED:
            self.protocol.abort()
            self.transport.abort()

    # -- internals ---------------------------------------------------------------------
    def _carry_out(self) -> None:
        """Do what the protocol asks for after a call: its output goes to the outbox, or
        straight to the transport when the transport must act next."""
        protocol = self.protocol
        if not protocol.wants:
            if protocol.queued and not self._scheduled:
                self._scheduled = True
                self._outbox.add(self)
            return
        wants = protocol.take_wants()
        transport = self.transport
        assert transport is not None
        if wants & WANT_ABORT:
            transport.abort()
            return
        data = protocol.data_to_send()
        if data and not self._write(data):
            return
        if wants & WANT_WRITE_EOF and transport.can_write_eof():
            transport.write_eof()
        if wants & WANT_CLOSE:
            transport.close()
        if wants & WANT_CLOSE_TIMER:
            self._start_timer(self._limits.close_timeout_s, self._close_timeout)

    def _write(self, data: bytes) -> bool:
        """Write ``data``; False when the peer has too much queued (it is dropped)."""
        transport = self.transport
        assert transport is not None
        transport.write(data)
        queued = transport.get_write_buffer_size()
        if queued > self._limits.max_write_buffer:
            self._overflow(queued)
            return False
        return True

    def _resume_reading(self) -> None:
        self._resume = None
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def _overflow(self, queued: int) -> None:
        log.info("socket peer is not reading: %d bytes queued, disconnecting", queued)
        self.abort()

    def _start_timer(self, delay: float, callback: Callable[[], None]) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._outbox.loop.call_later(delay, callback)

    def _close_timeout(self) -> None:
        self._timer = None
        self.protocol.timeout()
        self._carry_out()

    def _stalled(self) -> None:
        self._timer = None
        log.info("socket peer stopped reading for %.0f s", self._limits.stall_timeout_s)
        self.abort()
