"""``SocketLimits``: the bounds of one socket, per endpoint."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SocketLimits:
    """Per-endpoint bounds of one socket."""

    #: largest message (all its fragments) in bytes; a frame that would exceed it -> 1009
    #: ...
    max_message_size: int = 96 * 1024
    #: ... unless the message is at most this large: then it is passed over as it
    #: arrives, never held, and the handler told (``SocketHandler.on_too_large``)
    max_skipped_size: int = 0
    #: bytes queued for a peer that reads too slowly before it is disconnected
    max_write_buffer: int = 4 * 1024 * 1024
    #: queued bytes above which the peer counts as "not reading" ...
    write_high_water: int = 256 * 1024
    #: ... and how long it may stay that way before it is disconnected
    stall_timeout_s: float = 30.0
    #: how long a close handshake may take before the connection is dropped
    close_timeout_s: float = 5.0
    #: after a read that follows the one before within twice this, reading pauses this
    #: long: what the peer sends meanwhile comes in one read, one wakeup of the loop for
    #: several messages (0: each read as it comes; reads far apart never pause)
    read_pause_s: float = 0.0
