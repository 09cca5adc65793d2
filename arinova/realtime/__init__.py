"""The raw WebSocket layer: sockets served by bare protocols, not ASGI."""

from arinova.realtime.connection import SocketConnection
from arinova.realtime.endpoint import Endpoint, SocketHandler, SocketLimits
from arinova.realtime.handshake import HttpRejection, RequestHead

__all__ = [
    "Endpoint",
    "HttpRejection",
    "RequestHead",
    "SocketConnection",
    "SocketHandler",
    "SocketLimits",
]
