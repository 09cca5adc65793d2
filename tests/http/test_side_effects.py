"""Which REST calls move ``updated_at`` (behaviours.md §11, last paragraph): of a
conversation, only PUT (rename/pin) does — never reads, mutes, reactions, message
deletes, history clears, member changes or uploads; of an agent, only its own edits
(PUT, avatar, token rotation), never the deletion of its history."""

from __future__ import annotations

from tests.http.conversations_fixtures import (
    T0,
    Chat,
    add_group,
    add_messages,
    chat,  # noqa: F401 - fixture
    chat_server,  # noqa: F401 - fixture
    iso,
)
from tests.http.uploads_fixtures import PNG, file_part, multipart


async def conversation_updated_at(chat: Chat, conversation_id: str) -> object:  # noqa: F811
    return await chat.db.fetchval(
        "SELECT updated_at FROM conversations WHERE id = $1::uuid", conversation_id
    )


async def test_only_put_moves_a_conversation_up(chat: Chat) -> None:  # noqa: F811
    first, second = await chat.agent("First"), await chat.agent("Second")
    direct = await chat.direct(first, "Direct")
    group = await add_group(chat.db, chat.id, "Group", [first])
    ids = await add_messages(chat.db, direct, 4)
    await add_messages(chat.db, group, 2)
    c = chat.client

    calls = [
        await c.put(f"/api/conversations/{direct}/read"),
        await c.put(f"/api/conversations/{direct}/mute", json={"muted": True}),
        await c.post(f"/api/messages/{ids[0]}/reactions", json={"emoji": "👍"}),
        await c.delete(f"/api/messages/{ids[0]}/reactions/👍"),
        await c.delete(f"/api/conversations/{direct}/messages/{ids[1]}"),
        await c.get(f"/api/conversations/{direct}/status"),
        await c.get(f"/api/conversations/{direct}/messages"),
        await c.post(f"/api/conversations/{group}/members", json={"agentId": second}),
        await c.delete(f"/api/conversations/{group}/members/{second}"),
        await c.post(
            f"/api/conversations/{group}/upload",
            headers=(form := multipart(file_part(PNG)))[0],
            content=form[1],
        ),
        await c.delete(f"/api/conversations/{direct}/messages"),
    ]
    assert [r.status_code for r in calls] == [200, 200, 201, 204, 204, 200, 200, 201, 204, 200, 200]
    assert await conversation_updated_at(chat, direct) == T0
    assert await conversation_updated_at(chat, group) == T0
    listed = (await c.get("/api/conversations")).json()
    assert {item["id"]: item["updatedAt"] for item in listed} == {
        direct: iso(T0),
        group: iso(T0),
    }

    renamed = await c.put(f"/api/conversations/{group}", json={"title": "Renamed"})
    assert renamed.status_code == 200
    assert renamed.json()["updatedAt"] > iso(T0)
    assert [item["id"] for item in (await c.get("/api/conversations")).json()] == [group, direct]


async def test_reading_or_clearing_an_agents_history_leaves_it_untouched(
    chat: Chat,  # noqa: F811
) -> None:
    agent = await chat.agent("Keeper")
    await chat.db.execute(
        "UPDATE agents SET created_at = $2, updated_at = $2 WHERE id = $1::uuid", agent, T0
    )
    conversation = await chat.direct(agent, "History")
    await add_messages(chat.db, conversation, 2)
    c = chat.client
    calls = [
        await c.get(f"/api/agents/{agent}/stats"),
        await c.get(f"/api/agents/{agent}/export"),
        await c.get(f"/api/agents/{agent}/health"),
        await c.get(f"/api/agents/{agent}/skills"),
        await c.delete(f"/api/agents/{agent}/history"),
    ]
    assert [r.status_code for r in calls] == [200, 200, 200, 200, 204]
    body = (await c.get(f"/api/agents/{agent}")).json()
    assert body["updatedAt"] == iso(T0)
