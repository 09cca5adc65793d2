from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from arinova.settings import Settings
from tests.support import db as testdb
from tests.support.proxy import TcpProxy
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer

TEST_REDIS_URL = os.environ.get("ARINOVA_TEST_REDIS_URL", "redis://127.0.0.1:6379/1")
#: the event loop the async tests run on: ``uvloop`` (production's) or ``asyncio``
TEST_LOOP = os.environ.get("ARINOVA_TEST_LOOP", "uvloop")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    if TEST_LOOP == "asyncio":
        return {"asyncio": asyncio.new_event_loop}
    import uvloop

    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture(scope="session")
async def pg_template() -> AsyncIterator[str]:
    name = await testdb.create_template()
    yield name
    await testdb.drop_database(name)


@pytest.fixture(scope="module")
async def database(pg_template: str) -> AsyncIterator[str]:
    """DSN of a fresh migrated database, private to the test module."""
    name = testdb.unique_name("arinova_test")
    url = await testdb.create_database(name, template=pg_template)
    yield url
    await testdb.drop_database(name)


@pytest.fixture(scope="module")
def make_settings(
    database: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Settings]:
    upload_dir = tmp_path_factory.mktemp("uploads")

    def make(**overrides: object) -> Settings:
        base = Settings(
            host="127.0.0.1",
            port=0,
            database_url=database,
            redis_url=TEST_REDIS_URL,
            upload_dir=upload_dir,
            log_level="WARNING",
            # every test server counts requests from 127.0.0.1 in the same Redis: tests of
            # the limit itself set their own
            rate_limit_max=1_000_000,
        )
        return base.replace(**overrides)

    return make


@pytest.fixture(scope="module")
async def server(make_settings: Callable[..., Settings]) -> AsyncIterator[object]:
    """A real server on a free port, with the module's database and Redis."""
    from arinova.server import Server

    srv = Server(make_settings())
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A private redis-server for the test alone, to stop, restart or pause at will;
    killed at teardown however the test ends (support/redis_server.py)."""
    async with RedisServer(tmp_path / "redis") as redis:
        yield redis


@pytest.fixture
async def redis_cluster(tmp_path: Path) -> AsyncIterator[RedisCluster]:
    """A private three-master Redis Cluster for the test alone (support/redis_cluster.py)."""
    async with RedisCluster(tmp_path / "redis-cluster") as cluster:
        yield cluster


@pytest.fixture
async def make_proxy() -> AsyncIterator[Callable[[str, int], Awaitable[TcpProxy]]]:
    """``await make_proxy(host, port)``: a listening ``TcpProxy`` in front of that
    service (support/proxy.py); every proxy made is closed at teardown."""
    async with contextlib.AsyncExitStack() as proxies:

        async def make(host: str, port: int) -> TcpProxy:
            return await proxies.enter_async_context(TcpProxy(host, port))

        yield make
