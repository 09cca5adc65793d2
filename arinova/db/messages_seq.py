"""Allocate the next message ``seq`` of a conversation (quirk Q06), for every writer:
REST uploads and the socket pipeline alike.

Call inside a transaction and insert the message in that same transaction: the
conversation row stays locked until it commits, so two writers never get the same
number (also across server processes).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from asyncpg import Connection
from asyncpg.pool import PoolConnectionProxy

from arinova.db.queries.messages_seq import LOCK_CONVERSATION, NEXT_SEQ


async def allocate_seq(
    conn: Connection[Any] | PoolConnectionProxy[Any], conversation_id: UUID | str
) -> int | None:
    """The next ``seq`` of the conversation, or None when the conversation is gone."""
    if not conn.is_in_transaction():
        raise RuntimeError("allocate_seq must run inside a transaction")
    if await conn.fetchval(LOCK_CONVERSATION.sql, conversation_id) is None:
        return None
    seq = await conn.fetchval(NEXT_SEQ.sql, conversation_id)
    return int(seq)
