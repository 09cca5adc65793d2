"""What every test module shares: its own database, the one test configuration, servers
started and stopped for it, and a guard against errors nobody sees."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from arinova.server import Server
from arinova.settings import Settings
from tests.support import db as testdb
from tests.support.config import TEST_LOOP, server_settings
from tests.support.loop_errors import EXPECTS_LOOP_ERRORS, LoopErrors
from tests.support.proxy import TcpProxy
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer
from tests.support.servers import ServerPool, StartServer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{EXPECTS_LOOP_ERRORS}: the event loop's exception handler may be called during "
        "the test (the loop_errors fixture has what it was given)",
    )


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    if TEST_LOOP == "asyncio":
        return {"asyncio": asyncio.new_event_loop}
    import uvloop

    return {"uvloop": uvloop.new_event_loop}


# -- the guard -----------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
async def module_loop_errors(request: pytest.FixtureRequest) -> AsyncIterator[LoopErrors]:
    """Fails the module when the loop's exception handler was called outside its tests
    (a module's servers starting or stopping, a task collected late)."""
    with LoopErrors().installed(asyncio.get_running_loop()) as errors:
        yield errors
        gc.collect()  # a task in a reference cycle reports its lost exception when collected
        await asyncio.sleep(0)
    errors.check(request.node)


@pytest.fixture(autouse=True)
async def loop_errors(request: pytest.FixtureRequest) -> AsyncIterator[LoopErrors]:
    """Fails the test when the loop's exception handler was called during it, unless the
    test is marked ``expects_loop_errors`` (it may then look at what was collected)."""
    with LoopErrors().installed(asyncio.get_running_loop()) as errors:
        yield errors
        for _ in range(3):  # the callbacks the test's last steps scheduled
            await asyncio.sleep(0)
    errors.check(request.node)


# -- databases, settings, servers ----------------------------------------------------------


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
    """The test settings (tests/support/config.py) on the module's database and upload
    directory; keyword arguments override fields."""
    upload_dir = tmp_path_factory.mktemp("uploads")

    def make(**overrides: object) -> Settings:
        return server_settings(database, upload_dir, **overrides)

    return make


@pytest.fixture(scope="module")
async def start_module_server(make_settings: Callable[..., Settings]) -> AsyncIterator[StartServer]:
    """Starts servers that run until the module's tests are done (``ServerPool.start``)."""
    pool = ServerPool(make_settings)
    yield pool.start
    await pool.close()


@pytest.fixture
async def start_server(make_settings: Callable[..., Settings]) -> AsyncIterator[StartServer]:
    """Starts servers that run until the test is done (``ServerPool.start``)."""
    pool = ServerPool(make_settings)
    yield pool.start
    await pool.close()


@pytest.fixture(scope="module")
async def server(start_module_server: StartServer) -> Server:
    """A real server on a free port, with the module's database and Redis."""
    return await start_module_server()


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
