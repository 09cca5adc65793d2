"""The scale-out suite: several server processes on one Redis. Every module here runs twice,
on one Redis (the tests' shared one, or a private ``redis-server`` for the fault tests) and
on a private Redis Cluster of three masters (``REDIS_CLUSTER=true``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster as ClusterClient

from arinova.settings import Settings
from tests.support.config import TEST_REDIS_URL, server_env
from tests.support.ports import free_port
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer

KINDS = ["redis", "cluster"]


@dataclass(frozen=True)
class SharedRedis:
    """Where the module's servers meet: ``redis_url`` and ``redis_cluster`` settings."""

    url: str
    cluster: bool

    @property
    def settings(self) -> dict[str, object]:
        return {"redis_url": self.url, "redis_cluster": self.cluster}

    @property
    def env(self) -> dict[str, str]:
        return {"REDIS_URL": self.url, "REDIS_CLUSTER": "true" if self.cluster else "false"}

    def client(self) -> Redis | ClusterClient:
        if self.cluster:
            return ClusterClient.from_url(self.url)
        return Redis.from_url(self.url)


@pytest.fixture(scope="session")
async def session_cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RedisCluster]:
    """One private three-master cluster for the suite's modules that need no faults."""
    async with RedisCluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="module", params=KINDS)
def shared_redis(request: pytest.FixtureRequest) -> SharedRedis:
    if request.param == "cluster":
        cluster: RedisCluster = request.getfixturevalue("session_cluster")
        return SharedRedis(cluster.url, cluster=True)
    return SharedRedis(TEST_REDIS_URL, cluster=False)


@pytest.fixture(scope="module")
def make_settings(
    make_settings: Callable[..., Settings], shared_redis: SharedRedis
) -> Callable[..., Settings]:
    """The test settings on the module's Redis (or cluster)."""

    def make(**overrides: object) -> Settings:
        return make_settings(**{**shared_redis.settings, **overrides})

    return make


class PrivateRedis:
    """A Redis of the test alone, to stall or restart: one ``redis-server``, or three
    masters of a cluster (a stall or a restart is then every node's)."""

    def __init__(self, directory: Path, *, cluster: bool) -> None:
        self.cluster = cluster
        self._server = None if cluster else RedisServer(directory)
        self._cluster = RedisCluster(directory) if cluster else None

    @property
    def shared(self) -> SharedRedis:
        if self._cluster is not None:
            return SharedRedis(self._cluster.url, cluster=True)
        assert self._server is not None
        return SharedRedis(self._server.url(), cluster=False)

    @property
    def _nodes(self) -> list[RedisServer]:
        return self._cluster.nodes if self._cluster is not None else [self._server]  # type: ignore[list-item]

    async def start(self) -> None:
        if self._cluster is not None:
            await self._cluster.start()
        else:
            assert self._server is not None
            await self._server.start()

    async def pause(self) -> None:
        for node in self._nodes:
            await node.pause()

    async def resume(self) -> None:
        for node in self._nodes:
            await node.resume()

    async def restart(self) -> None:
        """Gone and back with no data (a cluster keeps its slots: ``nodes.conf``)."""
        for node in self._nodes:
            await node.stop()
        for node in self._nodes:
            await node.start()
        if self._cluster is not None:
            await self._cluster.wait_healthy()

    async def close(self) -> None:
        if self._cluster is not None:
            await self._cluster.close()
        elif self._server is not None:
            await self._server.close()


@pytest.fixture
async def private_redis(shared_redis: SharedRedis, tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    """Of the module's kind (one Redis or a cluster), killed at teardown."""
    private = PrivateRedis(tmp_path / "redis", cluster=shared_redis.cluster)
    try:
        await private.start()
        yield private
    finally:
        await private.close()


class ServeProcess:
    """``arinova serve`` in its own process (what the socket helpers need: urls)."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"

    def children(self) -> list[int]:
        pid = self.process.pid
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    async def kill(self) -> None:
        """SIGKILL the serving process and its supervisor: nothing ends gracefully (a
        worker whose supervisor alone died would drain)."""
        for child in self.children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()


@pytest.fixture
async def serve_process(
    database: str, shared_redis: SharedRedis, tmp_path: Path
) -> AsyncIterator[ServeProcess]:
    """``arinova serve`` on the test's database and the module's Redis, in its own process
    (to kill)."""
    port = free_port()
    env = {**server_env(database, tmp_path), **shared_redis.env}
    log = tmp_path / "serve.log"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arinova",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=asyncio.subprocess.STDOUT,
    )
    running = ServeProcess(process, port)
    async with httpx.AsyncClient() as client, asyncio.timeout(30):
        while True:
            try:
                if (await client.get(f"{running.url}/health")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    yield running
    if process.returncode is None:
        process.kill()
        await process.wait()
