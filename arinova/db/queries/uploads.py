"""SQL of the uploads area: chat file uploads, attachments, agent avatars (rest.md §3.9,
§3.3 avatar). Ownership is part of every statement, so another user's conversation,
attachment or agent looks exactly like an unknown one (the avatar's ownership check is
``agents.ENDPOINT``).
"""

from arinova.db.queries import Query
from arinova.db.queries.fragments import STATEMENT_UTC_NOW, UTC_NOW
from arinova.db.queries.messages import attachment_columns, message_columns
from arinova.db.queries.messages_seq import NEXT_SEQ

#: $1 conversation id, $2 user id. No row: not the caller's conversation.
OWN_CONVERSATION = Query(
    "uploads.own_conversation",
    "SELECT type::text AS type FROM conversations WHERE id = $1::uuid AND user_id = $2::text",
)

#: $1 conversation id, $2 content, $3 file name, $4 file type, $5 file size, $6 storage
#: path. The user's message (with the next seq: ``arinova.db.messages_seq``) and its
#: attachment, in one statement, run after ``lock_conversation`` in the same transaction.
INSERT_MESSAGE_WITH_ATTACHMENT = Query(
    "uploads.insert_message_with_attachment",
    f"""
    WITH m AS (
        INSERT INTO messages (conversation_id, seq, role, content, status,
                              created_at, updated_at)
        VALUES ($1::uuid, {NEXT_SEQ}, 'user', $2::text, 'completed',
                {STATEMENT_UTC_NOW}, {STATEMENT_UTC_NOW})
        RETURNING id, conversation_id, seq, role, content, status, created_at, updated_at
    ), a AS (
        INSERT INTO attachments (message_id, file_name, file_type, file_size,
                                 storage_path, created_at)
        SELECT m.id, $3::varchar, $4::varchar, $5::int, $6::text, {STATEMENT_UTC_NOW} FROM m
        RETURNING id, message_id, file_name, file_type, file_size, storage_path, created_at
    )
    SELECT {message_columns("m")}, {attachment_columns("a")}
    FROM m, a
    """,
)

#: $1 attachment id, $2 user id: the attachment when its conversation is the caller's.
OWN_ATTACHMENT = Query(
    "uploads.own_attachment",
    f"""
    SELECT {attachment_columns("a")}
    FROM attachments a
    JOIN messages m ON m.id = a.message_id
    JOIN conversations c ON c.id = m.conversation_id
    WHERE a.id = $1::uuid AND c.user_id = $2::text
    """,
)

#: $1 agent id, $2 owner id, $3 avatar URL. No row: the agent is gone.
SET_AVATAR = Query(
    "uploads.set_avatar",
    f"""
    UPDATE agents SET avatar_url = $3::text, updated_at = {UTC_NOW}
    WHERE id = $1::uuid AND owner_id = $2::text
    RETURNING avatar_url
    """,
)
