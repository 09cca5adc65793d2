"""Prometheus metrics as an operator scrapes them: ``arinova serve`` with two workers and
``METRICS_PORT``, a user and an agent streaming a reply, the metrics port read during and
after, summed across the workers."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from arinova.db.pool import create_pool
from arinova.settings import Settings, SettingsError
from tests.support.auth import authed_client, sign_up
from tests.support.config import server_env
from tests.support.ports import free_port
from tests.support.servers import StartServer
from tests.support.ws import Chat, agent_socket, raw_agent_socket, recv, send, user_socket

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

#: the workers' gauges are sampled every second
SETTLE_S = 10.0


class Served:
    def __init__(self, process: asyncio.subprocess.Process, port: int, metrics_port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"

    async def scrape(self) -> Samples:
        return await scrape(self.metrics_url)

    async def until(self, check: Callable[[Samples], bool]) -> Samples:
        return await until(self.metrics_url, check)


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def until(url: str, check: Callable[[Samples], bool]) -> Samples:
    """The first scrape that passes ``check`` (the last one fails the test)."""
    async with asyncio.timeout(SETTLE_S):
        while True:
            samples = await scrape(url)
            if check(samples):
                return samples
            await asyncio.sleep(0.1)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def serve(database: str, tmp_path: Path) -> AsyncIterator[Callable[[], Awaitable[Served]]]:
    started: list[asyncio.subprocess.Process] = []

    async def start() -> Served:
        port, metrics_port = free_port(), free_port()
        env = server_env(
            database,
            tmp_path,
            PORT=str(port),
            WORKERS="2",
            METRICS_PORT=str(metrics_port),
            SHUTDOWN_TIMEOUT="5",
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "arinova",
            "serve",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=(tmp_path / "serve.log").open("wb"),
            stderr=asyncio.subprocess.STDOUT,
        )
        started.append(process)
        served = Served(process, port, metrics_port)
        async with httpx.AsyncClient() as client, asyncio.timeout(30):
            while True:
                try:
                    if (await client.get(f"{served.url}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        return served

    yield start
    for process in started:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(20):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


def sockets(samples: Samples, kind: str) -> float:
    return value(samples, "arinova_sockets_open", kind=kind)


async def test_two_workers_metrics_follow_a_stream(
    serve: Callable[[], Awaitable[Served]], tmp_path: Path
) -> None:
    served = await serve()
    user = await sign_up(served.url)
    chat = await Chat.create(served, user)
    before = await served.scrape()
    assert sockets(before, "client") == sockets(before, "agent") == 0
    assert value(before, "arinova_streams_active") == 0
    chunks_before = value(before, "arinova_chunks_relayed_total")

    # requests on fresh connections: the two workers' counts are summed
    requests = 6
    async with authed_client(served.url, user, headers={"connection": "close"}) as client:
        for _ in range(requests):
            assert (await client.get("/api/agents")).status_code == 200
    labels = {"method": "GET", "route": "/api/agents", "status": "200"}
    count = value(before, "arinova_http_requests_total", **labels)
    observed = value(before, "arinova_http_request_duration_seconds_count", **labels)
    after_requests = await served.until(
        lambda s: value(s, "arinova_http_requests_total", **labels) == count + requests
    )
    assert value(after_requests, "arinova_http_request_duration_seconds_count", **labels) == (
        observed + requests
    )
    assert value(
        after_requests, "arinova_http_request_duration_seconds_bucket", le="+Inf", **labels
    ) == (observed + requests)

    n = 5
    conv = chat.conversation_id
    async with agent_socket(served, chat.token) as bot, user_socket(served, user) as ws:
        opened = await served.until(
            lambda s: sockets(s, "client") == 1 and sockets(s, "agent") == 1
        )
        assert value(opened, "arinova_users_connected") == 1
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "Hi"})
        task = await recv(bot)
        assert task["type"] == "task"
        message_id = task["taskId"]
        assert (await recv(ws))["type"] == "stream_start"
        streaming = await served.until(lambda s: value(s, "arinova_streams_active") == 1)
        assert sockets(streaming, "client") == sockets(streaming, "agent") == 1
        for i in range(n):
            await send(bot, {"type": "agent_chunk", "taskId": message_id, "chunk": f"c{i} "})
        for i in range(n):
            assert (await recv(ws))["chunk"] == f"c{i} "
        await send(bot, {"type": "agent_complete", "taskId": message_id, "content": "done"})
        assert (await recv(ws))["type"] == "stream_end"
        ended = await served.until(
            lambda s: (
                value(s, "arinova_streams_active") == 0
                and value(s, "arinova_chunks_relayed_total") == chunks_before + n
            )
        )
        assert sockets(ended, "client") == sockets(ended, "agent") == 1
    closed = await served.until(lambda s: sockets(s, "client") == sockets(s, "agent") == 0)
    assert value(closed, "arinova_users_connected") == 0
    assert value(closed, "arinova_replies_queued") == 0

    # the API's port has no metrics
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{served.url}/metrics")).status_code == 404
    unmatched = await served.until(
        lambda s: (
            value(s, "arinova_http_requests_total", method="GET", route="(unmatched)", status="404")
            >= 1
        )
    )
    assert not any("/metrics" in dict(labels).get("route", "") for _, labels in unmatched)


async def test_a_pool_reports_connections_in_use_and_waiters(database: str) -> None:
    pool = await create_pool(database, min_size=1, max_size=1)
    try:
        assert pool.in_use == 0 and pool.waiting == 0
        async with pool.acquire():
            assert pool.in_use == 1
            waiter = asyncio.ensure_future(pool.fetchval("SELECT 1"))
            await asyncio.sleep(0.05)
            assert pool.waiting == 1
        assert await waiter == 1
        assert pool.waiting == 0
    finally:
        await pool.close()


async def test_the_bus_between_two_processes_is_counted(start_server: StartServer) -> None:
    """A user on one process, the agent on another: the reply runs where the agent is, its
    events cross the bus to the user's process."""
    users = await start_server(metrics_port=0)
    agents = await start_server(metrics_port=0)
    user = await sign_up(users.url)
    chat = await Chat.create(users, user)
    conv = chat.conversation_id
    n = 4
    async with agent_socket(agents, chat.token) as bot, user_socket(users, user) as ws:
        await send(ws, {"type": "send_message", "conversationId": conv, "content": "Hi"})
        task = await recv(bot)
        message_id = task["taskId"]
        assert (await recv(ws))["type"] == "stream_start"
        # each chunk heard before the next: the text is written while it streams (a reply
        # ended within one batch only has its key deleted)
        for i in range(n):
            await send(bot, {"type": "agent_chunk", "taskId": message_id, "chunk": f"c{i} "})
            assert (await recv(ws))["chunk"] == f"c{i} "
        await send(bot, {"type": "agent_complete", "taskId": message_id, "content": "done"})
        assert (await recv(ws))["type"] == "stream_end"
    ran = await until(agents.metrics_url, lambda s: value(s, "arinova_chunks_relayed_total") == n)
    assert value(ran, "arinova_stream_cache_writes_total") >= 1
    # stream_start, the chunks and stream_end at least, in one or more publishes
    assert value(ran, "arinova_bus_messages_total", direction="published") >= n + 2
    assert value(ran, "arinova_bus_publishes_total") >= 1
    heard = await until(
        users.metrics_url,
        lambda s: value(s, "arinova_bus_messages_total", direction="delivered") >= n + 2,
    )
    assert value(heard, "arinova_chunks_relayed_total") == 0
    assert value(heard, "arinova_bus_delivery_lag_seconds_count") >= 1
    assert value(heard, "arinova_bus_delivery_lag_seconds_bucket", le="1.0") >= 1
    assert value(heard, "arinova_redis_errors_total", source="command") == 0


def workers(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        c for c in map(int, children) if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()
    ]


def holder_of(client_port: int, pids: list[int]) -> int:
    """The worker whose socket is the peer of the client's local port (from /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].split(":")[1], 16) == client_port:
            inodes.add(fields[9])
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return pid
    raise AssertionError(f"no worker holds the peer of port {client_port}")


async def settled_workers(served: Served, gone: int | None) -> list[int]:
    """The two workers, once ``gone`` is not one of them."""
    async with asyncio.timeout(15):
        while True:
            pids = workers(served.process.pid)
            if len(pids) == 2 and gone not in pids:
                return pids
            await asyncio.sleep(0.1)


async def test_a_dead_workers_gauges_leave_the_sums(serve: Callable[[], Awaitable[Served]]) -> None:
    served = await serve()
    pids = await settled_workers(served, None)
    async with raw_agent_socket(served) as ws:
        await served.until(lambda s: sockets(s, "agent") == 1)
        port = ws.transport.get_extra_info("sockname")[1]
        holder = holder_of(port, pids)
        os.kill(holder, signal.SIGKILL)
        # its socket is gone with it, and so is its count, once it is replaced
        await served.until(lambda s: sockets(s, "agent") == 0)
        await settled_workers(served, holder)
        after = await served.until(lambda s: sockets(s, "agent") == 0)
        assert value(after, "arinova_sockets_open", kind="agent") == 0


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_metrics_port_in_use_stops_the_start(
    database: str, tmp_path: Path, workers: str
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = server_env(
            database, tmp_path, PORT=str(free_port()), WORKERS=workers, METRICS_PORT=str(port)
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "arinova",
            "serve",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            _, stderr = await process.communicate()
    assert process.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}: Address already in use" in stderr.decode()


@pytest.mark.parametrize(
    ("variables", "error"),
    [
        ({"METRICS_PORT": "x"}, "METRICS_PORT must be an integer, got 'x'"),
        ({"METRICS_PORT": "70000"}, "METRICS_PORT must be between 0 and 65535, got 70000"),
        ({"METRICS_PORT": "4000", "PORT": "4000"}, "METRICS_PORT must differ from PORT (4000)"),
    ],
)
def test_bad_metrics_settings_are_refused(variables: dict[str, str], error: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(variables).validate()
    assert str(raised.value) == error


def test_metrics_are_off_unless_a_port_is_given() -> None:
    settings = Settings.from_env({})
    assert settings.metrics_port is None and settings.metrics_host == "127.0.0.1"
    settings = Settings.from_env({"METRICS_PORT": "9100", "METRICS_HOST": "0.0.0.0"})
    assert (settings.metrics_port, settings.metrics_host) == (9100, "0.0.0.0")
