"""Behaviour every route shares (contract rest.md §1), in one pass per request.

For CPU's sake this is not a chain of BlackSheep middlewares but the app's request
entry point (``HttpApp.handle``), in the original's order:

1. request id: ``x-request-id`` or a new UUID v4, in ``arinova.logs.request_id_var``
   for every log line of the request (never echoed);
1b. a path that JavaScript's ``decodeURI`` refuses → Fastify's 400 ``FST_ERR_BAD_URL``,
   nothing else runs;
2. ``OPTIONS`` on any path → CORS preflight (204 / 400), nothing else runs;
3. route lookup (``ArinovaRouter``); unknown → Fastify's 404 body;
4. rate limit (every route but ``/health``, ``/ws``, ``/ws/agent``): headers on the
   response, 429 when over;
5. body parsing (``arinova.http.body``): 400/413/415 before the handler runs (on an
   unknown route too, before its 404);
6. the handler; ``ApiError`` → its status/body/headers, anything else → logged with the
   request id, 500 ``{"error":"Internal server error","code":"INTERNAL_ERROR"}``;
7. CORS headers on every response;
8. the request counted in the metrics (``arinova.http.request_metrics``).

Handlers are called directly (no BlackSheep middlewares, binding or normalisation).
Responses are written by ``send_response``: as BlackSheep's writer, but a 204/304
carries neither ``content-length`` nor ``content-type`` (as the original), and HEAD
responses keep the GET headers without producing the body.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import orjson
from blacksheep import Application, Content, Request, Response
from blacksheep.exceptions import HTTPException, MessageAborted

from arinova.compat import raw_path, raw_query
from arinova.errors import ApiError
from arinova.http.body import parse_body, parse_unrouted_body
from arinova.http.cors import Cors
from arinova.http.request_metrics import RequestMetrics
from arinova.http.router import ArinovaRouter, RouteMatch
from arinova.js import decode_uri_throws
from arinova.logs import new_request_id, request_id_var, user_id_var
from arinova.ratelimit.http import RateLimiter
from arinova.state import AppState

#: routes outside the HTTP rate limit (decisions.md Q04)
RATE_LIMIT_EXEMPT: Final = frozenset({b"/health", b"/ws", b"/ws/agent"})
#: longest client-supplied request id kept for the logs
MAX_REQUEST_ID: Final = 200

log = logging.getLogger("arinova.http")


def error_response(error: ApiError) -> Response:
    """The response a client sees for an ``ApiError``."""
    content = (
        None
        if error.body is None
        else Content(error.content_type.encode(), orjson.dumps(error.body))
    )
    headers = [
        (name.lower().encode(), value.encode("latin-1")) for name, value in error.headers.items()
    ]
    return Response(error.status, headers, content)


def bad_url_response(url: str) -> Response:
    """Fastify's answer to a path its router cannot decode: written before any hook, so
    without CORS or rate-limit headers."""
    body = {
        "error": "Bad Request",
        "code": "FST_ERR_BAD_URL",
        "message": f"'{url}' is not a valid url component",
        "statusCode": 400,
    }
    return Response(400, None, Content(b"application/json", orjson.dumps(body)))


def raw_url(request: Request) -> str:
    """The request target as sent (path and query), as Node's ``req.url``."""
    query = raw_query(request)
    path = raw_path(request)
    return (path + b"?" + query if query else path).decode("latin-1")


class Pipeline:
    def __init__(self, state: AppState, router: ArinovaRouter) -> None:
        self.router = router
        self.cors = Cors(state.settings.cors_origins)
        self.limiter = RateLimiter(state.kv, state.settings)
        self.requests = RequestMetrics(state.metrics, router.registered)

    async def handle(self, request: Any) -> Response:
        started = time.perf_counter()
        raw_id = request.get_first_header(b"x-request-id")
        request_id_var.set(
            raw_id[:MAX_REQUEST_ID].decode("latin-1") if raw_id else new_request_id()
        )
        user_id_var.set(None)
        path = raw_path(request)
        method = request.method
        if decode_uri_throws(path):
            response = bad_url_response(raw_url(request))
            self.requests.unmatched(method).done(400, time.perf_counter() - started)
            return response
        if method == "OPTIONS":
            response = self.cors.preflight(request)
            self.requests.unmatched(method).done(response.status, time.perf_counter() - started)
            return response
        match = self.router.match(method, path)
        if match is None:
            series = self.requests.unmatched(method)
            response = await _not_found(request)
        else:
            series = self.requests.matched(match.route, method)
            request.route_values = match.values
            response = await self._run(request, match)
        # the original's order: CORS headers, then rate limit, then the route's own
        _prepend(response, self.cors.headers(request.get_first_header(b"origin")))
        series.done(response.status, time.perf_counter() - started)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "request completed",
                extra={
                    "method": request.method,
                    "url": raw_url(request),
                    "status": response.status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
        return response

    async def _run(self, request: Any, match: RouteMatch) -> Response:
        limit_headers = None
        try:
            if match.route.pattern not in RATE_LIMIT_EXEMPT:
                limit_headers = self.limiter.hit(request)
            await parse_body(request)
            response: Response | None = await match.route.handler(request)
            if response is None:
                response = Response(204, None, None)
        except ApiError as error:
            if error.status >= 500:
                log.error("request failed: %s", error)
            response = error_response(error)
        except HTTPException as error:
            response = error_response(_from_http_exception(error))
        except MessageAborted:
            log.debug("client went away while sending the body")
            response = Response(400, None, None)
        except Exception:
            log.exception(
                "Unhandled error",
                extra={"route": match.pattern.decode("latin-1"), "method": request.method},
            )
            response = error_response(ApiError.internal())
        if limit_headers:
            _prepend(response, limit_headers)
        return response


def _prepend(response: Response, headers: list[tuple[bytes, bytes]]) -> None:
    values = response.headers.values
    if values is None:
        response.headers.values = headers
    else:
        values[0:0] = headers


async def _not_found(request: Any) -> Response:
    """Fastify's 404, after the body parsers it would still run (their errors win)."""
    try:
        await parse_unrouted_body(request)
    except ApiError as error:
        return error_response(error)
    except MessageAborted:
        return Response(400, None, None)
    return error_response(ApiError.route_not_found(request.method, raw_url(request)))


def _from_http_exception(error: HTTPException) -> ApiError:
    status = int(error.status)
    if status >= 500:
        log.error("request failed: %s", error)
        return ApiError.internal()
    return ApiError.framework(status, str(error) or "Error")


async def send_response(response: Response, send: Any, head: bool) -> None:
    headers = response.headers.values
    if headers is None:
        headers = []
    content: Any = response.content
    status = response.status
    if content is not None:
        headers.append((b"content-type", content.type or b"application/octet-stream"))
        if content.length >= 0:
            headers.append((b"content-length", str(content.length).encode()))
    elif status != 204 and status != 304 and not _has(headers, b"content-length"):
        headers.append((b"content-length", b"0"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if content is None or head:
        await send({"type": "http.response.body", "body": b""})
    elif content.body is not None and content.length >= 0:
        await send({"type": "http.response.body", "body": content.body})
    else:
        async for chunk in content.get_parts():
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def _has(headers: list[tuple[bytes, bytes]], name: bytes) -> bool:
    return any(key.lower() == name for key, _ in headers)


class HttpApp(Application):
    """The BlackSheep application with the shared pipeline as its request entry point."""

    pipeline: Pipeline

    router: ArinovaRouter

    async def start(self) -> None:
        await super().start()  # type: ignore[no-untyped-call]
        await self.pipeline.limiter.start()

    async def stop(self) -> None:
        await self.pipeline.limiter.stop()
        await super().stop()  # type: ignore[no-untyped-call]

    async def handle(self, request: Request) -> Response:
        response: Response = await self.pipeline.handle(request)
        return response

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The ASGI entry point: HTTP requests go through the pipeline and
        ``send_response``, anything else to BlackSheep."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)  # type: ignore[no-untyped-call]
            return
        if not self.started:
            await self.start()
        request: Any = self.instantiate_request(scope, receive)
        response = await self.pipeline.handle(request)
        await send_response(response, send, scope["method"] == "HEAD")
        request.scope = None
        request.dispose()


def install_common(app: HttpApp, state: AppState) -> None:
    """Attach the shared pipeline to ``app`` (built on an ``ArinovaRouter``)."""
    if not isinstance(app.router, ArinovaRouter):
        raise TypeError("the HTTP app must use an ArinovaRouter")
    app.pipeline = Pipeline(state, app.router)
