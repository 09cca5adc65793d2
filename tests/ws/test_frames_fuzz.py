"""Property tests of the frame codec: round trips, garbage input, pure == compiled."""

from __future__ import annotations

import os
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arinova._fast import _frames_py
from tests.ws.test_frames import _compiled, codec_params, resolve_codec

FUZZ = settings(
    max_examples=int(os.environ.get("ARINOVA_FUZZ_EXAMPLES", "300")),
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
CONTROL_OPCODES = (8, 9, 10)


@pytest.fixture(params=codec_params())
def codec(request: pytest.FixtureRequest) -> ModuleType:
    return resolve_codec(request.param)


def compiled() -> ModuleType:
    return resolve_codec(_compiled)


def feed_in_chunks(decoder: object, data: bytes, cuts: list[int]) -> list[tuple[int, bytes | str]]:
    out: list[tuple[int, bytes | str]] = []
    points = sorted({min(c, len(data)) for c in cuts})
    start = 0
    for point in [*points, len(data)]:
        out += decoder.feed(data[start:point])  # type: ignore[attr-defined]
        start = point
    return out


def split_payload(payload: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(payload)) for c in cuts})
    parts, start = [], 0
    for point in [*points, len(payload)]:
        parts.append(payload[start:point])
        start = point
    return parts


@st.composite
def message_streams(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, bytes | str]]]:
    """Wire bytes of random messages, fragmented at random with control frames between."""
    wire: list[bytes] = []
    expected: list[tuple[int, bytes | str]] = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            opcode, payload = 1, draw(st.text(max_size=300)).encode()
        else:
            opcode, payload = 2, draw(st.binary(max_size=300))
        parts = split_payload(payload, draw(st.lists(st.integers(0, 300), max_size=4)))
        controls: list[tuple[int, bytes]] = []
        for index, part in enumerate(parts):
            mask = draw(st.binary(min_size=4, max_size=4))
            frame_opcode = opcode if index == 0 else 0
            fin = index == len(parts) - 1
            wire.append(_frames_py.encode_frame(frame_opcode, part, fin=fin, mask=mask))
            if not fin and draw(st.booleans()):
                control = draw(st.sampled_from((9, 10)))
                body = draw(st.binary(max_size=125))
                wire.append(_frames_py.encode_frame(control, body, mask=mask))
                controls.append((control, body))
        # control frames sent between fragments arrive before the message they interrupt
        expected += controls
        expected.append((opcode, payload.decode() if opcode == 1 else payload))
    if draw(st.booleans()):
        reason = draw(st.text(max_size=40))
        close = _frames_py.encode_close(1000, reason)
        body = close[2:]
        wire.append(_frames_py.encode_frame(8, body, mask=b"\x01\x02\x03\x04"))
        expected.append((8, body))
    return b"".join(wire), expected


@FUZZ
@given(stream=message_streams(), cuts=st.lists(st.integers(0, 4000), max_size=20))
def test_random_messages_round_trip(
    codec: ModuleType, stream: tuple[bytes, list[tuple[int, bytes | str]]], cuts: list[int]
) -> None:
    wire, expected = stream
    decoder = codec.FrameDecoder(1 << 16)
    assert feed_in_chunks(decoder, wire, cuts) == expected
    assert decoder.buffered == 0


@FUZZ
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=10))
def test_garbage_only_raises_frame_error(codec: ModuleType, data: bytes, cuts: list[int]) -> None:
    for masked in (True, False):
        decoder = codec.FrameDecoder(256, expect_masked=masked)
        try:
            feed_in_chunks(decoder, data, cuts)
        except codec.FrameError as error:
            assert error.code in (1002, 1007, 1009)
        assert 0 <= decoder.buffered <= len(data)


def outcome(
    module: ModuleType, data: bytes, cuts: list[int], max_size: int, skipped: int = 0
) -> list[object]:
    """What a decoder returns for each chunk, then its buffered count, or the error."""
    decoder = module.FrameDecoder(max_size, max_skipped_size=skipped)
    points = sorted({min(c, len(data)) for c in cuts})
    steps: list[object] = []
    start = 0
    for point in [*points, len(data)]:
        try:
            steps.append(decoder.feed(data[start:point]))
        except module.FrameError as error:
            steps.append(("error", error.code, str(error)))
            break
        steps.append(decoder.buffered)
        start = point
    return steps


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    """Valid streams with a few bytes flipped, truncated or inserted: close to real input."""
    wire = bytearray(draw(message_streams())[0])
    for _ in range(draw(st.integers(0, 3))):
        if not wire:
            break
        at = draw(st.integers(0, len(wire) - 1))
        action = draw(st.sampled_from(("flip", "insert", "delete")))
        if action == "flip":
            wire[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "insert":
            wire[at:at] = draw(st.binary(min_size=1, max_size=3))
        else:
            del wire[at]
    return bytes(wire)


@FUZZ
@given(
    data=st.one_of(st.binary(max_size=400), mutated_streams()),
    cuts=st.lists(st.integers(0, 2000), max_size=8),
    max_size=st.sampled_from((0, 10, 200, 1 << 16)),
    skipped=st.sampled_from((0, 250, 1 << 16)),
)
def test_compiled_and_pure_agree(data: bytes, cuts: list[int], max_size: int, skipped: int) -> None:
    args = (data, cuts, max_size, skipped)
    assert outcome(compiled(), *args) == outcome(_frames_py, *args)


@FUZZ
@given(payload=st.binary(max_size=64))
def test_text_validation_is_python_utf8(payload: bytes) -> None:
    try:
        expected: object = [(1, payload.decode())]
    except UnicodeDecodeError:
        expected = 1007
    for module in (compiled(), _frames_py):
        decoder = module.FrameDecoder(1 << 10)
        frame = module.encode_frame(1, payload, mask=b"\x00\x00\x00\x00")
        try:
            got: object = decoder.feed(frame)
        except module.FrameError as error:
            got = error.code
        assert got == expected


@FUZZ
@given(data=st.binary(max_size=100), mask=st.binary(min_size=4, max_size=4))
def test_apply_mask_agrees(data: bytes, mask: bytes) -> None:
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    assert compiled().apply_mask(data, mask) == expected
    assert _frames_py.apply_mask(data, mask) == expected


@FUZZ
@given(
    text=st.text(max_size=200),
    code=st.sampled_from((1000, 1001, 1011, 3000, 4401, 4999)),
)
def test_encoders_agree(text: str, code: int) -> None:
    fast = compiled()
    assert fast.encode_text(text) == _frames_py.encode_text(text)
    assert fast.encode_close(code, text) == _frames_py.encode_close(code, text)
    assert fast.parse_close(fast.encode_close(code, text)[2:])[0] == code
    raw = text.encode()
    assert fast.encode_binary(raw) == _frames_py.encode_binary(raw)
    if len(raw) <= 125:
        assert fast.encode_ping(raw) == _frames_py.encode_ping(raw)
        assert fast.encode_pong(raw) == _frames_py.encode_pong(raw)
