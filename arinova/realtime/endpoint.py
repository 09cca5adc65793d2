"""What a socket path plugs into the server: an ``Endpoint`` that accepts upgrades and the
``SocketHandler`` it creates for each accepted socket.

The connection calls the handler back (``on_open``, ``on_text``, ``on_close``); the handler
talks to its peer through the ``send_*`` and ``close`` methods of this base class. Handlers
live as long as their socket, so keep their state small and give subclasses ``__slots__``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from arinova._fast.frames import encode_text

if TYPE_CHECKING:
    from arinova.realtime.connection import SocketConnection
    from arinova.realtime.handshake import HttpRejection, RequestHead


@dataclass(frozen=True, slots=True)
class SocketLimits:
    """Per-endpoint bounds of one socket."""

    #: largest message (all its fragments) in bytes; a frame that would exceed it -> 1009
    max_message_size: int = 96 * 1024
    #: bytes queued for a peer that reads too slowly before it is disconnected
    max_write_buffer: int = 4 * 1024 * 1024
    #: queued bytes above which the peer counts as "not reading" ...
    write_high_water: int = 256 * 1024
    #: ... and how long it may stay that way before it is disconnected
    stall_timeout_s: float = 30.0
    #: how long a close handshake may take before the connection is dropped
    close_timeout_s: float = 5.0


class SocketHandler:
    """Base class of the per-socket application logic. The default does nothing."""

    __slots__ = ("conn",)

    def __init__(self) -> None:
        self.conn: SocketConnection | None = None

    # -- called by the connection ------------------------------------------------------
    def on_open(self) -> None:
        """The 101 answer is written; ``self.conn`` is set. Raising aborts the socket
        without a close frame."""

    def on_text(self, text: str) -> None:
        """One complete message (binary ones arrive decoded as UTF-8 as well)."""

    def on_close(self, code: int, reason: str) -> None:
        """The socket is gone. ``code``: the peer's close frame if one came, else the one
        we sent, else 1006. Called exactly once; ``self.conn`` is None afterwards."""

    # -- for the application -----------------------------------------------------------
    @property
    def open(self) -> bool:
        return self.conn is not None and self.conn.is_open

    def send_text(self, text: str) -> bool:
        """Send one text message; False when the socket is no longer open."""
        return self.send_frame(encode_text(text))

    def send_frame(self, frame: bytes) -> bool:
        """Write a frame encoded beforehand (fan-out encodes once for all recipients)."""
        conn = self.conn
        return conn is not None and conn.send_frame(frame)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake."""
        if self.conn is not None:
            self.conn.close(code, reason)

    def abort(self) -> None:
        """Drop the connection without a close frame (the peer sees 1006)."""
        if self.conn is not None:
            self.conn.abort()


class Endpoint:
    """One socket path. ``accept`` decides on an upgrade request: a handler for the new
    socket, or an HTTP rejection (for example 401) sent instead of the 101."""

    #: refuse a foreign ``Origin`` before the upgrade (decisions.md Q50, ``/ws`` only)
    check_origin: bool = False
    limits: SocketLimits = SocketLimits()

    async def accept(self, head: RequestHead) -> SocketHandler | HttpRejection:
        raise NotImplementedError
