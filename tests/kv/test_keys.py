"""The key names of ``arinova.kv.keys``, byte for byte (behaviours.md §13 for the
original's; the others are this server's and shared between its versions)."""

from __future__ import annotations

from uuid import UUID

from arinova.kv import keys

AGENT = UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")


def test_key_names() -> None:
    assert keys.ws_rate("u1", 29_000_000) == "ws:rate:u1:29000000"
    assert keys.stream("m1") == "stream:m1"
    assert keys.pending_ws_events("u1") == "pending_ws_events:u1"
    assert keys.agent_health(AGENT) == f"agent:health:{AGENT}"
    assert keys.agent_health(str(AGENT)) == f"agent:health:{AGENT}"
    assert keys.session_cache("d1") == "auth:sess:{d1}"
    assert keys.session_revoked("d1") == "auth:inval:{d1}"
    assert keys.auth_rate("127.0.0.1", "/sign-in/email") == "auth:rl:127.0.0.1/sign-in/email"
    assert keys.http_rate("192.0.2.1") == "http:rate:192.0.2.1"
    assert keys.push_dedup("u1", "message") == "push:dedup:u1:message"
