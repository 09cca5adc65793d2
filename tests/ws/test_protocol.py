"""The sans-I/O WebSocket protocol (arinova.ws.protocol): every close path, ping/pong,
fragments and limits, as plain state: no socket, no loop, no clock."""

from __future__ import annotations

import pytest

from arinova._fast.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    encode_close,
    encode_frame,
    encode_text,
)
from arinova.ws.protocol import (
    CLOSED,
    CLOSING,
    ENDING,
    OPEN,
    SKIPPED,
    WANT_ABORT,
    WANT_CLOSE,
    WANT_CLOSE_TIMER,
    WANT_WRITE_EOF,
    Message,
    Protocol,
)

MASK = b"\x0a\x0b\x0c\x0d"
LIMIT = 64


def peer(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A frame as a client sends it (masked)."""
    return encode_frame(opcode, payload, fin=fin, mask=MASK)


def peer_close(code: int, reason: str = "") -> bytes:
    return peer(OP_CLOSE, encode_close(code, reason)[2:])


def receive(protocol: Protocol, *frames: bytes) -> list[Message]:
    return list(protocol.receive_data(b"".join(frames)))


@pytest.fixture
def protocol() -> Protocol:
    return Protocol(max_message_size=LIMIT)


def test_a_new_connection_is_open_with_nothing_to_do(protocol: Protocol) -> None:
    assert protocol.state == OPEN
    assert (protocol.queued, protocol.wants, protocol.data_to_send()) == (0, 0, b"")
    assert (protocol.close_code, protocol.close_reason) == (1006, "")


def test_messages_come_out_in_order_text_as_str_binary_as_bytes(protocol: Protocol) -> None:
    got = receive(protocol, peer(OP_TEXT, "héllo".encode()), peer(OP_BINARY, b"\xff\x00"))
    assert got == ["héllo", b"\xff\x00"]
    assert type(got[0]) is str
    assert (protocol.queued, protocol.wants) == (0, 0)


def test_a_frame_split_across_reads(protocol: Protocol) -> None:
    frame = peer(OP_TEXT, b"split")
    assert list(protocol.receive_data(frame[:3])) == []
    assert list(protocol.receive_data(frame[3:])) == ["split"]


def test_fragmented_message_with_a_ping_between_its_fragments(protocol: Protocol) -> None:
    got = receive(
        protocol,
        peer(OP_TEXT, b"frag", fin=False),
        peer(OP_PING, b"p"),
        peer(OP_CONT, b"men", fin=False),
        peer(OP_CONT, b"ted"),
    )
    assert got == ["fragmented"]
    assert protocol.data_to_send() == b"\x8a\x01p"  # the ping's pong


def test_ping_gets_a_pong_with_its_payload_pong_gets_nothing(protocol: Protocol) -> None:
    assert receive(protocol, peer(OP_PING, b"are you there"), peer(OP_PONG, b"x")) == []
    assert protocol.queued == 15
    assert protocol.data_to_send() == b"\x8a\x0dare you there"
    assert (protocol.queued, protocol.wants, protocol.state) == (0, 0, OPEN)


def test_output_keeps_the_order_of_replies_and_pongs(protocol: Protocol) -> None:
    """What the application sends for a message goes out before the pong of a ping that
    came after that message."""
    replies = []
    for message in protocol.receive_data(peer(OP_TEXT, b"one") + peer(OP_PING, b"p")):
        replies.append(protocol.send(encode_text(f"re:{message}")))
    assert replies == [8]
    assert protocol.data_to_send() == encode_text("re:one") + b"\x8a\x01p"


def test_send_queues_frames_and_counts_their_bytes(protocol: Protocol) -> None:
    assert protocol.send(b"\x81\x01a") == 3
    assert protocol.send(b"\x81\x02bc") == 7
    assert protocol.queued == 7
    assert protocol.data_to_send() == b"\x81\x01a\x81\x02bc"
    assert protocol.data_to_send() == b""
    assert protocol.queued == 0


# -- we close ------------------------------------------------------------------------------


def test_we_close_then_the_peer_answers(protocol: Protocol) -> None:
    protocol.send(encode_text("last words"))
    protocol.close(4408, "Heartbeat timeout")
    assert protocol.state == CLOSING
    # what was queued before still goes out first, in the same write
    assert protocol.data_to_send() == encode_text("last words") + encode_close(
        4408, "Heartbeat timeout"
    )
    assert protocol.take_wants() == WANT_CLOSE_TIMER
    assert protocol.wants == 0
    assert protocol.send(encode_text("too late")) == 0
    protocol.close(1000)  # a second close changes nothing
    assert (protocol.queued, protocol.wants) == (0, 0)
    assert receive(protocol, peer_close(4408)) == []
    assert protocol.state == ENDING
    assert protocol.data_to_send() == b""  # the handshake is complete: no echo
    assert protocol.take_wants() == WANT_CLOSE  # the close timer already runs
    # the peer's close frame is what the application is told
    assert (protocol.close_code, protocol.close_reason) == (4408, "")


def test_while_closing_messages_are_dropped_and_pings_not_answered(protocol: Protocol) -> None:
    protocol.close(1000)
    protocol.data_to_send()
    protocol.take_wants()
    got = receive(protocol, peer(OP_TEXT, b"late"), peer(OP_PING, b"p"), peer(OP_BINARY, b"b"))
    assert got == []
    # one frame per read alike
    for frame in (peer(OP_TEXT, b"late"), peer(OP_BINARY, b"b"), peer(OP_PING, b"p")):
        assert receive(protocol, frame) == []
    assert (protocol.queued, protocol.wants, protocol.state) == (0, 0, CLOSING)


def test_close_timeout_drops_the_connection(protocol: Protocol) -> None:
    protocol.close(1008, "Invalid JSON")
    protocol.data_to_send()
    assert protocol.take_wants() == WANT_CLOSE_TIMER
    protocol.timeout()
    assert protocol.state == CLOSED
    assert protocol.take_wants() == WANT_ABORT
    assert protocol.data_to_send() == b""
    assert (protocol.close_code, protocol.close_reason) == (1008, "Invalid JSON")
    assert receive(protocol, peer_close(1000)) == []
    assert protocol.wants == 0


def test_a_close_timer_firing_late_on_an_open_connection_does_nothing(protocol: Protocol) -> None:
    protocol.timeout()
    assert (protocol.state, protocol.wants) == (OPEN, 0)


def test_we_close_during_a_read_later_frames_of_it_are_dropped(protocol: Protocol) -> None:
    """Closing while handling one message applies to the rest of the same read: the next
    message is not handed out, the ping not answered, the peer's close completes the
    handshake."""
    handled = []
    stream = b"".join(
        [
            peer(OP_TEXT, b"first"),
            peer(OP_TEXT, b"second"),
            peer(OP_PING, b"p"),
            peer_close(1000, "ok"),
        ]
    )
    for message in protocol.receive_data(stream):
        handled.append(message)
        protocol.close(1008, "Unsupported message")
    assert handled == ["first"]
    assert protocol.data_to_send() == encode_close(1008, "Unsupported message")
    assert protocol.take_wants() == WANT_CLOSE_TIMER | WANT_CLOSE
    assert protocol.state == ENDING
    assert (protocol.close_code, protocol.close_reason) == (1000, "ok")


# -- the peer closes -----------------------------------------------------------------------


def test_the_peer_closes_and_is_echoed(protocol: Protocol) -> None:
    assert receive(protocol, peer_close(4000, "bye")) == []
    assert protocol.state == ENDING
    assert protocol.data_to_send() == b"\x88\x05\x0f\xa0bye"
    assert protocol.take_wants() == WANT_CLOSE | WANT_CLOSE_TIMER
    assert (protocol.close_code, protocol.close_reason) == (4000, "bye")


def test_an_empty_close_frame_is_echoed_empty(protocol: Protocol) -> None:
    assert receive(protocol, peer(OP_CLOSE, b"")) == []
    assert protocol.data_to_send() == b"\x88\x00"
    assert (protocol.close_code, protocol.close_reason) == (1005, "")


def test_data_after_the_peers_close_is_ignored(protocol: Protocol) -> None:
    got = receive(
        protocol,
        peer(OP_TEXT, b"before"),
        peer_close(1000),
        peer(OP_TEXT, b"after"),
        peer(OP_PING, b"p"),
    )
    assert got == ["before"]
    assert protocol.data_to_send() == encode_close(1000)
    protocol.take_wants()
    # later reads too, garbage included: nothing is decoded any more
    assert receive(protocol, peer(OP_TEXT, b"later"), b"\xff\xff\xff") == []
    assert (protocol.queued, protocol.wants, protocol.state) == (0, 0, ENDING)
    assert protocol.send(encode_text("x")) == 0


def test_messages_before_a_close_in_the_same_read_are_handed_out(protocol: Protocol) -> None:
    got = receive(protocol, peer(OP_TEXT, b"a"), peer(OP_BINARY, b"b"), peer_close(1001))
    assert got == ["a", b"b"]
    assert protocol.close_code == 1001


# -- the peer breaks the protocol ----------------------------------------------------------

ERRORS = [
    ("unmasked", encode_frame(OP_TEXT, b"hi"), 1002),
    ("rsv1", bytes([0xC1, 0x80]) + MASK, 1002),
    ("unknown opcode", bytes([0x83, 0x80]) + MASK, 1002),
    ("lone continuation", peer(OP_CONT, b"x"), 1002),
    ("close of one byte", peer(OP_CLOSE, b"\x03"), 1002),
    ("close code 1005", peer(OP_CLOSE, b"\x03\xed"), 1002),
    ("invalid UTF-8", peer(OP_TEXT, b"ok \xff"), 1007),
    ("invalid UTF-8 across fragments", peer(OP_TEXT, b"\xe2", fin=False) + peer(0, b"("), 1007),
    ("close reason not UTF-8", peer(OP_CLOSE, b"\x03\xe8\xc3\x28"), 1007),
    ("too big", peer(OP_BINARY, b"b" * (LIMIT + 1)), 1009),
    ("too big across fragments", peer(OP_TEXT, b"t" * 40, fin=False) + peer(0, b"t" * 25), 1009),
]


@pytest.mark.parametrize(("frame", "code"), [pytest.param(f, c, id=name) for name, f, c in ERRORS])
def test_protocol_error_closes_with_a_bare_code_and_shuts_our_side(
    protocol: Protocol, frame: bytes, code: int
) -> None:
    assert receive(protocol, frame) == []
    assert protocol.state == ENDING
    assert protocol.data_to_send() == b"\x88\x02" + code.to_bytes(2, "big")
    assert protocol.take_wants() == WANT_WRITE_EOF | WANT_CLOSE_TIMER
    assert (protocol.close_code, protocol.close_reason) == (code, "")
    # whatever the peer still sends, its close frame included, is discarded
    assert receive(protocol, peer(OP_TEXT, b"more"), peer_close(1000)) == []
    assert (protocol.queued, protocol.wants, protocol.close_code) == (0, 0, code)


def test_a_message_of_exactly_the_limit_passes(protocol: Protocol) -> None:
    assert receive(protocol, peer(OP_BINARY, b"b" * LIMIT)) == [b"b" * LIMIT]
    half = peer(OP_TEXT, b"t" * 32, fin=False) + peer(OP_CONT, b"t" * 32)
    assert receive(protocol, half) == ["t" * LIMIT]
    assert protocol.state == OPEN


def test_a_message_past_the_limit_but_within_the_skip_bound_is_skipped() -> None:
    protocol = Protocol(max_message_size=LIMIT, max_skipped_size=4 * LIMIT)
    got = receive(
        protocol,
        peer(OP_TEXT, b"a"),
        peer(OP_BINARY, b"b" * (LIMIT + 1)),
        peer(OP_TEXT, b"t" * 40, fin=False),
        peer(OP_PING, b"p"),
        peer(OP_CONT, b"t" * 100),
        peer(OP_TEXT, b"z"),
    )
    assert got == ["a", SKIPPED, SKIPPED, "z"]
    assert protocol.state == OPEN
    assert protocol.data_to_send() == encode_frame(OP_PONG, b"p")
    assert receive(protocol, peer(OP_BINARY, b"b" * (4 * LIMIT + 1))) == []
    assert (protocol.state, protocol.close_code) == (ENDING, 1009)


def test_frames_before_an_error_in_the_same_read_are_not_handed_out(protocol: Protocol) -> None:
    """As before the split: a read that breaks the protocol is refused whole."""
    assert receive(protocol, peer(OP_TEXT, b"fine"), peer(OP_TEXT, b"\xff")) == []
    assert protocol.close_code == 1007


def test_a_protocol_error_while_closing_keeps_our_close_frame(protocol: Protocol) -> None:
    protocol.close(4401, "Unauthorized")
    protocol.data_to_send()
    protocol.take_wants()
    assert receive(protocol, encode_frame(OP_TEXT, b"unmasked")) == []
    assert protocol.data_to_send() == b""  # no second close frame
    assert protocol.take_wants() == WANT_WRITE_EOF | WANT_CLOSE_TIMER
    assert (protocol.state, protocol.close_code, protocol.close_reason) == (
        ENDING,
        4401,
        "Unauthorized",
    )


# -- the connection goes away --------------------------------------------------------------


def test_abort_drops_what_is_queued(protocol: Protocol) -> None:
    protocol.send(encode_text("never sent"))
    protocol.abort()
    assert protocol.state == CLOSED
    assert (protocol.queued, protocol.wants, protocol.data_to_send()) == (0, 0, b"")
    assert protocol.send(encode_text("x")) == 0
    assert receive(protocol, peer(OP_TEXT, b"x")) == []
    assert (protocol.close_code, protocol.close_reason) == (1006, "")


def test_connection_lost_without_a_close_frame_is_1006(protocol: Protocol) -> None:
    assert receive(protocol, peer(OP_TEXT, b"hi")) == ["hi"]
    protocol.connection_lost()
    assert protocol.state == CLOSED
    assert (protocol.close_code, protocol.close_reason) == (1006, "")
    protocol.close(1000)
    assert (protocol.queued, protocol.wants) == (0, 0)
