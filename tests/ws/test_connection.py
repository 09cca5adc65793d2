"""The asyncio adapter (arinova.ws.connection) and the outbox over a real socket pair, no
server: writes wait for the end of the loop iteration, a close writes what was queued
first, the write bound; and the handler policies (arinova.ws.handler) on their own."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from arinova._fast.frames import OP_TEXT, encode_close, encode_frame, encode_text
from arinova.ws import Outbox, SocketConnection, SocketHandler, SocketLimits
from arinova.ws.handler import deliver, finish, start

MASK = b"\x01\x02\x03\x04"
LIMITS = SocketLimits(max_message_size=1024, max_write_buffer=64 * 1024, write_high_water=16 * 1024)


class Recorder(SocketHandler):
    """Answers ``burst`` with three frames; records what the connection tells it."""

    __slots__ = ("closed", "texts")

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

    def on_text(self, text: str) -> None:
        self.texts.append(text)
        if text == "burst":
            for n in range(3):
                self.send_text(f"frame {n}")
        elif text == "burst then close":
            self.send_text("before the close")
            self.close(4000, "done")

    def on_close(self, code: int, reason: str) -> None:
        self.closed.set_result((code, reason))


@dataclass
class Pair:
    """A socket served by ``SocketConnection`` and the peer's end of it."""

    handler: Recorder
    conn: SocketConnection
    peer: socket.socket
    received: bytearray = field(default_factory=bytearray)

    def pending(self) -> bytes:
        """What the peer can read right now, without waiting."""
        try:
            return self.peer.recv(1 << 20)
        except BlockingIOError:
            return b""

    async def read(self, size: int) -> bytes:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(5):
            while len(self.received) < size:
                chunk = await loop.sock_recv(self.peer, 1 << 20)
                if not chunk:
                    break
                self.received += chunk
        data = bytes(self.received[:size])
        del self.received[:size]
        return data

    def send(self, text: str) -> None:
        self.peer.sendall(encode_frame(OP_TEXT, text.encode(), mask=MASK))


@asynccontextmanager
async def socket_pair(
    outbox: Outbox | None = None, limits: SocketLimits = LIMITS
) -> AsyncIterator[Pair]:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    handler = Recorder()
    box = outbox or Outbox(loop)
    make: Callable[[], SocketConnection] = lambda: SocketConnection(handler, limits, set(), box)  # noqa: E731
    _, conn = await loop.connect_accepted_socket(make, ours)
    try:
        yield Pair(handler, conn, theirs)
    finally:
        conn.abort()
        theirs.close()


async def test_frames_sent_in_one_iteration_are_written_at_its_end() -> None:
    async with socket_pair() as pair:
        assert pair.handler.send_text("one")
        assert pair.handler.send_frame(encode_text("two"))
        assert pair.pending() == b""  # nothing written yet
        await asyncio.sleep(0)  # the outbox's callback runs before this task resumes
        assert pair.pending() == encode_text("one") + encode_text("two")


async def test_replies_to_a_read_go_out_together_in_order() -> None:
    async with socket_pair() as pair:
        pair.send("burst")
        expected = b"".join(encode_text(f"frame {n}") for n in range(3))
        assert await pair.read(len(expected)) == expected


async def test_one_outbox_serves_every_socket_of_a_loop() -> None:
    outbox = Outbox(asyncio.get_running_loop())
    async with socket_pair(outbox) as first, socket_pair(outbox) as second:
        first.handler.send_text("to the first")
        second.handler.send_text("to the second")
        first.handler.send_text("again to the first")
        assert (first.pending(), second.pending()) == (b"", b"")
        await asyncio.sleep(0)
        assert first.pending() == encode_text("to the first") + encode_text("again to the first")
        assert second.pending() == encode_text("to the second")


async def test_a_close_writes_what_was_queued_then_the_close_frame_at_once() -> None:
    async with socket_pair() as pair:
        pair.handler.send_text("queued")
        pair.handler.close(4408, "Heartbeat timeout")
        # no loop iteration needed: the close frame and what came before it are written
        assert pair.pending() == encode_text("queued") + encode_close(4408, "Heartbeat timeout")
        assert not pair.handler.open
        assert not pair.handler.send_text("after the close")
        pair.peer.sendall(encode_frame(8, encode_close(4408)[2:], mask=MASK))
        async with asyncio.timeout(5):
            assert await pair.handler.closed == (4408, "")
        await asyncio.sleep(0)
        assert pair.pending() == b""  # the outbox had nothing left for it


async def test_a_close_from_the_handler_while_it_handles_a_read() -> None:
    async with socket_pair() as pair:
        pair.send("burst then close")
        expected = encode_text("before the close") + encode_close(4000, "done")
        assert await pair.read(len(expected)) == expected


async def test_frames_over_the_write_bound_drop_the_connection() -> None:
    limits = SocketLimits(max_write_buffer=10_000, write_high_water=1_000)
    async with socket_pair(limits=limits) as pair:
        frame = encode_frame(OP_TEXT, b"x" * 4000)
        assert pair.handler.send_frame(frame)
        assert pair.handler.send_frame(frame)
        assert not pair.handler.send_frame(frame)  # 12 000 bytes would be queued
        assert not pair.handler.open
        async with asyncio.timeout(5):
            assert await pair.handler.closed == (1006, "")
        assert pair.pending() == b""  # nothing of it was written


async def test_a_peer_that_does_not_read_is_dropped_once_the_transport_holds_too_much() -> None:
    """Frames within the bound in each iteration, but the peer reads nothing: the bytes
    the transport holds grow until they pass the bound after a write."""
    limits = SocketLimits(max_write_buffer=100_000, write_high_water=1_000)
    async with socket_pair(limits=limits) as pair:
        assert pair.conn.transport is not None
        sock = pair.conn.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        pair.peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        frame = encode_frame(OP_TEXT, b"x" * 30_000)
        sent = 0
        async with asyncio.timeout(5):
            while pair.handler.send_frame(frame):
                sent += 1
                await asyncio.sleep(0)
            assert await pair.handler.closed == (1006, "")
        # the kernel holds a few frames at most; the transport the bound's worth
        assert 3 <= sent <= 8


async def test_shutdown_closes_with_going_away() -> None:
    async with socket_pair() as pair:
        pair.conn.shutdown()
        assert pair.pending() == encode_close(1001)


async def wait_for_texts(pair: Pair, count: int) -> float:
    """Waits until the handler has ``count`` texts; the loop time then."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(5):
        while len(pair.handler.texts) < count:  # noqa: ASYNC110 - a count, not a flag
            await asyncio.sleep(0.001)
    return loop.time()


async def test_with_a_read_pause_what_comes_meanwhile_is_read_together_in_order() -> None:
    limits = SocketLimits(max_message_size=1024, read_pause_s=0.3)
    loop = asyncio.get_running_loop()
    async with socket_pair(limits=limits) as pair:
        pair.send("first")
        await wait_for_texts(pair, 1)
        pair.send("second")  # a read soon after the one before: reading pauses after it
        second_at = await wait_for_texts(pair, 2)
        for n in range(3):
            pair.send(f"then {n}")
            await asyncio.sleep(0.01)
        assert pair.handler.texts == ["first", "second"]
        pair.send("burst")  # answered once it is read
        all_at = await wait_for_texts(pair, 6)
        assert all_at - second_at >= 0.25
        assert pair.handler.texts == ["first", "second", "then 0", "then 1", "then 2", "burst"]
        expected = b"".join(encode_text(f"frame {n}") for n in range(3))
        assert await pair.read(len(expected)) == expected
        # reading pauses again after that read, then goes on
        pair.send("last")
        started = loop.time()
        await wait_for_texts(pair, 7)
        assert loop.time() - started >= 0.2


async def test_a_read_far_from_the_one_before_does_not_pause() -> None:
    """A peer that sends now and then (an agent's socket per conversation, a model's
    paced output) is read as it sends: a pause would gather nothing and cost a wakeup.
    Reading pauses only after a read that follows the one before closely."""
    limits = SocketLimits(max_message_size=1024, read_pause_s=0.3)
    loop = asyncio.get_running_loop()
    async with socket_pair(limits=limits) as pair:
        pair.send("first")  # no read before it
        await wait_for_texts(pair, 1)
        await asyncio.sleep(0.05)
        started = loop.time()
        pair.send("soon after")  # read at once: the first read did not pause
        assert await wait_for_texts(pair, 2) - started < 0.15
        started = loop.time()
        pair.send("close behind")  # reading paused after the read just before
        assert await wait_for_texts(pair, 3) - started >= 0.2


async def test_a_close_sent_during_a_read_pause_is_answered_once_it_is_read() -> None:
    limits = SocketLimits(max_message_size=1024, read_pause_s=0.3)
    async with socket_pair(limits=limits) as pair:
        pair.send("first")
        await wait_for_texts(pair, 1)
        pair.peer.sendall(encode_frame(8, encode_close(1000)[2:], mask=MASK))
        async with asyncio.timeout(5):
            assert await pair.handler.closed == (1000, "")
        assert await pair.read(len(encode_close(1000))) == encode_close(1000)


# -- the handler policies -------------------------------------------------------------------


class Failing(SocketHandler):
    __slots__ = ("texts",)

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def on_open(self) -> None:
        raise RuntimeError("on_open failed")

    def on_text(self, text: str) -> None:
        self.texts.append(text)
        raise RuntimeError("on_text failed")

    def on_close(self, code: int, reason: str) -> None:
        raise RuntimeError("on_close failed")


class DetachedLink:
    """What a handler holds of its socket, with no socket: the policy functions only
    attach it."""

    is_open = True

    def send_frame(self, frame: bytes) -> bool:
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        pass

    def abort(self) -> None:
        pass


def test_a_binary_message_reaches_the_handler_as_text_with_replacements() -> None:
    handler = Failing()
    deliver(handler, "text stays")
    deliver(handler, b'{"type":"ping"}')
    deliver(handler, b"bad \xff byte")
    assert handler.texts == ["text stays", '{"type":"ping"}', "bad \ufffd byte"]


def test_handler_failures_are_logged_and_only_a_failed_open_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = Failing()
    link = DetachedLink()
    with caplog.at_level(logging.ERROR, logger="arinova.ws"):
        assert start(handler, link) is False
        assert handler.conn is link
        deliver(handler, "message")  # raises inside: logged, nothing more
        finish(handler, 1000, "")
    assert handler.conn is None
    assert [r.getMessage() for r in caplog.records] == [
        "socket handler failed to open",
        "socket handler failed on a message",
        "socket handler failed on close",
    ]


def test_a_handler_that_opens_is_started() -> None:
    handler = SocketHandler()
    link = DetachedLink()
    assert start(handler, link) is True
    assert handler.open
    finish(handler, 1006, "")
    assert not handler.open
