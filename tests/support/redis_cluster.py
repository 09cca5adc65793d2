"""A private Redis Cluster for tests: three masters, no replicas, on free loopback ports.

    async with RedisCluster() as cluster:
        client = redis.asyncio.cluster.RedisCluster(startup_nodes=cluster.startup_nodes)
        # or RedisCluster.from_url(cluster.url)
        await cluster.nodes[1].pause()        # every node is a RedisServer
        await cluster.nodes[1].stop(); await cluster.nodes[1].start()
        await cluster.wait_healthy()          # a restarted node rejoins with its slots

Each node is a ``RedisServer`` with ``--cluster-enabled yes`` in a directory of its own,
joined with ``redis-cli --cluster create … --cluster-replicas 0 --cluster-yes``; the
cluster is ready when ``CLUSTER INFO`` says ``cluster_state:ok`` on every node. Every node
is killed when the block ends, however it ends.

Timing: ``redis-cli --cluster create`` polls once a second until the nodes agree (about
2 s), and a restarted master reports ``cluster_state:ok`` only 2 s after it started
(Redis's rejoin delay, ``CLUSTER_WRITABLE_DELAY``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from pathlib import Path
from types import TracebackType

from redis.asyncio.cluster import ClusterNode

from tests.support import resp
from tests.support.ports import LOOPBACK
from tests.support.redis_server import POLL_S, RedisServer

REDIS_CLI = shutil.which("redis-cli") or "redis-cli"
MASTERS = 3
SLOTS = 16384
CREATE_TIMEOUT_S = 30.0
HEALTHY_TIMEOUT_S = 20.0


class RedisCluster:
    def __init__(
        self,
        directory: Path | None = None,
        *,
        masters: int = MASTERS,
        node_timeout_ms: int = 5000,
    ) -> None:
        self._owns_directory = directory is None
        self.directory = (
            Path(tempfile.mkdtemp(prefix="redis-cluster-")) if directory is None else directory
        )
        self.nodes = [
            RedisServer(
                self.directory / f"node-{index}",
                cluster=True,
                cluster_node_timeout_ms=node_timeout_ms,
            )
            for index in range(masters)
        ]

    async def __aenter__(self) -> RedisCluster:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(node.host, node.port) for node in self.nodes]

    @property
    def startup_nodes(self) -> list[ClusterNode]:
        """For ``redis.asyncio.cluster.RedisCluster(startup_nodes=…)`` (new objects each
        time: a client owns the connections of the nodes it is given)."""
        return [ClusterNode(host, port) for host, port in self.addresses]

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<first node's port>`` (a cluster has database 0 only)."""
        return f"redis://{LOOPBACK}:{self.nodes[0].port}"

    async def start(self) -> None:
        for node in self.nodes:
            await node.start()
        await self._create()
        await self.wait_healthy()

    async def wait_healthy(self, within_s: float = HEALTHY_TIMEOUT_S) -> None:
        """Until every node reports ``cluster_state:ok``, all slots assigned and every
        other node known."""
        deadline = time.monotonic() + within_s
        while not await self._healthy():
            if time.monotonic() >= deadline:
                raise RuntimeError(f"the cluster was not healthy within {within_s} s")
            await asyncio.sleep(POLL_S * 5)

    async def close(self) -> None:
        for node in self.nodes:
            await node.close()
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    async def _create(self) -> None:
        process = await asyncio.create_subprocess_exec(
            REDIS_CLI,
            "--cluster",
            "create",
            *(f"{host}:{port}" for host, port in self.addresses),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), CREATE_TIMEOUT_S)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if process.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {output.decode()[-4000:]}")

    async def _healthy(self) -> bool:
        wanted = {
            "cluster_state": "ok",
            "cluster_slots_assigned": str(SLOTS),
            "cluster_known_nodes": str(len(self.nodes)),
        }
        for node in self.nodes:
            if not node.running or node.paused:
                return False
            with contextlib.suppress(OSError, TimeoutError, resp.RespError):
                info = await resp.command(node.host, node.port, "CLUSTER", "INFO")
                if isinstance(info, bytes) and _fields(info).items() >= wanted.items():
                    continue
            return False
        return True


def _fields(info: bytes) -> dict[str, str]:
    pairs = (line.partition(":") for line in info.decode().splitlines())
    return {name: value for name, _, value in pairs}
