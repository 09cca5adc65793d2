"""A real S3-compatible HTTP server for storage tests: moto in server mode, in a child
process on a free loopback port (moto's ``[server]`` extra must be installed).

async with moto_server() as s3:
    s3.settings_overrides()          # R2_* settings pointing at it
    await s3.get_object(key)         # (body, content type) as stored
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import re
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"
PUBLIC_URL = "https://cdn.example.test"
START_TIMEOUT_S = 30.0

_RUNNING = re.compile(rb"Running on (http://127\.0\.0\.1:\d+)")


@dataclass
class S3Server:
    endpoint: str
    bucket: str
    client: Any  # a botocore S3 client (sync), used off the event loop

    def settings_overrides(self) -> dict[str, str]:
        return {
            "r2_endpoint": self.endpoint,
            "r2_access_key_id": ACCESS_KEY,
            "r2_secret_access_key": SECRET_KEY,
            "r2_bucket": self.bucket,
            "r2_public_url": PUBLIC_URL,
        }

    async def get_object(self, key: str) -> tuple[bytes, str]:
        def fetch() -> tuple[bytes, str]:
            reply = self.client.get_object(Bucket=self.bucket, Key=key)
            return reply["Body"].read(), reply["ContentType"]

        return await asyncio.to_thread(fetch)

    async def keys(self) -> list[str]:
        def listing() -> list[str]:
            reply = self.client.list_objects_v2(Bucket=self.bucket)
            return sorted(item["Key"] for item in reply.get("Contents", []))

        return await asyncio.to_thread(listing)

    async def new_bucket(self) -> str:
        name = f"bucket-{uuid.uuid4().hex[:12]}"
        await asyncio.to_thread(self.client.create_bucket, Bucket=name)
        return name


@contextlib.asynccontextmanager
async def moto_server() -> AsyncIterator[S3Server]:
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        pytest.fail("moto[server] is not installed: pip install 'moto[server]'")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "moto.server",
        "-H",
        "127.0.0.1",
        "-p",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        endpoint = await asyncio.wait_for(_endpoint(process), START_TIMEOUT_S)
        drain = asyncio.create_task(_drain(process))
        client = _client(endpoint)
        bucket = f"bucket-{uuid.uuid4().hex[:12]}"
        await asyncio.to_thread(client.create_bucket, Bucket=bucket)
        try:
            yield S3Server(endpoint, bucket, client)
        finally:
            drain.cancel()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _endpoint(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    seen = b""
    while True:
        line = await process.stdout.readline()
        if not line:
            raise RuntimeError(f"moto server exited before listening: {seen.decode()}")
        seen += line
        match = _RUNNING.search(line)
        if match:
            return match.group(1).decode()


async def _drain(process: asyncio.subprocess.Process) -> None:
    """Keep reading the child's log so its pipe never fills up."""
    assert process.stdout is not None
    while await process.stdout.read(65536):
        pass


def _client(endpoint: str) -> Any:
    import boto3  # type: ignore[import-untyped]

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
