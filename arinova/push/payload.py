"""The push message for an agent reply (websocket.md §10)."""

from __future__ import annotations

from typing import Final

import orjson

PREVIEW_UNITS: Final = 100
ELLIPSIS: Final = "…"


def preview(content: str, limit: int = PREVIEW_UNITS) -> str:
    """The first ``limit`` UTF-16 code units of ``content`` followed by ``…`` when longer,
    as JavaScript's ``slice(0, 100)`` cuts (a surrogate pair split at the edge keeps its
    high half, which cannot travel as UTF-8 and becomes U+FFFD)."""
    if len(content) <= limit // 2 or (content.isascii() and len(content) <= limit):
        return content
    encoded = content.encode("utf-16-le", "surrogatepass")
    if len(encoded) <= limit * 2:
        return content
    head = encoded[: limit * 2].decode("utf-16-le", "replace")
    return head + ELLIPSIS


def message_payload(agent_name: str, conversation_id: str, content: str) -> bytes:
    return orjson.dumps(
        {
            "type": "message",
            "title": agent_name,
            "body": preview(content),
            "url": f"/chat/{conversation_id}",
        }
    )
