"""Files on the local disk under ``UPLOAD_DIR`` (served by the ``/uploads/*`` route)."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
from pathlib import Path

from arinova.storage.base import KeyExists, StorageError


class LocalStorage:
    def __init__(self, root: Path, base_url: str) -> None:
        self.root = root.resolve()
        self._link_prefix = f"{base_url}/uploads/"

    def url(self, key: str) -> str:
        return f"/uploads/{key}"

    def link(self, key: str) -> str:
        return self._link_prefix + key

    def path_of(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if path.parent != self.root and self.root not in path.parents:
            raise StorageError(f"storage key escapes the upload directory: {key!r}")
        return path

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        dest = self.path_of(key)
        try:
            await asyncio.to_thread(_place_new, path, dest)
        except FileExistsError as exc:
            raise KeyExists(f"{dest} exists already") from exc
        except OSError as exc:
            raise StorageError(f"cannot write {dest}: {exc}") from exc

    async def delete(self, key: str) -> None:
        path = self.path_of(key)
        try:
            await asyncio.to_thread(path.unlink, True)
        except OSError as exc:
            raise StorageError(f"cannot remove {path}: {exc}") from exc

    async def check(self) -> str:
        try:
            await asyncio.to_thread(_probe_writable, self.root)
        except OSError as exc:
            raise StorageError(f"{self.root} is not a writable directory: {exc}") from exc
        return f"{self.root} is writable"

    async def close(self) -> None:
        return None


def _probe_writable(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    probe = root / f".arinova-check-{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()


#: what ``os.link`` answers when the two paths cannot share one inode
_NO_LINK = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP})
COPY_CHUNK = 1024 * 1024


def _place_new(source: Path, path: Path) -> None:
    """Make ``path`` (never replacing a file) hold the content of ``source``: a hard link
    when both are on one file system (the file appears complete at once), else a copy in
    chunks; nothing stays on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, path)
        return
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        with source.open("rb") as src, os.fdopen(fd, "wb", closefd=False) as dst:
            shutil.copyfileobj(src, dst, COPY_CHUNK)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
