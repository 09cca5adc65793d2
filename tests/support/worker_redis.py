"""Under pytest-xdist (``make test`` runs the suite on several workers), each worker gets a
private ``redis-server`` of its own and its tests and servers use it.

One Redis cannot be shared between workers: pub/sub channels cross Redis databases, so the
servers of two workers would hear each other's bus, and per-client counters (the HTTP
limit of 127.0.0.1) would add up across them. ``tests.support.config`` reads
``ARINOVA_TEST_REDIS_URL`` when it is imported, so this plugin is loaded with ``-p`` (see
``addopts``) and sets it before any conftest is. Without xdist nothing changes: the tests
use the machine's Redis (or ``ARINOVA_TEST_REDIS_URL``).
"""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.support.redis_server import RedisServer

WORKER_VARIABLE = "PYTEST_XDIST_WORKER"
REDIS_VARIABLE = "ARINOVA_TEST_REDIS_URL"

_server = pytest.StashKey[RedisServer]()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    if WORKER_VARIABLE not in os.environ:
        return
    redis = RedisServer()
    # started on the main thread, which lives as long as the worker (PR_SET_PDEATHSIG)
    asyncio.run(redis.start())
    early_config.stash[_server] = redis
    os.environ[REDIS_VARIABLE] = redis.url()


def pytest_unconfigure(config: pytest.Config) -> None:
    redis = config.stash.get(_server, None)
    if redis is not None:
        asyncio.run(redis.close())
