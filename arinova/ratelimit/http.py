"""The global HTTP rate limit (rest.md §1.5, quirks Q04/Q05 fixed as decided).

A fixed window per client that starts at the client's first request: at most
``settings.rate_limit_max`` requests per ``settings.rate_limit_window_s``. Each worker counts
its clients in process and shares the counts through the key-value store
(``http:rate:<ip>``) every tenth of a second (``batched.py``), sooner for a client close to
its limit: a request costs no round trip, and the limit holds across workers within a
few requests. The client is the address ``client_ip`` finds (the TCP peer, or an
``X-Forwarded-For`` entry as ``settings.trust_proxy`` allows). If the store fails, each
worker goes on limiting with its own counts.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Final

from arinova.errors import ApiError
from arinova.kv import keys
from arinova.ratelimit.batched import BatchedWindow

if TYPE_CHECKING:
    from blacksheep import Request

    from arinova.kv import KV
    from arinova.settings import Settings

#: clients whose windows a worker holds at once (ended windows go first, then the oldest)
MAX_CLIENTS: Final = 100_000

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
    def __init__(self, kv: KV, settings: Settings, *, max_clients: int = MAX_CLIENTS) -> None:
        self.limit = settings.rate_limit_max
        self.counts = BatchedWindow(
            kv, settings.rate_limit_window_s, max_keys=max_clients, limit=self.limit
        )
        self.trust_proxy = settings.trust_proxy
        self._limit_header = str(self.limit).encode()

    async def start(self) -> None:
        await self.counts.start()

    async def stop(self) -> None:
        await self.counts.stop()

    def hit(self, request: Request) -> Headers:
        """Count the request. Returns the ``x-ratelimit-*`` headers for the response;
        raises the 429 ``ApiError`` when the client is over the limit."""
        count, left_s = self.counts.hit(keys.http_rate(client_ip(request, self.trust_proxy)))
        reset = str(max(math.ceil(left_s - 0.0005), 0)).encode()
        if count <= self.limit:
            return [
                (b"x-ratelimit-limit", self._limit_header),
                (b"x-ratelimit-remaining", str(self.limit - count).encode()),
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
