"""A worker's drain for a rolling restart (``SIGHUP`` to ``arinova serve``).

The supervisor starts the replacement first, and once it serves, sends the old worker
``RESTART_SIGNAL``. That worker then drains as on SIGTERM with one difference: its
WebSockets close with 1012 (Service Restart) instead of 1001, so clients reconnect (to
the new worker, on the same listening socket) and ``sync``. In order: stop accepting,
close the sockets (1012), let in-flight HTTP requests finish (keep-alive connections
close after their current response), wait for the replies still ending (an agent's
pending tasks fail with "Agent disconnected" when its socket closes, websocket.md §2.4),
all within ``SHUTDOWN_TIMEOUT``; then exit 0.
"""

from __future__ import annotations

import signal

import uvicorn

from arinova import compat
from arinova.ws.connection import SocketConnection

#: supervisor -> worker: "drain for a restart" (SIGTERM stays "stop": 1001)
RESTART_SIGNAL = signal.SIGUSR1
CLOSE_SERVICE_RESTART = 1012


def close_sockets_for_restart(server: uvicorn.Server) -> int:
    """Stop accepting, then start the close handshake of every WebSocket with 1012; the
    number of sockets closed. uvicorn's graceful shutdown does the rest (its 1001 close of
    a socket already closing is a no-op)."""
    compat.stop_listening(server)
    closed = 0
    for connection in compat.live_connections(server):
        if isinstance(connection, SocketConnection) and connection.is_open:
            connection.close(CLOSE_SERVICE_RESTART, "Service Restart")
            closed += 1
    return closed
