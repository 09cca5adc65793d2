"""The storage interface and its errors."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class StorageError(Exception):
    """The file could not be stored or removed."""


class KeyExists(StorageError):
    """``put`` found a file already stored under the key (local disk only)."""


class Storage(Protocol):
    def url(self, key: str) -> str:
        """The URL API bodies give for a stored key."""
        ...

    def link(self, key: str) -> str:
        """The absolute URL written into message content."""
        ...

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the content of the file at ``path`` under ``key`` (a new key), streamed
        from the file; ``path`` itself is left in place."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        ...

    async def check(self) -> str:
        """Reach the storage and prove it takes files (raises ``StorageError`` if not);
        says what was checked."""
        ...

    async def close(self) -> None: ...
