"""Conversation routes (contract rest.md §3.5): exact bodies, errors, ownership, ordering,
query bounds."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from arinova.server import Server
from tests.http.conversations_fixtures import (
    CONVERSATION_KEYS,
    CONVERSATION_NOT_FOUND,
    ISO_RX,
    T0,
    UNAUTHORIZED,
    UNKNOWN_ID,
    UUID_RX,
    Chat,
    ProbeTarget,
    add_group,
    add_messages,
    anonymous,  # noqa: F401 - fixture
    chat,  # noqa: F401 - fixture
    chat_server,  # noqa: F401 - fixture
    iso,
    message_row,
    other,  # noqa: F401 - fixture
    validation,
)

# every route of the area, with a body that would be valid
ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/api/conversations", {"agentId": UNKNOWN_ID}),
    ("GET", "/api/conversations", None),
    ("GET", f"/api/conversations/{UNKNOWN_ID}", None),
    ("PUT", f"/api/conversations/{UNKNOWN_ID}", {"title": "x"}),
    ("DELETE", f"/api/conversations/{UNKNOWN_ID}", None),
    ("DELETE", f"/api/conversations/{UNKNOWN_ID}/messages", None),
    ("PUT", f"/api/conversations/{UNKNOWN_ID}/read", None),
    ("PUT", f"/api/conversations/{UNKNOWN_ID}/mute", {"muted": True}),
    ("GET", f"/api/conversations/{UNKNOWN_ID}/status", None),
]

# the routes that take a conversation id, with the id as a placeholder
ID_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/api/conversations/{id}", None),
    ("PUT", "/api/conversations/{id}", {"title": "x"}),
    ("DELETE", "/api/conversations/{id}", None),
    ("DELETE", "/api/conversations/{id}/messages", None),
    ("PUT", "/api/conversations/{id}/read", None),
    ("PUT", "/api/conversations/{id}/mute", {"muted": True}),
    ("GET", "/api/conversations/{id}/status", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_every_route_needs_a_session(
    anonymous: httpx.AsyncClient,  # noqa: F811
    method: str,
    path: str,
    body: Any,
) -> None:
    response = await anonymous.request(method, path, json=body)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


@pytest.mark.parametrize(("method", "path", "body"), ID_ROUTES)
@pytest.mark.parametrize("bad_id", [UNKNOWN_ID, "not-a-uuid", "1234", "x" * 100, "%20"])
async def test_unknown_and_malformed_ids_answer_not_found(
    chat: Chat,  # noqa: F811
    method: str,
    path: str,
    body: Any,
    bad_id: str,
) -> None:
    response = await chat.client.request(method, path.format(id=bad_id), json=body)
    assert response.status_code == 404
    assert response.json() == CONVERSATION_NOT_FOUND


@pytest.mark.parametrize(("method", "path", "body"), ID_ROUTES)
async def test_another_users_conversation_is_not_found_and_untouched(
    chat: Chat,  # noqa: F811
    other: Chat,  # noqa: F811
    method: str,
    path: str,
    body: Any,
) -> None:
    theirs = await other.direct(await other.agent(), "Private")
    await add_messages(other.db, theirs, 3)
    response = await chat.client.request(method, path.format(id=theirs), json=body)
    assert response.status_code == 404
    assert response.json() == CONVERSATION_NOT_FOUND
    row = await other.db.fetchrow(
        "SELECT title, pinned_at, updated_at, (SELECT count(*) FROM messages"
        " WHERE conversation_id = $1::uuid) AS n FROM conversations WHERE id = $1::uuid",
        theirs,
    )
    assert row is not None
    assert (row["title"], row["pinned_at"], row["updated_at"], row["n"]) == ("Private", None, T0, 3)
    assert await other.db.fetchval("SELECT count(*) FROM conversation_reads") == 0


async def test_an_empty_id_segment_is_an_unknown_route(chat: Chat) -> None:  # noqa: F811
    response = await chat.client.get("/api/conversations//status")
    assert response.status_code == 404
    assert response.json() == {
        "message": "Route GET:/api/conversations//status not found",
        "error": "Not Found",
        "statusCode": 404,
    }


# --- POST /api/conversations -------------------------------------------------------------


async def test_create_answers_201_with_the_conversation(chat: Chat) -> None:  # noqa: F811
    agent = await chat.agent()
    response = await chat.client.post(
        "/api/conversations", json={"agentId": agent, "title": "Planning", "extra": 1}
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert list(body) == CONVERSATION_KEYS
    assert UUID_RX.fullmatch(body["id"])
    assert ISO_RX.fullmatch(body["createdAt"])
    assert body == {
        "id": body["id"],
        "title": "Planning",
        "type": "direct",
        "userId": chat.id,
        "agentId": agent,
        "pinnedAt": None,
        "createdAt": body["createdAt"],
        "updatedAt": body["createdAt"],
    }
    # several conversations with one agent are allowed; the title is optional
    second = await chat.client.post("/api/conversations", json={"agentId": agent.upper()})
    assert second.status_code == 201
    assert second.json()["title"] is None
    assert second.json()["agentId"] == agent


async def test_create_with_another_users_or_an_unknown_agent_is_agent_not_found(
    chat: Chat,  # noqa: F811
    other: Chat,  # noqa: F811
) -> None:
    for agent in (await other.agent(), UNKNOWN_ID):
        response = await chat.client.post("/api/conversations", json={"agentId": agent})
        assert response.status_code == 404
        assert response.json() == {"error": "Agent not found"}
    assert (
        await chat.db.fetchval("SELECT count(*) FROM conversations WHERE user_id = $1", chat.id)
        == 0
    )


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({}, "agentId: is required"),
        ({"agentId": "abc"}, "agentId: must be a UUID"),
        ({"agentId": 5}, "agentId: must be a string"),
        ({"agentId": UNKNOWN_ID, "title": None}, "title: must not be null"),
        ({"agentId": UNKNOWN_ID, "title": "x" * 201}, "title: must be at most 200 characters long"),
        ({"agentId": UNKNOWN_ID, "title": "a\x00b"}, "title: must not contain NUL characters"),
        ([], "body: must be an object"),
        ("text", "body: must be an object"),
    ],
)
async def test_create_rejects_invalid_bodies(
    chat: Chat,  # noqa: F811
    body: Any,
    details: str,
) -> None:
    response = await chat.client.post("/api/conversations", json=body)
    assert response.status_code == 400
    assert response.json() == validation(details)


async def test_create_without_a_body_is_a_validation_error(chat: Chat) -> None:  # noqa: F811
    response = await chat.client.post("/api/conversations")
    assert response.status_code == 400
    assert response.json() == validation("body: must be an object")


# --- GET /api/conversations --------------------------------------------------------------


async def test_list_shape_with_agent_fields_and_last_message(chat: Chat) -> None:  # noqa: F811
    agent = await chat.agent("Ada", description="Math tutor", avatar_url="/uploads/avatars/a.png")
    direct = await chat.direct(agent, "Lessons")
    ids = await add_messages(chat.db, direct, 3)
    empty = await chat.direct(agent, None, updated_at=T0 - timedelta(days=1))

    response = await chat.client.get("/api/conversations")
    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body] == [direct, empty]
    assert list(body[0]) == [
        *CONVERSATION_KEYS,
        "agentName",
        "agentDescription",
        "agentAvatarUrl",
        "lastMessage",
    ]
    assert body[0] == {
        "id": direct,
        "title": "Lessons",
        "type": "direct",
        "userId": chat.id,
        "agentId": agent,
        "pinnedAt": None,
        "createdAt": iso(T0),
        "updatedAt": iso(T0),
        "agentName": "Ada",
        "agentDescription": "Math tutor",
        "agentAvatarUrl": "/uploads/avatars/a.png",
        "lastMessage": await message_row(chat.db, ids[-1]),
    }
    assert body[1]["lastMessage"] is None
    assert body[1]["title"] is None


async def test_list_group_rows_name_their_members(chat: Chat) -> None:  # noqa: F811
    ada, bob = await chat.agent("Ada", avatar_url="/a.png"), await chat.agent("Bob")
    await add_group(chat.db, chat.id, "Both", [ada, bob])
    await add_group(chat.db, chat.id, "Solo", [bob])
    await add_group(chat.db, chat.id, "Nobody", [])

    body = (await chat.client.get("/api/conversations")).json()
    described = {
        item["title"]: (item["agentName"], item["agentDescription"], item["agentAvatarUrl"])
        for item in body
    }
    assert described == {
        "Both": ("Ada, Bob", "2 agents", None),
        "Solo": ("Bob", "1 agent", None),
        "Nobody": ("Empty group", "0 agents", None),
    }
    assert {item["type"] for item in body} == {"group"}
    assert {item["agentId"] for item in body} == {None}


async def test_list_puts_pinned_first_then_most_recently_updated(chat: Chat) -> None:  # noqa: F811
    """Decision Q13 (the original put unpinned conversations first)."""
    agent = await chat.agent()
    hour = timedelta(hours=1)
    old = await chat.direct(agent, "old", updated_at=T0)
    new = await chat.direct(agent, "new", updated_at=T0 + hour)
    pinned_early = await chat.direct(agent, "p1", updated_at=T0 - hour, pinned_at=T0)
    pinned_late = await chat.direct(agent, "p2", updated_at=T0 - 2 * hour, pinned_at=T0 + hour)

    body = (await chat.client.get("/api/conversations")).json()
    assert [item["id"] for item in body] == [pinned_late, pinned_early, new, old]
    assert body[0]["pinnedAt"] == iso(T0 + hour)


async def test_list_last_message_is_the_highest_seq_and_ties_never_duplicate(
    chat: Chat,  # noqa: F811
) -> None:
    """Quirk Q14: two messages with the same created_at used to duplicate the row."""
    agent = await chat.agent()
    conversation = await chat.direct(agent)
    ids = await add_messages(chat.db, conversation, 4, step=timedelta(0))
    body = (await chat.client.get("/api/conversations")).json()
    assert len(body) == 1
    assert body[0]["lastMessage"]["id"] == ids[-1]
    assert body[0]["lastMessage"]["seq"] == 4


async def test_list_last_message_is_the_stored_text_even_while_streaming(
    chat: Chat,  # noqa: F811
) -> None:
    agent = await chat.agent()
    conversation = await chat.direct(agent)
    (reply,) = await add_messages(
        chat.db, conversation, 1, status="streaming", content=lambda _: ""
    )
    await chat.server.state.kv.set(f"stream:{reply}", "live text", ex=60)
    body = (await chat.client.get("/api/conversations")).json()
    assert body[0]["lastMessage"]["content"] == ""
    assert body[0]["lastMessage"]["status"] == "streaming"


async def test_list_shows_only_the_callers_conversations(
    chat: Chat,  # noqa: F811
    other: Chat,  # noqa: F811
) -> None:
    mine = await chat.direct(await chat.agent())
    await other.direct(await other.agent())
    body = (await chat.client.get("/api/conversations")).json()
    assert [item["id"] for item in body] == [mine]


async def test_list_search_matches_title_or_direct_agent_name(chat: Chat) -> None:  # noqa: F811
    ada, bob = await chat.agent("Ada Lovelace"), await chat.agent("Bob")
    by_title = await chat.direct(bob, "Weekly ADA sync", updated_at=T0 + timedelta(seconds=2))
    by_agent = await chat.direct(ada, "Notes", updated_at=T0 + timedelta(seconds=1))
    await chat.direct(bob, "Unrelated")
    group = await add_group(chat.db, chat.id, "Team", [ada])  # members' names do not count

    async def search(q: str) -> list[str]:
        response = await chat.client.get("/api/conversations", params={"q": q})
        assert response.status_code == 200
        return [item["id"] for item in response.json()]

    assert await search("ada") == [by_title, by_agent]
    assert await search("lovelace") == [by_agent]
    assert await search("team") == [group]
    assert await search("a_a") == [by_title, by_agent]  # ILIKE wildcards, as the original
    assert await search("nothing like it") == []
    assert await search("a\x00b") == []
    assert len(await search("")) == 4  # empty = no filter


async def test_list_costs_the_same_queries_for_1_and_200_conversations(
    chat: Chat,  # noqa: F811
) -> None:
    agent = await chat.agent()
    first = await chat.direct(agent)
    await add_messages(chat.db, first, 3)
    await add_group(chat.db, chat.id, "Group", [agent])
    await chat.client.get("/api/conversations")  # warm the connection's statement cache
    small, small_count = await chat.counted("GET", "/api/conversations")
    assert len(small.json()) == 2

    conversations = await chat.db.fetch(
        "INSERT INTO conversations (title, type, user_id, agent_id)"
        " SELECT 'c' || n, 'direct', $1, $2::uuid FROM generate_series(1, 198) n RETURNING id",
        chat.id,
        agent,
    )
    for row in conversations[:50]:
        await add_messages(chat.db, str(row["id"]), 10)
    for n in range(3):
        await add_group(chat.db, chat.id, f"g{n}", [agent])
    await chat.client.get("/api/conversations")
    large, large_count = await chat.counted("GET", "/api/conversations")
    assert len(large.json()) == 203
    assert len({item["id"] for item in large.json()}) == 203
    assert large_count == small_count
    assert large_count <= 2  # the session lookup (unless cached) and the list


# --- GET /api/conversations/:id ------------------------------------------------------------


async def test_get_answers_the_conversation(chat: Chat) -> None:  # noqa: F811
    agent = await chat.agent()
    conversation = await chat.direct(agent, "One", pinned_at=T0 + timedelta(minutes=5))
    response = await chat.client.get(f"/api/conversations/{conversation.upper()}")
    assert response.status_code == 200
    assert response.json() == {
        "id": conversation,
        "title": "One",
        "type": "direct",
        "userId": chat.id,
        "agentId": agent,
        "pinnedAt": iso(T0 + timedelta(minutes=5)),
        "createdAt": iso(T0),
        "updatedAt": iso(T0),
    }


# --- PUT /api/conversations/:id ------------------------------------------------------------


async def test_update_renames_pins_and_unpins(chat: Chat) -> None:  # noqa: F811
    conversation = await chat.direct(await chat.agent(), "Before")
    url = f"/api/conversations/{conversation}"

    renamed = await chat.client.put(url, json={"title": "After"})
    assert renamed.status_code == 200
    body = renamed.json()
    assert list(body) == CONVERSATION_KEYS
    assert (body["title"], body["pinnedAt"]) == ("After", None)
    assert body["updatedAt"] > iso(T0)  # any edit moves the conversation up

    pinned = (await chat.client.put(url, json={"pinned": True})).json()
    assert pinned["title"] == "After"
    assert ISO_RX.fullmatch(pinned["pinnedAt"])

    cleared = (await chat.client.put(url, json={"title": None, "pinned": False})).json()
    assert (cleared["title"], cleared["pinnedAt"]) == (None, None)

    await chat.client.put(url, json={"pinned": True})
    assert (await chat.client.put(url, json={"pinned": None})).json()["pinnedAt"] is None

    untouched = (await chat.client.put(url, json={})).json()
    assert (untouched["title"], untouched["pinnedAt"]) == (None, None)
    assert untouched["updatedAt"] >= cleared["updatedAt"]
    assert (await chat.client.get(url)).json() == untouched


@pytest.mark.parametrize(
    "truthy", ["yes", "false", "0", 1, -0.5, [], {}, {"a": 1}], ids=lambda value: repr(value)
)
@pytest.mark.parametrize("falsy", [0, 0.0, "", None, False], ids=lambda value: repr(value))
async def test_update_pins_on_any_truthy_value_and_unpins_on_any_falsy_one(
    chat: Chat,  # noqa: F811
    truthy: Any,
    falsy: Any,
) -> None:
    """The original tests ``pinned`` with JavaScript truthiness (rest.md)."""
    conversation = await chat.direct(await chat.agent(), "Flag")
    url = f"/api/conversations/{conversation}"
    pinned = await chat.client.put(url, json={"pinned": truthy})
    assert pinned.status_code == 200
    assert ISO_RX.fullmatch(pinned.json()["pinnedAt"])
    assert (await chat.client.get(url)).json()["pinnedAt"] == pinned.json()["pinnedAt"]
    unpinned = await chat.client.put(url, json={"pinned": falsy})
    assert unpinned.status_code == 200
    assert unpinned.json()["pinnedAt"] is None
    assert (await chat.client.get(url)).json()["pinnedAt"] is None


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"title": "x" * 201}, "title: must be at most 200 characters long"),
        ({"title": 7}, "title: must be a string"),
        ([], "body: must be an object"),
    ],
)
async def test_update_rejects_invalid_bodies(
    chat: Chat,  # noqa: F811
    body: Any,
    details: str,
) -> None:
    conversation = await chat.direct(await chat.agent(), "Kept")
    response = await chat.client.put(f"/api/conversations/{conversation}", json=body)
    assert response.status_code == 400
    assert response.json() == validation(details)
    row = await chat.db.fetchrow(
        "SELECT title, updated_at FROM conversations WHERE id = $1::uuid", conversation
    )
    assert row is not None
    assert (row["title"], row["updated_at"]) == ("Kept", T0)


async def test_update_without_a_body_is_a_validation_error(chat: Chat) -> None:  # noqa: F811
    conversation = await chat.direct(await chat.agent())
    response = await chat.client.put(f"/api/conversations/{conversation}")
    assert response.status_code == 400
    assert response.json() == validation("body: must be an object")


# --- DELETE /api/conversations/:id ---------------------------------------------------------


async def test_delete_removes_the_conversation_and_everything_in_it(chat: Chat) -> None:  # noqa: F811
    agent = await chat.agent()
    conversation = await chat.direct(agent)
    (message,) = await add_messages(chat.db, conversation, 1)
    await chat.db.execute(
        "INSERT INTO message_reactions (message_id, user_id, emoji) VALUES ($1::uuid, $2, 'x')",
        message,
        chat.id,
    )
    await chat.client.put(f"/api/conversations/{conversation}/read")

    response = await chat.client.delete(f"/api/conversations/{conversation}")
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
    for table, column in [
        ("conversations", "id"),
        ("messages", "conversation_id"),
        ("conversation_reads", "conversation_id"),
    ]:
        count = await chat.db.fetchval(
            f"SELECT count(*) FROM {table} WHERE {column} = $1::uuid", conversation
        )
        assert count == 0, table
    again = await chat.client.delete(f"/api/conversations/{conversation}")
    assert again.status_code == 404
    assert again.json() == CONVERSATION_NOT_FOUND


# --- DELETE /api/conversations/:id/messages --------------------------------------------------


async def test_clear_deletes_every_message_and_counts_them(chat: Chat) -> None:  # noqa: F811
    agent = await chat.agent()
    conversation = await chat.direct(agent)
    kept = await chat.direct(agent)
    await add_messages(chat.db, conversation, 7)
    await add_messages(chat.db, kept, 2)

    response = await chat.client.delete(f"/api/conversations/{conversation}/messages")
    assert response.status_code == 200
    assert response.json() == {"success": True, "deleted": 7}
    again = await chat.client.delete(f"/api/conversations/{conversation}/messages")
    assert again.json() == {"success": True, "deleted": 0}
    assert (
        await chat.db.fetchval(
            "SELECT count(*) FROM messages WHERE conversation_id = $1::uuid", kept
        )
        == 2
    )
    assert (await chat.client.get(f"/api/conversations/{conversation}")).status_code == 200


# --- PUT /api/conversations/:id/read -------------------------------------------------------


async def read_state(user: Chat, conversation: str) -> tuple[int, bool] | None:
    row = await user.db.fetchrow(
        "SELECT last_read_seq, muted FROM conversation_reads"
        " WHERE user_id = $1 AND conversation_id = $2::uuid",
        user.id,
        conversation,
    )
    return None if row is None else (row["last_read_seq"], row["muted"])


async def test_read_marks_up_to_the_newest_seq_and_never_moves_back(chat: Chat) -> None:  # noqa: F811
    conversation = await chat.direct(await chat.agent())
    url = f"/api/conversations/{conversation}/read"

    empty = await chat.client.put(url)
    assert empty.status_code == 200
    assert empty.json() == {"lastReadSeq": 0}
    assert await read_state(chat, conversation) == (0, False)

    await add_messages(chat.db, conversation, 5)
    assert (await chat.client.put(url, json={"ignored": True})).json() == {"lastReadSeq": 5}
    assert await read_state(chat, conversation) == (5, False)

    # after a clear, seq restarts (decision Q09): the answer is the current max, the
    # stored marker keeps its larger value
    await chat.client.delete(f"/api/conversations/{conversation}/messages")
    await add_messages(chat.db, conversation, 2)
    assert (await chat.client.put(url)).json() == {"lastReadSeq": 2}
    assert await read_state(chat, conversation) == (5, False)


# --- PUT /api/conversations/:id/mute -------------------------------------------------------


async def test_mute_and_unmute(chat: Chat) -> None:  # noqa: F811
    conversation = await chat.direct(await chat.agent())
    url = f"/api/conversations/{conversation}/mute"

    muted = await chat.client.put(url, json={"muted": True})
    assert muted.status_code == 200
    assert muted.json() == {"muted": True}
    assert await read_state(chat, conversation) == (0, True)

    await add_messages(chat.db, conversation, 3)
    await chat.client.put(f"/api/conversations/{conversation}/read")
    unmuted = await chat.client.put(url, json={"muted": False})
    assert unmuted.json() == {"muted": False}
    assert await read_state(chat, conversation) == (3, False)


@pytest.mark.parametrize(
    ("body", "details"),
    [
        # quirk Q55: the original stored false for all of these and echoed them with 200
        ({"muted": "true"}, "muted: must be a boolean"),
        ({"muted": "yes"}, "muted: must be a boolean"),
        ({"muted": 1}, "muted: must be a boolean"),
        ({"muted": {}}, "muted: must be a boolean"),
        ({"muted": None}, "muted: must not be null"),
        ({}, "muted: is required"),
        ([True], "body: must be an object"),
        (True, "body: must be an object"),
    ],
)
async def test_mute_accepts_only_a_boolean(
    chat: Chat,  # noqa: F811
    body: Any,
    details: str,
) -> None:
    conversation = await chat.direct(await chat.agent())
    await chat.client.put(f"/api/conversations/{conversation}/mute", json={"muted": True})
    response = await chat.client.put(f"/api/conversations/{conversation}/mute", json=body)
    assert response.status_code == 400
    assert response.json() == validation(details)
    assert await read_state(chat, conversation) == (0, True)


async def test_mute_with_a_text_body_or_no_body_is_a_validation_error(chat: Chat) -> None:  # noqa: F811
    url = f"/api/conversations/{await chat.direct(await chat.agent())}/mute"
    no_body = await chat.client.put(url)
    text = await chat.client.put(url, content=b"true", headers={"content-type": "text/plain"})
    for response in (no_body, text):
        assert response.status_code == 400
        assert response.json() == validation("body: must be an object")


async def test_mute_checks_the_body_before_the_id(chat: Chat) -> None:  # noqa: F811
    response = await chat.client.put(f"/api/conversations/{UNKNOWN_ID}/mute", json={"muted": 1})
    assert response.status_code == 400
    assert response.json() == validation("muted: must be a boolean")


# --- GET /api/conversations/:id/status ------------------------------------------------------


async def status_of(user: Chat, conversation: str) -> dict[str, Any]:
    response = await user.client.get(f"/api/conversations/{conversation}/status")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_status_of_a_direct_conversation_without_endpoint(chat: Chat) -> None:  # noqa: F811
    agent = await chat.agent("Ada")
    conversation = await chat.direct(agent, "Chat")
    await add_messages(chat.db, conversation, 4)
    assert await status_of(chat, conversation) == {
        "conversation": {
            "id": conversation,
            "title": "Chat",
            "type": "direct",
            "createdAt": iso(T0),
            "messageCount": 4,
        },
        "agent": {
            "id": agent,
            "name": "Ada",
            "a2aEndpoint": None,
            "status": "offline",
            "latencyMs": None,
        },
    }


async def test_status_of_a_group_has_no_agent(chat: Chat) -> None:  # noqa: F811
    group = await add_group(chat.db, chat.id, "Team", [await chat.agent()])
    body = await status_of(chat, group)
    assert body["agent"] is None
    assert body["conversation"]["type"] == "group"
    assert body["conversation"]["messageCount"] == 0


async def test_status_probes_the_endpoint_live(chat: Chat) -> None:  # noqa: F811
    async with ProbeTarget() as target:
        healthy = await chat.agent("Up", a2a_endpoint=target.url(204))
        failing = await chat.agent("Down", a2a_endpoint=target.url(500))
        unreachable = await chat.agent("Gone", a2a_endpoint="http://127.0.0.1:9/")
        up = (await status_of(chat, await chat.direct(healthy)))["agent"]
        down = (await status_of(chat, await chat.direct(failing)))["agent"]
        gone = (await status_of(chat, await chat.direct(unreachable)))["agent"]
    assert up["status"] == "online"
    assert isinstance(up["latencyMs"], int)
    assert up["a2aEndpoint"] == target.url(204)
    assert down["status"] == "error"
    assert isinstance(down["latencyMs"], int)
    assert (gone["status"], gone["latencyMs"]) == ("offline", None)


async def test_status_reports_a_socket_connected_agent_online(
    chat: Chat,  # noqa: F811
    chat_server: Server,  # noqa: F811
) -> None:
    """Decision Q22: the original only probed the endpoint."""
    from tests.support.ws import agent_socket

    agent = await chat.agent("Socket", a2a_endpoint="http://127.0.0.1:9/")
    conversation = await chat.direct(agent)
    token = await chat.db.fetchval(
        "UPDATE agents SET secret_token = 'ari_status_' || id::text WHERE id = $1::uuid"
        " RETURNING secret_token",
        agent,
    )
    async with agent_socket(chat_server, token):
        body = await status_of(chat, conversation)
    assert body["agent"]["status"] == "online"
    assert body["agent"]["latencyMs"] == 0


async def test_concurrent_reads_and_mutes_keep_one_row(chat: Chat) -> None:  # noqa: F811
    conversation = await chat.direct(await chat.agent())
    await add_messages(chat.db, conversation, 2)
    responses = await asyncio.gather(
        *(chat.client.put(f"/api/conversations/{conversation}/read") for _ in range(5)),
        *(
            chat.client.put(f"/api/conversations/{conversation}/mute", json={"muted": True})
            for _ in range(5)
        ),
    )
    assert {r.status_code for r in responses} == {200}
    assert await read_state(chat, conversation) == (2, True)
