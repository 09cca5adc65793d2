"""Names shared by both WebSocket frame codecs: opcodes, close codes, the error type."""

from __future__ import annotations

from typing import TypeAlias

BytesLike: TypeAlias = bytes | bytearray | memoryview
#: what a decoder hands out: ``(OP_TEXT, str)`` for a text message (decoded, which
#: validates it), ``(opcode, bytes)`` for a binary message and for control frames
Message: TypeAlias = tuple[int, bytes | str]

OP_CONT = 0
OP_TEXT = 1
OP_BINARY = 2
OP_CLOSE = 8
OP_PING = 9
OP_PONG = 10
#: not a frame: what a decoder hands out, once, for a message it skips because it is
#: larger than its ``max_message_size`` (but within its ``max_skipped_size``)
OP_SKIPPED = 0x10

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_NO_STATUS = 1005
CLOSE_ABNORMAL = 1006
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011

# Largest payload of a control frame (RFC 6455 §5.5).
MAX_CONTROL_PAYLOAD = 125


class FrameError(Exception):
    """The peer broke the protocol; close the connection with ``code`` and ``reason``.

    ``reason`` is what goes on the wire: empty, as the original server (Node ``ws``)
    sends a bare status code on protocol errors. ``str(error)`` says what went wrong,
    for logs.
    """

    __slots__ = ("code", "reason")

    def __init__(self, code: int, detail: str, reason: str = "") -> None:
        super().__init__(detail)
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"FrameError({self.code}, {self.args[0]!r})"


def is_valid_close_code(code: int) -> bool:
    """Whether a peer may send ``code`` in a close frame (IANA registry, as Node ``ws``)."""
    return (1000 <= code <= 1014 and code not in (1004, 1005, 1006)) or 3000 <= code <= 4999
