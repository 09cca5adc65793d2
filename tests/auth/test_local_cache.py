"""Each worker's own session copies fail closed (rest.md §1.3: an invalid session is a
401): two workers share a private Redis, the second one through a proxy whose faults the
test sets. A sign-out answered by one worker is refused by the other from then on, also
while the other cannot hear the invalidation (Redis held back, or its subscription cut)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
from redis.asyncio import Redis

from arinova.server import Server
from tests.support.auth import SignedIn, sign_up
from tests.support.proxy import TcpProxy
from tests.support.redis_server import RedisServer
from tests.support.servers import StartServer

MakeProxy = Callable[[str, int], Awaitable[TcpProxy]]

UNAUTHORIZED = (401, {"error": "Unauthorized"})


async def workers(
    start_server: StartServer, redis_server: RedisServer, make_proxy: MakeProxy
) -> tuple[Server, Server, TcpProxy]:
    """Worker ``a`` on Redis directly, worker ``b`` through the proxy."""
    proxy = await make_proxy(redis_server.host, redis_server.port)
    a = await start_server(redis_url=redis_server.url())
    b = await start_server(redis_url=f"redis://{proxy.host}:{proxy.port}/1")
    return a, b, proxy


async def agents(srv: Server, user: SignedIn) -> tuple[int, object]:
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.get(f"{srv.url}/api/agents", headers={"cookie": user.cookie})
    return r.status_code, r.json()


async def sign_out(srv: Server, user: SignedIn) -> float:
    """Sign out on ``srv``; the seconds it took to answer."""
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=60) as client:
        r = await client.post(f"{srv.url}/api/auth/sign-out", json={}, headers=user.headers)
    assert (r.status_code, r.json()) == (200, {"success": True})
    return time.monotonic() - started


async def served_from_its_own_copy(srv: Server, user: SignedIn, redis: Redis) -> None:
    """Wait until ``srv`` finds the session without reading Redis' session cache."""
    deadline = time.monotonic() + 5
    while True:
        await redis.config_resetstat()
        assert (await agents(srv, user))[0] == 200
        stats = await redis.info("commandstats")
        if "cmdstat_mget" not in stats:
            return
        assert time.monotonic() < deadline, "the session was never served from a local copy"
        await asyncio.sleep(0.1)


async def test_a_sign_out_is_refused_at_once_by_the_other_worker(
    start_server: StartServer, redis_server: RedisServer, make_proxy: MakeProxy
) -> None:
    a, b, _ = await workers(start_server, redis_server, make_proxy)
    redis = Redis.from_url(redis_server.url())
    try:
        user = await sign_up(a.url)
        await served_from_its_own_copy(a, user, redis)
        await served_from_its_own_copy(b, user, redis)
        assert await sign_out(a, user) < 1.0  # every worker acknowledged
        assert await agents(b, user) == UNAUTHORIZED
        assert await agents(a, user) == UNAUTHORIZED
    finally:
        await redis.aclose()


async def test_while_redis_is_held_back_from_a_worker_it_refuses_what_was_signed_out(
    start_server: StartServer, redis_server: RedisServer, make_proxy: MakeProxy
) -> None:
    """The other worker hears neither the invalidation nor its own heartbeat: the sign-out
    answers once that worker has stopped trusting its copies, and no request it serves
    from then on accepts the cookie."""
    a, b, proxy = await workers(start_server, redis_server, make_proxy)
    redis = Redis.from_url(redis_server.url())
    try:
        user = await sign_up(a.url)
        await served_from_its_own_copy(b, user, redis)
    finally:
        await redis.aclose()
    seen: list[tuple[float, int]] = []
    stop = asyncio.Event()

    async def keep_asking() -> None:
        while not stop.is_set():
            started = time.monotonic()
            status, _ = await agents(b, user)
            seen.append((started, status))

    proxy.stall(True)
    try:
        asking = asyncio.ensure_future(keep_asking())
        await asyncio.sleep(0.1)
        waited = await sign_out(a, user)
        answered = time.monotonic()
        assert waited < 5.0  # it does not wait for the whole cache lifetime
        assert await agents(b, user) == UNAUTHORIZED
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        proxy.stall(False)
    await asyncio.wait_for(asking, 30)
    assert {status for started, status in seen if started >= answered} <= {401}
    assert await agents(b, user) == UNAUTHORIZED


async def test_a_worker_that_lost_its_subscription_drops_its_copies(
    start_server: StartServer, redis_server: RedisServer, make_proxy: MakeProxy
) -> None:
    """Signed out while the other worker's subscription is down: that worker refuses the
    cookie, and still does once it has subscribed again (it missed the invalidation)."""
    a, b, proxy = await workers(start_server, redis_server, make_proxy)
    redis = Redis.from_url(redis_server.url())
    try:
        user = await sign_up(a.url)
        other = await sign_up(a.url)
        await served_from_its_own_copy(b, user, redis)
        await served_from_its_own_copy(b, other, redis)
        proxy.refuse(True)
        await proxy.cut()
        assert await sign_out(a, user) < 1.0  # only the workers still subscribed count
        assert await agents(b, user) == UNAUTHORIZED
        proxy.refuse(False)
        await served_from_its_own_copy(b, other, redis)
        assert await agents(b, user) == UNAUTHORIZED
    finally:
        await redis.aclose()


async def test_without_redis_a_sign_out_drops_the_copy_at_once(start_server: StartServer) -> None:
    srv = await start_server(redis_url="")
    user = await sign_up(srv.url)
    for _ in range(3):
        assert (await agents(srv, user))[0] == 200
    assert await sign_out(srv, user) < 1.0
    assert await agents(srv, user) == UNAUTHORIZED
