"""What every test module shares: its own database, the one test configuration, servers
started and stopped for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from arinova.server import Server
from arinova.settings import Settings
from tests.support import db as testdb
from tests.support.config import TEST_LOOP, server_settings
from tests.support.servers import ServerPool, StartServer


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    if TEST_LOOP == "asyncio":
        return {"asyncio": asyncio.new_event_loop}
    import uvloop

    return {"uvloop": uvloop.new_event_loop}


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
