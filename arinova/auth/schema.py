"""Body checks with the messages Better Auth's zod schemas produce, reported as
``400 {"code":"VALIDATION_ERROR","message":"[body.email] Invalid email address"}``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from arinova.auth import errors as msg
from arinova.auth.errors import AuthError

# zod 4's default email pattern
_EMAIL = re.compile(
    r"^(?!\.)(?!.*\.\.)([A-Za-z0-9_'+\-.]*)[A-Za-z0-9_+-]@([A-Za-z0-9][A-Za-z0-9\-]*\.)+[A-Za-z]{2,}$"
)


def is_email(value: str) -> bool:
    return _EMAIL.match(value) is not None


def js_type(value: Any) -> str:
    """The type name zod reports as ``received``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def utf16_len(value: str) -> int:
    """``string.length`` in JavaScript."""
    return len(value.encode("utf-16-le")) // 2


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str  # "string" | "boolean" | "email" | "object" | "number" | "string[]"
    required: bool = False
    nonempty: bool = False
    choices: tuple[str, ...] = ()
    #: ``z.enum([...]).or(z.string())``: any string; anything else is just "Invalid input"
    any_string: bool = False


def _issue(name: str, kind: str, value: Any, field: Field) -> str | None:
    expected = "string" if kind in ("email", "string[]") else kind
    if kind == "string[]":
        expected = "array"
    if field.any_string and not isinstance(value, str):
        return "Invalid input" if field.required or value is not _ABSENT else None
    if value is _ABSENT:
        return (
            None
            if not field.required
            else f"Invalid input: expected {expected}, received undefined"
        )
    if js_type(value) != expected:
        return f"Invalid input: expected {expected}, received {js_type(value)}"
    if kind == "email" and not is_email(value):
        return "Invalid email address"
    if kind == "string" and field.nonempty and value == "":
        return "Too small: expected string to have >=1 characters"
    if field.choices and value not in field.choices:
        options = "|".join(f'"{c}"' for c in field.choices)
        return f"Invalid option: expected one of {options}"
    return None


_ABSENT: Any = object()


def check(
    body: Any, fields: tuple[Field, ...], *, also_record: bool = False, where: str = "body"
) -> Mapping[str, Any]:
    """The body as a mapping, or ``AuthError`` 400 ``VALIDATION_ERROR`` listing every issue.
    ``also_record``: the schema is ``object.and(record)`` (sign-up), so a body that is not
    an object fails twice. ``where``: ``"query"`` for query strings."""
    if not isinstance(body, dict):
        received = "undefined" if body is None else js_type(body)
        message = f"[{where}] Invalid input: expected object, received {received}"
        if also_record:
            message += f"; [{where}] Invalid input: expected record, received {received}"
        raise AuthError(400, message, "VALIDATION_ERROR")
    issues = []
    for field in fields:
        problem = _issue(field.name, field.kind, body.get(field.name, _ABSENT), field)
        if problem is not None:
            issues.append(f"[{where}.{field.name}] {problem}")
    if issues:
        raise AuthError(400, "; ".join(issues), "VALIDATION_ERROR")
    return body


MIN_PASSWORD = 8
MAX_PASSWORD = 128


def check_password_length(password: str) -> None:
    """``emailAndPassword`` min 8, max 128 (JavaScript string length)."""
    length = utf16_len(password)
    if length < MIN_PASSWORD:
        raise AuthError(400, msg.PASSWORD_TOO_SHORT)
    if length > MAX_PASSWORD:
        raise AuthError(400, msg.PASSWORD_TOO_LONG)


def js_truthy(value: Any) -> bool:
    """JavaScript truthiness of a JSON value (``[]`` and ``{}`` are true)."""
    if isinstance(value, list | dict):
        return True
    return bool(value)


def _js_number(value: float) -> str:
    """``Number.prototype.toString()`` for a finite number (JSON has no others)."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits, exponent = _shortest_digits(abs(value))
    k, n = len(digits), exponent + len(digits)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
    return sign + text


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest round-tripping significand digits and the power of ten of the last."""
    mantissa, _, exp = repr(value).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0") or "0"
    exponent = (int(exp) if exp else 0) - len(frac)
    stripped = digits.rstrip("0")
    return stripped or "0", exponent + len(digits) - len(stripped)


def js_string(value: Any) -> str:
    """``String(value)`` in JavaScript for a JSON value, as the database driver of the
    original stored a non-string in a text column."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value) if abs(value) < 2**53 else _js_number(float(value))
    if isinstance(value, float):
        return _js_number(value)
    if isinstance(value, list):
        return ",".join("" if item is None else js_string(item) for item in value)
    return "[object Object]"
