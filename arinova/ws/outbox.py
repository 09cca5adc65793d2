"""``Outbox``: one write per socket per loop iteration, for every socket of a server.

A socket that queues a frame registers itself here once; one callback at the end of the
loop iteration has each registered socket write everything it queued in one write. A
burst (the chunks of one agent read fanned out to a user's sockets, an event sent to many
sockets) thus costs one write per socket and one callback in all, not one per frame.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

log = logging.getLogger("arinova.ws")


class Flushable(Protocol):
    def flush(self) -> None:
        """Write what is queued (the outbox calls it once per registration)."""


class Outbox:
    """The sockets of one event loop that queued frames in this iteration (each at most
    once: a socket registers again only after its flush, so the list is bounded by the
    number of sockets)."""

    __slots__ = ("_due", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._due: list[Flushable] = []

    def add(self, socket: Flushable) -> None:
        due = self._due
        if not due:
            self.loop.call_soon(self._flush)
        due.append(socket)

    def _flush(self) -> None:
        due, self._due = self._due, []
        for socket in due:
            try:
                socket.flush()
            except Exception:
                log.exception("writing a socket's frames failed")
