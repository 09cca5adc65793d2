"""``KV.on_subscription``: told when Redis confirmed a subscription (what is published from
then on is heard) and when the connection carrying it was lost (messages may be missed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from arinova.kv.memory import MemoryKV
from arinova.kv.redis import RedisKV
from tests.support.proxy import TcpProxy
from tests.support.redis_server import RedisServer

MakeProxy = Callable[[str, int], Awaitable[TcpProxy]]


class Recorder:
    """What handlers were given, and a wait until it is what a test expects."""

    def __init__(self) -> None:
        self.got: list[object] = []
        self._changed = asyncio.Event()

    def add(self, item: object) -> None:
        self.got.append(item)
        self._changed.set()

    async def until(self, expected: list[object]) -> None:
        async with asyncio.timeout(10):
            while self.got != expected:
                self._changed.clear()
                await self._changed.wait()


async def test_redis_tells_confirmation_and_loss(
    redis_server: RedisServer, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(redis_server.host, redis_server.port)
    kv = await RedisKV.connect(f"redis://{proxy.host}:{proxy.port}/1")
    publisher = await RedisKV.connect(redis_server.url())
    states, heard = Recorder(), Recorder()
    try:
        kv.on_subscription(lambda channel, up: states.add((channel, up)))
        await kv.subscribe("t:state", lambda _, data: heard.add(data))
        await states.until([("t:state", True)])
        await publisher.publish("t:state", b"one")
        # heard before the cut: what is in flight when the connection goes may be lost
        # (that is what the loss is told for)
        await heard.until([b"one"])
        proxy.refuse(True)
        await proxy.cut()
        await states.until([("t:state", True), ("t:state", False)])
        proxy.refuse(False)
        await states.until([("t:state", True), ("t:state", False), ("t:state", True)])
        await publisher.publish("t:state", b"two")
        await heard.until([b"one", b"two"])
        kv.follow("t:followed")  # channels followed one by one are not told
        assert await kv.followed("t:followed", 5)
        assert states.got[-1] == ("t:state", True)
    finally:
        await kv.close()
        await publisher.close()


async def test_memory_subscriptions_are_live_at_once() -> None:
    kv = MemoryKV()
    states: list[tuple[str, bool]] = []
    kv.on_subscription(lambda channel, up: states.append((channel, up)))
    await kv.subscribe("t:state", lambda _, __: None)
    assert states == [("t:state", True)]
