"""RedisCluster: three private masters that redis-py's asyncio cluster client routes
keys to and carries sharded pub/sub through (``RedisCluster.spublish``,
``ClusterPubSub.ssubscribe`` / ``get_sharded_message``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as ClusterClient

from tests.support.redis_cluster import RedisCluster


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RedisCluster]:
    """One cluster for the tests that leave it as they found it."""
    async with RedisCluster(Path(tmp_path_factory.mktemp("cluster"))) as started:
        yield started


@pytest.fixture
async def client(cluster: RedisCluster) -> AsyncIterator[ClusterClient]:
    connected = ClusterClient(startup_nodes=cluster.startup_nodes)
    await connected.initialize()  # reads the slot table, for get_node_from_key
    yield connected
    await connected.aclose()


def owner_port(client: ClusterClient, key: str) -> int:
    node = client.get_node_from_key(key)
    assert node is not None
    return int(node.port)


def names_on_every_node(client: ClusterClient, cluster: RedisCluster, prefix: str) -> list[str]:
    """One name per node, each hashed to a slot that node owns."""
    by_port: dict[int, str] = {}
    for index in range(1000):
        name = f"{prefix}-{index}"
        by_port.setdefault(owner_port(client, name), name)
        if len(by_port) == len(cluster.nodes):
            return [by_port[port] for _, port in cluster.addresses]
    raise AssertionError(f"no names found for every node: {by_port}")


async def test_keys_are_routed_to_all_three_nodes(
    cluster: RedisCluster, client: ClusterClient
) -> None:
    keys = [f"key-{index}" for index in range(30)]
    for key in keys:
        await client.set(key, key.upper())

    owners = {key: owner_port(client, key) for key in keys}
    assert set(owners.values()) == {port for _, port in cluster.addresses}
    for host, port in cluster.addresses:
        # each key lives on the node its slot belongs to, and nowhere else
        node = aioredis.Redis(host=host, port=port)
        try:
            mine = sorted(key for key, owner in owners.items() if owner == port)
            assert await node.dbsize() == len(mine)
            assert [await node.get(key) for key in mine] == [key.upper().encode() for key in mine]
        finally:
            await node.aclose()
    assert cluster.url == f"redis://127.0.0.1:{cluster.nodes[0].port}"
    from_url = ClusterClient.from_url(cluster.url)
    try:
        assert await from_url.get("key-7") == b"KEY-7"
    finally:
        await from_url.aclose()
    await client.delete(*keys)


async def test_sharded_pubsub_delivers_on_every_node(
    cluster: RedisCluster, client: ClusterClient
) -> None:
    channels = names_on_every_node(client, cluster, "channel")
    pubsub = client.pubsub()
    try:
        await pubsub.ssubscribe(*channels)
        for (host, port), channel in zip(cluster.addresses, channels, strict=True):
            node = aioredis.Redis(host=host, port=port)
            try:
                # the subscription is held by the node owning the channel's slot
                assert await node.pubsub_shardnumsub(channel) == [(channel.encode(), 1)]
            finally:
                await node.aclose()
        for channel in channels:
            assert await client.spublish(channel, f"to {channel}") == 1

        received: set[tuple[bytes, bytes]] = set()
        deadline = time.monotonic() + 5
        while len(received) < len(channels) and time.monotonic() < deadline:
            message = await pubsub.get_sharded_message(ignore_subscribe_messages=True, timeout=0.05)
            if message is not None:
                assert message["type"] == "smessage"
                received.add((message["channel"], message["data"]))
        assert received == {(c.encode(), f"to {c}".encode()) for c in channels}
    finally:
        await pubsub.aclose()


async def test_a_restarted_node_rejoins_with_its_slots_and_without_its_keys(
    redis_cluster: RedisCluster,
) -> None:
    client = ClusterClient(startup_nodes=redis_cluster.startup_nodes)
    try:
        await client.initialize()
        keys = names_on_every_node(client, redis_cluster, "key")
        for key in keys:
            await client.set(key, "kept")
        restarted = redis_cluster.nodes[1]
        port = restarted.port

        await restarted.stop()
        await restarted.start()
        await redis_cluster.wait_healthy()

        assert restarted.port == port
        assert [await client.get(key) for key in keys] == [b"kept", None, b"kept"]
    finally:
        await client.aclose()
