"""What a route tells the API document (``arinova.http.openapi``), given where it is
registered: ``router.add_get(path, handler, doc=Doc(...))``.

A ``Doc`` names the success answers (status → JSON Schema, ``Reply`` for another media
type or headers, ``None`` for no body), the handler's own error statuses, the body
validator (``arinova.http.validate.Obj`` or anything with ``json_schema()``) and the query
parameters. The answers every route of a kind can give are added by the generator:
401 for ``auth="session"``, 400/413/415 for a JSON body, 400/406/413 for a multipart
one, 404 for a path with parameters, 429 everywhere (contract rest.md §1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

JSON = dict[str, Any]


class HasSchema(Protocol):
    def json_schema(self) -> JSON: ...


@dataclass(frozen=True, slots=True)
class Raw:
    """A body validator given as a JSON Schema (for bodies a handler reads itself)."""

    schema: JSON

    def json_schema(self) -> JSON:
        return self.schema


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer that is not plain JSON: its media types (each with its schema, ``None``:
    any content) and the headers it always carries."""

    media: Mapping[str, JSON | None]
    headers: tuple[str, ...] = ()
    description: str = ""


#: who may call a route: ``session`` (the AUTH check, rest.md §1.3), ``none``, or
#: ``better-auth`` (the auth endpoints check the session themselves, §3.2)
Access = Literal["session", "none", "better-auth"]


@dataclass(frozen=True, slots=True)
class Doc:
    summary: str
    ok: Mapping[int, JSON | Reply | None]
    #: the handler's own error statuses (bodies of the route's error family)
    errors: tuple[int, ...] = ()
    body: HasSchema | None = None
    #: ``application/json`` or ``multipart/form-data``
    body_media: str = "application/json"
    #: a body the handler does not require (the key may be absent)
    body_required: bool = True
    query: Mapping[str, JSON] = field(default_factory=dict)
    access: Access = "session"
    tag: str = ""
    #: error statuses answered with an empty body (Better Auth's 401 of a session endpoint)
    empty_errors: tuple[int, ...] = ()
    description: str = ""


# -- small schema builders ---------------------------------------------------------------


def obj(required: Mapping[str, JSON], optional: Mapping[str, JSON] | None = None) -> JSON:
    """An object with these keys (``required`` always present)."""
    schema: JSON = {"type": "object", "properties": {**required, **(optional or {})}}
    if required:
        schema["required"] = list(required)
    return schema


def arr(item: JSON) -> JSON:
    return {"type": "array", "items": item}


def null(schema: JSON) -> JSON:
    """``schema`` or ``null``."""
    return {"anyOf": [schema, {"type": "null"}]}


STR: JSON = {"type": "string"}
INT: JSON = {"type": "integer"}
BOOL: JSON = {"type": "boolean"}
UUID: JSON = {"type": "string", "format": "uuid"}
TIME: JSON = {"type": "string", "format": "date-time"}
ANY: JSON = {}
