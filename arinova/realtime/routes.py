"""The socket paths of the server and the endpoint behind each."""

from __future__ import annotations

from collections.abc import Mapping

from arinova.realtime.endpoint import Endpoint, SocketLimits
from arinova.realtime.stub import PingPongEndpoint
from arinova.state import AppState

#: ``/ws``: the client limit is 32 768 UTF-16 code units (checked by the application,
#: answered with "Message too large"); a frame can only stay within it up to 3 bytes
#: per unit, so larger frames are refused at the frame level (quirk Q38).
CLIENT_LIMITS = SocketLimits(max_message_size=3 * 32 * 1024)
#: ``/ws/agent``: agents send whole replies in ``agent_complete``; the original took
#: frames up to 100 MiB.
AGENT_LIMITS = SocketLimits(max_message_size=4 * 1024 * 1024)


def socket_endpoints(state: AppState) -> Mapping[str, Endpoint]:
    return {
        "/ws": PingPongEndpoint(check_origin=True, limits=CLIENT_LIMITS),
        "/ws/agent": PingPongEndpoint(check_origin=False, limits=AGENT_LIMITS),
    }
