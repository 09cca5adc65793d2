"""SQL pieces shared by statements of several areas.

Timestamps are ``timestamp without time zone`` columns holding UTC wall-clock time, and
every write stamps UTC explicitly (quirk Q37).
"""

#: when the transaction began, in UTC
UTC_NOW = "(now() AT TIME ZONE 'UTC')"

#: when the statement began, in UTC: a statement that first waited for a lock is dated
#: after the writer it waited for (``UTC_NOW`` would be the time before the wait)
STATEMENT_UTC_NOW = "(statement_timestamp() AT TIME ZONE 'UTC')"


def iso(column: str) -> str:
    """A UTC ``timestamp`` column as the API writes it, ``2026-02-20T09:15:03.123Z``
    (microseconds truncated). Formatting in PostgreSQL costs a fraction of doing it in
    Python, and list responses carry hundreds of timestamps."""
    return f"""to_char({column}, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""


def last_seq(conversation_id: str) -> str:
    """The highest message ``seq`` of a conversation (0 without messages);
    ``conversation_id`` is an SQL expression (a column or a parameter)."""
    return (
        "(SELECT COALESCE(MAX(seqs.seq), 0) FROM messages seqs"
        f" WHERE seqs.conversation_id = {conversation_id})"
    )
