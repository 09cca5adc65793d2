"""Structured logs: one JSON object per line on stderr.

Each line has ``ts`` (ISO-8601 UTC, ms), ``level``, ``logger``, ``msg``, the current
``request_id`` when a request is being handled, ``exc`` (formatted traceback) when
there is exception info, and any ``extra={...}`` fields given to the logging call.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final

import orjson

#: the id of the request being handled in this task (set by the HTTP pipeline)
request_id_var: ContextVar[str | None] = ContextVar("arinova_request_id", default=None)

_LEVELS: Final = {"TRACE": logging.DEBUG, "FATAL": logging.CRITICAL, "WARN": logging.WARNING}

# attributes every LogRecord has; anything else came from ``extra=``
_STANDARD: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


def current_request_id() -> str | None:
    return request_id_var.get()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "ts": f"{ts:%Y-%m-%dT%H:%M:%S}.{ts.microsecond // 1000:03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return orjson.dumps(entry, default=str).decode()


def parse_level(level: str) -> int:
    name = level.strip().upper() or "INFO"
    if name in _LEVELS:
        return _LEVELS[name]
    value = logging.getLevelName(name)
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r} (use DEBUG, INFO, WARNING or ERROR)")
    return value


def configure_logging(level: str) -> None:
    """Send every log record of the process to stderr as JSON lines at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    numeric = parse_level(level)
    root.setLevel(numeric)
    # libraries that are chatty at DEBUG
    for name in ("asyncio", "httpx", "httpcore", "blacksheep.server"):
        logging.getLogger(name).setLevel(max(numeric, logging.INFO))
    # warns on every malformed form a client sends, which is already answered with a 400
    logging.getLogger("python_multipart").setLevel(max(numeric, logging.ERROR))
    # uvicorn's own loggers propagate to the root handler
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
