"""Route matching with the original router's rules (find-my-way, contract rest.md §1.1).

Areas register routes on ``ArinovaRouter`` with BlackSheep's usual calls
(``router.add_get("/api/agents/:id", handler)``, ``:name`` or ``{name}`` parameters);
handlers are ``async def handler(request) -> Response | None`` and read parameters from
``request.route_values`` (``{"id": "..."}``, percent-decoded; a trailing ``*`` is
``"tail"``). Matching differs from BlackSheep's own:

* paths are exact and case-sensitive; a trailing slash is a different path;
* a static segment wins over a parameter at the same position, with backtracking;
* a parameter never matches an empty segment (quirk Q56, FIX-SAFE: ``/api/agents/``
  and ``/api/agents//stats`` answer the unknown-route 404, never 500) nor one longer
  than 100 characters;
* a ``*`` at the end matches the rest of the path, slashes included (``/uploads/*``);
* HEAD falls back to the GET route (the pipeline sends no body).
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import unquote

from blacksheep import Router

from arinova.http.apidoc import Doc

MAX_PARAM_LENGTH: Final = 100
TAIL: Final = "tail"


class RouteMatch:
    """What the pipeline needs from a match: the route (its ``handler`` is read at call
    time, after BlackSheep has normalised it), the parameters, the pattern."""

    __slots__ = ("route", "values")

    def __init__(self, route: Any, values: dict[str, str]) -> None:
        self.route = route
        self.values = values

    @property
    def handler(self) -> Any:
        return self.route.handler

    @property
    def pattern(self) -> bytes:
        return bytes(self.route.pattern)


class _Leaf:
    __slots__ = ("names", "route")

    def __init__(self, route: Any, names: tuple[str, ...]) -> None:
        self.route = route
        self.names = names


class _Node:
    __slots__ = ("leaf", "param", "static", "wildcard")

    def __init__(self) -> None:
        self.static: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.leaf: _Leaf | None = None
        self.wildcard: _Leaf | None = None


def param_name(segment: str) -> str | None:
    if segment.startswith(":"):
        return segment[1:]
    if len(segment) > 2 and segment[0] + segment[-1] in ("{}", "<>"):
        return segment[1:-1].rpartition(":")[2]
    return None


def _segments(path: str) -> list[str]:
    return path[1:].split("/")


class RouteTable:
    """One segment tree per HTTP method."""

    def __init__(self) -> None:
        self._trees: dict[str, _Node] = {}

    def add(self, method: str, pattern: str, route: Any) -> None:
        node = self._trees.setdefault(method, _Node())
        names: list[str] = []
        segments = _segments(pattern)
        for index, segment in enumerate(segments):
            if segment == "*" and index == len(segments) - 1:
                names.append(TAIL)
                if node.wildcard is None:
                    node.wildcard = _Leaf(route, tuple(names))
                return
            name = param_name(segment)
            if name is not None:
                names.append(name)
                if node.param is None:
                    node.param = _Node()
                node = node.param
            else:
                node = node.static.setdefault(segment, _Node())
        if node.leaf is None:
            node.leaf = _Leaf(route, tuple(names))

    def match(self, method: str, path: bytes) -> RouteMatch | None:
        if not path.startswith(b"/"):
            return None
        text = path.decode("utf-8", "replace")
        segments = [unquote(s) if "%" in s else s for s in _segments(text)]
        tree = self._trees.get(method)
        found = _walk(tree, segments, 0, []) if tree is not None else None
        if found is None and method == "HEAD":
            tree = self._trees.get("GET")
            found = _walk(tree, segments, 0, []) if tree is not None else None
        if found is None:
            return None
        leaf, values = found
        return RouteMatch(leaf.route, dict(zip(leaf.names, values, strict=True)))


def _walk(
    node: _Node, segments: list[str], index: int, values: list[str]
) -> tuple[_Leaf, list[str]] | None:
    if index == len(segments):
        return (node.leaf, values) if node.leaf is not None else None
    segment = segments[index]
    child = node.static.get(segment)
    if child is not None:
        found = _walk(child, segments, index + 1, values)
        if found is not None:
            return found
    if node.param is not None and 0 < len(segment) <= MAX_PARAM_LENGTH:
        found = _walk(node.param, segments, index + 1, [*values, segment])
        if found is not None:
            return found
    if node.wildcard is not None:
        return node.wildcard, [*values, "/".join(segments[index:])]
    return None


class Route:
    """A registered route; ``doc`` is what it tells the API document (``arinova.http.openapi``)."""

    __slots__ = ("doc", "handler", "method", "pattern")

    def __init__(self, method: str, pattern: str, handler: Any, doc: Doc | None = None) -> None:
        self.method = method
        self.pattern = pattern.encode()
        self.handler = handler
        self.doc = doc

    def __repr__(self) -> str:
        return f"<Route {self.method} {self.pattern.decode()}>"


class RouteDuplicate(ValueError):
    pass


class ArinovaRouter(Router):
    """Registration with BlackSheep's calls (``add_get``, ``add_post``, ``add(method,
    ...)``), lookups with ``match`` (see the module doc).

    Handlers are called as they are: ``async def handler(request) -> Response | None``
    (plain functions or bound methods); BlackSheep's dependency injection and
    response normalisation are not involved, so they cost nothing per request."""

    def __init__(self) -> None:
        super().__init__()
        self._table = RouteTable()
        self._seen: set[tuple[str, str]] = set()
        self.registered: list[Route] = []

    def add(
        self,
        method: str,
        pattern: Any,
        handler: Any,
        filters: Any = None,
        *,
        name: Any = None,
        doc: Doc | None = None,
    ) -> None:
        text = pattern.decode() if isinstance(pattern, bytes) else str(pattern)
        if not text.startswith("/"):
            text = "/" + text
        method = method.upper()
        if (method, text) in self._seen:
            raise RouteDuplicate(f"route {method} {text} is registered twice")
        self._seen.add((method, text))
        route = Route(method, text, handler, doc)
        self.registered.append(route)
        self._table.add(method, text, route)

    # BlackSheep's shortcuts, with the route's ``doc``
    def add_get(
        self, pattern: Any, handler: Any, *, name: Any = None, doc: Doc | None = None
    ) -> None:
        self.add("GET", pattern, handler, name=name, doc=doc)

    def add_post(
        self, pattern: Any, handler: Any, *, name: Any = None, doc: Doc | None = None
    ) -> None:
        self.add("POST", pattern, handler, name=name, doc=doc)

    def add_put(
        self, pattern: Any, handler: Any, *, name: Any = None, doc: Doc | None = None
    ) -> None:
        self.add("PUT", pattern, handler, name=name, doc=doc)

    def add_patch(
        self, pattern: Any, handler: Any, *, name: Any = None, doc: Doc | None = None
    ) -> None:
        self.add("PATCH", pattern, handler, name=name, doc=doc)

    def add_delete(
        self, pattern: Any, handler: Any, *, name: Any = None, doc: Doc | None = None
    ) -> None:
        self.add("DELETE", pattern, handler, name=name, doc=doc)

    def match(self, method: str, path: bytes) -> RouteMatch | None:
        return self._table.match(method, path)
