"""``SocketConnection``: one accepted WebSocket as a bare ``asyncio.Protocol``.

An idle socket costs this object, its frame decoder and its handler: no task, queue,
future or buffer. Timers exist only while a close handshake runs or while the peer
stops reading.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from arinova._fast.frames import (
    CLOSE_ABNORMAL,
    CLOSE_GOING_AWAY,
    CLOSE_NO_STATUS,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    FrameDecoder,
    FrameError,
    encode_close,
    encode_pong,
    parse_close,
)
from arinova.realtime.endpoint import SocketHandler, SocketLimits

log = logging.getLogger("arinova.realtime")

_OPEN = 0
#: we sent a close frame and wait for the peer's
_CLOSING = 1
#: no more input is read: the peer's close frame arrived, or it broke the protocol
_ENDING = 2
_CLOSED = 3


class SocketConnection(asyncio.Protocol):
    __slots__ = (
        "_close_code",
        "_close_reason",
        "_connections",
        "_decoder",
        "_limits",
        "_state",
        "_timer",
        "handler",
        "transport",
    )

    def __init__(
        self,
        handler: SocketHandler,
        limits: SocketLimits,
        connections: set[Any],
    ) -> None:
        self.handler = handler
        self.transport: asyncio.Transport | None = None
        self._limits = limits
        self._decoder = FrameDecoder(limits.max_message_size)
        # uvicorn's set of live connections: its graceful shutdown calls ``shutdown()``
        self._connections = connections
        self._state = _OPEN
        self._close_code = CLOSE_ABNORMAL
        self._close_reason = ""
        self._timer: asyncio.TimerHandle | None = None

    @property
    def is_open(self) -> bool:
        return self._state == _OPEN

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not registered as ``asyncio.Transport`` subclasses
        self.transport = cast("asyncio.Transport", transport)
        self._connections.add(self)
        self.transport.set_write_buffer_limits(high=self._limits.write_high_water)
        self.handler.conn = self
        try:
            self.handler.on_open()
        except Exception:
            log.exception("socket handler failed to open")
            self.abort()

    def data_received(self, data: bytes) -> None:
        if self._state >= _ENDING:
            return
        try:
            events = self._decoder.feed(data)
        except FrameError as error:
            self._fail(error.code, error.reason)
            return
        for opcode, payload in events:
            if isinstance(payload, str):  # OP_TEXT: decoded by the codec
                self._deliver(payload)
            elif opcode == OP_BINARY:
                self._deliver(payload.decode("utf-8", "replace"))
            elif opcode == OP_PING:
                if self._state == _OPEN:
                    self._write(encode_pong(payload))
            elif opcode == OP_CLOSE:
                self._close_received(payload)
            if self._state >= _ENDING:
                return

    def eof_received(self) -> bool:
        return False  # the transport closes itself; no close frame -> 1006

    def pause_writing(self) -> None:
        if self._state == _OPEN and self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._limits.stall_timeout_s, self._stalled)

    def resume_writing(self) -> None:
        if self._state == _OPEN and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._state = _CLOSED
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._connections.discard(self)
        handler = self.handler
        try:
            handler.on_close(self._close_code, self._close_reason)
        except Exception:
            log.exception("socket handler failed on close")
        finally:
            handler.conn = None

    # -- called by the handler and the server ------------------------------------------
    def send_frame(self, frame: bytes) -> bool:
        if self._state != _OPEN:
            return False
        self._write(frame)
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame and wait (bounded) for the peer's."""
        if self._state != _OPEN:
            return
        self._state = _CLOSING
        self._close_code, self._close_reason = code, reason
        self._write(encode_close(code, reason))
        if self._state == _CLOSING:
            self._arm_close_timer()

    def shutdown(self) -> None:
        """Graceful server shutdown (called by uvicorn): close with 1001."""
        self.close(CLOSE_GOING_AWAY)

    def abort(self) -> None:
        if self.transport is not None and self._state != _CLOSED:
            self._state = _CLOSED
            self.transport.abort()

    # -- internals ---------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        transport.write(data)
        queued = transport.get_write_buffer_size()
        if queued > self._limits.max_write_buffer:
            log.info("socket peer is not reading: %d bytes queued, disconnecting", queued)
            self.abort()

    def _deliver(self, text: str) -> None:
        if self._state != _OPEN:
            return
        try:
            self.handler.on_text(text)
        except Exception:
            # as the original: a failure while handling one message is logged, and the
            # socket stays open
            log.exception("socket handler failed on a message")

    def _close_received(self, payload: bytes) -> None:
        code, reason = parse_close(payload)
        if self._state == _OPEN:
            # the peer starts the handshake: echo its code and reason, then end TCP
            self._write(b"\x88\x00" if code == CLOSE_NO_STATUS else encode_close(code, reason))
        self._close_code, self._close_reason = code, reason
        if self._state != _CLOSED:
            self._state = _ENDING
            assert self.transport is not None
            self.transport.close()

    def _fail(self, code: int, reason: str) -> None:
        """The peer broke the protocol: send our close frame, then discard what it still
        sends until it closes too (closing at once could reset the connection before the
        peer reads the close frame)."""
        if self._state == _OPEN:
            self._close_code, self._close_reason = code, reason
            self._write(encode_close(code, reason))
        if self._state == _CLOSED:
            return
        self._state = _ENDING
        transport = self.transport
        assert transport is not None
        if transport.can_write_eof():
            transport.write_eof()
        self._arm_close_timer()

    def _arm_close_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._limits.close_timeout_s, self.abort)

    def _stalled(self) -> None:
        self._timer = None
        log.info("socket peer stopped reading for %.0f s", self._limits.stall_timeout_s)
        self.abort()
