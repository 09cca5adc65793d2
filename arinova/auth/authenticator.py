"""The session check every authenticated route and the socket upgrade go through."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from blacksheep import Request

from arinova.auth.clock import now_ms, refresh_due
from arinova.auth.cookies import CookieNames, parse_cookie_header, unsign
from arinova.auth.oauth import OAuthClient
from arinova.auth.origins import TrustedOrigins
from arinova.auth.passwords import PasswordHasher
from arinova.auth.records import SessionWithUser
from arinova.auth.sessions import SessionStore
from arinova.db.pool import Database
from arinova.errors import ApiError
from arinova.kv import KV
from arinova.logs import user_id_var
from arinova.ratelimit.auth import AuthRateLimiter
from arinova.settings import Settings


@dataclass(frozen=True, slots=True)
class CurrentUser:
    id: str
    email: str
    name: str


class Found(enum.Enum):
    #: no session cookie, or one whose signature does not verify
    NO_COOKIE = "no_cookie"
    #: a signed token whose row is missing or expired (the expired row is deleted)
    GONE = "gone"
    VALID = "valid"
    #: valid, and its expiry was just pushed to now + 30 days
    REFRESHED = "refreshed"


@dataclass(frozen=True, slots=True)
class Lookup:
    found: Found
    entry: SessionWithUser | None = None


def request_cookie_header(request: Request) -> str | None:
    values = request.get_headers(b"cookie")
    if not values:
        return None
    return "; ".join(v.decode("latin-1") for v in values)


class Authenticator:
    """Held as ``state.auth``: sessions, cookies and password hashing of one process."""

    def __init__(self, settings: Settings, db: Database, kv: KV, log: logging.Logger) -> None:
        self.settings = settings
        self.log = log
        self.db = db
        self.cookies = CookieNames(settings.https)
        self.sessions = SessionStore(
            db,
            kv,
            cache_ttl_s=settings.session_cache_ttl_s,
            local_size=settings.session_local_cache_size,
        )
        self.passwords = PasswordHasher(
            settings.password_hash_threads or None, settings.password_hash
        )
        self.origins = TrustedOrigins(settings)
        self.oauth = OAuthClient(settings)
        self.limiter = AuthRateLimiter(kv)

    async def start(self) -> None:
        await self.sessions.start()

    async def close(self) -> None:
        await self.sessions.close()
        self.passwords.close()
        await self.oauth.aclose()

    def session_token(self, cookies: dict[str, str]) -> str | None:
        raw = cookies.get(self.cookies.session_token)
        return unsign(raw, self.settings.better_auth_secret) if raw else None

    def dont_remember(self, cookies: dict[str, str]) -> bool:
        raw = cookies.get(self.cookies.dont_remember)
        return bool(raw and unsign(raw, self.settings.better_auth_secret))

    async def lookup(self, cookies: dict[str, str], *, refresh: bool = True) -> Lookup:
        """Better Auth's getSession: verify the cookie, load the row, drop it when expired,
        and refresh it when its last refresh is a day old (unless ``dont_remember``)."""
        token = self.session_token(cookies)
        if token is None:
            return Lookup(Found.NO_COOKIE)
        entry = await self.sessions.find(token)
        if entry is None:
            return Lookup(Found.GONE)
        now = now_ms()
        if entry.session.expires_at < now:
            await self.sessions.delete_expired(token)
            return Lookup(Found.GONE)
        if (
            refresh
            and refresh_due(entry.session.expires_at, now)
            and not self.dont_remember(cookies)
        ):
            updated = await self.sessions.refresh(entry)
            if updated is None:
                return Lookup(Found.GONE)
            return Lookup(Found.REFRESHED, updated)
        return Lookup(Found.VALID, entry)

    async def user_from_cookie_header(self, cookie_header: str | None) -> CurrentUser | None:
        """The signed-in user for a ``Cookie`` header, or None (used by the socket upgrade)."""
        if not cookie_header:
            return None
        result = await self.lookup(parse_cookie_header(cookie_header))
        if result.entry is None:
            return None
        user = result.entry.user
        return CurrentUser(user.id, user.email, user.name)

    async def require_user(self, request: Request) -> CurrentUser:
        """The signed-in user of a REST request, else 401 ``{"error":"Unauthorized"}``."""
        user = await self.user_from_cookie_header(request_cookie_header(request))
        if user is None:
            raise ApiError.unauthorized()
        user_id_var.set(user.id)
        return user
