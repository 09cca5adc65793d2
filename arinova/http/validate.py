"""Validation of request input: bodies, path ids and query numbers.

Bodies — declare a schema once, at import time, and parse each body with it::

    CREATE_AGENT = Obj({
        "name": Str(min_len=1, max_len=100),
        "description": Str(max_len=500, optional=True),
        "a2aEndpoint": Url(optional=True),
    })

    body = CREATE_AGENT.parse(await read_json(request))   # dict with the known keys

``Obj.parse`` raises ``ApiError.validation(details)``, i.e. 400
``{"error":"Validation error","code":"VALIDATION_ERROR","details":"<path>: <reason>"}``
(decisions.md Q01), e.g. ``"name: must be at least 1 character long"`` or
``"quickReplies[2].label: is required"``. The first problem found is reported.

Every field type takes ``optional`` (the key may be absent: it is then absent from
the result, or set to ``default`` when one is given) and ``nullable`` (``null`` is
accepted and kept). Unknown keys are dropped, as zod does. Rules follow the original's
zod schemas (zod 3): string lengths count UTF-16 code units as JavaScript does,
integers may arrive as ``1.0`` (JSON has one number type), booleans are never numbers.

Path ids — ``parse_uuid(value)`` returns a ``UUID`` or ``None``; a ``None`` must be
answered exactly like an unknown id (quirk Q02).

Query numbers — ``query_int(request, "limit", default=50, minimum=1, maximum=100)``
parses like JavaScript's ``parseInt`` and clamps (quirk Q16).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from arinova import js
from arinova.compat import raw_query
from arinova.errors import ApiError

__all__ = [
    "Any_",
    "Arr",
    "Bool",
    "Email",
    "Enum",
    "Field",
    "Int",
    "Invalid",
    "Num",
    "Obj",
    "Record",
    "Str",
    "Truthy",
    "Url",
    "Uuid",
    "parse_uuid",
    "query_int",
    "query_param",
]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


class Invalid(Exception):
    """A value broke a rule; ``Obj.parse`` turns it into the 400 body."""

    __slots__ = ("path", "reason")

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Field:
    """Base of every field type. Subclasses implement ``check``."""

    __slots__ = ("default", "nullable", "optional")

    def __init__(
        self, *, optional: bool = False, nullable: bool = False, default: Any = MISSING
    ) -> None:
        self.optional = optional or default is not MISSING
        self.nullable = nullable
        self.default = default

    def check(self, value: Any, path: str) -> Any:
        """Return the accepted (possibly normalised) value or raise ``Invalid``."""
        raise NotImplementedError

    def run(self, value: Any, path: str) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise Invalid(path, "must not be null")
        return self.check(value, path)

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema (2020-12, as OpenAPI 3.1 uses it) of the values ``run`` accepts."""
        schema = self.value_schema()
        if self.default is not MISSING and self.default is not None:
            schema["default"] = self.default
        if self.nullable and schema:
            return {"anyOf": [schema, {"type": "null"}]}
        return schema

    def value_schema(self) -> dict[str, Any]:
        """The schema of a non-null value (``{}``: any JSON value)."""
        raise NotImplementedError


def _chars(n: int) -> str:
    return "character" if n == 1 else "characters"


class Str(Field):
    """A string; ``trim`` strips surrounding whitespace (JavaScript's ``trim``, as zod's
    ``.trim()``) before the length checks;
    ``pattern`` is a regular expression the whole value must match (``pattern_reason``
    names the rule in the error)."""

    __slots__ = ("max_len", "min_len", "pattern", "pattern_reason", "trim")
    #: the JSON Schema ``format`` of the subclasses' rule
    format: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        min_len: int = 0,
        max_len: int | None = None,
        trim: bool = False,
        pattern: str | None = None,
        pattern_reason: str = "has an invalid format",
        optional: bool = False,
        nullable: bool = False,
        default: Any = MISSING,
    ) -> None:
        super().__init__(optional=optional, nullable=nullable, default=default)
        self.min_len = min_len
        self.max_len = max_len
        self.trim = trim
        self.pattern = re.compile(pattern) if pattern is not None else None
        self.pattern_reason = pattern_reason

    def check(self, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            raise Invalid(path, "must be a string")
        if self.trim:
            value = js.trim(value)
        if self.min_len or self.max_len is not None:
            length = js.utf16_length(value)
            if length < self.min_len:
                if self.min_len == 1:
                    raise Invalid(path, "must not be empty")
                raise Invalid(path, f"must be at least {self.min_len} {_chars(self.min_len)} long")
            if self.max_len is not None and length > self.max_len:
                raise Invalid(path, f"must be at most {self.max_len} {_chars(self.max_len)} long")
        if self.pattern is not None and self.pattern.fullmatch(value) is None:
            raise Invalid(path, self.pattern_reason)
        return self.extra(value, path)

    def extra(self, value: str, path: str) -> str:
        """Format rules of subclasses (uuid, url, email)."""
        return value

    def value_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string"}
        if self.min_len and not self.trim:
            schema["minLength"] = self.min_len
        if self.max_len is not None:
            schema["maxLength"] = self.max_len
        if self.pattern is not None:
            schema["pattern"] = f"^(?:{self.pattern.pattern})$"
        if self.format is not None:
            schema["format"] = self.format
        return schema


# zod 3's patterns
_UUID_RX: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_EMAIL_RX: Final = re.compile(
    r"(?!\.)(?!.*\.\.)([A-Z0-9_'+\-\.]*)[A-Z0-9_+-]@([A-Z0-9][A-Z0-9\-]*\.)+[A-Z]{2,}",
    re.IGNORECASE,
)
_SCHEME_RX: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_SPECIAL_SCHEMES: Final = frozenset({"http", "https", "ws", "wss", "ftp"})


class Uuid(Str):
    """A UUID string in the 8-4-4-4-12 hex form (kept as given)."""

    __slots__ = ()
    format = "uuid"

    def extra(self, value: str, path: str) -> str:
        if _UUID_RX.fullmatch(value) is None:
            raise Invalid(path, "must be a UUID")
        return value


class Email(Str):
    __slots__ = ()
    format = "email"

    def extra(self, value: str, path: str) -> str:
        if _EMAIL_RX.fullmatch(value) is None:
            raise Invalid(path, "must be a valid email address")
        return value


class Url(Str):
    """An absolute URL as a browser's URL parser would accept it (zod's ``.url()``):
    a scheme, and a host for the web schemes (http, https, ws, wss, ftp)."""

    __slots__ = ()
    format = "uri"

    def extra(self, value: str, path: str) -> str:
        if not _valid_url(value):
            raise Invalid(path, "must be a valid URL")
        return value


_C0_AND_SPACE: Final = "".join(chr(i) for i in range(0x21))


def _valid_url(value: str) -> bool:
    text = value.strip(_C0_AND_SPACE)
    scheme, sep, rest = text.partition(":")
    if not sep or _SCHEME_RX.fullmatch(scheme) is None:
        return False
    if scheme.lower() not in _SPECIAL_SCHEMES:
        return True  # mailto:, data:, file:, custom schemes
    try:
        parts = urlsplit("//" + rest.lstrip("/\\"))
        host = parts.hostname
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return False
    return bool(host) and not any(ch in " <>^|%" for ch in host or "")


class Enum(Field):
    """One of a fixed set of values (compared with ``==``)."""

    __slots__ = ("values",)

    def __init__(
        self,
        values: Iterable[Any],
        *,
        optional: bool = False,
        nullable: bool = False,
        default: Any = MISSING,
    ) -> None:
        super().__init__(optional=optional, nullable=nullable, default=default)
        self.values = tuple(values)

    def check(self, value: Any, path: str) -> Any:
        if isinstance(value, bool) or value not in self.values:
            allowed = ", ".join(str(v) for v in self.values)
            raise Invalid(path, f"must be one of: {allowed}")
        return value

    def value_schema(self) -> dict[str, Any]:
        return {"enum": list(self.values)}


class Bool(Field):
    __slots__ = ()

    def check(self, value: Any, path: str) -> Any:
        if not isinstance(value, bool):
            raise Invalid(path, "must be a boolean")
        return value

    def value_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


class Truthy(Field):
    """Any JSON value, read as a flag with JavaScript's truthiness (``js.is_truthy``):
    for bodies the original only tests with ``if (value)``, such as ``{pinned}``."""

    __slots__ = ()

    def run(self, value: Any, path: str) -> Any:
        return js.is_truthy(value)

    def check(self, value: Any, path: str) -> Any:
        return js.is_truthy(value)

    def json_schema(self) -> dict[str, Any]:
        return {"description": "any JSON value, read as a flag by its truthiness"}


class Num(Field):
    """A finite number (``int`` or ``float``), optionally bounded (inclusive)."""

    __slots__ = ("maximum", "minimum")

    def __init__(
        self,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        optional: bool = False,
        nullable: bool = False,
        default: Any = MISSING,
    ) -> None:
        super().__init__(optional=optional, nullable=nullable, default=default)
        self.minimum = minimum
        self.maximum = maximum

    def number(self, value: Any, path: str) -> int | float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(path, "must be a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise Invalid(path, "must be a number")
        return value

    def bounds(self, value: int | float, path: str) -> int | float:
        if self.minimum is not None and value < self.minimum:
            raise Invalid(path, f"must be >= {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise Invalid(path, f"must be <= {self.maximum}")
        return value

    def check(self, value: Any, path: str) -> Any:
        return self.bounds(self.number(value, path), path)

    def value_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "number"}
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        return schema


class Int(Num):
    """An integer (``3.0`` is accepted and returned as ``3``), optionally bounded."""

    __slots__ = ()

    def __init__(
        self,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        optional: bool = False,
        nullable: bool = False,
        default: Any = MISSING,
    ) -> None:
        super().__init__(
            minimum=minimum, maximum=maximum, optional=optional, nullable=nullable, default=default
        )

    def check(self, value: Any, path: str) -> Any:
        number = self.number(value, path)
        if isinstance(number, float):
            if not number.is_integer():
                raise Invalid(path, "must be an integer")
            number = int(number)
        return self.bounds(number, path)

    def value_schema(self) -> dict[str, Any]:
        return {**super().value_schema(), "type": "integer"}


class Any_(Field):
    """Any JSON value, ``null`` included, unchecked (zod's ``unknown``)."""

    __slots__ = ()

    def run(self, value: Any, path: str) -> Any:
        return value

    def check(self, value: Any, path: str) -> Any:
        return value

    def json_schema(self) -> dict[str, Any]:
        return {}


class Arr(Field):
    """A list whose items all match ``item``; ``min_len``/``max_len`` bound its size."""

    __slots__ = ("item", "max_len", "min_len")

    def __init__(
        self,
        item: Field,
        *,
        min_len: int = 0,
        max_len: int | None = None,
        optional: bool = False,
        nullable: bool = False,
        default: Any = MISSING,
    ) -> None:
        super().__init__(optional=optional, nullable=nullable, default=default)
        self.item = item
        self.min_len = min_len
        self.max_len = max_len

    def check(self, value: Any, path: str) -> Any:
        if not isinstance(value, list):
            raise Invalid(path, "must be an array")
        if len(value) < self.min_len:
            raise Invalid(path, f"must contain at least {self.min_len} item(s)")
        if self.max_len is not None and len(value) > self.max_len:
            raise Invalid(path, f"must contain at most {self.max_len} item(s)")
        item = self.item
        return [item.run(v, f"{path}[{i}]") for i, v in enumerate(value)]

    def value_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array", "items": self.item.json_schema()}
        if self.min_len:
            schema["minItems"] = self.min_len
        if self.max_len is not None:
            schema["maxItems"] = self.max_len
        return schema


class Record(Field):
    """An object with arbitrary keys whose values all match ``value`` (``z.record``)."""

    __slots__ = ("max_keys", "value")

    def __init__(
        self,
        value: Field,
        *,
        max_keys: int | None = None,
        optional: bool = False,
        nullable: bool = False,
        default: Any = MISSING,
    ) -> None:
        super().__init__(optional=optional, nullable=nullable, default=default)
        self.value = value
        self.max_keys = max_keys

    def check(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise Invalid(path, "must be an object")
        if self.max_keys is not None and len(value) > self.max_keys:
            raise Invalid(path, f"must have at most {self.max_keys} keys")
        field = self.value
        return {k: field.run(v, _join(path, k)) for k, v in value.items()}

    def value_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "additionalProperties": self.value.json_schema(),
        }
        if self.max_keys is not None:
            schema["maxProperties"] = self.max_keys
        return schema


class Obj(Field):
    """An object with known keys; unknown keys are dropped from the result."""

    __slots__ = ("fields",)

    def __init__(
        self,
        fields: Mapping[str, Field],
        *,
        optional: bool = False,
        nullable: bool = False,
        default: Any = MISSING,
    ) -> None:
        super().__init__(optional=optional, nullable=nullable, default=default)
        self.fields = tuple(fields.items())

    def check(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise Invalid(path or "body", "must be an object")
        result: dict[str, Any] = {}
        for key, field in self.fields:
            item = value.get(key, MISSING)
            if item is MISSING:
                if not field.optional:
                    raise Invalid(_join(path, key), "is required")
                if field.default is not MISSING:
                    result[key] = field.default
                continue
            result[key] = field.run(item, _join(path, key))
        return result

    def value_schema(self) -> dict[str, Any]:
        required = [key for key, field in self.fields if not field.optional]
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {key: field.json_schema() for key, field in self.fields},
        }
        if required:
            schema["required"] = required
        return schema

    def parse(self, body: Any) -> dict[str, Any]:
        """Validate a request body; raise ``ApiError.validation`` on the first problem."""
        try:
            if body is None:
                raise Invalid("body", "must be an object")
            result: dict[str, Any] = self.check(body, "")
        except Invalid as exc:
            raise ApiError.validation(f"{exc.path}: {exc.reason}") from None
        return result


# -- path ids --------------------------------------------------------------------------

# What PostgreSQL's uuid input accepts: 32 hex digits, a hyphen allowed after any group
# of four, optionally inside braces.
_PG_UUID_RX: Final = re.compile(
    r"\{[0-9a-fA-F]{4}(?:-?[0-9a-fA-F]{4}){7}\}|[0-9a-fA-F]{4}(?:-?[0-9a-fA-F]{4}){7}"
)


def parse_uuid(value: str | None) -> UUID | None:
    """A path id as PostgreSQL would read it into a ``uuid`` column, or ``None`` when it
    is not one (answer ``None`` like an unknown id: quirk Q02)."""
    if not value or len(value) > 41 or _PG_UUID_RX.fullmatch(value) is None:
        return None
    return UUID(hex=value.strip("{}").replace("-", ""))


# -- query strings ---------------------------------------------------------------------


def query_param(request: Any, name: str) -> str | None:
    """The first value of a query parameter (``None`` when absent)."""
    raw = raw_query(request)
    if not raw:
        return None
    values = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).get(name)
    return values[0] if values else None


def query_int(
    request: Any,
    name: str,
    *,
    default: int,
    minimum: int,
    maximum: int | None = None,
) -> int:
    """A query number for paging: absent or not a number → ``default``; otherwise
    clamped into ``[minimum, maximum]`` (quirk Q16: never an unbounded or negative
    LIMIT/OFFSET)."""
    text = query_param(request, name)
    value = None if text is None else js.parse_int(text)
    if value is None:
        return default
    if value < minimum:
        return minimum
    if maximum is not None and value > maximum:
        return maximum
    return value
