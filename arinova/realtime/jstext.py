"""JavaScript strings in Python: what JSON.parse accepts and orjson refuses, and text
with lone UTF-16 surrogates (an agent may split an emoji between two chunks).

JSON.parse takes lone surrogate escapes (``"\\ud83d"``); JSON.stringify writes them back
as escapes; Node's UTF-8 writers (PostgreSQL, Redis) turn them into U+FFFD.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_SURROGATE = re.compile("[\ud800-\udfff]")


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def loads(text: str) -> Any:
    """JSON.parse: orjson, or the standard library for what only it accepts (lone
    surrogate escapes, integers beyond 64 bits). Raises ``ValueError``."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text, parse_constant=_reject_constant)


def _pair_surrogates(text: str) -> str:
    """Join high+low surrogate code points into the character they encode."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def dumps(value: Any) -> str:
    """JSON.stringify of plain data: orjson, or (for text with lone surrogates) the
    standard library with only the lone surrogates escaped, as JavaScript does."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        raw = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        raw = _pair_surrogates(raw)
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", raw)


def well_formed(text: str) -> str:
    """The text as a UTF-8 writer stores it: pairs joined, lone surrogates -> U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text
