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
