"""When ``decodeURI`` / ``decodeURIComponent`` throw ``URIError`` (ECMA-262 §19.2.6.1),
and percent-decoding with their refusal of a bare ``%``. Paths arrive as bytes."""

from __future__ import annotations

import re
from typing import Final

_BARE_PERCENT: Final = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_ESCAPE: Final = re.compile(rb"%([0-9A-Fa-f]{2})")
_ESCAPE_RUN: Final = re.compile(rb"(?:%[0-9A-Fa-f]{2})+")


class URIError(ValueError):
    """What ``decodeURI`` throws."""


def decode_uri_throws(text: bytes) -> bool:
    """True when ``decodeURI(text)`` throws: a ``%`` not followed by two hex digits, or a
    run of escapes whose bytes are not UTF-8 (overlong forms and surrogates included)."""
    if b"%" not in text:
        return False
    if _BARE_PERCENT.search(text):
        return True
    for run in _ESCAPE_RUN.findall(text):
        try:
            bytes.fromhex(run.replace(b"%", b"").decode()).decode("utf-8")
        except UnicodeDecodeError:
            return True
    return False


def unescape(text: bytes) -> bytes:
    """Every ``%XX`` replaced by the byte it stands for; ``URIError`` for a ``%`` that
    starts no escape, as ``decodeURIComponent`` refuses it."""
    if b"%" not in text:
        return text
    if _BARE_PERCENT.search(text):
        raise URIError("a % that starts no escape")
    return _ESCAPE.sub(lambda m: bytes.fromhex(m.group(1).decode()), text)
