"""Every use of a framework internal, in one place: uvicorn and BlackSheep, both pinned
exactly in pyproject.toml. No other module touches a private attribute of either;
``tests/test_compat.py`` asserts that each surface below still exists with the shape
used here, so a framework upgrade starts with that test.

BlackSheep (``blacksheep.messages.Request``):

* ``_path`` / ``_raw_query``: the request target as sent, in bytes (the public ``path``
  decodes it, ``query`` parses it); the router and Node's ``req.url`` need it raw
  (rest.md §1.1);
* ``__dict__``: a per-request cache (BlackSheep keeps its own lazy values there too).

uvicorn:

* the keywords it creates each HTTP protocol with (``config``, ``server_state``,
  ``app_state``, ``_loop``) and ``ServerState.connections``/``tasks``, which its
  graceful shutdown waits for (``ProtocolContext``, ``protocol_factory``);
* the steps of ``Server.serve``, taken one by one so a server starts on a given socket
  and stops on demand: ``Config.loaded``/``load``/``lifespan_class``,
  ``Server.lifespan``, ``startup(sockets=)``, ``main_loop``, ``should_exit``,
  ``shutdown(sockets=)``, ``capture_signals`` and ``_captured_signals``; ``servers`` (the
  listeners) and ``server_state.connections``, for a drain that closes sockets its own way.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, cast

import uvicorn
from blacksheep import Request
from uvicorn.server import ServerState

# -- BlackSheep ---------------------------------------------------------------------------


def raw_path(request: Request) -> bytes:
    """The path of the request target exactly as sent (percent-escapes kept)."""
    path: bytes = request._path  # type: ignore[attr-defined]
    return path


def raw_query(request: Request) -> bytes:
    """The query string as sent, without the ``?``; ``b""`` when there is none."""
    query: bytes | None = request._raw_query  # type: ignore[attr-defined]
    return query or b""


def request_cache(request: Request) -> dict[str, Any]:
    """A dict that lives as long as the request; use keys that start with ``_arinova``."""
    cache: dict[str, Any] = request.__dict__
    return cache


# -- uvicorn: the protocols it creates -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProtocolContext:
    """What uvicorn hands every protocol it creates for a connection."""

    config: uvicorn.Config
    server_state: ServerState
    #: the lifespan state (what the app put in ``scope["state"]`` at startup)
    app_state: dict[str, Any]
    loop: asyncio.AbstractEventLoop

    @property
    def connections(self) -> set[Any]:
        """The live connections: each has a ``shutdown()`` that uvicorn calls on a
        graceful shutdown, which then waits until the set is empty."""
        connections: set[Any] = self.server_state.connections
        return connections

    @property
    def tasks(self) -> set[asyncio.Task[None]]:
        """Tasks that uvicorn's graceful shutdown waits for (cancelled after its timeout)."""
        tasks: set[asyncio.Task[None]] = self.server_state.tasks
        return tasks


def protocol_factory(
    make: Callable[[ProtocolContext], asyncio.Protocol],
) -> type[asyncio.Protocol]:
    """What ``uvicorn.Config(http=...)`` takes to create each connection's protocol with
    ``make``. uvicorn calls it as a protocol class, with its own keywords."""

    def create(
        *,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> asyncio.Protocol:
        loop = _loop or asyncio.get_running_loop()
        return make(ProtocolContext(config, server_state, app_state, loop))

    return cast("type[asyncio.Protocol]", create)


# -- uvicorn: the server lifecycle ---------------------------------------------------------


async def start_server(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
    """What ``Server.serve`` does before its main loop: load the config, run the app's
    lifespan startup, listen on ``sockets``. Raises ``SystemExit`` when the app's
    startup fails."""
    config = server.config
    if not config.loaded:
        config.load()
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=sockets)


def main_loop(server: uvicorn.Server) -> Coroutine[Any, Any, None]:
    """Runs until ``request_exit`` (or a captured signal)."""
    return server.main_loop()


def request_exit(server: uvicorn.Server) -> None:
    """Make ``main_loop`` return at its next tick (every 0.1 s)."""
    server.should_exit = True


async def shutdown_server(server: uvicorn.Server, sockets: list[socket.socket] | None) -> None:
    """Graceful shutdown after ``main_loop``: stop listening, ``shutdown()`` every
    connection, wait for them and the tasks (up to the configured timeout), lifespan
    shutdown."""
    await server.shutdown(sockets=sockets)


def stop_listening(server: uvicorn.Server) -> None:
    """Stop accepting connections (what ``shutdown_server`` does first); the listening
    socket itself stays open."""
    for listener in server.servers:
        listener.close()


def live_connections(server: uvicorn.Server) -> list[Any]:
    """The connections open now (each with the ``shutdown()`` uvicorn calls)."""
    return list(server.server_state.connections)


def capture_signals(server: uvicorn.Server) -> AbstractContextManager[None]:
    """SIGINT/SIGTERM make ``main_loop`` return; on leaving, uvicorn re-raises each
    captured signal unless ``forget_captured_signals`` was called."""
    return server.capture_signals()


def forget_captured_signals(server: uvicorn.Server) -> None:
    """The captured signals were handled (by shutting down): leaving
    ``capture_signals`` then re-raises none of them."""
    server._captured_signals.clear()
