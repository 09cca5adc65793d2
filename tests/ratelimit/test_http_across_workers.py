"""The global HTTP limit (rest.md §1.5) holds across workers that count in process and
share their counts in batches (arinova/ratelimit/batched.py): two workers on one private
Redis, one client's requests spread over both."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from arinova.ratelimit.batched import FLUSH_S
from arinova.server import Server
from tests.support.redis_server import RedisServer
from tests.support.servers import StartServer

RATE_LIMIT_BODY = {"error": "Too many requests. Please try again later.", "code": "RATE_LIMIT"}


def client_ip() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 250}.{n // 250 % 250}.{n // 62_500 % 250}"


async def two_workers(
    start_server: StartServer, redis_server: RedisServer, limit: int
) -> tuple[Server, Server]:
    options = {"redis_url": redis_server.url(), "rate_limit_max": limit, "trust_proxy": True}
    return await start_server(**options), await start_server(**options)


async def test_the_limit_holds_across_workers_within_a_few_percent(
    start_server: StartServer, redis_server: RedisServer
) -> None:
    limit = 60
    a, b = await two_workers(start_server, redis_server, limit)
    headers = {"x-forwarded-for": client_ip()}
    accepted = 0
    async with httpx.AsyncClient(headers=headers) as client:
        for i in range(limit * 2):
            srv = (a, b)[i % 2]
            r = await client.get(f"{srv.url}/api/agents")
            if r.status_code == 429:
                assert r.json() == RATE_LIMIT_BODY
                assert r.headers["x-ratelimit-remaining"] == "0"
                assert r.headers["retry-after"] == r.headers["x-ratelimit-reset"]
            else:
                assert r.status_code == 401
                accepted += 1
            await asyncio.sleep(0.02)
    # each worker learns of the other's requests at most a flush late
    assert limit <= accepted <= limit * 1.05, accepted


async def test_a_worker_sees_the_other_workers_count_after_a_flush(
    start_server: StartServer, redis_server: RedisServer
) -> None:
    a, b = await two_workers(start_server, redis_server, 100)
    headers = {"x-forwarded-for": client_ip()}
    async with httpx.AsyncClient(headers=headers) as client:
        for _ in range(10):
            r = await client.get(f"{a.url}/api/agents")
        assert r.headers["x-ratelimit-remaining"] == "90"
        await asyncio.sleep(FLUSH_S * 4)
        # the shared count is read back with a flush of this worker's own requests
        r = await client.get(f"{b.url}/api/agents")
        await asyncio.sleep(FLUSH_S * 4)
        r = await client.get(f"{b.url}/api/agents")
        assert r.headers["x-ratelimit-remaining"] == "88"
        await asyncio.sleep(FLUSH_S * 4)
        # until then a worker decides on the count it last read (a flush late)
        r = await client.get(f"{a.url}/api/agents")
        assert r.headers["x-ratelimit-remaining"] == "89"
        await asyncio.sleep(FLUSH_S * 4)
        r = await client.get(f"{a.url}/api/agents")
        assert r.headers["x-ratelimit-remaining"] == "86"
        assert r.headers["x-ratelimit-reset"] in ("59", "60")


async def test_a_burst_on_both_workers_at_once_is_held_to_the_limit(
    start_server: StartServer, redis_server: RedisServer
) -> None:
    """Close to its limit a client's requests are shared at once, not a tick later."""
    limit = 100
    a, b = await two_workers(start_server, redis_server, limit)
    headers = {"x-forwarded-for": client_ip()}

    async def burst(srv: Server) -> int:
        accepted = 0
        async with httpx.AsyncClient(base_url=srv.url, headers=headers) as client:
            for _ in range(limit):
                r = await client.get("/api/agents")
                accepted += r.status_code == 401
        return accepted

    accepted = sum(await asyncio.gather(burst(a), burst(b)))
    assert limit <= accepted <= limit * 1.05, accepted
