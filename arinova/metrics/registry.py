"""``Metrics``: every metric of one server process, on a registry of its own.

Names are prefixed ``arinova_``; labels take a bounded set of values (kinds, results,
route templates and status codes), never a raw path, a user or an id. The children the
services count with are bound here once, so counting never looks a label up.

In a worker of ``arinova serve`` (``multiprocess=True``) prometheus-client writes every
value to a file of the process in ``PROMETHEUS_MULTIPROC_DIR``, which the supervisor sums
(``arinova.metrics.multiprocess``): gauges are ``livesum`` (the live workers' values added)
but for ``arinova_replies_queued``, ``sum``, since one process queues a reply and another
may take it from the queue.
"""

from __future__ import annotations

from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values

from arinova.metrics.tally import Tally

#: request latency (seconds)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: bus delivery lag (seconds)
LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

LIVE: Final[Literal["livesum"]] = "livesum"


class Metrics:
    def __init__(self, *, multiprocess: bool = False) -> None:
        if multiprocess and not getattr(values.ValueClass, "_multiprocess", False):
            raise RuntimeError(
                "multiprocess metrics: PROMETHEUS_MULTIPROC_DIR was not set when "
                "prometheus_client was first imported"
            )
        r = self.registry = CollectorRegistry()
        self._tallies: list[Tally] = []

        # -- realtime (sampled from the process's hub: arinova.metrics.sampler) ----------
        sockets = Gauge(
            "arinova_sockets_open",
            "Open WebSocket connections: client (/ws, signed in) and agent (/ws/agent)",
            ["kind"],
            registry=r,
            multiprocess_mode=LIVE,
        )
        self.client_sockets = sockets.labels("client")
        self.agent_sockets = sockets.labels("agent")
        self.users_connected = Gauge(
            "arinova_users_connected",
            "Users with a /ws socket, counted per process and summed (a user with sockets "
            "in two workers counts twice)",
            registry=r,
            multiprocess_mode=LIVE,
        )
        self.streams_active = Gauge(
            "arinova_streams_active",
            "Agent replies streaming (from stream_start until the agent ends them)",
            registry=r,
            multiprocess_mode=LIVE,
        )
        self.replies_queued = Gauge(
            "arinova_replies_queued",
            "Replies waiting behind the active one of their conversation (since this "
            "server started)",
            registry=r,
            multiprocess_mode="sum",
        )
        self.chunks_relayed = self.tally(
            Counter(
                "arinova_chunks_relayed",
                "agent_chunk deltas relayed to their users' sockets",
                registry=r,
            )
        )
        self.stream_cache_writes = self.tally(
            Counter(
                "arinova_stream_cache_writes",
                "Writes of a reply's streamed text to stream:<messageId>",
                registry=r,
            )
        )

        # -- the bus between processes (with Redis) -------------------------------------
        bus = Counter(
            "arinova_bus_messages",
            "Bus messages between the server's processes: published by this one, "
            "delivered to it from the others",
            ["direction"],
            registry=r,
        )
        self.bus_published = self.tally(bus.labels("published"))
        self.bus_delivered = self.tally(bus.labels("delivered"))
        self.bus_publishes = self.tally(
            Counter(
                "arinova_bus_publishes",
                "PUBLISH commands of the bus (one per batch and channel)",
                registry=r,
            )
        )
        self.bus_lag = Histogram(
            "arinova_bus_delivery_lag_seconds",
            "From a bus batch's first message queued in one process to the batch handled "
            "in another (wall clocks: across machines their skew is included)",
            buckets=LAG_BUCKETS,
            registry=r,
        )

        # -- HTTP (arinova.http.request_metrics binds a route's children once) -----------
        self.http_requests = Counter(
            "arinova_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "arinova_http_request_duration_seconds",
            "From a request's head to its response ready (the body of a streamed "
            "response not included), by method, route template and status",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

        # -- resources --------------------------------------------------------------------
        pool = Gauge(
            "arinova_db_pool_connections",
            "PostgreSQL pool connections: in use, idle",
            ["state"],
            registry=r,
            multiprocess_mode=LIVE,
        )
        self.db_in_use = pool.labels("in_use")
        self.db_idle = pool.labels("idle")
        self.db_waiting = Gauge(
            "arinova_db_pool_waiting",
            "Tasks waiting for a PostgreSQL connection (every one in use)",
            registry=r,
            multiprocess_mode=LIVE,
        )
        redis = Counter(
            "arinova_redis_errors",
            "Failed Redis operations: commands, bus batches, losses of the subscription connection",
            ["source"],
            registry=r,
        )
        self.redis_command_errors = redis.labels("command")
        self.redis_bus_errors = redis.labels("bus")
        self.redis_subscriber_errors = redis.labels("subscriber")
        sandbox = Gauge(
            "arinova_sandbox_runs",
            "Sandbox runs: waiting for a worker, running",
            ["state"],
            registry=r,
            multiprocess_mode=LIVE,
        )
        self.sandbox_waiting = sandbox.labels("waiting")
        self.sandbox_running = sandbox.labels("running")
        push = Counter(
            "arinova_push_deliveries",
            "Web Push deliveries: sent (2xx), gone (404/410: the subscription is deleted), "
            "failed (any other answer, or none)",
            ["result"],
            registry=r,
        )
        self.push_sent = push.labels("sent")
        self.push_gone = push.labels("gone")
        self.push_failed = push.labels("failed")

    def tally(self, counter: Counter) -> Tally:
        """A hot-path counter for ``counter`` (flushed with the others by ``flush``)."""
        tally = Tally(counter)
        self._tallies.append(tally)
        return tally

    def flush(self) -> None:
        """Hand every tally's counts to its counter."""
        for tally in self._tallies:
            tally.flush()
