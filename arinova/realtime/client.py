"""``/ws``: the web app's socket (websocket.md §1).

The session cookie is checked before the 101; a socket without a session is upgraded and
closed 4401 at once, as the original did. Frames of one socket are handled in arrival
order: events that need no I/O at once, the rest by a task that exists only while such
frames wait (no task for an idle socket). The heartbeat is the service's shared sweep.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from arinova.js import json_parse, utf16_length
from arinova.realtime import events
from arinova.realtime.endpoint import Endpoint, SocketHandler, SocketLimits
from arinova.realtime.validate import parse_client_event

if TYPE_CHECKING:
    from arinova.realtime.handshake import HttpRejection, RequestHead
    from arinova.realtime.service import RealtimeService

#: first job of a new socket's inbox: replay the user's offline events
_DELIVER_PENDING = object()


class UnauthorizedHandler(SocketHandler):
    __slots__ = ()

    def on_open(self) -> None:
        self.close(4401, "Unauthorized")


class ClientHandler(SocketHandler):
    __slots__ = ("_inbox", "_out", "last_seen", "service", "user_id", "visible")

    def __init__(self, service: RealtimeService, user_id: str) -> None:
        super().__init__()
        self.service = service
        self.user_id = user_id
        self.visible = False
        self.last_seen = time.monotonic()
        #: frames waiting for the running worker; None when no worker runs
        self._inbox: deque[object] | None = None
        #: frames to write at the end of this loop iteration; None when there are none
        self._out: list[bytes] | None = None

    # -- connection callbacks ------------------------------------------------------------
    def on_open(self) -> None:
        self.last_seen = time.monotonic()
        self.service.client_opened(self)
        self._inbox = deque([_DELIVER_PENDING])
        self.service.spawn(self._work())

    def on_text(self, text: str) -> None:
        self.last_seen = time.monotonic()
        inbox = self._inbox
        if inbox is not None:
            if len(inbox) >= self.service.config.max_pending_frames:
                self.service.log.warning(
                    "ws: user %s floods its socket; frame dropped", self.user_id
                )
                return
            inbox.append(text)
            return
        event = self._parse(text)
        if event is None or self._handle_now(event):
            return
        self._inbox = deque([event])
        self.service.spawn(self._work())

    def on_close(self, code: int, reason: str) -> None:
        self.service.client_closed(self)

    # -- output: one write per loop iteration ------------------------------------------
    def send_frame(self, frame: bytes) -> bool:
        """Queue a frame; everything queued during one loop iteration (a burst of chunks
        from an agent's socket read) goes out in one write."""
        conn = self.conn
        if conn is None or not conn.is_open:
            return False
        out = self._out
        if out is None:
            self._out = [frame]
            asyncio.get_running_loop().call_soon(self._flush)
        else:
            out.append(frame)
        return True

    def _flush(self) -> None:
        out, self._out = self._out, None
        conn = self.conn
        if out and conn is not None:
            conn.send_frame(out[0] if len(out) == 1 else b"".join(out))

    def close(self, code: int = 1000, reason: str = "") -> None:
        self._flush()
        super().close(code, reason)

    # -- processing ----------------------------------------------------------------------
    def _parse(self, text: str) -> dict[str, Any] | None:
        if utf16_length(text) > self.service.config.max_client_message_chars:
            self.send_frame(events.protocol_error(events.MESSAGE_TOO_LARGE))
            return None
        try:
            raw = json_parse(text)
        except ValueError:
            self.send_frame(events.protocol_error(events.INVALID_JSON))
            return None
        event = parse_client_event(raw)
        if event is None:
            self.send_frame(events.protocol_error(events.INVALID_FORMAT))
        return event

    def _handle_now(self, event: dict[str, Any]) -> bool:
        """Handle an event that needs no I/O; False when it must wait for the worker."""
        kind = event["type"]
        if kind == "ping":
            self.send_frame(events.PONG)
        elif kind == "focus":
            self.service.set_visible(self, event["visible"])
        elif kind == "cancel_stream":
            self.service.pipeline.cancel(self.user_id, event["messageId"])
        else:
            return False
        return True

    async def _handle_later(self, event: dict[str, Any]) -> None:
        service = self.service
        kind = event["type"]
        if kind == "send_message":
            conversation_id = event["conversationId"]
            if not await service.rate_limit.allow(self.user_id):
                self.send_frame(events.protocol_error(events.RATE_LIMITED, conversation_id))
                return
            await service.pipeline.send_message(self.user_id, conversation_id, event["content"])
        elif kind == "sync":
            await service.sync.run(self.user_id, event["conversations"])
        elif kind == "mark_read":
            await service.mark_read(self.user_id, event["conversationId"], event["seq"])

    async def _work(self) -> None:
        inbox = self._inbox
        assert inbox is not None
        try:
            while inbox:
                item = inbox.popleft()
                try:
                    if item is _DELIVER_PENDING:
                        await self.service.deliver_pending(self)
                        continue
                    if isinstance(item, str):
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
                    self.service.log.exception("ws: handling a client event failed")
        finally:
            self._inbox = None


class ClientEndpoint(Endpoint):
    check_origin = True

    def __init__(self, service: RealtimeService, limits: SocketLimits) -> None:
        self.service = service
        self.limits = limits

    async def accept(self, head: RequestHead) -> SocketHandler | HttpRejection:
        user = await self.service.state.auth.user_from_cookie_header(head.header("cookie"))
        if user is None:
            return UnauthorizedHandler()
        return ClientHandler(self.service, user.id)
