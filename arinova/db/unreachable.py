"""Failures that mean PostgreSQL could not be reached — the connection could not be made,
was lost, or the server is shutting down, starting or out of connections — as opposed to
an error of the statement itself. A statement that failed so may succeed when retried."""

from __future__ import annotations

import asyncpg

_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, timed out (TimeoutError is one)
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)


def unreachable(exc: BaseException) -> bool:
    return isinstance(exc, _UNREACHABLE)
