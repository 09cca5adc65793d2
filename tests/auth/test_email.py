"""Email and password accounts over real HTTP: sign-up, sign-in, sign-out, get-session,
update-user, change-password, cookies and the origin checks (contract rest.md §3.2)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import asyncpg
import httpx
import pytest

from arinova.server import Server
from arinova.settings import DEFAULT_SECRET
from tests.support.auth import (
    SESSION_COOKIE,
    TRUSTED_ORIGIN,
    authed_client,
    session_cookie_pair,
    sign_in,
    sign_up,
    unique_email,
)
from tests.support.servers import StartServer

JSON = "application/json; charset=utf-8"
ID = re.compile(r"^[A-Za-z0-9]{32}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
EXPIRED_COOKIES = [
    "better-auth.session_token=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
    "better-auth.session_data=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
    "better-auth.dont_remember=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def signed(value: str, secret: str = DEFAULT_SECRET) -> str:
    mac = hmac.new(secret.encode(), value.encode(), hashlib.sha256).digest()
    return f"{value}.{base64.b64encode(mac).decode()}"


@pytest.fixture(scope="module")
async def server(start_module_server: StartServer) -> Server:
    """The module's server, with the global HTTP limit out of the way."""
    return await start_module_server()


@pytest.fixture(scope="module")
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database, server_settings={"timezone": "UTC"})
    yield conn
    await conn.close()


@pytest.fixture
async def client(server: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url) as c:
        yield c


def origin() -> dict[str, str]:
    return {"origin": TRUSTED_ORIGIN}


# -- sign-up ---------------------------------------------------------------------------------
async def test_sign_up_creates_user_account_session_and_sets_the_cookie(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    email = unique_email("Mixed.Case")
    r = await client.post(
        "/api/auth/sign-up/email",
        json={"name": "Ada", "email": email, "password": "password123", "other": 1},
        headers={"user-agent": "test-agent/1", "x-forwarded-for": "203.0.113.9, 10.0.0.1"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == JSON
    body = r.json()
    assert list(body) == ["token", "user"]
    user = body["user"]
    # Better Auth's drizzle adapter: the schema's columns, then id
    assert list(user) == ["name", "email", "emailVerified", "image", "createdAt", "updatedAt", "id"]
    assert ID.match(user["id"]) and ID.match(body["token"])
    assert user["email"] == email.lower()
    assert (user["name"], user["emailVerified"], user["image"]) == ("Ada", False, None)
    assert ISO.match(user["createdAt"]) and user["createdAt"] == user["updatedAt"]

    [cookie] = r.headers.get_list("set-cookie")
    value = signed(body["token"]).replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    assert cookie == f"{SESSION_COOKIE}={value}; Max-Age=2592000; Path=/; HttpOnly; SameSite=Lax"

    account = await db.fetchrow("SELECT * FROM account WHERE user_id = $1", user["id"])
    assert account["provider_id"] == "credential" and account["account_id"] == user["id"]
    assert account["password"].startswith("$argon2id$")
    session = await db.fetchrow('SELECT * FROM "session" WHERE token = $1', body["token"])
    assert (session["ip_address"], session["user_agent"]) == ("203.0.113.9", "test-agent/1")
    lifetime = session["expires_at"] - session["created_at"]
    assert lifetime == timedelta(days=30)


async def test_sign_up_with_an_existing_email_is_422(client: httpx.AsyncClient) -> None:
    user = await sign_up(str(client.base_url))
    r = await client.post(
        "/api/auth/sign-up/email",
        json={"name": "X", "email": user.email.upper(), "password": "password123"},
    )
    assert r.status_code == 422
    assert r.json() == {
        "code": "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
        "message": "User already exists. Use another email.",
    }


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (
            {"name": "A", "email": "a@b.co", "password": "1234567"},
            400,
            {"code": "PASSWORD_TOO_SHORT", "message": "Password too short"},
        ),
        (
            {"name": "A", "email": "a@b.co", "password": "x" * 129},
            400,
            {"code": "PASSWORD_TOO_LONG", "message": "Password too long"},
        ),
        (
            {"name": "A", "email": "not-an-email", "password": "password123"},
            400,
            {"code": "VALIDATION_ERROR", "message": "[body.email] Invalid email address"},
        ),
        (
            {"email": "a@b.co"},
            400,
            {
                "code": "VALIDATION_ERROR",
                "message": "[body.name] Invalid input: expected string, received undefined; "
                "[body.password] Invalid input: expected string, received undefined",
            },
        ),
        (
            {"name": "A", "email": "a@b.co", "password": "password123", "rememberMe": "no"},
            400,
            {
                "code": "VALIDATION_ERROR",
                "message": "[body.rememberMe] Invalid input: expected boolean, received string",
            },
        ),
    ],
)
async def test_sign_up_validation(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, expected: dict[str, str]
) -> None:
    r = await client.post("/api/auth/sign-up/email", json=body)
    assert (r.status_code, r.json()) == (status, expected)
    assert "set-cookie" not in r.headers


async def test_password_length_counts_utf16_units(client: httpx.AsyncClient) -> None:
    # four emoji are 8 UTF-16 code units, so long enough for Better Auth
    r = await client.post(
        "/api/auth/sign-up/email",
        json={"name": "E", "email": unique_email(), "password": "😀😀😀😀"},
    )
    assert r.status_code == 200, r.text


async def test_body_errors_relayed_from_the_framework(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/auth/sign-up/email",
        content=b"name=a",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415
    assert r.json() == {
        "error": "Unsupported Media Type: application/x-www-form-urlencoded",
        "code": "INTERNAL_ERROR",
    }
    r = await client.post(
        "/api/auth/sign-in/email", content=b"{", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert (
        r.json()["error"] == "Body is not valid JSON but content-type is set to 'application/json'"
    )
    r = await client.post("/api/auth/sign-in/email")
    assert r.status_code == 400
    assert r.json() == {
        "code": "VALIDATION_ERROR",
        "message": "[body] Invalid input: expected object, received undefined",
    }


# -- sign-in ---------------------------------------------------------------------------------
async def test_sign_in_answers_token_and_user(client: httpx.AsyncClient) -> None:
    user = await sign_up(str(client.base_url))
    r = await client.post(
        "/api/auth/sign-in/email", json={"email": user.email.upper(), "password": user.password}
    )
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["redirect", "token", "user"]
    assert body["redirect"] is False and body["user"] == user.user
    assert body["token"] != user.token
    assert "location" not in r.headers
    assert session_cookie_pair(r) == f"{SESSION_COOKIE}={signed(body['token'])}".replace(
        "+", "%2B"
    ).replace("/", "%2F").replace("=", "%3D").replace(f"{SESSION_COOKIE}%3D", f"{SESSION_COOKIE}=")


async def test_sign_in_with_callback_url_redirects_in_body_and_location(
    client: httpx.AsyncClient,
) -> None:
    user = await sign_up(str(client.base_url))
    r = await client.post(
        "/api/auth/sign-in/email",
        json={"email": user.email, "password": user.password, "callbackURL": "/chat"},
    )
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["redirect", "token", "url", "user"]
    assert (body["redirect"], body["url"]) == (True, "/chat")
    assert r.headers["location"] == "/chat"


async def test_sign_in_without_remember_me(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    user = await sign_up(str(client.base_url))
    r = await client.post(
        "/api/auth/sign-in/email",
        json={"email": user.email, "password": user.password, "rememberMe": False},
    )
    assert r.status_code == 200
    session_cookie, dont_remember = r.headers.get_list("set-cookie")
    assert session_cookie.endswith("; Path=/; HttpOnly; SameSite=Lax")
    assert "Max-Age" not in session_cookie
    value = signed("true").replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    assert dont_remember == f"better-auth.dont_remember={value}; Path=/; HttpOnly; SameSite=Lax"
    row = await db.fetchrow('SELECT * FROM "session" WHERE token = $1', r.json()["token"])
    assert row["expires_at"] - row["created_at"] == timedelta(days=1)


@pytest.mark.parametrize("case", ["wrong password", "unknown email", "no credential account"])
async def test_sign_in_failures_are_401(
    client: httpx.AsyncClient, db: asyncpg.Connection, case: str
) -> None:
    user = await sign_up(str(client.base_url))
    email, password = user.email, user.password
    if case == "wrong password":
        password = "not the password"
    elif case == "unknown email":
        email = unique_email("nobody")
    else:
        await db.execute("DELETE FROM account WHERE user_id = $1", user.id)
    r = await client.post("/api/auth/sign-in/email", json={"email": email, "password": password})
    assert r.status_code == 401
    assert r.json() == {"code": "INVALID_EMAIL_OR_PASSWORD", "message": "Invalid email or password"}
    assert "set-cookie" not in r.headers


async def test_sign_in_with_a_malformed_email_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/auth/sign-in/email", json={"email": "nope", "password": "x"})
    assert r.status_code == 400
    assert r.json() == {"code": "INVALID_EMAIL", "message": "Invalid email"}


# -- origin and CSRF checks -----------------------------------------------------------------
async def test_cookie_without_origin_is_refused(client: httpx.AsyncClient) -> None:
    user = await sign_up(str(client.base_url))
    r = await client.post("/api/auth/sign-out", json={}, headers={"cookie": user.cookie})
    assert r.status_code == 403
    assert r.json() == {"code": "MISSING_OR_NULL_ORIGIN", "message": "Missing or null Origin"}
    r = await client.post(
        "/api/auth/sign-out", json={}, headers={"cookie": user.cookie, "origin": "null"}
    )
    assert r.json()["code"] == "MISSING_OR_NULL_ORIGIN"


async def test_untrusted_origin_is_refused(client: httpx.AsyncClient) -> None:
    user = await sign_up(str(client.base_url))
    r = await client.post(
        "/api/auth/sign-in/email",
        json={"email": user.email, "password": user.password},
        headers={"cookie": user.cookie, "origin": "https://evil.example"},
    )
    assert r.status_code == 403
    assert r.json() == {"code": "INVALID_ORIGIN", "message": "Invalid origin"}
    # the Referer stands in for a missing Origin
    r = await client.post(
        "/api/auth/sign-in/email",
        json={"email": user.email, "password": user.password},
        headers={"cookie": user.cookie, "referer": f"{TRUSTED_ORIGIN}/login"},
    )
    assert r.status_code == 200


async def test_untrusted_callback_url_is_refused(client: httpx.AsyncClient) -> None:
    user = await sign_up(str(client.base_url))
    r = await client.post(
        "/api/auth/sign-in/email",
        json={
            "email": user.email,
            "password": user.password,
            "callbackURL": "https://evil.example/x",
        },
    )
    assert r.status_code == 403
    assert r.json() == {"code": "INVALID_CALLBACKURL", "message": "Invalid callbackURL"}
    r = await client.post(
        "/api/auth/sign-in/email",
        json={"email": user.email, "password": user.password, "callbackURL": "//evil.example"},
    )
    assert r.status_code == 403


async def test_cross_site_navigation_login_is_blocked(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/auth/sign-in/email",
        json={"email": "a@b.co", "password": "password123"},
        headers={"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"},
    )
    assert r.status_code == 403
    assert r.json() == {
        "code": "CROSSSITE_NAVIGATION_LOGIN_BLOCKED_THIS_REQUEST_APPEARS_TO_BE_A_CSRF_ATTACK",
        "message": "Cross-site navigation login blocked. This request appears to be a CSRF attack.",
    }
    # Fetch Metadata present: the origin is checked even without cookies
    r = await client.post(
        "/api/auth/sign-in/email",
        json={"email": "a@b.co", "password": "password123"},
        headers={"sec-fetch-site": "same-site", "origin": "https://evil.example"},
    )
    assert r.json()["code"] == "INVALID_ORIGIN"


# -- get-session ----------------------------------------------------------------------------
async def test_get_session_without_or_with_a_bad_cookie_is_null(client: httpx.AsyncClient) -> None:
    user = await sign_up(str(client.base_url))
    token, _, signature = unquote(user.cookie.split("=", 1)[1]).rpartition(".")
    tampered = f"{SESSION_COOKIE}={token[:-1]}{'a' if token[-1] != 'a' else 'b'}.{signature}"
    for headers in ({}, {"cookie": tampered}, {"cookie": f"{SESSION_COOKIE}={token}"}):
        r = await client.get("/api/auth/get-session", headers=headers)
        assert (r.status_code, r.text, r.headers["content-type"]) == (200, "null", JSON)
        assert "set-cookie" not in r.headers


async def test_get_session_answers_session_and_user(client: httpx.AsyncClient) -> None:
    user = await sign_up(str(client.base_url))
    r = await client.get("/api/auth/get-session", headers={"cookie": user.cookie})
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == user.user
    assert list(body["session"]) == [
        "expiresAt",
        "token",
        "createdAt",
        "updatedAt",
        "ipAddress",
        "userAgent",
        "userId",
        "id",
    ]
    assert body["session"]["token"] == user.token and body["session"]["userId"] == user.id
    assert "set-cookie" not in r.headers


async def test_expired_session_is_deleted_and_cookies_cleared(
    client: httpx.AsyncClient, db: asyncpg.Connection, server: Any
) -> None:
    user = await sign_up(str(client.base_url))
    await db.execute(
        'UPDATE "session" SET expires_at = $2 WHERE token = $1',
        user.token,
        utcnow() - timedelta(seconds=1),
    )
    await server.state.auth.sessions.invalidate([user.token])
    r = await client.get("/api/auth/get-session", headers={"cookie": user.cookie})
    assert (r.status_code, r.text) == (200, "null")
    assert r.headers.get_list("set-cookie") == EXPIRED_COOKIES
    assert await db.fetchval('SELECT count(*) FROM "session" WHERE token = $1', user.token) == 0


async def test_old_session_is_refreshed_and_the_cookie_reissued(
    client: httpx.AsyncClient, db: asyncpg.Connection, server: Any
) -> None:
    user = await sign_up(str(client.base_url))
    stale = utcnow() + timedelta(days=28)
    await db.execute('UPDATE "session" SET expires_at = $2 WHERE token = $1', user.token, stale)
    await server.state.auth.sessions.invalidate([user.token])
    r = await client.get(
        "/api/auth/get-session", headers={"cookie": user.cookie}, params={"disableRefresh": "1"}
    )
    assert r.status_code == 200 and "set-cookie" not in r.headers
    r = await client.get("/api/auth/get-session", headers={"cookie": user.cookie})
    assert r.status_code == 200
    [cookie] = r.headers.get_list("set-cookie")
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))  # type: ignore[union-attr]
    assert 2592000 - 5 <= max_age < 2592000
    assert cookie.startswith(f"{user.cookie}; Max-Age=")
    row = await db.fetchrow('SELECT * FROM "session" WHERE token = $1', user.token)
    assert row["expires_at"] > utcnow() + timedelta(days=29, hours=23)
    assert r.json()["session"]["expiresAt"].startswith(row["expires_at"].isoformat()[:19])


async def test_refresh_on_an_api_route_sets_no_cookie(
    client: httpx.AsyncClient, db: asyncpg.Connection, server: Any
) -> None:
    user = await sign_up(str(client.base_url))
    stale = utcnow() + timedelta(days=28)
    await db.execute('UPDATE "session" SET expires_at = $2 WHERE token = $1', user.token, stale)
    await server.state.auth.sessions.invalidate([user.token])
    found = await server.state.auth.user_from_cookie_header(user.cookie)
    assert found is not None and found.id == user.id
    row = await db.fetchrow('SELECT * FROM "session" WHERE token = $1', user.token)
    assert row["expires_at"] > utcnow() + timedelta(days=29, hours=23)


# -- sign-out -------------------------------------------------------------------------------
async def test_sign_out_deletes_the_session_and_clears_cookies(
    client: httpx.AsyncClient, db: asyncpg.Connection, server: Any
) -> None:
    user = await sign_up(str(client.base_url))
    assert (await client.get("/api/auth/get-session", headers={"cookie": user.cookie})).json()
    r = await client.post("/api/auth/sign-out", json={}, headers=user.headers)
    assert (r.status_code, r.json()) == (200, {"success": True})
    assert r.headers.get_list("set-cookie") == EXPIRED_COOKIES
    assert await db.fetchval('SELECT count(*) FROM "session" WHERE token = $1', user.token) == 0
    # the cookie is dead at once: auth endpoints, API routes and the socket check
    r = await client.get("/api/auth/get-session", headers={"cookie": user.cookie})
    assert r.text == "null"
    r = await client.get("/api/agents", headers={"cookie": user.cookie})
    assert (r.status_code, r.json()) == (401, {"error": "Unauthorized"})
    assert await server.state.auth.user_from_cookie_header(user.cookie) is None


async def test_sign_out_without_a_session_still_succeeds(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/auth/sign-out", json={})
    assert (r.status_code, r.json()) == (200, {"success": True})
    assert r.headers.get_list("set-cookie") == EXPIRED_COOKIES


# -- update-user ----------------------------------------------------------------------------
async def test_update_user_changes_the_name_at_once(client: httpx.AsyncClient) -> None:
    user = await sign_up(str(client.base_url))
    # warm the session cache first
    assert (await client.get("/api/auth/get-session", headers={"cookie": user.cookie})).json()
    r = await client.post("/api/auth/update-user", json={"name": "Renamed"}, headers=user.headers)
    assert (r.status_code, r.json()) == (200, {"status": True})
    [cookie] = r.headers.get_list("set-cookie")
    assert cookie == f"{user.cookie}; Max-Age=2592000; Path=/; HttpOnly; SameSite=Lax"
    body = (await client.get("/api/auth/get-session", headers={"cookie": user.cookie})).json()
    assert body["user"]["name"] == "Renamed"
    assert body["user"]["updatedAt"] >= user.user["updatedAt"]
    r = await client.post(
        "/api/auth/update-user", json={"image": "https://x/y.png"}, headers=user.headers
    )
    assert r.status_code == 200
    body = (await client.get("/api/auth/get-session", headers={"cookie": user.cookie})).json()
    assert (body["user"]["name"], body["user"]["image"]) == ("Renamed", "https://x/y.png")


async def test_update_user_errors(client: httpx.AsyncClient) -> None:
    user = await sign_up(str(client.base_url))
    r = await client.post("/api/auth/update-user", json={"email": "x@y.z"}, headers=user.headers)
    assert (r.status_code, r.json()) == (
        400,
        {"code": "EMAIL_CAN_NOT_BE_UPDATED", "message": "Email can not be updated"},
    )
    r = await client.post("/api/auth/update-user", json={"other": 1}, headers=user.headers)
    assert (r.status_code, r.json()) == (
        400,
        {"code": "NO_FIELDS_TO_UPDATE", "message": "No fields to update"},
    )
    r = await client.post(
        "/api/auth/update-user", json={"email": [], "name": "x"}, headers=user.headers
    )
    assert r.json()["code"] == "EMAIL_CAN_NOT_BE_UPDATED"  # [] is truthy in JavaScript
    r = await client.post("/api/auth/update-user", json={"name": "x"}, headers=origin())
    assert (r.status_code, r.content, r.headers["content-type"]) == (401, b"", JSON)
    for key in ("name", "image"):
        r = await client.post("/api/auth/update-user", json={key: "a\u0000b"}, headers=user.headers)
        assert (r.status_code, r.json()) == (
            400,
            {
                "code": "VALIDATION_ERROR",
                "message": f"[body.{key}] must not contain NUL characters",
            },
        )
    body = (await client.get("/api/auth/get-session", headers={"cookie": user.cookie})).json()
    assert (body["user"]["name"], body["user"]["image"]) == (user.user["name"], None)


# -- change-password ------------------------------------------------------------------------
async def test_change_password(client: httpx.AsyncClient) -> None:
    user = await sign_up(str(client.base_url))
    r = await client.post(
        "/api/auth/change-password",
        json={"currentPassword": user.password, "newPassword": "brand new password"},
        headers=user.headers,
    )
    assert r.status_code == 200
    assert r.json() == {"token": None, "user": user.user}
    assert "set-cookie" not in r.headers
    # the session survives; the new password signs in, the old one no longer does
    assert (await client.get("/api/auth/get-session", headers={"cookie": user.cookie})).json()
    await sign_in(str(client.base_url), user.email, "brand new password")
    r = await client.post(
        "/api/auth/sign-in/email", json={"email": user.email, "password": user.password}
    )
    assert r.status_code == 401


async def test_change_password_revoking_other_sessions(client: httpx.AsyncClient) -> None:
    user = await sign_up(str(client.base_url))
    other = await sign_in(str(client.base_url), user.email)
    r = await client.post(
        "/api/auth/change-password",
        json={
            "currentPassword": user.password,
            "newPassword": "another password",
            "revokeOtherSessions": True,
        },
        headers=user.headers,
    )
    assert r.status_code == 200
    token = r.json()["token"]
    assert ID.match(token) and token not in (user.token, other.token)
    new_cookie = session_cookie_pair(r)
    for old in (user, other):
        r2 = await client.get("/api/auth/get-session", headers={"cookie": old.cookie})
        assert r2.text == "null"
    r2 = await client.get("/api/auth/get-session", headers={"cookie": new_cookie})
    assert r2.json()["session"]["token"] == token


async def test_change_password_errors(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    user = await sign_up(str(client.base_url))
    cases = [
        (
            {"currentPassword": "wrong password", "newPassword": "password123"},
            {"code": "INVALID_PASSWORD", "message": "Invalid password"},
        ),
        (
            {"currentPassword": user.password, "newPassword": "short"},
            {"code": "PASSWORD_TOO_SHORT", "message": "Password too short"},
        ),
        (
            {"currentPassword": user.password, "newPassword": "y" * 129},
            {"code": "PASSWORD_TOO_LONG", "message": "Password too long"},
        ),
        (
            {"newPassword": "password123"},
            {
                "code": "VALIDATION_ERROR",
                "message": "[body.currentPassword] Invalid input: expected string, received undefined",
            },
        ),
    ]
    for body, expected in cases:
        r = await client.post("/api/auth/change-password", json=body, headers=user.headers)
        assert (r.status_code, r.json()) == (400, expected)
    r = await client.post(
        "/api/auth/change-password",
        json={"currentPassword": "a" * 8, "newPassword": "b" * 8},
        headers=origin(),
    )
    assert (r.status_code, r.content) == (401, b"")
    await db.execute("DELETE FROM account WHERE user_id = $1", user.id)
    r = await client.post(
        "/api/auth/change-password",
        json={"currentPassword": user.password, "newPassword": "password123"},
        headers=user.headers,
    )
    assert (r.status_code, r.json()) == (
        400,
        {"code": "CREDENTIAL_ACCOUNT_NOT_FOUND", "message": "Credential account not found"},
    )


# -- other paths ----------------------------------------------------------------------------
async def test_unknown_auth_paths_are_empty_404(client: httpx.AsyncClient) -> None:
    for method, path in (("GET", "/api/auth/session"), ("POST", "/api/auth/nope/x")):
        r = await client.request(method, path, headers=origin())
        assert (r.status_code, r.content) == (404, b"")


async def test_ok_and_error_page(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/auth/ok")
    assert (r.status_code, r.json()) == (200, {"ok": True})
    r = await client.get("/api/auth/error", params={"error": "<script>"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "UNKNOWN" in r.text and "<script>" not in r.text


async def test_authed_client_helper_reaches_an_api_route(server: Any) -> None:
    user = await sign_up(server.url)
    async with authed_client(server.url, user) as c:
        r = await c.get("/api/agents")
    assert r.status_code == 200, r.text


# -- the user's sessions ---------------------------------------------------------------------
async def test_list_and_revoke_sessions(client: httpx.AsyncClient) -> None:
    base = str(client.base_url)
    first = await sign_up(base)
    second = await sign_in(base, first.email)
    third = await sign_in(base, first.email)
    stranger = await sign_up(base)
    r = await client.get("/api/auth/list-sessions", headers={"cookie": first.cookie})
    assert r.status_code == 200
    assert [s["token"] for s in r.json()] == [first.token, second.token, third.token]
    # another user's token is not revoked, and the answer is the same
    r = await client.post(
        "/api/auth/revoke-session", json={"token": stranger.token}, headers=first.headers
    )
    assert (r.status_code, r.json()) == (200, {"status": True})
    assert (await client.get("/api/auth/get-session", headers={"cookie": stranger.cookie})).json()
    # a token no session can have (a NUL character) revokes nothing, like an unknown one
    r = await client.post(
        "/api/auth/revoke-session", json={"token": "a\u0000b"}, headers=first.headers
    )
    assert (r.status_code, r.json()) == (200, {"status": True})
    r = await client.post(
        "/api/auth/revoke-session", json={"token": second.token}, headers=first.headers
    )
    assert r.json() == {"status": True}
    r = await client.get("/api/auth/get-session", headers={"cookie": second.cookie})
    assert r.text == "null"
    r = await client.post("/api/auth/revoke-other-sessions", json={}, headers=first.headers)
    assert r.json() == {"status": True}
    assert (await client.get("/api/auth/get-session", headers={"cookie": third.cookie})).text == (
        "null"
    )
    assert (await client.get("/api/auth/get-session", headers={"cookie": first.cookie})).json()
    r = await client.post("/api/auth/revoke-sessions", json={}, headers=first.headers)
    assert r.json() == {"status": True}
    assert (await client.get("/api/auth/get-session", headers={"cookie": first.cookie})).text == (
        "null"
    )
    r = await client.get("/api/auth/list-sessions")
    assert (r.status_code, r.content) == (401, b"")
