"""JavaScript strings in Python ``str``: lengths and slices count UTF-16 code units, and
lone surrogates (half of a pair, e.g. an emoji split between two chunks) are kept until
the text is written as UTF-8.

A Python ``str`` may hold surrogate code points; a JavaScript string's pair is two of
them here only before ``join_pairs``.
"""

from __future__ import annotations

import re
from typing import Final

#: ``WhiteSpace`` and ``LineTerminator`` (ECMA-262 §12.2, §12.3): what ``trim`` removes
#: and ``parseInt`` skips. Python's ``str.isspace`` differs (U+001C–U+001F and U+0085
#: are space to it, U+FEFF is not).
WHITESPACE: Final = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)

_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_DECIMAL_PREFIX: Final = re.compile(r"[+-]?([0-9]+)")
#: digits of the largest double (1.8e308); a longer integer is beyond every double
_MAX_DOUBLE_DIGITS: Final = 309
#: greater than every double: ``parse_int``'s ``Infinity``
PAST_DOUBLES: Final = 10**_MAX_DOUBLE_DIGITS


def utf16_length(text: str) -> int:
    """``string.length``: UTF-16 code units (a lone surrogate is one; never raises)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def utf16_slice(text: str, start: int, end: int | None = None) -> str:
    """``string.slice(start, end)`` in UTF-16 code units (negative counts from the end);
    a pair cut in half leaves a lone surrogate."""
    units = text.encode("utf-16-le", "surrogatepass")
    stop = None if end is None else end * 2
    return units[start * 2 : stop].decode("utf-16-le", "surrogatepass")


def join_pairs(text: str) -> str:
    """High and low surrogate code points that follow each other become the character
    they encode (as a JavaScript string would read them)."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def escape_surrogates(text: str) -> str:
    """Each lone surrogate as the ``\\udxxx`` escape JSON.stringify writes for it."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def well_formed(text: str) -> str:
    """``string.toWellFormed()``, which is also what Node's UTF-8 writers (PostgreSQL,
    Redis, HTTP) store: pairs joined, each lone surrogate replaced by U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def trim(text: str) -> str:
    """``string.trim()``."""
    return text.strip(WHITESPACE)


def parse_int(text: str) -> int | None:
    """``parseInt(text, 10)``: leading whitespace skipped, an optional sign, the longest
    run of ASCII digits; ``None`` where it gives ``NaN``. The exact value is returned
    (JavaScript rounds one beyond 2**53 to a double; the callers only compare it), and
    past the largest double ``±PAST_DOUBLES`` stands for ``±Infinity``."""
    match = _DECIMAL_PREFIX.match(text.lstrip(WHITESPACE))
    if match is None:
        return None
    if len(match.group(1)) > _MAX_DOUBLE_DIGITS:
        return -PAST_DOUBLES if match.group().startswith("-") else PAST_DOUBLES
    return int(match.group())
