"""The fixed-window primitive against both stores, and the ``send_message`` limit's
in-memory fallback when Redis is down (websocket.md §1.7)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest

from arinova.clock import SystemClock
from arinova.kv import KV
from arinova.kv.memory import MemoryKV
from arinova.kv.redis import RedisKV
from arinova.ratelimit.batched import BatchedWindow
from arinova.ratelimit.messages import MessageRateLimit
from arinova.ratelimit.window import FixedWindow
from tests.support.config import TEST_REDIS_URL

log = logging.getLogger("tests.ratelimit")


@pytest.fixture(params=["memory", "redis"])
async def kv(request: pytest.FixtureRequest) -> AsyncIterator[KV]:
    store: KV = MemoryKV() if request.param == "memory" else await RedisKV.connect(TEST_REDIS_URL)
    yield store
    await store.close()


async def test_fixed_window_counts_until_the_window_ends(kv: KV) -> None:
    window = FixedWindow(300)
    key = f"test:window:{uuid.uuid4()}"
    first = await window.hit(kv, key)
    assert (first.count, first.reset_ms) == (1, 300)
    second = await window.hit(kv, key)
    assert second.count == 2 and 0 < second.reset_ms <= 300
    assert (await window.hit(kv, f"test:window:{uuid.uuid4()}")).count == 1
    await asyncio.sleep(0.35)
    assert (await window.hit(kv, key)).count == 1


async def test_message_limit_counts_in_memory_while_the_store_is_down() -> None:
    dead = await RedisKV.connect("redis://127.0.0.1:1/1")
    try:
        limit = MessageRateLimit(dead, limit=2, max_entries=3, log=log, clock=SystemClock())
        assert await limit.allow("a") and await limit.allow("a")
        assert not await limit.allow("a")
        for user in ("b", "c", "d", "e"):
            assert await limit.allow(user)
        assert len(limit._fallback) <= 3
    finally:
        await dead.close()


async def test_message_limit_shares_the_minute_key(kv: KV) -> None:
    user = str(uuid.uuid4())
    one, other = (
        MessageRateLimit(kv, 2, 10, log, SystemClock()),
        MessageRateLimit(kv, 2, 10, log, SystemClock()),
    )
    assert await one.allow(user)
    assert await other.allow(user)
    assert not await one.allow(user)


async def test_batched_window_holds_a_bounded_number_of_keys() -> None:
    window = BatchedWindow(MemoryKV(), 0.2, max_keys=3)
    for key in "abcde":
        assert window.hit(key)[0] == 1
    assert len(window) == 3
    assert window.hit("e")[0] == 2
    assert window.hit("a")[0] == 1  # forgotten: the oldest went first
    await asyncio.sleep(0.25)
    count, left_s = window.hit("f")
    assert (count, len(window)) == (1, 1)  # the ended windows went
    assert left_s == pytest.approx(0.2, abs=0.01)
    assert window.hit("e")[0] == 1  # a new window


async def test_batched_window_counts_here_while_the_store_is_down() -> None:
    dead = await RedisKV.connect("redis://127.0.0.1:1/1")
    window = BatchedWindow(dead, 60, max_keys=10)
    try:
        for expected in (1, 2, 3):
            assert window.hit("k")[0] == expected
        await window.flush()
        assert window.hit("k")[0] == 4
    finally:
        await dead.close()


async def test_batched_windows_share_their_counts_through_the_store() -> None:
    kv = await RedisKV.connect(TEST_REDIS_URL)
    key = f"test:batched:{uuid.uuid4()}"
    one, other = BatchedWindow(kv, 60, max_keys=10), BatchedWindow(kv, 60, max_keys=10)
    try:
        for _ in range(3):
            one.hit(key)
        other.hit(key)
        await one.flush()
        await other.flush()
        assert await kv.get(key) == b"4"
        count, left_s = other.hit(key)
        assert count == 5 and 59 < left_s <= 60
        await kv.delete(key)
    finally:
        await kv.close()
