"""The connection pool on a real PostgreSQL: connections reused, bounded, handed to waiters in
order, dropped when they may be unclean (a statement cancelled, a transaction left open, the
server gone), closed when idle, and a database that cannot be reached costs no slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from arinova.db.pool import Database, create_pool
from tests.realtime.test_pipeline_db_outage import proxied
from tests.support import db as testdb
from tests.support.proxy import TcpProxy

BACKEND = "SELECT pg_backend_pid()"


@pytest.fixture
async def pool(database: str) -> AsyncIterator[Database]:
    db = await create_pool(database, min_size=1, max_size=2)
    yield db
    await db.close()


async def test_a_statement_reuses_the_idle_connection(pool: Database) -> None:
    backend = await pool.fetchval(BACKEND)
    for _ in range(5):
        assert await pool.fetchval(BACKEND) == backend
    assert (await pool.fetchrow("SELECT 1 AS one"))["one"] == 1  # type: ignore[index]
    assert [r["n"] for r in await pool.fetch("SELECT generate_series(1, 3) AS n")] == [1, 2, 3]
    assert await pool.execute("SELECT 1") == "SELECT 1"
    assert (pool.size, pool.idle, pool.in_use, pool.waiting) == (1, 1, 0, 0)


async def test_a_failed_statement_gives_the_connection_back_usable(pool: Database) -> None:
    backend = await pool.fetchval(BACKEND)
    with pytest.raises(asyncpg.DivisionByZeroError):
        await pool.fetchval("SELECT 1 / 0")
    assert await pool.fetchval(BACKEND) == backend
    with pytest.raises(ValueError):
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT 1")
            raise ValueError("the block's own error: rolled back, the connection kept")
    assert await pool.fetchval(BACKEND) == backend


async def test_a_cancelled_statement_drops_its_connection(pool: Database) -> None:
    backend = await pool.fetchval(BACKEND)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await pool.fetchval("SELECT pg_sleep(5)")
    # the next statement runs at once on another connection, not behind the cancel
    async with asyncio.timeout(2):
        assert await pool.fetchval(BACKEND) != backend
    assert pool.size == 1


async def test_a_transaction_left_open_drops_its_connection(pool: Database) -> None:
    async with pool.acquire() as conn:
        backend = await conn.fetchval(BACKEND)
        await conn.execute("BEGIN")
    async with pool.acquire() as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval(BACKEND) != backend


async def test_checkouts_wait_in_order_and_a_cancelled_waiter_takes_nothing(
    pool: Database,
) -> None:
    order: list[str] = []

    async def wait(name: str) -> None:
        async with pool.acquire():
            order.append(name)

    async with pool.acquire(), pool.acquire():
        assert (pool.size, pool.in_use) == (2, 2)
        first = asyncio.create_task(wait("first"))
        gone = asyncio.create_task(wait("gone"))
        last = asyncio.create_task(wait("last"))
        await asyncio.sleep(0.05)
        assert pool.waiting == 3
        gone.cancel()
        await asyncio.sleep(0)
        assert pool.waiting == 2
    await asyncio.gather(first, last)
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert order == ["first", "last"]
    assert (pool.size, pool.in_use, pool.waiting) == (2, 0, 0)


async def test_a_checkout_timeout_bounds_the_wait(pool: Database) -> None:
    async with pool.acquire(), pool.acquire():
        with pytest.raises(TimeoutError):
            async with pool.acquire(timeout=0.1):
                pass
        assert pool.waiting == 0
    assert await pool.fetchval("SELECT 1") == 1


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    pool: Database, database: str
) -> None:
    backend = await pool.fetchval(BACKEND)
    admin = await asyncpg.connect(database)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", backend)
    finally:
        await admin.close()
    await asyncio.sleep(0.2)  # the pool's connection hears the server's goodbye
    assert await pool.fetchval(BACKEND) != backend
    assert pool.size == 1


async def test_idle_connections_close_but_the_minimum_stays(database: str) -> None:
    db = Database(database, min_size=1, max_size=3, idle_s=0.2)
    try:
        async with db.acquire(), db.acquire(), db.acquire():
            assert db.size == 3
        assert db.idle == 3
        await asyncio.sleep(0.5)
        assert (db.size, db.idle) == (1, 1)
        assert await db.fetchval("SELECT 1") == 1
    finally:
        await db.close()


async def test_an_unreachable_database_costs_no_slot(database: str) -> None:
    async with TcpProxy(testdb.PG_HOST, testdb.PG_PORT) as proxy:
        db = await create_pool(proxied(database, proxy), min_size=1, max_size=1)
        try:
            await proxy.cut()
            proxy.refuse()
            for _ in range(3):  # the lost connection, then connects refused
                with pytest.raises((OSError, asyncpg.PostgresConnectionError)):
                    await db.fetchval("SELECT 1")
            assert db.size == 0
            proxy.refuse(False)
            assert await db.fetchval("SELECT 1") == 1
            assert db.size == 1
        finally:
            await db.close()


async def test_close_waits_for_connections_in_use_then_refuses(pool: Database) -> None:
    released = asyncio.Event()

    async def hold() -> None:
        async with pool.acquire() as conn:
            await released.wait()
            assert await conn.fetchval("SELECT 1") == 1  # still usable while closing

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.05)
    closing = asyncio.create_task(pool.close())
    await asyncio.sleep(0.05)
    assert not closing.done()
    with pytest.raises(asyncpg.InterfaceError):
        await pool.fetchval("SELECT 1")
    released.set()
    await asyncio.wait_for(asyncio.gather(holder, closing), 5)
    assert pool.size == 0
