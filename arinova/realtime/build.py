"""The realtime layer of one process, assembled from ready resources: the coordinator
(chosen here, once), the pipeline, sync, the sweep, and the endpoint of each socket path."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from arinova.db.pool import Database
from arinova.ratelimit.messages import MessageRateLimit
from arinova.realtime.agent import AgentEndpoint, AgentServices
from arinova.realtime.client import ClientEndpoint, ClientServices
from arinova.realtime.hub import Hub
from arinova.realtime.local import LocalCoordinator
from arinova.realtime.node import RealtimeNode
from arinova.realtime.offline import OfflineQueue
from arinova.realtime.pipeline import Pipeline
from arinova.realtime.push_trigger import PushTrigger
from arinova.realtime.redis_coordinator import RedisCoordinator
from arinova.realtime.sweep import Sweep
from arinova.realtime.sync import Sync
from arinova.realtime.tasks import Background
from arinova.ws import Endpoint, SocketLimits

if TYPE_CHECKING:
    from arinova.auth import Authenticator
    from arinova.clock import Clock
    from arinova.kv import KV
    from arinova.kv.redis import RedisKV
    from arinova.metrics import Metrics
    from arinova.push.service import PushService
    from arinova.realtime.coordinator import Coordinator
    from arinova.settings import RealtimeSettings, Settings

CLIENT_PATH = "/ws"
AGENT_PATH = "/ws/agent"
SOCKET_PATHS = (CLIENT_PATH, AGENT_PATH)

#: ``/ws``: the client limits are checked by the application and answered with "Message
#: too large" (websocket.md §1.4): 32 768 UTF-16 code units, a ``sync`` up to
#: ``RealtimeSettings.max_sync_message_chars`` (all ASCII when valid). The frame level
#: only bounds what one socket makes the server buffer (quirk Q38): 1 MiB, past the
#: largest sync; a larger message is passed over unread and answered the same way, up to
#: the original's own frame limit (``ws``'s 100 MiB ``maxPayload``), beyond which -> 1009.
CLIENT_LIMITS = SocketLimits(max_message_size=1024 * 1024, max_skipped_size=100 * 1024 * 1024)
#: ``/ws/agent``: agents send whole replies in ``agent_complete``; the original took
#: frames up to 100 MiB. An agent streams many replies over its one socket, a chunk each
#: few tens of milliseconds per reply: reading pauses 2 ms after each read, so the chunks
#: of that while come in one read (paced streams: about a fifth less server CPU per chunk,
#: docs/benchmarks.md), at most 2 ms later.
AGENT_LIMITS = SocketLimits(max_message_size=4 * 1024 * 1024, read_pause_s=0.002)


@dataclass(frozen=True, slots=True)
class RealtimeLayer:
    node: RealtimeNode
    endpoints: Mapping[str, Endpoint]


def create_coordinator(
    kv: KV,
    redis: RedisKV | None,
    hub: Hub,
    offline: OfflineQueue,
    tasks: Background,
    config: RealtimeSettings,
    log: logging.Logger,
    metrics: Metrics,
) -> Coordinator:
    """One process on its own without Redis; with Redis, one of many."""
    if redis is None:
        return LocalCoordinator(kv, hub, offline, tasks, config, log, metrics)
    return RedisCoordinator(redis, hub, offline, tasks, config, metrics)


def build_realtime(
    settings: Settings,
    *,
    db: Database,
    kv: KV,
    redis: RedisKV | None,
    auth: Authenticator,
    push: PushService,
    clock: Clock,
    metrics: Metrics,
) -> RealtimeLayer:
    config = settings.realtime
    log = logging.getLogger("arinova.realtime")
    tasks = Background(log)
    hub = Hub()
    offline = OfflineQueue(kv, config.offline_cap, config.offline_ttl_s, log)
    coordinator = create_coordinator(kv, redis, hub, offline, tasks, config, log, metrics)
    trigger = PushTrigger(push, hub, coordinator, tasks, log)
    pipeline = Pipeline(db, hub, coordinator, trigger, tasks, config, clock, log, metrics)
    sync = Sync(db, kv, hub, coordinator, config, log)
    sweep = Sweep(hub, pipeline, config, clock, log)
    rate_limit = MessageRateLimit(
        kv, settings.ws_message_rate_limit, config.max_fallback_rate_entries, log, clock
    )
    client = ClientServices(
        db, hub, coordinator, pipeline, sync, offline, rate_limit, sweep, tasks, config, clock, log
    )
    agent = AgentServices(db, hub, coordinator, pipeline, sweep, tasks, clock, log)
    node = RealtimeNode(hub, coordinator, pipeline, sync, offline, sweep, tasks)
    endpoints = {
        CLIENT_PATH: ClientEndpoint(client, auth, CLIENT_LIMITS),
        AGENT_PATH: AgentEndpoint(agent, AGENT_LIMITS),
    }
    return RealtimeLayer(node, endpoints)
