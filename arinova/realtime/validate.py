"""The inbound event schemas of both sockets (the original's zod unions), as plain checks.

Each ``parse_*`` returns the event dict (unknown keys kept, as zod's ``strip`` ignores
them) or None when it does not match.

PostgreSQL text cannot hold NUL. REST refuses it in a field with 400, but a socket
event that is refused leaves the web app without a sign and an agent's reply unfinished,
so NUL is removed from the texts that are stored or streamed (message content, agent
chunks, final content and errors), as the upload route removes it from captions; the
text is then checked as if it had come without it.
"""

from __future__ import annotations

import re
from typing import Any, Final

from arinova.js import utf16_length

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_uuid(value: object) -> bool:
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def _non_negative_int(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, float) and value.is_integer() and value >= 0


def _as_int(value: Any) -> int:
    return int(value)


def _without_nul(text: str) -> str:
    return text.replace("\x00", "")


def parse_client_event(event: object) -> dict[str, Any] | None:
    if not isinstance(event, dict):
        return None
    kind = event.get("type")
    if kind == "ping":
        return event
    if kind == "send_message":
        content = event.get("content")
        if not isinstance(content, str) or not is_uuid(event.get("conversationId")):
            return None
        content = event["content"] = _without_nul(content)
        return event if 1 <= utf16_length(content) <= 32_000 else None
    if kind == "cancel_stream":
        ok = is_uuid(event.get("conversationId")) and is_uuid(event.get("messageId"))
        return event if ok else None
    if kind == "sync":
        conversations = event.get("conversations")
        if not isinstance(conversations, dict):
            return None
        if not all(is_uuid(k) and _non_negative_int(v) for k, v in conversations.items()):
            return None
        event["conversations"] = {k: _as_int(v) for k, v in conversations.items()}
        return event
    if kind == "mark_read":
        seq = event.get("seq")
        if is_uuid(event.get("conversationId")) and _non_negative_int(seq):
            event["seq"] = _as_int(seq)
            return event
        return None
    if kind == "focus":
        return event if isinstance(event.get("visible"), bool) else None
    return None


def _skill(value: object) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    sid, name, description = value.get("id"), value.get("name"), value.get("description")
    if not (isinstance(sid, str) and sid and isinstance(name, str) and name):
        return None
    if not isinstance(description, str):
        return None
    return {"id": sid, "name": name, "description": description}


#: the field that carries each task event's text
AGENT_VALUE_FIELD: Final = {
    "agent_chunk": "chunk",
    "agent_complete": "content",
    "agent_error": "error",
}


def parse_agent_event(event: object) -> dict[str, Any] | None:
    if not isinstance(event, dict):
        return None
    kind = event.get("type")
    field = AGENT_VALUE_FIELD.get(kind) if isinstance(kind, str) else None
    if field is not None:  # the frames of a reply: every chunk comes this way
        value = event.get(field)
        if not (isinstance(value, str) and isinstance(event.get("taskId"), str)):
            return None
        if "\x00" in value:
            event[field] = _without_nul(value)
        return event
    if kind == "ping":
        return event
    if kind == "agent_auth":
        token = event.get("botToken")
        if not isinstance(token, str) or not token:
            return None
        skills = event.get("skills")
        if skills is None and "skills" not in event:
            event["skills"] = []
            return event
        if not isinstance(skills, list):
            return None
        parsed = [_skill(s) for s in skills]
        if any(s is None for s in parsed):
            return None
        event["skills"] = parsed
        return event
    return None
