"""Reaction routes (contract rest.md §3.8, behaviours.md §7): idempotent add, grouped list
limited to the caller's messages (quirk Q23), remove with the emoji decoded once (Q24)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.http.conversations_fixtures import (
    ISO_RX,
    UNAUTHORIZED,
    UNKNOWN_ID,
    UUID_RX,
    Chat,
    add_messages,
    anonymous,  # noqa: F401 - fixture
    chat,  # noqa: F401 - fixture
    chat_server,  # noqa: F401 - fixture
    other,  # noqa: F401 - fixture
    validation,
)

MESSAGE_NOT_FOUND = {"error": "Message not found"}
REACTION_NOT_FOUND = {"error": "Reaction not found"}


async def a_message(user: Chat) -> str:
    conversation = await user.direct(await user.agent())
    (message,) = await add_messages(user.db, conversation, 1)
    return message


async def react(user: Chat, message: str, emoji: str) -> httpx.Response:
    return await user.client.post(f"/api/messages/{message}/reactions", json={"emoji": emoji})


async def listed(user: Chat, message: str) -> Any:
    response = await user.client.get(f"/api/messages/{message}/reactions")
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", f"/api/messages/{UNKNOWN_ID}/reactions", {"emoji": "x"}),
        ("GET", f"/api/messages/{UNKNOWN_ID}/reactions", None),
        ("DELETE", f"/api/messages/{UNKNOWN_ID}/reactions/x", None),
    ],
)
async def test_every_route_needs_a_session(
    anonymous: httpx.AsyncClient,  # noqa: F811
    method: str,
    path: str,
    body: Any,
) -> None:
    response = await anonymous.request(method, path, json=body)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


# --- POST /api/messages/:messageId/reactions ------------------------------------------------


async def test_add_is_idempotent(chat: Chat) -> None:  # noqa: F811
    message = await a_message(chat)
    first = await react(chat, message, "👍")
    assert first.status_code == 201
    body = first.json()
    assert list(body) == ["id", "messageId", "userId", "emoji", "createdAt"]
    assert UUID_RX.fullmatch(body["id"])
    assert ISO_RX.fullmatch(body["createdAt"])
    assert body == {
        "id": body["id"],
        "messageId": message,
        "userId": chat.id,
        "emoji": "👍",
        "createdAt": body["createdAt"],
    }
    again = await react(chat, message.upper(), "👍")
    assert again.status_code == 201
    assert again.json() == {"messageId": message, "userId": chat.id, "emoji": "👍"}
    assert (
        await chat.db.fetchval(
            "SELECT count(*) FROM message_reactions WHERE message_id = $1::uuid", message
        )
        == 1
    )


@pytest.mark.parametrize("message", [UNKNOWN_ID, "garbage"])
async def test_add_to_an_unknown_message(chat: Chat, message: str) -> None:  # noqa: F811
    response = await react(chat, message, "👍")
    assert response.status_code == 404
    assert response.json() == MESSAGE_NOT_FOUND


async def test_add_to_another_users_message_is_forbidden(
    chat: Chat,  # noqa: F811
    other: Chat,  # noqa: F811
) -> None:
    theirs = await a_message(other)
    response = await react(chat, theirs, "👍")
    assert response.status_code == 403
    assert response.json() == {"error": "Forbidden"}
    assert (
        await other.db.fetchval(
            "SELECT count(*) FROM message_reactions WHERE message_id = $1::uuid", theirs
        )
        == 0
    )


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({}, "emoji: is required"),
        ({"emoji": ""}, "emoji: must not be empty"),
        ({"emoji": "x" * 33}, "emoji: must be at most 32 characters long"),
        # 17 emoji are 34 UTF-16 code units: zod counted them like JavaScript does
        ({"emoji": "😀" * 17}, "emoji: must be at most 32 characters long"),
        ({"emoji": 5}, "emoji: must be a string"),
        ({"emoji": "a\x00"}, "emoji: must not contain NUL characters"),
        ([], "body: must be an object"),
    ],
)
async def test_add_rejects_invalid_bodies(
    chat: Chat,  # noqa: F811
    body: Any,
    details: str,
) -> None:
    message = await a_message(chat)
    response = await chat.client.post(f"/api/messages/{message}/reactions", json=body)
    assert response.status_code == 400
    assert response.json() == validation(details)


async def test_add_checks_the_body_before_the_message(chat: Chat) -> None:  # noqa: F811
    response = await chat.client.post(f"/api/messages/{UNKNOWN_ID}/reactions", json={})
    assert response.status_code == 400
    assert response.json() == validation("emoji: is required")


async def test_add_accepts_16_emoji(chat: Chat) -> None:  # noqa: F811
    message = await a_message(chat)
    response = await react(chat, message, "😀" * 16)
    assert response.status_code == 201
    assert response.json()["emoji"] == "😀" * 16


# --- GET /api/messages/:messageId/reactions -------------------------------------------------


async def test_list_groups_by_emoji(chat: Chat) -> None:  # noqa: F811
    message = await a_message(chat)
    assert await listed(chat, message) == []
    for emoji in ("👍", "🎉", "1"):
        assert (await react(chat, message, emoji)).status_code == 201
    assert await listed(chat, message) == [
        {"emoji": "👍", "count": 1, "userReacted": True},
        {"emoji": "🎉", "count": 1, "userReacted": True},
        {"emoji": "1", "count": 1, "userReacted": True},
    ]


async def test_list_hides_other_users_messages(
    chat: Chat,  # noqa: F811
    other: Chat,  # noqa: F811
) -> None:
    """Quirk Q23: the original listed any message's reactions to anyone."""
    theirs = await a_message(other)
    assert (await react(other, theirs, "👍")).status_code == 201
    assert await listed(other, theirs) == [{"emoji": "👍", "count": 1, "userReacted": True}]
    assert await listed(chat, theirs) == []


@pytest.mark.parametrize("message", [UNKNOWN_ID, "garbage"])
async def test_list_of_an_unknown_message_is_empty(chat: Chat, message: str) -> None:  # noqa: F811
    assert await listed(chat, message) == []


# --- DELETE /api/messages/:messageId/reactions/:emoji ----------------------------------------


async def test_remove_a_reaction(chat: Chat) -> None:  # noqa: F811
    message = await a_message(chat)
    await react(chat, message, "👍")
    await react(chat, message, "🎉")
    url = f"/api/messages/{message}/reactions/{quote('👍')}"
    response = await chat.client.delete(url)
    assert response.status_code == 204
    assert response.content == b""
    assert await listed(chat, message) == [{"emoji": "🎉", "count": 1, "userReacted": True}]
    again = await chat.client.delete(url)
    assert again.status_code == 404
    assert again.json() == REACTION_NOT_FOUND


@pytest.mark.parametrize("emoji", ["100%", "%F0%9F%91%8D", "a b", "+1", "%"])
async def test_remove_decodes_the_emoji_once(chat: Chat, emoji: str) -> None:  # noqa: F811
    """Quirk Q24: the original decoded twice (a literal % answered 500; "%F0%9F%91%8D"
    sent encoded matched 👍 instead of itself)."""
    message = await a_message(chat)
    await react(chat, message, emoji)
    await react(chat, message, "👍")
    response = await chat.client.delete(f"/api/messages/{message}/reactions/{quote(emoji)}")
    assert response.status_code == 204
    assert await listed(chat, message) == [{"emoji": "👍", "count": 1, "userReacted": True}]


async def test_remove_only_touches_the_callers_reactions(
    chat: Chat,  # noqa: F811
    other: Chat,  # noqa: F811
) -> None:
    theirs = await a_message(other)
    await react(other, theirs, "👍")
    response = await chat.client.delete(f"/api/messages/{theirs}/reactions/{quote('👍')}")
    assert response.status_code == 404
    assert response.json() == REACTION_NOT_FOUND
    assert await listed(other, theirs) == [{"emoji": "👍", "count": 1, "userReacted": True}]


@pytest.mark.parametrize(
    "path",
    [
        f"/api/messages/{UNKNOWN_ID}/reactions/x",
        "/api/messages/garbage/reactions/x",
        f"/api/messages/{UNKNOWN_ID}/reactions/%00",
    ],
)
async def test_remove_unknown(chat: Chat, path: str) -> None:  # noqa: F811
    response = await chat.client.delete(path)
    assert response.status_code == 404
    assert response.json() == REACTION_NOT_FOUND


async def test_reactions_go_with_their_message(chat: Chat) -> None:  # noqa: F811
    conversation = await chat.direct(await chat.agent())
    (message,) = await add_messages(chat.db, conversation, 1)
    await react(chat, message, "👍")
    response = await chat.client.delete(f"/api/conversations/{conversation}/messages/{message}")
    assert response.status_code == 204
    assert (
        await chat.db.fetchval(
            "SELECT count(*) FROM message_reactions WHERE message_id = $1::uuid", message
        )
        == 0
    )
