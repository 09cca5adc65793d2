"""The JSON shapes several REST areas answer with (contract rest.md §2), in their field
order. Rows come from the queries of ``arinova.db.queries`` with ids as text and
timestamps already formatted by PostgreSQL (``arinova.db.queries.conversations.iso``);
attachment columns carry the ``att_`` prefix (``arinova.db.queries.messages``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Row(Protocol):
    """A database row (asyncpg ``Record``) as these builders read it."""

    def __getitem__(self, key: str) -> Any: ...


def conversation_json(row: Row) -> dict[str, Any]:
    """Conversation (rest.md §2.2)."""
    return {
        "id": row["id"],
        "title": row["title"],
        "type": row["type"],
        "userId": row["user_id"],
        "agentId": row["agent_id"],
        "pinnedAt": row["pinned_at"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def member_json(row: Row) -> dict[str, Any]:
    """ConversationMember (rest.md §2.3)."""
    return {
        "id": row["id"],
        "conversationId": row["conversation_id"],
        "agentId": row["agent_id"],
        "addedAt": row["added_at"],
    }


def message_json(row: Row, conversation_id: str | None = None) -> dict[str, Any]:
    """Message (rest.md §2.4); ``conversation_id`` when the row leaves it out (all of a
    page's messages are of one conversation)."""
    return {
        "id": row["id"],
        "conversationId": row["conversation_id"] if conversation_id is None else conversation_id,
        "seq": row["seq"],
        "role": row["role"],
        "content": row["content"],
        "status": row["status"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def attachment_json(
    row: Row, url_of: Callable[[str], str], message_id: str | None = None
) -> dict[str, Any]:
    """AttachmentView (rest.md §2.6); ``url_of`` maps a storage path to the URL the API
    gives for it (computed from the current storage, at read time); ``message_id`` when
    the row leaves it out (it sits beside its message's own)."""
    return {
        "id": row["att_id"],
        "messageId": row["att_message_id"] if message_id is None else message_id,
        "fileName": row["att_file_name"],
        "fileType": row["att_file_type"],
        "fileSize": row["att_file_size"],
        "url": url_of(row["att_storage_path"]),
        "createdAt": row["att_created_at"],
    }
