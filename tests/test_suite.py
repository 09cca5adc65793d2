"""The suite's own machinery (tests/conftest.py, tests/support/): the loop the tests run
on, the server factory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from websockets.asyncio.client import connect

from arinova.realtime.stub import stub_endpoints
from arinova.settings import Settings
from tests.support.config import TEST_LOOP
from tests.support.servers import ServerPool, StartServer


async def test_async_tests_run_on_the_selected_loop() -> None:
    loop_module = type(asyncio.get_running_loop()).__module__
    assert loop_module.startswith("uvloop") == (TEST_LOOP == "uvloop"), loop_module


# -- the server factory ---------------------------------------------------------------------


async def test_the_factory_passes_overrides_and_server_options_and_stops_its_servers(
    make_settings: Callable[..., Settings],
) -> None:
    pool = ServerPool(make_settings)
    plain = await pool.start()
    custom = await pool.start(redis_url="", socket_endpoints=stub_endpoints)
    assert plain.settings == make_settings()
    assert custom.settings == make_settings(redis_url="")
    async with connect(f"{custom.ws_url}/ws") as ws:  # the stub answers without a session
        await ws.send('{"type":"ping"}')
        assert await ws.recv() == '{"type":"pong"}'
    with pytest.raises(TypeError):
        await pool.start(make_settings(), redis_url="")
    urls = [f"{server.url}/health" for server in (plain, custom)]
    async with httpx.AsyncClient() as client:
        for url in urls:
            assert (await client.get(url)).status_code == 200
        await pool.close()
        for url in urls:
            with pytest.raises(httpx.ConnectError):
                await client.get(url)


async def test_a_test_server_runs_until_the_test_ends(start_server: StartServer) -> None:
    server = await start_server()
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{server.url}/health")).status_code == 200
