"""SQL of the reactions area (contract rest.md §3.8, behaviours.md §7)."""

from arinova.db.queries import Query
from arinova.db.queries.fragments import iso

#: $1 message id, $2 user id, $3 emoji. No row: no such message. ``owned`` false: the message's
#: conversation is someone else's (nothing written). ``id`` NULL when owned: the reaction
#: already existed (adding is idempotent).
ADD = Query(
    "reactions.add",
    f"""
    WITH msg AS (
        SELECT m.id, c.user_id = $2::text AS owned
        FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE m.id = $1::uuid
    ),
    added AS (
        INSERT INTO message_reactions (message_id, user_id, emoji)
        SELECT msg.id, $2::text, $3::varchar FROM msg WHERE msg.owned
        ON CONFLICT (message_id, user_id, emoji) DO NOTHING
        RETURNING id, message_id, user_id, emoji, created_at
    )
    SELECT msg.owned, added.id::text AS id, {iso("added.created_at")} AS created_at
    FROM msg LEFT JOIN added ON added.message_id = msg.id
    """,
)

#: $1 message id, $2 user id, $3 emoji -> one row when the caller's reaction was removed.
REMOVE = Query(
    "reactions.remove",
    """
    DELETE FROM message_reactions
    WHERE message_id = $1::uuid AND user_id = $2::text AND emoji = $3::varchar
    RETURNING id
    """,
)

#: $1 message id, $2 user id: per emoji, the count and whether the caller is among the users.
#: Only for a message of the caller's own conversations (quirk Q23); otherwise no rows.
LIST = Query(
    "reactions.list",
    """
    SELECT r.emoji, count(*)::int AS count, bool_or(r.user_id = $2::text) AS user_reacted
    FROM message_reactions r
    JOIN messages m ON m.id = r.message_id
    JOIN conversations c ON c.id = m.conversation_id
    WHERE r.message_id = $1::uuid AND c.user_id = $2::text
    GROUP BY r.emoji
    ORDER BY min(r.created_at), r.emoji
    """,
)
