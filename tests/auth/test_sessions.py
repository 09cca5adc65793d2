"""Sessions beyond one request: the original's users and cookies (legacy fixture),
revocation seen by every worker, the cache protocol, and Better Auth's limiter."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from arinova.auth.passwords import legacy_scrypt_hash
from arinova.auth.sessions import _cache_key
from arinova.server import Server
from arinova.settings import Settings
from tests.support.auth import TRUSTED_ORIGIN, sign_in, sign_up
from tests.support.servers import StartServer

FIXTURE = json.loads(Path("/work/shared/fixtures/legacy-auth.json").read_text())


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.fixture(scope="module")
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database, server_settings={"timezone": "UTC"})
    yield conn
    await conn.close()


@pytest.fixture(scope="module")
async def servers(start_module_server: StartServer) -> list[Server]:
    """Two workers sharing PostgreSQL and Redis, as ``--workers 2`` runs them."""
    return [await start_module_server() for _ in range(2)]


@pytest.fixture(scope="module")
async def legacy(db: asyncpg.Connection) -> dict[str, Any]:
    rows = FIXTURE["rows"]
    u, a, s = rows["user"], rows["account"], rows["session"]
    await db.execute(
        'INSERT INTO "user" (id, name, email, email_verified, image, created_at, updated_at)'
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        u["id"], u["name"], u["email"], u["email_verified"], u["image"],
        ts(u["created_at"]), ts(u["updated_at"]),
    )  # fmt: skip
    await db.execute(
        "INSERT INTO account (id, user_id, account_id, provider_id, access_token, refresh_token,"
        " access_token_expires_at, refresh_token_expires_at, scope, id_token, password,"
        " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        a["id"], a["user_id"], a["account_id"], a["provider_id"], a["access_token"],
        a["refresh_token"], a["access_token_expires_at"], a["refresh_token_expires_at"],
        a["scope"], a["id_token"], a["password"], ts(a["created_at"]), ts(a["updated_at"]),
    )  # fmt: skip
    # keep the fixture's session valid whenever the test runs, and not yet due for refresh
    expires = max(ts(s["expires_at"]), utcnow() + timedelta(days=29, hours=12))
    await db.execute(
        'INSERT INTO "session" (id, user_id, token, expires_at, ip_address, user_agent,'
        " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        s["id"], s["user_id"], s["token"], expires, s["ip_address"], s["user_agent"],
        ts(s["created_at"]), ts(s["updated_at"]),
    )  # fmt: skip
    return {"expires": expires}


def test_legacy_hash_format_is_reproduced() -> None:
    stored = FIXTURE["rows"]["account"]["password"]
    salt = stored.split(":")[0]
    assert legacy_scrypt_hash(FIXTURE["password"], salt) == stored
    assert legacy_scrypt_hash("wrong", salt) != stored


async def test_legacy_cookie_is_a_valid_session(
    servers: list[Server], legacy: dict[str, Any]
) -> None:
    assert servers[0].settings.better_auth_secret == FIXTURE["secret"]
    rows = FIXTURE["rows"]
    cookie = FIXTURE["cookie"]
    async with httpx.AsyncClient(base_url=servers[0].url) as client:
        r = await client.get("/api/auth/get-session", headers={"cookie": cookie})
        assert r.status_code == 200
        assert r.json() == {
            "session": {
                "id": rows["session"]["id"],
                "expiresAt": legacy["expires"].isoformat(timespec="milliseconds") + "Z",
                "token": rows["session"]["token"],
                "createdAt": "2026-11-25T18:34:45.701Z",
                "updatedAt": "2026-11-25T18:34:45.701Z",
                "ipAddress": "",
                "userAgent": "curl/7.88.1",
                "userId": rows["user"]["id"],
            },
            "user": {
                "id": rows["user"]["id"],
                "name": "Legacy User",
                "email": "legacy.user@example.com",
                "emailVerified": False,
                "image": None,
                "createdAt": "2026-11-25T18:34:45.641Z",
                "updatedAt": "2026-11-25T18:34:45.641Z",
            },
        }
        r = await client.get("/api/agents", headers={"cookie": cookie})
        assert (r.status_code, r.json()) == (200, [])
    user = await servers[1].state.auth.user_from_cookie_header(cookie)
    assert user is not None
    assert (user.id, user.email, user.name) == (
        rows["user"]["id"],
        "legacy.user@example.com",
        "Legacy User",
    )


async def test_legacy_password_signs_in_and_is_rehashed(
    servers: list[Server], legacy: dict[str, Any], db: asyncpg.Connection
) -> None:
    email, password = FIXTURE["rows"]["user"]["email"], FIXTURE["password"]
    account_id = FIXTURE["rows"]["account"]["id"]
    async with httpx.AsyncClient(base_url=servers[0].url) as client:
        r = await client.post(
            "/api/auth/sign-in/email", json={"email": email, "password": "wrong password"}
        )
        assert r.status_code == 401
    assert (
        await db.fetchval("SELECT password FROM account WHERE id = $1", account_id)
        == (FIXTURE["rows"]["account"]["password"])
    )
    signed = await sign_in(servers[0].url, email, password)
    assert signed.user["id"] == FIXTURE["rows"]["user"]["id"]
    stored = await db.fetchval("SELECT password FROM account WHERE id = $1", account_id)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    # the new hash verifies too, on the other worker
    await sign_in(servers[1].url, email, password)


async def test_revocation_is_seen_by_every_worker(servers: list[Server]) -> None:
    a, b = servers
    user = await sign_up(a.url)
    async with httpx.AsyncClient() as client:
        # both workers have looked the session up (and cached it)
        for srv in (a, b, b):
            r = await client.get(f"{srv.url}/api/auth/get-session", headers={"cookie": user.cookie})
            assert r.json()["user"]["id"] == user.id
        r = await client.post(f"{a.url}/api/auth/sign-out", json={}, headers=user.headers)
        assert r.status_code == 200
        r = await client.get(f"{b.url}/api/auth/get-session", headers={"cookie": user.cookie})
        assert r.text == "null"
        r = await client.get(f"{b.url}/api/agents", headers={"cookie": user.cookie})
        assert r.status_code == 401
    assert await b.state.auth.user_from_cookie_header(user.cookie) is None


async def test_profile_change_is_seen_by_every_worker(servers: list[Server]) -> None:
    a, b = servers
    user = await sign_up(a.url)
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{b.url}/api/auth/get-session", headers={"cookie": user.cookie})
        assert r.json()["user"]["name"] == "Test User"
        r = await client.post(
            f"{a.url}/api/auth/update-user", json={"name": "New Name"}, headers=user.headers
        )
        assert r.status_code == 200
    found = await b.state.auth.user_from_cookie_header(user.cookie)
    assert found is not None and found.name == "New Name"


async def test_a_lookup_racing_a_revocation_leaves_no_cache_entry(servers: list[Server]) -> None:
    store = servers[0].state.auth.sessions
    kv = servers[0].state.kv
    user = await sign_up(servers[0].url)
    read_at = time.time()
    generation = store.local.generation
    entry = await store.find(user.token)
    assert entry is not None
    assert await kv.get(_cache_key(user.token)) is not None
    # a reader read the row before the sign-out and writes its copy after it
    await store.delete(user.token)
    await store._fill(user.token, entry, read_at, generation)
    assert await kv.get(_cache_key(user.token)) is None
    assert await store.find(user.token) is None


async def test_unknown_email_costs_what_a_wrong_password_costs(servers: list[Server]) -> None:
    user = await sign_up(servers[0].url)
    samples: dict[str, list[float]] = {"wrong password": [], "unknown email": []}
    # a fresh connection per request and interleaved samples: only the server's work differs
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=servers[0].url, limits=limits) as client:
        for _ in range(7):
            for case, email in (
                ("wrong password", user.email),
                ("unknown email", "nobody.at.all@example.com"),
            ):
                started = time.perf_counter()
                r = await client.post(
                    "/api/auth/sign-in/email", json={"email": email, "password": "not it at all"}
                )
                samples[case].append(time.perf_counter() - started)
                assert r.status_code == 401
    # the fastest of each: other work on the machine only ever adds to a sample
    wrong, unknown = (min(v) for v in samples.values())
    assert 0.6 < unknown / wrong < 1.6, samples


@pytest.fixture(scope="module")
async def production_server(start_module_server: StartServer) -> Server:
    return await start_module_server(
        node_env="production",
        secret_explicit=True,
        better_auth_secret="a-long-random-production-secret-for-tests",
    )


async def test_better_auth_limiter_in_production(production_server: Server) -> None:
    kv = production_server.state.kv
    await kv.delete("auth:rl:127.0.0.1/sign-in/email", "auth:rl:127.0.0.1/get-session")
    async with httpx.AsyncClient(base_url=production_server.url) as client:

        async def attempt(n: int) -> httpx.Response:
            # a forged X-Forwarded-For does not buy a fresh bucket (quirk Q51)
            return await client.post(
                "/api/auth/sign-in/email",
                json={"email": "nobody@example.com", "password": "whatever1"},
                headers={"origin": TRUSTED_ORIGIN, "x-forwarded-for": f"198.51.100.{n}"},
            )

        for n in range(3):
            assert (await attempt(n)).status_code == 401
        r = await attempt(99)
        assert r.status_code == 429
        assert r.content == b'{"message":"Too many requests. Please try again later."}'
        assert r.headers["content-type"] == "text/plain;charset=UTF-8"
        assert 1 <= int(r.headers["x-retry-after"]) <= 10
        # other paths have their own, larger budget
        r = await client.get("/api/auth/get-session")
        assert (r.status_code, r.text) == (200, "null")


async def test_sessions_work_while_redis_is_down(start_server: StartServer) -> None:
    # a sign-out waits for the copies Redis might still hold to expire (cache_ttl_s)
    srv = await start_server(redis_url="redis://127.0.0.1:1/1", session_cache_ttl_s=1.0)
    user = await sign_up(srv.url)
    async with httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.get("/api/auth/get-session", headers={"cookie": user.cookie})
        assert r.json()["user"]["id"] == user.id
        r = await client.post("/api/auth/sign-out", json={}, headers=user.headers)
        assert r.status_code == 200
        r = await client.get("/api/auth/get-session", headers={"cookie": user.cookie})
        assert r.text == "null"


def test_hashing_pool_size() -> None:
    from arinova.auth.passwords import PasswordHasher

    assert Settings.from_env({"PASSWORD_HASH_THREADS": "3"}).password_hash_threads == 3
    assert Settings.from_env({}).password_hash_threads == 0
    explicit, automatic = PasswordHasher(3), PasswordHasher()
    try:
        assert explicit.threads == 3
        assert automatic.threads == max(1, (os.cpu_count() or 2) - 1)
    finally:
        explicit.close()
        automatic.close()


async def test_https_base_url_uses_secure_cookies(start_server: StartServer) -> None:
    srv = await start_server(better_auth_url="https://api.chat.example")
    async with httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.post(
            "/api/auth/sign-up/email",
            json={"name": "S", "email": "secure.cookie@example.com", "password": "password123"},
        )
        assert r.status_code == 200
        [cookie] = r.headers.get_list("set-cookie")
        pair, attributes = cookie.split("; ", 1)
        assert pair.startswith("__Secure-better-auth.session_token=")
        assert attributes == "Max-Age=2592000; Path=/; HttpOnly; Secure; SameSite=Lax"
        value = pair.split("=", 1)[1]
        r = await client.get("/api/auth/get-session", headers={"cookie": pair})
        assert r.json()["user"]["email"] == "secure.cookie@example.com"
        # the plain name means nothing to an https deployment (quirk Q52 stays)
        plain = f"better-auth.session_token={value}"
        r = await client.get("/api/auth/get-session", headers={"cookie": plain})
        assert r.text == "null"
        # the API's own origin is trusted
        r = await client.post(
            "/api/auth/sign-out",
            json={},
            headers={"cookie": pair, "origin": "https://api.chat.example"},
        )
        assert r.status_code == 200
        assert r.headers.get_list("set-cookie")[0] == (
            "__Secure-better-auth.session_token=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax"
        )


async def test_database_down(start_server: StartServer, database: str) -> None:
    srv = await start_server()
    user = await sign_up(srv.url)
    await srv.state.auth.sessions.invalidate([user.token])
    await srv.state.db.close()  # every statement now fails
    async with httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.get("/api/auth/get-session", headers={"cookie": user.cookie})
        assert (r.status_code, r.json()) == (
            500,
            {"code": "FAILED_TO_GET_SESSION", "message": "Failed to get session"},
        )
        r = await client.post(
            "/api/auth/sign-in/email", json={"email": user.email, "password": user.password}
        )
        assert (r.status_code, r.content) == (500, b"")
        r = await client.get("/api/agents", headers={"cookie": user.cookie})
        assert (r.status_code, r.json()) == (
            500,
            {"error": "Internal server error", "code": "INTERNAL_ERROR"},
        )
