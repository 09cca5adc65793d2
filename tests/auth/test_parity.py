"""Details where our auth endpoints first differed from a real Better Auth 1.4.18 (drizzle
adapter on the same schema, behind a copy of the original's proxy), now answered alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from arinova.server import Server
from tests.support.auth import TRUSTED_ORIGIN, authed_client, sign_up

JSON = "application/json; charset=utf-8"
USER_KEYS = ["name", "email", "emailVerified", "image", "createdAt", "updatedAt", "id"]
SESSION_KEYS = [
    "expiresAt",
    "token",
    "createdAt",
    "updatedAt",
    "ipAddress",
    "userAgent",
    "userId",
    "id",
]


@pytest.fixture
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, headers={"origin": TRUSTED_ORIGIN}) as c:
        yield c


def validation(message: str) -> dict[str, str]:
    return {"code": "VALIDATION_ERROR", "message": message}


async def post_raw(client: httpx.AsyncClient, path: str, raw: str) -> httpx.Response:
    return await client.post(path, content=raw, headers={"content-type": "application/json"})


async def test_user_and_session_fields_come_in_the_adapters_order_with_id_last(
    client: httpx.AsyncClient, server: Server
) -> None:
    user = await sign_up(server.url)
    assert list(user.user) == USER_KEYS
    r = await client.post(
        "/api/auth/sign-in/email", json={"email": user.email, "password": user.password}
    )
    assert list(r.json()) == ["redirect", "token", "user"]
    assert list(r.json()["user"]) == USER_KEYS
    async with authed_client(server.url, user) as c:
        body = (await c.get("/api/auth/get-session")).json()
        assert list(body) == ["session", "user"]
        assert list(body["session"]) == SESSION_KEYS
        assert list(body["user"]) == USER_KEYS
        sessions = (await c.get("/api/auth/list-sessions")).json()
        assert [list(s) for s in sessions] == [SESSION_KEYS, SESSION_KEYS]
        r = await c.post(
            "/api/auth/change-password",
            json={"currentPassword": user.password, "newPassword": "another password"},
        )
        assert list(r.json()["user"]) == USER_KEYS


@pytest.mark.parametrize("raw", ["null", "false", "0", "0.0", '""'])
async def test_a_falsy_json_body_is_no_body_at_all(client: httpx.AsyncClient, raw: str) -> None:
    # the original's proxy forwarded the parsed body only when it was truthy
    r = await post_raw(client, "/api/auth/sign-in/email", raw)
    assert (r.status_code, r.headers["content-type"]) == (400, JSON)
    assert r.json() == validation("[body] Invalid input: expected object, received undefined")
    r = await post_raw(client, "/api/auth/sign-in/social", raw)
    assert r.json() == validation("[body] Invalid input: expected object, received undefined")


@pytest.mark.parametrize(
    ("raw", "received"), [("[1]", "array"), ('"x"', "string"), ("true", "boolean"), ("3", "number")]
)
async def test_truthy_non_object_bodies_name_their_type(
    client: httpx.AsyncClient, raw: str, received: str
) -> None:
    r = await post_raw(client, "/api/auth/sign-in/email", raw)
    assert r.json() == validation(f"[body] Invalid input: expected object, received {received}")


@pytest.mark.parametrize(
    ("raw", "received"), [("null", "undefined"), ("0", "undefined"), ("[1]", "array")]
)
async def test_sign_up_body_fails_both_halves_of_its_schema(
    client: httpx.AsyncClient, raw: str, received: str
) -> None:
    r = await post_raw(client, "/api/auth/sign-up/email", raw)
    assert r.status_code == 400
    assert r.json() == validation(
        f"[body] Invalid input: expected object, received {received}; "
        f"[body] Invalid input: expected record, received {received}"
    )


async def test_social_provider_is_any_string(client: httpx.AsyncClient) -> None:
    # z.enum(providers).or(z.string()): a missing or non-string provider is a bare
    # "Invalid input"; any string passes and an unknown one is 404
    for body in ({}, {"provider": 3}, {"provider": None}, {"callbackURL": "/"}):
        r = await client.post("/api/auth/sign-in/social", json=body)
        assert r.status_code == 400
        assert r.json() == validation("[body.provider] Invalid input")
    r = await client.post(
        "/api/auth/sign-in/social", json={"provider": 3, "scopes": "x", "disableRedirect": "y"}
    )
    assert r.json() == validation(
        "[body.provider] Invalid input; "
        "[body.disableRedirect] Invalid input: expected boolean, received string; "
        "[body.scopes] Invalid input: expected array, received string"
    )
    for provider in ("bogus", "discord", ""):
        r = await client.post("/api/auth/sign-in/social", json={"provider": provider})
        assert r.status_code == 404
        assert r.json() == {"code": "PROVIDER_NOT_FOUND", "message": "Provider not found"}


async def test_callback_redirects_carry_better_calls_json_content_type(
    client: httpx.AsyncClient,
) -> None:
    cases: list[tuple[str, str, Any]] = [
        ("GET", "/api/auth/callback/google?code=x", None),
        ("GET", "/api/auth/callback/google?code=x&state=unknown", None),
        ("GET", "/api/auth/callback/bogus?error=access_denied", None),
        ("POST", "/api/auth/callback/google", {"code": "x", "state": "y"}),
    ]
    for method, path, body in cases:
        r = await client.request(method, path, json=body)
        assert r.status_code == 302
        assert r.headers["content-type"] == JSON
        assert r.content == b""


async def test_head_requests_find_no_better_auth_route(client: httpx.AsyncClient) -> None:
    for path in ("/api/auth/ok", "/api/auth/get-session", "/api/auth/nope"):
        r = await client.head(path)
        assert (r.status_code, r.headers["content-type"]) == (404, "text/plain; charset=utf-8")


async def test_a_user_the_database_refuses_is_failed_to_create_user(
    client: httpx.AsyncClient,
) -> None:
    # PostgreSQL refuses NUL in text: Better Auth turns the adapter's error into a 422
    for extra in ({"name": "a\u0000b"}, {"name": "ab", "image": "x\u0000"}):
        email = f"nul.{len(extra)}.{id(extra)}@example.com"
        r = await client.post(
            "/api/auth/sign-up/email",
            json={"name": "n", **extra, "email": email, "password": "password123"},
        )
        assert (r.status_code, r.json()) == (
            422,
            {"code": "FAILED_TO_CREATE_USER", "message": "Failed to create user"},
        )


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (5, "5"),
        (1.5, "1.5"),
        (2.0, "2"),
        (1e21, "1e+21"),
        (True, "true"),
        ([1, [2, None], {"a": 1}], "1,2,,[object Object]"),
        ({"a": 1}, "[object Object]"),
    ],
)
async def test_update_user_stores_what_javascript_makes_of_a_non_string(
    server: Server, value: object, stored: str
) -> None:
    # Better Auth's body schema is a record of anything: the driver stored String(value)
    user = await sign_up(server.url)
    async with authed_client(server.url, user) as c:
        r = await c.post("/api/auth/update-user", json={"name": value, "image": value})
        assert (r.status_code, r.json()) == (200, {"status": True})
        body = (await c.get("/api/auth/get-session")).json()
        assert (body["user"]["name"], body["user"]["image"]) == (stored, stored)


async def test_update_user_with_a_null_name_is_refused(server: Server) -> None:
    # the original crashed with an empty 500 on the NOT NULL column (quirk Q46: validate)
    user = await sign_up(server.url)
    async with authed_client(server.url, user) as c:
        r = await c.post("/api/auth/update-user", json={"name": None})
        assert (r.status_code, r.json()) == (
            400,
            {
                "code": "VALIDATION_ERROR",
                "message": "[body.name] Invalid input: expected string, received null",
            },
        )
        assert (await c.get("/api/auth/get-session")).json()["user"]["name"] == user.user["name"]
        r = await c.post("/api/auth/update-user", json={"image": None})
        assert (r.status_code, r.json()) == (200, {"status": True})
        assert (await c.get("/api/auth/get-session")).json()["user"]["name"] == "Test User"
