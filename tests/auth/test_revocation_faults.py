"""Revocations while Redis stalls: two workers share a private Redis through a proxy that
holds every byte back. A sign-out, password change or revocation that answers success has
taken effect on every worker (an invalid session is a 401, rest.md §1.3), also once Redis
answers again with the entries it cached before."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from arinova.auth.sessions import _cache_key, _marker_key
from arinova.server import Server
from tests.support.auth import SignedIn, sign_in, sign_up
from tests.support.proxy import TcpProxy
from tests.support.redis_server import RedisServer
from tests.support.servers import StartServer

MakeProxy = Callable[[str, int], Awaitable[TcpProxy]]

#: longer than a failed Redis command takes to give up (two timeouts of
#: ``arinova.kv.redis.COMMAND_TIMEOUT_S``: the old sign-out answered after 4 s)
STALL_S = 6.0
#: longer than a request that first looks its own session up with Redis silent (a failed
#: read and a failed write) takes to give up: the old password change answered after 8 s
LONG_STALL_S = 16.0


async def two_workers(
    start_server: StartServer, redis_server: RedisServer, make_proxy: MakeProxy, **overrides: object
) -> tuple[TcpProxy, Server, Server]:
    proxy = await make_proxy(redis_server.host, redis_server.port)
    url = f"redis://{proxy.host}:{proxy.port}/1"
    a = await start_server(redis_url=url, **overrides)
    b = await start_server(redis_url=url, **overrides)
    return proxy, a, b


async def signed_in_on_both(a: Server, b: Server) -> SignedIn:
    """A fresh user whose session both workers have looked up (so Redis caches it)."""
    user = await sign_up(a.url)
    async with httpx.AsyncClient() as client:
        for srv in (a, b):
            r = await client.get(f"{srv.url}/api/auth/get-session", headers={"cookie": user.cookie})
            assert r.json()["user"]["id"] == user.id
    assert await a.state.kv.get(_cache_key(user.token)) is not None
    return user


async def assert_refused_everywhere(servers: tuple[Server, ...], cookie: str) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for srv in servers:
            r = await client.get(f"{srv.url}/api/auth/get-session", headers={"cookie": cookie})
            assert (r.status_code, r.text) == (200, "null"), srv.url
            r = await client.get(f"{srv.url}/api/agents", headers={"cookie": cookie})
            assert (r.status_code, r.json()) == (401, {"error": "Unauthorized"}), srv.url


async def during_stall(
    proxy: TcpProxy, request: Awaitable[httpx.Response], hold_s: float = STALL_S
) -> httpx.Response:
    """Send ``request`` while Redis is held back; release Redis once it has answered or
    after ``hold_s``."""
    proxy.stall(True)
    try:
        pending = asyncio.ensure_future(request)
        await asyncio.wait([pending], timeout=hold_s)
    finally:
        proxy.stall(False)
    return await pending


async def test_sign_out_during_a_stall_is_refused_everywhere_once_answered(
    start_server: StartServer, redis_server: RedisServer, make_proxy: MakeProxy
) -> None:
    proxy, a, b = await two_workers(start_server, redis_server, make_proxy)
    user = await signed_in_on_both(a, b)
    async with httpx.AsyncClient(timeout=60) as client:
        r = await during_stall(
            proxy, client.post(f"{a.url}/api/auth/sign-out", json={}, headers=user.headers)
        )
    assert (r.status_code, r.json()) == (200, {"success": True})
    await assert_refused_everywhere((b, a), user.cookie)


async def test_password_change_revoking_sessions_during_a_stall(
    start_server: StartServer, redis_server: RedisServer, make_proxy: MakeProxy
) -> None:
    proxy, a, b = await two_workers(start_server, redis_server, make_proxy)
    user = await signed_in_on_both(a, b)
    body = {
        "currentPassword": user.password,
        "newPassword": "a brand new password",
        "revokeOtherSessions": True,
    }
    async with httpx.AsyncClient(timeout=60) as client:
        r = await during_stall(
            proxy,
            client.post(f"{a.url}/api/auth/change-password", json=body, headers=user.headers),
            LONG_STALL_S,
        )
        assert r.status_code == 200, r.text
        assert r.json()["token"] not in (None, user.token)
    await assert_refused_everywhere((b, a), user.cookie)


async def test_revoke_session_during_a_stall(
    start_server: StartServer, redis_server: RedisServer, make_proxy: MakeProxy
) -> None:
    proxy, a, b = await two_workers(start_server, redis_server, make_proxy)
    user = await signed_in_on_both(a, b)
    second = await sign_in(a.url, user.email, user.password)
    async with httpx.AsyncClient(timeout=60) as client:
        r = await during_stall(
            proxy,
            client.post(
                f"{a.url}/api/auth/revoke-session",
                json={"token": user.token},
                headers=second.headers,
            ),
            LONG_STALL_S,
        )
        assert (r.status_code, r.json()) == (200, {"status": True})
    await assert_refused_everywhere((b, a), user.cookie)
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{b.url}/api/agents", headers={"cookie": second.cookie})
        assert r.status_code == 200


async def test_an_entry_written_back_after_the_revocation_is_not_trusted(
    start_server: StartServer, redis_server: RedisServer, make_proxy: MakeProxy
) -> None:
    """A worker's cache write held back by the stall lands after the sign-out was
    delivered: the entry is in Redis, alive, and still refused."""
    _, a, b = await two_workers(start_server, redis_server, make_proxy)
    user = await signed_in_on_both(a, b)
    kv = a.state.kv
    cached = await kv.get(_cache_key(user.token))
    assert cached is not None
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{a.url}/api/auth/sign-out", json={}, headers=user.headers)
        assert r.status_code == 200
    await kv.set(_cache_key(user.token), cached, ex=30)
    await assert_refused_everywhere((b, a), user.cookie)


async def test_a_stall_outlasting_the_cache_delays_the_answer_not_the_effect(
    start_server: StartServer, redis_server: RedisServer, make_proxy: MakeProxy
) -> None:
    """Redis held back longer than a cached entry may live: the sign-out answers once
    every copy is too old to be trusted, and the cookie is refused everywhere at once,
    even by a worker that finds the old copy in Redis with no revocation next to it."""
    ttl = 3.0
    proxy, a, b = await two_workers(start_server, redis_server, make_proxy, session_cache_ttl_s=ttl)
    user = await signed_in_on_both(a, b)
    cached = await a.state.kv.get(_cache_key(user.token))
    assert cached is not None
    proxy.stall(True)
    try:
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=60) as client:
            r = await client.post(f"{a.url}/api/auth/sign-out", json={}, headers=user.headers)
        waited = time.monotonic() - started
        assert (r.status_code, r.json()) == (200, {"success": True})
        assert waited >= ttl
    finally:
        proxy.stall(False)
    await a.state.kv.delete(_marker_key(user.token))
    await a.state.kv.set(_cache_key(user.token), cached, ex=30)
    await assert_refused_everywhere((b, a), user.cookie)
