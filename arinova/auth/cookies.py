"""Better Auth's cookies: names, the signed value format and ``Set-Cookie`` strings.

A signed value is ``encodeURIComponent(value + "." + base64(HMAC-SHA256(secret, value)))``
with the standard, padded base64 alphabet (contract rest.md §3.2.1), so cookies minted by
the original server stay valid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote, unquote

SESSION_MAX_AGE_S = 30 * 24 * 3600
STATE_MAX_AGE_S = 300
SECURE_PREFIX = "__Secure-"
#: characters ``encodeURIComponent`` leaves alone
_URI_COMPONENT_SAFE = "-_.!~*'()"
_SIGNATURE_LENGTH = 44


def _signature(value: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), value.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def sign(value: str, secret: str) -> str:
    """The cookie value for ``value``, URL-encoded as it appears in ``Set-Cookie``."""
    return quote(f"{value}.{_signature(value, secret)}", safe=_URI_COMPONENT_SAFE)


def unsign(decoded: str, secret: str) -> str | None:
    """The value inside an (already URL-decoded) signed cookie, or None if it does not verify."""
    dot = decoded.rfind(".")
    if dot < 1:
        return None
    value, signature = decoded[:dot], decoded[dot + 1 :]
    if len(signature) != _SIGNATURE_LENGTH or not signature.endswith("="):
        return None
    try:
        given = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return None
    expected = hmac.new(secret.encode(), value.encode(), hashlib.sha256).digest()
    return value if hmac.compare_digest(given, expected) else None


def parse_cookie_header(header: str | None) -> dict[str, str]:
    """Name → URL-decoded value; the first occurrence of a name wins (as better-call does)."""
    cookies: dict[str, str] = {}
    if not header:
        return cookies
    for part in header.split(";"):
        name, eq, value = part.partition("=")
        if not eq:
            continue
        name = name.strip()
        if not name or name in cookies:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == '"':
            value = value[1:-1]
        try:
            cookies[name] = unquote(value, errors="strict")
        except UnicodeDecodeError:
            cookies[name] = value
    return cookies


@dataclass(frozen=True, slots=True)
class CookieNames:
    """The cookie names for one base URL (``__Secure-`` prefixed when it is https)."""

    secure: bool

    def _name(self, base: str) -> str:
        return f"{SECURE_PREFIX if self.secure else ''}better-auth.{base}"

    @property
    def session_token(self) -> str:
        return self._name("session_token")

    @property
    def session_data(self) -> str:
        return self._name("session_data")

    @property
    def dont_remember(self) -> str:
        return self._name("dont_remember")

    @property
    def state(self) -> str:
        return self._name("state")

    def set_cookie(self, name: str, value: str, max_age: int | None) -> str:
        """A ``Set-Cookie`` value with Better Auth's attribute order."""
        parts = [f"{name}={value}"]
        if max_age is not None:
            parts.append(f"Max-Age={max(0, int(max_age))}")
        parts.append("Path=/")
        parts.append("HttpOnly")
        if self.secure:
            parts.append("Secure")
        parts.append("SameSite=Lax")
        return "; ".join(parts)

    def expire(self, name: str) -> str:
        return self.set_cookie(name, "", 0)

    def expire_session(self) -> list[str]:
        """What sign-out and an expired session send: the three cookies, emptied."""
        return [
            self.expire(self.session_token),
            self.expire(self.session_data),
            self.expire(self.dont_remember),
        ]
