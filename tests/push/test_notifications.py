"""Notification preferences (rest.md §3.11) and the push trigger's decision
(websocket.md §10, decisions Q34/Q35): the pure rules, and the whole trigger against the
real database and the shared key-value store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from arinova.push.policy import (
    MessagePushFacts,
    Preferences,
    in_quiet_hours,
    local_minutes,
    message_push_allowed,
)
from arinova.server import Server
from tests.support.auth import SignedIn, authed_client, sign_up
from tests.support.push_service import new_vapid_keys
from tests.support.servers import StartServer

PATH = "/api/notifications/preferences"
DEFAULTS = {
    "globalEnabled": True,
    "messageEnabled": True,
    "playgroundInviteEnabled": True,
    "playgroundTurnEnabled": True,
    "playgroundResultEnabled": True,
    "quietHoursStart": None,
    "quietHoursEnd": None,
}


def validation(details: str) -> dict[str, str]:
    return {"error": "Validation error", "code": "VALIDATION_ERROR", "details": details}


@pytest.fixture(scope="module")
async def prefs_server(start_module_server: StartServer) -> Server:
    public, private = new_vapid_keys()
    return await start_module_server(vapid_public_key=public, vapid_private_key=private)


@pytest.fixture
async def user(prefs_server: Server) -> SignedIn:
    return await sign_up(prefs_server.url)


@pytest.fixture
async def client(prefs_server: Server, user: SignedIn) -> AsyncIterator[httpx.AsyncClient]:
    async with authed_client(prefs_server.url, user) as c:
        yield c


# --- REST ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_preferences_need_a_session(prefs_server: Server, method: str) -> None:
    async with httpx.AsyncClient(base_url=prefs_server.url) as anonymous:
        response = await anonymous.request(method, PATH, json=DEFAULTS)
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}


async def test_defaults_without_a_row(client: httpx.AsyncClient) -> None:
    response = await client.get(PATH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert list(response.json()) == list(DEFAULTS)
    assert response.json() == DEFAULTS


async def test_put_inserts_then_updates(client: httpx.AsyncClient) -> None:
    first = {
        **DEFAULTS,
        "messageEnabled": False,
        "quietHoursStart": "23:30",
        "quietHoursEnd": "07:00",
    }
    response = await client.put(PATH, json=first)
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert (await client.get(PATH)).json() == first
    second = {
        "globalEnabled": False,
        "messageEnabled": True,
        "playgroundInviteEnabled": False,
        "playgroundTurnEnabled": False,
        "playgroundResultEnabled": False,
        "quietHoursStart": None,
        "quietHoursEnd": "00:00",
        "extra": "ignored",
    }
    assert (await client.put(PATH, json=second)).json() == {"ok": True}
    stored = (await client.get(PATH)).json()
    assert list(stored) == list(DEFAULTS)
    assert stored == {k: v for k, v in second.items() if k != "extra"}


async def test_preferences_are_per_user(prefs_server: Server, client: httpx.AsyncClient) -> None:
    assert (await client.put(PATH, json={**DEFAULTS, "globalEnabled": False})).status_code == 200
    other = await sign_up(prefs_server.url)
    async with authed_client(prefs_server.url, other) as other_client:
        assert (await other_client.get(PATH)).json() == DEFAULTS


@pytest.mark.parametrize(
    ("change", "details"),
    [
        ({"globalEnabled": "true"}, "globalEnabled: must be a boolean"),
        ({"messageEnabled": 1}, "messageEnabled: must be a boolean"),
        ({"playgroundTurnEnabled": None}, "playgroundTurnEnabled: must not be null"),
        ({"quietHoursStart": "24:00"}, "quietHoursStart: Must be HH:mm format"),
        ({"quietHoursStart": "7:00"}, "quietHoursStart: Must be HH:mm format"),
        ({"quietHoursEnd": "12:60"}, "quietHoursEnd: Must be HH:mm format"),
        ({"quietHoursEnd": "12:00 "}, "quietHoursEnd: Must be HH:mm format"),
        ({"quietHoursEnd": 1200}, "quietHoursEnd: must be a string"),
    ],
)
async def test_put_validation(
    client: httpx.AsyncClient, change: dict[str, Any], details: str
) -> None:
    response = await client.put(PATH, json={**DEFAULTS, **change})
    assert response.status_code == 400
    assert response.json() == validation(details)
    assert (await client.get(PATH)).json() == DEFAULTS


@pytest.mark.parametrize("missing", list(DEFAULTS))
async def test_put_requires_every_key(client: httpx.AsyncClient, missing: str) -> None:
    body = {k: v for k, v in DEFAULTS.items() if k != missing}
    response = await client.put(PATH, json=body)
    assert response.status_code == 400
    assert response.json() == validation(f"{missing}: is required")


async def test_put_without_a_body(client: httpx.AsyncClient) -> None:
    response = await client.put(PATH)
    assert response.status_code == 400
    assert response.json() == validation("body: must be an object")


# --- the trigger's rules ------------------------------------------------------------


def facts(**changes: Any) -> MessagePushFacts:
    base: dict[str, Any] = {
        "foreground_sockets": 0,
        "muted": False,
        "agent_notifications_enabled": True,
        "preferences": None,
    }
    return MessagePushFacts(**{**base, **changes})


NOON = 12 * 60


@pytest.mark.parametrize(
    ("case", "allowed"),
    [
        (facts(), True),
        (facts(foreground_sockets=1), False),
        (facts(muted=True), False),
        (facts(agent_notifications_enabled=False), False),  # Q35 fix
        (facts(preferences=Preferences()), True),
        (facts(preferences=Preferences(global_enabled=False)), False),
        (facts(preferences=Preferences(message_enabled=False)), False),
        (facts(preferences=Preferences(playground_turn_enabled=False)), True),
        (facts(preferences=Preferences(quiet_hours_start="11:00", quiet_hours_end="13:00")), False),
        (facts(preferences=Preferences(quiet_hours_start="13:00", quiet_hours_end="11:00")), True),
        (facts(preferences=Preferences(quiet_hours_start="11:00")), True),
    ],
)
def test_message_push_rules(case: MessagePushFacts, allowed: bool) -> None:
    assert message_push_allowed(case, NOON) is allowed


@pytest.mark.parametrize(
    ("start", "end", "now", "quiet"),
    [
        ("09:00", "17:00", "09:00", True),
        ("09:00", "17:00", "16:59", True),
        ("09:00", "17:00", "17:00", False),
        ("09:00", "17:00", "08:59", False),
        ("23:00", "07:00", "23:00", True),
        ("23:00", "07:00", "00:00", True),
        ("23:00", "07:00", "06:59", True),
        ("23:00", "07:00", "07:00", False),
        ("23:00", "07:00", "12:00", False),
        ("08:00", "08:00", "08:00", False),  # equal bounds: never quiet
        (None, "08:00", "07:00", False),
        ("bad", "08:00", "07:00", False),
    ],
)
def test_quiet_hours(start: str | None, end: str | None, now: str, quiet: bool) -> None:
    minutes = int(now[:2]) * 60 + int(now[3:])
    assert in_quiet_hours(start, end, minutes) is quiet


def test_quiet_hours_use_the_process_clock() -> None:
    import time

    moment = time.localtime()
    assert local_minutes() in {
        moment.tm_hour * 60 + moment.tm_min,
        (moment.tm_hour * 60 + moment.tm_min + 1) % 1440,
    }


# --- the whole trigger, on the database and the shared store ------------------------


async def agent_and_conversation(client: httpx.AsyncClient) -> tuple[str, str]:
    agent = (await client.post("/api/agents", json={"name": "Notifier"})).json()
    response = await client.post("/api/conversations", json={"agentId": agent["id"]})
    assert response.status_code == 201, response.text
    return agent["id"], response.json()["id"]


async def test_trigger_reads_preferences_mute_agent_and_dedups(
    prefs_server: Server, client: httpx.AsyncClient, user: SignedIn
) -> None:
    push = prefs_server.state.push
    agent_id, conversation_id = await agent_and_conversation(client)

    async def should(foreground: int = 0, minutes: int = NOON) -> bool:
        return await push.should_send_message_push(
            user.id, conversation_id, agent_id, foreground, now_minutes=minutes
        )

    assert not await should(foreground=1)
    # quiet hours and switches decide before the de-dup window is claimed
    quiet = {**DEFAULTS, "quietHoursStart": "11:00", "quietHoursEnd": "13:00"}
    assert (await client.put(PATH, json=quiet)).status_code == 200
    assert not await should()
    assert (await client.put(PATH, json={**DEFAULTS, "messageEnabled": False})).status_code == 200
    assert not await should()
    assert (await client.put(PATH, json=DEFAULTS)).status_code == 200
    # the agent's switch (Q35)
    response = await client.put(f"/api/agents/{agent_id}", json={"notificationsEnabled": False})
    assert response.status_code == 200, response.text
    assert not await should()
    await client.put(f"/api/agents/{agent_id}", json={"notificationsEnabled": True})
    # a muted conversation
    response = await client.put(f"/api/conversations/{conversation_id}/mute", json={"muted": True})
    assert response.status_code == 200, response.text
    assert not await should()
    await client.put(f"/api/conversations/{conversation_id}/mute", json={"muted": False})
    # allowed once per 30 s per user, whichever conversation
    assert await should()
    assert not await should()
    _, second_conversation = await agent_and_conversation(client)
    assert not await push.should_send_message_push(
        user.id, second_conversation, agent_id, 0, now_minutes=NOON
    )
    # another user has a window of their own
    other = await sign_up(prefs_server.url)
    async with authed_client(prefs_server.url, other) as other_client:
        other_agent, other_conversation = await agent_and_conversation(other_client)
    assert await push.should_send_message_push(
        other.id, other_conversation, other_agent, 0, now_minutes=NOON
    )


async def test_dedup_window_is_shared_through_the_store(prefs_server: Server) -> None:
    push = prefs_server.state.push
    kv = prefs_server.state.kv
    user_id = "dedup-user"
    await kv.delete(f"push:dedup:{user_id}:message")
    assert await push.claim_dedup_window(user_id, "message")
    assert not await push.claim_dedup_window(user_id, "message")
    ttl = await kv.pttl(f"push:dedup:{user_id}:message")
    assert 25_000 < ttl <= 30_000
    assert await push.claim_dedup_window(user_id, "playground_turn")
    await kv.delete(f"push:dedup:{user_id}:message")  # the window ends
    assert await push.claim_dedup_window(user_id, "message")


async def test_notify_message_reply_triggers_and_delivers_in_the_background(
    prefs_server: Server, client: httpx.AsyncClient, user: SignedIn
) -> None:
    push = prefs_server.state.push
    agent_id, conversation_id = await agent_and_conversation(client)
    assert (
        push.notify_message_reply(user.id, agent_id, "Notifier", conversation_id, "hi", 1) is None
    )
    task = push.notify_message_reply(user.id, agent_id, "Notifier", conversation_id, "hi", 0)
    assert task is not None
    report = await task  # no subscriptions: nothing sent, nothing failed
    assert (report.sent, report.removed, report.failed) == (0, [], 0)
