"""Every key the server reads or writes in the shared key-value store, in one table
(the original's keys are listed in behaviours.md §13 and keep their names byte for byte).

The realtime coordinator's keys are passed to its Lua scripts as ``KEYS``, never written as
literals in Lua. The keys its scripts touch together share the hash tag ``{rt}`` (one slot
of a Redis Cluster: a script's keys must live on one node); every other key and channel is
on its own, spread over the cluster's slots.
"""

from __future__ import annotations

from typing import Final
from uuid import UUID

# -- the original's keys (behaviours.md §13) -------------------------------------------

#: ``ws:rate:<userId>:<epochMinute>``: a user's ``send_message`` count in one minute
WS_RATE_PREFIX: Final = "ws:rate:"
#: ``stream:<messageId>``: the text of a reply streamed so far
STREAM_PREFIX: Final = "stream:"
#: ``pending_ws_events:<userId>``: events waiting for the user's next socket
PENDING_WS_EVENTS_PREFIX: Final = "pending_ws_events:"
#: ``agent:health:<agentId>``: the last health check of an agent
AGENT_HEALTH_PREFIX: Final = "agent:health:"

# -- keys of this server (the original kept these in process memory) ------------------

#: ``auth:sess:{<token digest>}``: a cached session row (read with its marker in one
#: ``MGET``: the digest is the hash tag, so both are on one node of a cluster)
SESSION_CACHE_PREFIX: Final = "auth:sess:"
#: ``auth:inval:{<token digest>}``: the session was revoked; do not cache it again
SESSION_REVOKED_PREFIX: Final = "auth:inval:"
#: channel: session invalidations, their acknowledgements and each process's heartbeat
#: (``arinova/auth/local_cache.py``)
AUTH_BUS: Final = "auth:bus"
#: ``auth:rl:<ip><path>``: Better Auth's limiter state for one client and path
AUTH_RATE_PREFIX: Final = "auth:rl:"
#: ``http:rate:<client>``: the global HTTP limit's count for one client
HTTP_RATE_PREFIX: Final = "http:rate:"
#: ``push:dedup:<userId>:<kind>``: one push per user and kind per window
PUSH_DEDUP_PREFIX: Final = "push:dedup:"


def ws_rate(user_id: str, epoch_minute: int) -> str:
    return f"{WS_RATE_PREFIX}{user_id}:{epoch_minute}"


def stream(message_id: str) -> str:
    return STREAM_PREFIX + message_id


def pending_ws_events(user_id: str) -> str:
    return PENDING_WS_EVENTS_PREFIX + user_id


def agent_health(agent_id: UUID | str) -> str:
    return f"{AGENT_HEALTH_PREFIX}{agent_id}"


def session_cache(token_digest: str) -> str:
    return f"{SESSION_CACHE_PREFIX}{{{token_digest}}}"


def session_revoked(token_digest: str) -> str:
    return f"{SESSION_REVOKED_PREFIX}{{{token_digest}}}"


def auth_rate(ip: str, path: str) -> str:
    return f"{AUTH_RATE_PREFIX}{ip}{path}"


def http_rate(client: str) -> str:
    return HTTP_RATE_PREFIX + client


def push_dedup(user_id: str, kind: str) -> str:
    return f"{PUSH_DEDUP_PREFIX}{user_id}:{kind}"


# -- the realtime coordinator across processes (arinova/realtime/redis_coordinator.py) --

#: the bus: one channel every process subscribes to
RT_CHANNEL: Final = "rt:all"
#: the hash tag of the keys the coordinator's scripts use together
RT_TAG: Final = "{rt}"
#: sorted set: process id -> liveness deadline (ms)
RT_PROCS: Final = f"{RT_TAG}:procs"
#: hash: agent id -> the process holding its socket
RT_AGENTS: Final = f"{RT_TAG}:agents"
#: counter: each registration of an agent's socket takes the next number, so processes
#: agree which of two sockets of one agent is the newer
RT_AGENT_SERIAL: Final = f"{RT_TAG}:agent_serial"


def rt_active(conversation_id: str) -> str:
    """``<process>|<user>|<token>`` of the conversation's active reply (expires unless
    its owner's beat refreshes it)."""
    return f"{RT_TAG}:active:{conversation_id}"


def rt_queue(conversation_id: str) -> str:
    """List of the replies waiting behind the active one."""
    return f"{RT_TAG}:queue:{conversation_id}"


def rt_user_active(user_id: str) -> str:
    """Hash: conversation id -> process, of the user's active replies."""
    return f"{RT_TAG}:uactive:{user_id}"


def rt_replies(process: str) -> str:
    """Hash: message id -> the reply a process is streaming (for take-over)."""
    return f"{RT_TAG}:replies:{process}"


def rt_outcome(mark: str) -> str:
    """What the claim or release that wrote ``mark`` answered (string, short TTL), for a
    retry of that very call (one whose reply was lost) to get the same answer."""
    return f"{RT_TAG}:outcome:{mark.rsplit('|', 1)[-1]}"


def rt_marks(process: str) -> str:
    """Hash: conversation id -> the active mark a process holds (for take-over)."""
    return f"{RT_TAG}:marks:{process}"


def rt_presence(user_id: str) -> str:
    """Hash: process (``<process>:fg`` for visible ones) -> the user's sockets there."""
    return f"rt:presence:{user_id}"


def rt_user_channel(user_id: str) -> str:
    """channel: the events of one user, subscribed by the processes holding its sockets"""
    return f"rt:u:{user_id}"
