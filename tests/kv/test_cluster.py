"""The bus's connections on a private three-master Redis Cluster: a batch split by slot
over the nodes with its replies in order and its phases in order, sharded subscriptions
confirmed where each channel's slot lives, and both following a slot that moves to
another node."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from arinova.kv import keys
from arinova.kv.cluster import ClusterConnection, ClusterSubscriber, slot_of
from arinova.kv.resp import ConnectionLost
from tests.support import resp
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer

STREAMS = 24


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RedisCluster]:
    async with RedisCluster(tmp_path_factory.mktemp("kv-cluster")) as started:
        yield started


async def node_of_slot(cluster: RedisCluster, slot: int) -> RedisServer:
    reply = await resp.command(cluster.nodes[0].host, cluster.nodes[0].port, "CLUSTER", "SLOTS")
    assert isinstance(reply, list)
    for start, end, master, *_ in reply:
        if start <= slot <= end:
            return next(n for n in cluster.nodes if n.port == master[1])
    raise AssertionError(f"slot {slot} is served by no node")


async def node_id(node: RedisServer) -> str:
    reply = await resp.command(node.host, node.port, "CLUSTER", "MYID")
    assert isinstance(reply, bytes)
    return reply.decode()


async def move_slot(cluster: RedisCluster, slot: int, to: RedisServer) -> None:
    """Give an empty slot to another master (every node told, as redis-cli does)."""
    target = await node_id(to)
    for node in cluster.nodes:
        await resp.command(node.host, node.port, "CLUSTER", "SETSLOT", str(slot), "NODE", target)
    await cluster.wait_healthy()


def test_the_coordinators_script_keys_share_one_slot() -> None:
    together = [
        keys.RT_PROCS,
        keys.RT_AGENTS,
        keys.rt_active("c"),
        keys.rt_queue("c"),
        keys.rt_user_active("u"),
        keys.rt_replies("p"),
        keys.rt_marks("p"),
    ]
    assert {slot_of(key) for key in together} == {slot_of(keys.RT_TAG)}
    # the per-user channels spread over the slots
    assert len({slot_of(keys.rt_user_channel(f"user{i}")) for i in range(100)}) > 90


async def test_a_batch_over_every_node_answers_in_order_and_its_writes_land_before_its_publishes(
    cluster: RedisCluster,
) -> None:
    connection = ClusterConnection(cluster.url, connect_s=1.0, stall_s=5.0)
    heard: list[tuple[str, bytes]] = []
    subscriber = ClusterSubscriber(
        cluster.url, lambda c, d: heard.append((c, d)), connect_s=1.0, stall_s=5, reconnect_max_s=1
    )
    streams = [keys.stream(f"batch-{i}") for i in range(STREAMS)]
    channels = [keys.rt_user_channel(f"batch-{i}") for i in range(STREAMS)]
    try:
        assert len({(await node_of_slot(cluster, slot_of(s))).port for s in streams}) == 3
        for channel in channels:
            subscriber.subscribe(channel)
        for channel in channels:
            assert await subscriber.subscribed(channel, 5.0)
        writes = [("SET", key, f"text {i}", "EX", 60) for i, key in enumerate(streams)]
        publishes = [("SPUBLISH", channel, str(i)) for i, channel in enumerate(channels)]
        replies = await connection.execute_phases([writes, publishes])
        assert replies == [b"OK"] * STREAMS + [1] * STREAMS
        replies = await connection.execute([("GET", key) for key in reversed(streams)])
        assert replies == [f"text {i}".encode() for i in reversed(range(STREAMS))]
        async with asyncio.timeout(5):
            while len(heard) < STREAMS:  # noqa: ASYNC110 (heard by another connection)
                await asyncio.sleep(0.01)
        assert sorted(heard) == sorted((c, str(i).encode()) for i, c in enumerate(channels))
    finally:
        await subscriber.aclose()
        await connection.aclose()


async def test_a_slot_that_moved_is_followed_by_commands_and_subscriptions(
    cluster: RedisCluster,
) -> None:
    channel = keys.rt_user_channel("moving")
    slot = slot_of(channel)
    heard: list[bytes] = []
    connection = ClusterConnection(cluster.url, connect_s=1.0, stall_s=5.0)
    subscriber = ClusterSubscriber(
        cluster.url, lambda c, d: heard.append(d), connect_s=1.0, stall_s=5, reconnect_max_s=1
    )
    try:
        subscriber.subscribe(channel)
        assert await subscriber.subscribed(channel, 5.0)
        assert await connection.execute([("SPUBLISH", channel, "before")]) == [1]
        before = await node_of_slot(cluster, slot)
        after = next(n for n in cluster.nodes if n is not before)
        await move_slot(cluster, slot, after)
        # the connection's map is stale: the node that answers MOVED fails the batch
        # (the bus sends it again), and the next one goes to the slot's new node
        with pytest.raises(ConnectionLost):
            await connection.execute([("SPUBLISH", channel, "lost")])
        async with asyncio.timeout(5):
            while (await connection.execute([("SPUBLISH", channel, "after")])) != [1]:  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # until the subscriber moved too
        async with asyncio.timeout(5):
            while b"after" not in heard:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert heard[0] == b"before" and b"lost" not in heard
        listening = await resp.command(after.host, after.port, "PUBSUB", "SHARDNUMSUB", channel)
        assert listening == [channel.encode(), 1]
    finally:
        await subscriber.aclose()
        await connection.aclose()


async def test_a_cluster_that_is_down_fails_the_batch_and_recovers(
    cluster: RedisCluster,
) -> None:
    connection = ClusterConnection(cluster.url, connect_s=0.5, stall_s=5.0)
    key = keys.stream("down")
    node = await node_of_slot(cluster, slot_of(key))
    try:
        assert await connection.execute([("SET", key, "x")]) == [b"OK"]
        await node.stop()
        with pytest.raises((ConnectionLost, OSError)):
            await connection.execute([("GET", key)])
        assert connection.reconnected_for() == 0.0
        await node.start()
        await cluster.wait_healthy()
        async with asyncio.timeout(10):
            while True:
                try:
                    if await connection.execute([("SET", key, "y")]) == [b"OK"]:
                        break
                except (ConnectionLost, OSError):
                    await asyncio.sleep(0.1)
        assert connection.reconnected_for() < 5
    finally:
        await connection.aclose()


def test_a_cached_session_and_its_revocation_marker_share_one_slot() -> None:
    # read together in one MGET: on a cluster both must be on one node
    assert slot_of(keys.session_cache("digest")) == slot_of(keys.session_revoked("digest"))
