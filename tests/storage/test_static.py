"""GET|HEAD /uploads/* (contract rest.md §3.13): headers, conditional and range requests,
the 403/400/404 bodies, no way out of UPLOAD_DIR, and files that could run script are
never rendered inline on the API origin (quirk Q29)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from arinova.server import Server
from tests.http.uploads_fixtures import PNG, upload_server  # noqa: F401 - fixture
from tests.support.servers import StartServer

TEXT = b"0123456789abcdefghij"
FORBIDDEN = {"error": "Forbidden", "code": "INTERNAL_ERROR"}
BAD_REQUEST = {"error": "Bad Request", "code": "INTERNAL_ERROR"}
SANDBOX = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def not_found(target: str, method: str = "GET") -> dict[str, object]:
    return {
        "message": f"Route {method}:{target} not found",
        "error": "Not Found",
        "statusCode": 404,
    }


def put_file(server: Server, relative: str, data: bytes, mtime: float | None = None) -> Path:
    path = server.settings.upload_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def weak_etag(path: Path) -> str:
    info = path.stat()
    return f'W/"{info.st_size:x}-{info.st_mtime_ns // 1_000_000:x}"'


async def raw_get(server: Server, target: str, method: str = "GET") -> tuple[int, bytes]:
    """Send ``target`` exactly as written (httpx would normalise ``..`` segments)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(f"{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


@pytest.fixture
async def client(upload_server: Server) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    async with httpx.AsyncClient(base_url=upload_server.url) as c:
        yield c


async def test_a_file_is_served_with_the_static_headers(
    upload_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
) -> None:
    path = put_file(upload_server, "notes-1.txt", TEXT, mtime=1_700_000_000.25)
    response = await client.get("/uploads/notes-1.txt")
    assert response.status_code == 200
    assert response.content == TEXT
    headers = response.headers
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["content-length"] == str(len(TEXT))
    assert headers["etag"] == weak_etag(path) == f'W/"14-{1_700_000_000_250:x}"'
    assert headers["last-modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert headers["cache-control"] == "public, max-age=0"
    assert headers["accept-ranges"] == "bytes"
    assert headers["x-content-type-options"] == "nosniff"
    assert "content-disposition" not in headers


async def test_head_has_the_headers_and_no_body(
    upload_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
) -> None:
    put_file(upload_server, "head.png", PNG)
    get = await client.get("/uploads/head.png")
    head = await client.head("/uploads/head.png")
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "etag", "last-modified", "cache-control"):
        assert head.headers[name] == get.headers[name]
    assert head.headers["content-length"] == str(len(PNG))


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("a.png", "image/png"),
        ("b.JPG", "image/jpeg"),
        ("c.webp", "image/webp"),
        ("d.gif", "image/gif"),
        ("e.pdf", "application/pdf"),
        ("f.csv", "text/csv; charset=utf-8"),
        ("g.json", "application/json; charset=utf-8"),
        ("noext", "application/octet-stream"),
        (".png", "application/octet-stream"),
    ],
)
async def test_content_type_comes_from_the_extension(
    upload_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
    name: str,
    content_type: str,
) -> None:
    put_file(upload_server, f"types/{name}", b"data")
    response = await client.get(f"/uploads/types/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("page.html", "text/html; charset=utf-8"),
        ("logo.svg", "image/svg+xml"),
        ("data.xml", "application/xml"),
        ("app.js", "application/javascript; charset=utf-8"),
        ("blob.bin", "application/octet-stream"),
    ],
)
async def test_types_that_can_run_script_are_downloads_in_a_sandbox(
    upload_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
    name: str,
    content_type: str,
) -> None:
    """Q29: a hostile ``.html``/``.svg`` under /uploads never runs on the API origin."""
    put_file(upload_server, f"risky/{name}", b"<script>alert(document.cookie)</script>")
    response = await client.get(f"/uploads/risky/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["content-disposition"] == "attachment"
    assert response.headers["content-security-policy"] == SANDBOX
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_dotfiles_and_encoded_names_are_served(
    upload_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
) -> None:
    put_file(upload_server, ".hidden", b"dot")
    put_file(upload_server, "with space é.txt", b"spaced")
    dot = await client.get("/uploads/.hidden")
    spaced = await client.get("/uploads/with%20space%20%C3%A9.txt?v=3")
    assert (dot.status_code, dot.content) == (200, b"dot")
    assert (spaced.status_code, spaced.content) == (200, b"spaced")


# -- conditional requests --------------------------------------------------------------


async def test_conditional_requests(
    upload_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
) -> None:
    path = put_file(upload_server, "cond.txt", TEXT, mtime=1_700_000_000)
    etag = weak_etag(path)
    modified = formatdate(1_700_000_000, usegmt=True)

    by_etag = await client.get("/uploads/cond.txt", headers={"if-none-match": etag})
    assert by_etag.status_code == 304
    assert by_etag.content == b""
    assert by_etag.headers["etag"] == etag
    assert by_etag.headers["last-modified"] == modified
    assert "content-type" not in by_etag.headers
    assert "content-length" not in by_etag.headers

    in_list = await client.get("/uploads/cond.txt", headers={"if-none-match": f'"x", {etag}'})
    star = await client.get("/uploads/cond.txt", headers={"if-none-match": "*"})
    by_date = await client.get("/uploads/cond.txt", headers={"if-modified-since": modified})
    assert in_list.status_code == star.status_code == by_date.status_code == 304

    other = await client.get("/uploads/cond.txt", headers={"if-none-match": 'W/"nope"'})
    older = await client.get(
        "/uploads/cond.txt", headers={"if-modified-since": formatdate(1_600_000_000, usegmt=True)}
    )
    no_cache = await client.get(
        "/uploads/cond.txt", headers={"if-none-match": etag, "cache-control": "no-cache"}
    )
    for response in (other, older, no_cache):
        assert response.status_code == 200
        assert response.content == TEXT

    failed = await client.get("/uploads/cond.txt", headers={"if-match": '"other"'})
    assert failed.status_code == 412
    assert failed.json() == {"error": "Precondition Failed", "code": "INTERNAL_ERROR"}
    matched = await client.get("/uploads/cond.txt", headers={"if-match": etag})
    assert matched.status_code == 200
    unmodified = await client.get(
        "/uploads/cond.txt",
        headers={"if-unmodified-since": formatdate(1_600_000_000, usegmt=True)},
    )
    assert unmodified.status_code == 412


# -- ranges ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("range_header", "status", "body", "content_range"),
    [
        ("bytes=2-5", 206, TEXT[2:6], "bytes 2-5/20"),
        ("bytes=-3", 206, TEXT[-3:], "bytes 17-19/20"),
        ("bytes=15-", 206, TEXT[15:], "bytes 15-19/20"),
        ("bytes=10-100", 206, TEXT[10:], "bytes 10-19/20"),
        ("bytes=0-3,2-6", 206, TEXT[0:7], "bytes 0-6/20"),  # overlapping: combined
        ("bytes=0-1,5-6", 200, TEXT, None),  # several ranges: the whole file
        ("bytes=x-y", 416, None, "bytes */20"),
        ("bytes=20-", 416, None, "bytes */20"),
        ("items=0-1", 200, TEXT, None),  # not a byte range
    ],
)
async def test_range_requests(
    upload_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
    range_header: str,
    status: int,
    body: bytes | None,
    content_range: str | None,
) -> None:
    put_file(upload_server, "range.txt", TEXT)
    response = await client.get("/uploads/range.txt", headers={"range": range_header})
    assert response.status_code == status
    assert response.headers.get("content-range") == content_range
    if body is None:
        assert response.json() == {"error": "Range Not Satisfiable", "code": "INTERNAL_ERROR"}
    else:
        assert response.content == body
        assert response.headers["content-length"] == str(len(body))


async def test_if_range_sends_the_whole_file_when_it_changed(
    upload_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
) -> None:
    path = put_file(upload_server, "ifrange.txt", TEXT)
    fresh = await client.get(
        "/uploads/ifrange.txt", headers={"range": "bytes=0-1", "if-range": weak_etag(path)}
    )
    stale = await client.get(
        "/uploads/ifrange.txt", headers={"range": "bytes=0-1", "if-range": '"old"'}
    )
    assert (fresh.status_code, fresh.content) == (206, TEXT[:2])
    assert (stale.status_code, stale.content) == (200, TEXT)


async def test_large_files_are_streamed_whole_and_by_range(
    upload_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
) -> None:
    data = os.urandom(1024 * 1024 + 17)
    put_file(upload_server, "large.bin", data)
    whole = await client.get("/uploads/large.bin")
    part = await client.get("/uploads/large.bin", headers={"range": "bytes=1000-700000"})
    assert whole.status_code == 200
    assert whole.headers["content-length"] == str(len(data))
    assert whole.content == data
    assert part.status_code == 206
    assert part.content == data[1000:700001]


# -- missing, traversal, bad paths -----------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/uploads/missing.png",
        "/uploads/missing.png?v=1",
        "/uploads/",
        "/uploads/dir-only",
        "/uploads/dir-only/",
        "/uploads/range.txt/more",
    ],
)
async def test_missing_files_answer_the_router_404(
    upload_server: Server,  # noqa: F811
    target: str,
) -> None:
    (upload_server.settings.upload_dir / "dir-only").mkdir(exist_ok=True)
    put_file(upload_server, "range.txt", TEXT)
    status, body = await raw_get(upload_server, target)
    assert status == 404
    assert json.loads(body) == not_found(target)


async def test_the_prefix_itself_without_slash_is_not_a_route(upload_server: Server) -> None:  # noqa: F811
    status, body = await raw_get(upload_server, "/uploads")
    assert status == 404
    assert json.loads(body) == not_found("/uploads")


@pytest.mark.parametrize(
    "target",
    [
        "/uploads/../secret.txt",
        "/uploads/..%2fsecret.txt",
        "/uploads/..%2Fsecret.txt",
        "/uploads/%2e%2e/secret.txt",
        "/uploads/a/../../secret.txt",
        "/uploads/..",
        "/uploads/..%5csecret.txt",
        "/uploads/a/%2e%2e/%2e%2e/secret.txt",
    ],
)
async def test_paths_that_climb_out_of_the_root_are_403(
    upload_server: Server,  # noqa: F811
    target: str,
) -> None:
    secret = upload_server.settings.upload_dir.parent / "secret.txt"
    secret.write_text("top secret")
    status, body = await raw_get(upload_server, target)
    assert status == 403
    assert json.loads(body) == FORBIDDEN


async def test_a_dot_dot_that_stays_inside_is_normalised(upload_server: Server) -> None:  # noqa: F811
    put_file(upload_server, "inside.txt", b"inside")
    status, body = await raw_get(upload_server, "/uploads/a/../inside.txt")
    assert (status, body) == (200, b"inside")


@pytest.mark.parametrize("target", ["/uploads/%00x", "/uploads/a%00.png"])
async def test_nul_bytes_are_400(
    upload_server: Server,  # noqa: F811
    target: str,
) -> None:
    status, body = await raw_get(upload_server, target)
    assert status == 400
    assert json.loads(body) == BAD_REQUEST


@pytest.mark.parametrize("target", ["/uploads/%zz", "/uploads/%ff"])
async def test_undecodable_paths_are_the_routers_400(
    upload_server: Server,  # noqa: F811
    target: str,
) -> None:
    # Fastify refuses a path decodeURI cannot decode before any route runs
    status, body = await raw_get(upload_server, target)
    assert status == 400
    assert json.loads(body) == {
        "error": "Bad Request",
        "code": "FST_ERR_BAD_URL",
        "message": f"'{target}' is not a valid url component",
        "statusCode": 400,
    }


async def test_no_session_is_needed_and_post_is_no_route(
    upload_server: Server,  # noqa: F811
    client: httpx.AsyncClient,
) -> None:
    put_file(upload_server, "public.txt", b"p")
    assert (await client.get("/uploads/public.txt")).status_code == 200
    post = await client.post("/uploads/public.txt")
    assert post.status_code == 404
    assert post.json() == not_found("/uploads/public.txt", "POST")


async def test_static_files_are_rate_limited_with_the_custom_body(
    start_server: StartServer,
) -> None:
    """rest.md §3.13: /uploads/* counts against the global limit and its 429 has the
    custom body (the original's static plugin forwarded to the custom error handler)."""
    server = await start_server(rate_limit_max=2, redis_url="")  # a counter of its own
    put_file(server, "limited.txt", b"x")
    async with httpx.AsyncClient(base_url=server.url) as client:
        first = await client.get("/uploads/limited.txt")
        await client.get("/uploads/limited.txt")
        third = await client.get("/uploads/limited.txt")
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit"] == "2"
    assert third.status_code == 429
    assert third.json() == {
        "error": "Too many requests. Please try again later.",
        "code": "RATE_LIMIT",
    }
