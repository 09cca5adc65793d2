"""Local-disk storage: files are created, never replaced, removed on demand, and a request
cancelled while its file is being written leaves nothing behind."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from arinova.http.uploads import put_shielded
from arinova.storage import KeyExists, StorageError
from arinova.storage.local import LocalStorage


def files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


async def test_put_delete_and_urls(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "up", "https://api.example.test")
    await storage.put("a.png", b"png", "image/png")
    await storage.put("avatars/b.png", bytearray(b"avatar"), "image/png")
    assert (tmp_path / "up" / "a.png").read_bytes() == b"png"
    assert (tmp_path / "up" / "avatars" / "b.png").read_bytes() == b"avatar"
    assert storage.url("a.png") == "/uploads/a.png"
    assert storage.link("a.png") == "https://api.example.test/uploads/a.png"
    with pytest.raises(KeyExists):
        await storage.put("a.png", b"other", "image/png")
    assert (tmp_path / "up" / "a.png").read_bytes() == b"png"
    await storage.delete("a.png")
    await storage.delete("a.png")  # already gone: fine
    assert not (tmp_path / "up" / "a.png").exists()


@pytest.mark.parametrize("key", ["../x", "avatars/../../x", "/etc/passwd"])
async def test_keys_never_leave_the_root(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "up", "")
    with pytest.raises(StorageError):
        await storage.put(key, b"x", "text/plain")
    assert files_under(tmp_path) == []


class SlowDisk(LocalStorage):
    """A real local storage whose writes take a while to be confirmed."""

    async def put(self, key: str, data: bytes | bytearray, content_type: str) -> None:
        await super().put(key, data, content_type)
        await asyncio.sleep(0.2)


async def test_a_cancelled_upload_leaves_no_file(tmp_path: Path) -> None:
    storage = SlowDisk(tmp_path, "")
    log = logging.getLogger("test")
    task = asyncio.create_task(put_shielded(storage, log, "c.txt", b"data", "text/plain"))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert files_under(tmp_path) == []
