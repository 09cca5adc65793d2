"""Stub socket logic for tests of the socket layer alone: ``ping`` -> ``pong``, a message
passed over for its size -> ``too_large``.

Anything else closes the socket with 1008 (policy violation, the generic "I will not
take this"): the stub understands no other event, and answering with the contract's
``stream_error`` frames is the realtime layer's job.
"""

from __future__ import annotations

import orjson

from arinova._fast.frames import CLOSE_POLICY_VIOLATION, encode_text
from arinova.ws import Endpoint, HttpRejection, RequestHead, SocketHandler, SocketLimits

PONG = encode_text('{"type":"pong"}')
TOO_LARGE = '{"type":"too_large"}'


class PingPongHandler(SocketHandler):
    __slots__ = ()

    def on_text(self, text: str) -> None:
        try:
            event = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.close(CLOSE_POLICY_VIOLATION, "Invalid JSON")
            return
        if isinstance(event, dict) and event.get("type") == "ping":
            self.send_frame(PONG)
        else:
            self.close(CLOSE_POLICY_VIOLATION, "Unsupported message")

    def on_too_large(self) -> None:
        self.send_text(TOO_LARGE)


class PingPongEndpoint(Endpoint):
    def __init__(self, *, check_origin: bool, limits: SocketLimits) -> None:
        self.check_origin = check_origin
        self.limits = limits

    async def accept(self, head: RequestHead) -> SocketHandler | HttpRejection:
        return PingPongHandler()


def stub_endpoints(state: object) -> dict[str, Endpoint]:
    """A ``socket_endpoints`` factory serving the ping/pong stub on both paths (tests of the
    socket layer alone: no session, no database)."""
    from arinova.realtime.build import AGENT_LIMITS, CLIENT_LIMITS

    return {
        "/ws": PingPongEndpoint(check_origin=True, limits=CLIENT_LIMITS),
        "/ws/agent": PingPongEndpoint(check_origin=False, limits=AGENT_LIMITS),
    }
