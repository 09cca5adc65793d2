"""Users and sessions as the auth endpoints return them, in the field order Better Auth's
drizzle adapter gives its rows: the schema's columns, then ``id`` last."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from arinova.timefmt import iso


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    name: str
    email: str
    email_verified: bool
    image: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any, prefix: str = "") -> UserRecord:
        """From a row with plain column names, or ``user_``-prefixed id/timestamps."""
        if prefix:
            return cls(
                row["user_id"],
                row["name"],
                row["email"],
                row["email_verified"],
                row["image"],
                row["user_created_at"],
                row["user_updated_at"],
            )
        return cls(
            row["id"],
            row["name"],
            row["email"],
            row["email_verified"],
            row["image"],
            row["created_at"],
            row["updated_at"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "email": self.email,
            "emailVerified": self.email_verified,
            "image": self.image,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "id": self.id,
        }


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    token: str
    user_id: str
    expires_at: datetime
    ip_address: str | None
    user_agent: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> SessionRecord:
        return cls(
            row["session_id"],
            row["token"],
            row["user_id"],
            row["expires_at"],
            row["ip_address"],
            row["user_agent"],
            row["session_created_at"],
            row["session_updated_at"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "expiresAt": iso(self.expires_at),
            "token": self.token,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "ipAddress": self.ip_address,
            "userAgent": self.user_agent,
            "userId": self.user_id,
            "id": self.id,
        }


@dataclass(frozen=True, slots=True)
class SessionWithUser:
    session: SessionRecord
    user: UserRecord

    def to_json(self) -> dict[str, Any]:
        return {"session": self.session.to_json(), "user": self.user.to_json()}
