"""The ``arinova`` command as an operator runs it: a real process, real signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from arinova.logs import QUIET_S
from tests.realtime.test_pipeline_db_outage import proxied
from tests.support import db as testdb
from tests.support.auth import authed_client, sign_up
from tests.support.config import clean_env, server_env
from tests.support.proxy import TcpProxy

ARINOVA = (sys.executable, "-m", "arinova")


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        (*ARINOVA, *args), env=env, capture_output=True, text=True, timeout=60, check=False
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- refusing to start -----------------------------------------------------------------------


def test_production_without_secret_refuses_to_start(tmp_path: Path) -> None:
    result = run_cli("serve", env=clean_env(NODE_ENV="production", UPLOAD_DIR=str(tmp_path)))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("arinova: error: BETTER_AUTH_SECRET must be set explicitly")


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("serve", "--workers", "2"), {}, "WORKERS > 1 needs REDIS_URL"),
        (("serve",), {"WORKERS": "3"}, "WORKERS > 1 needs REDIS_URL"),
        (("serve",), {"PORT": "abc"}, "PORT must be an integer, got 'abc'"),
        (("serve", "--port", "70000"), {}, "--port must be between 0 and 65535, got 70000"),
        (("serve", "--workers", "0"), {}, "WORKERS must be at least 1"),
    ],
)
def test_bad_settings_exit_2_with_the_reason(
    args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = run_cli(*args, env=clean_env(**env))
    assert result.returncode == 2
    assert result.stderr.startswith(f"arinova: error: {message}")
    assert result.stderr.count("\n") == 1


def test_usage_errors() -> None:
    result = run_cli(env=clean_env())
    assert result.returncode == 2
    assert "usage: arinova" in result.stderr
    result = run_cli("--help", env=clean_env())
    assert result.returncode == 0
    assert "serve" in result.stdout and "migrate" in result.stdout


def test_port_in_use_is_reported() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--host", "127.0.0.1", "--port", str(port), env=clean_env())
    assert result.returncode == 1
    assert result.stderr.startswith(f"arinova: error: cannot listen on 127.0.0.1:{port}: ")


# -- migrate ---------------------------------------------------------------------------------


async def test_migrate_creates_migrates_and_is_idempotent() -> None:
    name = testdb.unique_name("arinova_cli")
    env = clean_env(DATABASE_URL=testdb.dsn(name))
    try:
        first = await asyncio.to_thread(run_cli, "migrate", env=env)
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith(f"migrations: database '{name}'; created")
        second = await asyncio.to_thread(run_cli, "migrate", env=env)
        assert second.returncode == 0, second.stderr
        assert second.stdout == f"migrations: database '{name}'; already current\n"
    finally:
        await testdb.drop_database(name)


async def test_migrate_reports_an_unreachable_database() -> None:
    env = clean_env(DATABASE_URL="postgresql://root@127.0.0.1:1/nothing")
    result = await asyncio.to_thread(run_cli, "migrate", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("arinova: error: migration failed: ")


# -- serve -----------------------------------------------------------------------------------


class Running:
    def __init__(self, process: asyncio.subprocess.Process, port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [
            int(child)
            for child in children
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
        ]


async def wait_healthy(url: str) -> None:
    async with httpx.AsyncClient() as client, asyncio.timeout(30):
        while True:
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


@pytest.fixture
async def start_serve(database: str, tmp_path: Path) -> AsyncIterator[object]:
    started: list[asyncio.subprocess.Process] = []

    async def start(*args: str, **variables: str) -> Running:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        env = server_env(database, tmp_path, SHUTDOWN_TIMEOUT="5", **variables)
        process = await asyncio.create_subprocess_exec(
            *ARINOVA,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *args,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log.open("wb"),  # a file, not a pipe nobody drains
            stderr=asyncio.subprocess.STDOUT,
        )
        started.append(process)
        running = Running(process, port, log)
        await wait_healthy(running.url)
        return running

    yield start
    for process in started:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def ping_pong(port: int, path: str = "/ws/agent") -> None:
    """``ping`` before ``agent_auth`` (/ws needs a session: 4401 without one)."""
    async with connect(f"ws://127.0.0.1:{port}{path}") as ws:
        await ws.send('{"type":"ping"}')
        assert await ws.recv() == '{"type":"pong"}'


async def sigterm_closes_sockets_and_exits_0(running: Running) -> None:
    ws = await connect(f"ws://127.0.0.1:{running.port}/ws/agent")
    await ws.send('{"type":"ping"}')
    assert await ws.recv() == '{"type":"pong"}'
    running.process.send_signal(signal.SIGTERM)
    with pytest.raises(websockets.ConnectionClosed):
        async with asyncio.timeout(15):
            await ws.recv()
    assert ws.protocol.close_rcvd is not None
    assert ws.protocol.close_rcvd.code == 1001
    async with asyncio.timeout(20):
        await running.process.wait()
    assert running.process.returncode == 0, running.log.read_text()


async def test_serve_one_process(start_serve: object) -> None:
    running = await start_serve()  # type: ignore[operator]
    assert len(running.workers()) == 1
    await ping_pong(running.port)
    await ping_pong(running.port, "/ws/agent")
    await sigterm_closes_sockets_and_exits_0(running)


async def test_serve_two_workers_restart_and_stop(start_serve: object) -> None:
    running = await start_serve("--workers", "2")  # type: ignore[operator]
    async with asyncio.timeout(10):
        while True:
            workers = running.workers()
            if len(workers) == 2:
                break
            await asyncio.sleep(0.05)
    assert len(workers) == 2
    for _ in range(4):
        await ping_pong(running.port)
    # a worker that dies is replaced
    os.kill(workers[0], signal.SIGKILL)
    async with asyncio.timeout(15):
        while True:
            now = running.workers()
            if len(now) == 2 and workers[0] not in now:
                break
            await asyncio.sleep(0.1)
    await wait_healthy(running.url)
    await ping_pong(running.port, "/ws/agent")
    await sigterm_closes_sockets_and_exits_0(running)
    for pid in running.workers() if running.process.returncode is None else []:
        pytest.fail(f"worker {pid} survived")


async def test_a_database_outage_is_logged_once_summed_up_and_ended(
    start_serve: object, database: str
) -> None:
    """Requests failing for seconds on an unreachable PostgreSQL write one line with the
    traceback, then at most a summary, and a line when it ended (logs.OutageFilter)."""
    async with TcpProxy(testdb.PG_HOST, testdb.PG_PORT) as proxy:
        running = await start_serve(  # type: ignore[operator]
            DATABASE_URL=proxied(database, proxy), LOG_LEVEL="debug"
        )
        user = await sign_up(running.url)
        async with authed_client(running.url, user) as client:
            assert (await client.get("/api/agents")).status_code == 200
            proxy.refuse()
            await proxy.cut()
            loop = asyncio.get_running_loop()
            until, failed = loop.time() + 3.0, 0
            while loop.time() < until:
                failed += (await client.get("/api/agents")).status_code == 500
            proxy.refuse(False)
            async with asyncio.timeout(15):
                while True:
                    if (await client.get("/api/agents")).status_code == 200:
                        break
                    await asyncio.sleep(0.2)
            await asyncio.sleep(QUIET_S)
            assert (await client.get("/health")).status_code == 200  # its line tells the end
        log = running.log.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line[:1] == "{"]
    # (the tests' shared Redis may list processes of other tests that are gone)
    told = [
        line
        for line in lines
        if line["level"] in ("warning", "error") and line["logger"] != "arinova.realtime.cluster"
    ]
    assert failed >= 20
    assert [line["msg"][:27] for line in told if "exc" in line] == ["PostgreSQL unreachable (rep"]
    assert len(told) <= 3, told  # the first failure, perhaps a summary, the end
    ended = [line["msg"] for line in told if line["msg"].startswith("PostgreSQL: no failure")]
    assert len(ended) == 1, told
    assert "; the outage lasted " in ended[0], ended


async def test_two_workers_refuse_a_signed_out_session_at_once(start_serve: object) -> None:
    """Each worker serves the warm session from its own copy; once the sign-out answered,
    whichever worker a new connection reaches refuses the cookie."""
    running = await start_serve("--workers", "2")  # type: ignore[operator]
    async with asyncio.timeout(10):
        while True:
            if len(running.workers()) == 2:
                break
            await asyncio.sleep(0.05)
    user = await sign_up(running.url)
    # a connection per request: the two workers share the listening socket
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=running.url, limits=fresh, timeout=30) as client:
        cookie = {"cookie": user.cookie}
        for _ in range(40):
            assert (await client.get("/api/agents", headers=cookie)).status_code == 200
            await asyncio.sleep(0.03)
        r = await client.post("/api/auth/sign-out", json={}, headers=user.headers)
        assert (r.status_code, r.json()) == (200, {"success": True})
        for _ in range(40):
            r = await client.get("/api/agents", headers=cookie)
            assert (r.status_code, r.json()) == (401, {"error": "Unauthorized"})
    await sigterm_closes_sockets_and_exits_0(running)
