"""GET /api/agents/:id/export — the caller's direct conversations with an agent, as JSON
or Markdown (contract rest.md §3.3, behaviours.md §10), in one query (quirk Q08).

The download name follows RFC 6266 (quirk Q47): a name that is plain printable ASCII gets
the original's exact header; any other name gets an ASCII ``filename`` fallback plus
``filename*=UTF-8''…``, so every agent name exports.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

import orjson
from blacksheep import Content, Request, Response

from arinova.db.queries import agents as q
from arinova.http.agents_common import Row, agent_id_of, agent_not_found
from arinova.http.apidoc import STR, Doc, Reply
from arinova.http.router import ArinovaRouter
from arinova.http.validate import query_param
from arinova.state import AppState
from arinova.timefmt import iso, iso_now

JSON_TYPE: Final = b"application/json; charset=utf-8"
MARKDOWN_TYPE: Final = b"text/markdown"


def content_disposition(agent_name: str, extension: str) -> str:
    filename = f"{agent_name}-export.{extension}"
    if all(" " <= ch <= "~" and ch not in '"\\' for ch in filename):
        return f'attachment; filename="{filename}"'
    fallback = "".join(ch if " " <= ch <= "~" and ch not in '"\\' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def local_time(value: datetime) -> datetime:
    """A stored UTC wall-clock value in the process's time zone (``TZ``)."""
    return value.replace(tzinfo=UTC).astimezone()


def en_us_date(value: datetime) -> str:
    """``toLocaleDateString()`` in en-US: ``2/20/2026``."""
    return f"{value.month}/{value.day}/{value.year}"


def en_us_time(value: datetime) -> str:
    """``toLocaleTimeString()`` in en-US: ``9:15:03 AM``."""
    hour = value.hour % 12 or 12
    half = "AM" if value.hour < 12 else "PM"
    return f"{hour}:{value.minute:02d}:{value.second:02d} {half}"


def group_conversations(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Flat export rows to ``[{conversationId, title, createdAt, messages: [...]}]``,
    keeping the raw timestamps (``_created``) for the Markdown rendering."""
    conversations: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    current_id: Any = None
    for row in rows:
        conversation_id = row["conversation_id"]
        if conversation_id is None:
            continue
        if current is None or current_id != conversation_id:
            current_id = conversation_id
            current = {
                "conversationId": str(conversation_id),
                "title": row["title"],
                "createdAt": row["conversation_created_at"],
                "messages": [],
            }
            conversations.append(current)
        if row["role"] is not None:
            current["messages"].append(
                {
                    "role": row["role"],
                    "content": row["content"],
                    "status": row["status"],
                    "createdAt": row["created_at"],
                }
            )
    return conversations


def export_json(agent_name: str, conversations: list[dict[str, Any]]) -> bytes:
    for conversation in conversations:
        conversation["createdAt"] = iso(conversation["createdAt"])
        for message in conversation["messages"]:
            message["createdAt"] = iso(message["createdAt"])
    body = {"agent": agent_name, "exportedAt": iso_now(), "conversations": conversations}
    return orjson.dumps(body)


def export_markdown(agent_name: str, conversations: list[dict[str, Any]]) -> bytes:
    parts = [f"# Chat Export: {agent_name}\n\n"]
    for conversation in conversations:
        title = conversation["title"]
        created = en_us_date(local_time(conversation["createdAt"]))
        parts.append(f"## {'Untitled' if title is None else title} ({created})\n\n")
        for message in conversation["messages"]:
            who = "You" if message["role"] == "user" else agent_name
            at = en_us_time(local_time(message["createdAt"]))
            parts.append(f"**{who}** [{at}]\n{message['content']}\n\n")
        parts.append("---\n\n")
    return "".join(parts).encode()


def mount(router: ArinovaRouter, state: AppState) -> None:
    async def export_agent(request: Request) -> Response:
        user = await state.auth.require_user(request)
        markdown = query_param(request, "format") == "markdown"
        rows = await state.db.fetch(q.EXPORT.sql, agent_id_of(request), user.id)
        if not rows:
            raise agent_not_found()
        agent_name: str = rows[0]["agent_name"]
        conversations = group_conversations(rows)
        if markdown:
            content = Content(MARKDOWN_TYPE, export_markdown(agent_name, conversations))
            extension = "md"
        else:
            content = Content(JSON_TYPE, export_json(agent_name, conversations))
            extension = "json"
        response = Response(200, None, content)
        disposition = content_disposition(agent_name, extension)
        response.add_header(b"Content-Disposition", disposition.encode())
        return response

    router.add_get(
        "/api/agents/:id/export",
        export_agent,
        doc=Doc(
            "The agent's conversations as a file",
            {
                200: Reply(
                    {"application/json": {"type": "object"}, "text/markdown": STR},
                    headers=("content-disposition",),
                )
            },
            query={"format": {"enum": ["json", "markdown"]}},
            tag="agents",
        ),
    )
