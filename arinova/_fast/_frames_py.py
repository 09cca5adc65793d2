"""WebSocket frame codec (RFC 6455), pure Python: the twin of the compiled ``_frames``.

Server side: frames from the peer are masked, frames we send are not. No extensions.
"""

from __future__ import annotations

from ._frames_common import (
    CLOSE_ABNORMAL,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_INVALID_DATA,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NO_STATUS,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_UNSUPPORTED_DATA,
    MAX_CONTROL_PAYLOAD,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_SKIPPED,
    OP_TEXT,
    BytesLike,
    FrameError,
    Message,
    is_valid_close_code,
)

__all__ = [
    "CLOSE_ABNORMAL",
    "CLOSE_GOING_AWAY",
    "CLOSE_INTERNAL_ERROR",
    "CLOSE_INVALID_DATA",
    "CLOSE_MESSAGE_TOO_BIG",
    "CLOSE_NORMAL",
    "CLOSE_NO_STATUS",
    "CLOSE_POLICY_VIOLATION",
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_UNSUPPORTED_DATA",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_SKIPPED",
    "OP_TEXT",
    "FrameDecoder",
    "FrameError",
    "apply_mask",
    "encode_binary",
    "encode_close",
    "encode_frame",
    "encode_ping",
    "encode_pong",
    "encode_text",
    "parse_close",
]

_OPCODES = frozenset((OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG))
_MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2


def apply_mask(data: BytesLike, mask: BytesLike) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated (masking and unmasking alike)."""
    if len(mask) != 4:
        raise ValueError("mask must be 4 bytes")
    n = len(data)
    if n == 0:
        return b""
    key = (bytes(mask) * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def _header(first: int, length: int, mask_bit: int) -> bytes:
    if length < 126:
        return bytes((first, length | mask_bit))
    if length < 0x10000:
        return bytes((first, 126 | mask_bit)) + length.to_bytes(2, "big")
    return bytes((first, 127 | mask_bit)) + length.to_bytes(8, "big")


def encode_frame(
    opcode: int, payload: bytes, fin: bool = True, mask: BytesLike | None = None
) -> bytes:
    """One frame; with a 4-byte ``mask`` it is a masked (client) frame."""
    if opcode not in _OPCODES:
        raise ValueError(f"unknown opcode {opcode}")
    if opcode >= OP_CLOSE and (not fin or len(payload) > MAX_CONTROL_PAYLOAD):
        raise ValueError("control frames must be final and carry at most 125 bytes")
    first = opcode | 0x80 if fin else opcode
    if mask is None:
        return _header(first, len(payload), 0) + payload
    if len(mask) != 4:
        raise ValueError("mask must be 4 bytes")
    return _header(first, len(payload), 0x80) + bytes(mask) + apply_mask(payload, mask)


def encode_text(text: str) -> bytes:
    """One final, unmasked text frame."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    return _header(0x81, n, 0) + payload


def encode_binary(data: bytes) -> bytes:
    """One final, unmasked binary frame."""
    return _header(0x82, len(data), 0) + data


def encode_ping(payload: bytes = b"") -> bytes:
    return encode_frame(OP_PING, payload)


def encode_pong(payload: bytes) -> bytes:
    return encode_frame(OP_PONG, payload)


def encode_close(code: int, reason: str = "") -> bytes:
    """A close frame; ``CLOSE_NO_STATUS`` sends an empty one.

    The reason is cut to the 123 bytes a control frame leaves for it, never inside a
    UTF-8 character.
    """
    if code == CLOSE_NO_STATUS:
        return b"\x88\x00"
    if not is_valid_close_code(code):
        raise ValueError(f"close code {code} may not be sent")
    raw = reason.encode()
    if len(raw) > _MAX_CLOSE_REASON:
        end = _MAX_CLOSE_REASON
        while raw[end] & 0xC0 == 0x80:
            end -= 1
        raw = raw[:end]
    return bytes((0x88, 2 + len(raw))) + code.to_bytes(2, "big") + raw


def parse_close(payload: BytesLike) -> tuple[int, str]:
    """The code and reason of a close frame's payload; ``(1005, "")`` when empty."""
    n = len(payload)
    if n == 0:
        return CLOSE_NO_STATUS, ""
    if n == 1:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "close payload of one byte")
    if n > MAX_CONTROL_PAYLOAD:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "close payload over 125 bytes")
    code = (payload[0] << 8) | payload[1]
    if not is_valid_close_code(code):
        raise FrameError(CLOSE_PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        reason = bytes(payload[2:]).decode()
    except UnicodeDecodeError:
        raise FrameError(CLOSE_INVALID_DATA, "close reason is not valid UTF-8") from None
    return code, reason


class FrameDecoder:
    """Turns the bytes a peer sends into complete messages and control frames: a text
    message as ``str`` (decoded once; invalid UTF-8 -> 1007), anything else as ``bytes``.

    ``feed`` keeps the unparsed tail of the input; the header of an incomplete frame is
    parsed again on the next feed, which is cheap and keeps the state small. A frame
    that would make its message exceed ``max_message_size`` is dealt with as soon as its
    length is known, before any of its payload is kept: a message up to
    ``max_skipped_size`` is skipped as it arrives (handed out once, as ``(OP_SKIPPED,
    b"")``, where it began), a larger one is refused (1009).
    """

    __slots__ = (
        "_error",
        "_expect_masked",
        "_fragments",
        "_max",
        "_max_skipped",
        "_message_opcode",
        "_message_size",
        "_pending",
        "_skip",
        "_skipping",
    )

    def __init__(
        self, max_message_size: int, expect_masked: bool = True, max_skipped_size: int = 0
    ) -> None:
        if max_message_size < 0:
            raise ValueError("max_message_size must not be negative")
        self._max = max_message_size
        self._max_skipped = max(max_skipped_size, max_message_size)
        self._expect_masked = expect_masked
        self._pending: bytearray | None = None
        self._fragments: list[bytes] | None = None
        self._message_opcode = 0
        self._message_size = 0
        #: payload bytes of the frame being skipped still to come
        self._skip = 0
        #: the open message is being skipped (its size so far in ``_message_size``)
        self._skipping = False
        self._error: FrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held: the unparsed input tail plus the fragments of an open message."""
        held = 0 if self._skipping else self._message_size
        return (len(self._pending) if self._pending else 0) + held

    def feed(self, data: BytesLike) -> list[Message]:
        if self._error is not None:
            raise self._error.with_traceback(None)  # no traceback growth on re-raise
        if self._pending:
            self._pending += data
            buf: BytesLike = self._pending
        else:
            buf = data
        try:
            out, used = self._parse(buf)
        except FrameError as error:
            self._error = error
            self._pending = None
            self._fragments = None
            self._message_size = 0
            self._skipping = False
            raise
        if used == len(buf):
            self._pending = None
        elif buf is self._pending:
            del self._pending[:used]
        else:
            self._pending = bytearray(memoryview(buf)[used:])
        return out

    def _parse(self, buf: BytesLike) -> tuple[list[Message], int]:
        out: list[Message] = []
        pos = 0
        end = len(buf)
        if self._skip:
            pos = min(self._skip, end)
            self._skip -= pos
        while end - pos >= 2:
            first = buf[pos]
            second = buf[pos + 1]
            opcode = first & 0x0F
            fin = first & 0x80
            length = second & 0x7F
            self._check_first_bytes(first, opcode, fin, length, second & 0x80)
            head = pos + 2
            if length == 126:
                if end - head < 2:
                    break
                length = (buf[head] << 8) | buf[head + 1]
                head += 2
            elif length == 127:
                if end - head < 8:
                    break
                length = int.from_bytes(buf[head : head + 8], "big")
                if length >> 63:
                    raise FrameError(CLOSE_PROTOCOL_ERROR, "64-bit length with the top bit set")
                head += 8
            size = self._message_size + length
            if opcode < OP_CLOSE and (self._skipping or size > self._max):
                if size > self._max_skipped:
                    raise FrameError(CLOSE_MESSAGE_TOO_BIG, "message too big")
                if second & 0x80:
                    if end - head < 4:
                        break
                    head += 4
                if not self._skipping:
                    out.append((OP_SKIPPED, b""))
                self._fragments = None
                self._skipping = not fin
                self._message_size = 0 if fin else size
                pos = min(head + length, end)
                self._skip = head + length - pos
                continue
            if second & 0x80:
                if end - head < 4 + length:
                    break
                mask = bytes(buf[head : head + 4])
                head += 4
                payload = apply_mask(buf[head : head + length], mask)
            else:
                if end - head < length:
                    break
                payload = bytes(buf[head : head + length])
            pos = head + length
            if opcode >= OP_CLOSE:
                if opcode == OP_CLOSE:
                    parse_close(payload)
                out.append((opcode, payload))
            else:
                message = self._add_fragment(opcode, fin, payload)
                if message is not None:
                    out.append(message)
        return out, pos

    def _check_first_bytes(
        self, first: int, opcode: int, fin: int, length: int, masked: int
    ) -> None:
        if first & 0x70:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "reserved bits set")
        if opcode not in _OPCODES:
            raise FrameError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode}")
        if opcode >= OP_CLOSE:
            if not fin:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "fragmented control frame")
            if length > MAX_CONTROL_PAYLOAD:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "control frame over 125 bytes")
        elif opcode == OP_CONT:
            if self._fragments is None and not self._skipping:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "continuation without a message")
        elif self._fragments is not None or self._skipping:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one")
        if bool(masked) != self._expect_masked:
            raise FrameError(
                CLOSE_PROTOCOL_ERROR, "unmasked frame" if self._expect_masked else "masked frame"
            )

    def _add_fragment(self, opcode: int, fin: int, payload: bytes) -> Message | None:
        if opcode != OP_CONT:
            if fin:
                return _checked(opcode, payload)
            self._message_opcode = opcode
            self._fragments = [payload]
            self._message_size = len(payload)
            return None
        fragments = self._fragments
        assert fragments is not None
        fragments.append(payload)
        self._message_size += len(payload)
        if not fin:
            return None
        self._fragments = None
        self._message_size = 0
        return _checked(self._message_opcode, b"".join(fragments))


def _checked(opcode: int, payload: bytes) -> Message:
    """A text message decoded (decoding validates it), a binary one as it is."""
    if opcode != OP_TEXT:
        return opcode, payload
    try:
        return opcode, payload.decode()
    except UnicodeDecodeError:
        raise FrameError(CLOSE_INVALID_DATA, "text message is not valid UTF-8") from None
