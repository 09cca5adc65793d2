"""The one configuration of the test servers, in process (``server_settings``) and for an
``arinova serve`` child process (``server_env``, the same settings as its environment):
the module's database, the tests' Redis, quiet logs, and a per-IP request limit no test
reaches by accident."""

from __future__ import annotations

import os
from pathlib import Path

from arinova.settings import Settings

#: the Redis of the tests (run your own: pub/sub channels cross Redis databases)
TEST_REDIS_URL = os.environ.get("ARINOVA_TEST_REDIS_URL", "redis://127.0.0.1:6379/1")
#: the event loop the async tests run on: ``uvloop`` (production's) or ``asyncio``
TEST_LOOP = os.environ.get("ARINOVA_TEST_LOOP", "uvloop")
#: every test server counts the requests from 127.0.0.1 in the same Redis: the tests of
#: the limit itself set their own
NO_RATE_LIMIT = 1_000_000


def clean_env(**variables: str) -> dict[str, str]:
    """An environment for a child process without the caller's server settings."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(variables)
    return env


def server_env(database_url: str, upload_dir: Path, **overrides: str) -> dict[str, str]:
    """The environment of a test server process; ``overrides`` are more variables, or
    other values of these."""
    variables = {
        "HOST": "127.0.0.1",
        "PORT": "0",
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "UPLOAD_DIR": str(upload_dir),
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_MAX": str(NO_RATE_LIMIT),
    }
    return clean_env(**(variables | overrides))


def server_settings(database_url: str, upload_dir: Path, /, **overrides: object) -> Settings:
    """The settings of a test server in this process; ``overrides`` are ``Settings`` fields."""
    return Settings.from_env(server_env(database_url, upload_dir)).replace(**overrides)
