"""What reaches an event loop's exception handler: an exception in a callback, a task whose
exception nobody retrieved, a task destroyed while pending. A server that is right never
gets there, so the suite fails a test when it does (``tests/conftest.py``)."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

#: marks a test (or module) that expects the event loop's exception handler to be called
EXPECTS_LOOP_ERRORS = "expects_loop_errors"
#: contexts kept for the report (the rest are only counted)
KEPT = 20


class LoopErrors:
    """An exception handler that collects what it is given."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []
        self.count = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.count += 1
        if len(self.contexts) < KEPT:
            self.contexts.append(context)

    def report(self) -> str:
        parts = [f"the event loop's exception handler was called {self.count} time(s):"]
        for context in self.contexts:
            parts.append(f"- {context.get('message', '(no message)')}")
            for key in ("task", "future", "handle", "protocol", "transport"):
                if key in context:
                    parts.append(f"  {key}: {context[key]!r}")
            exception = context.get("exception")
            if isinstance(exception, BaseException):
                parts.append("  " + "".join(traceback.format_exception(exception)).rstrip())
        return "\n".join(parts)

    def check(self, node: pytest.Item | pytest.Collector) -> None:
        """Fail ``node`` (a test or module) if anything was collected, unless it is marked
        ``expects_loop_errors``."""
        if self.count and node.get_closest_marker(EXPECTS_LOOP_ERRORS) is None:
            pytest.fail(self.report(), pytrace=False)

    @contextmanager
    def installed(self, loop: asyncio.AbstractEventLoop) -> Iterator[LoopErrors]:
        previous = loop.get_exception_handler()
        loop.set_exception_handler(self)
        try:
            yield self
        finally:
            loop.set_exception_handler(previous)
