"""The one error type of the REST layer and the bodies the original sends.

Handlers raise ``ApiError``; the error middleware renders it. The constructors name the
body families of the original server (contract ``rest.md`` §1.6).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

INTERNAL_ERROR = "INTERNAL_ERROR"
RATE_LIMIT_MESSAGE = "Too many requests. Please try again later."


class ApiError(Exception):
    """An HTTP error with the exact JSON body (``None`` = empty body) a client sees."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json; charset=utf-8",
    ) -> None:
        super().__init__(f"{status} {body!r}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.content_type = content_type

    # -- body families -------------------------------------------------------------
    @classmethod
    def message(cls, status: int, error: str) -> ApiError:
        """A handler's own reply: ``{"error": "..."}`` (e.g. 404 ``Agent not found``)."""
        return cls(status, {"error": error})

    @classmethod
    def framework(cls, status: int, error: str) -> ApiError:
        """A request-level failure below 500: ``{"error": ..., "code": "INTERNAL_ERROR"}``."""
        return cls(status, {"error": error, "code": INTERNAL_ERROR})

    @classmethod
    def internal(cls) -> ApiError:
        return cls(500, {"error": "Internal server error", "code": INTERNAL_ERROR})

    @classmethod
    def validation(cls, details: str) -> ApiError:
        """Invalid request body (decisions.md Q01)."""
        return cls(
            400, {"error": "Validation error", "code": "VALIDATION_ERROR", "details": details}
        )

    @classmethod
    def rate_limited(cls, headers: Mapping[str, str]) -> ApiError:
        return cls(429, {"error": RATE_LIMIT_MESSAGE, "code": "RATE_LIMIT"}, headers)

    @classmethod
    def unauthorized(cls) -> ApiError:
        return cls(401, {"error": "Unauthorized"})

    @classmethod
    def auth(cls, status: int, code: str, message: str) -> ApiError:
        """A Better Auth style error: ``{"code": ..., "message": ...}``."""
        return cls(status, {"code": code, "message": message})

    @classmethod
    def route_not_found(cls, method: str, raw_url: str) -> ApiError:
        """The router's 404 for an unknown route, in Fastify's own shape."""
        return cls(
            404,
            {
                "message": f"Route {method}:{raw_url} not found",
                "error": "Not Found",
                "statusCode": 404,
            },
        )
