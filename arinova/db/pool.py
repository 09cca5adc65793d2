"""The asyncpg pool: the original's limits (max 20, 30 s idle, 10 s connect timeout)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import orjson

POOL_MAX = 20
POOL_IDLE_S = 30.0
CONNECT_TIMEOUT_S = 10.0


class QueryCounter:
    """Counts statements sent to PostgreSQL (enabled by tests that bound queries per request)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, record: object) -> None:
        self.count += 1


def pool_waiting(pool: asyncpg.Pool) -> int:
    """Tasks waiting for a connection of the pool (every one in use). asyncpg does not
    say; its queue of connection holders, an ``asyncio.Queue``, does (0 should either
    change shape: tests/server/test_metrics.py notices)."""
    getters = getattr(getattr(pool, "_queue", None), "_getters", None)
    if getters is None:
        return 0
    return sum(1 for getter in getters if not getter.done())


def pool_in_use(pool: asyncpg.Pool) -> int:
    return pool.get_size() - pool.get_idle_size()


async def _reset_connection(conn: asyncpg.Connection[Any]) -> None:
    """Release hook: no round trip unless a transaction was left open. The server never
    changes session state (no SET, LISTEN, cursors or session advisory locks) on pooled
    connections, so asyncpg's default reset query would be a wasted round trip per checkout."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def _init_connection(
    conn: asyncpg.Connection[Any], on_query: Callable[[object], None] | None = None
) -> None:
    if on_query is not None:
        conn.add_query_logger(on_query)
    for json_type in ("json", "jsonb"):
        await conn.set_type_codec(
            json_type,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = POOL_MAX,
    on_query: Callable[[object], None] | None = None,
) -> asyncpg.Pool:
    """Open a pool whose sessions write UTC wall-clock into ``timestamp`` columns (Q37)."""

    async def init(conn: asyncpg.Connection[Any]) -> None:
        await _init_connection(conn, on_query)

    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_inactive_connection_lifetime=POOL_IDLE_S,
        timeout=CONNECT_TIMEOUT_S,
        init=init,
        reset=_reset_connection,
        server_settings={"timezone": "UTC", "application_name": "arinova"},
    )
    assert pool is not None
    return pool
