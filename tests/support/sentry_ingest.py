"""A local Sentry ingest endpoint: accepts envelopes POSTed over HTTP/1.1 (gzip or plain)
and keeps the events they carry, for a DSN like ``http://public@127.0.0.1:<port>/1``."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

#: bound of what one test may send (envelopes kept)
MAX_ENVELOPES = 1000


@dataclass
class SentryIngest:
    port: int = 0
    #: the raw (decompressed) envelopes, in arrival order
    envelopes: list[bytes] = field(default_factory=list)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.port}/1"

    @property
    def events(self) -> list[dict[str, Any]]:
        return [item for envelope in self.envelopes for item in _events(envelope)]

    async def wait_events(self, count: int, wait: float = 10.0) -> list[dict[str, Any]]:
        """The events once ``count`` arrived (fewer after ``wait`` seconds)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                while len(self.events) < count:
                    self.arrived.clear()
                    await self.arrived.wait()
        return self.events

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                encoding = headers.get("content-encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                elif encoding:
                    raise AssertionError(f"unexpected content encoding {encoding!r}")
                if len(self.envelopes) < MAX_ENVELOPES:
                    self.envelopes.append(body)
                    self.arrived.set()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: 2\r\n\r\n{}"
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()


def _events(envelope: bytes) -> list[dict[str, Any]]:
    """The ``event`` items of one envelope (header line, then item header + payload)."""
    found = []
    rest = envelope.split(b"\n", 1)[1] if b"\n" in envelope else b""
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = orjson.loads(header_line)
        length = header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length + 1 :]
        if header.get("type") == "event":
            found.append(orjson.loads(payload))
    return found


@contextlib.asynccontextmanager
async def sentry_ingest() -> AsyncIterator[SentryIngest]:
    ingest = SentryIngest()
    server = await asyncio.start_server(ingest._serve, "127.0.0.1", 0)
    ingest.port = server.sockets[0].getsockname()[1]
    try:
        yield ingest
    finally:
        server.close()
        for writer in list(ingest.writers):
            writer.close()
        await server.wait_closed()
