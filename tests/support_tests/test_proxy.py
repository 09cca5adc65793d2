"""TcpProxy against real services: asyncpg to the machine's PostgreSQL (read-only
queries on its ``postgres`` database) and redis-py to a private redis-server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
import redis.asyncio as aioredis
import redis.exceptions

from tests.support import db as testdb
from tests.support.proxy import TcpProxy
from tests.support.redis_server import RedisServer

MakeProxy = Callable[[str, int], Awaitable[TcpProxy]]
#: long enough for a reply on a loaded machine, short enough to keep the folder fast
QUIET_S = 0.3


def pg_dsn(proxy: TcpProxy) -> str:
    # no SSL attempt first: one TCP connection per connect, so counts are exact
    return f"postgresql://{testdb.PG_USER}@{proxy.host}:{proxy.port}/postgres?sslmode=disable"


@pytest.fixture
async def pg_proxy(make_proxy: MakeProxy) -> TcpProxy:
    return await make_proxy(testdb.PG_HOST, testdb.PG_PORT)


async def test_asyncpg_query_fails_after_a_cut_and_a_new_connection_works(
    pg_proxy: TcpProxy,
) -> None:
    conn = await asyncpg.connect(pg_dsn(pg_proxy))
    assert await conn.fetchval("SELECT 1") == 1
    assert pg_proxy.open_connections == 1

    await pg_proxy.cut()

    assert pg_proxy.open_connections == 0
    with pytest.raises((asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError, OSError)):
        await conn.fetchval("SELECT 2")
    assert conn.is_closed()
    again = await asyncpg.connect(pg_dsn(pg_proxy))
    try:
        assert await again.fetchval("SELECT 3") == 3
    finally:
        await again.close()
    assert pg_proxy.accepted == 2


async def test_asyncpg_query_waits_while_stalled_and_finishes_on_release(
    pg_proxy: TcpProxy,
) -> None:
    conn = await asyncpg.connect(pg_dsn(pg_proxy))
    try:
        pg_proxy.stall(True)
        sent, received = pg_proxy.bytes_to_target, pg_proxy.bytes_to_client
        query = asyncio.create_task(conn.fetchval("SELECT 41 + 1"))
        done, _ = await asyncio.wait({query}, timeout=QUIET_S)
        assert not done
        assert (pg_proxy.bytes_to_target, pg_proxy.bytes_to_client) == (sent, received)
        assert pg_proxy.open_connections == 1

        pg_proxy.stall(False)

        assert await asyncio.wait_for(query, 5) == 42
        assert pg_proxy.bytes_to_target > sent
        assert pg_proxy.bytes_to_client > received
    finally:
        pg_proxy.stall(False)
        await conn.close()


async def test_asyncpg_connect_fails_while_refusing_and_open_connections_keep_working(
    pg_proxy: TcpProxy,
) -> None:
    conn = await asyncpg.connect(pg_dsn(pg_proxy))
    try:
        pg_proxy.refuse(True)
        with pytest.raises((asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError, OSError)):
            await asyncpg.connect(pg_dsn(pg_proxy), timeout=5)
        assert pg_proxy.refused == 1
        assert await conn.fetchval("SELECT 1") == 1

        pg_proxy.refuse(False)

        later = await asyncpg.connect(pg_dsn(pg_proxy))
        assert await later.fetchval("SELECT 2") == 2
        await later.close()
        assert (pg_proxy.accepted, pg_proxy.refused) == (3, 1)
    finally:
        await conn.close()


async def test_counters_are_exact_bytes_each_way(
    redis_server: RedisServer, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(redis_server.host, redis_server.port)
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    try:
        writer.write(b"PING\r\n")
        assert await reader.readexactly(7) == b"+PONG\r\n"
        assert (proxy.accepted, proxy.bytes_to_target, proxy.bytes_to_client) == (1, 6, 7)
    finally:
        writer.close()


async def test_a_cut_ends_the_redis_connection_and_the_client_reconnects(
    redis_server: RedisServer, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(redis_server.host, redis_server.port)
    client = aioredis.Redis.from_url(f"redis://{proxy.host}:{proxy.port}/1")
    try:
        await client.set("key", "value")

        await proxy.cut()

        # the next command fails on the cut connection (redis-py on uvloop reports a write
        # to the reset transport as RuntimeError), or, when the client heard the reset
        # first, goes out on a new one: which comes first is the loop's timing
        with contextlib.suppress(redis.exceptions.ConnectionError, RuntimeError):
            await client.get("key")
        assert await client.get("key") == b"value"
        assert proxy.accepted == 2  # the old connection is gone: a second one was made
    finally:
        await client.aclose()


async def test_stall_holds_a_large_write_back_and_release_delivers_it_whole(
    redis_server: RedisServer, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(redis_server.host, redis_server.port)
    value = b"v" * (24 << 20)
    command = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n%s\r\n" % (len(value), value)
    proxy.stall(True)
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    try:
        writer.write(command)
        await asyncio.sleep(QUIET_S)
        assert proxy.bytes_to_target == 0
        # the proxy stopped reading: most of the command still waits on the sender's side
        assert writer.transport.get_write_buffer_size() > len(command) // 2

        proxy.stall(False)

        assert await asyncio.wait_for(reader.readexactly(5), 10) == b"+OK\r\n"
        assert proxy.bytes_to_target == len(command)
    finally:
        proxy.stall(False)
        writer.close()
    client = aioredis.Redis.from_url(redis_server.url(db=0))  # the raw SET went to db 0
    try:
        assert await client.strlen("big") == len(value)
    finally:
        await client.aclose()


async def test_a_connection_over_the_limit_is_refused(redis_server: RedisServer) -> None:
    async with TcpProxy(redis_server.host, redis_server.port, max_connections=1) as proxy:
        first_reader, first = await asyncio.open_connection(proxy.host, proxy.port)
        second_reader, second = await asyncio.open_connection(proxy.host, proxy.port)
        try:
            assert await _closed_by_peer(second_reader)
            first.write(b"PING\r\n")
            assert await first_reader.readexactly(7) == b"+PONG\r\n"
            assert (proxy.accepted, proxy.refused) == (2, 1)
        finally:
            first.close()
            second.close()


async def test_an_unreachable_target_resets_the_client(make_proxy: MakeProxy) -> None:
    # a listener that is closed again: nothing accepts on its port
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    proxy = await make_proxy("127.0.0.1", port)
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    try:
        assert await _closed_by_peer(reader)
        assert (proxy.accepted, proxy.refused) == (1, 1)
    finally:
        writer.close()


async def test_close_resets_open_connections_and_stops_listening(
    redis_server: RedisServer,
) -> None:
    proxy = TcpProxy(redis_server.host, redis_server.port)
    await proxy.start()
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    try:
        writer.write(b"PING\r\n")
        assert await reader.readexactly(7) == b"+PONG\r\n"

        await proxy.close()

        assert await _closed_by_peer(reader)
        assert proxy.open_connections == 0
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(proxy.host, proxy.port)
    finally:
        writer.close()
        await proxy.close()


async def _closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """True once the peer closed the connection (EOF or reset) without sending a byte."""
    try:
        data = await asyncio.wait_for(reader.read(1), 5)
    except ConnectionResetError:
        return True
    return data == b""
