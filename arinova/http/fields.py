"""Body field rules the REST areas share."""

from __future__ import annotations

from typing import Any, Final

#: PostgreSQL cannot store NUL characters in text, so a string field refuses them with
#: 400 VALIDATION_ERROR instead of failing in the database with 500 (quirk Q46).
#: Spread into a ``Str``/``Url``/``Uuid`` field: ``Str(max_len=200, **NO_NUL)``.
NO_NUL: Final[dict[str, Any]] = {
    "pattern": r"[^\x00]*",
    "pattern_reason": "must not contain NUL characters",
}
