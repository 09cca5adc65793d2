"""S3-compatible object storage (Cloudflare R2 in production) through aioboto3.

One client per process, opened at start and closed at shutdown, so uploads reuse
its connection pool.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arinova.storage.base import StorageError

if TYPE_CHECKING:
    from arinova.settings import Settings

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30


class S3Storage:
    def __init__(self, client: Any, stack: contextlib.AsyncExitStack, bucket: str, public: str):
        self._client = client
        self._stack = stack
        self._bucket = bucket
        self._public_prefix = f"{public}/"

    @classmethod
    async def open(cls, settings: Settings) -> S3Storage:
        import aioboto3
        from aiobotocore.config import AioConfig  # type: ignore[import-untyped]

        config = AioConfig(
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            retries={"max_attempts": 3, "mode": "standard"},
            # R2 does not take the SDK's default request checksums on every call
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = aioboto3.Session()
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(
            session.client(
                "s3",
                endpoint_url=settings.r2_endpoint,
                region_name="auto",
                aws_access_key_id=settings.r2_access_key_id,
                aws_secret_access_key=settings.r2_secret_access_key,
                config=config,
            )
        )
        return cls(client, stack, settings.r2_bucket, settings.r2_public_url)

    def url(self, key: str) -> str:
        return self._public_prefix + key

    def link(self, key: str) -> str:
        return self._public_prefix + key

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """One ``PutObject`` whose body is read from the file as it is sent (a file is
        at most ``MAX_FILE_SIZE``, far below the single-request limit)."""
        try:
            with path.open("rb") as body:
                size = os.fstat(body.fileno()).st_size
                await self._client.put_object(
                    Bucket=self._bucket,
                    Key=key,
                    Body=body,
                    ContentLength=size,
                    ContentType=content_type,
                )
        except Exception as exc:
            raise StorageError(f"cannot store {key!r} in bucket {self._bucket!r}: {exc}") from exc

    async def delete(self, key: str) -> None:
        try:
            await self._client.delete_object(Bucket=self._bucket, Key=key)
        except Exception as exc:
            raise StorageError(
                f"cannot remove {key!r} from bucket {self._bucket!r}: {exc}"
            ) from exc

    async def check(self) -> str:
        try:
            await self._client.head_bucket(Bucket=self._bucket)
        except Exception as exc:
            raise StorageError(f"bucket {self._bucket!r} cannot be reached: {exc}") from exc
        return f"bucket {self._bucket!r} reachable"

    async def close(self) -> None:
        await self._stack.aclose()
