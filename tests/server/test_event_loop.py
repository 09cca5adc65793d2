import asyncio

from tests.conftest import TEST_LOOP


async def test_async_tests_run_on_the_selected_loop() -> None:
    loop_module = type(asyncio.get_running_loop()).__module__
    assert loop_module.startswith("uvloop") == (TEST_LOOP == "uvloop"), loop_module
