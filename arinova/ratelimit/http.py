"""The global HTTP rate limit (rest.md §1.5, quirks Q04/Q05 fixed as decided).

A fixed window per client that starts at the client's first request: at most
``settings.rate_limit_max`` requests per ``settings.rate_limit_window_s``. Counters live
in the key-value store (``http:rate:<ip>``) so every worker of a deployment shares them.
The client is the address ``client_ip`` finds (the TCP peer, or an ``X-Forwarded-For``
entry as ``settings.trust_proxy`` allows). If the store fails, requests are let through (and the
store is left alone for a second) rather than failing.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Final

from arinova.errors import ApiError
from arinova.kv import keys
from arinova.ratelimit.window import FixedWindow

if TYPE_CHECKING:
    from blacksheep import Request

    from arinova.kv import KV
    from arinova.settings import Settings

#: after a store failure, skip limiting for this long
FAIL_OPEN_S: Final = 1.0

Headers = list[tuple[bytes, bytes]]

log = logging.getLogger("arinova.http")


def client_ip(request: Request, trust_proxy: bool | int) -> str:
    """The client's address as Express/Fastify (``proxy-addr``) find it: walking from the
    TCP peer outwards through ``X-Forwarded-For`` (every such header, in order, as Node
    joins them), trusting ``trust_proxy`` hops. With N hops the client is the N-th entry
    from the right (1: the right-most, the one the nearest proxy wrote), or the left-most
    when the chain is shorter; ``True`` trusts every hop (the left-most entry), ``False``
    or 0 none (the peer). Entries a client sent beyond the trusted hops are never used."""
    scope = request.scope
    client = scope.get("client") if scope else None
    peer = str(client[0]) if client else ""
    if trust_proxy is False or trust_proxy <= 0:
        return peer
    headers = request.get_headers(b"x-forwarded-for")
    if not headers:
        return peer
    chain = b",".join(headers).split(b",")
    hops = len(chain) if trust_proxy is True else trust_proxy
    entry = chain[max(len(chain) - hops, 0)].strip()
    return entry.decode("latin-1") if entry else peer


class RateLimiter:
    def __init__(self, kv: KV, settings: Settings) -> None:
        self._kv = kv
        self.limit = settings.rate_limit_max
        self._window = FixedWindow(settings.rate_limit_window_s * 1000)
        self.trust_proxy = settings.trust_proxy
        self._limit_header = str(self.limit).encode()
        self._skip_until = 0.0

    async def hit(self, request: Request) -> Headers | None:
        """Count the request. Returns the ``x-ratelimit-*`` headers for the response
        (``None`` when the store is unavailable); raises the 429 ``ApiError`` when the
        client is over the limit."""
        if self._skip_until and time.monotonic() < self._skip_until:
            return None
        key = keys.http_rate(client_ip(request, self.trust_proxy))
        try:
            hit = await self._window.hit(self._kv, key)
        except Exception as exc:
            if not self._skip_until:
                log.warning("rate limit store unavailable, not limiting: %s", exc)
            self._skip_until = time.monotonic() + FAIL_OPEN_S
            return None
        self._skip_until = 0.0
        reset = str(-(-hit.reset_ms // 1000)).encode()
        if hit.count <= self.limit:
            return [
                (b"x-ratelimit-limit", self._limit_header),
                (b"x-ratelimit-remaining", str(self.limit - hit.count).encode()),
                (b"x-ratelimit-reset", reset),
            ]
        raise ApiError.rate_limited(
            {
                "x-ratelimit-limit": self._limit_header.decode(),
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": reset.decode(),
                "retry-after": reset.decode(),
            }
        )
