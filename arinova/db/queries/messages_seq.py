"""Per-conversation message sequence numbers, allocated atomically (quirk Q06), for
every statement that writes a message row (``arinova.db.messages_seq`` runs them).

The conversation row is locked first, in its own statement (``LOCK_*``). The INSERT that
follows computes ``NEXT_SEQ`` in its own snapshot, taken after the lock was granted, so
it sees every message a previous holder of the lock committed: two writers never get the
same number, also across server processes. It is dated ``STATEMENT_UTC_NOW``: after the
writer it waited for, so ``created_at`` order and ``seq`` order agree.
"""

from arinova.db.queries import Query
from arinova.db.queries.fragments import STATEMENT_UTC_NOW, last_seq

#: the seq of a new message of conversation ``$1``; valid only after a ``LOCK_*``
#: statement of the same transaction
NEXT_SEQ = f"({last_seq('$1::uuid')} + 1)"

#: $1 conversation id. Locks the row until the transaction ends; no row: no conversation.
LOCK_CONVERSATION = Query(
    "messages_seq.lock_conversation",
    """
    SELECT type::text AS type, agent_id::text AS agent_id
    FROM conversations WHERE id = $1::uuid
    FOR UPDATE
    """,
)

#: $1 conversation id, $2 user id. As ``LOCK_CONVERSATION``, only the user's own.
LOCK_OWN_CONVERSATION = Query(
    "messages_seq.lock_own_conversation",
    """
    SELECT type::text AS type, agent_id::text AS agent_id
    FROM conversations WHERE id = $1::uuid AND user_id = $2::text
    FOR UPDATE
    """,
)

#: $1 conversation id, $2 role, $3 content, $4 status, $5 bump conversations.updated_at
#: -> id, seq. Run after a ``LOCK_*`` statement in the same transaction.
INSERT_MESSAGE = Query(
    "messages_seq.insert_message",
    f"""
    WITH m AS (
        INSERT INTO messages (conversation_id, seq, role, content, status,
                              created_at, updated_at)
        VALUES ($1::uuid, {NEXT_SEQ}, $2::text::message_role, $3::text, $4::text::message_status,
                {STATEMENT_UTC_NOW}, {STATEMENT_UTC_NOW})
        RETURNING id, seq
    ), bump AS (
        UPDATE conversations SET updated_at = {STATEMENT_UTC_NOW}
        WHERE id = $1::uuid AND $5::boolean
    )
    SELECT id::text AS id, seq FROM m
    """,
)
