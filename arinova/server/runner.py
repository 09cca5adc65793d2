"""``Server``: one server process on one listening socket, startable on port 0 in tests.

uvicorn creates a ``DispatchProtocol`` per connection (uvicorn now only runs the
listening socket and the graceful shutdown): plain HTTP goes on to ``DirectHttpProtocol``
and the app's pipeline, no ASGI, WebSocket upgrades on the socket paths to the
raw socket layer (``arinova.ws``, with ``arinova.realtime`` behind it). What the process
runs is built by the composition root (``arinova.compose``). With ``METRICS_PORT`` a
process on its own serves its metrics there (a worker's are the supervisor's to serve).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import signal
import socket
import time
from collections.abc import Callable, Iterable
from types import FrameType

import uvicorn

from arinova import compat
from arinova.clock import Clock
from arinova.compose import EndpointsFactory, Process, compose
from arinova.http.app import Area
from arinova.metrics.exporter import Exporter
from arinova.server.dispatch import DEFAULT_LIMITS, DispatchLimits, DispatchProtocol, SocketRoutes
from arinova.server.drain import AGENTS_SETTLE_S, RESTART_SIGNAL, close_sockets_for_restart
from arinova.settings import Settings
from arinova.state import AppState

log = logging.getLogger("arinova.server")


class StartupError(RuntimeError):
    pass


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def make_routes(process: Process, limits: DispatchLimits) -> SocketRoutes:
    settings = process.state.settings
    origins = None if settings.cors_any else frozenset(settings.cors_origins)
    return SocketRoutes(
        process.socket_endpoints,
        allowed_origins=origins,
        limits=limits,
        direct_http=process.http.pipeline.handle,
    )


def make_config(process: Process, settings: Settings, routes: SocketRoutes) -> uvicorn.Config:
    return uvicorn.Config(
        process.http,
        host=settings.host,
        port=settings.port,
        http=compat.protocol_factory(functools.partial(DispatchProtocol, routes=routes)),
        ws="none",
        ws_per_message_deflate=False,
        # the composition root starts and stops the app, not an ASGI lifespan
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
        # Node keeps idle keep-alive connections 72 s; uvicorn's 5 s would let clients and
        # proxies that reuse a connection race its close
        timeout_keep_alive=72,
    )


#: the cyclic collector's thresholds: a request's containers (rows, dicts) die young, and at
#: the default 700 a collection ran every few requests
GC_THRESHOLDS = (7000, 10, 10)


def settle_collector() -> None:
    """Once the process serves: what startup built lives as long as the process, so it is
    frozen out of the collector's scans (a full collection over those ~85 000 objects took
    40 ms under load, 50 µs per request of a messages page), and young collections run less
    often (docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class Server:
    """One server process. ``start()`` builds every service (``arinova.compose``), binds
    (port 0 picks a free port) and returns once they serve; ``stop()`` shuts down
    gracefully.

    ``socket_endpoints`` replaces the endpoint of each socket path (tests of the socket
    layer alone); ``dispatch_limits`` bounds the first request head of every connection;
    ``clock`` replaces the real clocks of the realtime layer (tests)."""

    def __init__(
        self,
        settings: Settings,
        *,
        socket_endpoints: EndpointsFactory | None = None,
        dispatch_limits: DispatchLimits = DEFAULT_LIMITS,
        extra_areas: Iterable[Area] = (),
        clock: Clock | None = None,
    ) -> None:
        settings.validate()
        if settings.cors_any and settings.production:
            log.warning("CORS_ORIGIN is '*': /ws accepts upgrades from pages of any origin")
        self.settings = settings
        self._socket_endpoints = socket_endpoints
        self._dispatch_limits = dispatch_limits
        self._extra_areas = tuple(extra_areas)
        self._clock = clock
        self._process: Process | None = None
        self._uv: uvicorn.Server | None = None
        self._sock: socket.socket | None = None
        self._main: asyncio.Task[None] | None = None
        self._exporter: Exporter | None = None
        #: set by ``RESTART_SIGNAL``: the drain closes sockets with 1012 (``drain.py``)
        self._restarting = False

    @property
    def process(self) -> Process:
        assert self._process is not None, "server not started"
        return self._process

    @property
    def state(self) -> AppState:
        return self.process.state

    @property
    def port(self) -> int:
        assert self._sock is not None, "server not started"
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        assert self._exporter is not None, "metrics not served"
        return f"http://127.0.0.1:{self._exporter.port}/metrics"

    async def start(self, sock: socket.socket | None = None) -> None:
        try:
            self._process = await compose(
                self.settings,
                extra_areas=self._extra_areas,
                socket_endpoints=self._socket_endpoints,
                clock=self._clock,
            )
        except Exception as exc:
            log.exception("startup failed")
            raise StartupError("the application failed to start (see the log)") from exc
        try:
            self._serve_metrics()
        except OSError as exc:
            await self._process.close()
            host, port = self.settings.metrics_host, self.settings.metrics_port
            raise StartupError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from exc
        routes = make_routes(self._process, self._dispatch_limits)
        self._uv = uvicorn.Server(make_config(self._process, self.settings, routes))
        self._sock = sock or bind_socket(self.settings.host, self.settings.port)
        try:
            await compat.start_server(self._uv, [self._sock])
        except SystemExit as exc:
            self._stop_metrics()
            await self._process.close()
            raise StartupError("the server failed to start (see the log)") from exc
        self._main = asyncio.create_task(compat.main_loop(self._uv))

    async def stop(self) -> None:
        if self._main is None:
            return
        assert self._uv is not None
        compat.request_exit(self._uv)
        await self._main
        self._main = None
        await self._shutdown()

    async def _shutdown(self) -> None:
        assert self._uv is not None
        started = time.monotonic()
        try:
            if self._restarting:
                settle_s = min(AGENTS_SETTLE_S, self.settings.shutdown_timeout_s)
                closed = await close_sockets_for_restart(
                    self._uv, self.process.realtime.settle, settle_s
                )
                log.info("draining for a restart: %d socket(s) closed with 1012", closed)
            await compat.shutdown_server(self._uv, [self._sock] if self._sock else None)
            if self._restarting:
                left = self.settings.shutdown_timeout_s - (time.monotonic() - started)
                if not await self.process.realtime.settle(max(0.0, left)):
                    log.warning("replies still running after SHUTDOWN_TIMEOUT; stopping")
        finally:
            self._stop_metrics()
            await self.process.close()

    def _serve_metrics(self) -> None:
        settings = self.settings
        if settings.metrics_port is not None and settings.metrics_dir is None:
            registry = self.process.state.metrics.registry
            self._exporter = Exporter(registry, settings.metrics_host, settings.metrics_port)

    def _stop_metrics(self) -> None:
        exporter, self._exporter = self._exporter, None
        if exporter is not None:
            exporter.close()

    async def serve(
        self, sock: socket.socket | None = None, *, ready: Callable[[], None] | None = None
    ) -> None:
        """Run until SIGINT/SIGTERM, then shut down gracefully (``arinova serve``);
        ``RESTART_SIGNAL`` drains for a restart instead (``drain.py``). ``ready`` is
        called once the server accepts connections."""
        await self.start(sock)
        settle_collector()
        assert self._uv is not None and self._main is not None
        with compat.capture_signals(self._uv):
            previous = signal.signal(RESTART_SIGNAL, self._on_restart_signal)
            try:
                if ready is not None:
                    ready()
                await self._main
                self._main = None
                await self._shutdown()
            finally:
                signal.signal(RESTART_SIGNAL, previous)
            # the signal was handled by shutting down: do not re-raise it on the way out
            compat.forget_captured_signals(self._uv)

    def _on_restart_signal(self, signum: int, frame: FrameType | None) -> None:
        assert self._uv is not None
        self._restarting = True
        compat.request_exit(self._uv)
