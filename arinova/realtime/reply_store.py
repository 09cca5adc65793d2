"""Storing a reply's end (websocket.md §3 items 9-10) while PostgreSQL may be unreachable.

The end is retried with backoff for ``reply_store_window_s``; the caller keeps the reply's
text readable and tells the user only once this returns. At most
``max_replies_awaiting_store`` replies wait so at once, and every attempt is bounded in
time (``ATTEMPT_S``), so a stalled connection cannot hold a conversation forever. The
outage is logged once when a store first finds PostgreSQL unreachable and once when one
succeeds again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from arinova.db.pool import Database
from arinova.db.queries import realtime as q
from arinova.db.unreachable import unreachable

if TYPE_CHECKING:
    from arinova.settings import RealtimeSettings

#: the pause after the first failed attempt, doubled after each one up to the last
FIRST_PAUSE_S = 0.1
MAX_PAUSE_S = 2.0
#: how long one attempt may wait for a connection, and then for the statement (a stalled
#: connection is given up after about twice this)
ATTEMPT_S = 5.0
#: an attempt at the end of the window, or the one marking a reply as failed, gets at least
#: this long
LAST_ATTEMPT_S = 1.0


class ReplyStore:
    __slots__ = ("_config", "_db", "_log", "_outage_since", "_waiting")

    def __init__(self, db: Database, config: RealtimeSettings, log: logging.Logger) -> None:
        self._db = db
        self._config = config
        self._log = log
        #: replies waiting for PostgreSQL to come back
        self._waiting = 0
        #: loop time the outage was noticed, None while PostgreSQL answers
        self._outage_since: float | None = None

    async def finish(self, message_id: str, content: str, status: str) -> bool:
        """True once the reply's end is stored; False when PostgreSQL stayed unreachable
        for the whole window, or too many replies already wait. Other errors raise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.reply_store_window_s
        pause = FIRST_PAUSE_S
        waiting = False
        try:
            while True:
                try:
                    await self._attempt(deadline, message_id, content, status)
                    return True
                except Exception as exc:
                    if not unreachable(exc):
                        raise
                    self._unreachable(exc)
                if not waiting:
                    if self._waiting >= self._config.max_replies_awaiting_store:
                        self._log.warning(
                            "message %s: %d replies already wait for PostgreSQL; "
                            "this one ends in error",
                            message_id,
                            self._waiting,
                        )
                        return False
                    waiting = True
                    self._waiting += 1
                left = deadline - loop.time()
                if left <= 0:
                    self._log.warning(
                        "message %s: PostgreSQL unreachable for %g s; the reply ends in error",
                        message_id,
                        self._config.reply_store_window_s,
                    )
                    return False
                await asyncio.sleep(min(pause, left))
                pause = min(pause * 2, MAX_PAUSE_S)
        finally:
            if waiting:
                self._waiting -= 1

    async def mark_failed(self, message_id: str, error: str) -> bool:
        """One bounded attempt to store the reply as an error. When it fails the row stays
        ``streaming`` until a sync repairs it (decisions.md Q45)."""
        loop = asyncio.get_running_loop()
        try:
            await self._attempt(loop.time(), message_id, error, "error")
            return True
        except Exception as exc:
            if unreachable(exc):
                self._unreachable(exc)
                self._log.warning("message %s stays streaming until a sync repairs it", message_id)
            else:
                self._log.exception(
                    "message %s stays streaming until a sync repairs it", message_id
                )
            return False

    async def _attempt(self, deadline: float, message_id: str, content: str, status: str) -> None:
        left = deadline - asyncio.get_running_loop().time()
        budget = min(ATTEMPT_S, max(left, LAST_ATTEMPT_S))
        # asyncpg's own timeouts, not a cancellation: releasing a connection whose statement
        # was cancelled waits for PostgreSQL's answer, bounded only by the acquire's timeout
        async with self._db.acquire(timeout=budget) as conn:
            await conn.execute(q.FINISH_MESSAGE.sql, message_id, content, status, timeout=budget)
        self._reachable()

    def _unreachable(self, exc: BaseException) -> None:
        if self._outage_since is None:
            self._outage_since = asyncio.get_running_loop().time()
            self._log.warning(
                "PostgreSQL unreachable (%s): replies' ends wait up to %g s to be stored",
                f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                self._config.reply_store_window_s,
            )

    def _reachable(self) -> None:
        if self._outage_since is not None:
            lasted = asyncio.get_running_loop().time() - self._outage_since
            self._outage_since = None
            self._log.warning(
                "PostgreSQL reachable again: replies' ends are stored (unreachable %.1f s)",
                lasted,
            )
