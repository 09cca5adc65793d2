"""A streaming ``multipart/form-data`` reader for the upload routes (contract rest.md §1.8).

The whole form is read before the handler acts (quirk Q28), chunk by chunk as it
arrives: the first file part streams into a temporary file (up to ``keep_bytes``), the
text fields a handler asks for are kept (up to 1 MiB each, like busboy), everything else
is dropped. Memory stays below ``SPOOL_WRITE_BYTES`` + 1 MiB per wanted field + one part
header + one chunk, however large the file.
python-multipart tokenises; busboy's limits and messages are kept here (``_Collector``,
``MultipartParser``).

Errors carry the original's bodies (``{"error": ..., "code": "INTERNAL_ERROR"}``):
406 not multipart, 413 file too large / too many parts, 400 prototype field name. A
malformed body (no boundary, truncated form, bad part header) answers 400 with
busboy's message where the original crashed with 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import unquote_to_bytes

from blacksheep import Request
from python_multipart import multipart
from python_multipart.exceptions import MultipartParseError

from arinova.errors import ApiError
from arinova.http.spool import SpoolFile

NOT_MULTIPART: Final = "the request is not multipart"
FILE_TOO_LARGE: Final = "request file too large"
PARTS_LIMIT: Final = "reach parts limit"
PROTOTYPE_FIELD: Final = "prototype property is not allowed as field name"

#: busboy's defaults as the original ran them
MAX_PARTS: Final = 1000
MAX_FIELD_BYTES: Final = 1024 * 1024
MAX_FIELD_NAME_BYTES: Final = 100
MAX_HEADER_BYTES: Final = 80 * 1024
MAX_HEADER_PAIRS: Final = 2000
#: a spooled file's bytes are written out once this many are waiting
SPOOL_WRITE_BYTES: Final = 256 * 1024
#: RFC 2046 says 70; python-multipart takes up to 256
MAX_BOUNDARY_BYTES: Final = multipart.MAX_BOUNDARY_LENGTH

#: names of ``Object.prototype`` members: the original refused them as field names
_PROTOTYPE_NAMES: Final = frozenset(
    {
        "__proto__",
        "__defineGetter__",
        "__defineSetter__",
        "__lookupGetter__",
        "__lookupSetter__",
        "constructor",
        "hasOwnProperty",
        "isPrototypeOf",
        "propertyIsEnumerable",
        "toLocaleString",
        "toString",
        "valueOf",
    }
)

#: called with (file name, normalised content type) when the first file part starts;
#: may raise ``ApiError`` to refuse the upload before its bytes are read
FileCheck = Callable[[str, str], None]


@dataclass(slots=True)
class UploadedFile:
    field_name: str
    file_name: str
    #: the part's media type, lower-cased without parameters; ``text/plain`` if absent
    content_type: str
    #: the first ``keep_bytes`` bytes (all of them when ``size <= keep_bytes``); empty
    #: when spooled
    data: bytes | bytearray
    size: int
    #: the temporary file holding all the bytes (``spooled_form`` only)
    path: Path | None = None


@dataclass(slots=True)
class Form:
    file: UploadedFile | None = None
    #: first value of each wanted text field
    fields: dict[str, str] = field(default_factory=dict)


def is_multipart(request: Request) -> bool:
    content_type = request.get_first_header(b"content-type")
    if content_type is None:
        return False
    return content_type.split(b";", 1)[0].strip().lower() == b"multipart/form-data"


@asynccontextmanager
async def spooled_form(
    request: Request,
    *,
    spool_dir: Path,
    max_file_size: int,
    keep_bytes: int | None = None,
    wanted_fields: Collection[str] = (),
    check_file: FileCheck | None = None,
) -> AsyncIterator[Form]:
    """Read the whole multipart body of ``request``; the first file (its first
    ``keep_bytes``, default all) streams into a temporary file in ``spool_dir``
    (``form.file.path``) as it arrives. The file is removed when the block ends, however
    it ends (link or copy it to keep it).

    ``max_file_size``: a file part longer than this answers 413 as soon as it is passed.
    """
    collector = _Collector(
        max_file_size=max_file_size,
        keep_bytes=max_file_size if keep_bytes is None else min(keep_bytes, max_file_size),
        wanted_fields=frozenset(wanted_fields),
        check_file=check_file,
        spool=True,
    )
    parser = MultipartParser(_boundary_of_request(request), collector)
    spool = SpoolFile(spool_dir)
    try:
        async for chunk in _body_chunks(request):
            parser.feed(chunk)
            if len(collector.pending) >= SPOOL_WRITE_BYTES:
                await spool.write(collector.take_pending())
        parser.finish()
        form = collector.form
        if form.file is not None:
            await spool.write(collector.take_pending())
            form.file.path = spool.path
        yield form
    finally:
        spool.discard()


def _boundary_of_request(request: Request) -> bytes:
    content_type = request.get_first_header(b"content-type")
    if content_type is None or not is_multipart(request):
        raise ApiError.framework(406, NOT_MULTIPART)
    return boundary_of(content_type)


async def _body_chunks(request: Request) -> AsyncIterator[bytes]:
    content = request.content
    if content is None:
        return
    if content.body is not None:
        yield bytes(content.body)
        return
    async for chunk in content.stream():
        if chunk:
            yield chunk


def boundary_of(content_type: bytes) -> bytes:
    """The ``boundary`` parameter of a multipart content type (quoted or not)."""
    for name, value in _parse_params(content_type.decode("latin-1"))[1]:
        if name == "boundary" and value:
            raw = value.encode("latin-1")
            if len(raw) <= MAX_BOUNDARY_BYTES:
                return raw
    raise _malformed("Multipart: Boundary not found")


def _malformed(message: str) -> ApiError:
    return ApiError.framework(400, message)


class _Collector:
    """Receives the parser's events and keeps what the handler asked for."""

    __slots__ = (
        "_buffer",
        "_check_file",
        "_field",
        "_is_file",
        "_keep",
        "_keep_bytes",
        "_max_file_size",
        "_part_size",
        "_parts",
        "_spool",
        "_wanted",
        "form",
        "pending",
    )

    def __init__(
        self,
        *,
        max_file_size: int,
        keep_bytes: int,
        wanted_fields: frozenset[str],
        check_file: FileCheck | None,
        spool: bool = False,
    ) -> None:
        self.form = Form()
        #: with ``spool``: the kept file's bytes not yet taken (``take_pending``)
        self._spool = spool
        self.pending = bytearray()
        self._max_file_size = max_file_size
        self._keep_bytes = keep_bytes
        self._wanted = wanted_fields
        self._check_file = check_file
        self._parts = 0
        self._is_file = False
        self._keep = False
        self._field = ""
        self._part_size = 0
        self._buffer = bytearray()

    def part_begin(self, headers: dict[str, str]) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise ApiError.framework(413, PARTS_LIMIT)
        self._part_size = 0
        self._buffer.clear()
        self._keep = False
        disposition = headers.get("content-disposition")
        if disposition is None:
            self._field = ""
            self._is_file = False
            return  # busboy skips a part without a disposition
        kind, params = _parse_params(disposition)
        if kind.lower() != "form-data":
            self._field = ""
            self._is_file = False
            return
        name: str | None = None
        file_name: str | None = None
        for key, value in params:
            if key == "name":
                name = value
            elif key == "filename":
                file_name = _basename(value)
        media_type = _media_type(headers.get("content-type"))
        field_name = _truncate_utf8(name or "", MAX_FIELD_NAME_BYTES)
        if field_name in _PROTOTYPE_NAMES:
            raise ApiError.framework(400, PROTOTYPE_FIELD)
        self._field = field_name
        self._is_file = file_name is not None or media_type == "application/octet-stream"
        if self._is_file:
            if self.form.file is None:
                if self._check_file is not None:
                    self._check_file(file_name or "", media_type)
                self.form.file = UploadedFile(field_name, file_name or "", media_type, b"", 0)
                self._keep = True
        elif field_name in self._wanted and field_name not in self.form.fields:
            self._keep = True

    def part_data(self, data: bytes | bytearray | memoryview) -> None:
        size = self._part_size + len(data)
        self._part_size = size
        if self._is_file:
            if size > self._max_file_size:
                raise ApiError.framework(413, FILE_TOO_LARGE)
            kept = size - len(data)  # this part's bytes before this piece
            if self._keep and kept < self._keep_bytes:
                piece = data[: self._keep_bytes - kept]
                if self._spool:
                    self.pending += piece
                else:
                    self._buffer += piece
        elif self._keep and len(self._buffer) < MAX_FIELD_BYTES:
            self._buffer += data[: MAX_FIELD_BYTES - len(self._buffer)]

    def take_pending(self) -> bytearray:
        pending, self.pending = self.pending, bytearray()
        return pending

    def part_end(self) -> None:
        if not self._keep:
            return
        if self._is_file:
            upload = self.form.file
            assert upload is not None
            upload.data = self._buffer  # handed over, not copied
            upload.size = self._part_size
        else:
            self.form.fields[self._field] = self._buffer.decode("utf-8", "replace")
        self._buffer = bytearray()
        self._keep = False


class MultipartParser:
    """``feed`` chunks, then ``finish``; the collector gets busboy's part events.

    python-multipart tokenises (delimiters, part headers, part data, without buffering
    part data). It follows RFC 2046 strictly where busboy is lenient, so two things
    are done here: the preamble before the first delimiter is skipped (busboy allows
    one, python-multipart does not), and the first delimiter is handed to the tokeniser
    as the end of an empty opening part, which gives it the transport padding rules of
    every later delimiter. A first delimiter followed by neither padding + CRLF nor
    ``--`` is busboy's "Malformed part header". Later delimiters are python-multipart's:
    ``CRLF--boundary`` followed by anything else is part data (RFC 2046), where busboy
    would have started a part there.
    """

    __slots__ = (
        "_delimiter",
        "_done",
        "_header_bytes",
        "_headers",
        "_in_opening",
        "_name",
        "_preamble",
        "_sink",
        "_tokens",
        "_value",
    )

    def __init__(self, boundary: bytes, sink: _Collector) -> None:
        self._delimiter = b"\r\n--" + boundary
        self._sink = sink
        # the first delimiter may open the body without a line break in front
        self._preamble: bytearray | None = bytearray(b"\r\n")
        self._in_opening = True
        self._done = False
        self._headers: dict[str, str] = {}
        self._header_bytes = 0
        self._name = bytearray()
        self._value = bytearray()
        self._tokens = multipart.MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
            max_header_count=MAX_HEADER_PAIRS,
            max_header_size=MAX_HEADER_BYTES,
        )
        # the opening part: no headers, no data; the first real delimiter ends it
        self._write(b"--" + boundary + b"\r\n\r\n")

    def feed(self, chunk: bytes) -> None:
        if self._done:
            return  # epilogue
        preamble = self._preamble
        if preamble is not None:
            preamble += chunk
            at = preamble.find(self._delimiter)
            if at < 0:
                # keep only what may be the start of the delimiter
                del preamble[: max(0, len(preamble) - len(self._delimiter) + 1)]
                return
            self._preamble = None
            chunk = bytes(preamble[at:])
        self._write(chunk)

    def finish(self) -> None:
        if not self._done:
            raise _malformed("Unexpected end of form")

    def _write(self, data: bytes) -> None:
        try:
            self._tokens.write(data)
        except MultipartParseError:
            raise _malformed("Malformed part header") from None

    # -- python-multipart's callbacks ---------------------------------------------------
    def _part_begin(self) -> None:
        self._headers = {}
        self._header_bytes = 0

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._name += memoryview(data)[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._value += memoryview(data)[start:end]

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_HEADER_BYTES:
            raise _malformed("Malformed part header")

    def _header_end(self) -> None:
        """Names lower-cased; the first value of a repeated name wins."""
        key = self._name.decode("latin-1").lower()
        # browsers send file names as raw UTF-8 bytes
        self._headers.setdefault(key, self._value.strip().decode("utf-8", "replace"))
        self._name.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        if not self._in_opening:
            self._sink.part_begin(self._headers)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_opening:
            # the tokeniser did not take the first delimiter for one
            raise _malformed("Malformed part header")
        self._sink.part_data(memoryview(data)[start:end])

    def _part_end(self) -> None:
        if self._in_opening:
            self._in_opening = False
        else:
            self._sink.part_end()

    def _end(self) -> None:
        self._done = True


def _media_type(value: str | None) -> str:
    """busboy's part type: the text before ``;``, lower-cased; ``text/plain`` if absent."""
    if value is None:
        return "text/plain"
    kind = _parse_params(value)[0].strip().lower()
    return kind or "text/plain"


def _parse_params(value: str) -> tuple[str, list[tuple[str, str]]]:
    """``type; a=b; c="d e"`` → (``type``, [(``a``, ``b``), (``c``, ``d e``)]).

    Quoted strings honour backslash escapes; ``name*=charset'lang'pct-encoded``
    (RFC 5987) values are decoded and replace the plain parameter of the same name.
    """
    parts: list[str] = []
    current: list[str] = []
    in_quotes = False
    escaped = False
    for ch in value:
        if escaped:
            current.append(ch)
            escaped = False
        elif in_quotes:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                in_quotes = False
            else:
                current.append(ch)
        elif ch == '"':
            in_quotes = True
        elif ch == ";":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    kind = parts[0].strip()
    params: list[tuple[str, str]] = []
    extended: dict[str, str] = {}
    for part in parts[1:]:
        name, sep, raw = part.partition("=")
        if not sep:
            continue
        key = name.strip().lower()
        if key.endswith("*"):
            decoded = _decode_extended(raw.strip())
            if decoded is not None:
                extended[key[:-1]] = decoded
            continue
        params.append((key, raw.strip()))
    if extended:
        params = [(k, extended.pop(k, v)) for k, v in params]
        params.extend(extended.items())
    return kind, params


def _decode_extended(value: str) -> str | None:
    charset, sep, rest = value.partition("'")
    if not sep:
        return None
    _lang, sep, encoded = rest.partition("'")
    if not sep:
        return None
    try:
        return unquote_to_bytes(encoded).decode(charset or "utf-8", "replace")
    except LookupError:
        return None


def _basename(name: str) -> str:
    """busboy drops any directory part of a file name, and ``.``/``..`` entirely."""
    cut = max(name.rfind("/"), name.rfind("\\"))
    if cut >= 0:
        name = name[cut + 1 :]
    return "" if name in (".", "..") else name


def _truncate_utf8(text: str, limit: int) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", "ignore")
