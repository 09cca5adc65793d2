"""Starting test servers: one way for every test module, and every server stopped after."""

from __future__ import annotations

import asyncio
import inspect
import io
import socket
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, Protocol

from arinova.server import Server
from arinova.settings import Settings

#: the keyword arguments of ``Server`` (``socket_endpoints=``, ``dispatch_limits=``,
#: ``extra_areas=``...): the factory passes them on, the rest are settings overrides
#: a server still stopping after this long fails the test, with every task's stack
STOP_TIMEOUT_S = 30.0

SERVER_OPTIONS = frozenset(
    name
    for name, parameter in inspect.signature(Server.__init__).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
)


class StartServer(Protocol):
    def __call__(
        self, settings: Settings | None = None, *, sock: socket.socket | None = None, **options: Any
    ) -> Awaitable[Server]: ...


class ServerPool:
    """Starts servers with the test settings and stops every one of them in ``close``."""

    def __init__(self, make_settings: Callable[..., Settings]) -> None:
        self._make_settings = make_settings
        self._started = AsyncExitStack()

    async def start(
        self, settings: Settings | None = None, *, sock: socket.socket | None = None, **options: Any
    ) -> Server:
        """A started server. ``options`` are ``Server``'s keyword arguments and overrides
        of the test settings (both unless ``settings`` is given); ``sock`` is the listening
        socket to serve on (default: a new one on a free port)."""
        server_options = {name: options.pop(name) for name in SERVER_OPTIONS & options.keys()}
        if settings is None:
            settings = self._make_settings(**options)
        elif options:
            raise TypeError(f"settings overrides next to complete settings: {sorted(options)}")
        server = Server(settings, **server_options)
        await server.start(sock)
        self._started.push_async_callback(_stop_or_report, server)
        return server

    async def close(self) -> None:
        """Stop the servers, the newest first (each one even if another fails to stop)."""
        await self._started.aclose()


async def _stop_or_report(server: Server) -> None:
    stopping = asyncio.ensure_future(server.stop())
    done, _ = await asyncio.wait([stopping], timeout=STOP_TIMEOUT_S)
    if not done:
        stacks = io.StringIO()
        for task in asyncio.all_tasks():
            task.print_stack(file=stacks)
        raise AssertionError(
            f"the server did not stop within {STOP_TIMEOUT_S:g} s; its tasks:\n" + stacks.getvalue()
        )
    stopping.result()
