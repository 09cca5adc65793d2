"""SQL of notification preferences (contract rest.md §3.11)."""

from arinova.db.queries import Query

#: $1 user id -> the user's preferences row, if any
GET_PREFERENCES = Query(
    "notifications.get_preferences",
    """
    SELECT global_enabled, message_enabled, playground_invite_enabled,
           playground_turn_enabled, playground_result_enabled,
           quiet_hours_start, quiet_hours_end
    FROM notification_preferences
    WHERE user_id = $1::text
    """,
)

#: $1 user id, $2..$6 the five switches, $7/$8 quiet hours (NULL or HH:mm): insert or
#: replace the user's one row (user_id is unique)
PUT_PREFERENCES = Query(
    "notifications.put_preferences",
    """
    INSERT INTO notification_preferences (
        user_id, global_enabled, message_enabled, playground_invite_enabled,
        playground_turn_enabled, playground_result_enabled, quiet_hours_start, quiet_hours_end
    )
    VALUES ($1::text, $2::boolean, $3::boolean, $4::boolean, $5::boolean, $6::boolean,
            $7::varchar, $8::varchar)
    ON CONFLICT (user_id) DO UPDATE SET
        global_enabled = EXCLUDED.global_enabled,
        message_enabled = EXCLUDED.message_enabled,
        playground_invite_enabled = EXCLUDED.playground_invite_enabled,
        playground_turn_enabled = EXCLUDED.playground_turn_enabled,
        playground_result_enabled = EXCLUDED.playground_result_enabled,
        quiet_hours_start = EXCLUDED.quiet_hours_start,
        quiet_hours_end = EXCLUDED.quiet_hours_end
    """,
)
