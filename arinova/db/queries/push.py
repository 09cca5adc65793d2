"""SQL of push subscriptions and the push trigger (rest.md §3.10, websocket.md §10).

Subscriptions have no unique key (schema.md: none on (user, endpoint)); the upsert runs
under a per-user advisory lock in one transaction so two concurrent subscribes of the
same endpoint cannot both insert.
"""

from arinova.db.queries import Query

#: $1 user id: serialises subscription writes of one user (transaction scoped)
LOCK_USER_SUBSCRIPTIONS = Query(
    "push.lock_user_subscriptions",
    "SELECT pg_advisory_xact_lock(hashtextextended('push_subscriptions:' || $1::text, 0))",
)

#: $1 user id, $2 endpoint, $3 p256dh, $4 auth, $5 device info (NULL when absent).
#: Updates the caller's rows with that endpoint, or inserts one; a first subscription
#: also creates the default preferences row when the user has none.
UPSERT_SUBSCRIPTION = Query(
    "push.upsert_subscription",
    """
    WITH updated AS (
        UPDATE push_subscriptions
        SET p256dh = $3::text, auth = $4::text, device_info = $5::text
        WHERE user_id = $1::text AND endpoint = $2::text
        RETURNING id
    ),
    inserted AS (
        INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, device_info)
        SELECT $1::text, $2::text, $3::text, $4::text, $5::text
        WHERE NOT EXISTS (SELECT 1 FROM updated)
        RETURNING id
    ),
    preferences AS (
        INSERT INTO notification_preferences (user_id)
        SELECT $1::text WHERE EXISTS (SELECT 1 FROM inserted)
        ON CONFLICT (user_id) DO NOTHING
        RETURNING id
    )
    SELECT (SELECT count(*) FROM inserted)::int AS inserted,
           (SELECT count(*) FROM preferences)::int AS preferences_created
    """,
)

#: $1 user id, $2 endpoint
DELETE_SUBSCRIPTION = Query(
    "push.delete_subscription",
    "DELETE FROM push_subscriptions WHERE user_id = $1::text AND endpoint = $2::text",
)

#: $1 user id, $2 how many: the user's newest subscriptions
LIST_USER_SUBSCRIPTIONS = Query(
    "push.list_user_subscriptions",
    """
    SELECT id::text AS id, endpoint, p256dh, auth
    FROM push_subscriptions
    WHERE user_id = $1::text
    ORDER BY created_at DESC, id
    LIMIT $2::int
    """,
)

#: $1 subscription ids the push service answered 404/410 for
DELETE_SUBSCRIPTIONS = Query(
    "push.delete_subscriptions",
    "DELETE FROM push_subscriptions WHERE id = ANY($1::text[]::uuid[])",
)

#: $1 user id, $2 conversation id, $3 agent id: everything the trigger decides on, in
#: one row (preferences columns NULL when the user has no row)
MESSAGE_PUSH_FACTS = Query(
    "push.message_push_facts",
    """
    SELECT p.user_id IS NOT NULL AS has_preferences,
           p.global_enabled, p.message_enabled, p.quiet_hours_start, p.quiet_hours_end,
           coalesce(r.muted, false) AS muted,
           coalesce(a.notifications_enabled, true) AS agent_notifications_enabled
    FROM (SELECT 1) AS one
    LEFT JOIN notification_preferences p ON p.user_id = $1::text
    LEFT JOIN conversation_reads r ON r.user_id = $1::text AND r.conversation_id = $2::uuid
    LEFT JOIN agents a ON a.id = $3::uuid
    """,
)
