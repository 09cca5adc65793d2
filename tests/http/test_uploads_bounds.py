"""Concurrent uploads are bounded per process and per user (chat files and avatars):
real sockets, uploads held open by clients that stop sending mid-body. A refused upload
gets the contract's error body (rest.md §1.6) and leaves no file and no row."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from arinova.server import Server
from tests.http.uploads_fixtures import (
    BIG_PNG,
    MAX_FILE_SIZE,
    PNG,
    HeldUpload,
    Owner,
    db_connect,
    file_part,
    multipart,
    new_owner,
    start_upload_server,
    stored_files,
)
from tests.support.servers import StartServer

PER_USER = 2
PER_PROCESS = 3
RATE_LIMIT = {"error": "Too many requests. Please try again later.", "code": "RATE_LIMIT"}
BUSY = {"error": "Internal server error", "code": "INTERNAL_ERROR"}
#: how long a test waits for the server to reach a state it polls for
WAIT_S = 10.0


@pytest.fixture(scope="module")
async def bounded_server(start_module_server: StartServer) -> Server:
    return await start_upload_server(
        start_module_server,
        max_file_size=MAX_FILE_SIZE,
        max_concurrent_uploads=PER_PROCESS,
        max_concurrent_uploads_per_user=PER_USER,
    )


def upload_url(owner: Owner) -> str:
    return f"/api/conversations/{owner.conversation_id}/upload"


def avatar_url(owner: Owner) -> str:
    return f"/api/agents/{owner.agent_id}/avatar"


async def probe(server: Server, owner: Owner, url: str) -> httpx.Response:
    """A malformed form: 400 once it is read (a free slot, released at once), else the
    refusal. It never stores anything."""
    headers, _ = multipart(file_part(PNG))
    async with owner.client(server) as client:
        return await client.post(url, content=b"not a form", headers=headers)


async def wait_for_status(server: Server, owner: Owner, url: str, status: int) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        response = await probe(server, owner, url)
        if response.status_code == status:
            return
        assert response.status_code in (400, 429, 503), response.text
        assert asyncio.get_running_loop().time() < deadline, f"never answered {status}"
        await asyncio.sleep(0.02)


async def rows_of(server: Server, owner: Owner) -> int:
    conn = await db_connect(server)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM messages WHERE conversation_id = $1::uuid AND role = 'user'",
            owner.conversation_id,
        )
    finally:
        await conn.close()
    assert isinstance(count, int)
    return count


async def post_upload(server: Server, owner: Owner, url: str) -> httpx.Response:
    headers, body = multipart(file_part(PNG))
    async with owner.client(server) as client:
        return await client.post(url, content=body, headers=headers)


async def test_a_user_past_its_share_gets_429_and_nothing_is_stored(
    bounded_server: Server,
) -> None:
    owner = await new_owner(bounded_server)
    files_before = await stored_files(bounded_server)
    held = [HeldUpload(bounded_server, owner, upload_url(owner), BIG_PNG) for _ in range(PER_USER)]
    await wait_for_status(bounded_server, owner, upload_url(owner), 429)

    refused = await post_upload(bounded_server, owner, upload_url(owner))
    assert refused.status_code == 429
    assert refused.json() == RATE_LIMIT
    assert refused.headers["retry-after"] == "1"
    # the avatar route shares the user's slots
    refused_avatar = await post_upload(bounded_server, owner, avatar_url(owner))
    assert (refused_avatar.status_code, refused_avatar.json()) == (429, RATE_LIMIT)
    # another user is not held back by this one
    other = await new_owner(bounded_server)
    assert (await post_upload(bounded_server, other, upload_url(other))).status_code == 200

    answers = [await upload.release() for upload in held]
    assert [answer.status_code for answer in answers] == [200] * PER_USER
    assert (await post_upload(bounded_server, owner, upload_url(owner))).status_code == 200
    assert await rows_of(bounded_server, owner) == PER_USER + 1
    new_files = set(await stored_files(bounded_server)) - set(files_before)
    assert len(new_files) == PER_USER + 1 + 1  # the owner's three and the other's one


async def test_a_full_process_answers_503_to_everyone(bounded_server: Server) -> None:
    first, second, third = [await new_owner(bounded_server) for _ in range(3)]
    held = [HeldUpload(bounded_server, first, upload_url(first), BIG_PNG) for _ in range(PER_USER)]
    await wait_for_status(bounded_server, first, upload_url(first), 429)
    held.append(HeldUpload(bounded_server, second, avatar_url(second), PNG * 2))
    await wait_for_status(bounded_server, third, upload_url(third), 503)

    refused = await post_upload(bounded_server, third, upload_url(third))
    assert refused.status_code == 503
    assert refused.json() == BUSY
    assert refused.headers["retry-after"] == "1"
    assert await rows_of(bounded_server, third) == 0

    answers = [await upload.release() for upload in held]
    assert [answer.status_code for answer in answers] == [200] * (PER_USER + 1)
    assert (await post_upload(bounded_server, third, upload_url(third))).status_code == 200


async def test_an_aborted_upload_frees_its_slot_and_leaves_nothing(
    bounded_server: Server,
) -> None:
    owner = await new_owner(bounded_server)
    files_before = await stored_files(bounded_server)
    held = [HeldUpload(bounded_server, owner, upload_url(owner), BIG_PNG) for _ in range(PER_USER)]
    await wait_for_status(bounded_server, owner, upload_url(owner), 429)

    for upload in held:
        await upload.abort()
    await wait_for_status(bounded_server, owner, upload_url(owner), 400)
    assert (await post_upload(bounded_server, owner, upload_url(owner))).status_code == 200
    assert await rows_of(bounded_server, owner) == 1
    assert len(set(await stored_files(bounded_server)) - set(files_before)) == 1
