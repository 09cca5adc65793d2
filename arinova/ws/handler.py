"""What a socket path plugs into the server: an ``Endpoint`` that accepts upgrades and the
``SocketHandler`` it creates for each accepted socket, and the policies between a socket
and its handler (websocket.md §0).

The connection calls the handler back (``on_open``, ``on_text``, ``on_too_large``,
``on_close``) through
``start``, ``deliver`` and ``finish``; the handler talks to its peer through the
``send_*`` and ``close`` methods of this base class. Handlers live as long as their socket,
so keep their state small and give subclasses ``__slots__``.
"""

from __future__ import annotations

import logging
from typing import Protocol

from arinova._fast.frames import encode_text
from arinova.ws.handshake import HttpRejection, RequestHead
from arinova.ws.limits import SocketLimits
from arinova.ws.protocol import Message, Skipped

log = logging.getLogger("arinova.ws")


class Link(Protocol):
    """What a handler holds of its socket (``SocketHandler.conn``)."""

    @property
    def is_open(self) -> bool: ...

    def send_frame(self, frame: bytes) -> bool: ...

    def close(self, code: int = 1000, reason: str = "") -> None: ...

    def abort(self) -> None: ...


class SocketHandler:
    """Base class of the per-socket application logic. The default does nothing."""

    __slots__ = ("conn",)

    #: a drain closes these sockets before the others, and lets what their close starts
    #: finish while the others are still open to hear of it
    closes_first: bool = False

    def __init__(self) -> None:
        self.conn: Link | None = None

    # -- called by the connection ------------------------------------------------------
    def on_open(self) -> None:
        """The 101 answer is written; ``self.conn`` is set. Raising aborts the socket
        without a close frame."""

    def on_text(self, text: str) -> None:
        """One complete message (binary ones arrive decoded as UTF-8 as well)."""

    def on_too_large(self) -> None:
        """A message larger than the socket's ``max_message_size`` (within its
        ``max_skipped_size``) was passed over: the socket stays open."""

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
        """Send a frame encoded beforehand (fan-out encodes once for all recipients).
        Frames sent during one loop iteration go out together, in order, at its end."""
        conn = self.conn
        return conn is not None and conn.send_frame(frame)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake; frames sent before it still go out first."""
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


# -- the policies between a socket and its handler ------------------------------------------


def start(handler: SocketHandler, conn: Link) -> bool:
    """Attach ``handler`` to its socket and open it; False when ``on_open`` raised (the
    socket is then dropped without a close frame: websocket.md §0, set-up crash)."""
    handler.conn = conn
    try:
        handler.on_open()
    except Exception:
        log.exception("socket handler failed to open")
        return False
    return True


def deliver(handler: SocketHandler, message: Message) -> None:
    """One message to the handler. A binary message is decoded as UTF-8 (undecodable bytes
    replaced) and treated as text (websocket.md §0). As the original: a failure while
    handling one message is logged, and the socket stays open."""
    try:
        if isinstance(message, str):
            handler.on_text(message)
        elif isinstance(message, Skipped):
            handler.on_too_large()
        else:
            handler.on_text(message.decode("utf-8", "replace"))
    except Exception:
        log.exception("socket handler failed on a message")


def finish(handler: SocketHandler, code: int, reason: str) -> None:
    """The socket is gone: tell the handler, once, and detach it."""
    try:
        handler.on_close(code, reason)
    except Exception:
        log.exception("socket handler failed on close")
    finally:
        handler.conn = None
