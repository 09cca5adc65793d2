"""The framework internals arinova.compat relies on still exist with the shape it uses
(uvicorn and BlackSheep are pinned exactly; after an upgrade, this is the test to read),
and no other module of the package touches them."""

from __future__ import annotations

import asyncio
import inspect
import re
import signal
import socket
from pathlib import Path
from typing import Any

import blacksheep
import pytest
import uvicorn
from blacksheep import Application, Request, Router
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

import arinova
from arinova import compat
from arinova.server.runner import bind_socket

PACKAGE = Path(arinova.__file__).parent


def test_the_pinned_versions_are_installed() -> None:
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    assert f'"uvicorn=={uvicorn.__version__}"' in pyproject
    assert f'"blacksheep=={blacksheep.__version__}"' in pyproject


# -- BlackSheep ---------------------------------------------------------------------------


def _scope(raw_path: bytes, query: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "query_string": query,
        "headers": [(b"host", b"example")],
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def test_the_raw_request_target_as_the_app_instantiates_requests() -> None:
    app = Application(router=Router())
    request = app.instantiate_request(_scope(b"/a%2Fb/%E2%82%AC", b"x=%20&y"), _receive)
    assert (compat.raw_path(request), compat.raw_query(request)) == (
        b"/a%2Fb/%E2%82%AC",
        b"x=%20&y",
    )
    bare = app.instantiate_request(_scope(b"/health", b""), _receive)
    assert (compat.raw_path(bare), compat.raw_query(bare)) == (b"/health", b"")
    assert compat.raw_query(Request("GET", b"/no-query", [])) == b""


def test_the_request_cache_is_per_request_and_shared_with_blacksheep() -> None:
    one, two = Request("GET", b"/1", [(b"a", b"1")]), Request("GET", b"/2", [])
    compat.request_cache(one)["_arinova_probe"] = "one"
    assert "_arinova_probe" not in compat.request_cache(two)
    assert one.get_first_header(b"a") == b"1"  # BlackSheep caches its Headers there too
    assert compat.request_cache(one)["_arinova_probe"] == "one"
    assert any(key != "_arinova_probe" for key in compat.request_cache(one))


def test_the_asgi_entry_points_the_http_app_uses() -> None:
    assert inspect.iscoroutinefunction(Application.__call__)
    assert list(inspect.signature(Application.__call__).parameters) == [
        "self",
        "scope",
        "receive",
        "send",
    ]
    assert list(inspect.signature(Application.instantiate_request).parameters) == [
        "self",
        "scope",
        "receive",
    ]
    assert inspect.iscoroutinefunction(Application.start)
    app = Application(router=Router())
    assert app.started is False
    request = app.instantiate_request(_scope(b"/", b""), _receive)
    request.scope = None
    request.dispose()


# -- uvicorn: protocols -------------------------------------------------------------------


def test_the_keywords_uvicorn_creates_protocols_with() -> None:
    assert list(inspect.signature(HttpToolsProtocol.__init__).parameters) == [
        "self",
        "config",
        "server_state",
        "app_state",
        "_loop",
    ]
    startup = inspect.getsource(uvicorn.Server.startup)
    assert re.search(
        r"config\.http_protocol_class\(.*config=config,\s*server_state=self\.server_state,"
        r"\s*app_state=self\.lifespan\.state,\s*_loop=_loop,",
        startup,
        re.S,
    ), "uvicorn no longer creates protocols as compat.protocol_factory expects"
    state = ServerState()
    assert isinstance(state.connections, set) and isinstance(state.tasks, set)
    assert "connection.shutdown()" in inspect.getsource(uvicorn.Server.shutdown)


async def _asgi_ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()  # startup
        await send({"type": "lifespan.startup.complete"})
        await receive()  # shutdown
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


class _RecordingProtocol(asyncio.Protocol):
    """Answers a request with a fixed response; records what the server hands it."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.events.append("connected")

    def data_received(self, data: bytes) -> None:
        self.events.append("request")
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        self.transport.close()


async def test_a_server_through_compat_creates_protocols_and_stops() -> None:
    contexts: list[compat.ProtocolContext] = []
    events: list[str] = []

    def make(context: compat.ProtocolContext) -> asyncio.Protocol:
        contexts.append(context)
        return _RecordingProtocol(events)

    config = uvicorn.Config(
        _asgi_ok, lifespan="on", log_config=None, http=compat.protocol_factory(make)
    )
    server = uvicorn.Server(config)
    sock = bind_socket("127.0.0.1", 0)
    await compat.start_server(server, [sock])
    main = asyncio.create_task(compat.main_loop(server))
    reader, writer = await asyncio.open_connection(*sock.getsockname())
    writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"ok")
    assert events == ["connected", "request"]
    (context,) = contexts
    assert context.config is config and context.server_state is server.server_state
    assert context.loop is asyncio.get_running_loop() and isinstance(context.app_state, dict)
    compat.request_exit(server)
    await asyncio.wait_for(main, 2)
    await compat.shutdown_server(server, [sock])
    assert sock.fileno() == -1  # closed by the shutdown
    assert not context.connections


async def test_a_server_stops_listening_and_lists_its_connections() -> None:
    server = uvicorn.Server(uvicorn.Config(_asgi_ok, lifespan="off", log_config=None))
    sock = bind_socket("127.0.0.1", 0)
    address = sock.getsockname()
    await compat.start_server(server, [sock])
    main = asyncio.create_task(compat.main_loop(server))
    reader, writer = await asyncio.open_connection(*address)
    writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200 ")
    assert len(compat.live_connections(server)) == 1  # kept alive
    other_process = sock.dup()  # the listening socket as another worker holds it
    compat.stop_listening(server)
    await asyncio.sleep(0.05)
    # this server no longer accepts: a new connection waits in the backlog for another
    late_reader, late_writer = await asyncio.open_connection(*address)
    late_writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(late_reader.read(1), 0.3)
    late_writer.close()
    other_process.close()
    writer.close()
    compat.request_exit(server)
    await asyncio.wait_for(main, 2)
    await compat.shutdown_server(server, [sock])


async def test_an_app_whose_startup_fails_is_a_system_exit() -> None:
    async def failing(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no"})

    server = uvicorn.Server(uvicorn.Config(failing, lifespan="on", log_config=None))
    with socket.socket() as sock, pytest.raises(SystemExit):
        await compat.start_server(server, [sock])


def test_signals_are_captured_and_can_be_forgotten() -> None:
    server = uvicorn.Server(uvicorn.Config(_asgi_ok))
    before = signal.getsignal(signal.SIGTERM)
    with compat.capture_signals(server):
        assert signal.getsignal(signal.SIGTERM) == server.handle_exit
        server.handle_exit(signal.SIGINT, None)
        assert server.should_exit is True
        assert server._captured_signals == [signal.SIGINT]
        compat.forget_captured_signals(server)
        assert server._captured_signals == []
    assert signal.getsignal(signal.SIGTERM) == before


# -- nobody else touches them -------------------------------------------------------------

#: framework internals, as attribute accesses or imports (``compat.<name>`` is fine)
_INTERNALS = re.compile(
    r"(?<!compat)\.(?:_path|_raw_query|_handle_http|_captured_signals|lifespan_class|"
    r"should_exit|server_state|app_state)\b|(?<!compat)\.(?:startup|main_loop|capture_signals)\("
    r"|request\.__dict__|_loop=|uvicorn\.(?:protocols|server|lifespan|config)\b"
)


def test_only_the_compat_module_touches_framework_internals() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "compat.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _INTERNALS.search(line)
    ]
    assert found == []
