"""A chat upload streams to a spool file while it arrives, not to memory, and the spool
file never outlives the request: after a success the stored file holds the exact bytes,
after a refusal or an abort there is no spool file, no stored file and no row."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from arinova.server import Server
from tests.http.uploads_fixtures import (
    MAX_FILE_SIZE,
    PDF,
    HeldUpload,
    Owner,
    db_connect,
    file_part,
    make_png,
    multipart,
    new_owner,
    start_upload_server,
    stored_files,
)
from tests.support.servers import StartServer

WAIT_S = 10.0
#: a PNG just under the file limit, with bytes that differ everywhere
LARGE_PNG = make_png(random.Random(7).randbytes(MAX_FILE_SIZE - 200))


@pytest.fixture(scope="module")
async def spool_server(
    start_module_server: StartServer, tmp_path_factory: pytest.TempPathFactory
) -> Server:
    return await start_upload_server(
        start_module_server,
        max_file_size=MAX_FILE_SIZE,
        upload_spool_dir=tmp_path_factory.mktemp("spool"),
    )


@pytest.fixture
async def owner(spool_server: Server) -> Owner:
    return await new_owner(spool_server)


def spool_files(server: Server) -> list[Path]:
    spool = server.settings.upload_spool_dir
    return sorted(spool.iterdir()) if spool.exists() else []


def upload_url(owner: Owner) -> str:
    return f"/api/conversations/{owner.conversation_id}/upload"


async def in_pieces(body: bytes, seed: int) -> AsyncIterator[bytes]:
    """The body in pieces of random sizes, as a slow network hands them over."""
    pieces = random.Random(seed)
    pos = 0
    while pos < len(body):
        size = pieces.randint(1, 300_000)
        yield body[pos : pos + size]
        pos += size
        await asyncio.sleep(0)


async def rows_of(server: Server, owner: Owner) -> int:
    conn = await db_connect(server)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM messages WHERE conversation_id = $1::uuid",
            owner.conversation_id,
        )
    finally:
        await conn.close()
    assert isinstance(count, int)
    return count


async def wait_for_spooled(server: Server, at_least: int) -> Path:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        for path in spool_files(server):
            if path.stat().st_size >= at_least:
                return path
        assert asyncio.get_running_loop().time() < deadline, "nothing was spooled"
        await asyncio.sleep(0.02)


async def test_the_bytes_received_so_far_are_on_disk(spool_server: Server, owner: Owner) -> None:
    held = HeldUpload(spool_server, owner, upload_url(owner), LARGE_PNG, first_bytes=2_000_000)
    spooled = await wait_for_spooled(spool_server, 1_500_000)
    assert spooled.read_bytes()[:1_500_000] == LARGE_PNG[:1_500_000], "not the bytes sent"

    response = await held.release()
    assert response.status_code == 200, response.text
    key = response.json()["message"]["attachments"][0]["url"].removeprefix("/uploads/")
    assert (spool_server.settings.upload_dir / key).read_bytes() == LARGE_PNG
    assert spool_files(spool_server) == []


async def test_a_large_file_in_uneven_pieces_is_stored_exactly(
    spool_server: Server, owner: Owner
) -> None:
    headers, body = multipart(file_part(LARGE_PNG, "big.png"))
    async with owner.client(spool_server) as client:
        response = await client.post(
            upload_url(owner), content=in_pieces(body, seed=3), headers=headers
        )
    assert response.status_code == 200, response.text
    attachment = response.json()["message"]["attachments"][0]
    assert attachment["fileSize"] == len(LARGE_PNG)
    stored = spool_server.settings.upload_dir / attachment["url"].removeprefix("/uploads/")
    assert stored.read_bytes() == LARGE_PNG
    assert stored.stat().st_mode & 0o777 == 0o644
    assert spool_files(spool_server) == []


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (LARGE_PNG + b"x" * 300, "image/png", 413),  # over MAX_FILE_SIZE once streamed
        (PDF + b"\0" * 2_000_000, "image/png", 400),  # sniffed from the spool file
        (b"\x89PNG" + b"\0" * 2_000_000, "image/png", 400),  # not a PNG after all
    ],
    ids=["too-large", "pdf-as-png", "broken-png"],
)
async def test_a_refused_upload_leaves_no_spool_file_no_file_and_no_row(
    spool_server: Server, owner: Owner, data: bytes, content_type: str, status: int
) -> None:
    files_before = await stored_files(spool_server)
    headers, body = multipart(file_part(data, "x.png", content_type))
    async with owner.client(spool_server) as client:
        response = await client.post(
            upload_url(owner), content=in_pieces(body, seed=5), headers=headers
        )
    assert response.status_code == status, response.text
    assert spool_files(spool_server) == []
    assert await stored_files(spool_server) == files_before
    assert await rows_of(spool_server, owner) == 0


async def test_an_aborted_upload_leaves_no_spool_file(spool_server: Server, owner: Owner) -> None:
    files_before = await stored_files(spool_server)
    held = HeldUpload(spool_server, owner, upload_url(owner), LARGE_PNG, first_bytes=1_000_000)
    await wait_for_spooled(spool_server, 500_000)
    await held.abort()
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while spool_files(spool_server):
        assert asyncio.get_running_loop().time() < deadline, "the spool file stayed"
        await asyncio.sleep(0.02)
    assert await stored_files(spool_server) == files_before
    assert await rows_of(spool_server, owner) == 0


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs a second file system")
async def test_a_spool_on_another_file_system_is_copied(
    start_server: StartServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    spool = Path("/dev/shm") / tmp_path_factory.mktemp("spool").name
    if os.stat("/dev/shm").st_dev == os.stat(tmp_path_factory.getbasetemp()).st_dev:
        pytest.skip("/dev/shm is on the file system of the upload directory")
    server = await start_upload_server(
        start_server, max_file_size=MAX_FILE_SIZE, upload_spool_dir=spool
    )
    try:
        owner = await new_owner(server)
        headers, body = multipart(file_part(LARGE_PNG, "big.png"))
        async with owner.client(server) as client:
            response: httpx.Response = await client.post(
                upload_url(owner), content=body, headers=headers
            )
        assert response.status_code == 200, response.text
        key = response.json()["message"]["attachments"][0]["url"].removeprefix("/uploads/")
        assert (server.settings.upload_dir / key).read_bytes() == LARGE_PNG
        assert list(spool.iterdir()) == []
    finally:
        for leftover in spool.glob("*"):
            leftover.unlink()
        spool.rmdir()


async def test_avatars_stream_through_the_spool_too(spool_server: Server, owner: Owner) -> None:
    url = f"/api/agents/{owner.agent_id}/avatar"
    files_before = await stored_files(spool_server)
    async with owner.client(spool_server) as client:
        headers, body = multipart(file_part(make_png(b"x" * 2_200_000), "face.png"))
        too_large = await client.post(url, content=in_pieces(body, seed=9), headers=headers)
        assert spool_files(spool_server) == []
        assert await stored_files(spool_server) == files_before
        avatar = make_png(b"y" * 1_500_000)
        headers, body = multipart(file_part(avatar, "face.png"))
        stored = await client.post(url, content=in_pieces(body, seed=11), headers=headers)
    assert (too_large.status_code, too_large.json()) == (400, {"error": "Avatar must be under 2MB"})
    assert stored.status_code == 200, stored.text
    key = stored.json()["avatarUrl"].removeprefix("/uploads/")
    assert (spool_server.settings.upload_dir / key).read_bytes() == avatar
    assert spool_files(spool_server) == []
