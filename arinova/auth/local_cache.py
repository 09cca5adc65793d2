"""Each process's own copies of session lookups, in front of the shared cache
(``sessions.py``), so that a warm session costs no Redis round trip.

A copy keeps the deadline of the shared entry it came from (its database read +
``cache_ttl_s``). Invalidations travel on the ``auth:bus`` channel; the copies fail closed:

* A revocation drops its own copies, publishes the digests and waits until every process
  that heard it (``PUBLISH`` counts them) has dropped its copies and acknowledged; a
  process that does not acknowledge in time has stopped trusting its copies by then
  (below), so the revocation answers either way and no copy read before it is used after.
* A process trusts its copies only while its bus subscription is confirmed and it heard,
  within ``TRUST_S``, a heartbeat it published after that confirmation. Messages on one
  subscription arrive in the order Redis took them: a process that heard a heartbeat sent
  after a revocation was published has already dropped the revoked copies. Losing the
  subscription drops every copy (what was published meanwhile was missed), and a copy
  read before a confirmation or an invalidation is not kept.
* On a Redis Cluster no subscription is confirmed (a channel may move between nodes):
  every lookup goes to the shared cache. Without Redis (one process) nothing else holds a
  copy: invalidating drops them directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

from arinova.auth.records import SessionWithUser
from arinova.bounded import BoundedMap
from arinova.kv import KV, keys

log = logging.getLogger("arinova.auth")

#: how often a process publishes its heartbeat on the bus
HEARTBEAT_S: Final = 0.25
#: copies are trusted for this long after the last heartbeat heard back
TRUST_S: Final = 1.0
#: added to a revocation's wait for acknowledgements: the processes' clocks may run apart
ACK_MARGIN_S: Final = 0.25

_HEARTBEAT: Final = b"h"
_INVALIDATE: Final = b"i"
_ACK: Final = b"a"


@dataclass(slots=True)
class _Pending:
    """A revocation waiting for the processes that heard it."""

    done: asyncio.Future[None]
    acked: set[bytes] = field(default_factory=set)
    needed: int | None = None

    def check(self) -> None:
        if self.needed is not None and len(self.acked) >= self.needed and not self.done.done():
            self.done.set_result(None)


class LocalSessions:
    def __init__(self, kv: KV, *, size: int) -> None:
        self._kv = kv
        self._shared = kv.shared
        self._copies: BoundedMap[str, tuple[float, SessionWithUser]] = BoundedMap(size)
        self.process = secrets.token_hex(8).encode()
        #: bumped by every invalidation: a lookup that began before one keeps no copy
        self.generation = 0
        #: loop time the subscription was confirmed at; None while it is not
        self._since: float | None = None
        #: send time of the last own heartbeat heard since the confirmation
        self._heard = -math.inf
        self._pending: dict[bytes, _Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._beat: asyncio.Task[None] | None = None
        self._beat_failed = False
        #: the loop the bus runs on (``trusted`` reads its clock on every request)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        if not self._shared:
            return
        self._loop = asyncio.get_running_loop()
        self._kv.on_subscription(self._on_state)
        await self._kv.subscribe(keys.AUTH_BUS, self._on_message)
        self._beat = asyncio.get_running_loop().create_task(self._heartbeat())

    async def close(self) -> None:
        tasks = [t for t in (self._beat, *self._tasks) if t is not None]
        self._beat = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._shared:
            with contextlib.suppress(Exception):
                await self._kv.unsubscribe(keys.AUTH_BUS, self._on_message)
        self._copies.clear()

    # -- lookups ------------------------------------------------------------------------
    def trusted(self) -> bool:
        if not self._shared:
            return True
        loop = self._loop
        return self._since is not None and loop is not None and loop.time() - self._heard < TRUST_S

    def get(self, digest: str, now: float) -> SessionWithUser | None:
        """The copy of a session, while copies are trusted and it is before its deadline
        (``now``: wall clock, as the deadline)."""
        found = self._copies.get(digest)
        if found is None:
            return None
        trusted_until, entry = found
        if trusted_until <= now:
            self._copies.pop(digest)
            return None
        return entry if self.trusted() else None

    def put(
        self, digest: str, entry: SessionWithUser, trusted_until: float, generation: int
    ) -> None:
        """Keep a copy read by a lookup that began at ``generation``."""
        if generation == self.generation and self.trusted():
            self._copies.put(digest, (trusted_until, entry))

    def drop(self, digests: list[str]) -> None:
        self.generation += 1
        for digest in digests:
            self._copies.pop(digest)

    def _drop_all(self) -> None:
        self.generation += 1
        self._copies.clear()

    # -- revocations --------------------------------------------------------------------
    async def revoke(self, digests: list[str]) -> None:
        """Drop the copies everywhere; returns once no process trusts one (see above).
        Publishing errors propagate (the caller retries)."""
        self.drop(digests)
        if not self._shared:
            return
        nonce = secrets.token_hex(8).encode()
        pending = _Pending(asyncio.get_running_loop().create_future())
        self._pending[nonce] = pending
        try:
            message = b" ".join((_INVALIDATE + self.process, nonce, ",".join(digests).encode()))
            pending.needed = await self._kv.publish(keys.AUTH_BUS, message)
            pending.check()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TRUST_S + ACK_MARGIN_S):
                    await pending.done
            if not pending.done.done():
                log.warning(
                    "session invalidation: %d of %s processes acknowledged; the others "
                    "have stopped trusting their copies meanwhile",
                    len(pending.acked),
                    pending.needed,
                )
        finally:
            del self._pending[nonce]

    # -- the bus ------------------------------------------------------------------------
    def _on_state(self, channel: str, up: bool) -> None:
        if channel != keys.AUTH_BUS:
            return
        self._drop_all()
        self._heard = -math.inf
        self._since = asyncio.get_running_loop().time() if up else None
        if not up:
            log.warning("session bus subscription lost; local session copies dropped")

    def _on_message(self, channel: str, data: bytes) -> None:
        head, _, rest = data.partition(b" ")
        kind, sender = head[:1], head[1:]
        if kind == _HEARTBEAT:
            if sender == self.process and self._since is not None:
                with contextlib.suppress(ValueError):
                    sent = float(rest)
                    if sent >= self._since:
                        self._heard = max(self._heard, sent)
        elif kind == _INVALIDATE:
            nonce, _, digests = rest.partition(b" ")
            self.drop(digests.decode().split(","))
            if sender == self.process:
                self._acked(nonce, sender)
            else:
                self._spawn(self._acknowledge(sender, nonce))
        elif kind == _ACK:
            target, _, nonce = rest.partition(b" ")
            if target == self.process:
                self._acked(nonce, sender)

    def _acked(self, nonce: bytes, by: bytes) -> None:
        pending = self._pending.get(nonce)
        if pending is not None:
            pending.acked.add(by)
            pending.check()

    async def _acknowledge(self, sender: bytes, nonce: bytes) -> None:
        try:
            await self._kv.publish(keys.AUTH_BUS, b" ".join((_ACK + self.process, sender, nonce)))
        except Exception as exc:
            log.warning("session invalidation not acknowledged: %s", exc)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        # closed is told by ``_beat`` too: a cancel that arrives inside redis-py's publish
        # can come out as a connection error, which would otherwise keep the loop going
        while self._beat is not None:
            sent = loop.time()
            if self._since is None:  # nothing to confirm (not subscribed, or a cluster)
                await asyncio.sleep(HEARTBEAT_S)
                continue
            try:
                await self._kv.publish(keys.AUTH_BUS, _HEARTBEAT + self.process + b" %r" % sent)
                self._beat_failed = False
            except Exception as exc:
                if not self._beat_failed:
                    log.warning("session bus heartbeat failed: %s", exc)
                self._beat_failed = True
                if self._beat is None:
                    return
            await asyncio.sleep(HEARTBEAT_S)
