"""SQL of the realtime layer: the reply pipeline, sync and read markers (websocket.md §3, §8).

Messages are inserted by ``arinova.db.messages_seq``, the allocator every writer shares.
Timestamps are written in UTC (quirk Q37).
"""

from arinova.db.queries import Query
from arinova.db.queries.fragments import UTC_NOW, iso, last_seq

#: $1 conversation id: its agent, read again when a reply (or a queued one) starts.
CONVERSATION_AGENT = Query(
    "realtime.conversation_agent",
    """
    SELECT a.id::text AS id, a.name, a.system_prompt
    FROM conversations c JOIN agents a ON a.id = c.agent_id
    WHERE c.id = $1::uuid
    """,
)

#: $1 message id, $2 content, $3 status: a reply's end (completed, error or cancelled).
FINISH_MESSAGE = Query(
    "realtime.finish_message",
    f"""
    UPDATE messages SET content = $2::text, status = $3::text::message_status,
                        updated_at = {UTC_NOW}
    WHERE id = $1::uuid
    """,
)

#: $1 message id, $2 error: a reply whose process died, if it is still streaming.
FAIL_STREAMING = Query(
    "realtime.fail_streaming",
    f"""
    UPDATE messages SET content = $2::text, status = 'error', updated_at = {UTC_NOW}
    WHERE id = $1::uuid AND status = 'streaming'
    RETURNING id::text AS id
    """,
)

#: $1 user id, $2 conversation id, $3 seq. Only the caller's own conversation, and never
#: past its last message (quirk Q23).
MARK_READ = Query(
    "realtime.mark_read",
    f"""
    INSERT INTO conversation_reads (user_id, conversation_id, last_read_seq, updated_at)
    SELECT $1::text, c.id,
           LEAST($3::bigint, {last_seq("c.id")})::int,
           {UTC_NOW}
    FROM conversations c WHERE c.id = $2::uuid AND c.user_id = $1::text
    ON CONFLICT (user_id, conversation_id) DO UPDATE
    SET last_read_seq = GREATEST(conversation_reads.last_read_seq, EXCLUDED.last_read_seq),
        updated_at = EXCLUDED.updated_at
    """,
)

#: $1 user id, $2 ids of the user's conversations with a reply in progress. Stuck
#: ``streaming`` rows everywhere else become completed (some text) or error (none):
#: decision Q45, before the summaries are read.
REPAIR_STUCK_STREAMS = Query(
    "realtime.repair_stuck_streams",
    f"""
    UPDATE messages m
    SET status = CASE WHEN m.content <> '' THEN 'completed' ELSE 'error' END::message_status,
        updated_at = {UTC_NOW}
    FROM conversations c
    WHERE c.user_id = $1::text AND m.conversation_id = c.id
      AND m.status = 'streaming' AND NOT (c.id = ANY($2::text[]::uuid[]))
    """,
)

#: $1 user id: one row per conversation with its read state and newest message.
SYNC_SUMMARIES = Query(
    "realtime.sync_summaries",
    f"""
    SELECT c.id::text AS id,
           COALESCE(r.last_read_seq, 0) AS last_read_seq,
           COALESCE(r.muted, false) AS muted,
           COALESCE(lm.seq, 0) AS max_seq,
           lm.content, lm.role::text AS role, lm.status::text AS status,
           {iso("lm.created_at")} AS created_at
    FROM conversations c
    LEFT JOIN conversation_reads r ON r.conversation_id = c.id AND r.user_id = $1::text
    LEFT JOIN LATERAL (
        SELECT m.seq, m.content, m.role, m.status, m.created_at
        FROM messages m WHERE m.conversation_id = c.id
        ORDER BY m.seq DESC, m.created_at DESC, m.id DESC LIMIT 1
    ) lm ON true
    WHERE c.user_id = $1::text
    ORDER BY c.created_at, c.id
    """,
)

#: $1 user id, $2 conversation ids, $3 the client's last seq of each, $4 cap per
#: conversation. The user's conversations only, in the summaries' order.
SYNC_MISSED = Query(
    "realtime.sync_missed",
    f"""
    SELECT m.id::text AS id, c.id::text AS conversation_id, m.seq, m.role::text AS role,
           m.content, m.status::text AS status, {iso("m.created_at")} AS created_at
    FROM unnest($2::text[]::uuid[], $3::text[]::bigint[]) AS k(conversation_id, last_seq)
    JOIN conversations c ON c.id = k.conversation_id AND c.user_id = $1::text
    CROSS JOIN LATERAL (
        SELECT id, seq, role, content, status, created_at
        FROM messages WHERE conversation_id = c.id AND seq > k.last_seq
        ORDER BY seq, created_at, id LIMIT $4::int
    ) m
    ORDER BY c.created_at, c.id, m.seq, m.created_at, m.id
    """,
)

#: $1 bot token: the agent it belongs to.
AGENT_BY_TOKEN = Query(
    "realtime.agent_by_token",
    "SELECT id::text AS id, name FROM agents WHERE secret_token = $1::varchar",
)
