"""A TCP proxy between the code under test and a real service, with the network faults a
test sets while connections are open.

    async with TcpProxy("127.0.0.1", 5432) as proxy:
        dsn = f"postgresql://root@{proxy.host}:{proxy.port}/{database}"
        await proxy.cut()        # every open connection is reset (RST to both ends)
        proxy.refuse(True)       # new connections are accepted and reset at once
        proxy.stall(True)        # nothing is forwarded either way, connections stay open
        proxy.stall(False)       # what was held back is forwarded, in order
        proxy.accepted, proxy.refused, proxy.open_connections
        proxy.bytes_to_target, proxy.bytes_to_client

While stalled the proxy holds at most one chunk per direction per connection and stops
reading, so senders fill their socket buffers and then block, as over a dead link; an
end's EOF or reset is held back too. Everything is reset when the block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from types import TracebackType

from tests.support.ports import LOOPBACK

#: bytes read at once, and the read buffer's limit, per direction and connection
CHUNK = 64 * 1024
MAX_CONNECTIONS = 256
CONNECT_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 2.0
_LINGER_ZERO = struct.pack("ii", 1, 0)


class TcpProxy:
    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.target = (target_host, target_port)
        self.host = LOOPBACK
        self.max_connections = max_connections
        #: TCP connections accepted, refused ones included
        self.accepted = 0
        #: connections reset at once: while refusing, over ``max_connections``, or when
        #: the target could not be reached
        self.refused = 0
        self.bytes_to_target = 0
        self.bytes_to_client = 0
        self._refusing = False
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._relays: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._port: int | None = None

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the proxy has not been started yet")
        return self._port

    @property
    def open_connections(self) -> int:
        return len(self._relays)

    @property
    def stalled(self) -> bool:
        return not self._flowing.is_set()

    @property
    def refusing(self) -> bool:
        return self._refusing

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the proxy is already listening")
        self._server = await asyncio.start_server(self._accept, self.host, 0, limit=CHUNK)
        self._port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and reset every connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        # a connection accepted just before may start its relay after a cut began
        while self._relays:
            await self.cut()
        if server is not None:
            await server.wait_closed()

    async def cut(self) -> None:
        """Reset every open connection, both ends, and return once their sockets are
        closed. New connections are served as before."""
        relays = list(self._relays)
        for relay in relays:
            relay.cancel()
        await asyncio.gather(*relays, return_exceptions=True)

    def refuse(self, on: bool = True) -> None:
        """While on, each new connection is reset as soon as it is accepted (open ones
        are untouched)."""
        self._refusing = on

    def stall(self, on: bool = True) -> None:
        """While on, no byte, EOF or reset is passed on in either direction."""
        if on:
            self._flowing.clear()
        else:
            self._flowing.set()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        relay = asyncio.get_running_loop().create_task(self._relay(reader, writer))
        self._relays.add(relay)
        relay.add_done_callback(self._relays.discard)

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        upstream_out: asyncio.StreamWriter | None = None
        clean = False
        try:
            closing = self._server is None
            if closing or self._refusing or len(self._relays) > self.max_connections:
                self.refused += 1
                return
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    upstream_in, upstream_out = await asyncio.open_connection(
                        *self.target, limit=CHUNK
                    )
            except (OSError, TimeoutError):
                self.refused += 1
                return
            clean = await self._forward(client_in, client_out, upstream_in, upstream_out)
        finally:
            await _finish(client_out, clean)
            if upstream_out is not None:
                await _finish(upstream_out, clean)

    async def _forward(
        self,
        client_in: asyncio.StreamReader,
        client_out: asyncio.StreamWriter,
        upstream_in: asyncio.StreamReader,
        upstream_out: asyncio.StreamWriter,
    ) -> bool:
        """Both directions until both ends have sent EOF (True) or one failed (False)."""
        pumps = [
            asyncio.create_task(self._pump(client_in, upstream_out, to_target=True)),
            asyncio.create_task(self._pump(upstream_in, client_out, to_target=False)),
        ]
        try:
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            return len(done) == len(pumps) and not any(pump.exception() for pump in done)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

    async def _pump(
        self, source: asyncio.StreamReader, destination: asyncio.StreamWriter, *, to_target: bool
    ) -> None:
        while True:
            try:
                data = await source.read(CHUNK)
            except OSError:
                await self._flowing.wait()
                raise
            await self._flowing.wait()
            if not data:
                if destination.can_write_eof():
                    destination.write_eof()
                return
            destination.write(data)
            if to_target:
                self.bytes_to_target += len(data)
            else:
                self.bytes_to_client += len(data)
            await destination.drain()


async def _finish(writer: asyncio.StreamWriter, clean: bool) -> None:
    """Close one end: FIN after a clean exchange, RST otherwise."""
    if clean:
        writer.close()
    else:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        writer.transport.abort()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await writer.wait_closed()
