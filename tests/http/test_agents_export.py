"""GET /api/agents/:id/export (rest.md §3.3, behaviours.md §10, quirks Q08 and Q47)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from arinova.server import Server
from tests.http.agents_fixtures import (
    User,
    add_conversation,
    agent_server,  # noqa: F401 - fixture
    db_connect,
    new_user,
)

ISO_RX = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
async def owner(agent_server: Server) -> User:  # noqa: F811
    return await new_user(agent_server)


@pytest.fixture
async def client(agent_server: Server, owner: User) -> Any:  # noqa: F811
    async with owner.client(agent_server) as c:
        yield c


@pytest.fixture
def process_tz() -> Iterator[Any]:
    """Switch the process time zone (the export renders Markdown times in it)."""
    import os

    saved = os.environ.get("TZ")

    def use(tz: str) -> None:
        os.environ["TZ"] = tz
        time.tzset()

    yield use
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


async def create(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await client.post("/api/agents", json={"name": name})
    assert response.status_code == 201
    result: dict[str, Any] = response.json()
    return result


async def seed(server: Server, owner: User, agent_id: str) -> tuple[str, str]:
    """Two conversations (the later one created first in time order is listed second)."""
    conn = await db_connect(server)
    try:
        second = await add_conversation(
            conn,
            owner.id,
            agent_id,
            title=None,
            created_at="2026-02-21T23:30:00.5Z",
            messages=[("user", "late night", "2026-02-21T23:59:59.999Z")],
        )
        first = await add_conversation(
            conn,
            owner.id,
            agent_id,
            title="Planning",
            created_at="2026-02-20T09:15:03.123456Z",
            messages=[
                ("user", "Hello?", "2026-02-20T09:15:03.123456Z"),
                ("agent", "Hi!\nHow can I help?", "2026-02-20T12:00:00Z"),
                ("user", "midnight", "2026-02-21T00:05:03Z"),
            ],
        )
    finally:
        await conn.close()
    return first, second


async def test_json_export(
    agent_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
    owner: User,
) -> None:
    agent = await create(client, "Helper Bot")
    first, second = await seed(agent_server, owner, agent["id"])
    other = await create(client, "Other")
    conn = await db_connect(agent_server)
    try:
        await add_conversation(
            conn, owner.id, other["id"], messages=[("user", "no", "2026-01-01T00:00:00Z")]
        )
    finally:
        await conn.close()

    for query in ("", "?format=json", "?format=csv"):
        response = await client.get(f"/api/agents/{agent['id']}/export{query}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert (
            response.headers["content-disposition"]
            == 'attachment; filename="Helper Bot-export.json"'
        )
        body = response.json()
        assert list(body) == ["agent", "exportedAt", "conversations"]
        assert ISO_RX.fullmatch(body["exportedAt"])
        assert body == {
            "agent": "Helper Bot",
            "exportedAt": body["exportedAt"],
            "conversations": [
                {
                    "conversationId": first,
                    "title": "Planning",
                    "createdAt": "2026-02-20T09:15:03.123Z",
                    "messages": [
                        {
                            "role": "user",
                            "content": "Hello?",
                            "status": "completed",
                            "createdAt": "2026-02-20T09:15:03.123Z",
                        },
                        {
                            "role": "agent",
                            "content": "Hi!\nHow can I help?",
                            "status": "completed",
                            "createdAt": "2026-02-20T12:00:00.000Z",
                        },
                        {
                            "role": "user",
                            "content": "midnight",
                            "status": "completed",
                            "createdAt": "2026-02-21T00:05:03.000Z",
                        },
                    ],
                },
                {
                    "conversationId": second,
                    "title": None,
                    "createdAt": "2026-02-21T23:30:00.500Z",
                    "messages": [
                        {
                            "role": "user",
                            "content": "late night",
                            "status": "completed",
                            "createdAt": "2026-02-21T23:59:59.999Z",
                        }
                    ],
                },
            ],
        }


MARKDOWN_UTC = (
    "# Chat Export: Helper Bot\n\n"
    "## Planning (2/20/2026)\n\n"
    "**You** [9:15:03 AM]\nHello?\n\n"
    "**Helper Bot** [12:00:00 PM]\nHi!\nHow can I help?\n\n"
    "**You** [12:05:03 AM]\nmidnight\n\n"
    "---\n\n"
    "## Untitled (2/21/2026)\n\n"
    "**You** [11:59:59 PM]\nlate night\n\n"
    "---\n\n"
)

# the same conversations seen from New York (UTC-5 in February)
MARKDOWN_NEW_YORK = (
    "# Chat Export: Helper Bot\n\n"
    "## Planning (2/20/2026)\n\n"
    "**You** [4:15:03 AM]\nHello?\n\n"
    "**Helper Bot** [7:00:00 AM]\nHi!\nHow can I help?\n\n"
    "**You** [7:05:03 PM]\nmidnight\n\n"
    "---\n\n"
    "## Untitled (2/21/2026)\n\n"
    "**You** [6:59:59 PM]\nlate night\n\n"
    "---\n\n"
)


async def test_markdown_export_in_the_process_time_zone(
    agent_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
    owner: User,
    process_tz: Any,
) -> None:
    agent = await create(client, "Helper Bot")
    await seed(agent_server, owner, agent["id"])
    url = f"/api/agents/{agent['id']}/export?format=markdown"

    process_tz("UTC")
    response = await client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/markdown"
    assert response.headers["content-disposition"] == 'attachment; filename="Helper Bot-export.md"'
    assert response.content.decode() == MARKDOWN_UTC

    process_tz("America/New_York")
    assert (await client.get(url)).content.decode() == MARKDOWN_NEW_YORK


async def test_export_without_conversations(client: httpx.AsyncClient) -> None:
    agent = await create(client, "Quiet")
    body = (await client.get(f"/api/agents/{agent['id']}/export")).json()
    assert body["conversations"] == []
    markdown = await client.get(f"/api/agents/{agent['id']}/export?format=markdown")
    assert markdown.content == b"# Chat Export: Quiet\n\n"


async def test_markdown_keeps_an_empty_title_and_lists_empty_conversations(
    agent_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
    owner: User,
    process_tz: Any,
) -> None:
    process_tz("UTC")
    agent = await create(client, "Bot")
    conn = await db_connect(agent_server)
    try:
        await add_conversation(
            conn, owner.id, agent["id"], title="", created_at="2026-03-01T10:00:00Z"
        )
    finally:
        await conn.close()
    markdown = await client.get(f"/api/agents/{agent['id']}/export?format=markdown")
    assert markdown.content == b"# Chat Export: Bot\n\n##  (3/1/2026)\n\n---\n\n"
    body = (await client.get(f"/api/agents/{agent['id']}/export")).json()
    assert body["conversations"][0]["title"] == ""
    assert body["conversations"][0]["messages"] == []


@pytest.mark.parametrize(
    ("name", "json_disposition"),
    [
        (
            "机器人",
            'attachment; filename="___-export.json"; '
            "filename*=UTF-8''%E6%9C%BA%E5%99%A8%E4%BA%BA-export.json",
        ),
        (
            'Say "hi"',
            'attachment; filename="Say _hi_-export.json"; '
            "filename*=UTF-8''Say%20%22hi%22-export.json",
        ),
        (
            "Café\tbot",
            'attachment; filename="Caf__bot-export.json"; '
            "filename*=UTF-8''Caf%C3%A9%09bot-export.json",
        ),
        ("a\\b", "attachment; filename=\"a_b-export.json\"; filename*=UTF-8''a%5Cb-export.json"),
    ],
)
async def test_any_agent_name_exports(
    client: httpx.AsyncClient, name: str, json_disposition: str
) -> None:
    """Quirk Q47 fixed: the original answered 500 for names outside Latin-1."""
    agent = await create(client, name)
    response = await client.get(f"/api/agents/{agent['id']}/export")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == json_disposition
    assert response.json()["agent"] == name
    markdown = await client.get(f"/api/agents/{agent['id']}/export?format=markdown")
    assert markdown.status_code == 200
    assert markdown.headers["content-disposition"] == json_disposition.replace(
        "-export.json", "-export.md"
    )
    assert markdown.content.decode().startswith(f"# Chat Export: {name}\n\n")


async def test_export_runs_a_fixed_number_of_queries(
    agent_server: Server,  # noqa: F811
) -> None:
    """Quirk Q08 fixed: the original ran one query per conversation."""
    counter = agent_server.state.queries

    async def cost(conversations: int) -> int:
        user = await new_user(agent_server)
        async with user.client(agent_server) as c:
            agent = await create(c, "Counted")
            conn = await db_connect(agent_server)
            try:
                for _ in range(conversations):
                    await add_conversation(
                        conn,
                        user.id,
                        agent["id"],
                        messages=[
                            ("user", "q", "2026-01-01T00:00:00Z"),
                            ("agent", "a", "2026-01-01T00:00:01Z"),
                        ],
                    )
            finally:
                await conn.close()
            await c.get("/api/agents")  # warm the session cache
            before = counter.count
            response = await c.get(f"/api/agents/{agent['id']}/export")
            assert len(response.json()["conversations"]) == conversations
            return counter.count - before

    assert await cost(1) == await cost(200) <= 2
