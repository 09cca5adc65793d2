"""Session rows with a short shared cache in the key-value store (contract rest.md §1.3).

Lookups read ``auth:sess:<digest>`` (Redis when configured, so every worker shares it)
and fall back to one database query. Revocation must win over a lookup racing with it:

* a writer (sign-out, password change, profile update) first sets the marker
  ``auth:inval:<digest>`` and then deletes the cached entry;
* a reader that missed the cache first stores what it read and then checks the marker,
  deleting its entry when the marker is there.

Whatever the interleaving, no stale entry survives both steps, so a revoked session is
rejected by every worker as soon as the writer has answered. Keys use a digest of the
token, never the token itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from arinova.auth.clock import SESSION_LIFETIME, SHORT_SESSION_LIFETIME, now_ms
from arinova.auth.ids import new_id
from arinova.auth.records import SessionRecord, SessionWithUser, UserRecord
from arinova.db.queries import auth as q
from arinova.kv import KV, keys

log = logging.getLogger("arinova.auth")

CACHE_TTL_S = 30
#: longer than any lookup can take between its database read and its cache write
MARKER_TTL_S = 60
#: a lookup slower than this does not cache what it read
MAX_CACHE_FILL_S = 10.0


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:40]


def _cache_key(token: str) -> str:
    return keys.session_cache(_digest(token))


def _marker_key(token: str) -> str:
    return keys.session_revoked(_digest(token))


def _encode(entry: SessionWithUser) -> bytes:
    s, u = entry.session, entry.user
    return orjson.dumps(
        [
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


def _decode(raw: bytes) -> SessionWithUser | None:
    try:
        v: list[Any] = orjson.loads(raw)
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
    return SessionWithUser(session, user)


class SessionStore:
    def __init__(self, db: asyncpg.Pool, kv: KV) -> None:
        self.db = db
        self.kv = kv

    async def find(self, token: str) -> SessionWithUser | None:
        """The session and its user, whether expired or not (callers decide)."""
        try:
            raw = await self.kv.get(_cache_key(token))
        except Exception:
            log.warning("session cache unavailable; reading the database", exc_info=True)
            raw = None
        if raw is not None:
            cached = _decode(raw)
            if cached is not None and cached.session.token == token:
                return cached
        started = time.monotonic()
        row = await self.db.fetchrow(q.SESSION_WITH_USER.sql, token)
        if row is None:
            return None
        entry = SessionWithUser(SessionRecord.from_row(row), UserRecord.from_row(row, "user_"))
        if time.monotonic() - started < MAX_CACHE_FILL_S:
            await self._fill(token, entry)
        return entry

    async def _fill(self, token: str, entry: SessionWithUser) -> None:
        key = _cache_key(token)
        try:
            await self.kv.set(key, _encode(entry), ex=CACHE_TTL_S)
            if await self.kv.get(_marker_key(token)) is not None:
                await self.kv.delete(key)
        except Exception:
            log.warning("session cache unavailable; entry not cached", exc_info=True)
            with contextlib.suppress(Exception):
                await self.kv.delete(key)

    async def invalidate(self, tokens: list[str]) -> None:
        """Forget cached copies of these sessions on every worker (marker first).

        With the store unreachable this cannot reach other workers' view of the cache,
        but neither can they read it; entries that survive an outage expire within
        ``CACHE_TTL_S``."""
        if not tokens:
            return
        try:
            for token in tokens:
                await self.kv.set(_marker_key(token), b"1", ex=MARKER_TTL_S)
            await self.kv.delete(*[_cache_key(t) for t in tokens])
        except Exception:
            log.error("session cache unavailable: could not invalidate", exc_info=True)

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
        found = await self.db.fetchval(q.SESSION_REFRESH.sql, entry.session.token, expires, now)
        if found is None:
            await self.invalidate([entry.session.token])
            return None
        s = entry.session
        updated = SessionWithUser(
            SessionRecord(
                s.id, s.token, s.user_id, expires, s.ip_address, s.user_agent, s.created_at, now
            ),
            entry.user,
        )
        await self._fill(s.token, updated)
        return updated

    async def delete(self, token: str) -> None:
        await self.db.execute(q.SESSION_DELETE.sql, token)
        await self.invalidate([token])

    async def delete_all_for_user(self, user_id: str) -> None:
        rows = await self.db.fetch(q.SESSIONS_DELETE_FOR_USER.sql, user_id)
        await self.invalidate([r["token"] for r in rows])

    async def invalidate_user(self, user_id: str) -> None:
        """The user's profile changed: drop the cached copies of all their sessions."""
        rows = await self.db.fetch(q.SESSION_TOKENS_FOR_USER.sql, user_id)
        await self.invalidate([r["token"] for r in rows])
