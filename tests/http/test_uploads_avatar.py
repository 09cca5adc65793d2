"""POST /api/agents/:id/avatar on local disk (contract rest.md §3.3, behaviours.md §2.2,
quirk Q29): images only by content, 2 MB cap, a safe extension, served with nosniff."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest

from arinova.server import Server
from tests.http.uploads_fixtures import (
    GIF,
    JPEG,
    MAX_FILE_SIZE,
    PNG,
    UNKNOWN_ID,
    WEBP,
    Owner,
    Part,
    db_connect,
    file_part,
    multipart,
    new_owner,
    stored_files,
    upload_server,  # noqa: F401 - fixture
)

AGENT_NOT_FOUND = {"error": "Agent not found"}
ONLY_IMAGES = {"error": "Only image files are allowed"}
AVATAR_MAX = 2 * 1024 * 1024


def avatar_url(agent_id: str) -> str:
    return f"/api/agents/{agent_id}/avatar"


async def post_avatar(client: httpx.AsyncClient, agent_id: str, *parts: Part) -> httpx.Response:
    headers, body = multipart(*parts)
    return await client.post(avatar_url(agent_id), content=body, headers=headers)


@pytest.fixture
async def owner(upload_server: Server) -> Owner:  # noqa: F811
    return await new_owner(upload_server)


async def agent_row(server: Server, agent_id: str) -> dict[str, object]:
    conn = await db_connect(server)
    try:
        row = await conn.fetchrow(
            "SELECT avatar_url, updated_at, created_at FROM agents WHERE id = $1::uuid", agent_id
        )
    finally:
        await conn.close()
    assert row is not None
    return dict(row)


@pytest.mark.parametrize(
    ("data", "declared", "name", "ext", "served_type"),
    [
        (PNG, "image/png", "me.png", "png", "image/png"),
        (JPEG, "image/jpeg", "me.JPEG", "JPEG", "image/jpeg"),
        (GIF, "image/gif", "anim.gif", "gif", "image/gif"),
        (WEBP, "image/webp", "x.webp", "webp", "image/webp"),
        # the extension follows the content, not the client's name (Q29)
        (PNG, "image/png", "evil.html", "png", "image/png"),
        (PNG, "image/svg+xml", "logo.svg", "png", "image/png"),
        (JPEG, "image/png", "noext", "jpg", "image/jpeg"),
    ],
)
async def test_avatar_is_stored_and_served(
    upload_server: Server,  # noqa: F811
    owner: Owner,
    data: bytes,
    declared: str,
    name: str,
    ext: str,
    served_type: str,
) -> None:
    before = await agent_row(upload_server, owner.agent_id)
    started_ms = int(time.time() * 1000)
    async with owner.client(upload_server) as client:
        response = await post_avatar(client, owner.agent_id, file_part(data, name, declared))
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["avatarUrl"]
    match = re.fullmatch(
        rf"/uploads/avatars/avatar_{owner.agent_id}_(\d+)\.{re.escape(ext)}", body["avatarUrl"]
    )
    assert match, body
    assert started_ms <= int(match.group(1)) <= int(time.time() * 1000)

    after = await agent_row(upload_server, owner.agent_id)
    assert after["avatar_url"] == body["avatarUrl"]
    assert after["updated_at"] > before["updated_at"]  # type: ignore[operator]
    stored = upload_server.settings.upload_dir / body["avatarUrl"].removeprefix("/uploads/")
    assert stored.read_bytes() == data

    async with httpx.AsyncClient(base_url=upload_server.url) as anonymous:
        served = await anonymous.get(body["avatarUrl"])
    assert served.status_code == 200
    assert served.content == data
    assert served.headers["content-type"] == served_type
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "content-disposition" not in served.headers


async def test_avatar_shows_in_the_agent(upload_server: Server, owner: Owner) -> None:  # noqa: F811
    async with owner.client(upload_server) as client:
        response = await post_avatar(client, owner.agent_id, file_part(PNG))
        agent = await client.get(f"/api/agents/{owner.agent_id}")
    assert agent.status_code == 200
    assert agent.json()["avatarUrl"] == response.json()["avatarUrl"]


async def test_avatar_without_a_session_is_401(upload_server: Server) -> None:  # noqa: F811
    headers, body = multipart(file_part(PNG))
    async with httpx.AsyncClient(base_url=upload_server.url) as client:
        response = await client.post(avatar_url(UNKNOWN_ID), content=body, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}


@pytest.mark.parametrize("agent_id", [UNKNOWN_ID, "not-a-uuid"])
async def test_avatar_of_an_unknown_agent_is_404(
    upload_server: Server,  # noqa: F811
    owner: Owner,
    agent_id: str,
) -> None:
    async with owner.client(upload_server) as client:
        response = await post_avatar(client, agent_id, file_part(PNG))
    assert response.status_code == 404
    assert response.json() == AGENT_NOT_FOUND


async def test_avatar_of_another_users_agent_is_404(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    intruder = await new_owner(upload_server)
    files_before = await stored_files(upload_server)
    async with intruder.client(upload_server) as client:
        response = await post_avatar(client, owner.agent_id, file_part(PNG))
    assert response.status_code == 404
    assert response.json() == AGENT_NOT_FOUND
    assert (await agent_row(upload_server, owner.agent_id))["avatar_url"] is None
    assert await stored_files(upload_server) == files_before


async def test_avatar_form_without_a_file_is_400(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    async with owner.client(upload_server) as client:
        response = await post_avatar(client, owner.agent_id, Part("name", "x"))
        not_multipart = await client.post(avatar_url(owner.agent_id), json={})
    assert response.status_code == 400
    assert response.json() == {"error": "No file uploaded"}
    assert not_multipart.status_code == 406
    assert not_multipart.json() == {
        "error": "the request is not multipart",
        "code": "INTERNAL_ERROR",
    }


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (PNG, "application/octet-stream"),  # declared type is not image/*
        (PNG, "text/plain"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "image/svg+xml",
        ),
        (b"<html><body onload=alert(1)></body></html>", "image/png"),  # disguised (Q29)
        (b"%PDF-1.4\n", "image/png"),
        (b"", "image/png"),
    ],
)
async def test_avatar_that_is_not_a_raster_image_is_400(
    upload_server: Server,  # noqa: F811
    owner: Owner,
    data: bytes,
    declared: str,
) -> None:
    files_before = await stored_files(upload_server)
    async with owner.client(upload_server) as client:
        response = await post_avatar(client, owner.agent_id, file_part(data, "a.png", declared))
    assert response.status_code == 400
    assert response.json() == ONLY_IMAGES
    assert await stored_files(upload_server) == files_before
    assert (await agent_row(upload_server, owner.agent_id))["avatar_url"] is None


async def test_avatar_over_2mb_is_400_and_over_max_file_size_is_413(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    files_before = await stored_files(upload_server)
    padding_limit = AVATAR_MAX - len(PNG)
    async with owner.client(upload_server) as client:
        at_limit = await post_avatar(client, owner.agent_id, file_part(PNG + b"\0" * padding_limit))
        over = await post_avatar(
            client, owner.agent_id, file_part(PNG + b"\0" * (padding_limit + 1))
        )
        huge = await post_avatar(
            client, owner.agent_id, file_part(PNG + b"\0" * (MAX_FILE_SIZE - len(PNG) + 1))
        )
    assert at_limit.status_code == 200, at_limit.text
    assert over.status_code == 400
    assert over.json() == {"error": "Avatar must be under 2MB"}
    assert huge.status_code == 413
    assert huge.json() == {"error": "request file too large", "code": "INTERNAL_ERROR"}
    assert len(await stored_files(upload_server)) == len(files_before) + 1


async def test_avatar_of_an_agent_deleted_meanwhile_leaves_no_file(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    """The agent row is updated after the file is stored; if that finds no agent the file
    is removed again. A trigger stands in for a concurrent delete."""
    conn = await db_connect(upload_server)
    try:
        await conn.execute(
            "CREATE FUNCTION vanish_agent() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RETURN NULL; END $$"
        )
        await conn.execute(
            "CREATE TRIGGER vanish_agent BEFORE UPDATE ON agents"
            " FOR EACH ROW EXECUTE FUNCTION vanish_agent()"
        )
        files_before = await stored_files(upload_server)
        async with owner.client(upload_server) as client:
            response = await post_avatar(client, owner.agent_id, file_part(PNG))
        assert response.status_code == 404
        assert response.json() == AGENT_NOT_FOUND
        assert await stored_files(upload_server) == files_before
    finally:
        await conn.execute("DROP TRIGGER IF EXISTS vanish_agent ON agents")
        await conn.execute("DROP FUNCTION IF EXISTS vanish_agent()")
        await conn.close()


async def test_avatar_runs_a_fixed_number_of_queries(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    counter = upload_server.state.queries
    async with owner.client(upload_server) as client:
        await post_avatar(client, owner.agent_id, file_part(PNG))
        counts = []
        for _ in range(3):
            before = counter.count
            response = await post_avatar(client, owner.agent_id, file_part(PNG))
            assert response.status_code == 200
            counts.append(counter.count - before)
    assert counts[0] == counts[1] == counts[2] <= 4  # ownership, update, a pool reset each


async def test_concurrent_avatars_never_overwrite_each_other(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    """Names carry the epoch ms; uploads in the same millisecond take the next free one."""
    async with owner.client(upload_server) as client:
        responses = await asyncio.gather(
            *(post_avatar(client, owner.agent_id, file_part(PNG)) for _ in range(6))
        )
    urls = [r.json()["avatarUrl"] for r in responses]
    assert all(r.status_code == 200 for r in responses)
    assert len(set(urls)) == 6
    root = upload_server.settings.upload_dir
    assert all((root / url.removeprefix("/uploads/")).read_bytes() == PNG for url in urls)
