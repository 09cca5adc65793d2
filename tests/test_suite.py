"""The suite's own machinery (tests/conftest.py, tests/support/): the loop the tests run
on, the guard against errors that reach the loop's exception handler, the server factory."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

import httpx
import pytest
from websockets.asyncio.client import connect

from arinova.settings import Settings
from tests.support.config import TEST_LOOP
from tests.support.loop_errors import EXPECTS_LOOP_ERRORS, LoopErrors
from tests.support.servers import ServerPool, StartServer
from tests.support.stub import stub_endpoints


async def test_async_tests_run_on_the_selected_loop() -> None:
    loop_module = type(asyncio.get_running_loop()).__module__
    assert loop_module.startswith("uvloop") == (TEST_LOOP == "uvloop"), loop_module


# -- the loop-exception guard ---------------------------------------------------------------


def _boom() -> None:
    raise RuntimeError("callback bug")


@pytest.mark.expects_loop_errors
async def test_the_guard_sees_an_exception_in_a_callback(loop_errors: LoopErrors) -> None:
    asyncio.get_running_loop().call_soon(_boom)
    await asyncio.sleep(0)
    assert loop_errors.count == 1
    [context] = loop_errors.contexts
    assert isinstance(context["exception"], RuntimeError)
    assert "callback bug" in loop_errors.report()


@pytest.mark.expects_loop_errors
async def test_the_guard_sees_a_task_exception_nobody_retrieved(loop_errors: LoopErrors) -> None:
    async def fails() -> None:
        raise ValueError("lost")

    task = asyncio.get_running_loop().create_task(fails())
    await asyncio.sleep(0)
    assert task.done()
    del task
    gc.collect()
    assert loop_errors.count == 1
    assert loop_errors.contexts[0]["message"] == "Task exception was never retrieved"


def test_the_guard_fails_a_test_that_does_not_expect_errors(request: pytest.FixtureRequest) -> None:
    errors = LoopErrors()
    loop = asyncio.new_event_loop()
    loop.close()
    errors(loop, {"message": "something broke"})
    with pytest.raises(pytest.fail.Exception, match="something broke"):
        errors.check(request.node)
    request.node.add_marker(EXPECTS_LOOP_ERRORS)
    errors.check(request.node)  # no longer fails
    LoopErrors().check(request.node.parent)  # nothing collected: nothing to fail


def test_the_guard_keeps_a_bounded_report() -> None:
    errors = LoopErrors()
    loop = asyncio.new_event_loop()
    try:
        for n in range(1000):
            errors(loop, {"message": f"error {n}"})
    finally:
        loop.close()
    assert errors.count == 1000
    assert len(errors.contexts) < 100


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
