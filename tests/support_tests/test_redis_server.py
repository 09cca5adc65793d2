"""RedisServer: a private redis-server that tests restart, crash and freeze, seen through
redis-py and raw connections."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from tests.support import resp
from tests.support.redis_server import RedisServer

QUIET_S = 0.3
REPOSITORY = Path(__file__).resolve().parents[2]


def gone(pid: int) -> bool:
    """The process has exited (reaped, or a zombie nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


async def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 5
    while not gone(pid):
        assert time.monotonic() < deadline, f"process {pid} is still running"
        await asyncio.sleep(0.02)


async def test_starts_private_and_empty_with_its_own_log(redis_server: RedisServer) -> None:
    assert redis_server.port != 6379
    assert redis_server.url() == f"redis://127.0.0.1:{redis_server.port}/1"
    assert redis_server.url(db=3).endswith("/3")
    client = aioredis.Redis.from_url(redis_server.url())
    try:
        assert await client.dbsize() == 0
        assert await client.config_get("save") == {"save": ""}
        assert await client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        await client.aclose()
    assert b"Ready to accept connections" in redis_server.log_path.read_bytes()


async def test_restart_keeps_the_port_loses_the_data_and_the_client_reconnects(
    redis_server: RedisServer,
) -> None:
    client = aioredis.Redis.from_url(redis_server.url())
    try:
        await client.set("key", "value")
        port, pid = redis_server.port, redis_server.pid

        await redis_server.stop()
        assert not redis_server.running
        await wait_gone(pid)
        await redis_server.start()

        assert (redis_server.port, redis_server.running) == (port, True)
        assert redis_server.pid != pid
        # the pooled connection was closed by the shutdown: the first use may see it
        with contextlib.suppress(redis.exceptions.ConnectionError):
            await client.ping()
        assert await client.get("key") is None
    finally:
        await client.aclose()


async def test_kill_is_a_crash_and_start_brings_it_back(redis_server: RedisServer) -> None:
    pid = redis_server.pid
    await redis_server.kill()
    await wait_gone(pid)
    with pytest.raises(OSError):
        await resp.command(redis_server.host, redis_server.port, "PING")

    await redis_server.start()

    assert await resp.command(redis_server.host, redis_server.port, "PING") == "PONG"


async def test_pause_makes_commands_time_out_and_resume_answers(
    redis_server: RedisServer,
) -> None:
    client = aioredis.Redis.from_url(redis_server.url(), socket_timeout=QUIET_S)
    try:
        assert await client.ping()

        await redis_server.pause()

        assert redis_server.paused
        with pytest.raises(redis.exceptions.TimeoutError):
            await client.ping()
        # the kernel still accepts new connections; nobody answers on them
        with pytest.raises(TimeoutError):
            await resp.command(redis_server.host, redis_server.port, "PING", within_s=QUIET_S)

        await redis_server.resume()

        assert not redis_server.paused
        assert await client.ping()
    finally:
        await client.aclose()


async def test_stop_while_paused_still_stops(redis_server: RedisServer) -> None:
    pid = redis_server.pid
    await redis_server.pause()
    await redis_server.stop()
    await wait_gone(pid)
    assert not redis_server.running and not redis_server.paused


async def test_the_block_kills_the_server_and_removes_its_directory_when_the_test_fails() -> None:
    with pytest.raises(ZeroDivisionError):
        async with RedisServer() as redis_server:
            pid, directory = redis_server.pid, redis_server.directory
            await redis_server.pause()
            _ = 1 / 0
    await wait_gone(pid)
    assert not directory.exists()


async def test_a_port_in_use_is_reported(tmp_path: Path) -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        with pytest.raises(RuntimeError, match=f"port {port} is taken"):
            async with RedisServer(tmp_path, port=port):
                pass
    finally:
        listener.close()
        await listener.wait_closed()


async def test_the_server_dies_with_the_test_process(tmp_path: Path) -> None:
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from tests.support.redis_server import RedisServer\n"
        "async def main():\n"
        "    server = RedisServer(Path(sys.argv[1]))\n"
        "    await server.start()\n"
        "    print(server.pid, flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    test_process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        cwd=REPOSITORY,
    )
    try:
        assert test_process.stdout is not None
        line = await asyncio.wait_for(test_process.stdout.readline(), 20)
        pid = int(line)
        assert not gone(pid)
    finally:
        test_process.send_signal(signal.SIGKILL)
        await test_process.wait()
    try:
        await wait_gone(pid)
    except AssertionError:
        os.kill(pid, signal.SIGKILL)  # not left running after the failure
        raise
