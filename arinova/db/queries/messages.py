"""SQL of the messages area (contract rest.md §3.7).

A page is one statement: the conversation's ownership, the cursor (looked up in this
conversation only), the messages keyset-paged on (created_at, seq, id) at full stored
precision (quirk Q17) and all their attachments. It returns one row per (message,
attachment) — a message without attachments is one row with NULL attachment columns —
ordered so that a message's attachments follow it; every row carries the cursor's id.
No row at all: the conversation is not the caller's. A single row with a NULL message id:
the page is empty.
"""

from typing import Final

from arinova.db.queries import Query
from arinova.db.queries.fragments import iso


def message_columns(table: str, *, conversation: bool = True) -> str:
    """The Message shape's columns of ``table`` (rest.md §2.4), ids as text and timestamps
    formatted, as ``arinova.http.shapes.message_json`` reads them; without the conversation
    id when the reader knows it (``conversation=False``)."""
    conversation_id = f"{table}.conversation_id::text AS conversation_id, " if conversation else ""
    return (
        f"{table}.id::text AS id, {conversation_id}"
        f"{table}.seq, {table}.role::text AS role, {table}.content, "
        f"{table}.status::text AS status, {iso(f'{table}.created_at')} AS created_at, "
        f"{iso(f'{table}.updated_at')} AS updated_at"
    )


def attachment_columns(table: str, *, message: bool = True) -> str:
    """An attachment's columns of ``table`` with the ``att_`` prefix (they sit beside a
    message's in a row), as ``arinova.http.shapes.attachment_json`` reads them; without the
    message id when its message's own is in the row (``message=False``)."""
    message_id = f"{table}.message_id::text AS att_message_id, " if message else ""
    return (
        f"{table}.id::text AS att_id, {message_id}"
        f"{table}.file_name AS att_file_name, {table}.file_type AS att_file_type, "
        f"{table}.file_size AS att_file_size, {table}.storage_path AS att_storage_path, "
        f"{iso(f'{table}.created_at')} AS att_created_at"
    )


_MESSAGE = (
    "m.id, m.conversation_id, m.seq, m.role::text AS role, m.content, "
    "m.status::text AS status, m.created_at, m.updated_at"
)
_DESC = "ORDER BY m.created_at DESC, m.seq DESC, m.id DESC"
_ASC = "ORDER BY m.created_at, m.seq, m.id"
_IN_CONVERSATION = "FROM ctx JOIN messages m ON m.conversation_id = ctx.id"
_CURSOR = "(ctx.cursor_at, ctx.cursor_seq, ctx.cursor_id)"


#: the columns of a page's rows, in order (``arinova.http.messages.fold_page`` unpacks them)
PAGE_COLUMNS: Final = (
    "cursor_id",
    "id",
    "seq",
    "role",
    "content",
    "status",
    "created_at",
    "updated_at",
    "att_id",
    "att_file_name",
    "att_file_type",
    "att_file_size",
    "att_storage_path",
    "att_created_at",
)


def _page(page_sql: str) -> str:
    return f"""
    WITH ctx AS (
        SELECT c.id, x.id AS cursor_id, x.created_at AS cursor_at, x.seq AS cursor_seq
        FROM conversations c
        LEFT JOIN messages x ON x.id = $3::uuid AND x.conversation_id = c.id
        WHERE c.id = $1::uuid AND c.user_id = $2::text
    ),
    page AS ({page_sql})
    SELECT ctx.cursor_id::text AS cursor_id, {message_columns("p", conversation=False)},
           {attachment_columns("a", message=False)}
    FROM ctx
    LEFT JOIN page p ON true
    LEFT JOIN attachments a ON a.message_id = p.id
    ORDER BY p.created_at, p.seq, p.id, a.created_at, a.id
    """


#: $1 conversation id, $2 user id, $3 cursor id (NULL: none), $4 row limit: the newest
#: messages, older than the cursor when it is a message of this conversation.
PAGE_BEFORE = Query(
    "messages.page_before",
    _page(
        f"SELECT {_MESSAGE} {_IN_CONVERSATION} WHERE ctx.cursor_id IS NULL "
        f"OR (m.created_at, m.seq, m.id) < {_CURSOR} {_DESC} LIMIT $4::int"
    ),
)

#: $1 conversation id, $2 user id, $3 cursor id, $4 row limit: the oldest messages newer
#: than the cursor (none when the cursor is not a message of this conversation).
PAGE_AFTER = Query(
    "messages.page_after",
    _page(
        f"SELECT {_MESSAGE} {_IN_CONVERSATION} "
        f"WHERE (m.created_at, m.seq, m.id) > {_CURSOR} {_ASC} LIMIT $4::int"
    ),
)

#: $1 conversation id, $2 user id, $3 target id, $4 row limit per side: up to $4 older
#: messages, the target, up to $4 newer ones (the target splits them).
PAGE_AROUND = Query(
    "messages.page_around",
    _page(
        f"""
        (SELECT {_MESSAGE} {_IN_CONVERSATION}
         WHERE (m.created_at, m.seq, m.id) < {_CURSOR} {_DESC} LIMIT $4::int)
        UNION ALL
        (SELECT {_MESSAGE} {_IN_CONVERSATION} WHERE m.id = ctx.cursor_id)
        UNION ALL
        (SELECT {_MESSAGE} {_IN_CONVERSATION}
         WHERE (m.created_at, m.seq, m.id) > {_CURSOR} {_ASC} LIMIT $4::int)
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
               {iso("m.created_at")} AS created_at, m.created_at AS sort_at, m.seq,
               c.title AS conversation_title, c.agent_id::text AS agent_id,
               a.name AS agent_name, a.avatar_url AS agent_avatar_url
        FROM messages m
        JOIN conversations c ON c.id = m.conversation_id
        LEFT JOIN agents a ON a.id = c.agent_id
        WHERE {_SEARCH_MATCH}
        ORDER BY m.created_at DESC, m.seq DESC, m.id DESC
        LIMIT $3::int OFFSET $4::int
    ) hit ON true
    ORDER BY hit.sort_at DESC, hit.seq DESC, hit.message_id DESC
    """,
)
