"""Session rows with a short shared cache in the key-value store (contract rest.md §1.3).

Lookups read ``auth:sess:{<digest>}`` (Redis when configured, so every worker shares it)
and fall back to one database query. The database row is the truth; a cached copy is
trusted only while no revocation marker ``auth:inval:{<digest>}`` stands next to it and
until the deadline it carries (its database read + ``cache_ttl_s``), however late Redis
applied the write that stored it.

* A writer (sign-out, password change, revocation, profile update) changes the row, then
  sets the marker and deletes the cached entry. It answers only once that was delivered,
  or, when Redis cannot be reached, once every copy read before its change is past its
  deadline: either way no worker trusts the old copy after the answer (a sign-out still
  answers 200 ``{"success":true}``, rest.md §3.2.5, only later).
* A reader reads the entry and the marker together and ignores the entry when the marker
  is there (a write held back by a stall may land after the revocation); one that missed
  the cache stores what it read and then checks the marker, deleting its entry when the
  marker is there.

In front of the shared cache each process keeps copies of its own (``local_cache.py``):
a warm session is found without Redis. A writer drops them everywhere too, failing
closed in the same way.

Keys use a digest of the token, never the token itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from datetime import datetime

import orjson

from arinova.auth.clock import SESSION_LIFETIME, SHORT_SESSION_LIFETIME, now_ms
from arinova.auth.ids import new_id
from arinova.auth.local_cache import LocalSessions
from arinova.auth.records import SessionRecord, SessionWithUser, UserRecord
from arinova.db.pool import Database
from arinova.db.queries import auth as q
from arinova.kv import KV, keys

log = logging.getLogger("arinova.auth")

#: how long a cached copy is trusted after its database read (``Settings``' default)
CACHE_TTL_S = 10.0
#: how long a revocation marker stands: longer than any copy may be trusted
MARKER_TTL_S = 60
#: added to a revocation's wait for copies to expire: the workers' clocks may differ
CLOCK_MARGIN_S = 1.0
#: pause between two attempts to deliver a revocation while Redis does not answer
RETRY_S = 0.25
#: session lookups each process keeps (``Settings``' default)
LOCAL_CACHE_SIZE = 10_000


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:40]


def _cache_key(token: str) -> str:
    return keys.session_cache(_digest(token))


def _marker_key(token: str) -> str:
    return keys.session_revoked(_digest(token))


def _encode(entry: SessionWithUser, trusted_until: float) -> bytes:
    s, u = entry.session, entry.user
    return orjson.dumps(
        [
            trusted_until,
            s.id,
            s.token,
            s.user_id,
            s.expires_at.isoformat(),
            s.ip_address,
            s.user_agent,
            s.created_at.isoformat(),
            s.updated_at.isoformat(),
            u.id,
            u.name,
            u.email,
            u.email_verified,
            u.image,
            u.created_at.isoformat(),
            u.updated_at.isoformat(),
        ]
    )


def _decode(raw: bytes, now: float) -> tuple[float, SessionWithUser] | None:
    """The cached copy and its deadline, or None when it is unreadable or past it."""
    try:
        trusted_until, *v = orjson.loads(raw)
        if not isinstance(trusted_until, float | int) or trusted_until <= now:
            return None
        session = SessionRecord(
            v[0],
            v[1],
            v[2],
            datetime.fromisoformat(v[3]),
            v[4],
            v[5],
            datetime.fromisoformat(v[6]),
            datetime.fromisoformat(v[7]),
        )
        user = UserRecord(
            v[8],
            v[9],
            v[10],
            v[11],
            v[12],
            datetime.fromisoformat(v[13]),
            datetime.fromisoformat(v[14]),
        )
    except (ValueError, TypeError, IndexError, orjson.JSONDecodeError):
        return None
    return float(trusted_until), SessionWithUser(session, user)


class SessionStore:
    def __init__(
        self,
        db: Database,
        kv: KV,
        *,
        cache_ttl_s: float = CACHE_TTL_S,
        local_size: int = LOCAL_CACHE_SIZE,
    ) -> None:
        self.db = db
        self.kv = kv
        self.cache_ttl_s = cache_ttl_s
        self.local = LocalSessions(kv, size=local_size)

    async def start(self) -> None:
        await self.local.start()

    async def close(self) -> None:
        await self.local.close()

    async def find(self, token: str) -> SessionWithUser | None:
        """The session and its user, whether expired or not (callers decide)."""
        digest = _digest(token)
        generation = self.local.generation
        local = self.local.get(digest, time.time())
        if local is not None and local.session.token == token:
            return local
        try:
            raw, revoked = await self.kv.mget([_cache_key(token), _marker_key(token)])
        except Exception:
            log.warning("session cache unavailable; reading the database", exc_info=True)
            raw = revoked = None
        if raw is not None and revoked is None:
            cached = _decode(raw, time.time())
            if cached is not None and cached[1].session.token == token:
                self.local.put(digest, cached[1], cached[0], generation)
                return cached[1]
        read_at = time.time()
        row = await self.db.fetchrow(q.SESSION_WITH_USER.sql, token)
        if row is None:
            return None
        entry = SessionWithUser(SessionRecord.from_row(row), UserRecord.from_row(row, "user_"))
        await self._fill(token, entry, read_at, generation)
        return entry

    async def _fill(
        self, token: str, entry: SessionWithUser, read_at: float, generation: int
    ) -> None:
        """Cache ``entry``, read from the database at ``read_at`` (wall clock) by a lookup
        that began at the local copies' ``generation``."""
        trusted_until = read_at + self.cache_ttl_s
        remaining = trusted_until - time.time()
        if remaining <= 0:
            return
        key = _cache_key(token)
        try:
            await self.kv.set(key, _encode(entry, trusted_until), ex=math.ceil(remaining))
            if await self.kv.get(_marker_key(token)) is not None:
                await self.kv.delete(key)
                return
        except Exception:
            log.warning("session cache unavailable; entry not cached", exc_info=True)
            with contextlib.suppress(Exception):
                await self.kv.delete(key)
            return
        self.local.put(_digest(token), entry, trusted_until, generation)

    async def _mark(self, tokens: list[str]) -> None:
        for token in tokens:
            await self.kv.set(_marker_key(token), b"1", ex=MARKER_TTL_S)
        await self.kv.delete(*[_cache_key(t) for t in tokens])

    async def _deliver(self, tokens: list[str]) -> None:
        await self._mark(tokens)
        await self.local.revoke([_digest(t) for t in tokens])

    async def invalidate(self, tokens: list[str]) -> None:
        """Make every worker stop trusting its cached copies of these sessions, whose rows
        have just changed or gone; returns once that holds.

        While Redis does not answer, delivery is retried until the copies that may have
        been read before the change are past their deadline (``cache_ttl_s`` and a margin
        for the clocks): a revocation answers late rather than leave them trusted."""
        if not tokens:
            return
        self.local.drop([_digest(t) for t in tokens])
        give_up = time.monotonic() + self.cache_ttl_s + CLOCK_MARGIN_S
        failures = 0
        while True:
            try:
                async with asyncio.timeout(max(0.0, give_up - time.monotonic())):
                    await self._deliver(tokens)
                if failures:
                    log.warning("session cache invalidated after %d failed attempts", failures)
                return
            except Exception:
                failures += 1
                if time.monotonic() >= give_up:
                    log.warning(
                        "session cache unavailable: invalidation not delivered, every "
                        "cached copy has expired meanwhile",
                        exc_info=True,
                    )
                    return
                if failures == 1:
                    log.warning(
                        "session cache unavailable: retrying the invalidation", exc_info=True
                    )
                await asyncio.sleep(RETRY_S)

    async def _forget(self, tokens: list[str]) -> None:
        """Drop cached copies that nobody may trust anyway (one attempt)."""
        self.local.drop([_digest(t) for t in tokens])
        try:
            await self._mark(tokens)
        except Exception:
            log.warning("session cache unavailable; stale entry left to expire", exc_info=True)

    async def create(
        self, user_id: str, ip_address: str, user_agent: str, *, remember: bool = True
    ) -> SessionRecord:
        now = now_ms()
        expires = now + (SESSION_LIFETIME if remember else SHORT_SESSION_LIFETIME)
        record = SessionRecord(
            new_id(), new_id(), user_id, expires, ip_address, user_agent, now, now
        )
        await self.db.execute(
            q.SESSION_INSERT.sql,
            record.id,
            user_id,
            record.token,
            expires,
            ip_address,
            user_agent,
            now,
        )
        return record

    async def refresh(self, entry: SessionWithUser) -> SessionWithUser | None:
        """Extend the session to now + 30 days; None when the row has gone meanwhile."""
        now = now_ms()
        expires = now + SESSION_LIFETIME
        self.local.drop([_digest(entry.session.token)])
        generation = self.local.generation
        read_at = time.time()
        found = await self.db.fetchval(q.SESSION_REFRESH.sql, entry.session.token, expires, now)
        if found is None:
            # whoever deleted the row has invalidated its copies
            await self._forget([entry.session.token])
            return None
        s = entry.session
        updated = SessionWithUser(
            SessionRecord(
                s.id, s.token, s.user_id, expires, s.ip_address, s.user_agent, s.created_at, now
            ),
            entry.user,
        )
        await self._fill(s.token, updated, read_at, generation)
        return updated

    async def delete(self, token: str) -> None:
        """Sign-out: the row goes, then every worker's cached copy (``invalidate``)."""
        await self.db.execute(q.SESSION_DELETE.sql, token)
        await self.invalidate([token])

    async def delete_expired(self, token: str) -> None:
        """An expired session found by a lookup: its cached copies carry the expiry and
        are refused anyway, so the request does not wait for Redis."""
        await self.db.execute(q.SESSION_DELETE.sql, token)
        await self._forget([token])

    async def delete_all_for_user(self, user_id: str) -> None:
        rows = await self.db.fetch(q.SESSIONS_DELETE_FOR_USER.sql, user_id)
        await self.invalidate([r["token"] for r in rows])

    async def invalidate_user(self, user_id: str) -> None:
        """The user's profile changed: drop the cached copies of all their sessions."""
        rows = await self.db.fetch(q.SESSION_TOKENS_FOR_USER.sql, user_id)
        await self.invalidate([r["token"] for r in rows])
