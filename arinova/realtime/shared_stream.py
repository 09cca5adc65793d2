"""``stream:<messageId>`` written for readers in other processes (websocket.md §9).

The writer of ``RedisCoordinator``: its commands ride in the bus's ordered batches, before
the publishes of the same batch, so a process that delivers a ``stream_chunk`` to a user's
socket can already read that chunk's text from Redis: every reader of the reply (the REST
message list, sync's missed messages) sees at least what the sockets were sent. A delta
costs its own length (``APPEND`` of the deltas of one batch joined), never a rewrite of the
text; the whole text is written (``SET``) only first, and again after a batch failed (what
a failed batch appended is unknown).

A high surrogate at the end of the text waits for the next delta: the pair may be split
between two chunks, and what is written is the well-formed text (as the original's UTF-8
writers stored it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from arinova.js import well_formed
from arinova.kv import keys

if TYPE_CHECKING:
    from arinova.realtime.coordinator import TextSource

Command = tuple[str | bytes | int, ...]


class SharedStreamText:
    __slots__ = (
        "_carry",
        "_dirty",
        "_key",
        "_refresh_at",
        "_source",
        "_synced",
        "_ttl",
        "_unsent",
        "finished",
    )

    def __init__(
        self,
        message_id: str,
        source: TextSource,
        ttl_s: int,
        dirty: Callable[[SharedStreamText], None],
    ) -> None:
        self._key = keys.stream(message_id)
        self._source = source
        self._ttl = ttl_s
        self._dirty = dirty
        self._unsent: list[str] = []
        self._carry = ""
        #: the key holds exactly the text written so far (false until the first write)
        self._synced = False
        #: when the key's TTL is renewed with the next append (monotonic time)
        self._refresh_at = 0.0
        self.finished = False

    def update(self, delta: str) -> None:
        unsent = self._unsent
        unsent.append(delta)
        if len(unsent) == 1:  # with more, the bus holds this stream for its next batch
            self._dirty(self)

    def finish(self) -> None:
        self.finished = True
        self._unsent.clear()
        self._dirty(self)

    def failed(self) -> None:
        """A batch with this writer's command failed: write the whole text next time."""
        self._synced = False
        self._dirty(self)

    def commands(self) -> list[Command]:
        """What the next batch carries for this stream."""
        if self.finished:
            return [("DEL", self._key)]
        if self._synced:
            text = self._carry + "".join(self._unsent)
            self._unsent.clear()
            text, self._carry = _hold_high_surrogate(text)
            if not text:
                return []
            out: list[Command] = [("APPEND", self._key, well_formed(text).encode())]
            now = time.monotonic()
            if now >= self._refresh_at:
                self._refresh_at = now + self._ttl / 2
                out.append(("EXPIRE", self._key, self._ttl))
            return out
        self._unsent.clear()
        text, self._carry = _hold_high_surrogate(self._source.text)
        self._synced = True
        self._refresh_at = time.monotonic() + self._ttl / 2
        return [("SET", self._key, well_formed(text).encode(), "EX", self._ttl)]


def _hold_high_surrogate(text: str) -> tuple[str, str]:
    if text and "\ud800" <= text[-1] <= "\udbff":
        return text[:-1], text[-1]
    return text, ""
