"""Message routes (contract rest.md §3.7): pages before/after/around with exact response
keys, the cursor fix of quirk Q17, limit clamping (Q16), attachments, live streaming text,
delete, search, ownership and query bounds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from arinova.server import Server
from tests.http.conversations_fixtures import (
    CONVERSATION_NOT_FOUND,
    MESSAGE_KEYS,
    T0,
    UNAUTHORIZED,
    UNKNOWN_ID,
    Chat,
    add_agent,
    add_attachment,
    add_conversation,
    add_group,
    add_messages,
    anonymous,  # noqa: F401 - fixture
    chat,  # noqa: F401 - fixture
    chat_server,  # noqa: F401 - fixture
    iso,
    message_row,
    other,  # noqa: F401 - fixture
)
from tests.support.auth import authed_client, sign_up
from tests.support.servers import StartServer

TARGET_NOT_FOUND = {"error": "Target message not found"}


async def seeded(user: Chat, count: int, **kwargs: Any) -> tuple[str, list[str]]:
    conversation = await user.direct(await user.agent())
    return conversation, await add_messages(user.db, conversation, count, **kwargs)


async def page(user: Chat, conversation: str, **params: Any) -> dict[str, Any]:
    response = await user.client.get(f"/api/conversations/{conversation}/messages", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def seqs(body: dict[str, Any]) -> list[int]:
    return [m["seq"] for m in body["messages"]]


def ids(body: dict[str, Any]) -> list[str]:
    return [m["id"] for m in body["messages"]]


# --- authentication and ownership ----------------------------------------------------------

ROUTES = [
    ("GET", f"/api/conversations/{UNKNOWN_ID}/messages"),
    ("DELETE", f"/api/conversations/{UNKNOWN_ID}/messages/{UNKNOWN_ID}"),
    ("GET", "/api/messages/search?q=x"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_needs_a_session(
    anonymous: httpx.AsyncClient,  # noqa: F811
    method: str,
    path: str,
) -> None:
    response = await anonymous.request(method, path)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


@pytest.mark.parametrize("bad_id", [UNKNOWN_ID, "nope", "x" * 100])
@pytest.mark.parametrize("query", ["", "?around=" + UNKNOWN_ID, "?after=" + UNKNOWN_ID])
async def test_page_of_an_unknown_or_malformed_conversation(
    chat: Chat,  # noqa: F811
    bad_id: str,
    query: str,
) -> None:
    response = await chat.client.get(f"/api/conversations/{bad_id}/messages{query}")
    assert response.status_code == 404
    assert response.json() == CONVERSATION_NOT_FOUND


async def test_page_of_another_users_conversation_is_not_found(
    chat: Chat,  # noqa: F811
    other: Chat,  # noqa: F811
) -> None:
    theirs, _ = await seeded(other, 3)
    response = await chat.client.get(f"/api/conversations/{theirs}/messages")
    assert response.status_code == 404
    assert response.json() == CONVERSATION_NOT_FOUND


# --- default page and before ----------------------------------------------------------------


async def test_default_page_is_the_newest_50_ascending(chat: Chat) -> None:  # noqa: F811
    conversation, message_ids = await seeded(chat, 60)
    body = await page(chat, conversation)
    assert list(body) == ["messages", "hasMore", "nextCursor"]
    assert seqs(body) == list(range(11, 61))
    assert body["hasMore"] is True
    assert body["nextCursor"] == message_ids[10]
    first = body["messages"][0]
    assert list(first) == [*MESSAGE_KEYS, "attachments"]
    assert first == {**await message_row(chat.db, message_ids[10]), "attachments": []}


async def test_a_short_conversation_has_no_more(chat: Chat) -> None:  # noqa: F811
    conversation, _ = await seeded(chat, 3)
    assert await page(chat, conversation) == {
        "messages": (await page(chat, conversation))["messages"],
        "hasMore": False,
        "nextCursor": None,
    }
    empty = await chat.direct(await chat.agent())
    assert await page(chat, empty) == {"messages": [], "hasMore": False, "nextCursor": None}


async def test_before_pages_back_without_losing_or_repeating_ties(chat: Chat) -> None:  # noqa: F811
    """Quirk Q17: the original compared ms-truncated created_at, so messages stored in the
    same millisecond as a cursor were skipped. Here 25 messages share one timestamp."""
    conversation, message_ids = await seeded(chat, 25, step=timedelta(0))
    seen: list[str] = []
    body = await page(chat, conversation, limit=7)
    seen = ids(body) + seen
    while body["hasMore"]:
        assert body["nextCursor"] == body["messages"][0]["id"]
        cursor = body["nextCursor"]
        body = await page(chat, conversation, limit=7, before=cursor)
        assert cursor not in ids(body)
        seen = ids(body) + seen
    assert seen == message_ids
    assert body == {"messages": body["messages"], "hasMore": False, "nextCursor": None}


async def test_before_excludes_the_cursor(chat: Chat) -> None:  # noqa: F811
    conversation, message_ids = await seeded(chat, 10)
    body = await page(chat, conversation, before=message_ids[5], limit=3)
    assert seqs(body) == [3, 4, 5]
    assert (body["hasMore"], body["nextCursor"]) == (True, message_ids[2])


@pytest.mark.parametrize("cursor", [UNKNOWN_ID, "garbage", ""])
async def test_an_unknown_before_cursor_is_ignored(chat: Chat, cursor: str) -> None:  # noqa: F811
    conversation, _ = await seeded(chat, 4)
    body = await page(chat, conversation, before=cursor)
    assert seqs(body) == [1, 2, 3, 4]


async def test_a_cursor_from_another_conversation_is_unknown_here(chat: Chat) -> None:  # noqa: F811
    conversation, _ = await seeded(chat, 4)
    _, elsewhere = await seeded(chat, 4, start=T0 - timedelta(days=1))
    assert seqs(await page(chat, conversation, before=elsewhere[-1])) == [1, 2, 3, 4]
    assert await page(chat, conversation, after=elsewhere[0]) == {
        "messages": [],
        "hasMore": False,
        "hasMoreDown": False,
    }
    response = await chat.client.get(
        f"/api/conversations/{conversation}/messages", params={"around": elsewhere[0]}
    )
    assert response.status_code == 404
    assert response.json() == TARGET_NOT_FOUND


# --- after ---------------------------------------------------------------------------------


async def test_after_returns_newer_messages_without_the_cursor(chat: Chat) -> None:  # noqa: F811
    conversation, message_ids = await seeded(chat, 10)
    body = await page(chat, conversation, after=message_ids[2], limit=4)
    assert list(body) == ["messages", "hasMore", "hasMoreDown"]
    assert seqs(body) == [4, 5, 6, 7]
    assert (body["hasMore"], body["hasMoreDown"]) == (False, True)
    rest = await page(chat, conversation, after=message_ids[6], limit=4)
    assert seqs(rest) == [8, 9, 10]
    assert rest["hasMoreDown"] is False
    # the original returned [X] with hasMoreDown true forever for after=<last>&limit=1
    assert await page(chat, conversation, after=message_ids[-1], limit=1) == {
        "messages": [],
        "hasMore": False,
        "hasMoreDown": False,
    }


async def test_after_walks_forward_through_ties(chat: Chat) -> None:  # noqa: F811
    conversation, message_ids = await seeded(chat, 12, step=timedelta(0))
    body = await page(chat, conversation, limit=1)
    seen = ids(body)
    body = await page(chat, conversation, after=message_ids[0], limit=5)
    seen = [message_ids[0], *ids(body)]
    while body["hasMoreDown"]:
        body = await page(chat, conversation, after=seen[-1], limit=5)
        seen += ids(body)
    assert seen == message_ids


@pytest.mark.parametrize("cursor", [UNKNOWN_ID, "garbage"])
async def test_an_unknown_after_cursor_gives_an_empty_page(chat: Chat, cursor: str) -> None:  # noqa: F811
    conversation, _ = await seeded(chat, 3)
    assert await page(chat, conversation, after=cursor) == {
        "messages": [],
        "hasMore": False,
        "hasMoreDown": False,
    }


# --- around ---------------------------------------------------------------------------------


async def test_around_returns_the_target_once_between_its_neighbours(chat: Chat) -> None:  # noqa: F811
    """Quirk Q17: the original returned the target twice (seqs [2,3,4,4,5] for seq 4)."""
    conversation, message_ids = await seeded(chat, 8)
    body = await page(chat, conversation, around=message_ids[3], limit=4)
    assert list(body) == ["messages", "hasMore", "hasMoreUp", "hasMoreDown", "nextCursor"]
    assert seqs(body) == [2, 3, 4, 5, 6]
    assert body["hasMore"] is body["hasMoreUp"] is True
    assert body["hasMoreDown"] is True
    assert body["nextCursor"] == message_ids[1]


async def test_around_near_the_ends(chat: Chat) -> None:  # noqa: F811
    conversation, message_ids = await seeded(chat, 5)
    oldest = await page(chat, conversation, around=message_ids[0], limit=4)
    assert seqs(oldest) == [1, 2, 3]
    assert (oldest["hasMoreUp"], oldest["hasMoreDown"], oldest["nextCursor"]) == (
        False,
        True,
        None,
    )
    newest = await page(chat, conversation, around=message_ids[-1], limit=10)
    assert seqs(newest) == [1, 2, 3, 4, 5]
    assert (newest["hasMore"], newest["hasMoreUp"], newest["hasMoreDown"]) == (
        False,
        False,
        False,
    )


async def test_around_with_ties(chat: Chat) -> None:  # noqa: F811
    conversation, message_ids = await seeded(chat, 9, step=timedelta(0))
    body = await page(chat, conversation, around=message_ids[4], limit=4)
    assert ids(body) == message_ids[2:7]


async def test_around_with_limit_1_omits_next_cursor_like_the_original(chat: Chat) -> None:  # noqa: F811
    conversation, message_ids = await seeded(chat, 3)
    body = await page(chat, conversation, around=message_ids[1], limit=1)
    assert body == {
        "messages": body["messages"],
        "hasMore": True,
        "hasMoreUp": True,
        "hasMoreDown": True,
    }
    assert seqs(body) == [2]


@pytest.mark.parametrize("target", [UNKNOWN_ID, "garbage"])
async def test_around_an_unknown_target(chat: Chat, target: str) -> None:  # noqa: F811
    conversation, _ = await seeded(chat, 3)
    response = await chat.client.get(
        f"/api/conversations/{conversation}/messages", params={"around": target}
    )
    assert response.status_code == 404
    assert response.json() == TARGET_NOT_FOUND


async def test_mode_precedence_is_around_then_after_then_before(chat: Chat) -> None:  # noqa: F811
    conversation, message_ids = await seeded(chat, 9)
    both = await page(
        chat, conversation, around=message_ids[4], after=message_ids[0], before=message_ids[1]
    )
    assert seqs(both) == list(range(1, 10))
    assert "hasMoreUp" in both
    after = await page(chat, conversation, after=message_ids[6], before=message_ids[1], around="")
    assert seqs(after) == [8, 9]


# --- limit (quirk Q16) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("3", 3),
        ("3abc", 3),  # parseInt reads the leading number
        (" 4", 4),
        ("abc", 50),  # the original returned an empty page
        ("0", 1),  # the original returned an empty page without nextCursor
        ("-5", 1),  # the original dropped the LIMIT
        ("1000", 100),
        ("", 50),
    ],
)
async def test_limit_is_parsed_and_clamped(
    chat: Chat,  # noqa: F811
    limit: str,
    expected: int,
) -> None:
    conversation, _ = await seeded(chat, 120)
    body = await page(chat, conversation, limit=limit)
    assert len(body["messages"]) == expected
    assert body["hasMore"] is True
    assert body["nextCursor"] == body["messages"][0]["id"]


# --- enrichment ----------------------------------------------------------------------------


async def test_messages_carry_their_attachments(chat: Chat) -> None:  # noqa: F811
    conversation, message_ids = await seeded(chat, 3)
    first = await add_attachment(
        chat.db, message_ids[1], "a.png", storage_path="1111.png", created_at=T0
    )
    second = await add_attachment(
        chat.db,
        message_ids[1],
        "notes.pdf",
        file_type="application/pdf",
        size=99,
        storage_path="2222.pdf",
        created_at=T0 + timedelta(seconds=1),
    )
    body = await page(chat, conversation)
    assert [len(m["attachments"]) for m in body["messages"]] == [0, 2, 0]
    assert body["messages"][1]["attachments"] == [
        {
            "id": first,
            "messageId": message_ids[1],
            "fileName": "a.png",
            "fileType": "image/png",
            "fileSize": 1234,
            "url": "/uploads/1111.png",
            "createdAt": iso(T0),
        },
        {
            "id": second,
            "messageId": message_ids[1],
            "fileName": "notes.pdf",
            "fileType": "application/pdf",
            "fileSize": 99,
            "url": "/uploads/2222.pdf",
            "createdAt": iso(T0 + timedelta(seconds=1)),
        },
    ]
    # attachments never count against the limit
    assert seqs(await page(chat, conversation, limit=2)) == [2, 3]
    around = await page(chat, conversation, around=message_ids[1], limit=2)
    assert [len(m["attachments"]) for m in around["messages"]] == [0, 2, 0]


async def test_a_streaming_reply_shows_its_live_text(chat: Chat) -> None:  # noqa: F811
    conversation = await chat.direct(await chat.agent())
    (question,) = await add_messages(chat.db, conversation, 1)
    streaming = await add_messages(
        chat.db,
        conversation,
        3,
        first_seq=2,
        status="streaming",
        start=T0 + timedelta(seconds=1),
        content=lambda seq: f"stored {seq}",
    )
    kv = chat.server.state.kv
    await kv.set(f"stream:{streaming[0]}", "Hello, wor", ex=60)
    await kv.set(f"stream:{streaming[1]}", "", ex=60)  # empty: keep the stored text
    await kv.set(f"stream:{question}", "not a streaming message", ex=60)
    body = await page(chat, conversation)
    assert [m["content"] for m in body["messages"]] == [
        "message 1",
        "Hello, wor",
        "stored 3",
        "stored 4",
    ]
    assert body["messages"][1]["status"] == "streaming"


@pytest.fixture(scope="module")
async def r2_server(start_module_server: StartServer) -> Server:
    return await start_module_server(
        r2_endpoint="http://127.0.0.1:9",
        r2_access_key_id="key",
        r2_secret_access_key="secret",
        r2_public_url="https://files.example.com",
    )


async def test_attachment_urls_point_at_r2_when_configured(r2_server: Server) -> None:
    user = await sign_up(r2_server.url)
    import asyncpg

    conn = await asyncpg.connect(r2_server.settings.database_url)
    try:
        agent = await add_agent(conn, user.id)
        conversation = await add_conversation(conn, user.id, agent)
        (message,) = await add_messages(conn, conversation, 1)
        await add_attachment(conn, message, storage_path="abc.png")
    finally:
        await conn.close()
    async with authed_client(r2_server.url, user) as client:
        response = await client.get(f"/api/conversations/{conversation}/messages")
    assert response.status_code == 200
    (attachment,) = response.json()["messages"][0]["attachments"]
    assert attachment["url"] == "https://files.example.com/abc.png"


# --- query bounds --------------------------------------------------------------------------


async def test_a_page_costs_the_same_queries_whatever_its_size(chat: Chat) -> None:  # noqa: F811
    small, small_ids = await seeded(chat, 1)
    large, large_ids = await seeded(chat, 200)
    for message_id in large_ids[-60:]:
        await add_attachment(chat.db, message_id)
    await page(chat, small)  # warm the statement cache
    counts = {}
    for name, conversation, params in [
        ("small latest", small, {}),
        ("large latest", large, {"limit": "100"}),
        ("small before", small, {"before": small_ids[0]}),
        ("large before", large, {"before": large_ids[150], "limit": "100"}),
        ("small after", small, {"after": small_ids[0]}),
        ("large after", large, {"after": large_ids[10], "limit": "100"}),
        ("small around", small, {"around": small_ids[0]}),
        ("large around", large, {"around": large_ids[150], "limit": "100"}),
    ]:
        await chat.counted("GET", f"/api/conversations/{conversation}/messages", params=params)
        response, counts[name] = await chat.counted(
            "GET", f"/api/conversations/{conversation}/messages", params=params
        )
        assert response.status_code == 200
    assert set(counts.values()) == {counts["small latest"]}, counts
    # the session lookup (unless cached), the page, the pool's reset of the connection
    assert counts["small latest"] <= 3


# --- DELETE /api/conversations/:conversationId/messages/:messageId -----------------------------


async def test_delete_a_message(chat: Chat) -> None:  # noqa: F811
    conversation, message_ids = await seeded(chat, 3)
    await add_attachment(chat.db, message_ids[1])
    url = f"/api/conversations/{conversation}/messages/{message_ids[1]}"
    response = await chat.client.delete(url)
    assert response.status_code == 204
    assert response.content == b""
    assert seqs(await page(chat, conversation)) == [1, 3]
    assert (
        await chat.db.fetchval(
            "SELECT count(*) FROM attachments WHERE message_id = $1::uuid", message_ids[1]
        )
        == 0
    )
    again = await chat.client.delete(url)
    assert again.status_code == 404
    assert again.json() == {"error": "Message not found"}


async def test_delete_checks_the_conversation_then_the_message(
    chat: Chat,  # noqa: F811
    other: Chat,  # noqa: F811
) -> None:
    mine, my_ids = await seeded(chat, 2)
    _, elsewhere_ids = await seeded(chat, 1)
    theirs, their_ids = await seeded(other, 1)
    cases = [
        (f"{theirs}/messages/{their_ids[0]}", CONVERSATION_NOT_FOUND),
        (f"{UNKNOWN_ID}/messages/{my_ids[0]}", CONVERSATION_NOT_FOUND),
        (f"garbage/messages/{my_ids[0]}", CONVERSATION_NOT_FOUND),
        (f"{mine}/messages/{elsewhere_ids[0]}", {"error": "Message not found"}),
        (f"{mine}/messages/{their_ids[0]}", {"error": "Message not found"}),
        (f"{mine}/messages/garbage", {"error": "Message not found"}),
        (f"{mine}/messages/{UNKNOWN_ID}", {"error": "Message not found"}),
    ]
    for path, expected in cases:
        response = await chat.client.delete(f"/api/conversations/{path}")
        assert response.status_code == 404, path
        assert response.json() == expected, path
    assert (
        await chat.db.fetchval(
            "SELECT count(*) FROM messages WHERE id = ANY($1::uuid[])",
            [*my_ids, *elsewhere_ids, *their_ids],
        )
        == 4
    )


# --- GET /api/messages/search ---------------------------------------------------------------


async def search(user: Chat, **params: Any) -> dict[str, Any]:
    response = await user.client.get("/api/messages/search", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_search_across_direct_and_group_conversations(
    chat: Chat,  # noqa: F811
    other: Chat,  # noqa: F811
) -> None:
    agent = await chat.agent("Ada", avatar_url="/uploads/avatars/ada.png")
    direct = await chat.direct(agent, "Direct chat")
    group = await add_group(chat.db, chat.id, "Team", [agent])
    direct_ids = await add_messages(
        chat.db, direct, 3, content=lambda seq: ["The Apple pie", "banana", "apple juice"][seq - 1]
    )
    (group_hit,) = await add_messages(
        chat.db, group, 1, start=T0 + timedelta(minutes=1), content=lambda _: "APPLES everywhere"
    )
    theirs = await other.direct(await other.agent())
    await add_messages(other.db, theirs, 1, content=lambda _: "apple of theirs")

    body = await search(chat, q="apple")
    assert body["total"] == 3
    assert [hit["messageId"] for hit in body["results"]] == [
        group_hit,
        direct_ids[2],
        direct_ids[0],
    ]
    assert body["results"][0] == {
        "messageId": group_hit,
        "conversationId": group,
        "content": "APPLES everywhere",
        "role": "user",
        "createdAt": iso(T0 + timedelta(minutes=1)),
        "conversationTitle": "Team",
        "agentId": None,
        "agentName": None,
        "agentAvatarUrl": None,
    }
    assert body["results"][1] == {
        "messageId": direct_ids[2],
        "conversationId": direct,
        "content": "apple juice",
        "role": "user",
        "createdAt": iso(T0 + timedelta(seconds=2)),
        "conversationTitle": "Direct chat",
        "agentId": agent,
        "agentName": "Ada",
        "agentAvatarUrl": "/uploads/avatars/ada.png",
    }


async def test_search_pages_with_limit_and_offset(chat: Chat) -> None:  # noqa: F811
    _, message_ids = await seeded(chat, 60, content=lambda seq: f"needle {seq}")
    newest_first = message_ids[::-1]

    def hits(body: dict[str, Any]) -> list[str]:
        return [hit["messageId"] for hit in body["results"]]

    default = await search(chat, q="needle")
    assert (default["total"], hits(default)) == (60, newest_first[:20])
    assert hits(await search(chat, q="needle", limit="5", offset="10")) == newest_first[10:15]
    assert len(hits(await search(chat, q="needle", limit="500"))) == 50
    assert hits(await search(chat, q="needle", limit="0")) == newest_first[:1]
    assert hits(await search(chat, q="needle", limit="-3")) == newest_first[:1]
    assert hits(await search(chat, q="needle", limit="abc")) == newest_first[:20]
    assert hits(await search(chat, q="needle", offset="-4", limit="2")) == newest_first[:2]
    assert hits(await search(chat, q="needle", offset="x", limit="2")) == newest_first[:2]
    beyond = await search(chat, q="needle", offset="99999999999999")
    assert beyond == {"results": [], "total": 60}


@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "   "}, {"q": "a\x00"}])
async def test_search_without_a_query_is_empty(chat: Chat, params: dict[str, str]) -> None:  # noqa: F811
    await seeded(chat, 2)
    assert await search(chat, **params) == {"results": [], "total": 0}


async def test_search_with_no_conversations(chat: Chat) -> None:  # noqa: F811
    assert await search(chat, q="anything") == {"results": [], "total": 0}


async def test_search_keeps_ilike_wildcards_and_is_untrimmed(chat: Chat) -> None:  # noqa: F811
    await seeded(chat, 3, content=lambda seq: ["100% sure", "1000 ways", " padded "][seq - 1])
    assert (await search(chat, q="100%"))["total"] == 2  # % is a wildcard, as in the original
    assert (await search(chat, q="1_0"))["total"] == 2
    assert (await search(chat, q=" padded "))["total"] == 1
    assert (await search(chat, q="  padded  "))["total"] == 0


async def test_search_costs_one_query_whatever_the_data(chat: Chat) -> None:  # noqa: F811
    await seeded(chat, 5, content=lambda seq: f"word {seq}")
    await chat.counted("GET", "/api/messages/search", params={"q": "word"})
    _, small = await chat.counted("GET", "/api/messages/search", params={"q": "word"})
    for _ in range(5):
        await seeded(chat, 100, content=lambda seq: f"word {seq}")
    await chat.counted("GET", "/api/messages/search", params={"q": "word"})
    _, large = await chat.counted("GET", "/api/messages/search", params={"q": "word"})
    assert small == large <= 2
