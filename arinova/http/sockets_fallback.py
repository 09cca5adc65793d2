"""``GET /ws`` and ``GET /ws/agent`` without a WebSocket upgrade: 404 with an empty body
(as @fastify/websocket answers). Upgrades never reach the HTTP app: the connection
dispatcher hands them to the socket layer."""

from __future__ import annotations

from blacksheep import Request, Response, Router

from arinova.state import AppState

SOCKET_PATHS = ("/ws", "/ws/agent")


def mount(router: Router, state: AppState) -> None:
    async def not_a_socket_upgrade(request: Request) -> Response:
        return Response(404, None, None)

    for path in SOCKET_PATHS:
        router.add_get(path, not_a_socket_upgrade)
