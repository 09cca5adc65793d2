"""Uploads and avatars with S3-compatible storage (R2_* settings set), against a real S3
HTTP server (moto in server mode): the bytes round trip, URLs use R2_PUBLIC_URL, refused
files never reach the bucket, and a failed insert removes the object it stored."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from arinova.server import Server
from tests.http.uploads_fixtures import (
    MAX_FILE_SIZE,
    PDF,
    PNG,
    Owner,
    db_connect,
    file_part,
    multipart,
    new_owner,
    start_upload_server,
    stored_files,
)
from tests.support.s3 import PUBLIC_URL, S3Server, moto_server
from tests.support.servers import StartServer

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
async def s3() -> AsyncIterator[S3Server]:
    async with moto_server() as server:
        yield server


@pytest.fixture(scope="module")
async def s3_server(
    start_module_server: StartServer, s3: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Server:
    return await start_upload_server(
        start_module_server,
        count_queries=True,
        max_file_size=MAX_FILE_SIZE,
        upload_spool_dir=tmp_path_factory.mktemp("spool"),
        **s3.settings_overrides(),
    )


def spool_files(server: Server) -> list[str]:
    spool = server.settings.upload_spool_dir
    return sorted(p.name for p in spool.iterdir()) if spool.exists() else []


@pytest.fixture
async def owner(s3_server: Server) -> Owner:
    return await new_owner(s3_server)


async def upload(server: Server, owner: Owner, *parts: object) -> httpx.Response:
    headers, body = multipart(*parts)  # type: ignore[arg-type]
    async with owner.client(server) as client:
        return await client.post(
            f"/api/conversations/{owner.conversation_id}/upload", content=body, headers=headers
        )


async def test_upload_goes_to_the_bucket_and_links_to_the_public_url(
    s3_server: Server, s3: S3Server, owner: Owner
) -> None:
    response = await upload(s3_server, owner, file_part(PNG, "pic.png", "image/png; charset=x"))
    assert response.status_code == 200, response.text
    message = response.json()["message"]
    attachment = message["attachments"][0]
    match = re.fullmatch(re.escape(PUBLIC_URL) + rf"/({UUID}\.png)", attachment["url"])
    assert match, attachment["url"]
    key = match.group(1)
    assert message["content"] == f"![pic.png]({PUBLIC_URL}/{key})"
    assert attachment["fileType"] == "image/png"
    assert await s3.get_object(key) == (PNG, "image/png")
    # nothing on the local disk
    assert await stored_files(s3_server) == []

    async with owner.client(s3_server) as client:
        again = await client.get(f"/api/attachments/{attachment['id']}")
    assert again.status_code == 200
    assert again.json() == attachment


async def test_large_file_round_trips_through_the_bucket(
    s3_server: Server, s3: S3Server, owner: Owner
) -> None:
    """Streamed from the spool file, which is gone afterwards."""
    data = b"%PDF-1.7\n" + bytes(range(256)) * 12000
    response = await upload(s3_server, owner, file_part(data, "big.pdf", "application/pdf"))
    assert response.status_code == 200, response.text
    url = response.json()["message"]["attachments"][0]["url"]
    assert await s3.get_object(url.removeprefix(PUBLIC_URL + "/")) == (data, "application/pdf")
    assert spool_files(s3_server) == []


async def test_refused_files_never_reach_the_bucket(
    s3_server: Server, s3: S3Server, owner: Owner
) -> None:
    before = await s3.keys()
    mismatch = await upload(s3_server, owner, file_part(PDF, "x.png", "image/png"))
    too_big = await upload(
        s3_server, owner, file_part(b"a" * (MAX_FILE_SIZE + 1), "x.txt", "text/plain")
    )
    assert mismatch.status_code == 400
    assert too_big.status_code == 413
    assert await s3.keys() == before
    assert spool_files(s3_server) == []


async def test_a_failed_insert_removes_the_stored_object(
    s3_server: Server, s3: S3Server, owner: Owner
) -> None:
    conn = await db_connect(s3_server)
    try:
        await conn.execute(
            "CREATE FUNCTION refuse_message() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'no messages today'; END $$"
        )
        await conn.execute(
            "CREATE TRIGGER refuse_message BEFORE INSERT ON messages"
            " FOR EACH ROW EXECUTE FUNCTION refuse_message()"
        )
        before = await s3.keys()
        response = await upload(s3_server, owner, file_part(PNG))
        assert response.status_code == 500
        assert response.json() == {"error": "Internal server error", "code": "INTERNAL_ERROR"}
        assert await s3.keys() == before
    finally:
        await conn.execute("DROP TRIGGER IF EXISTS refuse_message ON messages")
        await conn.execute("DROP FUNCTION IF EXISTS refuse_message()")
        await conn.close()


async def test_avatar_goes_to_the_avatars_prefix(
    s3_server: Server, s3: S3Server, owner: Owner
) -> None:
    headers, body = multipart(file_part(PNG, "face.html", "image/png"))
    async with owner.client(s3_server) as client:
        response = await client.post(
            f"/api/agents/{owner.agent_id}/avatar", content=body, headers=headers
        )
        agent = await client.get(f"/api/agents/{owner.agent_id}")
    assert response.status_code == 200, response.text
    url = response.json()["avatarUrl"]
    match = re.fullmatch(
        re.escape(PUBLIC_URL) + rf"/(avatars/avatar_{owner.agent_id}_\d+\.png)", url
    )
    assert match, url
    assert await s3.get_object(match.group(1)) == (PNG, "image/png")
    assert agent.json()["avatarUrl"] == url


async def test_storage_failure_is_500_and_writes_no_rows(
    start_server: StartServer, s3: S3Server
) -> None:
    """A bucket that does not exist: the upload fails before any row is written."""
    overrides = {**s3.settings_overrides(), "r2_bucket": "no-such-bucket"}
    server = await start_upload_server(start_server, max_file_size=MAX_FILE_SIZE, **overrides)
    owner = await new_owner(server)
    response = await upload(server, owner, file_part(PNG))
    assert response.status_code == 500
    assert response.json() == {"error": "Internal server error", "code": "INTERNAL_ERROR"}
    conn = await db_connect(server)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM messages WHERE conversation_id = $1::uuid",
            owner.conversation_id,
        )
    finally:
        await conn.close()
    assert count == 0
