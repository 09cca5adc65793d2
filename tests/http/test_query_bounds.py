"""Read routes whose answers grow with the data cost a fixed number of statements
(no N+1): the same with 1 row as with many. The routes with their own
tests of this (conversation list, message pages and search, agent list, batch health,
export, group creation, uploads) are not repeated here."""

from __future__ import annotations

from tests.http.conversations_fixtures import (
    Chat,
    add_group,
    add_messages,
    chat,  # noqa: F401 - fixture
    chat_server,  # noqa: F401 - fixture
)


async def counted_twice(chat: Chat, method: str, url: str) -> tuple[object, int]:  # noqa: F811
    """The second of two identical requests (the first warms statement and session
    caches) and its statement count."""
    await chat.client.request(method, url)
    response, count = await chat.counted(method, url)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None, count


async def test_members_cost_the_same_for_1_and_60_members(chat: Chat) -> None:  # noqa: F811
    agents = [await chat.agent(f"A{n}") for n in range(60)]
    small = await add_group(chat.db, chat.id, "small", agents[:1])
    large = await add_group(chat.db, chat.id, "large", agents)
    one, one_count = await counted_twice(chat, "GET", f"/api/conversations/{small}/members")
    many, many_count = await counted_twice(chat, "GET", f"/api/conversations/{large}/members")
    assert isinstance(one, list) and isinstance(many, list)
    assert (len(one), len(many)) == (1, 60)
    assert many_count == one_count <= 2


async def test_reactions_cost_the_same_for_1_and_30_emoji(chat: Chat) -> None:  # noqa: F811
    conversation = await chat.direct(await chat.agent())
    first, second = await add_messages(chat.db, conversation, 2)
    await chat.db.execute(
        "INSERT INTO message_reactions (message_id, user_id, emoji) VALUES ($1::uuid, $2, 'x')",
        first,
        chat.id,
    )
    await chat.db.execute(
        "INSERT INTO message_reactions (message_id, user_id, emoji)"
        " SELECT $1::uuid, $2, 'e' || n FROM generate_series(1, 30) n",
        second,
        chat.id,
    )
    one, one_count = await counted_twice(chat, "GET", f"/api/messages/{first}/reactions")
    many, many_count = await counted_twice(chat, "GET", f"/api/messages/{second}/reactions")
    assert isinstance(one, list) and isinstance(many, list)
    assert (len(one), len(many)) == (1, 30)
    assert many_count == one_count <= 2


async def test_agent_stats_and_history_cost_the_same_for_1_and_200_conversations(
    chat: Chat,  # noqa: F811
) -> None:
    counts = []
    for conversations in (1, 200):
        agent = await chat.agent(f"With {conversations}")
        ids = await chat.db.fetch(
            "INSERT INTO conversations (type, user_id, agent_id)"
            " SELECT 'direct', $1, $2::uuid FROM generate_series(1, $3::int) RETURNING id::text",
            chat.id,
            agent,
            conversations,
        )
        for row in ids[:20]:
            await add_messages(chat.db, row["id"], 5)
        stats, stats_count = await counted_twice(chat, "GET", f"/api/agents/{agent}/stats")
        assert stats == {
            "totalMessages": 5 * min(conversations, 20),
            "totalConversations": conversations,
            "lastActive": stats["lastActive"] if isinstance(stats, dict) else None,
        }
        _, history_count = await chat.counted("DELETE", f"/api/agents/{agent}/history")
        assert (
            await chat.db.fetchval(
                "SELECT count(*) FROM conversations WHERE agent_id = $1::uuid", agent
            )
            == 0
        )
        counts.append((stats_count, history_count))
    assert counts[0] == counts[1]
    assert counts[0][0] <= 2 and counts[0][1] <= 2
