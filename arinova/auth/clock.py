"""Time as Better Auth stores it: naive UTC with millisecond precision (JavaScript dates)."""

from __future__ import annotations

from datetime import datetime, timedelta

from arinova.timefmt import utcnow

SESSION_LIFETIME = timedelta(days=30)
SHORT_SESSION_LIFETIME = timedelta(days=1)
#: a session is refreshed when its last refresh is at least this old
UPDATE_AGE = timedelta(days=1)


def now_ms() -> datetime:
    now = utcnow()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def refresh_due(expires_at: datetime, now: datetime) -> bool:
    return expires_at - SESSION_LIFETIME + UPDATE_AGE <= now
