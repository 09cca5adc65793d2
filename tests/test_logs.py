"""``OutageFilter``: failures that say PostgreSQL or Redis cannot be reached (real ones, from
the real clients against a port nobody listens on) are logged once with the traceback,
summed up while they go on, and said to have ended; every other record passes as it is.
A request without an id gets a version-4 UUID."""

from __future__ import annotations

import logging
import random
import uuid

import asyncpg
import pytest
from redis.asyncio import Redis

from arinova.logs import QUIET_S, SUMMARY_S, OutageFilter, new_request_id
from tests.support.clock import ManualClock
from tests.support.ports import free_port


class Lines:
    """What the handler would write: the records that passed, and the filter's own."""

    def __init__(self) -> None:
        self.records: list[logging.LogRecord] = []

    def add(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


async def postgres_failure() -> BaseException:
    with pytest.raises(OSError) as caught:
        await asyncpg.connect(f"postgresql://root@127.0.0.1:{free_port()}/none", timeout=2)
    return caught.value


async def redis_failure() -> BaseException:
    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(Exception) as caught:
            await client.ping()
    finally:
        await client.aclose()
    return caught.value


def record_of(exc: BaseException | None, message: str = "request failed") -> logging.LogRecord:
    info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("arinova.http", logging.ERROR, __file__, 1, message, (), info)


def passed(outage: OutageFilter, lines: Lines, record: logging.LogRecord) -> None:
    if outage.filter(record):
        lines.add(record)


async def test_an_outage_is_one_line_a_summary_and_its_end() -> None:
    clock = ManualClock()
    lines = Lines()
    outage = OutageFilter(lines.add, clock=clock.monotonic)
    failure = await postgres_failure()
    for _ in range(500):  # a burst of failing requests
        passed(outage, lines, record_of(failure))
        clock.advance(SUMMARY_S / 100)
    assert len(lines.records) == 1 + 4  # the first one, then a summary every SUMMARY_S
    first = lines.records[0]
    assert first.exc_info is not None
    assert first.getMessage().startswith("PostgreSQL unreachable")
    summaries = lines.records[1:]
    assert all(r.exc_info is None for r in summaries)
    counts = [int(m.split(": ")[1].split()[0]) for m in lines.messages[1:]]
    assert all(m.startswith("PostgreSQL still unreachable: ") for m in lines.messages[1:])
    assert all(99 <= n <= 101 for n in counts)  # ~SUMMARY_S of failures each
    # quiet for a while: the next line of any kind tells the outage ended
    clock.advance(QUIET_S)
    passed(outage, lines, record_of(None, "a request"))
    assert lines.messages[-2].startswith("PostgreSQL: no failure for")
    assert "with 500 failures" in lines.messages[-2]
    assert lines.messages[-1] == "a request"
    # the next failure starts a new outage, logged in full
    passed(outage, lines, record_of(failure))
    assert lines.records[-1].exc_info is not None


async def test_each_dependency_has_its_own_outage_and_other_errors_pass() -> None:
    clock = ManualClock()
    lines = Lines()
    outage = OutageFilter(lines.add, clock=clock.monotonic)
    postgres, redis = await postgres_failure(), await redis_failure()
    other = ValueError("a bug")
    for _ in range(3):
        for exc in (postgres, redis, other):
            passed(outage, lines, record_of(exc))
    messages = lines.messages
    assert sum(m.startswith("PostgreSQL unreachable") for m in messages) == 1
    assert sum(m.startswith("Redis unreachable") for m in messages) == 1
    assert messages.count("request failed") == 3  # the bug, every time, with its traceback
    assert len(messages) == 5


def test_a_generated_request_id_is_a_version_4_uuid_whatever_the_bits() -> None:
    for bits in (lambda n: 0, lambda n: (1 << n) - 1, random.Random(7).getrandbits):
        made = new_request_id(bits)
        parsed = uuid.UUID(made)
        assert (str(parsed), parsed.version, parsed.variant) == (made, 4, uuid.RFC_4122)
    assert len({new_request_id() for _ in range(1000)}) == 1000
