"""The WebSocket frame codec, pure and compiled alike (arinova._fast)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from types import ModuleType

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from arinova._fast import _frames_py

try:
    from arinova._fast import _frames as _compiled
except ImportError:  # the extension is not built
    _compiled = None

REQUIRE_COMPILED = os.environ.get("ARINOVA_REQUIRE_COMPILED") == "1"
MASK = b"\x37\xfa\x21\x3d"
BIG = 1 << 20


def codec_params() -> list[object]:
    """Both implementations; the compiled one is skipped (or fails) when it is not built."""
    return [
        pytest.param(_frames_py, id="pure"),
        pytest.param(_compiled, id="compiled"),
    ]


def resolve_codec(module: ModuleType | None) -> ModuleType:
    if module is None:
        if REQUIRE_COMPILED:
            pytest.fail("arinova._fast._frames is not built (ARINOVA_REQUIRE_COMPILED=1)")
        pytest.skip("arinova._fast._frames is not built")
    return module


@pytest.fixture(params=codec_params())
def codec(request: pytest.FixtureRequest) -> ModuleType:
    return resolve_codec(request.param)


def client_frame(
    opcode: int, payload: bytes, fin: bool = True, mask: bytes | None = MASK, rsv: int = 0
) -> bytes:
    """A frame built independently of the codec under test."""
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    mask_bit = 0x80 if mask is not None else 0
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, mask_bit | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, n)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def decode_all(
    codec: ModuleType, data: bytes, max_size: int = BIG
) -> list[tuple[int, bytes | str]]:
    return codec.FrameDecoder(max_size).feed(data)


def decode_error(codec: ModuleType, data: bytes, max_size: int = BIG) -> Exception:
    decoder = codec.FrameDecoder(max_size)
    with pytest.raises(codec.FrameError) as caught:
        decoder.feed(data)
    return caught.value


# --- constants and the selector ------------------------------------------------------


def test_constants(codec: ModuleType) -> None:
    assert (codec.OP_CONT, codec.OP_TEXT, codec.OP_BINARY) == (0, 1, 2)
    assert (codec.OP_CLOSE, codec.OP_PING, codec.OP_PONG) == (8, 9, 10)
    assert [
        codec.CLOSE_NORMAL,
        codec.CLOSE_GOING_AWAY,
        codec.CLOSE_PROTOCOL_ERROR,
        codec.CLOSE_UNSUPPORTED_DATA,
        codec.CLOSE_NO_STATUS,
        codec.CLOSE_ABNORMAL,
        codec.CLOSE_INVALID_DATA,
        codec.CLOSE_POLICY_VIOLATION,
        codec.CLOSE_MESSAGE_TOO_BIG,
        codec.CLOSE_INTERNAL_ERROR,
    ] == [1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011]
    assert sorted(codec.__all__) == sorted(_frames_py.__all__)


def test_both_implementations_share_the_error_type() -> None:
    compiled = resolve_codec(_compiled)
    assert compiled.FrameError is _frames_py.FrameError


@pytest.mark.parametrize("pure", ["1", ""])
def test_selector_honours_arinova_pure(pure: str) -> None:
    script = (
        "from arinova._fast import frames, _frames_py\n"
        "print(frames.COMPILED, frames.FrameDecoder is _frames_py.FrameDecoder)\n"
    )
    env = {**os.environ, "ARINOVA_PURE": pure}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    if pure == "1":
        assert done.stdout.split() == ["False", "True"]
    elif _compiled is not None:
        assert done.stdout.split() == ["True", "False"]
    else:
        assert done.stdout.split() == ["False", "True"]


def test_frame_error_carries_code_and_empty_wire_reason(codec: ModuleType) -> None:
    error = decode_error(codec, b"\x91\x80" + MASK)
    assert error.code == 1002
    assert error.reason == ""
    assert str(error) == "reserved bits set"


# --- masking -------------------------------------------------------------------------


def test_apply_mask_rfc_example(codec: ModuleType) -> None:
    # RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d
    assert codec.apply_mask(b"Hello", MASK) == bytes.fromhex("7f9f4d5158")
    assert codec.apply_mask(bytes.fromhex("7f9f4d5158"), MASK) == b"Hello"


@pytest.mark.parametrize("size", [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 64, 1000, 16384])
def test_apply_mask_matches_bytewise_xor(codec: ModuleType, size: int) -> None:
    data = bytes((i * 7 + 3) & 0xFF for i in range(size))
    mask = b"\x01\x80\xfe\x55"
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    assert codec.apply_mask(data, mask) == expected
    assert codec.apply_mask(bytearray(data), memoryview(mask)) == expected
    assert codec.apply_mask(expected, mask) == data


@pytest.mark.parametrize("mask", [b"", b"abc", b"abcde"])
def test_apply_mask_needs_four_bytes(codec: ModuleType, mask: bytes) -> None:
    with pytest.raises(ValueError, match="mask must be 4 bytes"):
        codec.apply_mask(b"data", mask)


# --- encoding ------------------------------------------------------------------------


def test_rfc_examples_encode(codec: ModuleType) -> None:
    assert codec.encode_text("Hello") == bytes.fromhex("810548656c6c6f")
    assert codec.encode_frame(codec.OP_TEXT, b"Hello", mask=MASK) == bytes.fromhex(
        "818537fa213d7f9f4d5158"
    )
    assert codec.encode_frame(codec.OP_TEXT, b"Hel", fin=False) == bytes.fromhex("010348656c")
    assert codec.encode_frame(codec.OP_CONT, b"lo") == bytes.fromhex("80026c6f")
    assert codec.encode_ping(b"Hello") == bytes.fromhex("890548656c6c6f")
    assert codec.encode_frame(codec.OP_PONG, b"Hello", mask=MASK) == bytes.fromhex(
        "8a8537fa213d7f9f4d5158"
    )
    assert codec.encode_binary(b"\x00" * 256)[:4] == bytes.fromhex("827e0100")
    assert codec.encode_binary(b"\x00" * 65536)[:10] == bytes.fromhex("827f0000000000010000")


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (0, "8100"),
        (125, "817d"),
        (126, "817e007e"),
        (127, "817e007f"),
        (65535, "817effff"),
        (65536, "817f0000000000010000"),
        (70000, "817f0000000000011170"),
    ],
)
def test_length_encodings(codec: ModuleType, size: int, header: str) -> None:
    text = "x" * size
    frame = codec.encode_text(text)
    assert frame == bytes.fromhex(header) + text.encode()
    assert codec.encode_frame(codec.OP_TEXT, text.encode()) == frame
    masked = codec.encode_frame(codec.OP_TEXT, text.encode(), mask=MASK)
    assert masked == client_frame(codec.OP_TEXT, text.encode())
    assert decode_all(codec, masked) == [(1, text)]


def test_encode_text_non_ascii(codec: ModuleType) -> None:
    text = "héllo, 世界 🎉" * 20
    payload = text.encode()
    assert codec.encode_text(text) == client_frame(1, payload, mask=None)


def test_encode_text_rejects_lone_surrogates(codec: ModuleType) -> None:
    with pytest.raises(UnicodeEncodeError):
        codec.encode_text("bad \ud800 text")


def test_encode_control_frames(codec: ModuleType) -> None:
    assert codec.encode_ping() == b"\x89\x00"
    assert codec.encode_pong(b"abc") == b"\x8a\x03abc"
    assert codec.encode_close(1000) == b"\x88\x02\x03\xe8"
    assert codec.encode_close(4408, "Heartbeat timeout") == b"\x88\x13\x11\x38Heartbeat timeout"
    assert codec.encode_close(codec.CLOSE_NO_STATUS) == b"\x88\x00"
    assert codec.encode_close(codec.CLOSE_NO_STATUS, "ignored") == b"\x88\x00"


@pytest.mark.parametrize(
    ("reason", "kept"),
    [
        ("a" * 200, "a" * 123),
        ("é" * 100, "é" * 61),  # 2-byte characters: 123 would split the 62nd
        ("€" * 50, "€" * 41),  # 3-byte characters: exactly 123 bytes
        ("x" + "🎉" * 40, "x" + "🎉" * 30),  # 4-byte characters: 121 bytes fit
        ("ok", "ok"),
    ],
)
def test_encode_close_cuts_reason_on_character_boundary(
    codec: ModuleType, reason: str, kept: str
) -> None:
    frame = codec.encode_close(1001, reason)
    assert frame == bytes((0x88, 2 + len(kept.encode()))) + b"\x03\xe9" + kept.encode()
    assert len(frame) - 2 <= 125
    assert codec.parse_close(frame[2:]) == (1001, kept)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005 + 1, 1015, 2999, 5000])
def test_encode_close_refuses_codes_that_may_not_be_sent(codec: ModuleType, code: int) -> None:
    with pytest.raises(ValueError, match=f"close code {code} may not be sent"):
        codec.encode_close(code)


def test_encode_frame_rejects_bad_arguments(codec: ModuleType) -> None:
    with pytest.raises(ValueError, match="unknown opcode 3"):
        codec.encode_frame(3, b"")
    with pytest.raises(ValueError, match="control frames"):
        codec.encode_frame(codec.OP_PING, b"x" * 126)
    with pytest.raises(ValueError, match="control frames"):
        codec.encode_frame(codec.OP_CLOSE, b"", fin=False)
    with pytest.raises(ValueError, match="mask must be 4 bytes"):
        codec.encode_frame(codec.OP_TEXT, b"x", mask=b"abc")
    assert codec.encode_ping(b"x" * 125)[:2] == b"\x89\x7d"


# --- decoding ------------------------------------------------------------------------


def test_rfc_examples_decode(codec: ModuleType) -> None:
    assert decode_all(codec, bytes.fromhex("818537fa213d7f9f4d5158")) == [(1, "Hello")]
    client = codec.FrameDecoder(BIG, expect_masked=False)
    assert client.feed(bytes.fromhex("010348656c") + bytes.fromhex("80026c6f")) == [(1, "Hello")]
    assert client.feed(bytes.fromhex("890548656c6c6f")) == [(9, b"Hello")]


def test_fragmented_text_with_interleaved_control_frames(codec: ModuleType) -> None:
    stream = b"".join(
        [
            client_frame(1, "héllo ".encode(), fin=False),
            client_frame(9, b"ping-1"),
            client_frame(0, b"fragmented ", fin=False),
            client_frame(10, b""),
            client_frame(0, b"", fin=False),
            client_frame(0, "wörld".encode()),
            client_frame(2, b"\x00\xff"),
        ]
    )
    assert decode_all(codec, stream) == [
        (9, b"ping-1"),
        (10, b""),
        (1, "héllo fragmented wörld"),
        (2, b"\x00\xff"),
    ]


def test_fragmented_binary_keeps_first_opcode(codec: ModuleType) -> None:
    stream = client_frame(2, b"\xff\xfe", fin=False) + client_frame(0, b"\xfd")
    assert decode_all(codec, stream) == [(2, b"\xff\xfe\xfd")]


def test_every_control_frame(codec: ModuleType) -> None:
    stream = b"".join(
        [
            client_frame(9, b""),
            client_frame(9, b"p" * 125),
            client_frame(10, b"pong"),
            client_frame(8, b""),
            client_frame(8, b"\x03\xe8"),
            client_frame(8, b"\x0f\xa0" + "bye é".encode()),
        ]
    )
    assert decode_all(codec, stream) == [
        (9, b""),
        (9, b"p" * 125),
        (10, b"pong"),
        (8, b""),
        (8, b"\x03\xe8"),
        (8, b"\x0f\xa0" + "bye é".encode()),
    ]


def test_empty_messages(codec: ModuleType) -> None:
    stream = client_frame(1, b"") + client_frame(2, b"") + client_frame(1, b"", fin=False)
    stream += client_frame(0, b"")
    assert decode_all(codec, stream, max_size=0) == [(1, ""), (2, b""), (1, "")]


def test_byte_by_byte_feeding(codec: ModuleType) -> None:
    stream = b"".join(
        [
            client_frame(1, b"a" * 300, fin=False),
            client_frame(9, b"hi"),
            client_frame(0, b"b" * 70000),
            client_frame(2, bytes(range(256))),
            client_frame(8, b"\x03\xe8done"),
        ]
    )
    decoder = codec.FrameDecoder(BIG)
    out: list[tuple[int, bytes | str]] = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i : i + 1])
    assert out == [
        (9, b"hi"),
        (1, "a" * 300 + "b" * 70000),
        (2, bytes(range(256))),
        (8, b"\x03\xe8done"),
    ]
    assert decoder.buffered == 0


def test_every_split_point(codec: ModuleType) -> None:
    stream = client_frame(1, b"x" * 130) + client_frame(9, b"p") + client_frame(2, b"yz")
    expected = [(1, "x" * 130), (9, b"p"), (2, b"yz")]
    for cut in range(len(stream) + 1):
        for cut2 in (cut, min(len(stream), cut + 3)):
            decoder = codec.FrameDecoder(BIG)
            got = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:cut2])
            got += decoder.feed(stream[cut2:])
            assert got == expected, (cut, cut2)


def test_feed_accepts_bytearray_and_memoryview(codec: ModuleType) -> None:
    frame = client_frame(1, b"hello")
    decoder = codec.FrameDecoder(BIG)
    assert decoder.feed(bytearray(frame[:3])) == []
    assert decoder.feed(memoryview(frame)[3:]) == [(1, "hello")]


def test_buffered_counts_held_bytes(codec: ModuleType) -> None:
    decoder = codec.FrameDecoder(BIG)
    assert decoder.buffered == 0
    frame = client_frame(1, b"z" * 200)  # 2 + 2 length + 4 mask + 200
    assert decoder.feed(frame[:3]) == []
    assert decoder.buffered == 3
    assert decoder.feed(frame[3:58]) == []
    assert decoder.buffered == 58
    assert decoder.feed(frame[58:]) == [(1, "z" * 200)]
    assert decoder.buffered == 0
    assert decoder.feed(client_frame(1, b"abc", fin=False)) == []
    assert decoder.buffered == 3
    assert decoder.feed(client_frame(9, b"ping")) == [(9, b"ping")]
    assert decoder.buffered == 3
    assert decoder.feed(client_frame(0, b"de")) == [(1, "abcde")]
    assert decoder.buffered == 0


def test_client_side_decoder_reads_unmasked_frames(codec: ModuleType) -> None:
    decoder = codec.FrameDecoder(BIG, expect_masked=False)
    assert decoder.feed(codec.encode_text("hi") + codec.encode_close(1000)) == [
        (1, "hi"),
        (8, b"\x03\xe8"),
    ]


# --- protocol errors -----------------------------------------------------------------

PROTOCOL_ERRORS = [
    ("rsv1", client_frame(1, b"x", rsv=4), 1002, "reserved bits set"),
    ("rsv2", client_frame(1, b"x", rsv=2), 1002, "reserved bits set"),
    ("rsv3", client_frame(9, b"", rsv=1), 1002, "reserved bits set"),
    ("opcode 3", client_frame(3, b"x"), 1002, "unknown opcode 3"),
    ("opcode 7", client_frame(7, b"x"), 1002, "unknown opcode 7"),
    ("opcode 11", client_frame(11, b""), 1002, "unknown opcode 11"),
    ("opcode 15", client_frame(15, b""), 1002, "unknown opcode 15"),
    ("fragmented ping", client_frame(9, b"", fin=False), 1002, "fragmented control frame"),
    ("fragmented close", client_frame(8, b"", fin=False), 1002, "fragmented control frame"),
    ("ping of 126", client_frame(9, b"p" * 126), 1002, "control frame over 125 bytes"),
    ("pong of 64 KiB", client_frame(10, b"p" * 65536), 1002, "control frame over 125 bytes"),
    ("lone continuation", client_frame(0, b"x"), 1002, "continuation without a message"),
    (
        "text inside fragmented message",
        client_frame(1, b"a", fin=False) + client_frame(1, b"b"),
        1002,
        "new message inside a fragmented one",
    ),
    (
        "binary inside fragmented message",
        client_frame(2, b"a", fin=False) + client_frame(2, b"b", fin=False),
        1002,
        "new message inside a fragmented one",
    ),
    ("unmasked text", client_frame(1, b"x", mask=None), 1002, "unmasked frame"),
    ("unmasked ping", client_frame(9, b"", mask=None), 1002, "unmasked frame"),
    (
        "64-bit length, top bit",
        b"\x82\xff\x80\x00\x00\x00\x00\x00\x00\x01",
        1002,
        "64-bit length with the top bit set",
    ),
    ("close of one byte", client_frame(8, b"\x03"), 1002, "close payload of one byte"),
    ("close code 999", client_frame(8, b"\x03\xe7"), 1002, "invalid close code 999"),
    ("close code 1005", client_frame(8, b"\x03\xed"), 1002, "invalid close code 1005"),
    ("close code 1006", client_frame(8, b"\x03\xee"), 1002, "invalid close code 1006"),
    ("close code 5000", client_frame(8, b"\x13\x88"), 1002, "invalid close code 5000"),
    (
        "close reason not UTF-8",
        client_frame(8, b"\x03\xe8\xc3\x28"),
        1007,
        "close reason is not valid UTF-8",
    ),
    ("text not UTF-8", client_frame(1, b"ok \xff"), 1007, "text message is not valid UTF-8"),
    ("text surrogate", client_frame(1, b"\xed\xa0\x80"), 1007, "text message is not valid UTF-8"),
    ("text overlong", client_frame(1, b"\xc0\xaf"), 1007, "text message is not valid UTF-8"),
    ("text truncated", client_frame(1, b"ab\xe2\x82"), 1007, "text message is not valid UTF-8"),
    (
        "fragmented text not UTF-8",
        client_frame(1, b"\xe2\x82", fin=False) + client_frame(0, b"\x28"),
        1007,
        "text message is not valid UTF-8",
    ),
]


@pytest.mark.parametrize(
    ("data", "code", "detail"),
    [pytest.param(data, code, detail, id=name) for name, data, code, detail in PROTOCOL_ERRORS],
)
def test_protocol_errors(codec: ModuleType, data: bytes, code: int, detail: str) -> None:
    decoder = codec.FrameDecoder(BIG)
    with pytest.raises(codec.FrameError) as caught:
        decoder.feed(data)
    assert (caught.value.code, str(caught.value), caught.value.reason) == (code, detail, "")
    assert decoder.buffered == 0
    # the decoder is dead: every later feed raises the same error
    with pytest.raises(codec.FrameError) as again:
        decoder.feed(client_frame(1, b"fine"))
    assert (again.value.code, str(again.value)) == (code, detail)
    with pytest.raises(codec.FrameError):
        decoder.feed(b"")


def test_fragmented_text_split_inside_a_character_is_valid(codec: ModuleType) -> None:
    stream = client_frame(1, b"\xe2\x82", fin=False) + client_frame(0, b"\xac")
    assert decode_all(codec, stream) == [(1, "€")]


def test_invalid_binary_utf8_is_fine(codec: ModuleType) -> None:
    assert decode_all(codec, client_frame(2, b"\xff\xfe")) == [(2, b"\xff\xfe")]


TEXTS = [
    "",
    "x",
    '{"type":"ping"}',
    "a" * 7 + "é",  # the first non-ASCII byte past a whole 8-byte word
    "ascii then ünïcode " * 40,
    "世界 🎉" * 3000,  # over 64 KiB of UTF-8
]


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
def test_text_messages_arrive_as_str(codec: ModuleType, text: str, masked: bool) -> None:
    """Whole, split across feeds and fragmented alike: decoded once, a plain ``str``."""
    mask = MASK if masked else None
    raw = text.encode()
    whole = client_frame(1, raw, mask=mask)
    half = len(raw) // 2
    fragmented = client_frame(1, raw[:half], fin=False, mask=mask)
    fragmented += client_frame(0, raw[half:], mask=mask)
    for stream in (whole, fragmented):
        for cut in (len(stream), len(stream) // 2, 3):
            decoder = codec.FrameDecoder(BIG, expect_masked=masked)
            out = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
            assert out == [(1, text)]
            assert type(out[0][1]) is str
            assert out[0][1].isascii() == raw.isascii()
            assert hash(out[0][1]) == hash(text)


@pytest.mark.parametrize(
    "payload",
    [b"\xff", b"a" * 8 + b"\xc3", "é".encode() * 50 + b"\xed\xa0\x80", b"x" * 70000 + b"\x80"],
    ids=["lone-byte", "truncated-after-ascii", "surrogate-after-text", "large"],
)
def test_invalid_text_in_one_frame_is_1007(codec: ModuleType, payload: bytes) -> None:
    for masked in (True, False):
        decoder = codec.FrameDecoder(BIG, expect_masked=masked)
        with pytest.raises(codec.FrameError) as caught:
            decoder.feed(client_frame(1, payload, mask=MASK if masked else None))
        assert (caught.value.code, str(caught.value)) == (1007, "text message is not valid UTF-8")
        assert decoder.buffered == 0


def test_server_side_decoder_refuses_masked_frames_when_told(codec: ModuleType) -> None:
    decoder = codec.FrameDecoder(BIG, expect_masked=False)
    with pytest.raises(codec.FrameError) as caught:
        decoder.feed(client_frame(1, b"x"))
    assert (caught.value.code, str(caught.value)) == (1002, "masked frame")


def test_errors_are_raised_as_soon_as_two_header_bytes_arrive(codec: ModuleType) -> None:
    decoder = codec.FrameDecoder(BIG)
    assert decoder.feed(b"\x91") == []
    with pytest.raises(codec.FrameError):
        decoder.feed(b"\x80")


def test_negative_max_message_size_is_refused(codec: ModuleType) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        codec.FrameDecoder(-1)


# --- message size limit --------------------------------------------------------------

LIMIT = 32768


def test_message_of_exactly_the_limit_passes(codec: ModuleType) -> None:
    payload = b"m" * LIMIT
    assert decode_all(codec, client_frame(2, payload), LIMIT) == [(2, payload)]
    split = client_frame(2, payload[:100], fin=False) + client_frame(0, payload[100:])
    assert decode_all(codec, split, LIMIT) == [(2, payload)]


@pytest.mark.parametrize("size", [LIMIT + 1, 65535, 65536, 1 << 40])
def test_oversize_frame_refused_from_its_header(codec: ModuleType, size: int) -> None:
    if size < 65536:
        header = b"\x81\xfe" + size.to_bytes(2, "big")
    else:
        header = b"\x81\xff" + size.to_bytes(8, "big")
    decoder = codec.FrameDecoder(LIMIT)
    assert decoder.feed(header[:-1]) == []
    with pytest.raises(codec.FrameError) as caught:
        decoder.feed(header[-1:])  # no mask key and no payload byte yet
    assert (caught.value.code, str(caught.value)) == (1009, "message too big")
    assert decoder.buffered == 0


def test_oversize_fragmented_message_refused_at_the_frame_that_overflows(
    codec: ModuleType,
) -> None:
    decoder = codec.FrameDecoder(LIMIT)
    assert decoder.feed(client_frame(1, b"a" * 20000, fin=False)) == []
    assert decoder.feed(client_frame(9, b"still fine")) == [(9, b"still fine")]
    assert decoder.feed(client_frame(0, b"b" * 12000, fin=False)) == []
    next_frame = client_frame(0, b"c" * 769)
    with pytest.raises(codec.FrameError) as caught:
        decoder.feed(next_frame[:4])
    assert caught.value.code == 1009


SKIP_LIMIT = 4 * LIMIT


def feed_in_pieces(decoder: object, data: bytes, piece: int) -> list[tuple[int, bytes | str]]:
    out: list[tuple[int, bytes | str]] = []
    for start in range(0, len(data), piece):
        out += decoder.feed(data[start : start + piece])  # type: ignore[attr-defined]
    return out


@pytest.mark.parametrize("piece", [1, 7, 4096, 1 << 30])
def test_a_message_over_the_limit_is_skipped_and_reported_once(
    codec: ModuleType, piece: int
) -> None:
    stream = client_frame(1, b"before")
    stream += client_frame(1, b"x" * (LIMIT + 1))  # one frame
    stream += client_frame(1, b"middle")
    # fragmented: kept at first, skipped from the fragment that overflows, a ping inside
    stream += client_frame(1, b"a" * 20000, fin=False) + client_frame(0, b"b" * 20000, fin=False)
    stream += client_frame(9, b"ping") + client_frame(0, b"c" * 30000, fin=False)
    stream += client_frame(0, b"", fin=False) + client_frame(0, b"d" * 10)
    stream += client_frame(2, b"after")
    decoder = codec.FrameDecoder(LIMIT, max_skipped_size=SKIP_LIMIT)
    assert feed_in_pieces(decoder, stream, piece) == [
        (1, "before"),
        (codec.OP_SKIPPED, b""),
        (1, "middle"),
        (codec.OP_SKIPPED, b""),
        (9, b"ping"),
        (2, b"after"),
    ]
    assert decoder.buffered == 0


def test_a_skipped_message_holds_no_payload(codec: ModuleType) -> None:
    decoder = codec.FrameDecoder(LIMIT, max_skipped_size=SKIP_LIMIT)
    frame = client_frame(1, b"x" * (3 * LIMIT))
    assert decoder.feed(frame[: LIMIT * 2]) == [(codec.OP_SKIPPED, b"")]
    assert decoder.buffered == 0
    assert decoder.feed(frame[LIMIT * 2 :] + client_frame(1, b"ok")) == [(1, "ok")]


def test_a_message_over_the_skip_limit_is_refused(codec: ModuleType) -> None:
    decoder = codec.FrameDecoder(LIMIT, max_skipped_size=SKIP_LIMIT)
    assert decoder.feed(client_frame(1, b"a" * (LIMIT + 1), fin=False)) == [(codec.OP_SKIPPED, b"")]
    assert decoder.feed(client_frame(0, b"b" * (SKIP_LIMIT - LIMIT - 1), fin=False)) == []
    with pytest.raises(codec.FrameError) as caught:
        decoder.feed(client_frame(0, b"c"))
    assert caught.value.code == 1009
    header = b"\x81\xff" + (SKIP_LIMIT + 1).to_bytes(8, "big")
    assert decode_error(codec, header, LIMIT).code == 1009


def test_a_skipped_message_keeps_the_fragment_rules(codec: ModuleType) -> None:
    decoder = codec.FrameDecoder(LIMIT, max_skipped_size=SKIP_LIMIT)
    decoder.feed(client_frame(1, b"a" * (LIMIT + 1), fin=False))
    with pytest.raises(codec.FrameError) as caught:
        decoder.feed(client_frame(1, b"new message inside"))
    assert caught.value.code == 1002
    decoder = codec.FrameDecoder(LIMIT, max_skipped_size=SKIP_LIMIT)
    decoder.feed(client_frame(1, b"a" * (LIMIT + 1)))
    with pytest.raises(codec.FrameError) as caught:
        decoder.feed(client_frame(0, b"continuation of an ended one"))
    assert caught.value.code == 1002


def test_control_frames_do_not_count_against_the_limit(codec: ModuleType) -> None:
    stream = client_frame(1, b"ab", fin=False) + client_frame(9, b"p" * 125)
    stream += client_frame(0, b"c")
    assert decode_all(codec, stream, 3) == [(9, b"p" * 125), (1, "abc")]


# --- close payloads ------------------------------------------------------------------

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]
VALID_CODES += [3000, 4000, 4401, 4999]
INVALID_CODES = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]


@pytest.mark.parametrize("code", VALID_CODES)
def test_parse_close_valid_codes(codec: ModuleType, code: int) -> None:
    assert codec.parse_close(code.to_bytes(2, "big")) == (code, "")
    assert codec.parse_close(code.to_bytes(2, "big") + "reason ü".encode()) == (code, "reason ü")
    frame = client_frame(8, code.to_bytes(2, "big") + b"r")
    assert decode_all(codec, frame) == [(8, code.to_bytes(2, "big") + b"r")]


@pytest.mark.parametrize("code", INVALID_CODES)
def test_parse_close_invalid_codes(codec: ModuleType, code: int) -> None:
    with pytest.raises(codec.FrameError) as caught:
        codec.parse_close(code.to_bytes(2, "big"))
    assert (caught.value.code, str(caught.value)) == (1002, f"invalid close code {code}")
    assert decode_error(codec, client_frame(8, code.to_bytes(2, "big"))).code == 1002


def test_parse_close_edge_payloads(codec: ModuleType) -> None:
    assert codec.parse_close(b"") == (1005, "")
    assert codec.parse_close(bytearray(b"\x03\xe8ok")) == (1000, "ok")
    with pytest.raises(codec.FrameError) as caught:
        codec.parse_close(b"\x03")
    assert (caught.value.code, str(caught.value)) == (1002, "close payload of one byte")
    with pytest.raises(codec.FrameError) as caught:
        codec.parse_close(b"\x03\xe8\xff")
    assert (caught.value.code, str(caught.value)) == (1007, "close reason is not valid UTF-8")
    with pytest.raises(codec.FrameError) as caught:
        codec.parse_close(b"\x03\xe8" + b"x" * 124)
    assert (caught.value.code, str(caught.value)) == (1002, "close payload over 125 bytes")


# --- interoperability with the `websockets` library -----------------------------------


def ws_client() -> ClientProtocol:
    return ClientProtocol(parse_uri("ws://127.0.0.1/ws"), state=State.OPEN, max_size=None)


def test_decodes_frames_from_websockets_client(codec: ModuleType) -> None:
    client = ws_client()
    client.send_text("hello, 世界".encode())
    client.send_binary(b"\x00\x01\x02" * 50000)
    client.send_text(b"frag-", fin=False)
    client.send_ping(b"are you there")
    client.send_continuation("mënt-".encode(), fin=False)
    client.send_pong(b"")
    client.send_continuation(b"end", fin=True)
    client.send_text(b"t" * 126)
    client.send_close(4000, "bye")
    wire = b"".join(client.data_to_send())
    decoder = codec.FrameDecoder(BIG)
    out: list[tuple[int, bytes | str]] = []
    for start in range(0, len(wire), 1000):
        out += decoder.feed(wire[start : start + 1000])
    assert out == [
        (1, "hello, 世界"),
        (2, b"\x00\x01\x02" * 50000),
        (9, b"are you there"),
        (10, b""),
        (1, "frag-mënt-end"),
        (1, "t" * 126),
        (8, b"\x0f\xa0bye"),
    ]
    assert decoder.buffered == 0


def test_websockets_client_accepts_our_frames(codec: ModuleType) -> None:
    client = ws_client()
    wire = b"".join(
        [
            codec.encode_text('{"type":"pong"}'),
            codec.encode_text("ünïcode " * 10000),
            codec.encode_binary(b"\xff" * 126),
            codec.encode_frame(codec.OP_TEXT, b"part one, ", fin=False),
            codec.encode_ping(b"keepalive"),
            codec.encode_frame(codec.OP_CONT, b"part two"),
            codec.encode_pong(b"p"),
            codec.encode_close(4408, "Heartbeat timeout"),
        ]
    )
    client.receive_data(wire)
    frames = client.events_received()
    assert [(f.opcode, bytes(f.data), f.fin) for f in frames] == [
        (Opcode.TEXT, b'{"type":"pong"}', True),
        (Opcode.TEXT, ("ünïcode " * 10000).encode(), True),
        (Opcode.BINARY, b"\xff" * 126, True),
        (Opcode.TEXT, b"part one, ", False),
        (Opcode.PING, b"keepalive", True),
        (Opcode.CONT, b"part two", True),
        (Opcode.PONG, b"p", True),
        (Opcode.CLOSE, b"\x11\x38Heartbeat timeout", True),
    ]
    assert client.close_rcvd == Close(4408, "Heartbeat timeout")


def test_our_masked_frames_match_websockets_serialisation(codec: ModuleType) -> None:
    for payload in (b"", b"x" * 125, b"y" * 126, b"z" * 65536):
        frame = Frame(Opcode.BINARY, payload)
        ours = codec.encode_frame(codec.OP_BINARY, payload, mask=MASK)
        theirs_unmasked = frame.serialize(mask=False)
        assert codec.encode_binary(payload) == theirs_unmasked
        assert decode_all(codec, ours) == [(2, payload)]
        # websockets picks a random mask: decode its serialisation too
        assert decode_all(codec, frame.serialize(mask=True)) == [(2, payload)]
