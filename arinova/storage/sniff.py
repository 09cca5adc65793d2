"""Magic-number detection of the upload types (the original used file-type 21).

Only the formats the upload allow-list names are told apart; anything else is
``None``. Where file-type would name a neighbouring format (JPEG-LS, animated PNG,
Adobe Illustrator saved as PDF) the same type is returned, so those are refused
like in the original.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Final

_BOM: Final = b"\xef\xbb\xbf"
_PNG: Final = b"\x89PNG\r\n\x1a\n"
#: file-type skips this many bytes of a PDF before looking for Illustrator data
_PDF_SKIP: Final = 1350
_PDF_SCAN: Final = 10 * 1024 * 1024


def detect_file_type(path: Path) -> str | None:
    """``detect_type`` of a file's content, read through a read-only mapping (the
    file-backed pages it touches are not the process's own memory). Blocking."""
    with path.open("rb") as file:
        if os.fstat(file.fileno()).st_size == 0:
            return detect_type(b"")
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as content:
            return detect_type(content)


def detect_type(data: bytes | bytearray | mmap.mmap) -> str | None:
    """The MIME type the content's leading bytes announce, or None."""
    start = 0
    while data[start : start + len(_BOM)] == _BOM:
        start += len(_BOM)
    head = data[start : start + 12]
    if head[:3] == b"\xff\xd8\xff":
        return "image/jls" if head[3:4] == b"\xf7" else "image/jpeg"
    if head[:8] == _PNG:
        return _png_kind(data, start)
    if head[:3] == b"GIF":
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"%PDF":
        body_from = start + _PDF_SKIP
        window = min(_PDF_SCAN, len(data))
        if data.find(b"AIPrivateData", body_from, body_from + window) >= 0:
            return "application/postscript"
        return "application/pdf"
    return None


def _png_kind(data: bytes | bytearray | mmap.mmap, start: int) -> str | None:
    """PNG, or APNG when an ``acTL`` chunk comes before the first ``IDAT``."""
    size = len(data)
    pos = start + 8
    while True:
        if pos + 8 > size:
            return None  # truncated chunk header
        length = int.from_bytes(data[pos : pos + 4], "big", signed=True)
        kind = data[pos + 4 : pos + 8]
        pos += 8
        if length < 0:
            return None
        if kind == b"IDAT":
            return "image/png"
        if kind == b"acTL":
            return "image/apng"
        pos = min(pos + length + 4, size)
        if pos + 8 >= size:
            return "image/png"
