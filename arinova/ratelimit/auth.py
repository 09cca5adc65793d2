"""Better Auth's own limiter, on only in production (contract rest.md §3.2.8).

Per client IP and path under ``/api/auth``: 100 requests per 10 s, but 3 per 10 s for
``/sign-in*``, ``/sign-up*``, ``/change-password*`` and ``/change-email*``. A request is
refused while the previous one is less than a window old and the count has reached the
limit; a gap longer than the window resets the count. The window thus restarts with
every accepted request and refused ones are not counted, so this is not a
``FixedWindow``: the state is ``[count, last accepted ms]``, kept in the shared key-value
store (``auth:rl:<ip><path>``) with the window as TTL. The client IP is the peer address,
or the ``X-Forwarded-For`` entry ``TRUST_PROXY`` trusts (``client_ip``; quirk Q51 fixed:
the original trusted the header from anyone).
"""

from __future__ import annotations

import logging
import math
import time

import orjson

from arinova.kv import KV, keys

log = logging.getLogger("arinova.auth")

WINDOW_S = 10
MAX_REQUESTS = 100
STRICT_MAX = 3
_STRICT_PREFIXES = ("/sign-in", "/sign-up", "/change-password", "/change-email")


def limit_for(path: str) -> int:
    return STRICT_MAX if path.startswith(_STRICT_PREFIXES) else MAX_REQUESTS


class AuthRateLimiter:
    def __init__(self, kv: KV) -> None:
        self.kv = kv

    async def retry_after(self, ip: str, path: str) -> int | None:
        """Count the request; seconds to wait when it is refused, else None."""
        key = keys.auth_rate(ip, path)
        limit = limit_for(path)
        now_ms = int(time.time() * 1000)
        try:
            raw = await self.kv.get(key)
        except Exception:
            log.warning("auth limiter: store unavailable, request not counted", exc_info=True)
            return None
        count, last = 0, 0
        if raw is not None:
            try:
                count, last = orjson.loads(raw)
            except (orjson.JSONDecodeError, ValueError, TypeError):
                count, last = 0, 0
        since = now_ms - last
        if raw is not None and since < WINDOW_S * 1000 and count >= limit:
            return math.ceil((last + WINDOW_S * 1000 - now_ms) / 1000)
        count = 1 if raw is None or since > WINDOW_S * 1000 else count + 1
        try:
            await self.kv.set(key, orjson.dumps([count, now_ms]), ex=WINDOW_S)
        except Exception:
            log.warning("auth limiter: store unavailable, request not counted", exc_info=True)
        return None
