"""Messages: a conversation's pages, single delete, search (contract rest.md §3.7).

Pages are keyset-paged on (created_at, seq, id), the cursor looked up in the conversation
itself; ``before``/``after`` never return the cursor and ``around`` returns it once (quirk
Q17 fixed), with the original's response keys. ``limit`` is parsed like ``parseInt`` and
clamped (quirk Q16). A page costs one statement whatever its size (ownership, cursor,
messages and all their attachments); streaming replies get their live text from the stream
cache in one MGET.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final
from uuid import UUID

from asyncpg import Record
from blacksheep import Request, Response

from arinova import js
from arinova.db.queries import messages as q
from arinova.errors import ApiError
from arinova.http import schemas as s
from arinova.http.apidoc import STR, Doc
from arinova.http.conversations import conversation_id_of, conversation_not_found
from arinova.http.responses import empty_response, json_response
from arinova.http.router import ArinovaRouter
from arinova.http.shapes import attachment_view, message_view
from arinova.http.validate import parse_uuid, query_int, query_param
from arinova.live_text import fill_live_texts
from arinova.state import AppState

PAGE_DEFAULT: Final = 50
PAGE_MAX: Final = 100
SEARCH_DEFAULT: Final = 20
SEARCH_MAX: Final = 50
#: a PostgreSQL integer
OFFSET_MAX: Final = 2**31 - 1


def fold_page(
    rows: Sequence[Record], url_of: Callable[[str], str], conversation_id: str
) -> list[dict[str, Any]]:
    """Rows of (message, attachment) of one conversation — attachments following their
    message — to the MessageWithAttachments shape (rest.md §2.5), in row order. A row's
    values are unpacked in the page statement's column order (``q.PAGE_COLUMNS``): a page
    reads 14 values from each of up to 100+ rows."""
    messages: list[dict[str, Any]] = []
    current: list[dict[str, Any]] = []
    last_id = None
    for row in rows:
        (
            _cursor_id,
            message_id,
            seq,
            role,
            content,
            status,
            created_at,
            updated_at,
            attachment_id,
            file_name,
            file_type,
            file_size,
            storage_path,
            attached_at,
        ) = row
        if message_id is None:  # the empty page's single row
            continue
        if message_id != last_id:
            last_id = message_id
            current = []
            message = message_view(
                message_id, conversation_id, seq, role, content, status, created_at, updated_at
            )
            message["attachments"] = current  # the shape's last key
            messages.append(message)
        if attachment_id is not None:
            current.append(
                attachment_view(
                    attachment_id,
                    message_id,
                    file_name,
                    file_type,
                    file_size,
                    url_of(storage_path),
                    attached_at,
                )
            )
    return messages


async def with_live_text(state: AppState, messages: list[dict[str, Any]]) -> None:
    await fill_live_texts(messages, state.realtime.streaming_text, state.kv, state.log)


def mount(router: ArinovaRouter, state: AppState) -> None:
    async def list_messages(request: Request) -> Response:
        user = await state.auth.require_user(request)
        conversation_id = conversation_id_of(request)
        limit = query_int(request, "limit", default=PAGE_DEFAULT, minimum=1, maximum=PAGE_MAX)
        # precedence of the original: around, then after, then before; empty = absent
        around = query_param(request, "around")
        if around:
            return await around_page(user.id, conversation_id, around, limit)
        after = query_param(request, "after")
        if after:
            return await after_page(user.id, conversation_id, after, limit)
        return await before_page(user.id, conversation_id, query_param(request, "before"), limit)

    async def load(
        query: str, user_id: str, conversation_id: UUID, cursor: str | None, rows: int
    ) -> tuple[str | None, list[dict[str, Any]]]:
        """(the cursor's id if it is a message of this conversation, the page)."""
        found = await state.db.fetch(query, conversation_id, user_id, parse_uuid(cursor), rows)
        if not found:
            raise conversation_not_found()
        return found[0]["cursor_id"], fold_page(found, state.storage.url, str(conversation_id))

    async def before_page(
        user_id: str, conversation_id: UUID, before: str | None, limit: int
    ) -> Response:
        # an unknown cursor (or one of another conversation) is ignored: the newest page
        _, page = await load(q.PAGE_BEFORE.sql, user_id, conversation_id, before, limit + 1)
        has_more = len(page) > limit
        if has_more:
            page = page[len(page) - limit :]
        await with_live_text(state, page)
        return json_response(
            200,
            {
                "messages": page,
                "hasMore": has_more,
                "nextCursor": page[0]["id"] if has_more else None,
            },
        )

    async def after_page(user_id: str, conversation_id: UUID, after: str, limit: int) -> Response:
        # an unknown cursor gives the empty page
        _, page = await load(q.PAGE_AFTER.sql, user_id, conversation_id, after, limit + 1)
        has_more_down = len(page) > limit
        page = page[:limit]
        await with_live_text(state, page)
        return json_response(
            200, {"messages": page, "hasMore": False, "hasMoreDown": has_more_down}
        )

    async def around_page(user_id: str, conversation_id: UUID, around: str, limit: int) -> Response:
        half = limit // 2
        target_id, page = await load(q.PAGE_AROUND.sql, user_id, conversation_id, around, half + 1)
        if target_id is None:
            raise ApiError.message(404, "Target message not found")
        target_at = next(i for i, m in enumerate(page) if m["id"] == target_id)
        older, target, newer = page[:target_at], page[target_at], page[target_at + 1 :]
        has_more_up = len(older) > half
        has_more_down = len(newer) > half
        older = older[max(0, len(older) - half) :] if half else []
        newer = newer[:half]
        body: dict[str, Any] = {
            "messages": [*older, target, *newer],
            "hasMore": has_more_up,
            "hasMoreUp": has_more_up,
            "hasMoreDown": has_more_down,
        }
        if not has_more_up:
            body["nextCursor"] = None
        elif older:
            body["nextCursor"] = older[0]["id"]
        # else: the original's ``olderItems[0]?.id`` is undefined and the key is dropped
        await with_live_text(state, body["messages"])
        return json_response(200, body)

    async def delete_message(request: Request) -> Response:
        user = await state.auth.require_user(request)
        conversation_id = conversation_id_of(request, "conversationId")
        message_id: UUID | None = parse_uuid(request.route_values.get("messageId"))
        row = await state.db.fetchrow(q.DELETE.sql, conversation_id, message_id, user.id)
        if row is None or not row["found"]:
            raise conversation_not_found()
        if not row["deleted"]:
            raise ApiError.message(404, "Message not found")
        return empty_response(204)

    async def search(request: Request) -> Response:
        user = await state.auth.require_user(request)
        text = query_param(request, "q")
        if not text or not js.trim(text) or "\x00" in text:
            return json_response(200, {"results": [], "total": 0})
        limit = query_int(request, "limit", default=SEARCH_DEFAULT, minimum=1, maximum=SEARCH_MAX)
        offset = query_int(request, "offset", default=0, minimum=0, maximum=OFFSET_MAX)
        rows = await state.db.fetch(q.SEARCH.sql, user.id, f"%{text}%", limit, offset)
        results = [
            {
                "messageId": row["message_id"],
                "conversationId": row["conversation_id"],
                "content": row["content"],
                "role": row["role"],
                "createdAt": row["created_at"],
                "conversationTitle": row["conversation_title"],
                "agentId": row["agent_id"],
                "agentName": row["agent_name"],
                "agentAvatarUrl": row["agent_avatar_url"],
            }
            for row in rows
            if row["message_id"] is not None
        ]
        total = rows[0]["total"] if rows else 0
        return json_response(200, {"results": results, "total": total})

    router.add_get(
        "/api/messages/search",
        search,
        doc=Doc(
            "Search the caller's messages",
            {200: s.SEARCH},
            query={"q": STR, "limit": STR, "offset": STR},
            tag="messages",
        ),
    )
    router.add_get(
        "/api/conversations/:id/messages",
        list_messages,
        doc=Doc(
            "A page of a conversation's messages",
            {200: s.MESSAGE_PAGE},
            query={"before": STR, "after": STR, "around": STR, "limit": STR},
            tag="messages",
        ),
    )
    router.add_delete(
        "/api/conversations/:conversationId/messages/:messageId",
        delete_message,
        doc=Doc("Delete a message", {204: None}, tag="messages"),
    )
