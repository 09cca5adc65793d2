"""Server settings: every environment variable of the original server, plus ours.

Settings are read once (``Settings.from_env``) and handed explicitly to the app factory;
nothing else in the package reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SECRET = "arinova-dev-secret-change-in-production"
DEFAULT_DATABASE_URL = "postgresql://127.0.0.1:5432/arinova"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message says which and why."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be a boolean (true/false), got {raw!r}")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (the first when unset)."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return choices[0]
    if raw not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _proxy_trust(env: Mapping[str, str]) -> bool | int:
    """``TRUST_PROXY`` as Express and Fastify read ``trust proxy``: ``true`` trusts every
    hop, a number N trusts N hops, ``false`` or ``0`` none."""
    raw = env.get("TRUST_PROXY", "").strip().lower()
    if raw in ("", "false", "no", "off", "0"):
        return False
    if raw in ("true", "yes", "on"):
        return True
    if raw.isdigit():
        return int(raw)
    raise SettingsError(f"TRUST_PROXY must be true, false or a number of proxy hops, got {raw!r}")


def _database_url(env: Mapping[str, str]) -> str:
    """``DATABASE_URL``; unset means the embedded PostgreSQL when ``pgserver`` is installed,
    else the conventional local server."""
    raw = env.get("DATABASE_URL", "").strip()
    if raw:
        return raw
    from arinova.db import embedded

    return embedded.EMBEDDED if embedded.available() else DEFAULT_DATABASE_URL


def _port(env: Mapping[str, str], name: str) -> int | None:
    """A TCP port, or None when unset."""
    if not env.get(name, "").strip():
        return None
    port = _int(env, name, 0)
    if port > 65535:
        raise SettingsError(f"{name} must be between 0 and 65535, got {port}")
    return port


def _list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class RealtimeSettings:
    """Timers and bounds of the realtime layer (websocket.md §1.2, §2.2, §2.4, §7, §8)."""

    #: a ``/ws`` socket that sends nothing this long is closed 4408
    heartbeat_timeout_s: float = 45.0
    #: an agent socket must authenticate within this time, else 4408
    agent_auth_timeout_s: float = 10.0
    #: a task without a forwarded delta this long fails
    task_idle_timeout_s: float = 600.0
    #: period of the one shared sweep that runs every timer above
    sweep_interval_s: float = 1.0
    #: ``stream:<messageId>`` TTL, refreshed while the reply streams
    stream_ttl_s: int = 600
    #: at most one ``stream:<messageId>`` write per reply this often (the latest text)
    stream_cache_interval_s: float = 0.1
    #: offline queue: events kept per user, and how long
    offline_cap: int = 1000
    offline_ttl_s: int = 86_400
    #: frames of one ``/ws`` socket waiting for the previous one to finish; a
    #: ``send_message`` past it is refused as rate-limited, other frames are dropped
    max_pending_frames: int = 64
    #: replies waiting behind the active one in one conversation; a message past it is
    #: stored and answered with an error reply
    max_queued_replies: int = 100
    #: PostgreSQL unreachable when a reply ends: its end is retried this long, then the
    #: reply ends in error; at most this many replies wait so (a later one fails at once)
    reply_store_window_s: float = 30.0
    max_replies_awaiting_store: int = 1000
    #: missed messages per conversation in a ``sync_response``
    sync_missed_cap: int = 100
    #: a client frame longer than this (UTF-16 code units) gets "Message too large" ...
    max_client_message_chars: int = 32_768
    #: ... unless it is a ``sync``, which may be this long: 10 000 conversations of
    #: ``"<uuid>":<seq>`` (~50 units each) with room to spare
    max_sync_message_chars: int = 640 * 1024
    #: characters of the frames waiting in one socket's inbox; a frame past it is treated
    #: like one past ``max_pending_frames``
    max_pending_chars: int = 2 * 640 * 1024
    #: bound of the in-memory rate-limit fallback (users)
    max_fallback_rate_entries: int = 10_000
    #: with Redis: how often a process refreshes its liveness entry, and how long the
    #: entry lives (a process silent this long is dead: its replies fail)
    process_beat_s: float = 1.0
    process_ttl_s: float = 5.0
    #: with Redis: what a process tells the others waits this long to go out with what
    #: follows (chunks of many streams in one publish, one read and one socket write on
    #: the receiving side instead of one per chunk)
    bus_batch_s: float = 0.002


@dataclass(frozen=True)
class Settings:
    # --- the original's variables (same names, same defaults) ---
    port: int = 3501
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = ""
    cors_origin: str = "http://localhost:3500"
    better_auth_secret: str = DEFAULT_SECRET
    better_auth_url: str = "http://localhost:3501"
    better_auth_trusted_origins: tuple[str, ...] = ()
    google_client_id: str = ""
    google_client_secret: str = ""
    github_client_id: str = ""
    github_client_secret: str = ""
    upload_dir: Path = field(default_factory=lambda: Path("uploads").resolve())
    max_file_size: int = 10_485_760
    r2_endpoint: str = ""
    r2_access_key_id: str = ""
    r2_secret_access_key: str = ""
    r2_bucket: str = "arinova-uploads"
    r2_public_url: str = ""
    admin_emails: tuple[str, ...] = ()
    vapid_public_key: str = ""
    vapid_private_key: str = ""
    vapid_subject: str = "mailto:admin@arinova.ai"
    sentry_dsn: str = ""
    node_env: str = ""

    # --- ours ---
    #: data directory of the embedded PostgreSQL (``DATABASE_URL=embedded``)
    data_dir: Path = field(default_factory=lambda: Path(".pgdata").resolve())
    host: str = "0.0.0.0"
    #: ``REDIS_URL`` names one node of a Redis Cluster (sharded pub/sub, keys routed by slot)
    redis_cluster: bool = False
    workers: int = 1
    #: ``X-Forwarded-For`` hops to trust (``ratelimit.http.client_ip``): False none,
    #: N the N right-most, True all
    trust_proxy: bool | int = False
    log_level: str = ""
    rate_limit_max: int = 300
    rate_limit_window_s: int = 60
    ws_message_rate_limit: int = 10
    #: uploads (chat files and avatars) one process reads at once, in all and per user
    max_concurrent_uploads: int = 64
    max_concurrent_uploads_per_user: int = 6
    #: where uploads stream to while they arrive (best on the file system of UPLOAD_DIR)
    upload_spool_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    #: how long a graceful shutdown waits for in-flight requests
    shutdown_timeout_s: float = 10.0
    #: allow outbound probes (A2A cards, status) to private/loopback addresses
    allow_private_outbound: bool = False
    #: OAuth provider endpoints (overridable so tests can run a loopback provider)
    google_auth_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"
    google_userinfo_url: str = "https://openidconnect.googleapis.com/v1/userinfo"
    github_auth_url: str = "https://github.com/login/oauth/authorize"
    github_token_url: str = "https://github.com/login/oauth/access_token"
    github_api_url: str = "https://api.github.com"
    #: Google's signing keys, used to verify id tokens
    google_jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    #: threads hashing passwords per process (0: one per CPU but one, at least one)
    password_hash_threads: int = 0
    #: the format new password hashes are written in: ``argon2id``, or ``legacy`` (the
    #: original's scrypt, so that the original can take over again: docs/switch-over.md)
    password_hash: str = "argon2id"
    #: how long a session lookup cached in Redis is trusted; also how long a sign-out or
    #: revocation waits at most while Redis does not answer (arinova/auth/sessions.py)
    session_cache_ttl_s: float = 10.0
    #: session lookups each process keeps in front of that cache (oldest dropped first)
    session_local_cache_size: int = 10_000
    #: count statements sent to PostgreSQL (tests bound the queries per request with it)
    count_queries: bool = False
    #: whether BETTER_AUTH_SECRET was given explicitly (Q53)
    secret_explicit: bool = False
    app_env: str = ""
    #: Prometheus metrics on their own port (``arinova.metrics``); None: not served
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    #: set by the supervisor for its workers (never from the environment): the directory
    #: where each worker writes its metrics for the supervisor to sum and serve
    metrics_dir: Path | None = None
    #: timers and bounds of the sockets (tests shorten them)
    realtime: RealtimeSettings = field(default_factory=RealtimeSettings)

    @property
    def production(self) -> bool:
        return self.node_env == "production" or self.app_env == "production"

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return _list(self.cors_origin)

    @property
    def cors_any(self) -> bool:
        return "*" in self.cors_origins

    @property
    def https(self) -> bool:
        return self.better_auth_url.startswith("https://")

    @property
    def r2_enabled(self) -> bool:
        return bool(self.r2_endpoint and self.r2_access_key_id and self.r2_secret_access_key)

    @property
    def push_enabled(self) -> bool:
        return bool(self.vapid_public_key and self.vapid_private_key)

    @property
    def effective_log_level(self) -> str:
        if self.log_level:
            return self.log_level.upper()
        return "INFO" if self.production else "DEBUG"

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def validate(self) -> None:
        """Refuse configurations that must not start (decisions.md Q53)."""
        if self.production and not self.secret_explicit:
            raise SettingsError(
                "BETTER_AUTH_SECRET must be set explicitly when NODE_ENV/APP_ENV is "
                "'production': the default secret is public and would let anyone forge "
                "session cookies. Set BETTER_AUTH_SECRET to a long random value."
            )
        if self.workers < 1:
            raise SettingsError("WORKERS must be at least 1")
        if self.metrics_port is not None and self.metrics_port == self.port != 0:
            raise SettingsError(f"METRICS_PORT must differ from PORT ({self.port})")
        if self.workers > 1 and not self.redis_url:
            raise SettingsError(
                "WORKERS > 1 needs REDIS_URL: worker processes share realtime state "
                "(sockets, streams, rate limits) through Redis"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        secret = e.get("BETTER_AUTH_SECRET", "")
        return cls(
            port=_int(e, "PORT", 3501),
            database_url=_database_url(e),
            data_dir=Path(e.get("ARINOVA_DATA_DIR", "").strip() or "./.pgdata").resolve(),
            redis_url=e.get("REDIS_URL", "").strip(),
            redis_cluster=_bool(e, "REDIS_CLUSTER", False),
            cors_origin=e.get("CORS_ORIGIN", "http://localhost:3500"),
            better_auth_secret=secret or DEFAULT_SECRET,
            secret_explicit=bool(secret),
            better_auth_url=e.get("BETTER_AUTH_URL", "").strip() or "http://localhost:3501",
            better_auth_trusted_origins=_list(e.get("BETTER_AUTH_TRUSTED_ORIGINS", "")),
            google_client_id=e.get("GOOGLE_CLIENT_ID", ""),
            google_client_secret=e.get("GOOGLE_CLIENT_SECRET", ""),
            github_client_id=e.get("GITHUB_CLIENT_ID", ""),
            github_client_secret=e.get("GITHUB_CLIENT_SECRET", ""),
            upload_dir=Path(e.get("UPLOAD_DIR", "").strip() or "./uploads").resolve(),
            max_file_size=_int(e, "MAX_FILE_SIZE", 10_485_760, minimum=1),
            r2_endpoint=e.get("R2_ENDPOINT", ""),
            r2_access_key_id=e.get("R2_ACCESS_KEY_ID", ""),
            r2_secret_access_key=e.get("R2_SECRET_ACCESS_KEY", ""),
            r2_bucket=e.get("R2_BUCKET", "").strip() or "arinova-uploads",
            r2_public_url=e.get("R2_PUBLIC_URL", ""),
            admin_emails=_list(e.get("ADMIN_EMAILS", "")),
            vapid_public_key=e.get("VAPID_PUBLIC_KEY", ""),
            vapid_private_key=e.get("VAPID_PRIVATE_KEY", ""),
            vapid_subject=e.get("VAPID_SUBJECT", "").strip() or "mailto:admin@arinova.ai",
            sentry_dsn=e.get("SENTRY_DSN", ""),
            node_env=e.get("NODE_ENV", "").strip(),
            app_env=e.get("APP_ENV", "").strip(),
            host=e.get("HOST", "").strip() or "0.0.0.0",
            workers=_int(e, "WORKERS", 1, minimum=1),
            metrics_port=_port(e, "METRICS_PORT"),
            metrics_host=e.get("METRICS_HOST", "").strip() or "127.0.0.1",
            trust_proxy=_proxy_trust(e),
            log_level=e.get("LOG_LEVEL", "").strip(),
            rate_limit_max=_int(e, "RATE_LIMIT_MAX", 300, minimum=1),
            session_local_cache_size=_int(e, "SESSION_LOCAL_CACHE_SIZE", 10_000, minimum=1),
            ws_message_rate_limit=_int(e, "WS_MESSAGE_RATE_LIMIT", 10, minimum=1),
            max_concurrent_uploads=_int(e, "MAX_CONCURRENT_UPLOADS", 64, minimum=1),
            upload_spool_dir=Path(
                e.get("UPLOAD_SPOOL_DIR", "").strip() or tempfile.gettempdir()
            ).resolve(),
            max_concurrent_uploads_per_user=_int(
                e, "MAX_CONCURRENT_UPLOADS_PER_USER", 6, minimum=1
            ),
            shutdown_timeout_s=float(_int(e, "SHUTDOWN_TIMEOUT", 10, minimum=0)),
            allow_private_outbound=_bool(e, "ALLOW_PRIVATE_OUTBOUND", False),
            google_auth_url=e.get("GOOGLE_AUTH_URL", "").strip() or cls.google_auth_url,
            google_token_url=e.get("GOOGLE_TOKEN_URL", "").strip() or cls.google_token_url,
            google_userinfo_url=e.get("GOOGLE_USERINFO_URL", "").strip() or cls.google_userinfo_url,
            github_auth_url=e.get("GITHUB_AUTH_URL", "").strip() or cls.github_auth_url,
            github_token_url=e.get("GITHUB_TOKEN_URL", "").strip() or cls.github_token_url,
            github_api_url=e.get("GITHUB_API_URL", "").strip() or cls.github_api_url,
            google_jwks_url=e.get("GOOGLE_JWKS_URL", "").strip() or cls.google_jwks_url,
            password_hash_threads=_int(e, "PASSWORD_HASH_THREADS", 0),
            password_hash=_choice(e, "PASSWORD_HASH", ("argon2id", "legacy")),
        )
