"""GET /health (contract rest.md §3.1): 200 when PostgreSQL and Redis answer, else 503."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from arinova.http.health import CHECK_TIMEOUT_S
from arinova.server import Server
from tests.realtime.test_pipeline_db_outage import proxied
from tests.support import db as testdb
from tests.support.proxy import TcpProxy
from tests.support.redis_server import RedisServer
from tests.support.servers import StartServer

ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
#: nothing listens here
CLOSED_REDIS = "redis://127.0.0.1:1/0"


def assert_body(r: httpx.Response, status: str, db: str, redis: str) -> None:
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    body = r.json()
    # key order as the original writes it
    assert list(body) == ["status", "db", "redis", "timestamp"]
    assert body["status"] == status
    assert body["db"] == db
    assert body["redis"] == redis
    assert ISO_MS.fullmatch(body["timestamp"])
    stamp = datetime.strptime(body["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - stamp) < timedelta(seconds=10)


async def test_healthy(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as c:
        r = await c.get("/health")
    assert r.status_code == 200
    assert_body(r, "ok", "ok", "ok")


async def test_without_redis_url_the_in_memory_store_is_healthy(
    start_server: StartServer,
) -> None:
    server = await start_server(redis_url="")
    async with httpx.AsyncClient(base_url=server.url) as c:
        r = await c.get("/health")
    assert r.status_code == 200
    assert_body(r, "ok", "ok", "ok")


async def test_redis_down_is_503_and_the_server_still_starts(
    start_server: StartServer,
) -> None:
    server = await start_server(redis_url=CLOSED_REDIS)
    async with httpx.AsyncClient(base_url=server.url) as c:
        r = await c.get("/health")
        assert r.status_code == 503
        assert_body(r, "degraded", "ok", "error")
        # the rest of the server keeps answering (the rate limit lets requests through)
        r = await c.get("/no/such/route")
        assert r.status_code == 404


async def test_database_down_is_503_and_recovers(
    pg_template: str, start_server: StartServer
) -> None:
    name = testdb.unique_name("arinova_health")
    url = await testdb.create_database(name, template=pg_template)
    server = await start_server(database_url=url)
    admin = await asyncpg.connect(testdb.ADMIN_DSN)
    try:
        async with httpx.AsyncClient(base_url=server.url) as c:
            r = await c.get("/health")
            assert r.status_code == 200

            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
            r = await c.get("/health")
            assert r.status_code == 503
            assert_body(r, "degraded", "error", "ok")

            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            r = await c.get("/health")
            assert r.status_code == 200
            assert_body(r, "ok", "ok", "ok")
    finally:
        await server.stop()  # before its database goes
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
        await testdb.drop_database(name)


async def test_everything_down(pg_template: str, start_server: StartServer) -> None:
    name = testdb.unique_name("arinova_health")
    url = await testdb.create_database(name, template=pg_template)
    server = await start_server(database_url=url, redis_url=CLOSED_REDIS)
    admin = await asyncpg.connect(testdb.ADMIN_DSN)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        async with httpx.AsyncClient(base_url=server.url) as c:
            r = await c.get("/health")
        assert r.status_code == 503
        assert_body(r, "degraded", "error", "error")
    finally:
        await server.stop()  # before its database goes
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
        await testdb.drop_database(name)


async def test_a_stalled_database_or_redis_answers_503_within_the_checks_bounds(
    pg_template: str, redis_server: RedisServer, start_server: StartServer
) -> None:
    """Each service behind a proxy the test stalls: the probe's check of it gives up (its
    connections stay open, nothing answers), the other still answers, and both recover."""
    name = testdb.unique_name("arinova_health")
    url = await testdb.create_database(name, template=pg_template)
    async with (
        TcpProxy(testdb.PG_HOST, testdb.PG_PORT) as pg,
        TcpProxy(redis_server.host, redis_server.port) as redis,
    ):
        server = await start_server(
            database_url=proxied(url, pg), redis_url=f"redis://127.0.0.1:{redis.port}/0"
        )
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
                assert (await c.get("/health")).status_code == 200
                for stalled, expected in ((pg, ("error", "ok")), (redis, ("ok", "error"))):
                    stalled.stall()
                    started = time.monotonic()
                    r = await c.get("/health")
                    took = time.monotonic() - started
                    stalled.stall(False)
                    assert r.status_code == 503
                    assert_body(r, "degraded", *expected)
                    # a check's bound and the stall's detection, not a hang
                    assert took < 2 * CHECK_TIMEOUT_S + 1, took
                    for _ in range(100):
                        if (await c.get("/health")).status_code == 200:
                            break
                        await asyncio.sleep(0.1)
                    else:
                        raise AssertionError("/health did not recover")
        finally:
            await server.stop()
    await testdb.drop_database(name)
