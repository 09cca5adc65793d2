"""Chat uploads and attachments on local disk (contract rest.md §3.9, behaviours.md §2.1):
exact bodies, every error path, the stored bytes, nothing left behind on failure."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest

from arinova.server import Server
from tests.http.uploads_fixtures import (
    GIF,
    JPEG,
    MAX_FILE_SIZE,
    PDF,
    PNG,
    UNKNOWN_ID,
    WEBP,
    Owner,
    Part,
    agent_replies,
    db_connect,
    file_part,
    make_png,
    multipart,
    new_group,
    new_owner,
    stored_files,
    upload_server,  # noqa: F401 - fixture
)

ISO_RX = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
UUID_RX = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
LINK_BASE = "http://api.example.test/uploads/"
UNAUTHORIZED = {"error": "Unauthorized"}
CONVERSATION_NOT_FOUND = {"error": "Conversation not found"}
ATTACHMENT_NOT_FOUND = {"error": "Attachment not found"}


def upload_url(conversation_id: str) -> str:
    return f"/api/conversations/{conversation_id}/upload"


async def post_form(
    client: httpx.AsyncClient, conversation_id: str, *parts: Part
) -> httpx.Response:
    headers, body = multipart(*parts)
    return await client.post(upload_url(conversation_id), content=body, headers=headers)


@pytest.fixture
async def owner(upload_server: Server) -> Owner:  # noqa: F811
    return await new_owner(upload_server)


async def message_rows(server: Server, conversation_id: str) -> list[dict[str, object]]:
    conn = await db_connect(server)
    try:
        rows = await conn.fetch(
            "SELECT m.seq, m.content, a.file_name, a.storage_path FROM messages m"
            " LEFT JOIN attachments a ON a.message_id = m.id"
            " WHERE m.conversation_id = $1::uuid ORDER BY m.seq",
            conversation_id,
        )
    finally:
        await conn.close()
    return [dict(row) for row in rows]


# -- success --------------------------------------------------------------------------


async def test_upload_image_answers_the_message_and_stores_the_bytes(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    async with owner.client(upload_server) as client:
        response = await post_form(client, owner.conversation_id, file_part(PNG, "Cat Pic.PNG"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    message = body["message"]
    assert list(body) == ["message"]
    assert list(message) == [
        "id",
        "conversationId",
        "seq",
        "role",
        "content",
        "status",
        "createdAt",
        "updatedAt",
        "attachments",
    ]
    (attachment,) = message["attachments"]
    assert list(attachment) == [
        "id",
        "messageId",
        "fileName",
        "fileType",
        "fileSize",
        "url",
        "createdAt",
    ]
    stored = attachment["url"].removeprefix("/uploads/")
    assert re.fullmatch(UUID_RX.pattern + r"\.PNG", stored), stored
    assert UUID_RX.fullmatch(message["id"]) and UUID_RX.fullmatch(attachment["id"])
    assert message == {
        "id": message["id"],
        "conversationId": owner.conversation_id,
        "seq": 1,
        "role": "user",
        "content": f"![Cat Pic.PNG]({LINK_BASE}{stored})",
        "status": "completed",
        "createdAt": message["createdAt"],
        "updatedAt": message["updatedAt"],
        "attachments": [
            {
                "id": attachment["id"],
                "messageId": message["id"],
                "fileName": "Cat Pic.PNG",
                "fileType": "image/png",
                "fileSize": len(PNG),
                "url": f"/uploads/{stored}",
                "createdAt": attachment["createdAt"],
            }
        ],
    }
    assert ISO_RX.fullmatch(message["createdAt"]) and ISO_RX.fullmatch(attachment["createdAt"])
    assert (upload_server.settings.upload_dir / stored).read_bytes() == PNG

    async with httpx.AsyncClient(base_url=upload_server.url) as anonymous:
        served = await anonymous.get(attachment["url"])
    assert served.status_code == 200
    assert served.content == PNG
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"

    # the agent pipeline answers the stored message (direct conversation; no agent is
    # connected, so the reply says so)
    replies = await agent_replies(upload_server, owner.conversation_id, 1)
    assert replies and "is not connected yet" in replies[-1]


@pytest.mark.parametrize(
    ("data", "declared", "name", "markdown"),
    [
        (JPEG, "image/jpeg", "a.jpg", "!"),
        (GIF, "image/gif", "b.gif", "!"),
        (WEBP, "image/webp", "c.webp", "!"),
        (PDF, "application/pdf", "report.pdf", ""),
        (b"a,b\n1,2\n", "text/csv", "t.csv", ""),
        (b'{"a": 1}', "application/json", "d.json", ""),
        (b"plain words", "text/plain", "notes.txt", ""),
        (b"", "text/plain", "empty.txt", ""),
    ],
)
async def test_every_allowed_type_is_accepted(
    upload_server: Server,  # noqa: F811
    owner: Owner,
    data: bytes,
    declared: str,
    name: str,
    markdown: str,
) -> None:
    async with owner.client(upload_server) as client:
        response = await post_form(client, owner.conversation_id, file_part(data, name, declared))
    assert response.status_code == 200, response.text
    message = response.json()["message"]
    stored = message["attachments"][0]["url"].removeprefix("/uploads/")
    assert message["content"] == f"{markdown}[{name}]({LINK_BASE}{stored})"
    assert message["attachments"][0]["fileType"] == declared
    assert message["attachments"][0]["fileSize"] == len(data)
    assert (upload_server.settings.upload_dir / stored).read_bytes() == data


@pytest.mark.parametrize(
    ("declared", "stored_type"),
    [
        ("text/plain; charset=utf-8", "text/plain"),
        ("TEXT/Plain", "text/plain"),
        (None, "text/plain"),
        ("Image/PNG; x=y", "image/png"),
    ],
)
async def test_declared_type_is_normalised(
    upload_server: Server,  # noqa: F811
    owner: Owner,
    declared: str | None,
    stored_type: str,
) -> None:
    data = PNG if stored_type == "image/png" else b"hello"
    async with owner.client(upload_server) as client:
        response = await post_form(
            client, owner.conversation_id, file_part(data, "f.txt", declared)
        )
    assert response.status_code == 200, response.text
    assert response.json()["message"]["attachments"][0]["fileType"] == stored_type


@pytest.mark.parametrize("caption_first", [True, False])
async def test_caption_is_read_wherever_it_comes_in_the_form(
    upload_server: Server,  # noqa: F811
    owner: Owner,
    caption_first: bool,
) -> None:
    """Quirk Q28: the web client sends the caption after the file; both orders work."""
    caption = Part("caption", "Look at this")
    the_file = file_part(b"some text", "n.txt", "text/plain")
    parts = (caption, the_file) if caption_first else (the_file, caption)
    async with owner.client(upload_server) as client:
        response = await post_form(client, owner.conversation_id, *parts)
    assert response.status_code == 200, response.text
    message = response.json()["message"]
    stored = message["attachments"][0]["url"].removeprefix("/uploads/")
    assert message["content"] == f"Look at this\n\n[n.txt]({LINK_BASE}{stored})"


async def test_caption_goes_through_the_chat_sanitiser(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    """decisions.md Q25: captions are sanitised like socket messages (the original stored
    them raw); prose with ``on…=`` stays as written."""
    caption = 'hi<script>alert(1)</script> <img src=x onerror="steal()"> one = 5'
    async with owner.client(upload_server) as client:
        response = await post_form(
            client, owner.conversation_id, file_part(PNG), Part("caption", caption)
        )
    assert response.status_code == 200, response.text
    content = response.json()["message"]["content"]
    assert content.startswith("hi <img src=x> one = 5\n\n![photo.png](")


async def test_caption_that_sanitises_to_nothing_adds_no_blank_lines(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    async with owner.client(upload_server) as client:
        response = await post_form(
            client, owner.conversation_id, Part("caption", "<script>x</script>"), file_part(PNG)
        )
    assert response.status_code == 200
    assert response.json()["message"]["content"].startswith("![photo.png](")


async def test_extra_parts_are_ignored_and_the_first_file_wins(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    parts = (
        Part("other", "x" * 5000),
        Part("upload", b"first file", "first.txt", "text/plain"),
        Part("upload", PNG, "second.png", "image/png"),
        Part("caption", "c1"),
        Part("caption", "c2"),
    )
    async with owner.client(upload_server) as client:
        response = await post_form(client, owner.conversation_id, *parts)
    assert response.status_code == 200, response.text
    message = response.json()["message"]
    assert message["attachments"][0]["fileName"] == "first.txt"
    assert message["content"].startswith("c1\n\n[first.txt](")


async def test_file_name_keeps_only_its_base_name_and_a_plain_extension(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    async with owner.client(upload_server) as client:
        windows = await post_form(
            client, owner.conversation_id, file_part(b"x", "C:/Users/me/notes.TXT", "text/plain")
        )
        odd_ext = await post_form(
            client, owner.conversation_id, file_part(b"x", "weird.t#x?t", "text/plain")
        )
        no_ext = await post_form(
            client, owner.conversation_id, file_part(b"x", "README", "text/plain")
        )
    assert windows.json()["message"]["attachments"][0]["fileName"] == "notes.TXT"
    assert windows.json()["message"]["attachments"][0]["url"].endswith(".TXT")
    assert re.fullmatch(
        r"/uploads/" + UUID_RX.pattern, odd_ext.json()["message"]["attachments"][0]["url"]
    )
    assert odd_ext.json()["message"]["attachments"][0]["fileName"] == "weird.t#x?t"
    assert re.fullmatch(
        r"/uploads/" + UUID_RX.pattern, no_ext.json()["message"]["attachments"][0]["url"]
    )


async def test_sequence_numbers_follow_existing_messages_and_never_repeat(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    """Quirk Q06: concurrent uploads to one conversation get distinct, gapless seqs (a group
    conversation: no agent reply takes a seq in between)."""
    group_id = await new_group(upload_server, owner)
    async with owner.client(upload_server) as client:
        responses = await asyncio.gather(
            *(
                post_form(client, group_id, file_part(b"%d" % i, "n.txt", "text/plain"))
                for i in range(12)
            )
        )
    assert all(r.status_code == 200 for r in responses)
    seqs = sorted(r.json()["message"]["seq"] for r in responses)
    assert seqs == list(range(1, 13))
    rows = await message_rows(upload_server, group_id)
    assert [row["seq"] for row in rows] == list(range(1, 13))


async def test_an_upload_that_waited_for_the_conversation_is_dated_after_the_writer(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    """Messages are listed by ``created_at``: an upload that waited for another writer's
    lock on the conversation (and so got the next seq) is dated after that writer, not
    when its own transaction began, so the page order and the seq order agree."""
    writer = await db_connect(upload_server)
    watcher = await db_connect(upload_server)
    try:
        async with owner.client(upload_server) as client:
            async with writer.transaction():
                await writer.execute(
                    "SELECT 1 FROM conversations WHERE id = $1::uuid FOR UPDATE",
                    owner.conversation_id,
                )
                upload = asyncio.create_task(
                    post_form(client, owner.conversation_id, file_part(PNG))
                )
                for _ in range(500):  # until the upload waits for the lock
                    waiting = await watcher.fetchval(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    )
                    if waiting:
                        break
                    await asyncio.sleep(0.01)
                assert waiting == 1
                await asyncio.sleep(0.05)
                await writer.execute(
                    "INSERT INTO messages (conversation_id, seq, role, content, status,"
                    " created_at, updated_at) VALUES ($1::uuid, 1, 'agent', 'first',"
                    " 'completed', clock_timestamp() AT TIME ZONE 'UTC',"
                    " clock_timestamp() AT TIME ZONE 'UTC')",
                    owner.conversation_id,
                )
            response = await upload
            assert response.status_code == 200
            uploaded = response.json()["message"]
            assert uploaded["seq"] == 2
            assert uploaded["createdAt"] == uploaded["updatedAt"]
            page = (await client.get(f"/api/conversations/{owner.conversation_id}/messages")).json()
        # the agent's reply to the upload (seq 3) may already be stored: the order matters
        assert [m["seq"] for m in page["messages"]][:2] == [1, 2]
        assert page["messages"][0]["createdAt"] <= uploaded["createdAt"]
    finally:
        await writer.close()
        await watcher.close()


async def test_group_conversation_gets_the_message_but_no_agent_reply(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    group_id = await new_group(upload_server, owner)
    async with owner.client(upload_server) as client:
        response = await post_form(client, group_id, file_part(PNG))
    assert response.status_code == 200
    assert response.json()["message"]["conversationId"] == group_id
    await asyncio.sleep(0.1)
    assert await agent_replies(upload_server, group_id, 0) == []


async def test_upload_runs_a_fixed_number_of_queries(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    """Counted on a group conversation, where no agent reply runs statements of its own."""
    group_id = await new_group(upload_server, owner)
    counter = upload_server.state.queries
    async with owner.client(upload_server) as client:
        await post_form(client, group_id, file_part(PNG))  # session now cached
        counts = []
        for _ in range(3):
            before = counter.count
            response = await post_form(client, group_id, file_part(PNG))
            assert response.status_code == 200
            counts.append(counter.count - before)
    assert counts[0] == counts[1] == counts[2]
    # ownership; BEGIN, lock, insert (seq computed in it), COMMIT; the pool's reset after
    # each of the two
    assert counts[0] <= 7


# -- errors ---------------------------------------------------------------------------


async def test_upload_without_a_session_is_401(upload_server: Server) -> None:  # noqa: F811
    headers, body = multipart(file_part(PNG))
    async with httpx.AsyncClient(base_url=upload_server.url) as client:
        response = await client.post(upload_url(UNKNOWN_ID), content=body, headers=headers)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


@pytest.mark.parametrize("conversation", [UNKNOWN_ID, "not-a-uuid", "1" * 100])
async def test_upload_to_an_unknown_conversation_is_404(
    upload_server: Server,  # noqa: F811
    owner: Owner,
    conversation: str,
) -> None:
    async with owner.client(upload_server) as client:
        response = await post_form(client, conversation, file_part(PNG))
    assert response.status_code == 404
    assert response.json() == CONVERSATION_NOT_FOUND


async def test_upload_to_another_users_conversation_is_404(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    intruder = await new_owner(upload_server)
    files_before = await stored_files(upload_server)
    async with intruder.client(upload_server) as client:
        response = await post_form(client, owner.conversation_id, file_part(PNG))
    assert response.status_code == 404
    assert response.json() == CONVERSATION_NOT_FOUND
    assert await message_rows(upload_server, owner.conversation_id) == []
    assert await stored_files(upload_server) == files_before


async def test_ownership_is_checked_before_the_body(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    async with owner.client(upload_server) as client:
        response = await client.post(upload_url(UNKNOWN_ID), json={"x": 1})
    assert response.status_code == 404
    assert response.json() == CONVERSATION_NOT_FOUND


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"json": {"file": "x"}},
        {"content": b"hello", "headers": {"content-type": "text/plain"}},
        {},
    ],
)
async def test_a_body_that_is_not_multipart_is_406(
    upload_server: Server,  # noqa: F811
    owner: Owner,
    request_kwargs: dict[str, object],
) -> None:
    async with owner.client(upload_server) as client:
        response = await client.post(upload_url(owner.conversation_id), **request_kwargs)  # type: ignore[arg-type]
    assert response.status_code == 406
    assert response.json() == {"error": "the request is not multipart", "code": "INTERNAL_ERROR"}


async def test_a_form_without_a_file_is_400(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    async with owner.client(upload_server) as client:
        only_caption = await post_form(client, owner.conversation_id, Part("caption", "hi"))
        empty_form = await post_form(client, owner.conversation_id)
    for response in (only_caption, empty_form):
        assert response.status_code == 400
        assert response.json() == {"error": "No file uploaded"}


@pytest.mark.parametrize(
    ("declared", "shown"),
    [
        ("application/xml", "application/xml"),
        ("Application/XML; charset=utf-8", "application/xml"),
        ("image/svg+xml", "image/svg+xml"),
        ("text/html", "text/html"),
        ("application/octet-stream", "application/octet-stream"),
    ],
)
async def test_a_type_outside_the_allow_list_is_400(
    upload_server: Server,  # noqa: F811
    owner: Owner,
    declared: str,
    shown: str,
) -> None:
    async with owner.client(upload_server) as client:
        response = await post_form(
            client, owner.conversation_id, file_part(b"<x/>", "x.xml", declared)
        )
    assert response.status_code == 400
    assert response.json() == {"error": f"File type {shown} is not allowed"}


async def test_a_file_input_left_empty_is_refused_by_type(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    """A browser sends ``filename=""`` with ``application/octet-stream`` for an empty input."""
    async with owner.client(upload_server) as client:
        response = await post_form(
            client, owner.conversation_id, file_part(b"", "", "application/octet-stream")
        )
    assert response.status_code == 400
    assert response.json() == {"error": "File type application/octet-stream is not allowed"}


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (PDF, "image/png"),  # Q27: the original let this through (detected type is allowed)
        (PNG, "image/jpeg"),
        (JPEG, "application/pdf"),
        (b"<html><script>x</script></html>", "image/png"),
        (make_png(animated=True), "image/png"),  # APNG
        (b"\xff\xd8\xff\xf7" + b"\x00" * 16, "image/jpeg"),  # JPEG-LS
        (b"", "image/gif"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),  # truncated
    ],
)
async def test_content_that_is_not_the_declared_type_is_400(
    upload_server: Server,  # noqa: F811
    owner: Owner,
    data: bytes,
    declared: str,
) -> None:
    files_before = await stored_files(upload_server)
    async with owner.client(upload_server) as client:
        response = await post_form(
            client, owner.conversation_id, file_part(data, "f.png", declared)
        )
    assert response.status_code == 400
    assert response.json() == {"error": "File content does not match declared type"}
    assert await stored_files(upload_server) == files_before


async def test_a_file_over_max_file_size_is_413_and_leaves_nothing(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    files_before = await stored_files(upload_server)
    exactly = b"a" * MAX_FILE_SIZE
    async with owner.client(upload_server) as client:
        too_big = await post_form(
            client, owner.conversation_id, file_part(exactly + b"a", "big.txt", "text/plain")
        )
        assert too_big.status_code == 413
        assert too_big.json() == {"error": "request file too large", "code": "INTERNAL_ERROR"}
        assert await message_rows(upload_server, owner.conversation_id) == []
        assert await stored_files(upload_server) == files_before
        # the connection stays usable, and exactly the limit is accepted
        at_limit = await post_form(
            client, owner.conversation_id, file_part(exactly, "big.txt", "text/plain")
        )
    assert at_limit.status_code == 200, at_limit.text
    assert at_limit.json()["message"]["attachments"][0]["fileSize"] == MAX_FILE_SIZE


async def test_the_413_comes_before_the_whole_body_is_sent(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    """The limit answers as soon as it is passed: the client gets its 413 while it still
    has most of a huge declared body to send."""
    headers, head = multipart(file_part(b"", "big.txt", "text/plain"))
    head = head[: head.rindex(b"\r\n--")]
    declared = 100 * MAX_FILE_SIZE
    reader, writer = await asyncio.open_connection("127.0.0.1", upload_server.port)
    try:
        request = (
            f"POST {upload_url(owner.conversation_id)} HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nCookie: {owner.signed_in.cookie}\r\n"
            f"Content-Type: {headers['content-type']}\r\nContent-Length: {declared}\r\n\r\n"
        )
        writer.write(request.encode() + head)
        chunk = b"z" * 65536
        for _ in range(MAX_FILE_SIZE // len(chunk) + 2):
            writer.write(chunk)
            await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 413 ")


async def test_a_file_name_longer_than_the_column_is_refused_before_storing(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    """Quirk Q40: the original wrote the file, then failed on the insert with a 500."""
    files_before = await stored_files(upload_server)
    name = "n" * 252 + ".txt"
    async with owner.client(upload_server) as client:
        response = await post_form(
            client, owner.conversation_id, file_part(b"x", name, "text/plain")
        )
        fits = await post_form(
            client, owner.conversation_id, file_part(b"x", name[1:], "text/plain")
        )
    assert response.status_code == 400
    assert response.json() == {"error": "File name must be at most 255 characters"}
    assert fits.status_code == 200
    assert len(await stored_files(upload_server)) == len(files_before) + 1


async def test_rows_that_cannot_be_written_leave_no_file(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    """Quirk Q40: message and attachment rows are one transaction; if it fails, the file
    already stored is removed and no message row is left either."""
    conn = await db_connect(upload_server)
    try:
        await conn.execute(
            "CREATE FUNCTION refuse_attachment() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'no attachments today'; END $$"
        )
        await conn.execute(
            "CREATE TRIGGER refuse_attachment BEFORE INSERT ON attachments"
            " FOR EACH ROW EXECUTE FUNCTION refuse_attachment()"
        )
        files_before = await stored_files(upload_server)
        async with owner.client(upload_server) as client:
            response = await post_form(client, owner.conversation_id, file_part(PNG))
        assert response.status_code == 500
        assert response.json() == {"error": "Internal server error", "code": "INTERNAL_ERROR"}
        assert await stored_files(upload_server) == files_before
        assert await message_rows(upload_server, owner.conversation_id) == []
    finally:
        await conn.execute("DROP TRIGGER IF EXISTS refuse_attachment ON attachments")
        await conn.execute("DROP FUNCTION IF EXISTS refuse_attachment()")
        await conn.close()


@pytest.mark.parametrize("name", ["toString", "__proto__", "constructor", "hasOwnProperty"])
async def test_a_prototype_member_as_field_name_is_400(
    upload_server: Server,  # noqa: F811
    owner: Owner,
    name: str,
) -> None:
    async with owner.client(upload_server) as client:
        response = await post_form(client, owner.conversation_id, file_part(PNG), Part(name, "x"))
    assert response.status_code == 400
    assert response.json() == {
        "error": "prototype property is not allowed as field name",
        "code": "INTERNAL_ERROR",
    }


async def test_more_than_1000_parts_is_413(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    parts = [Part(f"f{i}", "") for i in range(1001)]
    async with owner.client(upload_server) as client:
        response = await post_form(client, owner.conversation_id, file_part(PNG), *parts)
        at_limit = await post_form(client, owner.conversation_id, file_part(PNG), *parts[:999])
    assert response.status_code == 413
    assert response.json() == {"error": "reach parts limit", "code": "INTERNAL_ERROR"}
    assert at_limit.status_code == 200


@pytest.mark.parametrize(
    ("content_type", "body", "error"),
    [
        ("multipart/form-data", b"--x\r\n\r\n--x--", "Multipart: Boundary not found"),
        ("multipart/form-data; boundary=abc", b"", "Unexpected end of form"),
        (
            "multipart/form-data; boundary=abc",
            b'--abc\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\ndata',
            "Unexpected end of form",
        ),
        (
            "multipart/form-data; boundary=abc",
            b"--abc\r\nno colon here\r\n\r\nx\r\n--abc--",
            "Malformed part header",
        ),
    ],
)
async def test_a_malformed_form_is_400(
    upload_server: Server,  # noqa: F811
    owner: Owner,
    content_type: str,
    body: bytes,
    error: str,
) -> None:
    """The original crashed with 500 on these; the client gets a 400 that says why."""
    async with owner.client(upload_server) as client:
        response = await client.post(
            upload_url(owner.conversation_id), content=body, headers={"content-type": content_type}
        )
    assert response.status_code == 400
    assert response.json() == {"error": error, "code": "INTERNAL_ERROR"}


# -- GET /api/attachments/:id ---------------------------------------------------------


async def test_get_attachment_answers_the_attachment_view(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    group_id = await new_group(upload_server, owner)
    async with owner.client(upload_server) as client:
        uploaded = await post_form(client, group_id, file_part(PDF, "r.pdf", "application/pdf"))
        attachment = uploaded.json()["message"]["attachments"][0]
        counter = upload_server.state.queries
        before = counter.count
        response = await client.get(f"/api/attachments/{attachment['id']}")
        used = counter.count - before
    assert response.status_code == 200
    assert response.json() == attachment
    assert list(response.json()) == list(attachment)
    assert used <= 2  # session lookup + one join


@pytest.mark.parametrize("attachment_id", [UNKNOWN_ID, "nope", "1" * 100])
async def test_get_unknown_attachment_is_404(
    upload_server: Server,  # noqa: F811
    owner: Owner,
    attachment_id: str,
) -> None:
    async with owner.client(upload_server) as client:
        response = await client.get(f"/api/attachments/{attachment_id}")
    assert response.status_code == 404
    assert response.json() == ATTACHMENT_NOT_FOUND


async def test_get_another_users_attachment_is_404(
    upload_server: Server,  # noqa: F811
    owner: Owner,
) -> None:
    async with owner.client(upload_server) as client:
        uploaded = await post_form(client, owner.conversation_id, file_part(PNG))
    attachment_id = uploaded.json()["message"]["attachments"][0]["id"]
    intruder = await new_owner(upload_server)
    async with intruder.client(upload_server) as client:
        response = await client.get(f"/api/attachments/{attachment_id}")
    assert response.status_code == 404
    assert response.json() == ATTACHMENT_NOT_FOUND


async def test_get_attachment_without_a_session_is_401(upload_server: Server) -> None:  # noqa: F811
    async with httpx.AsyncClient(base_url=upload_server.url) as client:
        response = await client.get(f"/api/attachments/{UNKNOWN_ID}")
        empty = await client.get("/api/attachments/")
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    # an empty id is no route at all (quirk Q56)
    assert empty.status_code == 404
    assert empty.json() == {
        "message": "Route GET:/api/attachments/ not found",
        "error": "Not Found",
        "statusCode": 404,
    }


async def test_attachment_of_a_deleted_conversation_is_gone(upload_server: Server) -> None:  # noqa: F811
    owner = await new_owner(upload_server)
    async with owner.client(upload_server) as client:
        uploaded = await post_form(client, owner.conversation_id, file_part(PNG))
        attachment_id = uploaded.json()["message"]["attachments"][0]["id"]
        conn = await db_connect(upload_server)
        try:
            await conn.execute(
                "DELETE FROM conversations WHERE id = $1::uuid", owner.conversation_id
            )
        finally:
            await conn.close()
        response = await client.get(f"/api/attachments/{attachment_id}")
    assert response.status_code == 404
    assert response.json() == ATTACHMENT_NOT_FOUND


async def test_upload_by_a_fresh_user_shows_no_other_users_data(upload_server: Server) -> None:  # noqa: F811
    """Two users upload to their own conversations; each sees only their own rows."""
    first, second = await new_owner(upload_server), await new_owner(upload_server)
    async with first.client(upload_server) as a, second.client(upload_server) as b:
        ra = await post_form(a, first.conversation_id, file_part(b"a", "a.txt", "text/plain"))
        rb = await post_form(b, second.conversation_id, file_part(b"b", "b.txt", "text/plain"))
    assert ra.json()["message"]["seq"] == rb.json()["message"]["seq"] == 1
    assert ra.json()["message"]["conversationId"] == first.conversation_id
    assert uuid.UUID(rb.json()["message"]["conversationId"]) == uuid.UUID(second.conversation_id)
