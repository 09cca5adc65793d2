"""A temporary file an upload streams into, so its bytes never sit in memory.

Writes run in a worker thread; creating and removing the file are single system calls
done in place. ``discard`` is synchronous so it also runs where a cancelled request
cannot await any more: a write still running in its thread finishes first, then the
file is closed and removed.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

#: the permissions a stored file gets (a spool file may become the stored file)
FILE_MODE = 0o644


class SpoolFile:
    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._fd = -1
        self._file: Path | None = None
        self._job: asyncio.Future[None] | None = None
        self.size = 0

    @property
    def path(self) -> Path:
        """The file (created empty if nothing was written yet)."""
        if self._file is None:
            self._open()
        assert self._file is not None
        return self._file

    async def write(self, data: bytes | bytearray) -> None:
        if not data:
            return
        if self._fd < 0:
            self._open()
        job = asyncio.get_running_loop().run_in_executor(None, _write_all, self._fd, data)
        self._job = job
        # a cancel must not cut the write short: the file is closed only after it
        await asyncio.shield(job)
        self._job = None
        self.size += len(data)

    def discard(self) -> None:
        """Close and remove the file (now, or when a write in flight ends)."""
        job = self._job
        if job is not None and not job.done():
            job.add_done_callback(self._remove_after)
        else:
            self._remove()

    def _open(self) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="upload-", dir=self._directory)
        self._fd, self._file = fd, Path(name)
        os.fchmod(fd, FILE_MODE)

    def _remove_after(self, job: asyncio.Future[None]) -> None:
        if not job.cancelled():
            job.exception()  # retrieved: the request has failed already
        self._remove()

    def _remove(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._file is not None:
            self._file.unlink(missing_ok=True)
            self._file = None


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
