"""Agents REST routes (contract rest.md §3.3): exact bodies, errors, ownership, side effects."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from arinova.server import Server
from tests.http.agents_fixtures import (
    User,
    add_conversation,
    agent_server,  # noqa: F401 - fixture
    db_connect,
    guarded_server,  # noqa: F401 - fixture
    new_user,
)
from tests.support.ws import agent_socket, close_of
from tests.test_outbound import LocalTarget

AGENT_KEYS = [
    "id",
    "name",
    "description",
    "avatarUrl",
    "a2aEndpoint",
    "secretToken",
    "ownerId",
    "isPublic",
    "category",
    "usageCount",
    "systemPrompt",
    "welcomeMessage",
    "quickReplies",
    "notificationsEnabled",
    "createdAt",
    "updatedAt",
]
ISO_RX = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
TOKEN_RX = re.compile(r"ari_[0-9a-f]{48}")
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
NOT_FOUND = {"error": "Agent not found"}
UNAUTHORIZED = {"error": "Unauthorized"}


def validation(details: str) -> dict[str, str]:
    return {"error": "Validation error", "code": "VALIDATION_ERROR", "details": details}


@pytest.fixture
async def owner(agent_server: Server) -> User:  # noqa: F811
    return await new_user(agent_server)


@pytest.fixture
async def client(agent_server: Server, owner: User) -> Any:  # noqa: F811
    async with owner.client(agent_server) as c:
        yield c


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/agents", json={"name": "Helper", **body})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


# --- authentication ----------------------------------------------------------------

ROUTES = [
    ("POST", "/api/agents"),
    ("GET", "/api/agents"),
    ("GET", f"/api/agents/{UNKNOWN_ID}"),
    ("GET", "/api/agents/not-a-uuid"),
    ("PUT", f"/api/agents/{UNKNOWN_ID}"),
    ("DELETE", f"/api/agents/{UNKNOWN_ID}"),
    ("GET", f"/api/agents/{UNKNOWN_ID}/skills"),
    ("POST", f"/api/agents/{UNKNOWN_ID}/regenerate-token"),
    ("GET", f"/api/agents/{UNKNOWN_ID}/stats"),
    ("DELETE", f"/api/agents/{UNKNOWN_ID}/history"),
    ("GET", f"/api/agents/{UNKNOWN_ID}/export"),
    ("GET", f"/api/agents/{UNKNOWN_ID}/health"),
    ("GET", "/api/agents/health"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_needs_a_session(
    agent_server: Server,  # noqa: F811
    method: str,
    path: str,
) -> None:
    async with httpx.AsyncClient(base_url=agent_server.url) as anonymous:
        response = await anonymous.request(method, path)
        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED
        forged = {"Cookie": "better-auth.session_token=abc.def"}
        response = await anonymous.request(method, path, headers=forged)
        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED


# --- create ------------------------------------------------------------------------


async def test_create_returns_the_full_agent(client: httpx.AsyncClient, owner: User) -> None:
    response = await client.post(
        "/api/agents",
        json={
            "name": "Helper",
            "description": "Answers questions",
            "a2aEndpoint": "https://agent.example.com/card",
            "ownerId": "someone-else",
            "isPublic": True,
            "usageCount": 99,
        },
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    agent = response.json()
    assert list(agent) == AGENT_KEYS
    assert TOKEN_RX.fullmatch(agent["secretToken"])
    assert ISO_RX.fullmatch(agent["createdAt"])
    assert agent["updatedAt"] == agent["createdAt"]
    assert agent == {
        "id": agent["id"],
        "name": "Helper",
        "description": "Answers questions",
        "avatarUrl": None,
        "a2aEndpoint": "https://agent.example.com/card",
        "secretToken": agent["secretToken"],
        "ownerId": owner.id,
        "isPublic": False,
        "category": None,
        "usageCount": 0,
        "systemPrompt": None,
        "welcomeMessage": None,
        "quickReplies": None,
        "notificationsEnabled": True,
        "createdAt": agent["createdAt"],
        "updatedAt": agent["createdAt"],
    }


async def test_create_with_name_only_and_fresh_tokens(client: httpx.AsyncClient) -> None:
    first, second = await create(client), await create(client)
    assert first["description"] is None and first["a2aEndpoint"] is None
    assert first["secretToken"] != second["secretToken"]
    assert first["id"] != second["id"]
    assert (await create(client, name="x" * 100))["name"] == "x" * 100


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({}, "name: is required"),
        ({"name": ""}, "name: must not be empty"),
        ({"name": "x" * 101}, "name: must be at most 100 characters long"),
        ({"name": "😀" * 51}, "name: must be at most 100 characters long"),
        ({"name": 5}, "name: must be a string"),
        ({"name": None}, "name: must not be null"),
        ({"name": "a\u0000b"}, "name: must not contain NUL characters"),
        (
            {"name": "a", "description": "d" * 501},
            "description: must be at most 500 characters long",
        ),
        ({"name": "a", "description": None}, "description: must not be null"),
        ({"name": "a", "a2aEndpoint": "not a url"}, "a2aEndpoint: must be a valid URL"),
        ({"name": "a", "a2aEndpoint": None}, "a2aEndpoint: must not be null"),
        ([], "body: must be an object"),
        ("text", "body: must be an object"),
    ],
)
async def test_create_rejects_invalid_bodies(
    client: httpx.AsyncClient, body: Any, details: str
) -> None:
    response = await client.post("/api/agents", json=body)
    assert response.status_code == 400
    assert response.json() == validation(details)


async def test_create_without_body_or_with_bad_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/agents")
    assert response.status_code == 400
    assert response.json() == validation("body: must be an object")
    response = await client.post(
        "/api/agents", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "Body is not valid JSON but content-type is set to 'application/json'",
        "code": "INTERNAL_ERROR",
    }


# --- list and get ------------------------------------------------------------------


async def test_list_is_own_agents_oldest_first(
    agent_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/api/agents")).json() == []
    made = [await create(client, name=f"agent {i}") for i in range(3)]
    other = await new_user(agent_server)
    async with other.client(agent_server) as other_client:
        await create(other_client, name="not yours")
    response = await client.get("/api/agents")
    assert response.status_code == 200
    assert response.json() == made


async def test_get_returns_the_agent(client: httpx.AsyncClient) -> None:
    agent = await create(client, description="d")
    response = await client.get(f"/api/agents/{agent['id']}")
    assert response.status_code == 200
    assert response.json() == agent
    upper = await client.get(f"/api/agents/{agent['id'].upper()}")
    assert upper.json() == agent


@pytest.mark.parametrize(
    "agent_id",
    [UNKNOWN_ID, "not-a-uuid", "1234", "x" * 100, "%20", "00000000-0000-4000-8000-00000000000g"],
)
async def test_get_unknown_or_malformed_id_is_not_found(
    client: httpx.AsyncClient, agent_id: str
) -> None:
    for path in (
        f"/api/agents/{agent_id}",
        f"/api/agents/{agent_id}/stats",
        f"/api/agents/{agent_id}/skills",
        f"/api/agents/{agent_id}/export",
        f"/api/agents/{agent_id}/health",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json() == NOT_FOUND, path
    for method, path in (
        ("DELETE", f"/api/agents/{agent_id}"),
        ("DELETE", f"/api/agents/{agent_id}/history"),
        ("POST", f"/api/agents/{agent_id}/regenerate-token"),
    ):
        response = await client.request(method, path)
        assert response.status_code == 404, path
        assert response.json() == NOT_FOUND, path
    response = await client.put(f"/api/agents/{agent_id}", json={"name": "n"})
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


async def test_id_longer_than_100_characters_matches_no_route(client: httpx.AsyncClient) -> None:
    path = "/api/agents/" + "x" * 101
    response = await client.get(path)
    assert response.status_code == 404
    assert response.json() == {
        "message": f"Route GET:{path} not found",
        "error": "Not Found",
        "statusCode": 404,
    }


async def test_empty_id_segment_is_not_found(client: httpx.AsyncClient) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = await client.request(method, "/api/agents/")
        assert response.status_code == 404, method
    assert (await client.get("/api/agents//stats")).status_code == 404


async def test_another_users_agent_is_not_found_everywhere(
    agent_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
) -> None:
    agent = await create(client, name="mine")
    intruder = await new_user(agent_server)
    async with (
        agent_socket(agent_server, agent["secretToken"]) as bot,
        intruder.client(agent_server) as other,
    ):
        for method, suffix in (
            ("GET", ""),
            ("DELETE", ""),
            ("GET", "/skills"),
            ("POST", "/regenerate-token"),
            ("GET", "/stats"),
            ("DELETE", "/history"),
            ("GET", "/export"),
            ("GET", "/export?format=markdown"),
            ("GET", "/health"),
        ):
            response = await other.request(method, f"/api/agents/{agent['id']}{suffix}")
            assert response.status_code == 404, suffix
            assert response.json() == NOT_FOUND, suffix
        response = await other.put(f"/api/agents/{agent['id']}", json={"name": "stolen"})
        assert response.status_code == 404
        assert response.json() == NOT_FOUND
        # the agent's socket was not closed by any of it
        await bot.send('{"type":"ping"}')
        assert await bot.recv() == '{"type":"pong"}'
    assert (await client.get(f"/api/agents/{agent['id']}")).json() == agent


# --- update ------------------------------------------------------------------------


async def test_update_writes_only_the_given_fields(client: httpx.AsyncClient) -> None:
    agent = await create(client, description="before", a2aEndpoint="https://a.example/")
    await asyncio.sleep(0.01)
    replies = [{"label": "Hi", "message": "Hello there"}, {"label": "Bye", "message": "Bye!"}]
    response = await client.put(
        f"/api/agents/{agent['id']}",
        json={
            "systemPrompt": "Be nice",
            "welcomeMessage": "Welcome!",
            "quickReplies": [{**replies[0], "extra": 1}, replies[1]],
            "notificationsEnabled": False,
            "isPublic": True,
            "category": "tools",
            "avatarUrl": "anything at all",
            "secretToken": "ari_hijack",
            "ownerId": "someone",
        },
    )
    assert response.status_code == 200
    updated = response.json()
    assert list(updated) == AGENT_KEYS
    assert updated["updatedAt"] > agent["updatedAt"]
    assert updated == {
        **agent,
        "systemPrompt": "Be nice",
        "welcomeMessage": "Welcome!",
        "quickReplies": replies,
        "notificationsEnabled": False,
        "isPublic": True,
        "category": "tools",
        "avatarUrl": "anything at all",
        "updatedAt": updated["updatedAt"],
    }
    assert (await client.get(f"/api/agents/{agent['id']}")).json() == updated


async def test_update_null_clears_and_empty_body_only_touches_updated_at(
    client: httpx.AsyncClient,
) -> None:
    agent = await create(client, description="d", a2aEndpoint="https://a.example/")
    await client.put(
        f"/api/agents/{agent['id']}",
        json={"quickReplies": [{"label": "a", "message": "b"}], "category": "c"},
    )
    response = await client.put(
        f"/api/agents/{agent['id']}",
        json={
            "name": "Renamed",
            "description": None,
            "a2aEndpoint": None,
            "quickReplies": None,
            "category": None,
            "avatarUrl": None,
        },
    )
    cleared = response.json()
    assert cleared["name"] == "Renamed"
    for key in ("description", "a2aEndpoint", "quickReplies", "category", "avatarUrl"):
        assert cleared[key] is None, key
    await asyncio.sleep(0.01)
    touched = (await client.put(f"/api/agents/{agent['id']}", json={})).json()
    assert touched == {**cleared, "updatedAt": touched["updatedAt"]}
    assert touched["updatedAt"] > cleared["updatedAt"]


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"name": None}, "name: must not be null"),
        ({"name": ""}, "name: must not be empty"),
        ({"description": "d" * 501}, "description: must be at most 500 characters long"),
        ({"a2aEndpoint": "nope"}, "a2aEndpoint: must be a valid URL"),
        ({"avatarUrl": 3}, "avatarUrl: must be a string"),
        ({"systemPrompt": "p" * 4001}, "systemPrompt: must be at most 4000 characters long"),
        ({"welcomeMessage": "w" * 1001}, "welcomeMessage: must be at most 1000 characters long"),
        ({"quickReplies": {}}, "quickReplies: must be an array"),
        (
            {"quickReplies": [{"label": "a", "message": "b"}] * 11},
            "quickReplies: must contain at most 10 item(s)",
        ),
        (
            {"quickReplies": [{"label": "", "message": "b"}]},
            "quickReplies[0].label: must not be empty",
        ),
        ({"quickReplies": [{"label": "a"}]}, "quickReplies[0].message: is required"),
        (
            {"quickReplies": [{"label": "a", "message": "m" * 501}]},
            "quickReplies[0].message: must be at most 500 characters long",
        ),
        ({"notificationsEnabled": None}, "notificationsEnabled: must not be null"),
        ({"notificationsEnabled": "yes"}, "notificationsEnabled: must be a boolean"),
        ({"isPublic": 1}, "isPublic: must be a boolean"),
        ({"category": "c" * 51}, "category: must be at most 50 characters long"),
        ([], "body: must be an object"),
    ],
)
async def test_update_rejects_invalid_bodies(
    client: httpx.AsyncClient, body: Any, details: str
) -> None:
    agent = await create(client)
    response = await client.put(f"/api/agents/{agent['id']}", json=body)
    assert response.status_code == 400
    assert response.json() == validation(details)
    assert (await client.get(f"/api/agents/{agent['id']}")).json() == agent
    # the body is checked before the id, as in the original
    response = await client.put(f"/api/agents/{UNKNOWN_ID}", json=body)
    assert response.status_code == 400


async def test_update_without_body(client: httpx.AsyncClient) -> None:
    agent = await create(client)
    response = await client.put(f"/api/agents/{agent['id']}")
    assert response.status_code == 400
    assert response.json() == validation("body: must be an object")


# --- skills ------------------------------------------------------------------------


async def test_skills_declared_on_the_socket_come_first(
    agent_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
) -> None:
    target = LocalTarget()
    await target.start()
    try:
        card = target.route("/card", 200, b'{"skills":[{"id":"card","name":"Card"}]}')
        agent = await create(client, a2aEndpoint=card)
        declared = [{"id": "s1", "name": "Search", "description": "Finds things"}]
        async with agent_socket(agent_server, agent["secretToken"], skills=declared):
            response = await client.get(f"/api/agents/{agent['id']}/skills")
        assert response.status_code == 200
        assert response.json() == {"skills": declared}
        assert target.seen == []
        # connected but declared nothing: the card is asked
        async with agent_socket(agent_server, agent["secretToken"]):
            response = await client.get(f"/api/agents/{agent['id']}/skills")
        assert response.json() == {"skills": [{"id": "card", "name": "Card", "description": ""}]}
        assert target.seen[0][1]["accept"] == "application/json"
    finally:
        await target.stop()


@pytest.mark.parametrize(
    ("status", "card", "skills"),
    [
        (
            200,
            b'{"name":"x","skills":[{"id":"a","name":"A","description":"Does A","tags":[1]},'
            b'{"id":"b","name":"B","description":null},{"name":"no id"},7]}',
            [
                {"id": "a", "name": "A", "description": "Does A"},
                {"id": "b", "name": "B", "description": ""},
                {"name": "no id", "description": ""},
                {"description": ""},
            ],
        ),
        (200, b'{"name":"no skills"}', []),
        (200, b'{"skills":null}', []),
        (200, b'{"skills":"nope"}', []),
        (200, b'{"skills":[{"id":"a","name":"A"},null]}', []),
        (200, b"[1,2]", []),
        (200, b"not json", []),
        (200, b"", []),
        (500, b'{"skills":[{"id":"a","name":"A"}]}', []),
    ],
)
async def test_skills_from_the_a2a_card(
    client: httpx.AsyncClient, status: int, card: bytes, skills: list[dict[str, Any]]
) -> None:
    target = LocalTarget()
    await target.start()
    try:
        agent = await create(client, a2aEndpoint=target.route("/card", status, card))
        response = await client.get(f"/api/agents/{agent['id']}/skills")
        assert response.status_code == 200
        assert response.json() == {"skills": skills}
    finally:
        await target.stop()


async def test_skills_without_endpoint_or_unreachable(client: httpx.AsyncClient) -> None:
    agent = await create(client)
    assert (await client.get(f"/api/agents/{agent['id']}/skills")).json() == {"skills": []}
    closed = LocalTarget()
    await closed.start()
    await closed.stop()
    agent = await create(client, a2aEndpoint=closed.url("/card"))
    assert (await client.get(f"/api/agents/{agent['id']}/skills")).json() == {"skills": []}


async def test_skills_card_on_a_private_address_is_not_fetched(
    guarded_server: Server,  # noqa: F811
) -> None:
    """By default loopback targets are refused (SSRF, quirk Q30)."""
    target = LocalTarget()
    await target.start()
    user = await new_user(guarded_server)
    try:
        async with user.client(guarded_server) as c:
            card = target.route("/card", 200, b'{"skills":[{"id":"a","name":"A"}]}')
            agent = await create(c, a2aEndpoint=card)
            response = await c.get(f"/api/agents/{agent['id']}/skills")
            assert response.json() == {"skills": []}
            assert target.seen == []
    finally:
        await target.stop()


# --- regenerate token --------------------------------------------------------------


async def test_regenerate_token_replaces_it_and_closes_the_socket(
    agent_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
) -> None:
    agent = await create(client)
    async with agent_socket(agent_server, agent["secretToken"]) as bot:
        await asyncio.sleep(0.01)
        response = await client.post(f"/api/agents/{agent['id']}/regenerate-token")
        assert await close_of(bot) == (4409, "Token regenerated")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["secretToken"]
    assert TOKEN_RX.fullmatch(body["secretToken"])
    assert body["secretToken"] != agent["secretToken"]
    after = (await client.get(f"/api/agents/{agent['id']}")).json()
    assert after["secretToken"] == body["secretToken"]
    assert after["updatedAt"] > agent["updatedAt"]
    assert not agent_server.state.realtime.agent_connected(agent["id"])
    conn = await db_connect(agent_server)
    try:
        old = await conn.fetchval(
            "SELECT count(*) FROM agents WHERE secret_token = $1", agent["secretToken"]
        )
        assert old == 0
    finally:
        await conn.close()


# --- stats -------------------------------------------------------------------------


async def test_stats_without_conversations(client: httpx.AsyncClient) -> None:
    agent = await create(client)
    response = await client.get(f"/api/agents/{agent['id']}/stats")
    assert response.status_code == 200
    assert response.json() == {"totalMessages": 0, "totalConversations": 0, "lastActive": None}


async def test_stats_count_the_callers_direct_conversations(
    agent_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
    owner: User,
) -> None:
    """Quirk Q54 fixed: the original answered 500 as soon as one conversation existed."""
    agent = await create(client)
    other_agent = await create(client, name="other")
    stranger = await new_user(agent_server)
    conn = await db_connect(agent_server)
    try:
        await add_conversation(conn, owner.id, agent["id"])
        response = await client.get(f"/api/agents/{agent['id']}/stats")
        assert response.json() == {
            "totalMessages": 0,
            "totalConversations": 1,
            "lastActive": None,
        }
        await add_conversation(
            conn,
            owner.id,
            agent["id"],
            messages=[
                ("user", "hi", "2026-02-20T09:15:03.123456Z"),
                ("agent", "hello", "2026-02-20T09:15:04.987654Z"),
            ],
        )
        await add_conversation(
            conn, owner.id, agent["id"], messages=[("user", "x", "2026-01-01T00:00:00Z")]
        )
        await add_conversation(
            conn, owner.id, other_agent["id"], messages=[("user", "x", "2027-01-01T00:00:00Z")]
        )
        await add_conversation(
            conn, stranger.id, agent["id"], messages=[("user", "x", "2027-01-01T00:00:00Z")]
        )
    finally:
        await conn.close()
    response = await client.get(f"/api/agents/{agent['id']}/stats")
    assert response.status_code == 200
    assert response.json() == {
        "totalMessages": 3,
        "totalConversations": 3,
        "lastActive": "2026-02-20T09:15:04.987Z",
    }


# --- history -----------------------------------------------------------------------


async def test_delete_history_removes_only_the_callers_conversations_with_the_agent(
    agent_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
    owner: User,
) -> None:
    agent = await create(client)
    other_agent = await create(client, name="other")
    stranger = await new_user(agent_server)
    conn = await db_connect(agent_server)
    try:
        mine = [
            await add_conversation(
                conn, owner.id, agent["id"], messages=[("user", "a", "2026-01-01T00:00:00Z")]
            )
            for _ in range(2)
        ]
        keep = await add_conversation(conn, owner.id, other_agent["id"])
        theirs = await add_conversation(conn, stranger.id, agent["id"])
        response = await client.delete(f"/api/agents/{agent['id']}/history")
        assert response.status_code == 204
        assert response.content == b""
        remaining = {
            str(r["id"])
            for r in await conn.fetch(
                "SELECT id FROM conversations WHERE id = ANY($1::uuid[])", [*mine, keep, theirs]
            )
        }
        assert remaining == {keep, theirs}
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM messages WHERE conversation_id = ANY($1::uuid[])", mine
            )
            == 0
        )
    finally:
        await conn.close()
    assert (await client.get(f"/api/agents/{agent['id']}")).status_code == 200
    stats = (await client.get(f"/api/agents/{agent['id']}/stats")).json()
    assert stats == {"totalMessages": 0, "totalConversations": 0, "lastActive": None}


# --- delete ------------------------------------------------------------------------


async def _group_with(conn: Any, user_id: str, agent_ids: list[str]) -> str:
    group_id = str(
        await conn.fetchval(
            "INSERT INTO conversations (title, type, user_id) VALUES ('g', 'group', $1)"
            " RETURNING id",
            user_id,
        )
    )
    for agent_id in agent_ids:
        await conn.execute(
            "INSERT INTO conversation_members (conversation_id, agent_id)"
            " VALUES ($1::uuid, $2::uuid)",
            group_id,
            agent_id,
        )
    return group_id


async def _channel_for(conn: Any, user_id: str, agent_id: str) -> str:
    community = await conn.fetchval(
        "INSERT INTO communities (name, owner_id) VALUES ('c', $1) RETURNING id", user_id
    )
    return str(
        await conn.fetchval(
            "INSERT INTO channels (community_id, name, agent_id) VALUES ($1, 'ch', $2::uuid)"
            " RETURNING id",
            community,
            agent_id,
        )
    )


async def test_delete_removes_the_agent_and_everything_that_points_at_it(
    agent_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
    owner: User,
) -> None:
    agent = await create(client)
    friend = await create(client, name="friend")
    socket = agent_socket(agent_server, agent["secretToken"])
    bot = await socket.__aenter__()
    await agent_server.state.kv.set(f"agent:health:{agent['id']}", b"{}", ex=60)
    conn = await db_connect(agent_server)
    try:
        direct = await add_conversation(
            conn, owner.id, agent["id"], messages=[("user", "a", "2026-01-01T00:00:00Z")]
        )
        group = await _group_with(conn, owner.id, [agent["id"], friend["id"]])
        channel = await _channel_for(conn, owner.id, agent["id"])

        response = await client.delete(f"/api/agents/{agent['id']}")
        assert response.status_code == 204
        assert response.content == b""
        assert await close_of(bot) == (4410, "Agent deleted")

        assert await conn.fetchval("SELECT count(*) FROM conversations WHERE id = $1", direct) == 0
        assert await conn.fetchval("SELECT count(*) FROM conversations WHERE id = $1", group) == 1
        members = await conn.fetch(
            "SELECT agent_id FROM conversation_members WHERE conversation_id = $1", group
        )
        assert [str(m["agent_id"]) for m in members] == [friend["id"]]
        assert await conn.fetchval("SELECT agent_id FROM channels WHERE id = $1", channel) is None
    finally:
        await conn.close()
        await socket.__aexit__(None, None, None)
    assert not agent_server.state.realtime.agent_connected(agent["id"])
    assert await agent_server.state.kv.get(f"agent:health:{agent['id']}") is None
    response = await client.get(f"/api/agents/{agent['id']}")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    response = await client.delete(f"/api/agents/{agent['id']}")
    assert response.status_code == 404
    assert (await client.get(f"/api/agents/{friend['id']}")).status_code == 200


async def test_delete_is_all_or_nothing(
    agent_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
    owner: User,
) -> None:
    """A conversation committed while the delete runs makes it fail as a whole (Q21)."""
    agent = await create(client)
    friend = await create(client, name="friend")
    conn = await db_connect(agent_server)
    racer = await db_connect(agent_server)
    try:
        group = await _group_with(conn, owner.id, [agent["id"], friend["id"]])
        direct = await add_conversation(conn, owner.id, agent["id"])
        racing = racer.transaction()
        await racing.start()
        await racer.execute(
            "INSERT INTO conversations (type, user_id, agent_id) VALUES ('direct', $1, $2::uuid)",
            owner.id,
            agent["id"],
        )
        deleting = asyncio.create_task(client.delete(f"/api/agents/{agent['id']}"))
        await asyncio.sleep(0.3)
        assert not deleting.done()  # waits for the racing transaction
        await racing.commit()
        response = await deleting
        assert response.status_code == 500
        assert response.json() == {"error": "Internal server error", "code": "INTERNAL_ERROR"}
        # nothing of the first steps stayed done
        members = await conn.fetchval(
            "SELECT count(*) FROM conversation_members WHERE conversation_id = $1", group
        )
        assert members == 2
        assert await conn.fetchval("SELECT count(*) FROM conversations WHERE id = $1", direct) == 1
    finally:
        await conn.close()
        await racer.close()
    assert (await client.get(f"/api/agents/{agent['id']}")).status_code == 200


# --- query bounds ------------------------------------------------------------------


async def test_list_runs_a_fixed_number_of_queries(
    agent_server: Server,  # noqa: F811
) -> None:
    counter = agent_server.state.queries

    async def cost(user: User) -> int:
        async with user.client(agent_server) as c:
            await c.get("/api/agents")  # warm the session cache
            before = counter.count
            response = await c.get("/api/agents")
            assert response.status_code == 200
            return counter.count - before

    one, many = await new_user(agent_server), await new_user(agent_server)
    conn = await db_connect(agent_server)
    try:
        for user, n in ((one, 1), (many, 200)):
            await conn.executemany(
                "INSERT INTO agents (name, owner_id) VALUES ($1, $2)",
                [(f"a{i}", user.id) for i in range(n)],
            )
    finally:
        await conn.close()
    assert await cost(one) == await cost(many) <= 2
