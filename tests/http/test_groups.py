"""Group conversation routes (contract rest.md §3.6): create in one transaction (quirk Q21),
members list/add/remove, exact bodies, errors and ownership."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.http.conversations_fixtures import (
    CONVERSATION_KEYS,
    CONVERSATION_NOT_FOUND,
    ISO_RX,
    T0,
    UNAUTHORIZED,
    UNKNOWN_ID,
    UUID_RX,
    Chat,
    add_group,
    anonymous,  # noqa: F401 - fixture
    chat,  # noqa: F401 - fixture
    chat_server,  # noqa: F401 - fixture
    iso,
    other,  # noqa: F401 - fixture
    validation,
)

NOT_OWNED = {"error": "One or more agents not found or not owned by you"}
MEMBER_KEYS = ["id", "conversationId", "agentId", "addedAt"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/conversations/group", {"title": "t", "agentIds": [UNKNOWN_ID]}),
        ("GET", f"/api/conversations/{UNKNOWN_ID}/members", None),
        ("POST", f"/api/conversations/{UNKNOWN_ID}/members", {"agentId": UNKNOWN_ID}),
        ("DELETE", f"/api/conversations/{UNKNOWN_ID}/members/{UNKNOWN_ID}", None),
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


async def group_count(user: Chat) -> int:
    count: int = await user.db.fetchval(
        "SELECT count(*) FROM conversations WHERE user_id = $1 AND type = 'group'", user.id
    )
    return count


# --- POST /api/conversations/group --------------------------------------------------------


async def test_create_a_group_with_its_members(chat: Chat) -> None:  # noqa: F811
    ada, bob, cy = await chat.agent("Ada"), await chat.agent("Bob"), await chat.agent("Cy")
    response = await chat.client.post(
        "/api/conversations/group", json={"title": "Team", "agentIds": [cy, ada.upper(), bob]}
    )
    assert response.status_code == 201
    body = response.json()
    assert list(body) == [*CONVERSATION_KEYS, "members"]
    assert UUID_RX.fullmatch(body["id"])
    assert ISO_RX.fullmatch(body["createdAt"])
    assert body == {
        "id": body["id"],
        "title": "Team",
        "type": "group",
        "userId": chat.id,
        "agentId": None,
        "pinnedAt": None,
        "createdAt": body["createdAt"],
        "updatedAt": body["createdAt"],
        "members": body["members"],
    }
    assert [list(m) for m in body["members"]] == [MEMBER_KEYS] * 3
    assert [m["agentId"] for m in body["members"]] == [cy, ada, bob]
    assert {m["conversationId"] for m in body["members"]} == {body["id"]}
    assert all(ISO_RX.fullmatch(m["addedAt"]) for m in body["members"])
    listed = (await chat.client.get(f"/api/conversations/{body['id']}/members")).json()
    assert sorted(m["id"] for m in listed) == sorted(m["id"] for m in body["members"])


@pytest.mark.parametrize("case", ["foreign", "unknown", "duplicate"])
async def test_create_with_agents_that_are_not_all_own_creates_nothing(
    chat: Chat,  # noqa: F811
    other: Chat,  # noqa: F811
    case: str,
) -> None:
    mine = await chat.agent()
    extra = {
        "foreign": await other.agent(),
        "unknown": UNKNOWN_ID,
        "duplicate": mine,
    }[case]
    response = await chat.client.post(
        "/api/conversations/group", json={"title": "Team", "agentIds": [mine, extra]}
    )
    assert response.status_code == 400
    assert response.json() == NOT_OWNED
    assert await group_count(chat) == 0


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"agentIds": [UNKNOWN_ID]}, "title: is required"),
        ({"title": "", "agentIds": [UNKNOWN_ID]}, "title: must not be empty"),
        (
            {"title": "x" * 201, "agentIds": [UNKNOWN_ID]},
            "title: must be at most 200 characters long",
        ),
        ({"title": "t"}, "agentIds: is required"),
        ({"title": "t", "agentIds": []}, "agentIds: must contain at least 1 item(s)"),
        ({"title": "t", "agentIds": UNKNOWN_ID}, "agentIds: must be an array"),
        ({"title": "t", "agentIds": [UNKNOWN_ID, "nope"]}, "agentIds[1]: must be a UUID"),
        ({"title": None, "agentIds": [UNKNOWN_ID]}, "title: must not be null"),
        ([], "body: must be an object"),
    ],
)
async def test_create_rejects_invalid_bodies(
    chat: Chat,  # noqa: F811
    body: Any,
    details: str,
) -> None:
    response = await chat.client.post("/api/conversations/group", json=body)
    assert response.status_code == 400
    assert response.json() == validation(details)
    assert await group_count(chat) == 0


async def test_create_is_one_transaction_even_when_a_member_insert_fails(
    chat: Chat,  # noqa: F811
) -> None:
    """Quirk Q21: the original inserted the conversation, then the members, separately."""
    agent = await chat.agent()
    # a trigger that fails every member insert of this agent (the database is the test's own)
    await chat.db.execute(
        f"""
        CREATE FUNCTION refuse_member() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.agent_id = '{agent}'::uuid THEN RAISE EXCEPTION 'refused'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_member BEFORE INSERT ON conversation_members
            FOR EACH ROW EXECUTE FUNCTION refuse_member();
        """
    )
    try:
        response = await chat.client.post(
            "/api/conversations/group", json={"title": "Team", "agentIds": [agent]}
        )
    finally:
        await chat.db.execute(
            "DROP TRIGGER refuse_member ON conversation_members; DROP FUNCTION refuse_member();"
        )
    assert response.status_code == 500
    assert response.json() == {"error": "Internal server error", "code": "INTERNAL_ERROR"}
    assert await group_count(chat) == 0


async def test_create_costs_the_same_queries_for_1_and_50_agents(chat: Chat) -> None:  # noqa: F811
    agents = [await chat.agent(f"A{n}") for n in range(50)]
    for n, chosen in enumerate((agents[:1], agents)):
        body = {"title": f"g{n}", "agentIds": chosen}
        await chat.client.get("/api/conversations/00000000-0000-0000-0000-000000000000")
        response, count = await chat.counted("POST", "/api/conversations/group", json=body)
        assert response.status_code == 201
        assert len(response.json()["members"]) == len(chosen)
        assert count <= 2, count


# --- GET /api/conversations/:id/members ----------------------------------------------------


async def test_members_with_agent_fields(chat: Chat) -> None:  # noqa: F811
    ada = await chat.agent("Ada", description="Math", avatar_url="/uploads/avatars/ada.png")
    bob = await chat.agent("Bob")
    group = await add_group(chat.db, chat.id, "Team", [ada, bob])
    response = await chat.client.get(f"/api/conversations/{group}/members")
    assert response.status_code == 200
    body = response.json()
    assert [list(m) for m in body] == [
        [*MEMBER_KEYS, "agentName", "agentDescription", "agentAvatarUrl"]
    ] * 2
    assert [
        (
            m["agentId"],
            m["agentName"],
            m["agentDescription"],
            m["agentAvatarUrl"],
            m["addedAt"],
            m["conversationId"],
        )
        for m in body
    ] == [
        (ada, "Ada", "Math", "/uploads/avatars/ada.png", iso(T0), group),
        (bob, "Bob", None, None, iso(T0.replace(second=T0.second + 1)), group),
    ]


async def test_members_of_a_direct_or_empty_conversation(chat: Chat) -> None:  # noqa: F811
    direct = await chat.direct(await chat.agent())
    empty = await add_group(chat.db, chat.id, "Nobody", [])
    for conversation in (direct, empty):
        response = await chat.client.get(f"/api/conversations/{conversation}/members")
        assert response.status_code == 200
        assert response.json() == []


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_member_routes_of_unknown_malformed_or_foreign_conversations(
    chat: Chat,  # noqa: F811
    other: Chat,  # noqa: F811
    method: str,
) -> None:
    agent = await chat.agent()
    foreign = await add_group(other.db, other.id, "Theirs", [await other.agent()])
    for conversation in (UNKNOWN_ID, "garbage", foreign):
        path = f"/api/conversations/{conversation}/members"
        if method == "DELETE":
            path += f"/{agent}"
        body = {"agentId": agent} if method == "POST" else None
        response = await chat.client.request(method, path, json=body)
        assert response.status_code == 404, conversation
        assert response.json() == CONVERSATION_NOT_FOUND
    assert (
        await other.db.fetchval(
            "SELECT count(*) FROM conversation_members WHERE conversation_id = $1::uuid", foreign
        )
        == 1
    )


# --- POST /api/conversations/:id/members ---------------------------------------------------


async def test_add_a_member(chat: Chat) -> None:  # noqa: F811
    ada, bob = await chat.agent("Ada"), await chat.agent("Bob")
    group = await add_group(chat.db, chat.id, "Team", [ada])
    response = await chat.client.post(f"/api/conversations/{group}/members", json={"agentId": bob})
    assert response.status_code == 201
    body = response.json()
    assert list(body) == MEMBER_KEYS
    assert UUID_RX.fullmatch(body["id"])
    assert ISO_RX.fullmatch(body["addedAt"])
    assert (body["conversationId"], body["agentId"]) == (group, bob)
    names = [
        m["agentName"]
        for m in (await chat.client.get(f"/api/conversations/{group}/members")).json()
    ]
    assert names == ["Ada", "Bob"]


async def test_add_member_errors_in_order(chat: Chat, other: Chat) -> None:  # noqa: F811
    ada, bob = await chat.agent("Ada"), await chat.agent("Bob")
    group = await add_group(chat.db, chat.id, "Team", [ada])
    direct = await chat.direct(ada)
    foreign_agent = await other.agent()

    async def add(conversation: str, agent: str) -> httpx.Response:
        return await chat.client.post(
            f"/api/conversations/{conversation}/members", json={"agentId": agent}
        )

    cases = [
        (
            await add(direct, foreign_agent),
            400,
            {"error": "Cannot add members to a direct conversation"},
        ),
        (await add(group, foreign_agent), 404, {"error": "Agent not found"}),
        (await add(group, UNKNOWN_ID), 404, {"error": "Agent not found"}),
        (await add(group, ada), 409, {"error": "Agent is already a member of this group"}),
        (await add(group, ada.upper()), 409, {"error": "Agent is already a member of this group"}),
    ]
    for response, status, body in cases:
        assert (response.status_code, response.json()) == (status, body)
    assert [
        m["agentId"] for m in (await chat.client.get(f"/api/conversations/{group}/members")).json()
    ] == [ada]
    assert (await add(group, bob)).status_code == 201


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({}, "agentId: is required"),
        ({"agentId": "nope"}, "agentId: must be a UUID"),
        ({"agentId": None}, "agentId: must not be null"),
        ("x", "body: must be an object"),
    ],
)
async def test_add_member_rejects_invalid_bodies(
    chat: Chat,  # noqa: F811
    body: Any,
    details: str,
) -> None:
    group = await add_group(chat.db, chat.id, "Team", [])
    response = await chat.client.post(f"/api/conversations/{group}/members", json=body)
    assert response.status_code == 400
    assert response.json() == validation(details)


async def test_concurrent_adds_of_one_agent_make_one_member(chat: Chat) -> None:  # noqa: F811
    agent = await chat.agent()
    group = await add_group(chat.db, chat.id, "Team", [])
    responses = await asyncio.gather(
        *(
            chat.client.post(f"/api/conversations/{group}/members", json={"agentId": agent})
            for _ in range(8)
        )
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    assert (
        await chat.db.fetchval(
            "SELECT count(*) FROM conversation_members WHERE conversation_id = $1::uuid", group
        )
        == 1
    )


# --- DELETE /api/conversations/:id/members/:agentId ------------------------------------------


async def test_remove_a_member(chat: Chat) -> None:  # noqa: F811
    ada, bob = await chat.agent("Ada"), await chat.agent("Bob")
    group = await add_group(chat.db, chat.id, "Team", [ada, bob])
    response = await chat.client.delete(f"/api/conversations/{group}/members/{ada}")
    assert response.status_code == 204
    assert response.content == b""
    members = (await chat.client.get(f"/api/conversations/{group}/members")).json()
    assert [m["agentId"] for m in members] == [bob]
    again = await chat.client.delete(f"/api/conversations/{group}/members/{ada}")
    assert again.status_code == 404
    assert again.json() == {"error": "Member not found in group"}


async def test_remove_member_errors(chat: Chat) -> None:  # noqa: F811
    ada = await chat.agent("Ada")
    group = await add_group(chat.db, chat.id, "Team", [ada])
    direct = await chat.direct(ada)
    cases = [
        (direct, ada, 400, {"error": "Cannot remove members from a direct conversation"}),
        (direct, "garbage", 400, {"error": "Cannot remove members from a direct conversation"}),
        (group, UNKNOWN_ID, 404, {"error": "Member not found in group"}),
        (group, "garbage", 404, {"error": "Member not found in group"}),
    ]
    for conversation, agent, status, body in cases:
        response = await chat.client.delete(f"/api/conversations/{conversation}/members/{agent}")
        assert (response.status_code, response.json()) == (status, body), (conversation, agent)
    assert len((await chat.client.get(f"/api/conversations/{group}/members")).json()) == 1
