"""``RedisKV.follow``: the realtime coordinator's per-user channels, subscribed and dropped
one by one, in batches, kept across a Redis restart (a private redis-server)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from arinova.kv.redis import RedisKV
from tests.support.redis_server import RedisServer


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 5) -> None:
    async with asyncio.timeout(seconds):
        while not await check():  # noqa: ASYNC110 (the state is another process's)
            await asyncio.sleep(0.02)


async def test_followed_channels_are_subscribed_dropped_and_kept_across_a_restart(
    redis_server: RedisServer,
) -> None:
    kv = await RedisKV.connect(redis_server.url())
    other = Redis.from_url(redis_server.url())
    received: list[tuple[str, bytes]] = []
    kv.on_followed(lambda channel, data: received.append((channel, data)))
    prefix = f"rt:u:{uuid.uuid4()}:"
    channels = [f"{prefix}{i}" for i in range(2000)]
    try:
        for channel in channels:
            kv.follow(channel)

        async def all_subscribed() -> bool:
            counts = await other.pubsub_numsub(channels[0], channels[-1])
            return [n for _, n in counts] == [1, 1]

        await eventually(all_subscribed)
        assert await other.publish(channels[7], b"seven") == 1

        async def delivered() -> bool:
            return len(received) == 1

        await eventually(delivered)
        assert received == [(channels[7], b"seven")]
        # followed, dropped and followed again at once: the last call wins
        for channel in channels[:1000]:
            kv.unfollow(channel)
        kv.follow(channels[5])
        kv.unfollow(channels[5])
        kv.follow(channels[5])

        async def half_dropped() -> bool:
            counts = dict(await other.pubsub_numsub(channels[0], channels[5], channels[1000]))
            return list(counts.values()) == [0, 1, 1]

        await eventually(half_dropped)
        assert await other.publish(channels[3], b"gone") == 0

        await other.aclose()
        await redis_server.stop()
        await redis_server.start()
        other = Redis.from_url(redis_server.url())

        async def back() -> bool:
            try:
                return await other.publish(channels[1999], b"after") == 1
            except Exception:
                return False

        await eventually(back, 15)
        assert await other.publish(channels[0], b"dropped") == 0

        async def delivered() -> bool:
            return len(received) >= 2

        try:
            await eventually(delivered, 2)
        except TimeoutError:
            raise AssertionError(received) from None

        assert received[0] == (channels[7], b"seven")
        assert (channels[1999], b"after") in received
        assert all(channel not in (channels[0], channels[3]) for channel, _ in received)
    finally:
        await other.aclose()
        await kv.close()
