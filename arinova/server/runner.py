"""``Server``: the app under uvicorn on one listening socket, startable on port 0 in tests."""

from __future__ import annotations

import asyncio
import socket

import uvicorn

from arinova.app import ArinovaApp, create_app
from arinova.settings import Settings


class StartupError(RuntimeError):
    pass


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def make_config(app: ArinovaApp, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http="httptools",
        ws="none",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
    )


class Server:
    """One server process. ``start()`` binds (port 0 picks a free port) and returns once
    the app is ready; ``stop()`` shuts down gracefully."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.config = make_config(self.app, settings)
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
            await self._uv.startup(sockets=[self._sock])
        except SystemExit as exc:
            raise StartupError("the application failed to start (see the log)") from exc
        self._main = asyncio.create_task(self._uv.main_loop())

    async def stop(self) -> None:
        if self._main is None:
            return
        self._uv.should_exit = True
        await self._main
        self._main = None
        await self._uv.shutdown(sockets=[self._sock] if self._sock else None)

    async def serve(self, sock: socket.socket | None = None) -> None:
        """Run until SIGINT/SIGTERM (used by ``arinova serve``)."""
        with self._uv.capture_signals():
            await self.start(sock)
            assert self._main is not None
            await self._main
            self._main = None
            await self._uv.shutdown(sockets=[self._sock] if self._sock else None)
