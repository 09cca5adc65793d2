"""Body checks with the messages Better Auth's zod schemas produce, reported as
``400 {"code":"VALIDATION_ERROR","message":"[body.email] Invalid email address"}``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from arinova import js
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


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str  # "string" | "boolean" | "email" | "object" | "number" | "string[]"
    required: bool = False
    nonempty: bool = False
    choices: tuple[str, ...] = ()
    #: ``z.enum([...]).or(z.string())``: any string; anything else is just "Invalid input"
    any_string: bool = False

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of the values this field accepts."""
        if self.any_string:
            return {"type": "string"}
        schema: dict[str, Any] = dict(_KIND_SCHEMAS[self.kind])
        if self.nonempty:
            schema["minLength"] = 1
        if self.choices:
            schema["enum"] = list(self.choices)
        return schema


_KIND_SCHEMAS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "email": {"type": "string", "format": "email"},
    "object": {"type": "object"},
    "number": {"type": "number"},
    "string[]": {"type": "array", "items": {"type": "string"}},
}


def fields_schema(fields: tuple[Field, ...]) -> dict[str, Any]:
    """The JSON Schema of a body (or query) that ``check`` accepts with these fields."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {field.name: field.json_schema() for field in fields},
    }
    required = [field.name for field in fields if field.required]
    if required:
        schema["required"] = required
    return schema


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
    length = js.utf16_length(password)
    if length < MIN_PASSWORD:
        raise AuthError(400, msg.PASSWORD_TOO_SHORT)
    if length > MAX_PASSWORD:
        raise AuthError(400, msg.PASSWORD_TOO_LONG)
