"""An authenticated REST request on a warm session sends nothing to Redis: the session is
found in the worker's own copies and the rate limit counted in process (what Redis sees
is read from its own ``INFO commandstats``)."""

from __future__ import annotations

import asyncio
import time

import httpx
from redis.asyncio import Redis

from arinova.auth.local_cache import HEARTBEAT_S
from arinova.ratelimit.batched import FLUSH_S
from tests.support.auth import sign_up
from tests.support.redis_server import RedisServer
from tests.support.servers import StartServer

REQUESTS = 300
#: the test's own commands, and what redis-py sends when it opens a connection
OWN = {"config|resetstat", "info", "client|setinfo", "hello", "select", "ping"}
SESSION_CACHE_COMMANDS = {"get", "mget", "set", "setex", "del", "incr"}


async def command_calls(redis: Redis) -> dict[str, int]:
    stats = await redis.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
    return {name: n for name, n in calls.items() if name not in OWN}


async def test_authenticated_requests_on_a_warm_session_make_no_redis_round_trip(
    start_server: StartServer, redis_server: RedisServer
) -> None:
    srv = await start_server(redis_url=redis_server.url(), rate_limit_max=10_000)
    user = await sign_up(srv.url)
    redis = Redis.from_url(redis_server.url())
    try:
        async with httpx.AsyncClient(base_url=srv.url, headers={"cookie": user.cookie}) as c:
            # warm: the session is looked up, the bus subscription confirmed and beating
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                assert (await c.get("/api/agents")).status_code == 200
                await asyncio.sleep(0.05)
            await redis.config_resetstat()
            started = time.monotonic()
            for _ in range(REQUESTS):
                r = await c.get("/api/agents")
                assert r.status_code == 200
                assert r.headers["x-ratelimit-limit"] == "10000"
            elapsed = time.monotonic() - started
            calls = await command_calls(redis)
    finally:
        await redis.aclose()
    # no session cache read or write, no count per request
    assert not calls.keys() & SESSION_CACHE_COMMANDS, calls
    # what runs on timers, not per request: the flush of the counts (a script: INCRBY,
    # PTTL; PEXPIRE once), the session bus's heartbeat, the realtime layer's beat (a
    # script of a few commands)
    flushes = elapsed / FLUSH_S + 2
    heartbeats = elapsed / HEARTBEAT_S + 2
    beats = elapsed / srv.state.settings.realtime.process_beat_s + 2
    assert calls.get("incrby", 0) <= flushes, (calls, elapsed)
    assert calls.get("publish", 0) <= heartbeats, (calls, elapsed)
    assert sum(calls.values()) <= 4 * flushes + heartbeats + 8 * beats, (calls, elapsed)
