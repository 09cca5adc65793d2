"""Shared helpers of the upload, attachment, avatar and static-file tests (no tests here):
multipart bodies built by hand (part order matters, quirk Q28), sample files with real
magic numbers, a realtime layer that records agent-reply requests, database seeding."""

from __future__ import annotations

import asyncio
import struct
import uuid
import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from arinova.server import Server
from tests.support.auth import SignedIn, authed_client, sign_up
from tests.support.servers import StartServer

#: a server for these tests: small enough file limit to pass it cheaply, above the
#: avatar's 2 MiB so both limits can be seen
MAX_FILE_SIZE = 3 * 1024 * 1024
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
BOUNDARY = "----arinovaTestBoundary7MA4YWxkTrZu0gW"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def make_png(extra: bytes = b"", animated: bool = False) -> bytes:
    """A valid 1x1 PNG (optionally with an ``acTL`` chunk: APNG)."""
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    actl = _png_chunk(b"acTL", struct.pack(">II", 1, 0)) if animated else b""
    idat = _png_chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
    text = _png_chunk(b"tEXt", b"c\x00" + extra) if extra else b""
    return b"\x89PNG\r\n\x1a\n" + header + actl + idat + text + _png_chunk(b"IEND", b"")


PNG = make_png()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
#: a PNG of a little more than 1 MiB
BIG_PNG = make_png(b"x" * (1024 * 1024))
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@dataclass
class Part:
    name: str
    data: bytes | str
    filename: str | None = None
    content_type: str | None = None
    extra_headers: Sequence[str] = ()

    def encode(self) -> bytes:
        disposition = f'form-data; name="{self.name}"'
        if self.filename is not None:
            disposition += f'; filename="{self.filename}"'
        lines = [f"Content-Disposition: {disposition}"]
        if self.content_type is not None:
            lines.append(f"Content-Type: {self.content_type}")
        lines.extend(self.extra_headers)
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        body = self.data.encode() if isinstance(self.data, str) else self.data
        return head + body


def file_part(
    data: bytes, filename: str = "photo.png", content_type: str | None = "image/png"
) -> Part:
    return Part("file", data, filename, content_type)


def multipart(*parts: Part, boundary: str = BOUNDARY) -> tuple[dict[str, str], bytes]:
    """Headers and body of a ``multipart/form-data`` request with ``parts`` in order."""
    delimiter = f"--{boundary}".encode()
    body = b"".join(delimiter + b"\r\n" + part.encode() + b"\r\n" for part in parts)
    body += delimiter + b"--\r\n"
    return {"content-type": f"multipart/form-data; boundary={boundary}"}, body


async def agent_replies(server: Server, conversation_id: str, expected: int) -> list[str]:
    """The agent rows of the conversation, once there are ``expected`` of them (no agent
    is connected in these tests, so the pipeline stores its "not connected" reply)."""
    conn = await db_connect(server)
    try:
        for _ in range(100):
            rows = await conn.fetch(
                "SELECT content FROM messages WHERE conversation_id = $1::uuid"
                " AND role = 'agent' ORDER BY seq",
                conversation_id,
            )
            if len(rows) >= expected:
                break
            await asyncio.sleep(0.02)
        return [row["content"] for row in rows]
    finally:
        await conn.close()


async def start_upload_server(start: StartServer, **overrides: object) -> Server:
    """A server from ``start`` (a server factory fixture)."""
    return await start(**overrides)


@pytest.fixture(scope="module")
async def upload_server(start_module_server: StartServer) -> Server:
    """Local-disk storage, counted queries; room for a dozen uploads of one user at once
    (the concurrency tests of ``seq``; the bounds have their own module)."""
    return await start_upload_server(
        start_module_server,
        count_queries=True,
        max_concurrent_uploads_per_user=16,
        max_file_size=MAX_FILE_SIZE,
        better_auth_url="http://api.example.test",
    )


@dataclass
class Owner:
    """A signed-in user with an agent and a direct conversation with it."""

    signed_in: SignedIn
    agent_id: str
    conversation_id: str

    @property
    def id(self) -> str:
        return self.signed_in.id

    def client(self, server: Server) -> httpx.AsyncClient:
        return authed_client(server.url, self.signed_in, timeout=30.0)


async def db_connect(server: Server) -> asyncpg.Connection[Any]:
    return await asyncpg.connect(server.settings.database_url)


async def add_agent(conn: asyncpg.Connection[Any], owner_id: str, name: str = "Helper") -> str:
    return str(
        await conn.fetchval(
            "INSERT INTO agents (name, owner_id, secret_token) VALUES ($1, $2, $3) RETURNING id",
            name,
            owner_id,
            f"ari_{uuid.uuid4().hex}{uuid.uuid4().hex[:16]}",
        )
    )


async def add_conversation(
    conn: asyncpg.Connection[Any], user_id: str, agent_id: str | None, kind: str = "direct"
) -> str:
    return str(
        await conn.fetchval(
            "INSERT INTO conversations (type, user_id, agent_id)"
            " VALUES ($1::conversation_type, $2, $3::uuid) RETURNING id",
            kind,
            user_id,
            agent_id,
        )
    )


async def new_group(server: Server, owner: Owner) -> str:
    """A group conversation of the owner's: uploads there start no agent reply, so their
    rows, seqs and statements are the upload's alone."""
    conn = await db_connect(server)
    try:
        return await add_conversation(conn, owner.id, None, kind="group")
    finally:
        await conn.close()


async def new_owner(server: Server) -> Owner:
    signed_in = await sign_up(server.url)
    conn = await db_connect(server)
    try:
        agent_id = await add_agent(conn, signed_in.id)
        conversation_id = await add_conversation(conn, signed_in.id, agent_id)
    finally:
        await conn.close()
    return Owner(signed_in, agent_id, conversation_id)


async def stored_files(server: Server) -> list[str]:
    """Every file under the server's upload directory, relative, sorted."""
    root = server.settings.upload_dir
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


class HeldUpload:
    """An upload (of one file part) whose client sends the first bytes of the body, then
    waits for ``release()`` before sending the rest."""

    def __init__(
        self, server: Server, owner: Owner, url: str, data: bytes, first_bytes: int = 1024
    ) -> None:
        self._release = asyncio.Event()
        self._client = owner.client(server)
        self._first_bytes = first_bytes
        headers, self._body = multipart(file_part(data))
        self.task = asyncio.create_task(
            self._client.post(url, content=self._send(), headers=headers)
        )

    async def _send(self) -> AsyncIterator[bytes]:
        yield self._body[: self._first_bytes]
        await self._release.wait()
        yield self._body[self._first_bytes :]

    async def release(self) -> httpx.Response:
        self._release.set()
        try:
            return await self.task
        finally:
            await self._client.aclose()

    async def abort(self) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        await self._client.aclose()
