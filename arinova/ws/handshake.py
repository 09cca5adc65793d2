"""The WebSocket opening handshake (RFC 6455 §4.2), answered the way Node ``ws`` does."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from http import HTTPStatus

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# A base64 encoding of 16 bytes, exactly as ``ws`` checks it.
_KEY_RE = re.compile(r"[+/0-9A-Za-z]{22}==")
# RFC 6455 §4.4: the one version spoken; any other gets 426 naming it.
_VERSION = "13"


@dataclass(frozen=True, slots=True)
class RequestHead:
    """What an endpoint sees of an upgrade request before it accepts the socket."""

    method: str
    path: str
    #: the raw query string, without the ``?``
    query: str
    #: header names in lower case, values as sent (latin-1), in arrival order
    headers: tuple[tuple[str, str], ...]
    #: (host, port) of the peer, as the transport reports it
    peer: tuple[str, int] | None

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_tokens(self, name: str) -> list[str]:
        """Comma-separated tokens of every ``name`` header, stripped and lower-cased."""
        return [
            token.strip().lower()
            for key, value in self.headers
            if key == name
            for token in value.split(",")
        ]


@dataclass(frozen=True, slots=True)
class HttpRejection:
    """An HTTP answer that refuses the upgrade (the connection is closed after it)."""

    status: int
    message: str = ""
    #: extra response headers, after ``Connection`` and ``Content-Type``
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self) -> bytes:
        return http_error(self.status, self.message, self.headers)


def http_error(status: int, message: str = "", headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """An error response written straight to the socket, byte for byte as ``ws``'s
    ``abortHandshake``: ``Connection: close``, an HTML content type, the reason phrase as
    the body when no message is given."""
    phrase = HTTPStatus(status).phrase
    body = (message or phrase).encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Connection: close\r\n"
        "Content-Type: text/html\r\n"
        f"{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def bare_error(status: int) -> bytes:
    """Node's own answer to a request it cannot parse in time or size: no body."""
    return f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nConnection: close\r\n\r\n".encode()


def is_upgrade_request(head: RequestHead) -> bool:
    """Node hands a request to its WebSocket server only with ``Connection: upgrade`` and
    an ``Upgrade`` header; any other request is plain HTTP (a GET on /ws is then a 404)."""
    return "upgrade" in head.header_tokens("connection") and head.header("upgrade") is not None


def check_handshake(head: RequestHead) -> HttpRejection | None:
    """None when the upgrade request is valid, else the rejection ``ws`` would send."""
    upgrade = head.header("upgrade")
    if upgrade is None or upgrade.strip().lower() != "websocket":
        return HttpRejection(400, "Invalid Upgrade header")
    key = head.header("sec-websocket-key")
    if key is None or not _KEY_RE.fullmatch(key.strip()):
        return HttpRejection(400, "Missing or invalid Sec-WebSocket-Key header")
    version = head.header("sec-websocket-version")
    if version is None or not version.strip():
        return HttpRejection(400, "Missing or invalid Sec-WebSocket-Version header")
    if version.strip() != _VERSION:
        return HttpRejection(
            426,
            "Unsupported Sec-WebSocket-Version header",
            (("Sec-WebSocket-Version", _VERSION),),
        )
    return None


def accept_key(key: str) -> str:
    digest = hashlib.sha1(key.strip().encode("ascii") + _GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def switching_protocols(key: str) -> bytes:
    """The 101 answer: no extension (never permessage-deflate), no sub-protocol."""
    return (
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
    ).encode()
