"""The WebSocket protocol of one server-side connection as plain state (RFC 6455 §5, §7):
bytes in, messages out, bytes to send, and what the transport must do next. No I/O and no
clock: the I/O layer (``arinova.ws.connection``) writes what ``data_to_send()`` returns,
carries out ``wants`` (``take_wants()``) and runs the close timer, calling ``timeout()``
when it fires.

The close handshake, as the original (Node ``ws``) runs it:

* we close (``close()``): our close frame goes out; input is still read, its messages
  dropped, until the peer's close frame comes, then TCP is closed;
* the peer closes: its code and reason are echoed, then TCP is closed;
* the peer breaks the protocol (1002; invalid UTF-8 1007; too big 1009, unless the
  message is one to skip, ``max_skipped_size``): our close frame
  with a bare code goes out and our write side is shut; what the peer still sends is
  discarded until it closes too.

Every path out of ``OPEN`` asks for the close timer: a peer that never finishes the
handshake is dropped when it fires (the application then sees the code we sent).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import cast

from arinova._fast.frames import (
    CLOSE_ABNORMAL,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_SKIPPED,
    FrameDecoder,
    FrameError,
    encode_close,
    encode_pong,
    parse_close,
)

# -- states ---------------------------------------------------------------------------
OPEN = 0
#: our close frame is queued; waiting for the peer's
CLOSING = 1
#: no more input is taken: the peer's close frame came, or it broke the protocol
ENDING = 2
#: the connection is gone (lost, aborted or timed out)
CLOSED = 3

# -- what the I/O layer must do once it has written ``data_to_send()`` (bit flags) ----
#: shut our write side (TCP FIN) and keep reading until the peer closes
WANT_WRITE_EOF = 1
#: close the connection once everything queued is written
WANT_CLOSE = 2
#: drop the connection now: nothing more is written
WANT_ABORT = 4
#: (re)start the close timer; call ``timeout()`` when it fires
WANT_CLOSE_TIMER = 8


class Skipped:
    """Where a message too large to keep was passed over (``receive_data``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SKIPPED"


SKIPPED = Skipped()
#: what ``receive_data`` hands out: text, binary, or ``SKIPPED``
Message = str | bytes | Skipped
_NO_MESSAGES: tuple[Message, ...] = ()


class Protocol:
    """One connection after the opening handshake (the server side: the peer masks)."""

    __slots__ = ("_decoder", "_out", "close_code", "close_reason", "queued", "state", "wants")

    def __init__(self, max_message_size: int, max_skipped_size: int = 0) -> None:
        self._decoder = FrameDecoder(max_message_size, max_skipped_size=max_skipped_size)
        #: ``OPEN``, ``CLOSING``, ``ENDING`` or ``CLOSED``
        self.state = OPEN
        #: what the application is told at the end: the peer's close frame if one came,
        #: else the one we sent, else 1006
        self.close_code = CLOSE_ABNORMAL
        self.close_reason = ""
        #: bytes waiting in ``data_to_send()``
        self.queued = 0
        #: ``WANT_*`` flags not taken yet (0: nothing to do but write what is queued)
        self.wants = 0
        self._out: list[bytes] | None = None

    # -- input ---------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> Iterable[Message]:
        """The messages in ``data``, in order: text as ``str``, binary as ``bytes``, one
        too large to keep (but within ``max_skipped_size``) as ``SKIPPED``.

        Iterate to the end: control frames are handled as the iteration reaches them (a
        ping queues a pong, a close frame runs the handshake), so what the application
        does with one message (say, close) applies to the frames after it. Messages are
        handed out only while the connection is open.
        """
        if self.state >= ENDING:
            return _NO_MESSAGES
        try:
            frames = self._decoder.feed(data)
        except FrameError as error:
            self._fail(error.code, error.reason)
            return _NO_MESSAGES
        count = len(frames)
        if count == 1 and self.state == OPEN:
            opcode, payload = frames[0]
            if opcode <= OP_BINARY:  # the common read: one message, nothing else to do
                return (payload,)
        elif count == 0:  # a frame that is not complete yet
            return _NO_MESSAGES
        return self._process(frames)

    def _process(self, frames: list[tuple[int, bytes | str]]) -> Iterator[Message]:
        for opcode, payload in frames:
            if opcode <= OP_BINARY:
                if self.state == OPEN:
                    yield payload
            elif opcode == OP_SKIPPED:
                if self.state == OPEN:
                    yield SKIPPED
            elif opcode == OP_PING:
                if self.state == OPEN:
                    self._queue(encode_pong(cast("bytes", payload)))
            elif opcode == OP_CLOSE:
                self._close_received(cast("bytes", payload))
            # a pong needs nothing
            if self.state >= ENDING:
                return

    def _close_received(self, payload: bytes) -> None:
        code, reason = parse_close(payload)  # the decoder has validated it
        if self.state == OPEN:
            # the peer starts the handshake: echo its code and reason (an empty close
            # frame is answered with an empty one), then end TCP
            self._queue(encode_close(code, reason))
            self.wants |= WANT_CLOSE_TIMER
        self.close_code, self.close_reason = code, reason
        self.state = ENDING
        self.wants |= WANT_CLOSE

    def _fail(self, code: int, reason: str) -> None:
        """The peer broke the protocol: our close frame, then our write side shut; its
        input is discarded until it closes too (closing at once could reset the
        connection before the peer reads the close frame)."""
        if self.state == OPEN:
            self.close_code, self.close_reason = code, reason
            self._queue(encode_close(code, reason))
        self.state = ENDING
        self.wants |= WANT_WRITE_EOF | WANT_CLOSE_TIMER

    # -- output --------------------------------------------------------------------------
    def send(self, frame: bytes) -> int:
        """Queue a frame encoded beforehand; the bytes now queued, or 0 (nothing queued)
        once the connection no longer takes messages."""
        if self.state != OPEN:
            return 0
        out = self._out  # ``_queue``, inlined: this runs for every frame sent
        if out is None:
            self._out = [frame]
        else:
            out.append(frame)
        self.queued += len(frame)
        return self.queued

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake (only while open)."""
        if self.state != OPEN:
            return
        self.state = CLOSING
        self.close_code, self.close_reason = code, reason
        self._queue(encode_close(code, reason))
        self.wants |= WANT_CLOSE_TIMER

    def data_to_send(self) -> bytes:
        """Everything queued, in order, as one write (``b""`` when nothing is)."""
        out = self._out
        if out is None:
            return b""
        self._out = None
        self.queued = 0
        return out[0] if len(out) == 1 else b"".join(out)

    def take_wants(self) -> int:
        """The ``WANT_*`` flags to carry out (after writing ``data_to_send()``), cleared."""
        wants = self.wants
        self.wants = 0
        return wants

    def _queue(self, frame: bytes) -> int:
        out = self._out
        if out is None:
            self._out = [frame]
        else:
            out.append(frame)
        self.queued += len(frame)
        return self.queued

    # -- what the I/O layer reports --------------------------------------------------------
    def timeout(self) -> None:
        """The close timer fired: the peer did not finish the handshake; drop it."""
        if self.state in (CLOSING, ENDING):
            self._drop()
            self.wants = WANT_ABORT

    def abort(self) -> None:
        """The I/O layer drops the connection: nothing queued is sent."""
        self._drop()

    def connection_lost(self) -> None:
        self._drop()

    def _drop(self) -> None:
        self.state = CLOSED
        self._out = None
        self.queued = 0
        self.wants = 0
