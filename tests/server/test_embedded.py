"""``arinova serve`` with no DATABASE_URL runs its own PostgreSQL (pgserver) when installed."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest

from arinova.db import embedded
from arinova.settings import DEFAULT_DATABASE_URL, Settings
from tests.server.test_cli import ARINOVA, free_port, wait_healthy
from tests.support.config import clean_env

needs_pgserver = pytest.mark.skipif(not embedded.available(), reason="pgserver not installed")


def test_unset_database_url_means_embedded_when_pgserver_is_installed() -> None:
    expected = embedded.EMBEDDED if embedded.available() else DEFAULT_DATABASE_URL
    assert Settings.from_env({}).database_url == expected
    assert Settings.from_env({"DATABASE_URL": "postgres://x/y"}).database_url == "postgres://x/y"


@needs_pgserver
async def test_serve_without_database_url_creates_migrates_and_stops_its_postgres(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "pgdata"
    port = free_port()
    env = clean_env(ARINOVA_DATA_DIR=str(data_dir), UPLOAD_DIR=str(tmp_path), LOG_LEVEL="WARNING")
    log = tmp_path / "serve.log"
    process = await asyncio.create_subprocess_exec(
        *ARINOVA,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await wait_healthy(f"http://127.0.0.1:{port}")
        async with httpx.AsyncClient() as client:
            health = (await client.get(f"http://127.0.0.1:{port}/health")).json()
        assert health["db"] == "ok" and health["redis"] == "ok"
        assert (data_dir / "postmaster.pid").exists()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0, log.read_text()
        assert not (data_dir / "postmaster.pid").exists(), "embedded PostgreSQL left running"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
