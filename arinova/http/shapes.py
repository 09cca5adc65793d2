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


def message_view(
    message_id: str,
    conversation_id: str,
    seq: int,
    role: str,
    content: str,
    status: str,
    created_at: str,
    updated_at: str,
) -> dict[str, Any]:
    """Message (rest.md §2.4) from its values (a page unpacks its rows positionally)."""
    return {
        "id": message_id,
        "conversationId": conversation_id,
        "seq": seq,
        "role": role,
        "content": content,
        "status": status,
        "createdAt": created_at,
        "updatedAt": updated_at,
    }


def message_json(row: Row) -> dict[str, Any]:
    """Message (rest.md §2.4) from a row of ``message_columns``."""
    return message_view(
        row["id"],
        row["conversation_id"],
        row["seq"],
        row["role"],
        row["content"],
        row["status"],
        row["created_at"],
        row["updated_at"],
    )


def attachment_view(
    attachment_id: str,
    message_id: str,
    file_name: str,
    file_type: str,
    file_size: int,
    url: str,
    created_at: str,
) -> dict[str, Any]:
    """AttachmentView (rest.md §2.6) from its values; ``url`` is the one the API gives for
    the stored path (computed from the current storage, at read time)."""
    return {
        "id": attachment_id,
        "messageId": message_id,
        "fileName": file_name,
        "fileType": file_type,
        "fileSize": file_size,
        "url": url,
        "createdAt": created_at,
    }


def attachment_json(row: Row, url_of: Callable[[str], str]) -> dict[str, Any]:
    """AttachmentView (rest.md §2.6) from a row of ``attachment_columns``; ``url_of`` maps
    a storage path to its URL."""
    return attachment_view(
        row["att_id"],
        row["att_message_id"],
        row["att_file_name"],
        row["att_file_type"],
        row["att_file_size"],
        url_of(row["att_storage_path"]),
        row["att_created_at"],
    )
