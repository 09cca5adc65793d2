"""The request metrics of the HTTP pipeline: a request counted once, under its method, its
route's template (``/api/agents/:id``, never the path) and its status.

The children of each route are bound when its first response of a status is counted, so
a request costs two dictionary lookups, an integer add (the count, a ``Tally``) and the
latency histogram's observation. A request no route takes (an unknown path, a CORS
preflight, a path that cannot be decoded) counts under ``UNMATCHED``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from arinova.http.router import Route
    from arinova.metrics import Metrics, Observe, Tally

#: the route label of a request no route took
UNMATCHED: Final = "(unmatched)"
#: methods counted apart on unmatched requests (the parser knows a few dozen); past this
#: many, the rest count as ``OTHER``
MAX_UNMATCHED_METHODS: Final = 32
OTHER: Final = "OTHER"


class RouteSeries:
    """The series of one (method, route template), by status."""

    __slots__ = ("_by_status", "_method", "_metrics", "_route")

    def __init__(self, metrics: Metrics, method: str, route: str) -> None:
        self._metrics = metrics
        self._method = method
        self._route = route
        self._by_status: dict[int, tuple[Tally, Observe]] = {}

    def done(self, status: int, seconds: float) -> None:
        series = self._by_status.get(status)
        if series is None:
            series = self._bind(status)
        series[0].inc()
        series[1].observe(seconds)

    def _bind(self, status: int) -> tuple[Tally, Observe]:
        metrics = self._metrics
        labels = (self._method, self._route, str(status))
        series = (
            metrics.tally(metrics.http_requests.labels(*labels)),
            metrics.http_duration.labels(*labels),
        )
        self._by_status[status] = series
        return series


class RequestMetrics:
    def __init__(self, metrics: Metrics, routes: Iterable[Route]) -> None:
        self._metrics = metrics
        self._routes = {
            route: RouteSeries(metrics, route.method, route.pattern.decode()) for route in routes
        }
        #: HEAD requests served by a GET route
        self._head: dict[Route, RouteSeries] = {}
        self._unmatched: dict[str, RouteSeries] = {}

    def matched(self, route: Route, method: str) -> RouteSeries:
        series = (self._routes if method == route.method else self._head).get(route)
        if series is None:
            # a HEAD served by a GET route (or a route added after the pipeline was built)
            series = RouteSeries(self._metrics, method, route.pattern.decode())
            (self._routes if method == route.method else self._head)[route] = series
        return series

    def unmatched(self, method: str) -> RouteSeries:
        series = self._unmatched.get(method)
        if series is None:
            if len(self._unmatched) >= MAX_UNMATCHED_METHODS:
                method = OTHER
                series = self._unmatched.get(method)
            if series is None:
                series = self._unmatched[method] = RouteSeries(self._metrics, method, UNMATCHED)
        return series
