"""Per-conversation sequence numbers, allocated atomically (quirk Q06).

The conversation row is locked first, in its own statement: the MAX that follows then
runs on a snapshot taken after the lock was granted, so it sees every message a
previous holder of the lock committed.
"""

from arinova.db.queries import Query

#: $1 conversation id. Locks the row until the transaction ends; no row: no conversation.
LOCK_CONVERSATION = Query(
    "messages_seq.lock_conversation",
    "SELECT type::text AS type FROM conversations WHERE id = $1::uuid FOR UPDATE",
)

#: $1 conversation id
NEXT_SEQ = Query(
    "messages_seq.next_seq",
    "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE conversation_id = $1::uuid",
)
