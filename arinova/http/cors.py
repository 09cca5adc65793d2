"""CORS exactly as the original (@fastify/cors with ``credentials: true``, rest.md §1.4).

Every response: ``Vary: Origin``, ``Access-Control-Allow-Credentials: true`` and, when
the request's ``Origin`` is allowed, ``Access-Control-Allow-Origin: <that origin>``.
Every ``OPTIONS`` request is a preflight, answered here whatever the path.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from blacksheep import Content, Request, Response

ALLOWED_METHODS: Final = b"GET, HEAD, POST, PUT, DELETE, PATCH"
INVALID_PREFLIGHT: Final = b"Invalid Preflight Request"

Headers = list[tuple[bytes, bytes]]


class Cors:
    def __init__(self, origins: Iterable[str]) -> None:
        allowed = tuple(origins)
        self.any_origin = "*" in allowed
        self.allowed = frozenset(o.encode() for o in allowed)

    def allows(self, origin: bytes | None) -> bool:
        if not origin:
            return False
        return self.any_origin or origin in self.allowed

    def headers(self, origin: bytes | None, vary: bytes = b"Origin") -> Headers:
        """The headers every response carries."""
        if origin and (self.any_origin or origin in self.allowed):
            return [
                (b"vary", vary),
                (b"access-control-allow-origin", origin),
                (b"access-control-allow-credentials", b"true"),
            ]
        return [(b"vary", vary), (b"access-control-allow-credentials", b"true")]

    def preflight(self, request: Request) -> Response:
        origin = request.get_first_header(b"origin")
        method = request.get_first_header(b"access-control-request-method")
        if not origin or not method:
            headers = self.headers(origin)
            return Response(400, headers, Content(b"text/plain", INVALID_PREFLIGHT))
        headers = self.headers(origin, b"Origin, Access-Control-Request-Headers")
        headers.append((b"access-control-allow-methods", ALLOWED_METHODS))
        requested = request.get_first_header(b"access-control-request-headers")
        if requested is not None:
            headers.append((b"access-control-allow-headers", requested))
        headers.append((b"content-length", b"0"))
        return Response(204, headers, None)
