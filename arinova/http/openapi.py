"""The OpenAPI 3.1 document of the REST API, generated from the route table: every
registered route with the ``Doc`` it was registered with (``arinova.http.apidoc``).

``document(router)`` builds it, ``render`` gives the bytes that both ``arinova openapi``
and ``GET /api/openapi.json`` send. HEAD routes are not listed (every GET answers HEAD,
rest.md §1.1); ``*`` at the end of a path is the parameter ``tail``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson
from blacksheep import Content, Request, Response

from arinova import __version__
from arinova.http import schemas
from arinova.http.apidoc import JSON, STR, Doc, Reply, obj
from arinova.http.responses import JSON_TYPE
from arinova.http.router import ArinovaRouter, Route, param_name
from arinova.state import AppState

SESSION_COOKIE: Final = "better-auth.session_token"

#: the errors of the REST areas (rest.md §1.6, §3): ``{"error"}`` from a handler,
#: ``{"error","code"}`` from the framework, ``{"error","code","details"}`` for a body that
#: fails validation (decisions.md Q01), and the unknown-route 404 (§1.1), which has an
#: ``error`` too
API_ERROR: Final = obj(
    {"error": STR},
    {
        "code": {"enum": ["INTERNAL_ERROR", "VALIDATION_ERROR", "RATE_LIMIT"]},
        "details": STR,
        "message": STR,
        "statusCode": {"type": "integer"},
    },
)
#: Better Auth's errors (rest.md §3.2): ``{"code","message"}``; its rate limit has only
#: ``message``
AUTH_ERROR: Final = obj({"message": STR}, {"code": STR})

_STATUS_TEXT: Final = {
    200: "OK",
    201: "Created",
    204: "No content",
    302: "Redirect",
    400: "Bad request",
    401: "Not signed in",
    403: "Forbidden",
    404: "Not found",
    406: "Not multipart",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable",
    429: "Too many requests",
    503: "Unavailable",
}


class UndocumentedRoute(ValueError):
    pass


def openapi_path(pattern: str) -> tuple[str, list[str]]:
    """``/api/agents/:id`` → ``/api/agents/{id}`` and its parameter names."""
    names: list[str] = []
    parts: list[str] = []
    segments = pattern[1:].split("/")
    for index, segment in enumerate(segments):
        name = "tail" if segment == "*" and index == len(segments) - 1 else param_name(segment)
        if name is None:
            parts.append(segment)
        else:
            names.append(name)
            parts.append("{" + name + "}")
    return "/" + "/".join(parts), names


def _content(schema: JSON, media: str = "application/json") -> JSON:
    return {media: {"schema": schema}}


def _error_schema(doc: Doc) -> JSON:
    if doc.access == "better-auth":
        return {"anyOf": [{"$ref": "#/components/schemas/AuthError"}, _API_ERROR_REF]}
    return _API_ERROR_REF


_API_ERROR_REF: Final = {"$ref": "#/components/schemas/ApiError"}


def _responses(doc: Doc, has_params: bool, shared: dict[str, JSON]) -> JSON:
    """The operation's answers; the error answers are shared ``components/responses``."""
    responses: dict[str, JSON] = {}
    for status, answer in doc.ok.items():
        responses[str(status)] = _answer(status, answer)
    errors = set(doc.errors) | {429}
    if doc.access == "session":
        errors.add(401)
    if doc.body is not None:
        errors |= {400, 413, 415} if doc.body_media == "application/json" else {400, 406, 413}
    if has_params:
        errors.add(404)
    family = "Auth" if doc.access == "better-auth" else "Api"
    for status in sorted(errors):
        if str(status) in responses:
            continue
        # an unmatched parameter under /api/auth/ reaches its catch-all: an empty 404
        empty = status in doc.empty_errors or (status == 404 and doc.access == "better-auth")
        name = f"{family}{status}{'Empty' if empty else ''}"
        if name not in shared:
            shared[name] = _error_answer(status, _error_schema(doc), empty)
        responses[str(status)] = {"$ref": f"#/components/responses/{name}"}
    return responses


def _error_answer(status: int, error: JSON, empty: bool) -> JSON:
    described: JSON = {"description": _STATUS_TEXT.get(status, "Error")}
    if status == 429:
        described["content"] = {**_content(error), "text/plain": {"schema": STR}}
        described["headers"] = {"retry-after": {"schema": STR}}
    elif not empty:
        described["content"] = _content(error)
    return described


def _answer(status: int, answer: JSON | Reply | None) -> JSON:
    text = _STATUS_TEXT.get(status, "OK")
    if answer is None:
        return {"description": text}
    if isinstance(answer, Reply):
        described: JSON = {"description": answer.description or text}
        if answer.media:
            described["content"] = {
                media: ({"schema": schema} if schema is not None else {})
                for media, schema in answer.media.items()
            }
        if answer.headers:
            described["headers"] = {name: {"schema": STR} for name in answer.headers}
        return described
    return {"description": text, "content": _content(answer)}


def _operation(route: Route, doc: Doc, names: list[str], shared: dict[str, JSON]) -> JSON:
    operation: JSON = {"summary": doc.summary}
    if doc.tag:
        operation["tags"] = [doc.tag]
    if doc.description:
        operation["description"] = doc.description
    operation["operationId"] = route.method.lower() + "_" + _operation_name(route.pattern)
    parameters: list[JSON] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1}
            if name == "tail"
            else {"type": "string", "minLength": 1, "maxLength": 100},
        }
        for name in names
    ]
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in doc.query.items()
    ]
    if parameters:
        operation["parameters"] = parameters
    if doc.body is not None:
        operation["requestBody"] = {
            "required": doc.body_required,
            "content": _content(doc.body.json_schema(), doc.body_media),
        }
    operation["responses"] = _responses(doc, bool(names), shared)
    if doc.access == "session":
        operation["security"] = [{"session": []}]
    elif doc.access == "better-auth":
        operation["security"] = [{"session": []}, {}]
    else:
        operation["security"] = []
    return operation


def _operation_name(pattern: bytes) -> str:
    text = pattern.decode().strip("/").replace("*", "tail")
    return "".join(ch if ch.isalnum() else "_" for ch in text.replace(":", "by_"))


def document(routes: Iterable[Route], *, title: str = "Arinova Chat REST API") -> JSON:
    """The OpenAPI 3.1 document of these routes; every one needs a ``doc``."""
    paths: dict[str, dict[str, JSON]] = {}
    shared: dict[str, JSON] = {}
    missing: list[str] = []
    for route in routes:
        if route.doc is None:
            missing.append(repr(route))
            continue
        path, names = openapi_path(route.pattern.decode())
        paths.setdefault(path, {})[route.method.lower()] = _operation(
            route, route.doc, names, shared
        )
    if missing:
        raise UndocumentedRoute("routes without a doc: " + ", ".join(missing))
    shapes = _Shapes()
    paths = shapes.refer(paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": __version__,
            "description": "Generated from the server's route table (arinova openapi).",
        },
        "paths": paths,
        "components": {
            "schemas": {**shapes.used(), "ApiError": API_ERROR, "AuthError": AUTH_ERROR},
            "responses": dict(sorted(shared.items())),
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                    "description": "Better Auth's signed session cookie (rest.md §3.2.1); "
                    "__Secure-better-auth.session_token when BETTER_AUTH_URL is https.",
                }
            },
        },
    }


class _Shapes:
    """The named shapes of ``arinova.http.schemas`` (objects and arrays): each place that
    uses one of them (the same object) becomes a ``$ref`` to ``components/schemas``."""

    def __init__(self) -> None:
        self._names = {
            id(value): "".join(part.title() for part in name.split("_"))
            for name, value in vars(schemas).items()
            if name.isupper() and isinstance(value, dict) and value.get("type") in _NAMED
        }
        self._shapes = {
            id(value): value for value in vars(schemas).values() if isinstance(value, dict)
        }
        self._used: dict[str, JSON] = {}

    def refer(self, node: Any) -> Any:
        name = self._names.get(id(node))
        if name is not None:
            if name not in self._used:
                self._used[name] = {}  # placeholder first: shapes may nest
                self._used[name] = self._inline(node)
            return {"$ref": f"#/components/schemas/{name}"}
        return self._inline(node)

    def _inline(self, node: Any) -> Any:
        if isinstance(node, dict):
            return {key: self.refer(value) for key, value in node.items()}
        if isinstance(node, list):
            return [self.refer(value) for value in node]
        return node

    def used(self) -> dict[str, JSON]:
        return dict(sorted(self._used.items()))


_NAMED: Final = ("object", "array")


def render(spec: Mapping[str, Any]) -> bytes:
    """The document's bytes (indented JSON, ending with a newline)."""
    return orjson.dumps(spec, option=orjson.OPT_INDENT_2) + b"\n"


def mount(router: ArinovaRouter, state: AppState) -> None:
    """``GET /api/openapi.json``: the document of the routes registered on ``router``
    (rendered at the first request, when every area has registered its routes)."""
    rendered: list[bytes] = []

    async def openapi_json(request: Request) -> Response:
        if not rendered:
            rendered.append(render(document(router.registered)))
        return Response(200, None, Content(JSON_TYPE, rendered[0]))

    router.add_get(
        "/api/openapi.json",
        openapi_json,
        doc=Doc(
            "This document",
            {200: {"type": "object", "required": ["openapi", "paths"]}},
            access="none",
            tag="meta",
        ),
    )
