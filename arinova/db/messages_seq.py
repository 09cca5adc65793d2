"""The one allocator of message ``seq`` numbers (quirk Q06), for every writer of a
message row: REST uploads and the socket pipeline alike.

In one transaction: ``lock_conversation`` first, then ``insert_message`` (or a statement
built on ``queries.messages_seq.NEXT_SEQ``, as the upload's message-and-attachment
insert). The conversation row stays locked until the transaction commits, so two writers
never get the same number (also across server processes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from arinova.db.queries import messages_seq as q

if TYPE_CHECKING:
    from asyncpg import Record

    from arinova.db.pool import AnyConnection as Conn


async def lock_conversation(
    conn: Conn, conversation_id: UUID | str, *, owner_id: str | None = None
) -> Record | None:
    """Lock the conversation's row (only when it is ``owner_id``'s, when given): its
    ``type`` and ``agent_id``, or None when there is no such conversation."""
    if not conn.is_in_transaction():
        raise RuntimeError("lock_conversation must run inside a transaction")
    if owner_id is None:
        return await conn.fetchrow(q.LOCK_CONVERSATION.sql, conversation_id)
    return await conn.fetchrow(q.LOCK_OWN_CONVERSATION.sql, conversation_id, owner_id)


async def insert_message(
    conn: Conn,
    conversation_id: UUID | str,
    role: str,
    content: str,
    status: str,
    *,
    bump: bool,
) -> tuple[str, int]:
    """Store a message with the next ``seq`` of a conversation ``lock_conversation``
    locked in this transaction; ``bump`` also moves the conversation's ``updated_at``.
    Returns the message's id and seq."""
    row = await conn.fetchrow(q.INSERT_MESSAGE.sql, conversation_id, role, content, status, bump)
    assert row is not None
    return row["id"], row["seq"]
