"""A client may send a script again when its connection failed after Redis ran it (the
reply was lost): redis-py's retries do. Each script that changes a conversation's mark
answers such a repeat as it answered the call it repeats, and changes nothing more (a
claim queued twice would run a reply twice; a release that pops the next reply twice, or
answers "nothing next" the second time, loses one)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from arinova.kv import keys
from arinova.realtime import scripts
from tests.realtime.scaleout.conftest import SharedRedis

PROC = "p" + uuid.uuid4().hex[:15]
OTHER = "q" + uuid.uuid4().hex[:15]
USER = "user-" + uuid.uuid4().hex[:8]
TTLS = (60_000, 60_000)


@pytest.fixture
async def redis(shared_redis: SharedRedis) -> AsyncIterator[Any]:
    client = shared_redis.client()
    yield client
    await client.aclose()


def mark_of(proc: str) -> str:
    return f"{proc}|{USER}|{uuid.uuid4().hex[:12]}"


async def twice(script: Any, script_keys: list[str], args: list[Any]) -> tuple[Any, Any]:
    return await script(keys=script_keys, args=args), await script(keys=script_keys, args=args)


async def beat(redis: Any, proc: str) -> None:
    """``proc`` is live (its liveness entry a minute ahead)."""
    now = await redis.time()
    await redis.zadd(keys.RT_PROCS, {proc: now[0] * 1000 + 60_000})


async def claim(redis: Any, conv: str, item: str, mark: str) -> tuple[Any, Any]:
    script_keys = [
        keys.RT_PROCS,
        keys.rt_active(conv),
        keys.rt_queue(conv),
        keys.rt_user_active(USER),
        keys.rt_marks(PROC),
        keys.rt_outcome(mark),
    ]
    return await twice(
        redis.register_script(scripts.CLAIM),
        script_keys,
        [PROC, conv, item, 100, mark, *TTLS],
    )


async def release(redis: Any, conv: str, mark: str, following: str) -> tuple[Any, Any]:
    script_keys = [
        keys.RT_PROCS,
        keys.rt_active(conv),
        keys.rt_queue(conv),
        keys.rt_user_active(USER),
        keys.rt_replies(PROC),
        keys.rt_marks(PROC),
        keys.rt_outcome(following),
    ]
    return await twice(
        redis.register_script(scripts.RELEASE),
        script_keys,
        [PROC, conv, "", mark, following, *TTLS],
    )


async def test_a_repeated_claim_starts_once_or_queues_once(redis: Any) -> None:
    await beat(redis, PROC)
    conv = str(uuid.uuid4())
    first = mark_of(PROC)
    assert await claim(redis, conv, "a", first) == ([b"s", b"a"], [b"s", b"a"])
    assert await redis.get(keys.rt_active(conv)) == first.encode()
    assert await claim(redis, conv, "b", mark_of(PROC)) == ([b"q", b""], [b"q", b""])
    assert await redis.lrange(keys.rt_queue(conv), 0, -1) == [b"b"]


async def test_a_repeated_release_hands_the_next_reply_out_once(redis: Any) -> None:
    await beat(redis, PROC)
    conv = str(uuid.uuid4())
    first = mark_of(PROC)
    await claim(redis, conv, "a", first)
    await claim(redis, conv, "b", mark_of(PROC))
    await claim(redis, conv, "c", mark_of(PROC))
    following = mark_of(PROC)
    assert await release(redis, conv, first, following) == (b"b", b"b")
    assert await redis.get(keys.rt_active(conv)) == following.encode()
    assert await redis.lrange(keys.rt_queue(conv), 0, -1) == [b"c"]
    last = mark_of(PROC)
    assert await release(redis, conv, following, last) == (b"c", b"c")
    assert await release(redis, conv, last, mark_of(PROC)) == (b"", b"")
    assert await redis.get(keys.rt_active(conv)) is None


async def test_a_repeated_swap_or_adoption_reports_its_success(redis: Any) -> None:
    await beat(redis, PROC)
    await beat(redis, OTHER)
    conv = str(uuid.uuid4())
    given = mark_of(PROC)
    await claim(redis, conv, "a", given)
    taken = f"{OTHER}|{given.split('|', 1)[1]}"
    swap_keys = [
        keys.RT_PROCS,
        keys.rt_active(conv),
        keys.rt_user_active(USER),
        keys.rt_marks(PROC),
        keys.rt_marks(OTHER),
    ]
    swap = redis.register_script(scripts.SWAP)
    assert await twice(swap, swap_keys, [given, taken, conv, *TTLS]) == (1, 1)
    assert await swap(keys=swap_keys, args=[given, mark_of(OTHER), conv, *TTLS]) == 0
    assert await redis.get(keys.rt_active(conv)) == taken.encode()
    # the owner is dead: a live process adopts the conversation, once
    await redis.zadd(keys.RT_PROCS, {OTHER: 0})
    adopted = mark_of(PROC)
    adopt_keys = [
        keys.RT_PROCS,
        keys.rt_active(conv),
        keys.rt_user_active(USER),
        keys.rt_marks(PROC),
    ]
    adopt = redis.register_script(scripts.ADOPT)
    assert await twice(adopt, adopt_keys, [PROC, conv, adopted, *TTLS]) == (1, 1)
    assert await redis.get(keys.rt_active(conv)) == adopted.encode()
