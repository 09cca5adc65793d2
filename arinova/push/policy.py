"""Whether an agent reply may trigger a push (websocket.md §10, decisions Q34/Q35).

Pure functions of the facts; ``PushService.should_send_message_push`` gathers the facts
(one query) and applies the shared 30 s de-duplication after ``message_push_allowed``.

Order, as the original evaluates it: a foreground socket, a muted conversation, the
agent's ``notificationsEnabled`` (Q35 fix), then the preferences (no row: allowed;
global and message switches; quiet hours on the server's clock in the process ``TZ``,
Q34). Equal quiet-hour bounds mean never quiet.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Final

QUIET_HOURS_RX: Final = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
DEDUP_WINDOW_MS: Final = 30_000


@dataclass(frozen=True, slots=True)
class Preferences:
    global_enabled: bool = True
    message_enabled: bool = True
    playground_invite_enabled: bool = True
    playground_turn_enabled: bool = True
    playground_result_enabled: bool = True
    quiet_hours_start: str | None = None
    quiet_hours_end: str | None = None


@dataclass(frozen=True, slots=True)
class MessagePushFacts:
    #: sockets of the user that reported ``focus {visible: true}``
    foreground_sockets: int
    muted: bool
    #: the replying agent's ``notifications_enabled``
    agent_notifications_enabled: bool
    #: ``None`` when the user never saved preferences
    preferences: Preferences | None


def _minutes(hhmm: str) -> int | None:
    if QUIET_HOURS_RX.fullmatch(hhmm) is None:
        return None
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def in_quiet_hours(start: str | None, end: str | None, now_minutes: int) -> bool:
    """``[start, end)`` on a 24 h clock; an overnight range wraps past midnight."""
    if not start or not end:
        return False
    first, last = _minutes(start), _minutes(end)
    if first is None or last is None:
        return False
    if first <= last:
        return first <= now_minutes < last
    return now_minutes >= first or now_minutes < last


def local_minutes(now: float | None = None) -> int:
    """Minutes since local midnight on the server's clock (process ``TZ``; Q34)."""
    moment = time.localtime(now)
    return moment.tm_hour * 60 + moment.tm_min


def message_push_allowed(facts: MessagePushFacts, now_minutes: int) -> bool:
    """Everything but the de-duplication window."""
    if facts.foreground_sockets > 0 or facts.muted or not facts.agent_notifications_enabled:
        return False
    prefs = facts.preferences
    if prefs is None:
        return True
    if not prefs.global_enabled or not prefs.message_enabled:
        return False
    return not in_quiet_hours(prefs.quiet_hours_start, prefs.quiet_hours_end, now_minutes)
