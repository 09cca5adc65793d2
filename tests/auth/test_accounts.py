"""The remaining Better Auth 1.4.18 core endpoints (contract rest.md §3.2.8), answered as
the original's configuration answered them (compared against a running Better Auth)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from arinova.server import Server
from tests.support.auth import TRUSTED_ORIGIN, SignedIn, authed_client, sign_up

JSON = "application/json; charset=utf-8"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module")
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database, server_settings={"timezone": "UTC"})
    yield conn
    await conn.close()


@pytest.fixture
async def anon(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"origin": TRUSTED_ORIGIN}, follow_redirects=False
    ) as c:
        yield c


@pytest.fixture
async def user(server: Server) -> SignedIn:
    return await sign_up(server.url)


@pytest.fixture
async def client(server: Server, user: SignedIn) -> AsyncIterator[httpx.AsyncClient]:
    async with authed_client(server.url, user, follow_redirects=False) as c:
        yield c


def error(message: str, code: str | None = None) -> dict[str, str]:
    derived = re.sub(r"[^A-Z0-9_]", "", message.upper().replace(" ", "_"))
    return {"code": code or derived, "message": message}


def invalid(where: str, expected: str = "string") -> dict[str, str]:
    return error(
        f"[{where}] Invalid input: expected {expected}, received undefined", "VALIDATION_ERROR"
    )


SESSION_ONLY = [
    ("GET", "/api/auth/list-accounts", None),
    ("GET", "/api/auth/account-info", None),
    ("POST", "/api/auth/unlink-account", {"providerId": "google"}),
    ("POST", "/api/auth/get-access-token", {"providerId": "google"}),
    ("POST", "/api/auth/refresh-token", {"providerId": "google"}),
    ("POST", "/api/auth/verify-password", {"password": "whatever1"}),
    ("POST", "/api/auth/change-email", {"newEmail": "new@example.com"}),
    ("POST", "/api/auth/delete-user", {}),
    ("POST", "/api/auth/link-social", {"provider": "google"}),
]


@pytest.mark.parametrize(("method", "path", "body"), SESSION_ONLY)
async def test_session_endpoints_answer_401_with_an_empty_body(
    anon: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    r = await anon.request(method, path, json=body)
    assert (r.status_code, r.headers["content-type"], r.content) == (401, JSON, b"")


async def test_body_is_validated_before_the_session(anon: httpx.AsyncClient) -> None:
    cases = [
        ("/api/auth/unlink-account", invalid("body.providerId")),
        ("/api/auth/get-access-token", invalid("body.providerId")),
        ("/api/auth/verify-password", invalid("body.password")),
        ("/api/auth/change-email", invalid("body.newEmail")),
        ("/api/auth/request-password-reset", invalid("body.email")),
        ("/api/auth/reset-password", invalid("body.newPassword")),
        ("/api/auth/send-verification-email", invalid("body.email")),
        ("/api/auth/link-social", error("[body.provider] Invalid input", "VALIDATION_ERROR")),
    ]
    for path, body in cases:
        r = await anon.post(path, json={})
        assert (r.status_code, r.json()) == (400, body), path


async def test_list_accounts(client: httpx.AsyncClient, user: SignedIn) -> None:
    r = await client.get("/api/auth/list-accounts")
    assert (r.status_code, r.headers["content-type"]) == (200, JSON)
    [account] = r.json()
    assert list(account) == [
        "accountId",
        "providerId",
        "userId",
        "createdAt",
        "updatedAt",
        "id",
        "scopes",
    ]
    assert account["accountId"] == user.id and account["userId"] == user.id
    assert account["providerId"] == "credential" and account["scopes"] == []
    assert ISO.match(account["createdAt"])


async def test_unlink_account(
    client: httpx.AsyncClient, user: SignedIn, db: asyncpg.Connection
) -> None:
    r = await client.post("/api/auth/unlink-account", json={"providerId": "credential"})
    assert (r.status_code, r.json()) == (400, error("You can't unlink your last account"))
    await db.execute(
        "INSERT INTO account (id, user_id, account_id, provider_id, scope, created_at, updated_at)"
        " VALUES ($1, $2, '77', 'github', 'read:user,user:email', now(), now())",
        f"acc{user.id[:29]}",
        user.id,
    )
    accounts = (await client.get("/api/auth/list-accounts")).json()
    assert [a["scopes"] for a in accounts] == [[], ["read:user", "user:email"]]
    r = await client.post("/api/auth/unlink-account", json={"providerId": "google"})
    assert (r.status_code, r.json()) == (400, error("Account not found"))
    r = await client.post(
        "/api/auth/unlink-account", json={"providerId": "github", "accountId": "78"}
    )
    assert (r.status_code, r.json()) == (400, error("Account not found"))
    r = await client.post(
        "/api/auth/unlink-account", json={"providerId": "github", "accountId": "77"}
    )
    assert (r.status_code, r.json()) == (200, {"status": True})
    assert await db.fetchval("SELECT count(*) FROM account WHERE user_id = $1", user.id) == 1


async def test_verify_password(client: httpx.AsyncClient, user: SignedIn) -> None:
    r = await client.post("/api/auth/verify-password", json={"password": user.password})
    assert (r.status_code, r.json()) == (200, {"status": True})
    r = await client.post("/api/auth/verify-password", json={"password": "not it at all"})
    assert (r.status_code, r.json()) == (400, error("Invalid password"))


async def test_provider_tokens_and_account_info(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/auth/get-access-token", json={"providerId": "google"})
    assert (r.status_code, r.json()) == (
        400,
        error("Provider google is not supported.", "PROVIDER_GOOGLE_IS_NOT_SUPPORTED"),
    )
    r = await client.post("/api/auth/refresh-token", json={"providerId": "credential"})
    assert (r.status_code, r.json()) == (
        400,
        error("Provider credential not found.", "PROVIDER_CREDENTIAL_NOT_FOUND"),
    )
    for query in ("", "?accountId=nope", "?accountId=a%00b"):
        r = await client.get(f"/api/auth/account-info{query}")
        assert (r.status_code, r.json()) == (400, error("Account not found"))


async def test_features_the_original_left_off(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, user: SignedIn
) -> None:
    r = await client.post("/api/auth/change-email", json={"newEmail": "new@example.com"})
    assert (r.status_code, r.json()) == (400, error("Change email is disabled"))
    r = await client.post("/api/auth/change-email", json={"newEmail": "nope"})
    assert r.json() == error("[body.newEmail] Invalid email address", "VALIDATION_ERROR")
    r = await client.post("/api/auth/delete-user", json={"password": user.password})
    assert (r.status_code, r.headers["content-type"], r.content) == (404, JSON, b"")
    r = await anon.get("/api/auth/delete-user/callback", params={"token": "x"})
    assert (r.status_code, r.content) == (404, b"")
    r = await anon.get("/api/auth/delete-user/callback")
    assert r.json() == invalid("query.token")
    for c in (anon, client):
        r = await c.post("/api/auth/request-password-reset", json={"email": user.email})
        assert (r.status_code, r.json()) == (400, error("Reset password isn't enabled"))
        r = await c.post("/api/auth/send-verification-email", json={"email": user.email})
        assert (r.status_code, r.json()) == (400, error("Verification email isn't enabled"))


async def test_reset_password_tokens_never_match(anon: httpx.AsyncClient) -> None:
    r = await anon.post("/api/auth/reset-password", json={"newPassword": "password999"})
    assert (r.status_code, r.json()) == (400, error("Invalid token"))
    r = await anon.post("/api/auth/reset-password", json={"newPassword": "short", "token": "t"})
    assert r.json() == error("Password too short")
    r = await anon.post("/api/auth/reset-password?token=t", json={"newPassword": "password999"})
    assert r.json() == error("Invalid token")
    r = await anon.get("/api/auth/reset-password/abc", params={"callbackURL": "/reset?x=1"})
    assert (r.status_code, r.headers["content-type"], r.content) == (302, JSON, b"")
    assert r.headers["location"] == "http://localhost:3501/reset?x=1&error=INVALID_TOKEN"
    r = await anon.get("/api/auth/reset-password/abc")
    assert r.json() == invalid("query.callbackURL")
    r = await anon.get("/api/auth/reset-password/abc", params={"callbackURL": "http://evil.com"})
    assert (r.status_code, r.json()) == (403, error("Invalid callbackURL"))


async def test_verify_email_tokens_never_verify(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/api/auth/verify-email", params={"token": "x"})
    assert (r.status_code, r.json()) == (401, error("invalid_token"))
    r = await anon.get("/api/auth/verify-email", params={"token": "x", "callbackURL": "/v?a=1"})
    assert (r.status_code, r.headers["location"]) == (302, "/v?a=1&error=invalid_token")
    r = await anon.get("/api/auth/verify-email")
    assert r.json() == invalid("query.token")
