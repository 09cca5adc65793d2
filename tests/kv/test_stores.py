"""One contract for both key-value stores: MemoryKV and RedisKV (real Redis, db 1, and a
private three-master Redis Cluster, where several keys of one call live on different
nodes)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from prometheus_client import CollectorRegistry, Counter

from arinova.kv import KV, create_kv
from arinova.kv.base import KVError
from arinova.kv.memory import MemoryKV
from arinova.kv.redis import RedisKV
from arinova.metrics.tally import Tally
from tests.support.clock import ManualClock
from tests.support.config import TEST_REDIS_URL
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
async def module_cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RedisCluster]:
    async with RedisCluster(tmp_path_factory.mktemp("stores-cluster")) as cluster:
        yield cluster


@pytest.fixture(params=["memory", "redis", "cluster"])
def store_kind(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The store and its Redis URL (the cluster started once for the module)."""
    if request.param == "cluster":
        return "cluster", request.getfixturevalue("module_cluster").url
    return request.param, TEST_REDIS_URL


@pytest.fixture
async def kv(store_kind: tuple[str, str], clock: ManualClock) -> AsyncIterator[KV]:
    store: KV
    kind, url = store_kind
    if kind == "memory":
        store = MemoryKV(clock=clock)
    else:
        store = await RedisKV.connect(url, cluster=kind == "cluster")
    yield store
    await store.close()


Elapse = Callable[[float], Awaitable[None]]


@pytest.fixture
def elapse(kv: KV, clock: ManualClock) -> Elapse:
    """Lets time pass for ``kv``: the memory store's clock moves on at once, Redis (a real
    server with its own clock) is waited for."""

    async def elapse(seconds: float) -> None:
        if isinstance(kv, MemoryKV):
            clock.advance(seconds)
        else:
            await asyncio.sleep(seconds)

    return elapse


@pytest.fixture
def key() -> str:
    """A key no other test (or test run) uses; Redis cleans it up through its TTL."""
    return f"test:kv:{uuid.uuid4().hex}"


async def test_get_set_delete(kv: KV, key: str) -> None:
    assert await kv.get(key) is None
    await kv.set(key, "héllo")
    assert await kv.get(key) == "héllo".encode()
    await kv.set(key, b"\x00\xff")
    assert await kv.get(key) == b"\x00\xff"
    assert await kv.delete(key, key + ":other") == 1
    assert await kv.get(key) is None
    assert await kv.delete() == 0


async def test_mget(kv: KV, key: str) -> None:
    await kv.set(key + ":a", b"1", ex=60)
    await kv.set(key + ":c", b"3", ex=60)
    assert await kv.mget([key + ":a", key + ":b", key + ":c"]) == [b"1", None, b"3"]
    assert await kv.mget([]) == []
    await kv.delete(key + ":a", key + ":c")


async def test_ttl_semantics(kv: KV, key: str) -> None:
    assert await kv.ttl(key) == -2
    assert await kv.pttl(key) == -2
    assert await kv.expire(key, 10) is False
    await kv.set(key, b"v")
    assert await kv.ttl(key) == -1
    await kv.set(key, b"v", ex=100)
    assert 99 <= await kv.ttl(key) <= 100
    assert 99_000 < await kv.pttl(key) <= 100_000
    await kv.set(key, b"w")  # a plain SET clears the TTL
    assert await kv.ttl(key) == -1
    assert await kv.expire(key, 50) is True
    assert 49 <= await kv.ttl(key) <= 50
    assert await kv.expire(key, 0) is True  # non-positive: deleted
    assert await kv.get(key) is None
    with pytest.raises(KVError):
        await kv.set(key, b"v", ex=0)


async def test_keys_expire(kv: KV, key: str, elapse: Elapse) -> None:
    await kv.set(key, b"v", ex=1)
    await elapse(1.1)
    assert await kv.get(key) is None
    assert await kv.ttl(key) == -2


async def test_incr(kv: KV, key: str) -> None:
    assert await kv.incr(key) == 1
    assert await kv.incr(key) == 2
    await kv.expire(key, 30)
    assert await kv.incr(key) == 3
    assert 29 <= await kv.ttl(key) <= 30  # INCR keeps the TTL
    await kv.set(key, b"41")
    assert await kv.incr(key) == 42
    await kv.set(key, b"not a number")
    with pytest.raises(KVError):
        await kv.incr(key)
    await kv.set(key, b"01")
    with pytest.raises(KVError):
        await kv.incr(key)
    await kv.delete(key)


async def test_incr_with_ttl_starts_a_window_once(kv: KV, key: str, elapse: Elapse) -> None:
    assert await kv.incr_with_ttl(key, 60_000) == (1, 60_000)
    await elapse(0.05)
    value, ttl = await kv.incr_with_ttl(key, 60_000)
    assert value == 2
    assert 59_000 < ttl < 60_000  # the window is not restarted
    await kv.delete(key)
    short = key + ":short"
    assert (await kv.incr_with_ttl(short, 200))[0] == 1
    await elapse(0.3)
    assert (await kv.incr_with_ttl(short, 200))[0] == 1  # a new window
    await kv.delete(short)


async def test_add_with_ttl_adds_to_several_windows_at_once(
    kv: KV, key: str, elapse: Elapse
) -> None:
    other = key + ":other"
    assert await kv.add_with_ttl([], 1000) == []
    assert await kv.add_with_ttl([(key, 3), (other, 1)], 60_000) == [(3, 60_000), (1, 60_000)]
    await elapse(0.05)
    (first, ttl), second = await kv.add_with_ttl([(key, 2), (other, 5)], 60_000)
    assert (first, second[0]) == (5, 6)
    assert 59_000 < ttl < 60_000  # the window is not restarted
    assert await kv.get(key) == b"5"
    short = key + ":short"
    assert await kv.add_with_ttl([(short, 4)], 200) == [(4, 200)]
    await elapse(0.3)
    assert await kv.add_with_ttl([(short, 1)], 200) == [(1, 200)]  # a new window
    await kv.delete(key, other, short)


async def test_sorted_sets(kv: KV, key: str) -> None:
    assert await kv.zcard(key) == 0
    assert await kv.zrange(key, 0, -1) == []
    assert await kv.zadd(key, 3, "c") == 1
    assert await kv.zadd(key, 1, b"a") == 1
    assert await kv.zadd(key, 2, "b") == 1
    assert await kv.zadd(key, 2, "b2") == 1
    assert await kv.zadd(key, 0.5, "c") == 0  # score update only
    assert await kv.zcard(key) == 4
    assert await kv.zrange(key, 0, -1) == [b"c", b"a", b"b", b"b2"]
    assert await kv.zrange(key, 1, 2) == [b"a", b"b"]
    assert await kv.zrange(key, -2, -1) == [b"b", b"b2"]
    assert await kv.zrange(key, 5, 10) == []
    assert await kv.zrange(key, 2, 1) == []
    # keep the newest 2 (what the offline queue does)
    assert await kv.zremrangebyrank(key, 0, -3) == 2
    assert await kv.zrange(key, 0, -1) == [b"b", b"b2"]
    await kv.expire(key, 30)
    assert 29 <= await kv.ttl(key) <= 30
    assert await kv.zremrangebyrank(key, 0, -1) == 2
    assert await kv.zcard(key) == 0
    assert await kv.ttl(key) == -2  # an emptied set is gone


async def test_wrong_type(kv: KV, key: str) -> None:
    await kv.zadd(key, 1, "m")
    with pytest.raises(KVError):
        await kv.get(key)
    with pytest.raises(KVError):
        await kv.incr(key)
    await kv.delete(key)
    await kv.set(key, b"v")
    with pytest.raises(KVError):
        await kv.zadd(key, 1, "m")
    await kv.delete(key)


async def test_publish_subscribe(kv: KV, key: str) -> None:
    channel = key + ":events"
    received: list[tuple[str, bytes]] = []
    got = asyncio.Event()

    def on_message(ch: str, data: bytes) -> None:
        received.append((ch, data))
        got.set()

    assert await kv.publish(channel, b"nobody listens") == 0
    await kv.subscribe(channel, on_message)
    # subscriptions are asynchronous on Redis: publish until it is in place
    async with asyncio.timeout(5):
        await _until(lambda: kv.publish(channel, "hello"), lambda n: n == 1)
        await got.wait()
    assert received[0] == (channel, b"hello")

    await kv.unsubscribe(channel, on_message)
    async with asyncio.timeout(5):
        await _until(lambda: kv.publish(channel, b"gone"), lambda n: n == 0)


async def _until(action: Callable[[], Awaitable[int]], done: Callable[[int], bool]) -> None:
    """Repeat ``action`` until its result satisfies ``done``."""
    for _ in range(250):
        if done(await action()):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never reached")


async def test_a_failing_handler_does_not_stop_delivery(kv: KV, key: str) -> None:
    channel = key + ":events"
    got = asyncio.Event()

    def broken(ch: str, data: bytes) -> None:
        raise RuntimeError("handler bug")

    await kv.subscribe(channel, broken)
    await kv.subscribe(channel, lambda ch, data: got.set())
    async with asyncio.timeout(5):
        while not got.is_set():
            await kv.publish(channel, b"x")
            await asyncio.sleep(0.02)


async def test_redis_connections_closed_by_a_restart_answer_the_next_command(
    redis_server: RedisServer,
) -> None:
    """A command on a pooled connection that a Redis restart closed is sent again once, on
    a new connection: the caller never sees the stale connection."""
    store = await RedisKV.connect(redis_server.url())
    try:
        await asyncio.gather(*(store.get("k") for _ in range(8)))  # several pooled
        await redis_server.stop()
        await redis_server.start()
        assert await asyncio.gather(*(store.get("k") for _ in range(8))) == [None] * 8
    finally:
        await store.close()


async def test_redis_hot_path_reads_fail_counted_while_redis_is_down_and_answer_after(
    redis_server: RedisServer,
) -> None:
    """PING and MGET (GET /health, the messages page's live texts) go over a bare
    connection: with Redis down they raise and count as failed commands; once it is back
    they answer on a new connection."""
    errors = Tally(Counter("kv_errors", "failed commands", registry=CollectorRegistry()))
    store = await RedisKV.connect(redis_server.url(), command_errors=errors)
    try:
        await store.set("k:a", b"1")
        assert await store.ping() is True
        assert await store.mget(["k:a", "k:b"]) == [b"1", None]
        await redis_server.stop()
        with pytest.raises(Exception):  # noqa: B017 - whichever error the loss is
            await store.mget(["k:a"])
        with pytest.raises(Exception):  # noqa: B017
            await store.ping()
        assert errors.value == 2
        await redis_server.start()
        assert await store.ping() is True
        assert await store.mget(["k:a", "k:b"]) == [None, None]  # nothing was saved
    finally:
        await store.close()


async def test_redis_scripts_load_themselves_and_fail_counted(
    store_kind: tuple[str, str], redis_server: RedisServer
) -> None:
    """A script runs by its hash and is loaded when Redis does not know it (first use,
    after a restart); an error in it raises ``KVError``, counted."""
    kind, cluster_url = store_kind
    if kind == "memory":
        pytest.skip("scripts are Redis's")
    errors = Tally(Counter("kv_errors", "failed commands", registry=CollectorRegistry()))
    url = cluster_url if kind == "cluster" else redis_server.url()
    store = await RedisKV.connect(url, cluster=kind == "cluster", command_errors=errors)
    key = f"script:{{{uuid.uuid4()}}}"
    bump = store.script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    fail = store.script("return redis.error_reply('ERR no: ' .. ARGV[1])")
    try:
        assert await bump([key], [2]) == 2
        assert await bump([key], [3]) == 5
        if kind == "redis":
            await redis_server.stop()
            await redis_server.start()  # nothing saved, no script known
            await store.ping()
            assert await bump([key], [4]) == 4
        assert errors.value == 0
        with pytest.raises(KVError, match="no: why"):
            await fail([key], ["why"])
        assert errors.value == 1
        assert await bump([key], [1]) == (5 if kind == "redis" else 6)  # it goes on
    finally:
        await store.close()


async def test_shared_flag() -> None:
    memory = await create_kv("")
    assert isinstance(memory, MemoryKV)
    assert memory.shared is False
    redis = await create_kv(TEST_REDIS_URL)
    assert isinstance(redis, RedisKV)
    assert redis.shared is True
    await memory.close()
    await redis.close()


# -- MemoryKV's bounds --------------------------------------------------------------------


async def test_memory_is_bounded_dropping_expired_then_oldest(clock: ManualClock) -> None:
    kv = MemoryKV(max_keys=100, clock=clock)
    await kv.set("expiring", b"x", ex=1)
    for i in range(99):
        await kv.set(f"k{i}", b"v")
    assert len(kv) == 100
    clock.advance(1.05)
    await kv.set("new", b"v")  # full: the expired key makes room
    assert await kv.get("k0") == b"v"
    assert len(kv) == 100
    await kv.set("newer", b"v")  # full, nothing expired: the oldest go
    assert len(kv) <= 100
    assert await kv.get("k0") is None
    assert await kv.get("newer") == b"v"
    assert await kv.get("new") == b"v"


async def test_memory_rewritten_key_counts_as_new() -> None:
    kv = MemoryKV(max_keys=3)
    await kv.set("a", b"1")
    await kv.set("b", b"1")
    await kv.set("c", b"1")
    await kv.set("a", b"2")  # now the newest
    await kv.set("d", b"1")
    assert await kv.get("a") == b"2"
    assert await kv.get("b") is None


async def test_memory_sorted_set_is_capped() -> None:
    kv = MemoryKV(max_zset_members=3)
    for score in range(5):
        await kv.zadd("z", score, f"m{score}")
    assert await kv.zrange("z", 0, -1) == [b"m2", b"m3", b"m4"]
