"""Timers and bounds of the realtime layer (websocket.md §1.2, §2.2, §2.4, §7, §8)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RealtimeConfig:
    #: a ``/ws`` socket that sends nothing this long is closed 4408
    heartbeat_timeout_s: float = 45.0
    #: an agent socket must authenticate within this time, else 4408
    agent_auth_timeout_s: float = 10.0
    #: a task without a forwarded delta this long fails
    task_idle_timeout_s: float = 600.0
    #: period of the one shared sweep that runs every timer above
    sweep_interval_s: float = 1.0
    #: ``stream:<messageId>`` TTL, refreshed on every write
    stream_ttl_s: int = 600
    #: at most one ``stream:<messageId>`` write per reply this often (the latest text)
    stream_cache_interval_s: float = 0.1
    #: offline queue: events kept per user, and how long
    offline_cap: int = 1000
    offline_ttl_s: int = 86_400
    #: ``send_message`` per user and calendar minute
    message_rate_limit: int = 10
    #: frames of one ``/ws`` socket waiting for the previous one to finish
    max_pending_frames: int = 64
    #: replies waiting behind the active one in one conversation
    max_queued_replies: int = 100
    #: missed messages per conversation in a ``sync_response``
    sync_missed_cap: int = 100
    #: a client frame longer than this (UTF-16 code units) gets "Message too large"
    max_client_message_chars: int = 32_768
    #: bound of the in-memory rate-limit fallback (users)
    max_fallback_rate_entries: int = 10_000
    #: with Redis: how often a process refreshes its liveness entry, and how long the
    #: entry lives (a process silent this long is dead: its replies fail)
    process_beat_s: float = 1.0
    process_ttl_s: float = 5.0
