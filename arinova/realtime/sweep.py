"""The one periodic sweep of a process: the 45 s heartbeat of ``/ws`` sockets (4408), the
authentication window of agent sockets (4408) and the idle timeout of tasks — no timer per
socket or task. It runs only while something is connected or running."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from arinova.realtime import events

if TYPE_CHECKING:
    from arinova.clock import Clock
    from arinova.realtime.hub import Hub
    from arinova.realtime.pipeline import Pipeline
    from arinova.settings import RealtimeSettings

AUTH_TIMEOUT = "Authentication timeout"


class Sweep:
    __slots__ = ("_clock", "_config", "_handle", "_hub", "_log", "_pipeline")

    def __init__(
        self,
        hub: Hub,
        pipeline: Pipeline,
        config: RealtimeSettings,
        clock: Clock,
        log: logging.Logger,
    ) -> None:
        self._hub = hub
        self._pipeline = pipeline
        self._config = config
        self._clock = clock
        self._log = log
        self._handle: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        if self._handle is None:
            loop = asyncio.get_running_loop()
            self._handle = loop.call_later(self._config.sweep_interval_s, self._run)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _run(self) -> None:
        self._handle = None
        try:
            self.sweep(self._clock.monotonic())
        except Exception:
            self._log.exception("realtime sweep failed")
        if not self._hub.idle:
            self.arm()

    def sweep(self, now: float) -> None:
        config, hub = self._config, self._hub
        heartbeat = config.heartbeat_timeout_s
        for sockets in list(hub.users.values()):
            for client in list(sockets):
                if now - client.last_seen >= heartbeat:
                    client.close(4408, events.HEARTBEAT_TIMEOUT)
        for agent in list(hub.unauthenticated):
            if now - agent.opened_at >= config.agent_auth_timeout_s:
                hub.unauthenticated.discard(agent)
                agent.send_frame(events.auth_error(AUTH_TIMEOUT))
                agent.close(4408, AUTH_TIMEOUT)
        self._pipeline.fail_idle_tasks(now)
