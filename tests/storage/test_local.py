"""Local-disk storage: files are created from a source file (linked on one file system,
copied across two), never replaced, removed on demand, and a request cancelled while its
file is being written leaves nothing behind."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from arinova.http.uploads import put_shielded
from arinova.storage import KeyExists, StorageError
from arinova.storage.local import LocalStorage


def files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def source(directory: Path, data: bytes, name: str = "source") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    return path


async def test_put_delete_and_urls(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "up", "https://api.example.test")
    await storage.put_file("a.png", source(tmp_path / "in", b"png"), "image/png")
    await storage.put_file("avatars/b.png", source(tmp_path / "in", b"avatar", "b"), "image/png")
    assert (tmp_path / "up" / "a.png").read_bytes() == b"png"
    assert (tmp_path / "up" / "avatars" / "b.png").read_bytes() == b"avatar"
    assert (tmp_path / "in" / "source").read_bytes() == b"png"  # the source stays
    assert storage.url("a.png") == "/uploads/a.png"
    assert storage.link("a.png") == "https://api.example.test/uploads/a.png"
    with pytest.raises(KeyExists):
        await storage.put_file("a.png", source(tmp_path / "in", b"other", "c"), "image/png")
    assert (tmp_path / "up" / "a.png").read_bytes() == b"png"
    await storage.delete("a.png")
    await storage.delete("a.png")  # already gone: fine
    assert not (tmp_path / "up" / "a.png").exists()


@pytest.mark.parametrize("key", ["../x", "avatars/../../x", "/etc/passwd"])
async def test_keys_never_leave_the_root(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "up", "")
    data = source(tmp_path / "in", b"x")
    with pytest.raises(StorageError):
        await storage.put_file(key, data, "text/plain")
    assert files_under(tmp_path) == [data]


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs a second file system")
async def test_a_source_on_another_file_system_is_copied(tmp_path: Path) -> None:
    if os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("/dev/shm is on the file system of the temporary directory")
    storage = LocalStorage(tmp_path / "up", "")
    data = os.urandom(3 * 1024 * 1024 + 5)
    other = Path("/dev/shm") / f"arinova-test-{tmp_path.name}"
    try:
        await storage.put_file("big.bin", source(other, data), "application/octet-stream")
        with pytest.raises(KeyExists):
            await storage.put_file("big.bin", source(other, b"x", "x"), "text/plain")
    finally:
        for leftover in other.glob("*"):
            leftover.unlink()
        other.rmdir()
    stored = tmp_path / "up" / "big.bin"
    assert stored.read_bytes() == data
    assert stored.stat().st_mode & 0o777 == 0o644


class SlowDisk(LocalStorage):
    """A real local storage whose writes take a while to be confirmed."""

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        await super().put_file(key, path, content_type)
        await asyncio.sleep(0.2)


async def test_a_cancelled_upload_leaves_no_file(tmp_path: Path) -> None:
    storage = SlowDisk(tmp_path / "up", "")
    log = logging.getLogger("test")
    data = source(tmp_path / "in", b"data")
    task = asyncio.create_task(put_shielded(storage, log, "c.txt", data, "text/plain"))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert files_under(tmp_path / "up") == []
