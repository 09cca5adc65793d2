"""The bus's own Redis connections (arinova/kv/resp.py) against a real Redis, behind a
proxy the test stalls and cuts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest

from arinova.kv.resp import CommandConnection, ConnectionLost, SubscriberConnection, pack
from tests.support.proxy import TcpProxy
from tests.support.redis_server import RedisServer

MakeProxy = Callable[[str, int], Awaitable[TcpProxy]]


def test_commands_are_packed_as_resp() -> None:
    assert pack([("SET", "k", b"\x00\xff", "EX", 5), ("PING",)]) == (
        b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\x00\xff\r\n$2\r\nEX\r\n$1\r\n5\r\n*1\r\n$4\r\nPING\r\n"
    )
    assert pack([("INCRBYFLOAT", "é", 1.5)]) == (
        b"*3\r\n$11\r\nINCRBYFLOAT\r\n$2\r\n\xc3\xa9\r\n$3\r\n1.5\r\n"
    )
    assert pack([]) == b""


async def test_batches_answer_in_order_with_errors_in_place(redis_server: RedisServer) -> None:
    bus = CommandConnection(redis_server.url(3), connect_s=1, stall_s=5)
    key = f"resp:{uuid.uuid4()}"
    try:
        first = bus.execute([("SET", key, "a"), ("APPEND", key, "bc"), ("INCR", key)])
        second = bus.execute([("GET", key), ("PUBLISH", "nobody", "x")])
        one, two = await asyncio.gather(first, second)
        assert one[:2] == [b"OK", 3]
        assert isinstance(one[2], Exception) and "not an integer" in str(one[2])
        assert two == [b"abc", 0]
        # the database of the URL was selected
        assert b"db=3" in (await bus.execute([("CLIENT", "INFO")]))[0]
    finally:
        await bus.aclose()
    with pytest.raises(ConnectionLost):
        await bus.execute([("PING",)])


async def test_a_stalled_connection_is_dropped_and_the_next_batch_reconnects(
    redis_server: RedisServer, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(redis_server.host, redis_server.port)
    bus = CommandConnection(f"redis://127.0.0.1:{proxy.port}/0", connect_s=1, stall_s=0.5)
    try:
        assert await bus.execute([("PING",)]) == [b"PONG"]
        assert bus.reconnected_for() == float("inf")
        proxy.stall()
        with pytest.raises(ConnectionLost):
            await asyncio.wait_for(bus.execute([("PING",)]), 5)
        proxy.stall(False)
        assert await bus.execute([("PING",)]) == [b"PONG"]
        assert bus.reconnected_for() < 1
    finally:
        await bus.aclose()


async def test_a_subscriber_cut_off_subscribes_again(
    redis_server: RedisServer, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(redis_server.host, redis_server.port)
    got: list[tuple[str, bytes]] = []
    subscriber = SubscriberConnection(
        f"redis://127.0.0.1:{proxy.port}/0",
        lambda channel, data: got.append((channel, data)),
        connect_s=1,
        stall_s=2,
        reconnect_max_s=0.2,
    )
    bus = CommandConnection(redis_server.url(), connect_s=1, stall_s=5)
    try:
        subscriber.subscribe("resp:a")
        subscriber.subscribe("resp:b")

        async def heard(channel: str) -> None:
            async with asyncio.timeout(5):
                published = [("PUBLISH", channel, "x")]
                while (await bus.execute(published))[0] != 1:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)

        await heard("resp:a")
        async with asyncio.timeout(5):
            while ("resp:a", b"x") not in got:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await proxy.cut()
        await heard("resp:b")  # subscribed again on a new connection
        subscriber.unsubscribe("resp:a")
        async with asyncio.timeout(5):
            numsub = [("PUBSUB", "NUMSUB", "resp:a")]
            while (await bus.execute(numsub))[0][1] != 0:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert await bus.execute([("PUBLISH", "resp:a", "gone")]) == [0]
        assert ("resp:a", b"x") in got and ("resp:b", b"x") in got
        assert ("resp:a", b"gone") not in got
    finally:
        await subscriber.aclose()
        await bus.aclose()
