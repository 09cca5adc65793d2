"""Timestamps as the API writes them: ISO-8601 UTC, milliseconds, ``Z`` (2026-02-20T09:15:03.123Z)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(value: datetime) -> str:
    """Format a ``timestamp`` column value (naive = UTC) or an aware datetime."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


def iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def utcnow() -> datetime:
    """Naive UTC now, as stored in ``timestamp without time zone`` columns."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso_now() -> str:
    return iso(utcnow())
