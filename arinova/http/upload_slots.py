"""How many uploads one process reads at once, in all and per user.

An upload holds a slot from the moment its body starts being read until its rows are
written (or it fails), so the bytes in flight, the spool files and the storage
requests stay bounded whatever the clients do. A request that finds no free slot is
refused at once, before its body is read, with the contract's error bodies
(rest.md §1.6): 429 ``RATE_LIMIT`` when the caller already has its share in flight,
503 ``INTERNAL_ERROR`` when the process is full. Both carry ``retry-after`` and close
the connection (the unread body may still be arriving).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from arinova.errors import ApiError

#: seconds a refused client is told to wait
RETRY_AFTER_S: Final = 1
_REFUSAL_HEADERS: Final = {"retry-after": str(RETRY_AFTER_S), "connection": "close"}


class UploadSlots:
    def __init__(self, per_process: int, per_user: int) -> None:
        self.per_process = per_process
        self.per_user = per_user
        self._total = 0
        #: users with uploads in flight only, so at most ``per_process`` entries
        self._by_user: dict[str, int] = {}

    @property
    def in_flight(self) -> int:
        return self._total

    def in_flight_for(self, user_id: str) -> int:
        return self._by_user.get(user_id, 0)

    @contextmanager
    def hold(self, user_id: str) -> Iterator[None]:
        """A slot for one upload of ``user_id`` for the ``with`` block, or ``ApiError``."""
        held = self._by_user.get(user_id, 0)
        if held >= self.per_user:
            raise ApiError.rate_limited(_REFUSAL_HEADERS)
        if self._total >= self.per_process:
            raise ApiError(503, ApiError.internal().body, _REFUSAL_HEADERS)
        self._by_user[user_id] = held + 1
        self._total += 1
        try:
            yield
        finally:
            self._total -= 1
            left = self._by_user[user_id] - 1
            if left:
                self._by_user[user_id] = left
            else:
                del self._by_user[user_id]
