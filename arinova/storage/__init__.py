"""Where uploaded files go: S3-compatible storage (Cloudflare R2) when the ``R2_*``
settings are all present, else the local ``UPLOAD_DIR`` served at ``/uploads/``.

Keys are the original's: ``<uuid><ext>`` for chat files, ``avatars/<name>`` for agent
avatars. ``url(key)`` is what API bodies carry (``/uploads/<key>`` locally, relative),
``link(key)`` what message content carries (absolute).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from arinova.settings import Settings


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

    async def put(self, key: str, data: bytes | bytearray, content_type: str) -> None:
        """Store ``data`` under ``key`` (a new key: never overwrites)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        ...

    async def close(self) -> None: ...


async def open_storage(settings: Settings) -> Storage:
    """The storage the settings select, ready to use."""
    if settings.r2_enabled:
        from arinova.storage.s3 import S3Storage

        return await S3Storage.open(settings)
    from arinova.storage.local import LocalStorage

    return LocalStorage(settings.upload_dir, settings.better_auth_url)


__all__ = ["KeyExists", "Storage", "StorageError", "open_storage"]
