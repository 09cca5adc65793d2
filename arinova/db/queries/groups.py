"""SQL of the group conversations area (contract rest.md §3.6)."""

from arinova.db.queries import Query
from arinova.db.queries.conversations import conversation_columns
from arinova.db.queries.fragments import iso

#: $1 user id, $2 agent ids (distinct), $3 title. One statement, so the conversation and its
#: members are written together or not at all (quirk Q21). No row: some agent is not the
#: caller's. One row per member, each carrying the conversation's columns.
CREATE = Query(
    "groups.create",
    f"""
    WITH owned AS (
        SELECT count(*) AS n FROM agents WHERE owner_id = $1::text AND id = ANY($2::text[]::uuid[])
    ),
    conv AS (
        INSERT INTO conversations (title, type, user_id, agent_id)
        SELECT $3::varchar, 'group', $1::text, NULL
        FROM owned
        WHERE owned.n = cardinality($2::text[])
        RETURNING id, title, type, user_id, agent_id, pinned_at, created_at, updated_at
    ),
    members AS (
        INSERT INTO conversation_members (conversation_id, agent_id)
        SELECT conv.id, picked.agent_id
        FROM conv, unnest($2::text[]::uuid[]) WITH ORDINALITY AS picked(agent_id, position)
        ORDER BY picked.position
        RETURNING id, conversation_id, agent_id, added_at
    )
    SELECT {conversation_columns("conv")}, members.id::text AS member_id, members.agent_id::text AS member_agent_id,
           {iso("members.added_at")} AS member_added_at
    FROM conv JOIN members ON members.conversation_id = conv.id
    """,
)

#: $1 conversation id, $2 user id. No row: not the caller's; one row with a NULL member id:
#: no members.
MEMBERS = Query(
    "groups.members",
    f"""
    SELECT cm.id::text AS id, cm.conversation_id::text AS conversation_id,
           cm.agent_id::text AS agent_id, {iso("cm.added_at")} AS added_at,
           a.name AS agent_name, a.description AS agent_description,
           a.avatar_url AS agent_avatar_url
    FROM conversations c
    LEFT JOIN (conversation_members cm JOIN agents a ON a.id = cm.agent_id)
           ON cm.conversation_id = c.id
    WHERE c.id = $1::uuid AND c.user_id = $2::text
    ORDER BY cm.added_at, cm.id
    """,
)

#: $1 conversation id, $2 user id, $3 agent id (NULL when not a UUID). Run in a transaction
#: before ADD_MEMBER: the row lock on the conversation serialises concurrent adds. Its
#: ``is_member`` is read in the snapshot taken before the lock was granted, so a concurrent
#: add that committed meanwhile is not in it: ADD_MEMBER checks again.
ADD_MEMBER_CHECK = Query(
    "groups.add_member_check",
    """
    SELECT c.type::text AS type,
           EXISTS (SELECT 1 FROM agents a WHERE a.id = $3::uuid AND a.owner_id = $2::text)
               AS agent_owned,
           EXISTS (SELECT 1 FROM conversation_members cm
                   WHERE cm.conversation_id = c.id AND cm.agent_id = $3::uuid) AS is_member
    FROM conversations c
    WHERE c.id = $1::uuid AND c.user_id = $2::text
    FOR UPDATE OF c
    """,
)

#: $1 conversation id, $2 agent id; no row when the agent is a member already (a statement
#: of its own, after ADD_MEMBER_CHECK's lock: its snapshot has every add committed before).
ADD_MEMBER = Query(
    "groups.add_member",
    f"""
    INSERT INTO conversation_members (conversation_id, agent_id)
    SELECT $1::uuid, $2::uuid
    WHERE NOT EXISTS (SELECT 1 FROM conversation_members
                      WHERE conversation_id = $1::uuid AND agent_id = $2::uuid)
    RETURNING id::text AS id, conversation_id::text AS conversation_id,
              agent_id::text AS agent_id, {iso("added_at")} AS added_at
    """,
)

#: $1 conversation id, $2 user id, $3 agent id (NULL when not a UUID) -> (type, removed).
#: No row: not the caller's conversation.
REMOVE_MEMBER = Query(
    "groups.remove_member",
    """
    WITH conv AS (
        SELECT id, type FROM conversations WHERE id = $1::uuid AND user_id = $2::text
    ),
    gone AS (
        DELETE FROM conversation_members cm
        USING conv
        WHERE cm.conversation_id = conv.id AND conv.type = 'group' AND cm.agent_id = $3::uuid
        RETURNING 1
    )
    SELECT conv.type::text AS type, (SELECT count(*) FROM gone)::int AS removed FROM conv
    """,
)
