"""The WebSocket protocol (RFC 6455), apart from the application.

* ``handshake``: the opening handshake, answered as Node ``ws`` does;
* ``protocol``: one connection as plain state (bytes in, messages and bytes out, the close
  handshake), with no I/O;
* ``connection``: the ``asyncio.Protocol`` that drives it from a transport; ``outbox``:
  one write per socket per loop iteration;
* ``handler``: what the application plugs in (``Endpoint``, ``SocketHandler``) and the
  policies between a socket and its handler.

It imports nothing of the application: only ``arinova._fast`` (the frame codec).
"""

from arinova.ws.connection import SocketConnection
from arinova.ws.handler import Endpoint, SocketHandler
from arinova.ws.handshake import HttpRejection, RequestHead
from arinova.ws.limits import SocketLimits
from arinova.ws.outbox import Outbox

__all__ = [
    "Endpoint",
    "HttpRejection",
    "Outbox",
    "RequestHead",
    "SocketConnection",
    "SocketHandler",
    "SocketLimits",
]
