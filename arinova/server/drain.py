"""A worker's drain for a rolling restart (``SIGHUP`` to ``arinova serve``).

The supervisor starts the replacement first, and once it serves, sends the old worker
``RESTART_SIGNAL``. That worker then drains as on SIGTERM with one difference: its
WebSockets close with 1012 (Service Restart) instead of 1001, so clients reconnect (to
the new worker, on the same listening socket) and ``sync``. In order: stop accepting,
close the agents' sockets (1012) and let the replies they leave end (their pending tasks
fail with "Agent disconnected", websocket.md §2.4) while the users' sockets are still
open to receive the ``stream_error`` (a user who hears of it only after reconnecting
would sync past a reply still shown as streaming), close the other sockets (1012), let
in-flight HTTP requests finish (keep-alive connections close after their current
response), wait for the replies still ending, all within ``SHUTDOWN_TIMEOUT``; then exit 0.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

import uvicorn

from arinova import compat
from arinova.server.dispatch import DispatchProtocol
from arinova.ws.connection import SocketConnection

#: supervisor -> worker: "drain for a restart" (SIGTERM stays "stop": 1001)
RESTART_SIGNAL = signal.SIGUSR1
CLOSE_SERVICE_RESTART = 1012
#: how long a connection accepted just before the drain may take to send its first head
#: (uvicorn's shutdown drops one that has not; a client sends it at once)
HEAD_GRACE_S = 1.0
HEAD_POLL_S = 0.01
#: how long the users' sockets stay open for the end of the replies the closed agents
#: leave (a reply whose agent is elsewhere may run longer: it ends after they close)
AGENTS_SETTLE_S = 3.0


async def close_sockets_for_restart(
    server: uvicorn.Server, settle: Callable[[float], Awaitable[bool]], settle_s: float
) -> int:
    """Stop accepting; let the connections accepted last send their first head (a
    request is then served, closing the connection after it; an upgrade becomes a
    socket); then start the close handshake of every WebSocket with 1012: first those
    whose handler ``closes_first``, then, once ``settle`` says what they left is done or
    ``settle_s`` passed, the others. The number of sockets closed. uvicorn's graceful
    shutdown does the rest (its 1001 close of a socket already closing is a no-op)."""
    compat.stop_listening(server)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HEAD_GRACE_S
    while loop.time() < deadline:
        if not any(isinstance(c, DispatchProtocol) for c in compat.live_connections(server)):
            break
        await asyncio.sleep(HEAD_POLL_S)
    sockets = [
        c for c in compat.live_connections(server) if isinstance(c, SocketConnection) and c.is_open
    ]
    first = [c for c in sockets if c.handler.closes_first]
    for connection in first:
        connection.close(CLOSE_SERVICE_RESTART, "Service Restart")
    if first:
        await settle(settle_s)
    for connection in sockets:
        if connection.is_open:
            connection.close(CLOSE_SERVICE_RESTART, "Service Restart")
    return len(sockets)
