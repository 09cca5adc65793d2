"""Every named SQL statement prepares against the migrated schema (a wrong column fails here)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from arinova.db.queries import Query, all_queries
from arinova.db.queries import messages as mq

QUERIES = all_queries()


@pytest.fixture
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    """A new connection per statement: asyncpg introspects a type once per connection."""
    connection = await asyncpg.connect(database)
    yield connection
    await connection.close()


def test_queries_are_found() -> None:
    names = [q.name for q in QUERIES]
    assert "health.ping" in names
    assert len(names) == len(set(names))


@pytest.mark.parametrize("query", QUERIES, ids=[q.name for q in QUERIES])
async def test_query_prepares(conn: asyncpg.Connection, query: Query) -> None:
    """... and asks asyncpg for no type introspection: a type asyncpg does not know (any
    array but ``text[]``, an enum) costs a pool connection three more round trips the first
    time a statement uses it."""
    sent: list[str] = []

    def log(record: asyncpg.connection.LoggedQuery) -> None:
        sent.append(record.query)

    conn.add_query_logger(log)
    try:
        await conn.prepare(query.sql)
    except asyncpg.PostgresError as exc:
        pytest.fail(f"{query.name}: {type(exc).__name__}: {exc}\n{query.sql}")
    finally:
        conn.remove_query_logger(log)
    assert sent == [], f"{query.name} needs type introspection"


@pytest.mark.parametrize("query", [mq.PAGE_BEFORE, mq.PAGE_AFTER, mq.PAGE_AROUND])
async def test_page_columns_are_in_the_order_the_page_unpacks(
    conn: asyncpg.Connection, query: Query
) -> None:
    statement = await conn.prepare(query.sql)
    assert tuple(a.name for a in statement.get_attributes()) == mq.PAGE_COLUMNS
