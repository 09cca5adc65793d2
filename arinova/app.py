"""The app factory: settings in, an ASGI application that owns the process state out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from arinova.http import Area, build_http_app
from arinova.settings import Settings
from arinova.state import AppState

Scope = dict[str, Any]
Receive = Any
Send = Any

#: key of the ``AppState`` in the ASGI lifespan state, read by the socket dispatcher
STATE_KEY = "arinova"


class ArinovaApp:
    """ASGI entry point. Lifespan opens the state and publishes it to the server's
    protocols (uvicorn passes the lifespan state dict to every protocol it creates)."""

    def __init__(self, settings: Settings, extra_areas: Iterable[Area] = ()) -> None:
        self.settings = settings
        self.state = AppState(settings)
        self.http = build_http_app(self.state, extra_areas)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
        else:
            await self.http(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            await self.state.open()
            await self.state.realtime.start()
            await self.http.start()
        except Exception as exc:
            self.state.log.exception("startup failed")
            await self.state.close()
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        if "state" in scope:
            scope["state"][STATE_KEY] = self.state
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        try:
            await self.http.stop()
            await self.state.realtime.stop()
        finally:
            await self.state.close()
        await send({"type": "lifespan.shutdown.complete"})


def create_app(settings: Settings, extra_areas: Iterable[Area] = ()) -> ArinovaApp:
    """``extra_areas`` are mounted after the built-in ones (tests use it for test-only
    routes)."""
    settings.validate()
    return ArinovaApp(settings, extra_areas)
