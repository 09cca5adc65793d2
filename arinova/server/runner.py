"""``Server``: the app under uvicorn on one listening socket, startable on port 0 in tests.

uvicorn creates a ``DispatchProtocol`` per connection: plain HTTP goes on to its own
httptools protocol and the BlackSheep app, WebSocket upgrades on the socket paths to the
raw socket layer (``arinova.realtime``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import Callable, Iterable, Mapping

import uvicorn

from arinova import compat
from arinova.app import ArinovaApp, create_app
from arinova.http import Area
from arinova.realtime.endpoint import Endpoint
from arinova.realtime.routes import socket_endpoints
from arinova.server.dispatch import DEFAULT_LIMITS, DispatchLimits, DispatchProtocol, SocketRoutes
from arinova.settings import Settings
from arinova.state import AppState

EndpointsFactory = Callable[[AppState], Mapping[str, Endpoint]]

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


def make_routes(
    state: AppState, endpoints: EndpointsFactory, limits: DispatchLimits
) -> SocketRoutes:
    settings = state.settings
    origins = None if settings.cors_any else frozenset(settings.cors_origins)
    if origins is None and settings.production:
        log.warning("CORS_ORIGIN is '*': /ws accepts upgrades from pages of any origin")
    return SocketRoutes(endpoints(state), allowed_origins=origins, limits=limits)


def make_config(app: ArinovaApp, settings: Settings, routes: SocketRoutes) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=compat.protocol_factory(functools.partial(DispatchProtocol, routes=routes)),
        ws="none",
        ws_per_message_deflate=False,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
        # Node keeps idle keep-alive connections 72 s; uvicorn's 5 s would let clients and
        # proxies that reuse a connection race its close
        timeout_keep_alive=72,
    )


class Server:
    """One server process. ``start()`` binds (port 0 picks a free port) and returns once
    the app is ready; ``stop()`` shuts down gracefully.

    ``socket_endpoints`` builds the endpoint of each socket path from the app state;
    ``dispatch_limits`` bounds the first request head of every connection."""

    def __init__(
        self,
        settings: Settings,
        *,
        socket_endpoints: EndpointsFactory = socket_endpoints,
        dispatch_limits: DispatchLimits = DEFAULT_LIMITS,
        extra_areas: Iterable[Area] = (),
    ) -> None:
        self.settings = settings
        self.app = create_app(settings, extra_areas)
        self.routes = make_routes(self.app.state, socket_endpoints, dispatch_limits)
        self.config = make_config(self.app, settings, self.routes)
        self._uv = uvicorn.Server(self.config)
        self._sock: socket.socket | None = None
        self._main: asyncio.Task[None] | None = None

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

    async def start(self, sock: socket.socket | None = None) -> None:
        self._sock = sock or bind_socket(self.settings.host, self.settings.port)
        try:
            await compat.start_server(self._uv, [self._sock])
        except SystemExit as exc:
            raise StartupError("the application failed to start (see the log)") from exc
        self._main = asyncio.create_task(compat.main_loop(self._uv))

    async def stop(self) -> None:
        if self._main is None:
            return
        compat.request_exit(self._uv)
        await self._main
        self._main = None
        await compat.shutdown_server(self._uv, [self._sock] if self._sock else None)

    async def serve(self, sock: socket.socket | None = None) -> None:
        """Run until SIGINT/SIGTERM, then shut down gracefully (``arinova serve``)."""
        with compat.capture_signals(self._uv):
            await self.start(sock)
            assert self._main is not None
            await self._main
            self._main = None
            await compat.shutdown_server(self._uv, [self._sock] if self._sock else None)
            # the signal was handled by shutting down: do not re-raise it on the way out
            compat.forget_captured_signals(self._uv)
