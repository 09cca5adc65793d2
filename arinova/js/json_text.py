"""``JSON.parse`` and ``JSON.stringify`` of plain data: orjson, with the standard library
for what JSON.parse accepts and orjson refuses.

JSON.parse takes lone surrogate escapes (``"\\ud83d"``), numbers past the doubles
(``1e400`` is ``Infinity``) and invalid UTF-8 in a body Node decoded with replacement
characters; integers that fit no 64-bit integer become doubles, as orjson makes them.
JSON.stringify writes lone surrogates back as escapes. Nesting deeper than the
standard library can parse (about 1000 levels, past orjson's 1024) is refused.
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

from arinova.js.text import escape_surrogates, join_pairs, well_formed

#: decimal digits of the largest 64-bit integer; a longer one is always a double
_INT64_DIGITS: Final = 20


def _int_or_double(text: str) -> int | float:
    if len(text.lstrip("-")) <= _INT64_DIGITS:
        value = int(text)
        if -(2**63) <= value < 2**64:
            return value
    return float(text)  # never raises: past the doubles it is ±inf


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_parse(text: str | bytes) -> Any:
    """``JSON.parse``; raises ``ValueError`` for what it refuses. Bytes that are not
    UTF-8 are decoded with replacement characters first, as Node decodes a body."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    decoded = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    try:
        return json.loads(decoded, parse_int=_int_or_double, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def json_stringify(value: Any) -> str:
    """``JSON.stringify`` of plain data, lone surrogates written as ``\\udxxx`` escapes."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        raw = join_pairs(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
        return escape_surrogates(raw)


def well_formed_value(value: Any) -> Any:
    """The parsed value with every string (keys too) made well formed: what the
    original's UTF-8 writers stored for text that came in with lone surrogates. Lists and
    objects are changed in place, without recursion (a value can be as deep as the
    parser goes)."""
    if isinstance(value, str):
        return well_formed(value)
    pending = [value]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            for index, item in enumerate(node):
                if isinstance(item, str):
                    node[index] = well_formed(item)
                elif isinstance(item, list | dict):
                    pending.append(item)
        elif isinstance(node, dict):
            items = list(node.items())
            node.clear()
            for key, item in items:
                if isinstance(item, str):
                    item = well_formed(item)
                elif isinstance(item, list | dict):
                    pending.append(item)
                node[well_formed(key)] = item
    return value
