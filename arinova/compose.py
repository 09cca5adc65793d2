"""The composition root: settings in, every resource and service of one server process
built once, in order, each ready to use, and closed in the reverse order.

settings → metrics → resources (PostgreSQL pool, KV store, storage, outbound client) →
services (auth, push, sandbox, realtime) → the HTTP app and the socket endpoints; with
``METRICS_PORT``, the sampler of the gauges.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from arinova.auth import Authenticator
from arinova.clock import Clock, SystemClock
from arinova.db.migrate import prepare_database
from arinova.db.pool import Database, QueryCounter, create_pool
from arinova.http.app import Area, build_http_app
from arinova.http.common import HttpApp
from arinova.kv import KV
from arinova.kv.memory import MemoryKV
from arinova.kv.redis import RedisKV
from arinova.metrics import Metrics
from arinova.metrics.sampler import Sampler, Source
from arinova.metrics.tally import Gauge
from arinova.outbound import Outbound
from arinova.push.service import PushService
from arinova.realtime.build import build_realtime
from arinova.realtime.hub import Hub
from arinova.realtime.node import RealtimeNode
from arinova.reporting import error_reporting
from arinova.sandbox.service import Sandbox
from arinova.settings import Settings
from arinova.state import AppState
from arinova.storage import open_storage
from arinova.ws import Endpoint

#: replaces the socket endpoints (tests of the socket layer alone)
EndpointsFactory = Callable[[AppState], Mapping[str, Endpoint]]


#: how long closing the pool waits for connections still in use before dropping them
POOL_CLOSE_S = 10.0


async def close_pool(db: Database) -> None:
    """Close the pool; a connection some task never gives back cannot hold the process
    open: past ``POOL_CLOSE_S`` every connection is dropped."""
    try:
        await asyncio.wait_for(db.close(), POOL_CLOSE_S)
    except TimeoutError:
        logging.getLogger("arinova").warning("database connections still in use; dropped")
        db.terminate()


def sampled(
    metrics: Metrics, hub: Hub, db: Database, sandbox: Sandbox
) -> list[tuple[Gauge, Source]]:
    """The gauges the sampler reads, and where from."""
    pool = sandbox.pool
    return [
        (metrics.client_sockets, hub.client_count),
        (metrics.agent_sockets, hub.agent_socket_count),
        (metrics.users_connected, lambda: len(hub.users)),
        (metrics.streams_active, lambda: len(hub.tasks)),
        (metrics.db_in_use, lambda: db.in_use),
        (metrics.db_idle, lambda: db.idle),
        (metrics.db_waiting, lambda: db.waiting),
        (metrics.sandbox_waiting, lambda: pool.waiting),
        (metrics.sandbox_running, lambda: pool.running),
    ]


@dataclass(frozen=True, slots=True, eq=False)
class Process:
    state: AppState
    realtime: RealtimeNode
    http: HttpApp
    socket_endpoints: Mapping[str, Endpoint]
    _closing: contextlib.AsyncExitStack

    async def close(self) -> None:
        await self._closing.aclose()


async def compose(
    settings: Settings,
    *,
    extra_areas: Iterable[Area] = (),
    socket_endpoints: EndpointsFactory | None = None,
    clock: Clock | None = None,
) -> Process:
    """Build and start everything; on any failure, close what was built and raise."""
    log = logging.getLogger("arinova")
    clock = clock or SystemClock()
    stack = contextlib.AsyncExitStack()
    try:
        # first in, last out: what fails while the rest starts or stops is reported
        stack.enter_context(error_reporting(settings))
        # a worker of ``arinova serve`` writes its values for the supervisor to sum
        metrics = Metrics(multiprocess=settings.metrics_dir is not None)
        await prepare_database(settings.database_url)
        queries = QueryCounter()
        db = await create_pool(
            settings.database_url, on_query=queries if settings.count_queries else None
        )
        stack.push_async_callback(close_pool, db)
        redis = (
            await RedisKV.connect(
                settings.redis_url,
                cluster=settings.redis_cluster,
                command_errors=metrics.redis_command_errors,
                connection_errors=metrics.redis_subscriber_errors,
            )
            if settings.redis_url
            else None
        )
        kv: KV = redis if redis is not None else MemoryKV()
        stack.push_async_callback(kv.close)
        storage = await open_storage(settings)
        stack.push_async_callback(storage.close)
        outbound = Outbound(settings.allow_private_outbound)
        stack.push_async_callback(outbound.aclose)
        auth = Authenticator(settings, db, kv, log)
        stack.push_async_callback(auth.close)
        await auth.start()
        push = PushService(settings, db, kv, log, metrics)
        stack.push_async_callback(push.close)
        sandbox = Sandbox()
        stack.push_async_callback(sandbox.close)
        realtime = build_realtime(
            settings,
            db=db,
            kv=kv,
            redis=redis,
            auth=auth,
            push=push,
            clock=clock,
            metrics=metrics,
        )
        state = AppState(
            settings=settings,
            log=log,
            queries=queries,
            db=db,
            kv=kv,
            auth=auth,
            storage=storage,
            outbound=outbound,
            push=push,
            sandbox=sandbox,
            realtime=realtime.node,
            metrics=metrics,
        )
        http = build_http_app(state, extra_areas)
        endpoints = realtime.endpoints if socket_endpoints is None else socket_endpoints(state)
        await realtime.node.start()
        stack.push_async_callback(realtime.node.stop)
        await http.start()
        stack.push_async_callback(http.stop)
        if settings.metrics_port is not None:
            sampler = Sampler(metrics, sampled(metrics, realtime.node.hub, db, sandbox))
            sampler.start()
            stack.push_async_callback(sampler.stop)
    except BaseException:
        await stack.aclose()
        raise
    return Process(state, realtime.node, http, endpoints, stack)


class _Absent:
    """A service of a ``describing_state``: there is none, and using it says so."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        raise RuntimeError(f"no {self._name} here: the state only describes the routes")


def describing_state(settings: Settings) -> AppState:
    """A state with the settings and no service (no database, Redis or storage): enough
    to register the routes and describe them (``arinova openapi``), offline."""
    absent: Any = {name: _Absent(name) for name in AppState.__dataclass_fields__}
    return AppState(
        **{**absent, "settings": settings, "log": logging.getLogger("arinova")},
    )
