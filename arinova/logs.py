"""Structured logs: one JSON object per line on stderr.

Each line has ``ts`` (ISO-8601 UTC, ms), ``level``, ``logger``, ``msg``, the current
``request_id`` when a request is being handled, ``exc`` (formatted traceback) when
there is exception info, and any ``extra={...}`` fields given to the logging call.

``OutageFilter`` keeps a dependency's outage from flooding them: the first failure that
says PostgreSQL or Redis cannot be reached is logged with its traceback, the ones that
follow are counted and summed up every ``SUMMARY_S`` in one line, and once none came for
``QUIET_S`` the next line of the process says the outage ended.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final

import orjson

#: the id of the request being handled in this task (set by the HTTP pipeline)
request_id_var: ContextVar[str | None] = ContextVar("arinova_request_id", default=None)
#: the signed-in user of that request, once it is known (error reports name them)
user_id_var: ContextVar[str | None] = ContextVar("arinova_user_id", default=None)

_LEVELS: Final = {"TRACE": logging.DEBUG, "FATAL": logging.CRITICAL, "WARN": logging.WARNING}

# attributes every LogRecord has; anything else came from ``extra=``
_STANDARD: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


#: UUID version 4 bits: the version nibble, and the variant's two top bits
_V4_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET: Final = (0x4000 << 64) | (0x8000 << 48)


def new_request_id(bits: Callable[[int], int] = random.getrandbits) -> str:
    """A random version-4 UUID for a request that brought no ``x-request-id``: it only tells
    log lines and error reports apart, so it needs no system entropy (``uuid4`` reads
    ``os.urandom``, a system call, and builds an object: 3.4 µs against 0.9)."""
    h = f"{bits(128) & _V4_CLEAR | _V4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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


#: a failure seen this long after the last one of its dependency starts a new outage
QUIET_S: Final = 10.0
#: while failures go on, one line sums them up this often
SUMMARY_S: Final = 10.0


def _dependency(exc: BaseException | None) -> str | None:
    """Which dependency a failure says is unreachable (PostgreSQL, Redis), if any: a
    connection failure (or one it was raised from) that came out of that client's code."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if _connection_failure(exc):
            origin = _origin(exc.__traceback__)
            if origin is not None:
                return origin
        exc = exc.__cause__ or exc.__context__
    return None


def _connection_failure(exc: BaseException) -> bool:
    from arinova.db.unreachable import unreachable  # logging is set up before the app

    name, module = type(exc).__name__, type(exc).__module__
    if module.startswith("redis"):
        return name in ("ConnectionError", "TimeoutError", "BusyLoadingError")
    return unreachable(exc) or isinstance(exc, ConnectionError)


def _origin(tb: TracebackType | None) -> str | None:
    """The client whose code raised it (the innermost frame of one)."""
    found = None
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.startswith("asyncpg"):
            found = "PostgreSQL"
        elif module.startswith(("redis", "arinova.kv")):
            found = "Redis"
        tb = tb.tb_next
    return found


class _Outage:
    __slots__ = ("count", "last", "reported", "since", "summed_at")

    def __init__(self, now: float) -> None:
        self.since = self.last = self.summed_at = now
        #: failures seen, and of them the ones a line has told of
        self.count = self.reported = 1


class OutageFilter(logging.Filter):
    """See the module's docstring. ``emit`` writes the lines this filter adds itself."""

    def __init__(
        self, emit: Callable[[logging.LogRecord], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._emit = emit
        self._clock = clock
        self._outages: dict[str, _Outage] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        self._end_quiet(now, record)
        exc = record.exc_info[1] if record.exc_info else None
        dependency = _dependency(exc)
        if dependency is None:
            return True
        outage = self._outages.get(dependency)
        if outage is None:
            self._outages[dependency] = _Outage(now)
            record.msg = f"{dependency} unreachable (repeats summed up every {SUMMARY_S:.0f} s): {record.msg}"
            return True
        outage.count += 1
        outage.last = now
        if now - outage.summed_at < SUMMARY_S:
            return False
        failures, elapsed = outage.count - outage.reported, now - outage.summed_at
        outage.reported, outage.summed_at = outage.count, now
        record.msg = f"{dependency} still unreachable: %d failures in %.0f s, the last: %r"
        record.args = (failures, elapsed, exc)
        record.exc_info = None
        record.exc_text = None
        return True

    def _end_quiet(self, now: float, like: logging.LogRecord) -> None:
        for dependency, outage in list(self._outages.items()):
            if now - outage.last < QUIET_S:
                continue
            del self._outages[dependency]
            ended = logging.LogRecord(
                "arinova.outage",
                logging.WARNING,
                __file__,
                0,
                "%s: no failure for %.0f s; the outage lasted %.0f s with %d failures",
                (dependency, QUIET_S, outage.last - outage.since, outage.count),
                None,
            )
            ended.created = like.created
            self._emit(ended)


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
    handler.addFilter(OutageFilter(handler.emit))
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
