"""``GET /ws`` and ``GET /ws/agent`` without a WebSocket upgrade: 404 with an empty body
(as @fastify/websocket answers). Upgrades never reach the HTTP app: the connection
dispatcher hands them to the socket layer."""

from __future__ import annotations

from blacksheep import Request, Response

from arinova.http.apidoc import Doc
from arinova.http.router import ArinovaRouter
from arinova.state import AppState

SOCKET_PATHS = ("/ws", "/ws/agent")


def mount(router: ArinovaRouter, state: AppState) -> None:
    async def not_a_socket_upgrade(request: Request) -> Response:
        return Response(404, None, None)

    for path in SOCKET_PATHS:
        router.add_get(
            path,
            not_a_socket_upgrade,
            doc=Doc(
                "WebSocket endpoint (websocket.md); a GET without an upgrade is refused",
                {},
                errors=(404,),
                empty_errors=(404,),
                access="none",
                tag="websocket",
            ),
        )
