"""Push subscriptions (rest.md §3.10) and Web Push delivery (websocket.md §10).

Deliveries go to a local push service (tests/support/push_service.py) that verifies the
VAPID JWT and decrypts the aes128gcm payload with the subscription's private key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from arinova.push.service import MAX_CONCURRENT_SENDS, PushService
from arinova.server import Server
from tests.support.auth import SignedIn, authed_client, sign_up
from tests.support.push_service import LocalPushService, new_vapid_keys
from tests.support.servers import StartServer

VAPID_PUBLIC, VAPID_PRIVATE = new_vapid_keys()
SUBJECT = "mailto:push-tests@example.com"


def validation(details: str) -> dict[str, str]:
    return {"error": "Validation error", "code": "VALIDATION_ERROR", "details": details}


@pytest.fixture(scope="module")
async def push_server(start_module_server: StartServer) -> Server:
    return await start_module_server(
        vapid_public_key=VAPID_PUBLIC,
        vapid_private_key=VAPID_PRIVATE,
        vapid_subject=SUBJECT,
        allow_private_outbound=True,
        count_queries=True,
    )


@pytest.fixture
async def push_service() -> AsyncIterator[LocalPushService]:
    async with LocalPushService() as service:
        yield service
    assert service.errors == []


@pytest.fixture
async def user(push_server: Server) -> SignedIn:
    return await sign_up(push_server.url)


@pytest.fixture
async def client(push_server: Server, user: SignedIn) -> AsyncIterator[httpx.AsyncClient]:
    async with authed_client(push_server.url, user) as c:
        yield c


def push_of(server: Server) -> PushService:
    return server.state.push


async def subscription_rows(server: Server, user_id: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(server.settings.database_url)
    try:
        rows = await conn.fetch(
            "SELECT endpoint, p256dh, auth, device_info FROM push_subscriptions"
            " WHERE user_id = $1 ORDER BY created_at, endpoint",
            user_id,
        )
        return [dict(row) for row in rows]
    finally:
        await conn.close()


async def preference_rows(server: Server, user_id: str) -> int:
    conn = await asyncpg.connect(server.settings.database_url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM notification_preferences WHERE user_id = $1", user_id
        )
        return count
    finally:
        await conn.close()


# --- GET /api/push/vapid-key -------------------------------------------------------


async def test_vapid_key_without_a_session(push_server: Server) -> None:
    async with httpx.AsyncClient(base_url=push_server.url) as anonymous:
        response = await anonymous.get("/api/push/vapid-key")
    assert response.status_code == 200
    assert response.json() == {"vapidPublicKey": VAPID_PUBLIC}


async def test_vapid_key_not_configured(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        response = await anonymous.get("/api/push/vapid-key")
    assert response.status_code == 503
    assert response.json() == {"error": "Push notifications not configured"}
    assert not server.state.push.enabled


# --- POST/DELETE /api/push/subscribe ------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_subscribe_routes_need_a_session(push_server: Server, method: str) -> None:
    async with httpx.AsyncClient(base_url=push_server.url) as anonymous:
        response = await anonymous.request(
            method, "/api/push/subscribe", json={"endpoint": "https://push.example.com/x"}
        )
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}


async def test_subscribe_inserts_then_updates_by_endpoint(
    push_server: Server, client: httpx.AsyncClient, user: SignedIn
) -> None:
    body = {
        "endpoint": "https://push.example.com/send/abc",
        "keys": {"p256dh": "key-1", "auth": "auth-1"},
        "deviceInfo": "Firefox on Linux",
    }
    response = await client.post("/api/push/subscribe", json=body)
    assert response.status_code == 201
    assert response.json() == {"ok": True}
    assert await preference_rows(push_server, user.id) == 1  # created with the first one
    response = await client.post(
        "/api/push/subscribe",
        json={"endpoint": body["endpoint"], "keys": {"p256dh": "key-2", "auth": "auth-2"}},
    )
    assert response.status_code == 201
    assert response.json() == {"ok": True}
    other = {**body, "endpoint": "https://push.example.com/send/def"}
    assert (await client.post("/api/push/subscribe", json=other)).status_code == 201
    assert await subscription_rows(push_server, user.id) == [
        {
            "endpoint": "https://push.example.com/send/abc",
            "p256dh": "key-2",
            "auth": "auth-2",
            "device_info": None,
        },
        {
            "endpoint": "https://push.example.com/send/def",
            "p256dh": "key-1",
            "auth": "auth-1",
            "device_info": "Firefox on Linux",
        },
    ]
    assert await preference_rows(push_server, user.id) == 1


async def test_first_subscription_keeps_saved_preferences(
    push_server: Server, client: httpx.AsyncClient
) -> None:
    prefs = {
        "globalEnabled": False,
        "messageEnabled": True,
        "playgroundInviteEnabled": True,
        "playgroundTurnEnabled": True,
        "playgroundResultEnabled": True,
        "quietHoursStart": "22:00",
        "quietHoursEnd": "07:00",
    }
    assert (await client.put("/api/notifications/preferences", json=prefs)).status_code == 200
    body = {"endpoint": "https://push.example.com/a", "keys": {"p256dh": "p", "auth": "a"}}
    assert (await client.post("/api/push/subscribe", json=body)).status_code == 201
    response = await client.get("/api/notifications/preferences")
    assert response.json() == prefs


async def test_concurrent_subscribes_of_one_endpoint_store_one_row(
    push_server: Server, client: httpx.AsyncClient, user: SignedIn
) -> None:
    body = {"endpoint": "https://push.example.com/same", "keys": {"p256dh": "p", "auth": "a"}}
    responses = await asyncio.gather(
        *(client.post("/api/push/subscribe", json=body) for _ in range(8))
    )
    assert [r.status_code for r in responses] == [201] * 8
    assert len(await subscription_rows(push_server, user.id)) == 1


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (None, "body: must be an object"),
        ({}, "endpoint: is required"),
        (
            {"endpoint": "not a url", "keys": {"p256dh": "p", "auth": "a"}},
            "endpoint: must be a valid URL",
        ),
        ({"endpoint": 5, "keys": {"p256dh": "p", "auth": "a"}}, "endpoint: must be a string"),
        ({"endpoint": "https://p.example.com/x"}, "keys: is required"),
        ({"endpoint": "https://p.example.com/x", "keys": "k"}, "keys: must be an object"),
        (
            {"endpoint": "https://p.example.com/x", "keys": {"auth": "a"}},
            "keys.p256dh: is required",
        ),
        (
            {"endpoint": "https://p.example.com/x", "keys": {"p256dh": "", "auth": "a"}},
            "keys.p256dh: must not be empty",
        ),
        (
            {"endpoint": "https://p.example.com/x", "keys": {"p256dh": "p", "auth": ""}},
            "keys.auth: must not be empty",
        ),
        (
            {
                "endpoint": "https://p.example.com/x",
                "keys": {"p256dh": "p", "auth": "a"},
                "deviceInfo": "d" * 501,
            },
            "deviceInfo: must be at most 500 characters long",
        ),
        (
            {
                "endpoint": "https://p.example.com/x",
                "keys": {"p256dh": "p", "auth": "a"},
                "deviceInfo": None,
            },
            "deviceInfo: must not be null",
        ),
    ],
)
async def test_subscribe_validation(
    push_server: Server, client: httpx.AsyncClient, user: SignedIn, body: Any, details: str
) -> None:
    if body is None:
        response = await client.post("/api/push/subscribe")
    else:
        response = await client.post("/api/push/subscribe", json=body)
    assert response.status_code == 400
    assert response.json() == validation(details)
    assert await subscription_rows(push_server, user.id) == []


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (
            {"endpoint": "https://p.example.com/x\u0000", "keys": {"p256dh": "p", "auth": "a"}},
            "endpoint: must not contain NUL characters",
        ),
        (
            {"endpoint": "https://p.example.com/x", "keys": {"p256dh": "p\u0000", "auth": "a"}},
            "keys.p256dh: must not contain NUL characters",
        ),
        (
            {"endpoint": "https://p.example.com/x", "keys": {"p256dh": "p", "auth": "\u0000"}},
            "keys.auth: must not contain NUL characters",
        ),
        (
            {
                "endpoint": "https://p.example.com/x",
                "keys": {"p256dh": "p", "auth": "a"},
                "deviceInfo": "Firefox\u0000",
            },
            "deviceInfo: must not contain NUL characters",
        ),
    ],
)
async def test_subscribe_refuses_nul_characters(
    push_server: Server, client: httpx.AsyncClient, user: SignedIn, body: Any, details: str
) -> None:
    # PostgreSQL cannot store NUL: this used to fail in the database with 500 (Q46)
    response = await client.post("/api/push/subscribe", json=body)
    assert response.status_code == 400
    assert response.json() == validation(details)
    assert await subscription_rows(push_server, user.id) == []


async def test_unsubscribe_of_an_endpoint_with_nul_matches_nothing(
    push_server: Server, client: httpx.AsyncClient, user: SignedIn
) -> None:
    body = {"endpoint": "https://push.example.com/kept", "keys": {"p256dh": "p", "auth": "a"}}
    assert (await client.post("/api/push/subscribe", json=body)).status_code == 201
    response = await client.request(
        "DELETE", "/api/push/subscribe", json={"endpoint": body["endpoint"] + "\u0000"}
    )
    assert (response.status_code, response.json()) == (200, {"ok": True})
    assert len(await subscription_rows(push_server, user.id)) == 1


async def test_unsubscribe_removes_only_the_callers_row(
    push_server: Server, client: httpx.AsyncClient, user: SignedIn
) -> None:
    other = await sign_up(push_server.url)
    body = {"endpoint": "https://push.example.com/shared", "keys": {"p256dh": "p", "auth": "a"}}
    async with authed_client(push_server.url, other) as other_client:
        assert (await other_client.post("/api/push/subscribe", json=body)).status_code == 201
    assert (await client.post("/api/push/subscribe", json=body)).status_code == 201
    response = await client.request(
        "DELETE", "/api/push/subscribe", json={"endpoint": body["endpoint"]}
    )
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert await subscription_rows(push_server, user.id) == []
    assert len(await subscription_rows(push_server, other.id)) == 1
    # nothing matched: still ok
    response = await client.request(
        "DELETE", "/api/push/subscribe", json={"endpoint": body["endpoint"]}
    )
    assert (response.status_code, response.json()) == (200, {"ok": True})


@pytest.mark.parametrize("body", [{}, {"endpoint": ""}, {"endpoint": None}, {"endpoint": 0}])
async def test_unsubscribe_needs_an_endpoint(client: httpx.AsyncClient, body: Any) -> None:
    response = await client.request("DELETE", "/api/push/subscribe", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": "endpoint is required"}


async def test_unsubscribe_invalid_bodies(client: httpx.AsyncClient) -> None:
    response = await client.request("DELETE", "/api/push/subscribe")
    assert response.status_code == 400
    assert response.json() == validation("body: must be an object")
    response = await client.request("DELETE", "/api/push/subscribe", json={"endpoint": 5})
    assert response.status_code == 400
    assert response.json() == validation("endpoint: must be a string")


# --- delivery ----------------------------------------------------------------------


async def subscribe(client: httpx.AsyncClient, subscription: dict[str, Any]) -> None:
    response = await client.post("/api/push/subscribe", json=subscription)
    assert response.status_code == 201, response.text


async def test_delivery_is_encrypted_signed_and_removes_gone_subscriptions(
    push_server: Server,
    push_service: LocalPushService,
    client: httpx.AsyncClient,
    user: SignedIn,
) -> None:
    for name, status in [
        ("phone", 201),
        ("laptop", 201),
        ("gone", 410),
        ("unknown", 404),
        ("down", 500),
    ]:
        await subscribe(client, push_service.subscription(name, status=status))
    content = "Hello! " + "x" * 150
    conversation_id = "6f1c2a4e-0000-4000-8000-000000000001"
    task = push_of(push_server).send_message_notification(
        user.id, "Bot 🤖", conversation_id, content
    )
    assert task is not None
    report = await task
    expected = {
        "type": "message",
        "title": "Bot 🤖",
        "body": content[:100] + "…",
        "url": f"/chat/{conversation_id}",
    }
    for name in ("phone", "laptop", "gone", "unknown", "down"):
        (delivery,) = push_service.received(name)
        assert delivery.payload == expected
        assert delivery.headers["ttl"] == "2419200"
        assert delivery.headers["content-encoding"] == "aes128gcm"
        assert delivery.claims["sub"] == SUBJECT
        assert delivery.claims["aud"] == push_service.origin
    assert (report.sent, len(report.removed), report.failed) == (2, 2, 1)
    endpoints = sorted(
        row["endpoint"].rsplit("/", 1)[1] for row in await subscription_rows(push_server, user.id)
    )
    assert endpoints == ["down", "laptop", "phone"]


async def test_short_content_is_not_truncated(
    push_server: Server, push_service: LocalPushService, client: httpx.AsyncClient, user: SignedIn
) -> None:
    await subscribe(client, push_service.subscription("one"))
    content = "é" * 100
    task = push_of(push_server).send_message_notification(user.id, "A", "c", content)
    assert task is not None
    await task
    assert push_service.received("one")[0].payload["body"] == content


async def test_sending_never_blocks_and_concurrency_is_bounded(
    push_server: Server, push_service: LocalPushService, client: httpx.AsyncClient, user: SignedIn
) -> None:
    count = MAX_CONCURRENT_SENDS + 8
    for i in range(count):
        await subscribe(client, push_service.subscription(f"slow{i}", delay_s=0.3))
    started = time.monotonic()
    task = push_of(push_server).send_message_notification(user.id, "A", "c", "hi")
    assert time.monotonic() - started < 0.05
    assert task is not None and not task.done()
    # the server keeps answering while deliveries are in flight
    response = await client.get("/api/notifications/preferences")
    assert response.status_code == 200
    report = await task
    assert report.sent == count
    assert push_service.max_in_flight == MAX_CONCURRENT_SENDS


async def test_unreachable_or_unusable_subscriptions_are_ignored(
    push_server: Server, push_service: LocalPushService, client: httpx.AsyncClient, user: SignedIn
) -> None:
    await subscribe(client, push_service.subscription("fine"))
    await subscribe(
        client,
        {"endpoint": "http://127.0.0.1:9/nothing-listens", "keys": {"p256dh": "p", "auth": "a"}},
    )
    await subscribe(
        client,
        {
            "endpoint": "https://push.example.com/bad-keys",
            "keys": {"p256dh": "bad", "auth": "worse"},
        },
    )
    task = push_of(push_server).send_message_notification(user.id, "A", "c", "hi")
    assert task is not None
    report = await task
    assert (report.sent, report.removed, report.failed) == (1, [], 2)
    assert len(await subscription_rows(push_server, user.id)) == 3


async def test_private_push_endpoints_are_refused_by_default(
    start_server: StartServer, push_service: LocalPushService
) -> None:
    srv = await start_server(vapid_public_key=VAPID_PUBLIC, vapid_private_key=VAPID_PRIVATE)
    user = await sign_up(srv.url)
    async with authed_client(srv.url, user) as c:
        await subscribe(c, push_service.subscription("internal"))
    task = push_of(srv).send_message_notification(user.id, "A", "c", "hi")
    assert task is not None
    report = await task
    assert (report.sent, report.failed) == (0, 1)
    assert push_service.requests == 0


async def test_no_delivery_without_vapid_keys(server: Server) -> None:
    assert server.state.push.send_message_notification("u", "A", "c", "hi") is None


# --- statements per request / delivery ----------------------------------------------


async def test_statements_do_not_grow_with_subscriptions(
    push_server: Server, push_service: LocalPushService, client: httpx.AsyncClient, user: SignedIn
) -> None:
    """Statements are counted process-wide (a new pool connection adds its own set-up
    statements), so steady-state numbers are the minimum of a few runs."""
    counter = push_server.state.queries

    async def statements_for_subscribe(name: str) -> int:
        before = counter.count
        await subscribe(client, push_service.subscription(name))
        return counter.count - before

    async def one_delivery() -> int:
        before = counter.count
        task = push_of(push_server).send_message_notification(user.id, "A", "c", "hi")
        assert task is not None
        await task
        return counter.count - before

    async def statements_for_delivery() -> int:
        return min([await one_delivery() for _ in range(3)])

    await statements_for_subscribe("warm-up")  # the session is cached from here on
    first = min([await statements_for_subscribe(f"s{i}") for i in range(3)])
    one = await statements_for_delivery()
    for i in range(3, 20):
        await subscribe(client, push_service.subscription(f"s{i}"))
    assert min([await statements_for_subscribe(f"t{i}") for i in range(3)]) == first
    assert await statements_for_delivery() == one
    # the gone ones are deleted in one statement, whatever their number (the first
    # deletion also introspects the uuid[] type once: a warm-up)
    await subscribe(client, push_service.subscription("gone-warm-up", status=410))
    await one_delivery()
    costs = []
    for count in (1, 12):
        for i in range(count):
            await subscribe(client, push_service.subscription(f"gone{count}-{i}", status=410))
        costs.append(await one_delivery())
    assert costs[0] == costs[1] <= one + 2
