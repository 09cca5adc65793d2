"""Unhandled errors to Sentry when ``SENTRY_DSN`` is set.

The original initialises ``@sentry/node`` with the DSN, ``environment`` = ``NODE_ENV``
(``development`` when unset) and a traces sample rate of 0.1, and captures every error its
request error handler renders as a 500. Here every unexpected failure is already logged
once at ERROR with its exception (the REST error middleware, the socket handlers, the
realtime pipeline, push trigger and coordinators): a handler on the root logger turns each
such record into exactly one Sentry event. The SDK's own integrations are off (no second
event from its logging integration, no breadcrumbs of SQL or Redis commands), and so are
local variables in frames: an event carries the exception, the logger, the request id,
route and user id, never cookies, credentials, bodies or message content.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import sentry_sdk

from arinova import __version__
from arinova.logs import request_id_var, user_id_var
from arinova.settings import Settings

#: request headers an event never carries
_SECRET_HEADERS = frozenset({"cookie", "authorization", "set-cookie", "x-api-key"})
#: how long closing waits for events still being sent
FLUSH_S = 2.0


def scrub(event: Any, hint: Any) -> Any:
    """``before_send``: drop cookies, credentials and bodies from whatever reaches an event."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("cookies", None)
        request.pop("data", None)
        request.pop("query_string", None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            for name in [n for n in headers if n.lower() in _SECRET_HEADERS]:
                del headers[name]
    event.pop("breadcrumbs", None)
    return event


class SentryHandler(logging.Handler):
    """One Sentry event per log record at ERROR or above."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._report(record)
        except Exception:
            self.handleError(record)

    def _report(self, record: logging.LogRecord) -> None:
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("logger", record.name)
            request_id = request_id_var.get()
            if request_id is not None:
                scope.set_tag("request_id", request_id)
            route = getattr(record, "route", None)
            if route is not None:
                scope.set_tag("route", str(route))
                method = getattr(record, "method", None)
                scope.set_context("request", {"method": method, "route": route})
            user_id = getattr(record, "user_id", None) or user_id_var.get()
            if user_id is not None:
                scope.set_user({"id": str(user_id)})
            scope.set_extra("log", record.getMessage())
            exc = record.exc_info[1] if record.exc_info else None
            if exc is not None:
                sentry_sdk.capture_exception(exc)
            else:
                sentry_sdk.capture_message(record.getMessage(), level="error")


def _init(settings: Settings) -> None:
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.node_env or "development",
        release=f"arinova@{__version__}",
        traces_sample_rate=0.1,
        default_integrations=False,
        auto_enabling_integrations=False,
        include_local_variables=False,
        max_request_body_size="never",
        before_send=scrub,
    )


@contextlib.contextmanager
def error_reporting(settings: Settings) -> Iterator[None]:
    """Report errors for as long as the block runs (a no-op without ``SENTRY_DSN``); on
    exit, send what is pending (bounded) and stop."""
    if not settings.sentry_dsn:
        yield
        return
    _init(settings)
    handler = SentryHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        client = sentry_sdk.get_client()
        client.close(timeout=FLUSH_S)
        sentry_sdk.get_global_scope().set_client(None)
