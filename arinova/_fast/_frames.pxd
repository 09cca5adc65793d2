# The compiled WebSocket frame decoder: an explicit state machine with C-typed fields.

from libc.stdint cimport uint64_t


cdef enum DecoderState:
    STATE_HEADER = 0   # collecting header bytes into ``header``
    STATE_PAYLOAD = 1  # collecting the payload of a frame split across feeds
    STATE_DEAD = 2     # a FrameError was raised; every feed raises it again


cdef class FrameDecoder:
    cdef:
        Py_ssize_t max_message_size
        bint expect_masked
        DecoderState state

        # the frame being read
        unsigned char header[14]
        Py_ssize_t header_len    # header bytes received
        Py_ssize_t header_need   # header bytes needed before the next parsing step
        unsigned char opcode
        bint fin
        bint masked
        unsigned char mask[4]
        uint64_t payload_len
        Py_ssize_t payload_got
        bytearray payload        # only while a frame's payload is split across feeds

        # the fragmented message being assembled
        int message_opcode       # OP_TEXT / OP_BINARY, or 0 when no message is open
        Py_ssize_t message_size
        bytearray message        # only while a message is open

        object error

    cdef int _parse_header(self) except -1
    cdef Py_ssize_t _consume(self, const unsigned char* data, Py_ssize_t size, list out) except -1
    cdef void _frame_read(self) noexcept
    cdef int _frame_done(self, bytes payload, list out) except -1
    cdef int _text_done(self, const unsigned char* data, Py_ssize_t size, list out) except -1
    cdef int _fail(self, int code, str detail) except -1
