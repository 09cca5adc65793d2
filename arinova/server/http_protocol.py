"""uvicorn's httptools protocol with Node's bounds on every request head.

The dispatcher bounds the first head of a connection; this keeps later heads on a
keep-alive connection bounded too: at most ``max_head_size`` bytes (plus at most the one
read in which the head started) -> 431, and complete within ``head_timeout_s`` -> 408.
Without it, uvicorn buffers a header of any size for as long as the peer keeps sending.
"""

from __future__ import annotations

import asyncio

from arinova.compat import ProtocolContext, UvicornHttpProtocol
from arinova.ws.handshake import bare_error


class BoundedHttpProtocol(UvicornHttpProtocol):
    def __init__(
        self, context: ProtocolContext, *, max_head_size: int, head_timeout_s: float
    ) -> None:
        super().__init__(context)
        self._max_head_size = max_head_size
        self._head_timeout_s = head_timeout_s
        self._in_head = False
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        started_in_head = self._in_head
        super().data_received(data)
        if not self._in_head:
            return
        if started_in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self._max_head_size:
                self._refuse(431)
                return
        if self._head_timer is None:  # only a head split across reads needs a timer
            self._head_timer = self.call_later(self._head_timeout_s, self._head_timeout)

    def head_started(self) -> None:
        self._in_head = True
        self._head_bytes = 0

    def head_finished(self) -> None:
        self._end_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_head()
        super().connection_lost(exc)

    def _end_head(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._refuse(408)

    def _refuse(self, status: int) -> None:
        self._end_head()
        self.write_and_close(bare_error(status))
