"""Request bodies exactly as the original parses them (contract rest.md §1.2).

The original parses the body of every POST/PUT/PATCH/DELETE/OPTIONS request *before*
the handler runs (Fastify 5.7.4 ``handle-request.js``), so a malformed body answers 400
even on a route that never looks at it, and before the session check. The shared
pipeline therefore calls ``parse_body`` for every matched route (and
``parse_unrouted_body`` before a 404); handlers then call ``read_json`` to get the
already-parsed value. The content type is normalised as Fastify's ``ContentType`` does:
lower-case type/subtype, parameters re-quoted (``Unsupported Media Type: text/xml;
charset="utf-8"``).

=====================================  ===============================================
content type                           result
=====================================  ===============================================
``application/json`` (any parameters)  parsed JSON; empty → 400, malformed or with
                                       ``__proto__`` / ``constructor.prototype`` keys →
                                       400, over 1 MiB → 413
``text/plain``                         ``str`` (UTF-8, invalid bytes replaced)
``multipart/form-data``                ``None``; the body stream is left for the upload
                                       handler
another valid type                     415 ``Unsupported Media Type: <normalised type>``
malformed (no ``/``, empty)            415 ``Unsupported Media Type: %s`` (sic)
none, with a body                      415 ``Unsupported Media Type: undefined``
none, no body                          ``None``
=====================================  ===============================================

On an unknown route only the known types are parsed (their errors win over the 404),
and a malformed content type still answers 415; anything else gets the 404.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any, Final

import orjson
from blacksheep import Content, Request

from arinova import js
from arinova.compat import request_cache
from arinova.errors import ApiError

#: Fastify's default ``bodyLimit``
BODY_LIMIT: Final = 1_048_576

EMPTY_JSON = "Body cannot be empty when content-type is set to 'application/json'"
INVALID_JSON = "Body is not valid JSON but content-type is set to 'application/json'"
TOO_LARGE = "Request body is too large"
UNSUPPORTED = "Unsupported Media Type: "

#: methods whose bodies the original parses (Fastify's "bodywith" set)
BODY_METHODS: Final = frozenset(("POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
#: media types the original has a parser for
PARSERS: Final = {
    "application/json": "json",
    "text/plain": "text",
    "multipart/form-data": "multipart",
}

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
    cache = request_cache(request)
    parsed = cache.get(_PARSED_ATTR, _MISSING)
    if parsed is _MISSING:
        parsed = await _parse(request)
        cache[_PARSED_ATTR] = parsed
    return parsed


async def parse_body(request: Request) -> None:
    """Parse the body now if the original would (used by the shared pipeline)."""
    if request.method in BODY_METHODS:
        await read_json(request)


async def parse_unrouted_body(request: Request) -> None:
    """What the original does with the body of a request to an unknown route: the
    known parsers still run (400/413 before the 404), a malformed content type is a 415,
    and anything else is left alone."""
    if request.method not in BODY_METHODS:
        return
    header = request.get_first_header(b"content-type")
    if header is None:
        return
    media = media_type(header)
    if media is None:
        raise ApiError.framework(415, UNSUPPORTED + "%s")
    if media[0] in PARSERS:
        await read_json(request)


async def _parse(request: Request) -> Any:
    if request.method not in BODY_METHODS:
        return None
    header = request.get_first_header(b"content-type")
    if header is None:
        if _is_empty(request):
            return None
        raise ApiError.framework(415, UNSUPPORTED + "undefined")
    media = media_type(header)
    if media is None:
        raise ApiError.framework(415, UNSUPPORTED + "%s")
    kind = PARSERS.get(media[0])
    if kind == "json":
        return _parse_json(await _read_limited(request))
    if kind == "text":
        return (await _read_limited(request)).decode("utf-8", "replace")
    if kind == "multipart":
        return None
    raise ApiError.framework(415, UNSUPPORTED + media[1])


def _is_empty(request: Request) -> bool:
    """No content type and no body to parse: no transfer coding, length absent or "0"."""
    if request.get_first_header(b"transfer-encoding") is not None:
        return False
    length = request.get_first_header(b"content-length")
    return length is None or length == b"0"


_TOKEN = r"[\w!#$%&'*+.^`|~-]"
_TYPE_NAME = re.compile(_TOKEN + r"+\Z", re.ASCII)
_SUBTYPE_START = re.compile(_TOKEN + "+", re.ASCII)
_PARAMETER = re.compile(f"({_TOKEN}+)=([^;]*)", re.ASCII)
_MEDIA_CACHE: dict[bytes, tuple[str, str] | None] = {}
_MEDIA_CACHE_SIZE: Final = 100


def media_type(header: bytes) -> tuple[str, str] | None:
    """``(type/subtype, normalised header)`` as Fastify's ``ContentType`` reads a
    ``content-type`` value, or ``None`` when it is malformed."""
    cached = _MEDIA_CACHE.get(header, _MISSING)
    if cached is not _MISSING:
        return cached  # type: ignore[return-value]
    result = _normalise(header.decode("latin-1"))
    if len(_MEDIA_CACHE) >= _MEDIA_CACHE_SIZE:
        _MEDIA_CACHE.clear()
    _MEDIA_CACHE[header] = result
    return result


def _normalise(text: str) -> tuple[str, str] | None:
    if text in ("", "undefined"):
        return None
    semicolon = text.find(";")
    head = text if semicolon == -1 else text[:semicolon].lower()
    slash = head.find("/")
    if slash == -1:
        return None
    if semicolon == -1:
        type_, subtype = head[:slash].lstrip().lower(), head[slash + 1 :].rstrip().lower()
    else:
        type_, subtype = head[:slash].lstrip(), head[slash + 1 :].rstrip()
    if not _TYPE_NAME.match(type_) or not _SUBTYPE_START.match(subtype):
        return None
    media = f"{type_}/{subtype}"
    if semicolon == -1:
        return media, media
    parameters: dict[str, str] = {}
    for found in _PARAMETER.finditer(text[semicolon + 1 :].strip()):
        key, value = found.group(1), found.group(2)
        if value[:1] == '"':
            value = value[1:-1] if value[-1] == '"' else "invalid quoted string"
        parameters[key] = value
    if not parameters:
        return media, media
    return media, media + "; " + "; ".join(f'{k}="{v}"' for k, v in parameters.items())


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


class BufferedContent(Content):
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


def _parse_json_slow(body: bytes) -> Any:
    """What JSON.parse accepts and orjson refuses (``arinova.js.json_parse``), with lone
    surrogates replaced by U+FFFD, as the original's UTF-8 writer stored them."""
    try:
        value = js.json_parse(body)
    except ValueError:
        raise _body_error(400, INVALID_JSON) from None
    return js.well_formed_value(value) if b"\\u" in body else value


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
