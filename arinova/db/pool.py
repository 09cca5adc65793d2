"""The PostgreSQL connection pool: the original's limits (max 20, 30 s idle, 10 s connect
timeout) over asyncpg connections.

Hand-written rather than asyncpg's ``Pool`` because a checkout is on every request's path:
asyncpg's release runs in a task of its own (``asyncio.shield``), resets the connection
and re-arms an inactivity timer each time, about 30 µs of CPU per statement under load,
half of what a ``SELECT 1`` costs (docs/benchmarks.md). Here a checkout takes the most
recently used idle connection and gives it back in place.

A connection goes back only when it is known clean: no statement can be in flight (the
lease did not end by a cancellation or a timeout, which may leave one being cancelled), it
is open, and no transaction was left open. Any other is dropped (its socket closed at
once) and its slot is free for a new connection. Waiters are served first come, first
served; a waiter cancelled just as a connection was handed to it gives it back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeAlias, TypeVar

import asyncpg
import orjson
from asyncpg import Connection, Record

POOL_MAX = 20
POOL_IDLE_S = 30.0
CONNECT_TIMEOUT_S = 10.0
#: how long closing an idle connection politely may take before it is dropped
CLOSE_TIMEOUT_S = 5.0

AnyConnection: TypeAlias = "Connection[Record]"
_T = TypeVar("_T")


class QueryCounter:
    """Counts statements sent to PostgreSQL (enabled by tests that bound queries per request)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, record: object) -> None:
        self.count += 1


async def _init_connection(
    conn: AnyConnection, on_query: Callable[[object], None] | None = None
) -> None:
    if on_query is not None:
        conn.add_query_logger(on_query)
    for json_type in ("json", "jsonb"):
        await conn.set_type_codec(
            json_type,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


class Lease:
    """``async with db.acquire() as conn``: one connection for several statements."""

    __slots__ = ("_conn", "_db", "_timeout")

    def __init__(self, db: Database, timeout: float | None) -> None:
        self._db = db
        self._timeout = timeout
        self._conn: AnyConnection | None = None

    async def __aenter__(self) -> AnyConnection:
        self._conn = await self._db._checkout(self._timeout)
        return self._conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._db._give_back(conn, exc)


class Database:
    """A bounded pool of connections whose sessions write UTC into ``timestamp`` columns
    (Q37); opened by ``create_pool``."""

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int,
        max_size: int,
        on_query: Callable[[object], None] | None = None,
        idle_s: float = POOL_IDLE_S,
    ) -> None:
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._on_query = on_query
        self._idle_s = idle_s
        #: open connections, in use or idle
        self._open: set[AnyConnection] = set()
        #: connections being opened (they hold a slot)
        self._opening = 0
        #: idle connections and when each was given back, the most recent last
        self._idle: deque[tuple[AnyConnection, float]] = deque()
        #: checkouts waiting for a connection (``None``: a slot freed, open one)
        self._waiters: deque[asyncio.Future[AnyConnection | None]] = deque()
        self._expiry: asyncio.TimerHandle | None = None
        #: the loop of the connections (set by the first one)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing_tasks: set[asyncio.Task[None]] = set()
        self._all_back = asyncio.Event()
        self._closed = False

    # -- sizes (the metrics' gauges) ------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self._open)

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def in_use(self) -> int:
        return len(self._open) - len(self._idle)

    @property
    def waiting(self) -> int:
        return sum(1 for waiter in self._waiters if not waiter.done())

    # -- statements ---------------------------------------------------------------------
    def acquire(self, *, timeout: float | None = None) -> Lease:
        """A connection for the block; ``timeout`` bounds the wait for it."""
        return Lease(self, timeout)

    async def fetch(self, query: str, *args: Any) -> list[Record]:
        return await self._on_connection(lambda conn: conn.fetch(query, *args))

    async def fetchrow(self, query: str, *args: Any) -> Record | None:
        return await self._on_connection(lambda conn: conn.fetchrow(query, *args))

    async def fetchval(self, query: str, *args: Any, column: int = 0) -> Any:
        return await self._on_connection(lambda conn: conn.fetchval(query, *args, column=column))

    async def execute(self, query: str, *args: Any) -> str:
        return await self._on_connection(lambda conn: conn.execute(query, *args))

    async def _on_connection(self, statement: Callable[[AnyConnection], Awaitable[_T]]) -> _T:
        conn = self._take_idle() or await self._checkout(None)
        try:
            result = await statement(conn)
        except BaseException as exc:
            self._give_back(conn, exc)
            raise
        self._give_back(conn, None)
        return result

    # -- checkout and return ------------------------------------------------------------
    async def _checkout(self, wait_s: float | None) -> AnyConnection:
        conn = self._take_idle()
        if conn is not None:
            return conn  # no wait to bound
        if wait_s is None:
            return await self._get()
        async with asyncio.timeout(wait_s):
            return await self._get()

    async def _get(self) -> AnyConnection:
        while True:
            if self._closed:
                raise asyncpg.InterfaceError("the connection pool is closed")
            conn = self._take_idle()
            if conn is not None:
                return conn
            if len(self._open) + self._opening < self._max_size:
                return await self._connect()
            waiter: asyncio.Future[AnyConnection | None] = (
                asyncio.get_running_loop().create_future()
            )
            self._waiters.append(waiter)
            try:
                given = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._pass_on(waiter.result())  # handed over as this checkout gave up
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                raise
            if given is not None:
                return given

    def _take_idle(self) -> AnyConnection | None:
        """The most recently used idle connection; those closed while idle (the server
        went away) are dropped."""
        while self._idle:
            conn = self._idle.pop()[0]
            if not conn.is_closed():
                return conn
            self._drop(conn)
        return None

    async def _connect(self) -> AnyConnection:
        self._loop = asyncio.get_running_loop()
        self._opening += 1
        try:
            conn: AnyConnection = await asyncpg.connect(
                self._dsn,
                timeout=CONNECT_TIMEOUT_S,
                server_settings={"timezone": "UTC", "application_name": "arinova"},
            )
            try:
                await _init_connection(conn, self._on_query)
            except BaseException:
                conn.terminate()
                raise
        except BaseException:
            self._opening -= 1
            self._slot_freed()
            raise
        self._opening -= 1
        if self._closed:
            conn.terminate()
            raise asyncpg.InterfaceError("the connection pool is closed")
        self._open.add(conn)
        return conn

    def _give_back(self, conn: AnyConnection, exc: BaseException | None) -> None:
        if (
            isinstance(exc, asyncio.CancelledError | TimeoutError)
            or self._closed
            or conn.is_closed()
            or conn.is_in_transaction()
        ):
            self._drop(conn)
            return
        self._pass_on(conn)

    def _pass_on(self, conn: AnyConnection | None) -> None:
        """A connection (or, ``None``, a free slot) to the first waiter, else idle."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if conn is None:
            return
        loop = self._loop
        assert loop is not None  # the connection was made by ``_connect``
        self._idle.append((conn, loop.time()))
        if self._expiry is None:
            self._expiry = loop.call_later(self._idle_s, self._expire)
        self._note_all_back()

    def _drop(self, conn: AnyConnection) -> None:
        self._open.discard(conn)
        conn.terminate()
        self._note_all_back()
        self._slot_freed()

    def _note_all_back(self) -> None:
        if len(self._idle) == len(self._open):
            self._all_back.set()

    def _slot_freed(self) -> None:
        if not self._closed:
            self._pass_on(None)

    def _expire(self) -> None:
        """Close connections idle for ``idle_s``, keeping ``min_size`` open."""
        self._expiry = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        while (
            self._idle
            and len(self._open) > self._min_size
            and now - self._idle[0][1] >= self._idle_s
        ):
            conn = self._idle.popleft()[0]
            self._open.discard(conn)
            self._close_politely(conn)
        if self._idle and len(self._open) > self._min_size:
            due = self._idle[0][1] + self._idle_s - now
            self._expiry = loop.call_later(max(due, 0.0), self._expire)

    def _close_politely(self, conn: AnyConnection) -> None:
        async def close() -> None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=CLOSE_TIMEOUT_S)
            if not conn.is_closed():
                conn.terminate()

        task = asyncio.get_running_loop().create_task(close())
        self._closing_tasks.add(task)
        task.add_done_callback(self._closing_tasks.discard)

    # -- the end ------------------------------------------------------------------------
    async def close(self) -> None:
        """Refuse new checkouts, wait for every connection to come back, close them all."""
        self._shut()
        while self._open and len(self._idle) < len(self._open):
            self._all_back.clear()
            await self._all_back.wait()
        idle = [conn for conn, _ in self._idle]
        self._idle.clear()
        self._open.clear()
        for conn in idle:
            self._close_politely(conn)
        if self._closing_tasks:
            await asyncio.gather(*self._closing_tasks, return_exceptions=True)

    def terminate(self) -> None:
        """Drop every connection at once, in use or not."""
        self._shut()
        for conn in self._open:
            conn.terminate()
        self._open.clear()
        self._idle.clear()
        self._all_back.set()

    def _shut(self) -> None:
        self._closed = True
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the connection pool is closed"))


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = POOL_MAX,
    on_query: Callable[[object], None] | None = None,
) -> Database:
    """A pool with ``min_size`` connections open (an unreachable database raises here)."""
    db = Database(dsn, min_size=min_size, max_size=max_size, on_query=on_query)
    opened = [await db._checkout(None) for _ in range(min_size)]
    for conn in opened:
        db._give_back(conn, None)
    return db
