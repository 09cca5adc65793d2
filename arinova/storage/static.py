"""``GET|HEAD /uploads/*``: files under ``UPLOAD_DIR`` as the original's static server
sent them (contract rest.md §3.13): weak ETag, Last-Modified, ``Cache-Control: public,
max-age=0``, single byte ranges, conditional requests, no directory listing.

Paths are decoded once; a path that climbs out of the root answers 403, a NUL byte or
an undecodable path 400, anything missing 404 with the router's body. Every file is
sent with ``X-Content-Type-Options: nosniff``; a type a browser could run script from
(HTML, SVG, XML, unknown …) is also sent as an attachment under a sandboxing CSP, so a
hostile upload or avatar never executes on the API origin (quirk Q29).
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import re
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Final

from blacksheep import Content, Request, Response, StreamedContent

from arinova import js
from arinova.errors import ApiError
from arinova.storage.mime import inline_safe, type_for_name, with_charset

PREFIX: Final = b"/uploads/"
#: files up to this size are read in one go; larger ones are streamed
WHOLE_READ_MAX: Final = 256 * 1024
CHUNK: Final = 64 * 1024

_UP_PATH: Final = re.compile(r"(?:^|[\\/])\.\.(?:[\\/]|$)")
_NO_CACHE: Final = re.compile(r"(?:^|,)\s*?no-cache\s*?(?:,|$)")
_BYTES_RANGE: Final = re.compile(r"^ *bytes=")

_SANDBOX_CSP: Final = b"default-src 'none'; style-src 'unsafe-inline'; sandbox"


class _Missing(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _File:
    path: Path
    size: int
    mtime_ms: int
    etag: str
    last_modified: str


async def serve_upload(request: Request, root: Path, raw_url: str) -> Response:
    """The response to a GET or HEAD of ``/uploads/…`` (``raw_url`` for the 404 body)."""
    raw_path: bytes = request.url.path
    if not raw_path.startswith(PREFIX) or raw_path == PREFIX:
        raise ApiError.route_not_found(request.method, raw_url)
    relative = _normalise(raw_path[len(PREFIX) :])
    try:
        found = await asyncio.to_thread(_stat_file, root, relative)
        return await _respond(request, found)
    except _Missing:
        raise ApiError.route_not_found(request.method, raw_url) from None


def _normalise(raw: bytes) -> str:
    """Decode the path once and refuse what could leave the root (403) or is not a
    path (400)."""
    try:
        decoded = js.unescape(raw).decode("utf-8")
    except (UnicodeDecodeError, js.URIError):
        raise ApiError.framework(400, "Bad Request") from None
    if "\0" in decoded:
        raise ApiError.framework(400, "Bad Request")
    normal = posixpath.normpath("./" + decoded)
    if _UP_PATH.search(normal):
        raise ApiError.framework(403, "Forbidden")
    if decoded.endswith("/"):
        normal += "/"
    return normal


def _stat_file(root: Path, relative: str) -> _File:
    if relative.endswith("/"):
        raise _Missing  # a directory path: no listing, no index files
    path = root / relative
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise _Missing from None
    except OSError as exc:
        if exc.errno == 36:  # ENAMETOOLONG
            raise _Missing from None
        raise
    if not stat.S_ISREG(info.st_mode):
        raise _Missing
    mtime_ms = info.st_mtime_ns // 1_000_000
    return _File(
        path=path,
        size=info.st_size,
        mtime_ms=mtime_ms,
        etag=f'W/"{info.st_size:x}-{mtime_ms:x}"',
        last_modified=formatdate(mtime_ms / 1000, usegmt=True),
    )


async def _respond(request: Request, found: _File) -> Response:
    headers = [
        (b"accept-ranges", b"bytes"),
        (b"cache-control", b"public, max-age=0"),
        (b"last-modified", found.last_modified.encode()),
        (b"etag", found.etag.encode()),
        (b"x-content-type-options", b"nosniff"),
    ]
    header = request.get_first_header
    if _is_conditional(request):
        if _precondition_failed(request, found):
            raise ApiError.framework(412, "Precondition Failed")
        if _is_fresh(request, found):
            return Response(304, headers, None)

    mime = type_for_name(found.path.name)
    if not inline_safe(mime):
        headers.append((b"content-disposition", b"attachment"))
        headers.append((b"content-security-policy", _SANDBOX_CSP))

    status = 200
    offset, length = 0, found.size
    range_header = _text(header(b"range"))
    if range_header is not None and _BYTES_RANGE.match(range_header):
        ranges = _parse_ranges(found.size, range_header)
        if not _range_fresh(request, found):
            ranges = None
        if ranges == []:
            error = ApiError.framework(416, "Range Not Satisfiable")
            error.headers["content-range"] = f"bytes */{found.size}"
            raise error
        if ranges is not None and len(ranges) == 1:
            start, end = ranges[0]
            status = 206
            offset, length = start, end - start + 1
            headers.append((b"content-range", f"bytes {start}-{end}/{found.size}".encode()))

    content_type = with_charset(mime).encode()
    if request.method == "HEAD":
        return Response(status, headers, StreamedContent(content_type, _no_body, length))
    if length <= WHOLE_READ_MAX:
        try:
            data = await asyncio.to_thread(_read, found.path, offset, length)
        except FileNotFoundError:
            raise _Missing from None
        return Response(status, headers, Content(content_type, data))
    return Response(status, headers, _stream(content_type, found.path, offset, length))


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


# -- conditional requests --------------------------------------------------------------


def _is_conditional(request: Request) -> bool:
    header = request.get_first_header
    return any(
        header(name) is not None
        for name in (b"if-match", b"if-unmodified-since", b"if-none-match", b"if-modified-since")
    )


def _tokens(value: str) -> list[str]:
    return [token.strip() for token in value.split(",") if token.strip()]


def _etag_matches(token: str, etag: str) -> bool:
    return token == etag or "W/" + token == etag or token == "W/" + etag


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _precondition_failed(request: Request, found: _File) -> bool:
    if_match = _text(request.get_first_header(b"if-match"))
    if if_match is not None:
        if if_match.strip() == "*":
            return False
        return not any(_etag_matches(token, found.etag) for token in _tokens(if_match))
    since = _http_date(_text(request.get_first_header(b"if-unmodified-since")))
    # HTTP dates have whole seconds: compare at that precision
    return since is not None and found.mtime_ms // 1000 > since


def _is_fresh(request: Request, found: _File) -> bool:
    none_match = _text(request.get_first_header(b"if-none-match"))
    modified_since = _text(request.get_first_header(b"if-modified-since"))
    if not none_match and not modified_since:
        return False
    cache_control = _text(request.get_first_header(b"cache-control"))
    if cache_control and _NO_CACHE.search(cache_control):
        return False
    if (
        none_match
        and none_match.strip() != "*"
        and not any(_etag_matches(token, found.etag) for token in _tokens(none_match))
    ):
        return False
    if modified_since:
        since = _http_date(modified_since)
        if since is None or found.mtime_ms // 1000 > since:
            return False
    return True


def _range_fresh(request: Request, found: _File) -> bool:
    if_range = _text(request.get_first_header(b"if-range"))
    if not if_range:
        return True
    if '"' in if_range:
        return found.etag in if_range
    since = _http_date(if_range)
    return since is not None and found.mtime_ms // 1000 <= since


# -- ranges ----------------------------------------------------------------------------


def _parse_ranges(size: int, header: str) -> list[tuple[int, int]] | None:
    """Byte ranges as (start, end) inclusive, overlapping ones merged; ``[]`` when none is
    satisfiable, None when the header is not understood (then the whole file is sent)."""
    _, sep, spec = header.partition("=")
    if not sep:
        return None
    ranges: list[tuple[int, int]] = []
    for part in spec.split(","):
        first, dash, last = part.partition("-")
        start = js.parse_int(first)
        end = js.parse_int(last) if dash else None
        if start is None:
            if end is None:
                continue
            start, end = size - end, size - 1
        elif end is None:
            end = size - 1
        end = min(end, size - 1)
        if start > end or start < 0:
            continue
        ranges.append((start, end))
    if not ranges:
        return []
    return _combine(ranges)


def _combine(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


# -- bodies ----------------------------------------------------------------------------


async def _no_body() -> AsyncIterator[bytes]:
    """HEAD: the pipeline writes the headers only; this is never iterated."""
    return
    yield b""


def _stream(content_type: bytes, path: Path, offset: int, length: int) -> StreamedContent:
    async def chunks() -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(open, path, "rb")
        try:
            await asyncio.to_thread(handle.seek, offset)
            left = length
            while left > 0:
                chunk = await asyncio.to_thread(handle.read, min(CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk
        finally:
            handle.close()

    return StreamedContent(content_type, chunks, length)


def _read(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(length)
