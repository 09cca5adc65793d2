"""``String(value)``, ``Number.prototype.toString`` and truthiness of JSON values.

JSON.parse makes every number a double, so an integer beyond 2**53 prints as the double
it became (``String(9007199254740993)`` is ``"9007199254740992"``).
"""

from __future__ import annotations

import math
from typing import Any, Final

#: largest integer magnitude a double holds exactly
_EXACT_INT: Final = 2**53


class Undefined:
    """JavaScript's ``undefined``: what reading an absent key gives."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED: Final = Undefined()


def number_to_string(value: float) -> str:
    """``Number::toString(value)`` (ECMA-262 §6.1.6.1.20): the shortest digits that
    round-trip, plain up to 21 integer digits and down to 6 leading zeros, else exponent
    form."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"  # -0 too
    digits, point = _shortest_digits(abs(value))
    k, n = len(digits), point
    sign = "-" if value < 0 else ""
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{sign}{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return f"{sign}0.{'0' * -n}{digits}"
    exponent = f"e{'+' if n >= 1 else '-'}{abs(n - 1)}"
    if k == 1:
        return sign + digits + exponent
    return f"{sign}{digits[0]}.{digits[1:]}{exponent}"


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest round-tripping significant digits of a positive finite double (as
    ``repr`` finds them) and ``n``, the position of the decimal point: the value is
    ``0.<digits> × 10**n``."""
    mantissa, _, exponent = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    significant = digits.lstrip("0")
    point -= len(digits) - len(significant)
    return significant.rstrip("0"), point


def int_to_double(value: int) -> float:
    """``Number(value)``: the nearest double; beyond the largest double, ±Infinity."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def to_string(value: Any) -> str:
    """``String(value)`` of a JSON value (``UNDEFINED`` for an absent one): arrays are
    joined with commas (``null`` items empty), objects are ``[object Object]``."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, int):
        if -_EXACT_INT <= value <= _EXACT_INT:
            return str(value)
        return number_to_string(int_to_double(value))
    if isinstance(value, float):
        return number_to_string(value)
    if isinstance(value, list):
        return _join(value)
    return "[object Object]"


def _join(array: list[Any]) -> str:
    """``Array.prototype.join(",")``, nested arrays included, without recursion (JSON
    nests up to 1024 levels deep, past Python's recursion limit)."""
    stack: list[tuple[Any, list[str]]] = [(iter(array), [])]
    while True:
        items, parts = stack[-1]
        for item in items:
            if isinstance(item, list):
                stack.append((iter(item), []))
                break
            parts.append("" if item is None or item is UNDEFINED else to_string(item))
        else:
            stack.pop()
            text = ",".join(parts)
            if not stack:
                return text
            stack[-1][1].append(text)


def is_truthy(value: Any) -> bool:
    """JavaScript truthiness of a JSON value: ``[]`` and ``{}`` are true; ``0``, ``-0``,
    ``NaN``, ``""``, ``null``, ``false`` and absent values are false."""
    if isinstance(value, list | dict):
        return True
    if value is UNDEFINED or (isinstance(value, float) and math.isnan(value)):
        return False
    return bool(value)
