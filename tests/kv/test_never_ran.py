"""Which failed commands Redis certainly did not run (``never_ran``), as the stores raise
them: a connection refused, yes; a command stalled past its timeout, no (it may have
run); Redis' own refusals by their reply."""

from __future__ import annotations

import pytest

from arinova.kv.base import KVError, never_ran
from arinova.kv.redis import RedisKV
from tests.support.proxy import TcpProxy
from tests.support.redis_server import RedisServer


async def failure_of_get(kv: RedisKV) -> Exception:
    with pytest.raises(Exception) as caught:
        await kv.get("k")
    assert isinstance(caught.value, Exception)
    return caught.value


async def test_a_stalled_command_may_have_run(redis_server: RedisServer) -> None:
    async with TcpProxy(redis_server.host, redis_server.port) as proxy:
        kv = await RedisKV.connect(f"redis://127.0.0.1:{proxy.port}/0")
        try:
            assert await kv.get("k") is None
            proxy.stall()
            assert not never_ran(await failure_of_get(kv))
        finally:
            proxy.stall(False)
            await kv.close()


async def test_a_command_to_a_stopped_redis_never_ran(redis_server: RedisServer) -> None:
    kv = await RedisKV.connect(redis_server.url())
    try:
        assert await kv.get("k") is None
        await redis_server.stop()
        refused = [never_ran(await failure_of_get(kv)) for _ in range(3)]
        assert refused[-1], refused  # once the lost connection was noticed, refused
        await redis_server.start()
        assert await kv.get("k") is None
    finally:
        await kv.close()


def test_redis_refusals_by_their_reply() -> None:
    for reply in ("CLUSTERDOWN The cluster is down", "TRYAGAIN Multiple keys", "LOADING x"):
        assert never_ran(KVError(reply))
    assert not never_ran(KVError("WRONGTYPE Operation against a key"))
    wrapped = RuntimeError("the client's wrapper")
    wrapped.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert never_ran(wrapped)
    assert not never_ran(TimeoutError())
