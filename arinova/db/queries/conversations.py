"""SQL of the conversations area (contract rest.md §3.5).

Every statement checks ownership itself (``user_id = $2``), so a foreign conversation and an
unknown one look the same. Writes stamp UTC wall-clock time explicitly (quirk Q37).
"""

from arinova.db.queries import Query
from arinova.db.queries.fragments import UTC_NOW, iso, last_seq


def conversation_columns(table: str) -> str:
    """The Conversation shape's columns of ``table`` (a name or alias; rest.md §2.2), ids
    as text and timestamps formatted, as ``arinova.http.shapes.conversation_json`` reads
    them."""
    return (
        f"{table}.id::text AS id, {table}.title, {table}.type::text AS type, {table}.user_id, "
        f"{table}.agent_id::text AS agent_id, {iso(f'{table}.pinned_at')} AS pinned_at, "
        f"{iso(f'{table}.created_at')} AS created_at, {iso(f'{table}.updated_at')} AS updated_at"
    )


_COLUMNS = conversation_columns("conversations")

#: $1 agent id, $2 user id, $3 title (nullable). No row: the agent is not the caller's.
CREATE = Query(
    "conversations.create",
    f"""
    INSERT INTO conversations (title, type, user_id, agent_id)
    SELECT $3::varchar, 'direct', $2::text, a.id
    FROM agents a
    WHERE a.id = $1::uuid AND a.owner_id = $2::text
    RETURNING {_COLUMNS}
    """,
)

#: $1 user id, $2 ILIKE pattern or NULL. The last message is the one with the highest seq
#: (an index walk on (conversation_id, seq) per conversation, never a scan of every message);
#: group member names come from one batched aggregate. Pinned first (decision Q13).
LIST = Query(
    "conversations.list",
    f"""
    WITH convs AS (
        SELECT c.id, c.title, c.type::text AS type, c.user_id, c.agent_id, c.pinned_at,
               c.created_at, c.updated_at,
               a.name AS agent_name, a.description AS agent_description,
               a.avatar_url AS agent_avatar_url
        FROM conversations c
        LEFT JOIN agents a ON a.id = c.agent_id
        WHERE c.user_id = $1::text
          AND ($2::text IS NULL OR c.title ILIKE $2::text OR a.name ILIKE $2::text)
    ),
    group_members AS (
        SELECT cm.conversation_id, array_agg(a.name::text ORDER BY cm.added_at, cm.id) AS names
        FROM conversation_members cm
        JOIN agents a ON a.id = cm.agent_id
        WHERE cm.conversation_id IN (SELECT id FROM convs WHERE type = 'group')
        GROUP BY cm.conversation_id
    )
    SELECT {conversation_columns("convs")}, convs.agent_name, convs.agent_description, convs.agent_avatar_url,
           gm.names AS member_names,
           lm.id::text AS last_id, lm.seq AS last_seq, lm.role::text AS last_role,
           lm.content AS last_content, lm.status::text AS last_status,
           {iso("lm.created_at")} AS last_created_at, {iso("lm.updated_at")} AS last_updated_at
    FROM convs
    LEFT JOIN group_members gm ON gm.conversation_id = convs.id
    LEFT JOIN LATERAL (
        SELECT m.id, m.seq, m.role, m.content, m.status, m.created_at, m.updated_at
        FROM messages m
        WHERE m.conversation_id = convs.id
        ORDER BY m.seq DESC, m.created_at DESC, m.id DESC
        LIMIT 1
    ) lm ON true
    ORDER BY convs.pinned_at DESC NULLS LAST, convs.updated_at DESC, convs.id DESC
    """,
)

#: $1 conversation id, $2 user id.
GET = Query(
    "conversations.get",
    f"SELECT {_COLUMNS} FROM conversations WHERE id = $1::uuid AND user_id = $2::text",
)

#: $1 id, $2 user id, $3 set title?, $4 title, $5 pinned (NULL = leave as is).
UPDATE = Query(
    "conversations.update",
    f"""
    UPDATE conversations SET
        title = CASE WHEN $3::bool THEN $4::varchar ELSE title END,
        pinned_at = CASE
            WHEN $5::bool IS NULL THEN pinned_at
            WHEN $5::bool THEN {UTC_NOW}
            ELSE NULL
        END,
        updated_at = {UTC_NOW}
    WHERE id = $1::uuid AND user_id = $2::text
    RETURNING {_COLUMNS}
    """,
)

#: $1 id, $2 user id. Messages, members, reads, attachments and reactions cascade.
DELETE = Query(
    "conversations.delete",
    "DELETE FROM conversations WHERE id = $1::uuid AND user_id = $2::text RETURNING id",
)

#: $1 id, $2 user id -> (found, deleted). Sequence numbers restart afterwards (decision Q09).
CLEAR_MESSAGES = Query(
    "conversations.clear_messages",
    """
    WITH conv AS (
        SELECT id FROM conversations WHERE id = $1::uuid AND user_id = $2::text
    ),
    gone AS (
        DELETE FROM messages m USING conv WHERE m.conversation_id = conv.id RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM conv) AS found, (SELECT count(*) FROM gone)::int AS deleted
    """,
)

#: $1 id, $2 user id -> max_seq (no row: not the caller's). The read marker only moves forward.
MARK_READ = Query(
    "conversations.mark_read",
    f"""
    WITH conv AS (
        SELECT c.id, {last_seq("c.id")}::int AS max_seq
        FROM conversations c
        WHERE c.id = $1::uuid AND c.user_id = $2::text
    ),
    upsert AS (
        INSERT INTO conversation_reads (user_id, conversation_id, last_read_seq, updated_at)
        SELECT $2::text, conv.id, conv.max_seq, {UTC_NOW} FROM conv
        ON CONFLICT (user_id, conversation_id) DO UPDATE SET
            last_read_seq = GREATEST(conversation_reads.last_read_seq, EXCLUDED.last_read_seq),
            updated_at = EXCLUDED.updated_at
        RETURNING 1
    )
    SELECT max_seq FROM conv
    """,
)

#: $1 id, $2 user id, $3 muted. No row: not the caller's. A new row starts unread (seq 0).
MUTE = Query(
    "conversations.mute",
    f"""
    INSERT INTO conversation_reads (user_id, conversation_id, last_read_seq, muted, updated_at)
    SELECT $2::text, c.id, 0, $3::bool, {UTC_NOW}
    FROM conversations c
    WHERE c.id = $1::uuid AND c.user_id = $2::text
    ON CONFLICT (user_id, conversation_id) DO UPDATE SET
        muted = EXCLUDED.muted,
        updated_at = EXCLUDED.updated_at
    RETURNING muted
    """,
)

#: $1 id, $2 user id: the conversation, its message count and its direct agent (if any).
STATUS = Query(
    "conversations.status",
    f"""
    SELECT c.id::text AS id, c.title, c.type::text AS type, {iso("c.created_at")} AS created_at,
           (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)::int
               AS message_count,
           a.id::text AS agent_id, a.name AS agent_name, a.a2a_endpoint AS agent_a2a_endpoint
    FROM conversations c
    LEFT JOIN agents a ON a.id = c.agent_id
    WHERE c.id = $1::uuid AND c.user_id = $2::text
    """,
)
