"""What every agent route shares: the path id and the 404 body."""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

from blacksheep import Request

from arinova.errors import ApiError
from arinova.http.validate import parse_uuid


class Row(Protocol):
    """A database row (asyncpg ``Record``) as these modules read it."""

    def __getitem__(self, key: str) -> Any: ...


def agent_not_found() -> ApiError:
    return ApiError.message(404, "Agent not found")


def agent_id_of(request: Request) -> UUID:
    """The ``:id`` path parameter; a non-UUID answers like an unknown agent (Q02/Q56)."""
    agent_id = parse_uuid(request.route_values.get("id"))
    if agent_id is None:
        raise agent_not_found()
    return agent_id
