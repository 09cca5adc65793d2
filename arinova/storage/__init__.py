"""Where uploaded files go: S3-compatible storage (Cloudflare R2) when the ``R2_*``
settings are all present, else the local ``UPLOAD_DIR`` served at ``/uploads/``.

Keys are the original's: ``<uuid><ext>`` for chat files, ``avatars/<name>`` for agent
avatars. ``url(key)`` is what API bodies carry (``/uploads/<key>`` locally, relative),
``link(key)`` what message content carries (absolute).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arinova.storage.base import KeyExists, Storage, StorageError

if TYPE_CHECKING:
    from arinova.settings import Settings


async def open_storage(settings: Settings) -> Storage:
    """The storage the settings select, ready to use."""
    if settings.r2_enabled:
        from arinova.storage.s3 import S3Storage

        return await S3Storage.open(settings)
    from arinova.storage.local import LocalStorage

    return LocalStorage(settings.upload_dir, settings.better_auth_url)


__all__ = ["KeyExists", "Storage", "StorageError", "open_storage"]
