"""``/ws``: the web app's socket (websocket.md §1).

The session cookie is checked before the 101; a socket without a session is upgraded and
closed 4401 at once, as the original did. Frames of one socket are handled in arrival
order: events that need no I/O at once, the rest by a task that exists only while such
frames wait (no task for an idle socket); a frame that finds that inbox full is answered
at once or dropped (``_overflow``). The heartbeat is the process's shared sweep.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arinova.db.pool import Database
from arinova.db.queries import realtime as q
from arinova.js import json_parse, utf16_length
from arinova.realtime import events
from arinova.realtime.validate import parse_client_event
from arinova.ws import Endpoint, SocketHandler, SocketLimits

if TYPE_CHECKING:
    from arinova.auth import Authenticator
    from arinova.clock import Clock
    from arinova.ratelimit.messages import MessageRateLimit
    from arinova.realtime.coordinator import Coordinator
    from arinova.realtime.hub import Hub
    from arinova.realtime.offline import OfflineQueue
    from arinova.realtime.pipeline import Pipeline
    from arinova.realtime.sweep import Sweep
    from arinova.realtime.sync import Sync
    from arinova.realtime.tasks import Background
    from arinova.settings import RealtimeSettings
    from arinova.ws import HttpRejection, RequestHead

#: first job of a new socket's inbox: replay the user's offline events
_DELIVER_PENDING = object()


@dataclass(frozen=True, slots=True, eq=False)
class ClientServices:
    """What every ``/ws`` socket works with (one instance per process)."""

    db: Database
    hub: Hub
    coordinator: Coordinator
    pipeline: Pipeline
    sync: Sync
    offline: OfflineQueue
    rate_limit: MessageRateLimit
    sweep: Sweep
    tasks: Background
    config: RealtimeSettings
    clock: Clock
    log: logging.Logger


class UnauthorizedHandler(SocketHandler):
    __slots__ = ()

    def on_open(self) -> None:
        self.close(4401, "Unauthorized")


class ClientHandler(SocketHandler):
    __slots__ = ("_inbox", "_inbox_chars", "last_seen", "services", "user_id", "visible")

    def __init__(self, services: ClientServices, user_id: str) -> None:
        super().__init__()
        self.services = services
        self.user_id = user_id
        self.visible = False
        self.last_seen = services.clock.monotonic()
        #: frames waiting for the running worker; None when no worker runs
        self._inbox: deque[object] | None = None
        #: characters of the unparsed frames in the inbox
        self._inbox_chars = 0

    @property
    def socket_id(self) -> int:
        return id(self)

    # -- connection callbacks ------------------------------------------------------------
    def on_open(self) -> None:
        s = self.services
        self.last_seen = s.clock.monotonic()
        if s.hub.add_client(self):
            s.coordinator.user_online(self.user_id)
        s.sweep.arm()
        self._inbox = deque([_DELIVER_PENDING])
        s.tasks.spawn(self._work())

    def on_text(self, text: str) -> None:
        s = self.services
        self.last_seen = s.clock.monotonic()
        inbox = self._inbox
        if inbox is not None:
            if (
                len(inbox) >= s.config.max_pending_frames
                or self._inbox_chars + len(text) > s.config.max_pending_chars
            ):
                self._overflow(text)
                return
            inbox.append(text)
            self._inbox_chars += len(text)
            return
        event = self._parse(text)
        if event is None or self._handle_now(event):
            return
        self._inbox = deque([event])
        s.tasks.spawn(self._work())

    def on_too_large(self) -> None:
        self.send_frame(events.protocol_error(events.MESSAGE_TOO_LARGE))

    def on_close(self, code: int, reason: str) -> None:
        s = self.services
        was_visible = self.visible
        last = s.hub.remove_client(self)
        if was_visible:
            s.coordinator.foreground(self.user_id, -1)
        if last:
            s.coordinator.user_offline(self.user_id)

    # -- processing ----------------------------------------------------------------------
    def _parse(self, text: str) -> dict[str, Any] | None:
        config = self.services.config
        length = utf16_length(text)
        large = length > config.max_client_message_chars
        if large and length > config.max_sync_message_chars:
            self.send_frame(events.protocol_error(events.MESSAGE_TOO_LARGE))
            return None
        try:
            raw = json_parse(text)
        except ValueError:
            self.send_frame(
                events.protocol_error(events.MESSAGE_TOO_LARGE if large else events.INVALID_JSON)
            )
            return None
        if large and not (isinstance(raw, dict) and raw.get("type") == "sync"):
            self.send_frame(events.protocol_error(events.MESSAGE_TOO_LARGE))
            return None
        event = parse_client_event(raw)
        if event is None:
            self.send_frame(events.protocol_error(events.INVALID_FORMAT))
        return event

    def _overflow(self, text: str) -> None:
        """A frame that finds the inbox full. It gets the protocol error it would get if it
        were processed (websocket.md §1.4); a ``send_message`` is refused like one over the
        rate limit (§1.7: not stored, this socket told); ``ping`` and ``cancel_stream``,
        which need no I/O and no order, are handled at once; ``focus``, ``sync`` and
        ``mark_read`` are dropped (a later one of their kind catches up)."""
        event = self._parse(text)
        if event is None:
            return
        kind = event["type"]
        if kind == "send_message":
            self.send_frame(events.protocol_error(events.RATE_LIMITED, event["conversationId"]))
        elif kind in ("ping", "cancel_stream"):
            self._handle_now(event)
            return
        self.services.log.warning(
            "ws: user %s floods its socket; a %s frame %s",
            self.user_id,
            kind,
            "refused" if kind == "send_message" else "dropped",
        )

    def _handle_now(self, event: dict[str, Any]) -> bool:
        """Handle an event that needs no I/O; False when it must wait for the worker."""
        kind = event["type"]
        if kind == "ping":
            self.send_frame(events.PONG)
        elif kind == "focus":
            if self.services.hub.set_visible(self, event["visible"]):
                self.services.coordinator.foreground(self.user_id, 1 if self.visible else -1)
        elif kind == "cancel_stream":
            self.services.pipeline.cancel(self.user_id, event["messageId"])
        else:
            return False
        return True

    async def _handle_later(self, event: dict[str, Any]) -> None:
        s = self.services
        kind = event["type"]
        if kind == "send_message":
            conversation_id = event["conversationId"]
            if not await s.rate_limit.allow(self.user_id):
                self.send_frame(events.protocol_error(events.RATE_LIMITED, conversation_id))
                return
            await s.pipeline.send_message(self.user_id, conversation_id, event["content"])
        elif kind == "sync":
            await s.sync.run(self, event["conversations"])
        elif kind == "mark_read":
            await s.db.execute(q.MARK_READ.sql, self.user_id, event["conversationId"], event["seq"])

    async def _deliver_pending(self) -> None:
        await self.services.coordinator.user_reachable(self.user_id)
        for event in await self.services.offline.take(self.user_id):
            self.send_frame(events.frame(event.decode()))

    async def _work(self) -> None:
        inbox = self._inbox
        assert inbox is not None
        try:
            while inbox:
                item = inbox.popleft()
                try:
                    if item is _DELIVER_PENDING:
                        await self._deliver_pending()
                        continue
                    if isinstance(item, str):
                        self._inbox_chars -= len(item)
                        event = self._parse(item)
                        if event is None or self._handle_now(event):
                            continue
                    else:
                        assert isinstance(item, dict)
                        event = item
                    await self._handle_later(event)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # as the original: logged, the client gets nothing, the socket stays
                    self.services.log.exception(
                        "ws: handling a client event failed",
                        extra={"route": "/ws", "user_id": self.user_id},
                    )
        finally:
            self._inbox = None
            self._inbox_chars = 0


class ClientEndpoint(Endpoint):
    check_origin = True

    def __init__(self, services: ClientServices, auth: Authenticator, limits: SocketLimits) -> None:
        self.services = services
        self.auth = auth
        self.limits = limits

    async def accept(self, head: RequestHead) -> SocketHandler | HttpRejection:
        user = await self.auth.user_from_cookie_header(head.header("cookie"))
        if user is None:
            return UnauthorizedHandler()
        return ClientHandler(self.services, user.id)
