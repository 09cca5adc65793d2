# The compiled WebSocket frame decoder: an explicit state machine with C-typed fields.

from libc.stdint cimport uint64_t


cdef enum DecoderState:
    STATE_HEADER = 0   # collecting header bytes into ``header``
    STATE_PAYLOAD = 1  # collecting the payload of a frame split across feeds
    STATE_DEAD = 2     # a FrameError was raised; every feed raises it again
    STATE_SKIP = 3     # passing over the payload of a frame of a message too large to keep


cdef class FrameDecoder:
    # Fields grouped by size: one decoder lives as long as its socket, so it is kept small.
    cdef:
        Py_ssize_t max_message_size
        Py_ssize_t max_skipped_size
        uint64_t payload_len     # of the frame being read
        Py_ssize_t payload_got
        Py_ssize_t message_size  # of the fragmented message being assembled
        bytearray payload        # only while a frame's payload is split across feeds
        bytearray message        # only while a fragmented message is open
        object error

        # the frame being read
        unsigned char header[14]
        unsigned char mask[4]
        unsigned char header_len    # header bytes received
        unsigned char header_need   # header bytes needed before the next parsing step
        unsigned char opcode
        unsigned char fin
        unsigned char masked
        unsigned char skip          # this frame's payload is passed over

        unsigned char expect_masked
        unsigned char state            # a DecoderState
        unsigned char message_opcode   # OP_TEXT / OP_BINARY, SKIPPED_MESSAGE, or 0 (none open)

    cdef int _parse_header(self) except -1
    cdef Py_ssize_t _consume(self, const unsigned char* data, Py_ssize_t size, list out) except -1
    cdef int _skip_started(self, list out) except -1
    cdef void _frame_read(self) noexcept
    cdef int _frame_done(self, bytes payload, list out) except -1
    cdef int _text_done(self, const unsigned char* data, Py_ssize_t size, list out) except -1
    cdef int _fail(self, int code, str detail) except -1
