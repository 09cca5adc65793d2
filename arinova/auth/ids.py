"""Random identifiers in Better Auth's format: 32 characters of ``[A-Za-z0-9]``."""

from __future__ import annotations

import secrets
import string

ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 32


def new_id(length: int = ID_LENGTH) -> str:
    """A user, session, account or verification id, a session token or an OAuth state."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))
