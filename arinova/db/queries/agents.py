"""SQL of the agents area (contract rest.md §3.3, §3.4).

Every statement checks ownership itself (``owner_id = $2``), so another user's agent and an
unknown one look the same. Writes stamp UTC wall-clock time explicitly (quirk Q37).
"""

from arinova.db.queries import Query
from arinova.db.queries.fragments import UTC_NOW

#: the Agent shape of rest.md §2.1, in its field order
AGENT_COLUMNS = (
    "id, name, description, avatar_url, a2a_endpoint, secret_token, owner_id, is_public, "
    "category, usage_count, system_prompt, welcome_message, quick_replies, "
    "notifications_enabled, created_at, updated_at"
)

#: $1 name, $2 description, $3 a2a endpoint, $4 secret token, $5 owner id
CREATE = Query(
    "agents.create",
    f"""
    INSERT INTO agents (name, description, a2a_endpoint, secret_token, owner_id,
                        created_at, updated_at)
    VALUES ($1::varchar, $2::text, $3::text, $4::varchar, $5::text, {UTC_NOW}, {UTC_NOW})
    RETURNING {AGENT_COLUMNS}
    """,
)

#: $1 owner id
LIST = Query(
    "agents.list",
    f"SELECT {AGENT_COLUMNS} FROM agents WHERE owner_id = $1::text ORDER BY created_at, id",
)

#: $1 agent id, $2 owner id
GET = Query(
    "agents.get",
    f"SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1::uuid AND owner_id = $2::text",
)

#: $1 agent id, $2 owner id, $3 jsonb object holding only the fields the body contains
#: (API names; JSON null clears a nullable column). Always bumps updated_at.
UPDATE = Query(
    "agents.update",
    f"""
    UPDATE agents SET
        name = CASE WHEN $3::jsonb ? 'name' THEN $3::jsonb->>'name' ELSE name END,
        description = CASE WHEN $3::jsonb ? 'description'
            THEN $3::jsonb->>'description' ELSE description END,
        a2a_endpoint = CASE WHEN $3::jsonb ? 'a2aEndpoint'
            THEN $3::jsonb->>'a2aEndpoint' ELSE a2a_endpoint END,
        avatar_url = CASE WHEN $3::jsonb ? 'avatarUrl'
            THEN $3::jsonb->>'avatarUrl' ELSE avatar_url END,
        system_prompt = CASE WHEN $3::jsonb ? 'systemPrompt'
            THEN $3::jsonb->>'systemPrompt' ELSE system_prompt END,
        welcome_message = CASE WHEN $3::jsonb ? 'welcomeMessage'
            THEN $3::jsonb->>'welcomeMessage' ELSE welcome_message END,
        quick_replies = CASE WHEN $3::jsonb ? 'quickReplies'
            THEN NULLIF($3::jsonb->'quickReplies', 'null'::jsonb) ELSE quick_replies END,
        notifications_enabled = CASE WHEN $3::jsonb ? 'notificationsEnabled'
            THEN ($3::jsonb->>'notificationsEnabled')::boolean ELSE notifications_enabled END,
        is_public = CASE WHEN $3::jsonb ? 'isPublic'
            THEN ($3::jsonb->>'isPublic')::boolean ELSE is_public END,
        category = CASE WHEN $3::jsonb ? 'category'
            THEN $3::jsonb->>'category' ELSE category END,
        updated_at = {UTC_NOW}
    WHERE id = $1::uuid AND owner_id = $2::text
    RETURNING {AGENT_COLUMNS}
    """,
)

#: $1 agent id, $2 owner id — what the skills and health probes need; also the
#: ownership check of the avatar upload
ENDPOINT = Query(
    "agents.endpoint",
    "SELECT id, a2a_endpoint FROM agents WHERE id = $1::uuid AND owner_id = $2::text",
)

#: $1 owner id — every agent of the caller, for the batch health check
ENDPOINTS = Query(
    "agents.endpoints",
    "SELECT id, a2a_endpoint FROM agents WHERE owner_id = $1::text ORDER BY created_at, id",
)

#: $1 agent id, $2 owner id, $3 new token
REGENERATE_TOKEN = Query(
    "agents.regenerate_token",
    f"""
    UPDATE agents SET secret_token = $3::varchar, updated_at = {UTC_NOW}
    WHERE id = $1::uuid AND owner_id = $2::text
    RETURNING secret_token
    """,
)

#: $1 agent id, $2 owner id. Counts over the caller's direct conversations with the agent
#: (quirk Q54 fixed). No row: not the caller's agent.
STATS = Query(
    "agents.stats",
    """
    SELECT
        (SELECT count(*)::int FROM conversations c
         WHERE c.agent_id = a.id AND c.user_id = $2::text) AS total_conversations,
        ms.total_messages, ms.last_active
    FROM agents a
    CROSS JOIN LATERAL (
        SELECT count(m.id)::int AS total_messages, max(m.created_at) AS last_active
        FROM conversations c
        JOIN messages m ON m.conversation_id = c.id
        WHERE c.agent_id = a.id AND c.user_id = $2::text
    ) ms
    WHERE a.id = $1::uuid AND a.owner_id = $2::text
    """,
)

#: $1 agent id, $2 owner id. Deletes the caller's direct conversations with the agent
#: (messages, attachments, reads, reactions cascade). No row: not the caller's agent.
DELETE_HISTORY = Query(
    "agents.delete_history",
    """
    WITH target AS (
        SELECT id FROM agents WHERE id = $1::uuid AND owner_id = $2::text
    ), deleted AS (
        DELETE FROM conversations c USING target
        WHERE c.agent_id = target.id AND c.user_id = $2::text
    )
    SELECT id FROM target
    """,
)

#: $1 agent id, $2 owner id. One row per message (conversations without messages give one
#: row with NULL message fields; an agent without conversations gives one row with NULL
#: conversation fields), in export order. No row: not the caller's agent.
EXPORT = Query(
    "agents.export",
    """
    SELECT a.name AS agent_name,
           c.id AS conversation_id, c.title, c.created_at AS conversation_created_at,
           m.role::text AS role, m.content, m.status::text AS status, m.created_at
    FROM agents a
    LEFT JOIN conversations c ON c.agent_id = a.id AND c.user_id = $2::text
    LEFT JOIN messages m ON m.conversation_id = c.id
    WHERE a.id = $1::uuid AND a.owner_id = $2::text
    ORDER BY c.created_at, c.id, m.created_at, m.seq, m.id
    """,
)

#: $1 agent id, $2 owner id. One statement, so all or nothing (quirk Q21): group
#: memberships go, the agent's direct conversations go (their messages cascade), channels
#: are unlinked, then the agent row. NO ACTION foreign keys are checked at the end of the
#: statement, after every part ran. No row: not the caller's agent.
DELETE = Query(
    "agents.delete",
    """
    WITH target AS (
        SELECT id FROM agents WHERE id = $1::uuid AND owner_id = $2::text FOR UPDATE
    ), memberships AS (
        DELETE FROM conversation_members cm USING target WHERE cm.agent_id = target.id
    ), direct AS (
        DELETE FROM conversations c USING target WHERE c.agent_id = target.id
    ), channel_links AS (
        UPDATE channels ch SET agent_id = NULL FROM target WHERE ch.agent_id = target.id
    )
    DELETE FROM agents a USING target WHERE a.id = target.id
    RETURNING a.id
    """,
)
