"""Type stub of the compiled WebSocket frame codec (same API as ``_frames_py``)."""

from ._frames_common import CLOSE_ABNORMAL as CLOSE_ABNORMAL
from ._frames_common import CLOSE_GOING_AWAY as CLOSE_GOING_AWAY
from ._frames_common import CLOSE_INTERNAL_ERROR as CLOSE_INTERNAL_ERROR
from ._frames_common import CLOSE_INVALID_DATA as CLOSE_INVALID_DATA
from ._frames_common import CLOSE_MESSAGE_TOO_BIG as CLOSE_MESSAGE_TOO_BIG
from ._frames_common import CLOSE_NO_STATUS as CLOSE_NO_STATUS
from ._frames_common import CLOSE_NORMAL as CLOSE_NORMAL
from ._frames_common import CLOSE_POLICY_VIOLATION as CLOSE_POLICY_VIOLATION
from ._frames_common import CLOSE_PROTOCOL_ERROR as CLOSE_PROTOCOL_ERROR
from ._frames_common import CLOSE_UNSUPPORTED_DATA as CLOSE_UNSUPPORTED_DATA
from ._frames_common import OP_BINARY as OP_BINARY
from ._frames_common import OP_CLOSE as OP_CLOSE
from ._frames_common import OP_CONT as OP_CONT
from ._frames_common import OP_PING as OP_PING
from ._frames_common import OP_PONG as OP_PONG
from ._frames_common import OP_SKIPPED as OP_SKIPPED
from ._frames_common import OP_TEXT as OP_TEXT
from ._frames_common import BytesLike, Message
from ._frames_common import FrameError as FrameError

__all__: list[str]

def apply_mask(data: BytesLike, mask: BytesLike) -> bytes: ...
def encode_frame(
    opcode: int, payload: bytes, fin: bool = True, mask: BytesLike | None = None
) -> bytes: ...
def encode_text(text: str) -> bytes: ...
def encode_binary(data: bytes) -> bytes: ...
def encode_ping(payload: bytes = b"") -> bytes: ...
def encode_pong(payload: bytes) -> bytes: ...
def encode_close(code: int, reason: str = "") -> bytes: ...
def parse_close(payload: BytesLike) -> tuple[int, str]: ...

class FrameDecoder:
    def __init__(
        self, max_message_size: int, expect_masked: bool = True, max_skipped_size: int = 0
    ) -> None: ...
    @property
    def buffered(self) -> int: ...
    def feed(self, data: BytesLike) -> list[Message]: ...
