"""``state.push``: the push trigger's decision and background delivery (websocket.md §10).

The realtime layer, after a successful agent reply, calls

    if await state.push.should_send_message_push(user_id, conversation_id, agent_id,
                                                 foreground_sockets):
        state.push.send_message_notification(user_id, agent_name, conversation_id, content)

or ``state.push.notify_message_reply(...)``, which does both in the background.
Delivery never blocks the caller: it runs as a task, at most ``MAX_PENDING_USERS`` users'
deliveries are pending (more are dropped with a warning) and at most
``MAX_CONCURRENT_SENDS`` HTTP requests to push services are in flight. Subscriptions whose
push service answers 404 or 410 are deleted; other failures are logged and ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import httpx

from arinova.db.pool import Database
from arinova.db.queries import push as q
from arinova.kv import keys
from arinova.outbound import GuardedTransport, any_address, public_address
from arinova.push.payload import message_payload
from arinova.push.policy import (
    DEDUP_WINDOW_MS,
    MessagePushFacts,
    Preferences,
    local_minutes,
    message_push_allowed,
)
from arinova.push.webpush import (
    Subscription,
    SubscriptionKeyError,
    VapidKeyError,
    VapidSigner,
    WebPushSender,
)

if TYPE_CHECKING:
    from arinova.kv import KV
    from arinova.metrics import Metrics
    from arinova.settings import Settings

MAX_CONCURRENT_SENDS: Final = 32
MAX_PENDING_USERS: Final = 1_000
#: subscriptions one delivery reaches (the newest; a user rarely has more than a few)
MAX_SUBSCRIPTIONS_PER_USER: Final = 50
SEND_TIMEOUT_S: Final = 10.0
GONE_STATUSES: Final = frozenset({404, 410})


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    removed: list[str] = field(default_factory=list)
    failed: int = 0


class PushService:
    def __init__(
        self, settings: Settings, db: Database, kv: KV, log: logging.Logger, metrics: Metrics
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._kv = kv
        self._log = log
        self._signer: VapidSigner | None = None
        if settings.push_enabled:
            try:
                self._signer = VapidSigner(
                    settings.vapid_public_key, settings.vapid_private_key, settings.vapid_subject
                )
            except VapidKeyError as exc:
                log.error("push notifications disabled: %s", exc)
        policy = any_address if settings.allow_private_outbound else public_address
        self._client = httpx.AsyncClient(
            transport=GuardedTransport(policy),
            timeout=SEND_TIMEOUT_S,
            follow_redirects=False,
            trust_env=False,
        )
        self._sender = (
            WebPushSender(self._signer, self._client) if self._signer is not None else None
        )
        self._sends = asyncio.Semaphore(MAX_CONCURRENT_SENDS)
        self._pending: set[asyncio.Task[DeliveryReport]] = set()

    @property
    def enabled(self) -> bool:
        """Both VAPID keys are configured (and valid)."""
        return self._sender is not None

    # -- the trigger ---------------------------------------------------------------------

    async def message_push_facts(
        self, user_id: str, conversation_id: str, agent_id: str, foreground_sockets: int
    ) -> MessagePushFacts:
        row = await self._db.fetchrow(q.MESSAGE_PUSH_FACTS.sql, user_id, conversation_id, agent_id)
        assert row is not None
        prefs = None
        if row["has_preferences"]:
            prefs = Preferences(
                global_enabled=row["global_enabled"],
                message_enabled=row["message_enabled"],
                quiet_hours_start=row["quiet_hours_start"],
                quiet_hours_end=row["quiet_hours_end"],
            )
        return MessagePushFacts(
            foreground_sockets=foreground_sockets,
            muted=row["muted"],
            agent_notifications_enabled=row["agent_notifications_enabled"],
            preferences=prefs,
        )

    async def should_send_message_push(
        self,
        user_id: str,
        conversation_id: str,
        agent_id: str,
        foreground_sockets: int,
        *,
        now_minutes: int | None = None,
    ) -> bool:
        """The whole trigger: facts, rules, then the de-dup window shared by every worker
        (recorded whenever the rules pass, even if nothing is delivered afterwards)."""
        if foreground_sockets > 0:
            return False  # no query needed
        facts = await self.message_push_facts(
            user_id, conversation_id, agent_id, foreground_sockets
        )
        minutes = local_minutes() if now_minutes is None else now_minutes
        if not message_push_allowed(facts, minutes):
            return False
        return await self.claim_dedup_window(user_id, "message")

    async def claim_dedup_window(self, user_id: str, kind: str) -> bool:
        """True for the first call per (user, type) in a 30 s window, across processes.
        (INCR with a TTL set on the first increment: the first caller sees 1.)"""
        count, _ = await self._kv.incr_with_ttl(keys.push_dedup(user_id, kind), DEDUP_WINDOW_MS)
        return count == 1

    # -- delivery ------------------------------------------------------------------------

    def send_message_notification(
        self, user_id: str, agent_name: str, conversation_id: str, content: str
    ) -> asyncio.Task[DeliveryReport] | None:
        """Deliver the reply notification to all the user's subscriptions, in the
        background. Returns the task (None when push is off or too much is pending)."""
        if self._sender is None:
            return None
        payload = message_payload(agent_name, conversation_id, content)
        return self._spawn(self.send_to_user(user_id, payload))

    def notify_message_reply(
        self,
        user_id: str,
        agent_id: str,
        agent_name: str,
        conversation_id: str,
        content: str,
        foreground_sockets: int,
    ) -> asyncio.Task[DeliveryReport] | None:
        """Trigger and delivery together, in the background (for the realtime layer)."""
        if self._sender is None or foreground_sockets > 0:
            return None

        async def run() -> DeliveryReport:
            if not await self.should_send_message_push(
                user_id, conversation_id, agent_id, foreground_sockets
            ):
                return DeliveryReport()
            payload = message_payload(agent_name, conversation_id, content)
            return await self.send_to_user(user_id, payload)

        return self._spawn(run())

    def _spawn(
        self, work: Coroutine[Any, Any, DeliveryReport]
    ) -> asyncio.Task[DeliveryReport] | None:
        if len(self._pending) >= MAX_PENDING_USERS:
            work.close()
            self._log.warning("push: %d deliveries pending; one dropped", len(self._pending))
            return None
        task: asyncio.Task[DeliveryReport] = asyncio.get_running_loop().create_task(
            self._guarded(work)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def _guarded(self, work: Coroutine[Any, Any, DeliveryReport]) -> DeliveryReport:
        try:
            return await work
        except asyncio.CancelledError:
            raise
        except Exception:
            self._log.warning("push: delivery failed", exc_info=True)
            return DeliveryReport()

    async def send_to_user(self, user_id: str, payload: bytes) -> DeliveryReport:
        """Send ``payload`` to every subscription of the user now (awaits the sends)."""
        report = DeliveryReport()
        if self._sender is None:
            return report
        rows = await self._db.fetch(
            q.LIST_USER_SUBSCRIPTIONS.sql, user_id, MAX_SUBSCRIPTIONS_PER_USER
        )
        subscriptions = [
            Subscription(row["id"], row["endpoint"], row["p256dh"], row["auth"]) for row in rows
        ]
        statuses = await asyncio.gather(*(self._send_one(s, payload) for s in subscriptions))
        for subscription, status in zip(subscriptions, statuses, strict=True):
            if status is not None and 200 <= status < 300:
                report.sent += 1
            elif status in GONE_STATUSES:
                report.removed.append(subscription.id)
            else:
                report.failed += 1
        self._count(report)
        if report.removed:
            await self._db.execute(q.DELETE_SUBSCRIPTIONS.sql, report.removed)
        return report

    def _count(self, report: DeliveryReport) -> None:
        metrics = self._metrics
        for counter, n in (
            (metrics.push_sent, report.sent),
            (metrics.push_gone, len(report.removed)),
            (metrics.push_failed, report.failed),
        ):
            if n:
                counter.inc(n)

    async def _send_one(self, subscription: Subscription, payload: bytes) -> int | None:
        assert self._sender is not None
        async with self._sends:
            try:
                status = await self._sender.send(subscription, payload)
            except SubscriptionKeyError as exc:
                self._log.info("push: subscription %s unusable: %s", subscription.id, exc)
                return None
            except (httpx.HTTPError, OSError) as exc:
                self._log.info("push: sending to %s failed: %r", subscription.endpoint, exc)
                return None
        if not 200 <= status < 300 and status not in GONE_STATUSES:
            self._log.info("push: %s answered %d", subscription.endpoint, status)
        return status

    async def close(self) -> None:
        pending = list(self._pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._client.aclose()
