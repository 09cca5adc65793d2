"""WebSocket frame codec (RFC 6455), compiled: the twin of ``_frames_py``.

Server side: frames from the peer are masked, frames we send are not. No extensions.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint64_t
from libc.string cimport memcpy, memset

cimport cython

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
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_SKIPPED,
    OP_TEXT,
    FrameError,
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

cdef extern from "Python.h":
    bint PyUnicode_IS_COMPACT_ASCII(object text)
    void* PyUnicode_DATA(object text)
    Py_ssize_t PyUnicode_GET_LENGTH(object text)
    bytes PyUnicode_AsUTF8String(object text)
    str PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    str PyUnicode_DecodeUTF8(const char* s, Py_ssize_t size, const char* errors)


cdef enum:
    C_OP_CONT = 0
    C_OP_TEXT = 1
    C_OP_BINARY = 2
    C_OP_CLOSE = 8
    C_OP_PING = 9
    C_OP_PONG = 10
    C_OP_SKIPPED = 0x10
    SKIPPED_MESSAGE = 0xFF  # ``message_opcode`` of an open message being skipped
    C_MAX_CONTROL = 125
    C_MAX_REASON = 123
    C_CLOSE_PROTOCOL_ERROR = 1002
    C_CLOSE_NO_STATUS = 1005
    C_CLOSE_INVALID_DATA = 1007
    C_CLOSE_MESSAGE_TOO_BIG = 1009


# --- helpers in C --------------------------------------------------------------------

cdef inline void _xor_mask(
    unsigned char* dst, const unsigned char* src, Py_ssize_t n,
    const unsigned char* mask, Py_ssize_t phase,
) noexcept nogil:
    """dst[i] = src[i] ^ mask[(phase + i) % 4], eight bytes at a time."""
    cdef unsigned char key[8]
    cdef uint64_t key64, word
    cdef Py_ssize_t i
    for i in range(8):
        key[i] = mask[(phase + i) & 3]
    memcpy(&key64, key, 8)
    i = 0
    while i + 8 <= n:
        memcpy(&word, src + i, 8)
        word ^= key64
        memcpy(dst + i, &word, 8)
        i += 8
    while i < n:
        dst[i] = src[i] ^ key[i & 7]
        i += 1


cdef inline bint _is_continuation(unsigned char c) noexcept nogil:
    return (c & 0xC0) == 0x80


cdef bint _copy_is_ascii(
    unsigned char* dst, const unsigned char* src, Py_ssize_t n, const unsigned char* mask
) noexcept nogil:
    """Copy ``src`` to ``dst``, unmasked when ``mask`` is not NULL, in one pass; whether
    every byte copied is ASCII."""
    cdef unsigned char key[8]
    cdef uint64_t key64 = 0, word, seen = 0
    cdef unsigned char tail = 0
    cdef Py_ssize_t i
    if mask != NULL:
        for i in range(8):
            key[i] = mask[i & 3]
        memcpy(&key64, key, 8)
    else:
        memset(key, 0, 8)
    i = 0
    while i + 8 <= n:
        memcpy(&word, src + i, 8)
        word ^= key64
        seen |= word
        memcpy(dst + i, &word, 8)
        i += 8
    while i < n:
        dst[i] = src[i] ^ key[i & 7]
        tail |= dst[i]
        i += 1
    return (seen & 0x8080808080808080ULL) == 0 and (tail & 0x80) == 0


cdef str _utf8_text(const unsigned char* s, Py_ssize_t n):
    """``s`` decoded as strict UTF-8 (Python's decoder: no overlongs, surrogates or code
    points past U+10FFFF); None when it is not valid UTF-8."""
    try:
        return PyUnicode_DecodeUTF8(<const char*>s, n, NULL)
    except UnicodeDecodeError:
        return None


cdef str _unmasked_text(const unsigned char* src, Py_ssize_t n, const unsigned char* mask):
    """The text of a whole frame's payload, unmasked (when ``mask`` is not NULL) straight
    into a new ASCII ``str``; a payload that is not ASCII goes through the UTF-8 decoder.
    None when it is not valid UTF-8."""
    cdef str text = PyUnicode_New(n, 127)
    cdef unsigned char* dst = <unsigned char*>PyUnicode_DATA(text)
    if _copy_is_ascii(dst, src, n, mask):
        return text
    return _utf8_text(dst, n)


cdef inline bint _valid_close_code(int code) noexcept nogil:
    return (1000 <= code <= 1014 and code != 1004 and code != 1005 and code != 1006) or (
        3000 <= code <= 4999
    )


cdef inline bint _known_opcode(int opcode) noexcept nogil:
    return opcode <= C_OP_BINARY or C_OP_CLOSE <= opcode <= C_OP_PONG


cdef inline Py_ssize_t _header_size(Py_ssize_t n) noexcept nogil:
    if n < 126:
        return 2
    if n < 0x10000:
        return 4
    return 10


cdef inline Py_ssize_t _write_header(
    unsigned char* out, unsigned char first, Py_ssize_t n, unsigned char mask_bit
) noexcept nogil:
    cdef int shift
    out[0] = first
    if n < 126:
        out[1] = <unsigned char>n | mask_bit
        return 2
    if n < 0x10000:
        out[1] = 126 | mask_bit
        out[2] = <unsigned char>(n >> 8)
        out[3] = <unsigned char>n
        return 4
    out[1] = 127 | mask_bit
    for shift in range(8):
        out[2 + shift] = <unsigned char>((<uint64_t>n) >> (56 - 8 * shift))
    return 10


cdef bytes _frame(unsigned char first, const unsigned char* payload, Py_ssize_t n):
    """An unmasked frame around ``payload``."""
    cdef bytes frame = PyBytes_FromStringAndSize(NULL, _header_size(n) + n)
    cdef unsigned char* out = <unsigned char*>PyBytes_AS_STRING(frame)
    cdef Py_ssize_t head = _write_header(out, first, n, 0)
    if n:
        memcpy(out + head, payload, n)
    return frame


cdef inline bytes _frame_of_bytes(unsigned char first, bytes payload):
    return _frame(first, <const unsigned char*>PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload))


cdef object _error(int code, str detail):
    return FrameError(code, detail)


# --- encoding ------------------------------------------------------------------------

def apply_mask(data, mask):
    """XOR ``data`` with the 4-byte ``mask`` repeated (masking and unmasking alike)."""
    cdef Py_buffer data_view
    cdef Py_buffer mask_view
    cdef bytes result
    PyObject_GetBuffer(mask, &mask_view, PyBUF_SIMPLE)
    try:
        if mask_view.len != 4:
            raise ValueError("mask must be 4 bytes")
        PyObject_GetBuffer(data, &data_view, PyBUF_SIMPLE)
        try:
            result = PyBytes_FromStringAndSize(NULL, data_view.len)
            _xor_mask(
                <unsigned char*>PyBytes_AS_STRING(result),
                <const unsigned char*>data_view.buf,
                data_view.len,
                <const unsigned char*>mask_view.buf,
                0,
            )
        finally:
            PyBuffer_Release(&data_view)
    finally:
        PyBuffer_Release(&mask_view)
    return result


def encode_frame(int opcode, bytes payload not None, bint fin=True, mask=None):
    """One frame; with a 4-byte ``mask`` it is a masked (client) frame."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(payload)
    cdef unsigned char first = <unsigned char>(opcode | 0x80 if fin else opcode)
    cdef Py_buffer mask_view
    cdef bytes frame
    cdef unsigned char* out
    cdef Py_ssize_t head
    if not _known_opcode(opcode):
        raise ValueError(f"unknown opcode {opcode}")
    if opcode >= C_OP_CLOSE and (not fin or n > C_MAX_CONTROL):
        raise ValueError("control frames must be final and carry at most 125 bytes")
    if mask is None:
        return _frame(first, <const unsigned char*>PyBytes_AS_STRING(payload), n)
    PyObject_GetBuffer(mask, &mask_view, PyBUF_SIMPLE)
    try:
        if mask_view.len != 4:
            raise ValueError("mask must be 4 bytes")
        frame = PyBytes_FromStringAndSize(NULL, _header_size(n) + 4 + n)
        out = <unsigned char*>PyBytes_AS_STRING(frame)
        head = _write_header(out, first, n, 0x80)
        memcpy(out + head, mask_view.buf, 4)
        _xor_mask(
            out + head + 4,
            <const unsigned char*>PyBytes_AS_STRING(payload),
            n,
            <const unsigned char*>mask_view.buf,
            0,
        )
    finally:
        PyBuffer_Release(&mask_view)
    return frame


def encode_text(str text not None):
    """One final, unmasked text frame."""
    # CPython's own UTF-8 encoder beats a hand-written one on mixed text; only ASCII
    # (most JSON) skips it and is copied straight from the str.
    if PyUnicode_IS_COMPACT_ASCII(text):
        return _frame(0x81, <const unsigned char*>PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text))
    return _frame_of_bytes(0x81, PyUnicode_AsUTF8String(text))


def encode_binary(bytes data not None):
    """One final, unmasked binary frame."""
    return _frame_of_bytes(0x82, data)


def encode_ping(bytes payload not None=b""):
    return encode_frame(C_OP_PING, payload)


def encode_pong(bytes payload not None):
    return encode_frame(C_OP_PONG, payload)


def encode_close(int code, str reason not None=""):
    """A close frame; ``CLOSE_NO_STATUS`` sends an empty one.

    The reason is cut to the 123 bytes a control frame leaves for it, never inside a
    UTF-8 character.
    """
    cdef bytes raw
    cdef Py_ssize_t n
    cdef const unsigned char* s
    cdef bytes frame
    cdef unsigned char* out
    if code == C_CLOSE_NO_STATUS:
        return b"\x88\x00"
    if not _valid_close_code(code):
        raise ValueError(f"close code {code} may not be sent")
    raw = PyUnicode_AsUTF8String(reason)
    s = <const unsigned char*>PyBytes_AS_STRING(raw)
    n = PyBytes_GET_SIZE(raw)
    if n > C_MAX_REASON:
        n = C_MAX_REASON
        while _is_continuation(s[n]):
            n -= 1
    frame = PyBytes_FromStringAndSize(NULL, 4 + n)
    out = <unsigned char*>PyBytes_AS_STRING(frame)
    out[0] = 0x88
    out[1] = <unsigned char>(2 + n)
    out[2] = <unsigned char>(code >> 8)
    out[3] = <unsigned char>code
    if n:
        memcpy(out + 4, s, n)
    return frame


def parse_close(payload):
    """The code and reason of a close frame's payload; ``(1005, "")`` when empty."""
    cdef Py_buffer view
    cdef const unsigned char* s
    cdef int code
    cdef str reason
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        s = <const unsigned char*>view.buf
        if view.len == 0:
            return C_CLOSE_NO_STATUS, ""
        if view.len == 1:
            raise _error(C_CLOSE_PROTOCOL_ERROR, "close payload of one byte")
        if view.len > C_MAX_CONTROL:
            raise _error(C_CLOSE_PROTOCOL_ERROR, "close payload over 125 bytes")
        code = (s[0] << 8) | s[1]
        if not _valid_close_code(code):
            raise _error(C_CLOSE_PROTOCOL_ERROR, f"invalid close code {code}")
        reason = _utf8_text(s + 2, view.len - 2)
        if reason is None:
            raise _error(C_CLOSE_INVALID_DATA, "close reason is not valid UTF-8")
        return code, reason
    finally:
        PyBuffer_Release(&view)


# --- decoding ------------------------------------------------------------------------

@cython.auto_pickle(False)
cdef class FrameDecoder:
    """Turns the bytes a peer sends into complete messages and control frames: a text
    message as ``str`` (decoded once; invalid UTF-8 -> 1007), anything else as ``bytes``.

    A frame that arrives whole in one feed is unmasked straight from the input into its
    own ``bytes`` (a whole text message straight into its ``str``); only a frame split
    across feeds is collected in a buffer that grows with the bytes received. A frame that
    would make its message exceed ``max_message_size`` is dealt with as soon as its length
    is known: a message up to ``max_skipped_size`` is passed over as it arrives (handed out
    once, as ``(OP_SKIPPED, b"")``, where it began), a larger one is refused (1009).
    """

    def __init__(
        self, Py_ssize_t max_message_size, bint expect_masked=True, Py_ssize_t max_skipped_size=0
    ):
        if max_message_size < 0:
            raise ValueError("max_message_size must not be negative")
        self.max_message_size = max_message_size
        self.max_skipped_size = max(max_skipped_size, max_message_size)
        self.skip = 0
        self.expect_masked = expect_masked
        self.state = STATE_HEADER
        self.header_len = 0
        self.header_need = 2
        self.payload = None
        self.message_opcode = 0
        self.message_size = 0
        self.message = None
        self.error = None

    @property
    def buffered(self):
        """Bytes held: the frame being read plus the fragments of an open message."""
        if self.state == STATE_SKIP:
            return 0
        if self.message_opcode == SKIPPED_MESSAGE:
            return self.header_len + self.payload_got
        return self.header_len + self.payload_got + self.message_size

    def feed(self, data):
        cdef Py_buffer view
        cdef list out = []
        if self.state == STATE_DEAD:
            raise self.error.with_traceback(None)  # no traceback growth on re-raise
        if PyBytes_CheckExact(data):
            self._consume(<const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), out)
            return out
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self._consume(<const unsigned char*>view.buf, view.len, out)
        finally:
            PyBuffer_Release(&view)
        return out

    cdef int _fail(self, int code, str detail) except -1:
        self.state = STATE_DEAD
        self.error = _error(code, detail)
        self.payload = None
        self.message = None
        self.message_opcode = 0
        self.message_size = 0
        self.header_len = 0
        self.payload_got = 0
        self.skip = 0
        raise self.error

    cdef Py_ssize_t _consume(self, const unsigned char* data, Py_ssize_t size, list out) except -1:
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t take, remaining, n
        cdef bytes whole
        cdef str text
        cdef unsigned char* dst
        while True:
            if self.state == STATE_HEADER:
                take = self.header_need - self.header_len
                if take > size - pos:
                    take = size - pos
                if take == 0:
                    return pos
                memcpy(self.header + self.header_len, data + pos, take)
                self.header_len += take
                pos += take
                if self.header_len < self.header_need:
                    return pos
                self._parse_header()
                if self.state != STATE_PAYLOAD:
                    continue
                if self.skip:
                    self._skip_started(out)
                    continue
                if self.payload_len == 0:
                    self._frame_done(b"", out)
                    continue
            remaining = <Py_ssize_t>self.payload_len - self.payload_got
            if self.state == STATE_SKIP:
                take = remaining if size - pos >= remaining else size - pos
                self.payload_got += take
                pos += take
                if self.payload_got < <Py_ssize_t>self.payload_len:
                    return pos
                self._frame_read()
                continue
            # STATE_PAYLOAD
            if self.payload_got == 0 and size - pos >= remaining:
                if self.opcode == C_OP_TEXT and self.fin:
                    # a whole text message: decoded once, from the input, with no bytes copy
                    text = _unmasked_text(data + pos, remaining, self.mask if self.masked else NULL)
                    pos += remaining
                    self._frame_read()
                    if text is None:
                        return self._fail(C_CLOSE_INVALID_DATA, "text message is not valid UTF-8")
                    out.append((C_OP_TEXT, text))
                    continue
                whole = PyBytes_FromStringAndSize(NULL, remaining)
                dst = <unsigned char*>PyBytes_AS_STRING(whole)
                if self.masked:
                    _xor_mask(dst, data + pos, remaining, self.mask, 0)
                else:
                    memcpy(dst, data + pos, remaining)
                pos += remaining
                self._frame_done(whole, out)
                continue
            take = remaining if size - pos >= remaining else size - pos
            if take == 0:
                return pos
            if self.payload is None:
                self.payload = bytearray()
            n = PyByteArray_GET_SIZE(self.payload)
            PyByteArray_Resize(self.payload, n + take)
            dst = <unsigned char*>PyByteArray_AS_STRING(self.payload) + n
            if self.masked:
                _xor_mask(dst, data + pos, take, self.mask, self.payload_got)
            else:
                memcpy(dst, data + pos, take)
            self.payload_got += take
            pos += take
            if self.payload_got < <Py_ssize_t>self.payload_len:
                return pos
            whole = bytes(self.payload)
            self.payload = None
            self._frame_done(whole, out)

    cdef int _parse_header(self) except -1:
        """One parsing step once ``header_need`` bytes are in; may ask for more."""
        cdef unsigned char first, second
        cdef int length_code
        cdef Py_ssize_t ext_end
        cdef uint64_t length = 0
        cdef int i
        first = self.header[0]
        second = self.header[1]
        length_code = second & 0x7F
        ext_end = 2 if length_code < 126 else (4 if length_code == 126 else 10)
        if self.header_len == 2:
            self.opcode = first & 0x0F
            self.fin = (first & 0x80) != 0
            self.masked = (second & 0x80) != 0
            if first & 0x70:
                return self._fail(C_CLOSE_PROTOCOL_ERROR, "reserved bits set")
            if not _known_opcode(self.opcode):
                return self._fail(C_CLOSE_PROTOCOL_ERROR, f"unknown opcode {self.opcode}")
            if self.opcode >= C_OP_CLOSE:
                if not self.fin:
                    return self._fail(C_CLOSE_PROTOCOL_ERROR, "fragmented control frame")
                if length_code > C_MAX_CONTROL:
                    return self._fail(C_CLOSE_PROTOCOL_ERROR, "control frame over 125 bytes")
            elif self.opcode == C_OP_CONT:
                if self.message_opcode == 0:
                    return self._fail(C_CLOSE_PROTOCOL_ERROR, "continuation without a message")
            elif self.message_opcode != 0:
                return self._fail(C_CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one")
            if self.masked != self.expect_masked:
                return self._fail(
                    C_CLOSE_PROTOCOL_ERROR,
                    "unmasked frame" if self.expect_masked else "masked frame",
                )
            if ext_end > 2:
                self.header_need = ext_end
                return 0
        if self.header_len == ext_end:
            if length_code < 126:
                length = length_code
            else:
                for i in range(2, ext_end):
                    length = (length << 8) | self.header[i]
                if length >> 63:
                    return self._fail(C_CLOSE_PROTOCOL_ERROR, "64-bit length with the top bit set")
            if self.opcode < C_OP_CLOSE and (
                self.message_opcode == SKIPPED_MESSAGE
                or <uint64_t>self.message_size + length > <uint64_t>self.max_message_size
            ):
                if <uint64_t>self.message_size + length > <uint64_t>self.max_skipped_size:
                    return self._fail(C_CLOSE_MESSAGE_TOO_BIG, "message too big")
                self.skip = 1
            self.payload_len = length
            if self.masked:
                self.header_need = ext_end + 4
                return 0
        if self.masked:
            memcpy(self.mask, self.header + ext_end, 4)
        self.state = STATE_PAYLOAD
        self.payload_got = 0
        return 0

    cdef int _skip_started(self, list out) except -1:
        """The header of a frame to pass over is in: say so where its message begins."""
        if self.message_opcode != SKIPPED_MESSAGE:
            out.append((C_OP_SKIPPED, b""))
            self.message = None
        if self.fin:
            self.message_opcode = 0
            self.message_size = 0
        else:
            self.message_opcode = SKIPPED_MESSAGE
            self.message_size += <Py_ssize_t>self.payload_len
        self.state = STATE_SKIP
        return 0

    cdef void _frame_read(self) noexcept:
        self.state = STATE_HEADER
        self.header_len = 0
        self.header_need = 2
        self.payload_got = 0
        self.skip = 0

    cdef int _frame_done(self, bytes payload, list out) except -1:
        cdef int opcode = self.opcode
        cdef object message
        self._frame_read()
        if opcode >= C_OP_CLOSE:
            if opcode == C_OP_CLOSE:
                try:
                    parse_close(payload)
                except FrameError as error:
                    return self._fail(error.code, error.args[0])
            out.append((opcode, payload))
            return 0
        if opcode != C_OP_CONT:
            if self.fin:
                if opcode == C_OP_TEXT:
                    return self._text_done(
                        <const unsigned char*>PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload), out
                    )
                out.append((opcode, payload))
                return 0
            self.message_opcode = opcode
            self.message = bytearray(payload)
            self.message_size = PyBytes_GET_SIZE(payload)
            return 0
        self.message += payload
        self.message_size += PyBytes_GET_SIZE(payload)
        if not self.fin:
            return 0
        opcode = self.message_opcode
        message = self.message
        self.message = None
        self.message_opcode = 0
        self.message_size = 0
        if opcode == C_OP_TEXT:
            return self._text_done(
                <const unsigned char*>PyByteArray_AS_STRING(message), PyByteArray_GET_SIZE(message), out
            )
        out.append((opcode, bytes(message)))
        return 0

    cdef int _text_done(self, const unsigned char* data, Py_ssize_t size, list out) except -1:
        cdef str text = _utf8_text(data, size)
        if text is None:
            return self._fail(C_CLOSE_INVALID_DATA, "text message is not valid UTF-8")
        out.append((C_OP_TEXT, text))
        return 0
