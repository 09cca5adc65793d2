"""Redis keys and channels of the realtime coordinator. Scripts receive every key as
``KEYS`` (never as a literal inside Lua)."""

from __future__ import annotations

#: the bus: one channel every process subscribes to
CHANNEL = "rt:all"
#: sorted set: process id -> liveness deadline (ms)
PROCS = "rt:procs"
#: hash: agent id -> the process holding its socket
AGENTS = "rt:agents"


def active(conversation_id: str) -> str:
    """``<process>|<user>`` of the conversation's active reply."""
    return f"rt:active:{conversation_id}"


def queue(conversation_id: str) -> str:
    """List of the replies waiting behind the active one."""
    return f"rt:queue:{conversation_id}"


def user_active(user_id: str) -> str:
    """Hash: conversation id -> process, of the user's active replies."""
    return f"rt:uactive:{user_id}"


def replies(process: str) -> str:
    """Hash: message id -> the reply a process is streaming (for take-over)."""
    return f"rt:replies:{process}"


def presence(user_id: str) -> str:
    """Hash: process (``<process>:fg`` for visible ones) -> the user's sockets there."""
    return f"rt:presence:{user_id}"
