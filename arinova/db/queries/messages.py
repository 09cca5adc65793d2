"""SQL of the messages area (contract rest.md §3.7).

Pages are keyset-paged on (created_at, seq, id) at full stored precision, scoped to one
conversation (quirk Q17). Each page statement returns one row per (message, attachment) —
a message without attachments is one row with NULL attachment columns — ordered so that a
message's attachments follow it; the caller folds them. All attachments of a page therefore
cost one join, never a query per message.
"""

from arinova.db.queries import Query

_MESSAGE = (
    "id, conversation_id, seq, role::text AS role, content, status::text AS status, "
    "created_at, updated_at"
)
_MESSAGE_OUT = (
    "p.id::text AS id, p.conversation_id::text AS conversation_id, p.seq, p.role, p.content, "
    "p.status, p.created_at, p.updated_at"
)
_ORDER_DESC = "ORDER BY created_at DESC, seq DESC, id DESC"
_ORDER_ASC = "ORDER BY created_at, seq, id"


def _with_attachments(page_sql: str) -> str:
    return f"""
    WITH page AS ({page_sql})
    SELECT {_MESSAGE_OUT}, a.id::text AS att_id, a.file_name AS att_file_name, a.file_type AS att_file_type,
           a.file_size AS att_file_size, a.storage_path AS att_storage_path,
           a.created_at AS att_created_at
    FROM page p
    LEFT JOIN attachments a ON a.message_id = p.id
    ORDER BY p.created_at, p.seq, p.id, a.created_at, a.id
    """


#: $1 conversation id, $2 user id, $3 cursor message id (NULL for none). No row: the
#: conversation is not the caller's; cursor columns are NULL when the cursor is not a message
#: of this conversation.
PAGE_CONTEXT = Query(
    "messages.page_context",
    """
    SELECT x.id::text AS cursor_id, x.created_at AS cursor_created_at, x.seq AS cursor_seq
    FROM conversations c
    LEFT JOIN messages x ON x.id = $3::uuid AND x.conversation_id = c.id
    WHERE c.id = $1::uuid AND c.user_id = $2::text
    """,
)

#: $1 conversation id, $2 row limit: the newest messages.
PAGE_LATEST = Query(
    "messages.page_latest",
    _with_attachments(
        f"SELECT {_MESSAGE} FROM messages WHERE conversation_id = $1::uuid {_ORDER_DESC} "
        "LIMIT $2::int"
    ),
)

#: $1 conversation id, $2 row limit, $3..$5 cursor (created_at, seq, id): the newest messages
#: older than the cursor.
PAGE_BEFORE = Query(
    "messages.page_before",
    _with_attachments(
        f"SELECT {_MESSAGE} FROM messages WHERE conversation_id = $1::uuid "
        "AND (created_at, seq, id) < ($3::timestamp, $4::int, $5::uuid) "
        f"{_ORDER_DESC} LIMIT $2::int"
    ),
)

#: $1 conversation id, $2 row limit, $3..$5 cursor: the oldest messages newer than the cursor.
PAGE_AFTER = Query(
    "messages.page_after",
    _with_attachments(
        f"SELECT {_MESSAGE} FROM messages WHERE conversation_id = $1::uuid "
        "AND (created_at, seq, id) > ($3::timestamp, $4::int, $5::uuid) "
        f"{_ORDER_ASC} LIMIT $2::int"
    ),
)

#: $1 conversation id, $2 row limit per side, $3..$5 target (created_at, seq, id): up to $2
#: older messages, the target, up to $2 newer ones (the target splits them).
PAGE_AROUND = Query(
    "messages.page_around",
    _with_attachments(
        f"""
        (SELECT {_MESSAGE} FROM messages
         WHERE conversation_id = $1::uuid
           AND (created_at, seq, id) < ($3::timestamp, $4::int, $5::uuid)
         {_ORDER_DESC} LIMIT $2::int)
        UNION ALL
        (SELECT {_MESSAGE} FROM messages
         WHERE id = $5::uuid AND conversation_id = $1::uuid)
        UNION ALL
        (SELECT {_MESSAGE} FROM messages
         WHERE conversation_id = $1::uuid
           AND (created_at, seq, id) > ($3::timestamp, $4::int, $5::uuid)
         {_ORDER_ASC} LIMIT $2::int)
        """
    ),
)

#: $1 conversation id, $2 message id, $3 user id -> (found_conversation, deleted).
#: Attachments rows and reactions cascade.
DELETE = Query(
    "messages.delete",
    """
    WITH conv AS (
        SELECT id FROM conversations WHERE id = $1::uuid AND user_id = $3::text
    ),
    gone AS (
        DELETE FROM messages m USING conv
        WHERE m.id = $2::uuid AND m.conversation_id = conv.id
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM conv) AS found, EXISTS (SELECT 1 FROM gone) AS deleted
    """,
)

_SEARCH_MATCH = "c.user_id = $1::text AND m.content ILIKE $2::text"

#: $1 user id, $2 ILIKE pattern, $3 limit, $4 offset -> one row per hit, each with the total;
#: a single row of NULL hit columns when the page is empty.
SEARCH = Query(
    "messages.search",
    f"""
    SELECT t.total, hit.*
    FROM (
        SELECT count(*)::int AS total
        FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE {_SEARCH_MATCH}
    ) t
    LEFT JOIN LATERAL (
        SELECT m.id::text AS message_id, m.conversation_id::text AS conversation_id, m.content, m.role::text AS role,
               m.created_at, m.seq, c.title AS conversation_title, c.agent_id::text AS agent_id,
               a.name AS agent_name, a.avatar_url AS agent_avatar_url
        FROM messages m
        JOIN conversations c ON c.id = m.conversation_id
        LEFT JOIN agents a ON a.id = c.agent_id
        WHERE {_SEARCH_MATCH}
        ORDER BY m.created_at DESC, m.seq DESC, m.id DESC
        LIMIT $3::int OFFSET $4::int
    ) hit ON true
    ORDER BY hit.created_at DESC, hit.seq DESC, hit.message_id DESC
    """,
)
