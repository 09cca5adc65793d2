"""HTTP plumbing shared by the ``/api/auth/*`` endpoints: responses in Better Auth's
shapes, cookies, client addresses and the checks better-call runs before a handler."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import orjson
from blacksheep import Content, Request, Response

from arinova.auth import errors as msg
from arinova.auth.authenticator import Authenticator
from arinova.auth.cookies import SESSION_MAX_AGE_S, parse_cookie_header, sign
from arinova.auth.errors import AuthError
from arinova.auth.records import SessionRecord
from arinova.errors import ApiError
from arinova.http.body import read_json

JSON_TYPE = b"application/json; charset=utf-8"
TEXT_TYPE = b"text/plain; charset=utf-8"
AUTH_PREFIX = "/api/auth"

Handler = Callable[[Request], Awaitable[Response]]


class Reply:
    """A response under construction: status, body, headers and several Set-Cookie."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.headers: list[tuple[bytes, bytes]] = []

    def cookie(self, value: str) -> Reply:
        self.headers.append((b"set-cookie", value.encode()))
        return self

    def header(self, name: str, value: str) -> Reply:
        if name == "location":
            value = url_safe(value)
        self.headers.append((name.encode(), value.encode()))
        return self

    def _finish(self, content: Content | None) -> Response:
        response = Response(self.status, None, content)
        for name, value in self.headers:
            response.add_header(name, value)
        return response

    def json(self, body: Any) -> Response:
        return self._finish(Content(JSON_TYPE, orjson.dumps(body)))

    def empty(self, content_type: bytes = TEXT_TYPE) -> Response:
        return self._finish(Content(content_type, b""))

    def redirect(self, location: str, content_type: bytes = JSON_TYPE) -> Response:
        """302 with an empty body; better-call's redirects keep its JSON content type."""
        self.status = 302
        return self.header("location", location).empty(content_type)


def url_safe(url: str) -> str:
    """``url`` with control characters, spaces and non-ASCII characters percent-encoded
    (UTF-8), as a URL parser serialises them: a ``Location`` made from request input
    (a provider name, a callbackURL) is then always a valid header value."""
    if all("!" <= ch <= "~" for ch in url):
        return url
    return "".join(ch if "!" <= ch <= "~" else quote(ch, safe="", errors="replace") for ch in url)


def error_response(error: AuthError, cookies: list[str] | None = None) -> Response:
    reply = Reply(error.status)
    for value in cookies or []:
        reply.cookie(value)
    if error.body is None:
        return reply.empty(JSON_TYPE)
    return reply.json(error.body)


def api_error_response(error: ApiError) -> Response:
    reply = Reply(error.status)
    for name, value in error.headers.items():
        reply.header(name, value)
    if error.body is None:
        return reply.empty(error.content_type.encode())
    return reply._finish(Content(error.content_type.encode(), orjson.dumps(error.body)))


def rate_limited(retry_after: int) -> Response:
    # Better Auth builds this from a string and sets no content type: Fetch's default.
    body = orjson.dumps({"message": msg.RATE_LIMITED})
    response = Response(429, None, Content(b"text/plain;charset=UTF-8", body))
    response.add_header(b"x-retry-after", str(retry_after).encode())
    return response


async def read_auth_body(request: Request) -> Any:
    """The body Better Auth saw behind the original's proxy: the parsed JSON, except that
    a falsy value (``null``, ``false``, ``0``, ``""``) was not forwarded at all."""
    body = await read_json(request)
    if body is None or body is False or body == "":
        return None
    if isinstance(body, int | float) and not isinstance(body, bool) and body == 0:
        return None
    return body


def header(request: Request, name: bytes) -> str | None:
    value = request.get_first_header(name)
    return None if value is None else value.decode("latin-1")


def cookies_of(request: Request) -> dict[str, str]:
    values = request.get_headers(b"cookie")
    if not values:
        return {}
    return parse_cookie_header("; ".join(v.decode("latin-1") for v in values))


def query_value(request: Request, name: str) -> str | None:
    values = request.query.get(name)
    return values[0] if values else None


def session_ip(request: Request, development: bool) -> str:
    """What Better Auth stores in ``session.ip_address``: the first ``X-Forwarded-For``
    entry when it is a valid address, else ``""`` (``127.0.0.1`` in development)."""
    forwarded = header(request, b"x-forwarded-for")
    if forwarded:
        candidate = forwarded.split(",")[0].strip()
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            pass
    return "127.0.0.1" if development else ""


def set_session_cookies(
    reply: Reply,
    auth: Authenticator,
    session: SessionRecord,
    *,
    dont_remember: bool,
    max_age: int | None = None,
) -> None:
    """Better Auth's setSessionCookie: the signed token (no Max-Age when the user asked
    not to be remembered, then also the signed ``dont_remember`` cookie)."""
    secret = auth.settings.better_auth_secret
    names = auth.cookies
    age = None if dont_remember else (SESSION_MAX_AGE_S if max_age is None else max_age)
    reply.cookie(names.set_cookie(names.session_token, sign(session.token, secret), age))
    if dont_remember:
        reply.cookie(names.set_cookie(names.dont_remember, sign("true", secret), None))


def check_origin(request: Request, auth: Authenticator, *, force: bool = False) -> None:
    """better-call's origin check for a state-changing request that carries cookies."""
    if "cookie" not in _header_names(request) and not force:
        return
    origin = header(request, b"origin") or header(request, b"referer") or ""
    if not origin or origin == "null":
        raise AuthError(403, msg.MISSING_OR_NULL_ORIGIN)
    if not auth.origins.trusts(origin):
        raise AuthError(403, msg.INVALID_ORIGIN)


def _header_names(request: Request) -> set[str]:
    return {name.decode("latin-1").lower() for name, _ in request.headers}


def check_callback_urls(auth: Authenticator, body: Any, request: Request) -> None:
    """Callback URLs in the body (or ``callbackURL`` in the query) must be relative
    paths or trusted origins."""
    source: Mapping[str, Any] = body if isinstance(body, dict) else {}
    checks = (
        ("callbackURL", source.get("callbackURL") or query_value(request, "callbackURL")),
        ("redirectURL", source.get("redirectTo")),
        ("errorCallbackURL", source.get("errorCallbackURL")),
        ("newUserCallbackURL", source.get("newUserCallbackURL")),
    )
    for label, url in checks:
        if isinstance(url, str) and url and not auth.origins.trusts(url, allow_relative=True):
            raise AuthError(403, f"Invalid {label}")


def check_form_csrf(request: Request, auth: Authenticator) -> None:
    """Sign-in and sign-up: Fetch Metadata protection for requests without cookies."""
    if "cookie" in _header_names(request):
        check_origin(request, auth)
        return
    site = (header(request, b"sec-fetch-site") or "").strip()
    mode = (header(request, b"sec-fetch-mode") or "").strip()
    dest = (header(request, b"sec-fetch-dest") or "").strip()
    if not (site or mode or dest):
        return
    if site == "cross-site" and mode == "navigate":
        raise AuthError(403, msg.CROSS_SITE_NAVIGATION)
    check_origin(request, auth, force=True)
