"""Magic-number detection (file-type 21's answers for the upload formats) and the
content types of stored files."""

from __future__ import annotations

import pytest

from arinova.storage.mime import inline_safe, type_for_name, with_charset
from arinova.storage.sniff import detect_type
from tests.http.uploads_fixtures import GIF, JPEG, PDF, PNG, WEBP, make_png


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PNG, "image/png"),
        (make_png(extra=b"x" * 100), "image/png"),
        (make_png(animated=True), "image/apng"),
        (JPEG, "image/jpeg"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"\xff\xd8\xff\xf7\x00", "image/jls"),
        (GIF, "image/gif"),
        (b"GIF", "image/gif"),
        (WEBP, "image/webp"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", None),
        (PDF, "application/pdf"),
        (b"\xef\xbb\xbf%PDF-1.4", "application/pdf"),  # a UTF-8 BOM is skipped
        (b"%PDF-1.4" + b" " * 1400 + b"AIPrivateData", "application/postscript"),
        (b"%PDF-1.4AIPrivateData", "application/pdf"),  # only looked for past 1350 bytes
        (b"\x89PNG\r\n\x1a\n", None),  # no chunk at all
        (b"\x89PNG\r\n\x1a\n\xff\xff\xff\xffIHDR", None),  # negative chunk length
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", "image/png"),  # truncated after a header
        (b"", None),
        (b"hello world", None),
        (b"<svg></svg>", None),
        (b"BM\x00\x00", None),
    ],
)
def test_detect_type(data: bytes, expected: str | None) -> None:
    assert detect_type(data) == expected


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("a.png", "image/png"),
        ("a.PNG", "image/png"),
        ("x.tar.gz", "application/gzip"),
        ("a.jpeg", "image/jpeg"),
        ("README", "application/octet-stream"),
        (".png", "application/octet-stream"),
        ("a.", "application/octet-stream"),
        ("a.unknownext", "application/octet-stream"),
        ("dir.png/file", "application/octet-stream"),
    ],
)
def test_type_for_name(name: str, mime: str) -> None:
    assert type_for_name(name) == mime


def test_charset_and_inline_safety() -> None:
    assert with_charset("text/plain") == "text/plain; charset=utf-8"
    assert with_charset("application/json") == "application/json; charset=utf-8"
    assert with_charset("image/png") == "image/png"
    assert inline_safe("image/png") and inline_safe("application/pdf")
    for risky in ("text/html", "image/svg+xml", "application/xml", "application/octet-stream"):
        assert not inline_safe(risky)
