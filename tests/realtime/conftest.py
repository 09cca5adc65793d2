"""Fixtures of the realtime tests."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.config import server_env
from tests.support.ports import free_port


class ServeProcess:
    """``arinova serve`` in its own process (what the socket helpers need: urls)."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"


@pytest.fixture
async def serve_process(database: str, tmp_path: Path) -> AsyncIterator[ServeProcess]:
    """``arinova serve`` on the test's database, in its own process (to kill)."""
    port = free_port()
    env = server_env(database, tmp_path)
    log = tmp_path / "serve.log"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arinova",
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
    running = ServeProcess(process, port)
    async with httpx.AsyncClient() as client, asyncio.timeout(30):
        while True:
            try:
                if (await client.get(f"{running.url}/health")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    yield running
    if process.returncode is None:
        process.kill()
        await process.wait()
