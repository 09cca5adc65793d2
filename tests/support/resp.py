"""One Redis command on a fresh connection, without redis-py: readiness probes of the
private Redis servers must not depend on the client library whose behaviour the tests
observe (its retries and reconnects)."""

from __future__ import annotations

import asyncio

#: largest bulk reply and longest array read (probes read ``PING``, ``INFO`` and
#: ``CLUSTER INFO``: a few KiB)
MAX_REPLY = 1 << 20
MAX_ITEMS = 1024

Reply = str | int | bytes | None | list["Reply"]


class RespError(Exception):
    """The server answered ``-ERR …``."""


async def command(host: str, port: int, *args: str, within_s: float = 1.0) -> Reply:
    """Send ``args`` as one command and return the decoded reply.

    Raises ``OSError`` when nothing listens, ``TimeoutError`` when nothing answers within
    ``within_s`` seconds, ``RespError`` for an error reply.
    """
    async with asyncio.timeout(within_s):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(encode(args))
            await writer.drain()
            return await read_reply(reader)
        finally:
            writer.transport.abort()


def encode(args: tuple[str, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    line = (await reader.readuntil(b"\r\n"))[:-2]
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RespError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        if size > MAX_REPLY:
            raise RespError(f"reply of {size} bytes is larger than {MAX_REPLY}")
        return (await reader.readexactly(size + 2))[:-2]
    if kind == b"*":
        count = int(rest)
        if count < 0:
            return None
        if count > MAX_ITEMS:
            raise RespError(f"reply of {count} items is longer than {MAX_ITEMS}")
        return [await read_reply(reader) for _ in range(count)]
    raise RespError(f"unexpected reply line {line!r}")
