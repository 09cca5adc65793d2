"""The push message for an agent reply (websocket.md §10)."""

from __future__ import annotations

from typing import Final

import orjson

from arinova import js

PREVIEW_UNITS: Final = 100
ELLIPSIS: Final = "…"


def preview(content: str, limit: int = PREVIEW_UNITS) -> str:
    """The first ``limit`` UTF-16 code units of ``content`` followed by ``…`` when longer,
    as JavaScript's ``slice(0, 100)`` cuts (a surrogate pair split at the edge keeps its
    high half, which cannot travel as UTF-8 and becomes U+FFFD)."""
    if len(content) <= limit // 2 or js.utf16_length(content) <= limit:
        return content
    return js.well_formed(js.utf16_slice(content, 0, limit)) + ELLIPSIS


def message_payload(agent_name: str, conversation_id: str, content: str) -> bytes:
    return orjson.dumps(
        {
            "type": "message",
            "title": agent_name,
            "body": preview(content),
            "url": f"/chat/{conversation_id}",
        }
    )
