"""Server events as JSON text, fields in the contract's order (websocket.md §1.6, §2.1).

Each event is serialised once; ``frame()`` encodes it once for every recipient.
"""

from __future__ import annotations

from typing import Any, Final

from arinova._fast.frames import encode_text
from arinova.js import json_stringify

PONG_TEXT: Final = '{"type":"pong"}'
PONG: Final = encode_text(PONG_TEXT)

MESSAGE_TOO_LARGE: Final = "Message too large"
INVALID_JSON: Final = "Invalid JSON"
INVALID_FORMAT: Final = "Invalid message format"
RATE_LIMITED: Final = "Rate limit exceeded. Please wait before sending more messages."
STREAM_CANCELLED: Final = "Stream cancelled"
AGENT_DISCONNECTED: Final = "Agent disconnected"
AGENT_NOT_CONNECTED: Final = "Agent not connected"
REPLACED: Final = "Replaced by new connection"
#: the reply of a stored message that finds its conversation's reply queue full
REPLY_QUEUE_FULL: Final = (
    "Too many messages are waiting for a reply in this conversation. "
    "Please wait for the agent to answer, then send it again."
)
HEARTBEAT_TIMEOUT: Final = "Heartbeat timeout"


def dumps(event: dict[str, Any]) -> str:
    return json_stringify(event)


def frame(text: str) -> bytes:
    return encode_text(text)


def stream_start(conversation_id: str, message_id: str, seq: int) -> str:
    return dumps(
        {
            "type": "stream_start",
            "conversationId": conversation_id,
            "messageId": message_id,
            "seq": seq,
        }
    )


def stream_chunk(conversation_id: str, message_id: str, seq: int, chunk: str) -> str:
    return dumps(
        {
            "type": "stream_chunk",
            "conversationId": conversation_id,
            "messageId": message_id,
            "seq": seq,
            "chunk": chunk,
        }
    )


def stream_end(conversation_id: str, message_id: str, seq: int) -> str:
    return dumps(
        {
            "type": "stream_end",
            "conversationId": conversation_id,
            "messageId": message_id,
            "seq": seq,
        }
    )


def stream_error(conversation_id: str, message_id: str, seq: int, error: str) -> str:
    return dumps(
        {
            "type": "stream_error",
            "conversationId": conversation_id,
            "messageId": message_id,
            "seq": seq,
            "error": error,
        }
    )


def protocol_error(error: str, conversation_id: str = "") -> bytes:
    """An error about one inbound frame, for the socket that sent it only."""
    return frame(stream_error(conversation_id, "", 0, error))


def sync_response(conversations: list[dict[str, Any]], missed: list[dict[str, Any]]) -> str:
    return dumps(
        {"type": "sync_response", "conversations": conversations, "missedMessages": missed}
    )


# -- to agents ---------------------------------------------------------------------------


def auth_ok(agent_name: str) -> bytes:
    return frame(dumps({"type": "auth_ok", "agentName": agent_name}))


def auth_error(error: str) -> bytes:
    return frame(dumps({"type": "auth_error", "error": error}))


def task(task_id: str, conversation_id: str, content: str) -> bytes:
    return frame(
        dumps(
            {
                "type": "task",
                "taskId": task_id,
                "conversationId": conversation_id,
                "content": content,
            }
        )
    )


def offline_agent_row(name: str) -> str:
    """The content stored as the reply when the conversation's agent is not connected."""
    return (
        f"**{name}** is not connected yet. An AI agent needs to connect to this bot before "
        "it can respond.\n\nCopy the **Bot Token** from bot settings, then run:\n```\n"
        "openclaw arinova-setup --token <bot-token>\n```"
    )


def offline_agent_error(name: str) -> str:
    return (
        f"{name} is not connected. Copy the Bot Token from bot settings and run: "
        "openclaw arinova-setup --token <bot-token>"
    )
