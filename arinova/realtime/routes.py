"""The socket paths of the server and the endpoint behind each. Building them installs
the realtime service as the app state's ``realtime`` (what the REST layer calls)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from arinova.realtime.agent import AgentEndpoint
from arinova.realtime.client import ClientEndpoint
from arinova.realtime.config import RealtimeConfig
from arinova.realtime.service import RealtimeService
from arinova.state import AppState
from arinova.ws import Endpoint, SocketLimits

#: ``/ws``: the client limit is 32 768 UTF-16 code units (checked by the application,
#: answered with "Message too large"); a frame can only stay within it up to 3 bytes
#: per unit, so larger frames are refused at the frame level (quirk Q38).
CLIENT_LIMITS = SocketLimits(max_message_size=3 * 32 * 1024)
#: ``/ws/agent``: agents send whole replies in ``agent_complete``; the original took
#: frames up to 100 MiB.
AGENT_LIMITS = SocketLimits(max_message_size=4 * 1024 * 1024)


def realtime_endpoints(config: RealtimeConfig) -> Callable[[AppState], Mapping[str, Endpoint]]:
    """A ``socket_endpoints`` factory with other timers (tests shorten them)."""

    def build(state: AppState) -> Mapping[str, Endpoint]:
        return _endpoints(state, config)

    return build


def socket_endpoints(state: AppState) -> Mapping[str, Endpoint]:
    return _endpoints(state, RealtimeConfig())


def _endpoints(state: AppState, config: RealtimeConfig) -> Mapping[str, Endpoint]:
    service = RealtimeService(state, config)
    state.realtime = service
    return {
        "/ws": ClientEndpoint(service, CLIENT_LIMITS),
        "/ws/agent": AgentEndpoint(service, AGENT_LIMITS),
    }
