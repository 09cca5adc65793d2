"""Better Auth's trusted-origin rules: the Origin check on state-changing requests and
the callback URL check (contract rest.md §3.2.1)."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

from arinova.settings import Settings

_RELATIVE_PATH = re.compile(r"^/(?!/|\\|%2f|%5c)[\w\-.+/@]*(?:\?[\w\-.+/=&%@]*)?$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_origin(url: str) -> str | None:
    """``new URL(url).origin`` for http(s) URLs; None when there is none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def _url_host(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        return f"{parts.hostname}:{port}"
    return parts.hostname


@lru_cache(maxsize=64)
def _wildcard(pattern: str) -> re.Pattern[str]:
    out = []
    for char in pattern:
        if char == "*":
            out.append(r"[^/\\]*?")
        elif char == "?":
            out.append(r"[^/\\]")
        else:
            out.append(re.escape(char))
    return re.compile("^" + "".join(out) + "$")


def matches(url: str, pattern: str, *, allow_relative: bool) -> bool:
    if url.startswith("/"):
        return allow_relative and _RELATIVE_PATH.match(url) is not None
    if "*" in pattern or "?" in pattern:
        if "://" in pattern:
            return _wildcard(pattern).match(url_origin(url) or url) is not None
        host = _url_host(url)
        return host is not None and _wildcard(pattern).match(host) is not None
    scheme = urlsplit(url).scheme.lower() if ":" in url else ""
    if scheme in ("http", "https", ""):
        return pattern == url_origin(url)
    return url.startswith(pattern)


class TrustedOrigins:
    """``BETTER_AUTH_URL``'s origin, the ``CORS_ORIGIN`` entries and
    ``BETTER_AUTH_TRUSTED_ORIGINS``, as the original configured Better Auth."""

    def __init__(self, settings: Settings) -> None:
        patterns: list[str] = []
        base = url_origin(settings.better_auth_url)
        if base:
            patterns.append(base)
        patterns.extend(["*"] if settings.cors_any else settings.cors_origins)
        patterns.extend(settings.better_auth_trusted_origins)
        self.patterns = tuple(dict.fromkeys(p for p in patterns if p))

    def trusts(self, url: str, *, allow_relative: bool = False) -> bool:
        return any(matches(url, p, allow_relative=allow_relative) for p in self.patterns)
