"""Request bodies exactly as the original parses them (contract rest.md §1.2).

The original parses the body of every POST/PUT/PATCH request (and of DELETE/OPTIONS
requests that declare a content type and carry a body) *before* the handler runs, so a
malformed body answers 400 even on a route that never looks at it, and before the
session check. The shared pipeline therefore calls ``parse_body`` for every matched
route; handlers then call ``read_json`` to get the already-parsed value.

=====================================  ===============================================
content type                           result
=====================================  ===============================================
``application/json`` (any parameters)  parsed JSON; empty → 400, malformed or with
                                       ``__proto__`` / ``constructor.prototype`` keys →
                                       400, over 1 MiB → 413
``text/plain``                         ``str`` (UTF-8, invalid bytes replaced)
``multipart/form-data``                ``None``; the body stream is left for the upload
                                       handler
anything else                          415 ``Unsupported Media Type: <content-type>``
no content type, or no body            ``None``
=====================================  ===============================================
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any, Final

import orjson
from blacksheep import Content, Request

from arinova.errors import ApiError

#: Fastify's default ``bodyLimit``
BODY_LIMIT: Final = 1_048_576

EMPTY_JSON = "Body cannot be empty when content-type is set to 'application/json'"
INVALID_JSON = "Body is not valid JSON but content-type is set to 'application/json'"
TOO_LARGE = "Request body is too large"

#: a body error makes the original close the connection (the client may still be sending)
_CLOSE: Final = {"connection": "close"}

_PARSED_ATTR: Final = "_arinova_body"
_MISSING: Final = object()


async def read_json(request: Request) -> Any:
    """The request body as a handler of the original sees it (see the module table).

    Returns the parsed JSON value (any JSON type), a ``str`` for ``text/plain``, or
    ``None`` when there is no body (then validate: a route that needs an object should
    pass the value to ``validate.Obj.parse``, which answers 400 for ``None``).
    Raises ``ApiError`` (400/413/415, ``{"error": ..., "code": "INTERNAL_ERROR"}``).
    Reading twice returns the same value.
    """
    parsed = request.__dict__.get(_PARSED_ATTR, _MISSING)
    if parsed is _MISSING:
        parsed = await _parse(request)
        request.__dict__[_PARSED_ATTR] = parsed
    return parsed


async def parse_body(request: Request) -> None:
    """Parse the body now if the original would (used by the shared pipeline)."""
    if request.method in ("GET", "HEAD"):
        return
    await read_json(request)


async def _parse(request: Request) -> Any:
    method = request.method
    content_type = request.get_first_header(b"content-type")
    if method in ("POST", "PUT", "PATCH"):
        if content_type is None:
            return None
    elif method in ("DELETE", "OPTIONS"):
        if content_type is None or not _declares_body(request):
            return None
    else:
        return None

    media_type = content_type.split(b";", 1)[0].strip().lower()
    if media_type == b"application/json":
        return _parse_json(await _read_limited(request))
    if media_type == b"text/plain":
        return (await _read_limited(request)).decode("utf-8", "replace")
    if media_type == b"multipart/form-data":
        return None
    raise ApiError.framework(415, f"Unsupported Media Type: {content_type.decode('latin-1')}")


def _declares_body(request: Request) -> bool:
    return (
        request.get_first_header(b"content-length") is not None
        or request.get_first_header(b"transfer-encoding") is not None
    )


async def _read_limited(request: Request) -> bytes:
    """Read the whole body, refusing (without buffering it) one over ``BODY_LIMIT``."""
    declared = request.get_first_header(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > BODY_LIMIT:
        raise _body_error(413, TOO_LARGE)
    content = request.content
    if content is None:
        return b""
    if content.body is not None:
        return bytes(content.body)
    buffer = bytearray()
    async for chunk in content.stream():
        if chunk:
            buffer += chunk
            if len(buffer) > BODY_LIMIT:
                raise _body_error(413, TOO_LARGE)
    body = bytes(buffer)
    # later readers (request.read(), request.json()) see the same bytes
    request.content = BufferedContent(content_type_of(request), body)
    return body


class BufferedContent(Content):  # type: ignore[misc]
    """A body already read from the socket, still readable as a stream."""

    async def stream(self) -> AsyncIterator[bytes]:
        yield self.body
        yield b""


def content_type_of(request: Request) -> bytes:
    return request.get_first_header(b"content-type") or b"application/octet-stream"


def _body_error(status: int, message: str) -> ApiError:
    error = ApiError.framework(status, message)
    error.headers.update(_CLOSE)
    return error


def _parse_json(body: bytes) -> Any:
    if not body:
        raise _body_error(400, EMPTY_JSON)
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        value = _parse_json_slow(body)
    if (b"__proto__" in body or b"constructor" in body or b"\\u" in body) and _is_poisoned(value):
        raise _body_error(400, INVALID_JSON)
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _parse_json_slow(body: bytes) -> Any:
    """What JSON.parse accepts and orjson refuses: invalid UTF-8 (Node decodes it with
    replacement characters), integers beyond 64 bits (JSON.parse makes them floats) and
    lone surrogate escapes (stored by the original as U+FFFD, as its UTF-8 writer does)."""
    try:
        text = body.decode("utf-8", "replace")
        value = json.loads(text, parse_int=_js_int, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise _body_error(400, INVALID_JSON) from None
    return _without_lone_surrogates(value) if b"\\u" in body else value


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _fix_text(text: str) -> str:
    return _LONE_SURROGATE.sub("\ufffd", text)


def _without_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _fix_text(value)
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_fix_text(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


def _js_int(text: str) -> int | float:
    value = int(text)
    return value if -(2**63) <= value < 2**64 else float(value)


def _is_poisoned(value: Any) -> bool:
    """Fastify's prototype-poisoning check: an own ``__proto__`` key anywhere, or a
    ``constructor`` key whose value is an object with a ``prototype`` key."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__proto__" in node:
                return True
            ctor = node.get("constructor")
            if isinstance(ctor, dict) and "prototype" in ctor:
                return True
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))
    return False
