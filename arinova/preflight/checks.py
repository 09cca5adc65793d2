"""Each check reaches one thing the settings name and says, in one line, whether the server
can use it and, if not, what to change."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg
import redis.asyncio as redis

from arinova.db.embedded import EMBEDDED
from arinova.db.migrate import MigrationError, pending_migrations
from arinova.db.queries.health import SERVER_VERSION
from arinova.push.webpush import VapidKeyError, VapidSigner
from arinova.settings import Settings, SettingsError
from arinova.storage import StorageError, open_storage

#: how long one service may take to answer
TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"
        return f"{text} (fix: {self.fix})" if self.fix and not self.ok else text


def _where(url: str) -> str:
    """``host:port/path`` of a URL, without its credentials."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path}"


def check_settings(settings: Settings) -> list[Outcome]:
    found = []
    try:
        settings.validate()
        found.append(Outcome("settings", True, "valid"))
    except SettingsError as exc:
        found.append(Outcome("settings", False, str(exc), "change the setting it names"))
    url = urlsplit(settings.better_auth_url)
    if url.scheme not in ("http", "https") or not url.netloc:
        found.append(
            Outcome(
                "BETTER_AUTH_URL",
                False,
                f"{settings.better_auth_url!r} is not an http(s) URL",
                "set the server's public base URL, e.g. https://chat.example.com",
            )
        )
    if not settings.secret_explicit and not settings.production:
        found.append(Outcome("BETTER_AUTH_SECRET", True, "the public default (development only)"))
    return found


async def check_postgres(settings: Settings) -> Outcome:
    name = "PostgreSQL"
    if settings.database_url == EMBEDDED:
        return Outcome(name, True, f"embedded, in {settings.data_dir} (started by serve)")
    where = _where(settings.database_url)
    fix = "start PostgreSQL or correct DATABASE_URL"
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=TIMEOUT_S)
    except asyncpg.InvalidCatalogNameError:
        return Outcome(name, True, f"{where}: reachable; the database is created at start")
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        return Outcome(name, False, f"{where}: refused: {exc}", "correct the user in DATABASE_URL")
    except asyncpg.InvalidPasswordError as exc:
        return Outcome(name, False, f"{where}: {exc}", "correct the password in DATABASE_URL")
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return Outcome(name, False, f"cannot connect to {where}: {exc or type(exc).__name__}", fix)
    try:
        version = await conn.fetchval(SERVER_VERSION.sql, timeout=TIMEOUT_S)
        migrations = await pending_migrations(conn)
    except MigrationError as exc:
        return Outcome(name, False, f"{where}: {exc}", "see the message; serve refuses it too")
    finally:
        await conn.close()
    return Outcome(
        name, True, f"{where}: reachable (PostgreSQL {version}); migrations: {migrations}"
    )


async def check_redis(settings: Settings) -> Outcome:
    name = "Redis"
    if not settings.redis_url:
        return Outcome(name, True, "not configured (one process, in-memory state)")
    where = _where(settings.redis_url)
    client: redis.Redis | redis.RedisCluster
    try:
        if settings.redis_cluster:
            client = redis.RedisCluster.from_url(
                settings.redis_url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S
            )
        else:
            client = redis.Redis.from_url(
                settings.redis_url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S
            )
    except ValueError as exc:
        return Outcome(name, False, f"REDIS_URL is malformed: {exc}", "correct REDIS_URL")
    try:
        await asyncio.wait_for(client.ping(), TIMEOUT_S * 2)
    except (redis.RedisError, OSError, TimeoutError) as exc:
        return Outcome(
            name,
            False,
            f"cannot reach {where}: {exc or type(exc).__name__}",
            "start Redis or correct REDIS_URL (or unset it for a single process)",
        )
    finally:
        await client.aclose()
    kind = "cluster" if settings.redis_cluster else "server"
    return Outcome(name, True, f"{where}: {kind} answers PING")


async def check_storage(settings: Settings) -> Outcome:
    name = "storage"
    r2 = {
        "R2_ENDPOINT": settings.r2_endpoint,
        "R2_ACCESS_KEY_ID": settings.r2_access_key_id,
        "R2_SECRET_ACCESS_KEY": settings.r2_secret_access_key,
    }
    missing = [key for key, value in r2.items() if not value]
    if 0 < len(missing) < len(r2):
        return Outcome(
            name,
            False,
            f"{', '.join(missing)} unset while the other R2 settings are set: uploads would go "
            f"to UPLOAD_DIR",
            "set all three R2 settings, or none",
        )
    fix = (
        "check R2_ENDPOINT, the R2 credentials and that R2_BUCKET exists"
        if settings.r2_enabled
        else "create UPLOAD_DIR and let the server's user write to it"
    )
    try:
        storage = await open_storage(settings)
    except Exception as exc:
        return Outcome(name, False, f"cannot open: {exc}", fix)
    try:
        detail = await asyncio.wait_for(storage.check(), TIMEOUT_S * 3)
    except (StorageError, TimeoutError) as exc:
        return Outcome(name, False, str(exc) or "no answer", fix)
    finally:
        await storage.close()
    kind = f"S3 at {_where(settings.r2_endpoint)}" if settings.r2_enabled else "local"
    return Outcome(name, True, f"{kind}: {detail}")


def check_oauth(settings: Settings) -> list[Outcome]:
    found = []
    providers = (
        ("Google", "GOOGLE", settings.google_client_id, settings.google_client_secret),
        ("GitHub", "GITHUB", settings.github_client_id, settings.github_client_secret),
    )
    for label, prefix, client_id, secret in providers:
        name = f"{label} sign-in"
        if client_id and secret:
            found.append(Outcome(name, True, "enabled"))
        elif client_id:
            found.append(
                Outcome(
                    name,
                    False,
                    f"{prefix}_CLIENT_ID is set without {prefix}_CLIENT_SECRET: every sign-in "
                    "would fail at the token exchange",
                    f"set {prefix}_CLIENT_SECRET, or unset {prefix}_CLIENT_ID",
                )
            )
        elif secret:
            found.append(
                Outcome(
                    name,
                    False,
                    f"{prefix}_CLIENT_SECRET is set without {prefix}_CLIENT_ID: the provider "
                    "stays disabled",
                    f"set {prefix}_CLIENT_ID, or unset {prefix}_CLIENT_SECRET",
                )
            )
        else:
            found.append(Outcome(name, True, "disabled"))
    return found


def check_vapid(settings: Settings) -> Outcome:
    name = "Web Push"
    public, private = settings.vapid_public_key, settings.vapid_private_key
    if not public and not private:
        return Outcome(name, True, "disabled (no VAPID keys)")
    if not public or not private:
        given, other = ("VAPID_PUBLIC_KEY", "VAPID_PRIVATE_KEY")[:: 1 if public else -1]
        return Outcome(
            name, False, f"{given} is set without {other}", f"set {other} (the pair's other half)"
        )
    fix = (
        "set the pair generated together: VAPID_PRIVATE_KEY the base64url P-256 private "
        "key, VAPID_PUBLIC_KEY its uncompressed public point"
    )
    try:
        VapidSigner(public, private, settings.vapid_subject)
    except VapidKeyError as exc:
        return Outcome(name, False, str(exc), fix)
    if not settings.vapid_subject.startswith(("mailto:", "https:")):
        return Outcome(
            name,
            False,
            f"VAPID_SUBJECT {settings.vapid_subject!r} is neither a mailto: nor an https: URL",
            "set VAPID_SUBJECT to mailto:<operator address>",
        )
    return Outcome(name, True, "VAPID key pair valid")


async def run_checks(settings: Settings, report: Callable[[Outcome], None]) -> bool:
    """Run every check, ``report`` each outcome as it is known; True when all passed."""
    ok = True

    def tell(outcome: Outcome) -> None:
        nonlocal ok
        ok = ok and outcome.ok
        report(outcome)

    for outcome in check_settings(settings):
        tell(outcome)
    services: tuple[Callable[[Settings], Awaitable[Outcome]], ...] = (
        check_postgres,
        check_redis,
        check_storage,
    )
    for outcome in await asyncio.gather(*(check(settings) for check in services)):
        tell(outcome)
    for outcome in check_oauth(settings):
        tell(outcome)
    tell(check_vapid(settings))
    return ok
